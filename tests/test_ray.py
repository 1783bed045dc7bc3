"""Batches and tiles on a real Ray cluster on this machine (127.0.0.1), started by the tests.

TensorFlow's results depend on its thread count: the runs on one machine these are compared
with use as many threads as a Ray task has CPUs (--cpus-per-task 1), and then the outputs are
equal byte for byte."""
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time

import numpy as np
import pytest

import images
from conftest import ROOT, input_path, run_tool

ONE_THREAD = {"TF_NUM_INTRAOP_THREADS": "1", "TF_NUM_INTEROP_THREADS": "1"}
RAY = os.path.join(os.path.dirname(sys.executable), "ray")
pytestmark = pytest.mark.slow  # a real Ray cluster


@pytest.fixture(scope="module")
def ray_cluster(tmp_path_factory):
    """`ray start --head` on this machine with 2 CPUs; its address. Stopped after the module."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = dict(os.environ, RAY_USAGE_STATS_ENABLED="0")
    # Ray binds to the machine's own address and maps 127.0.0.1 to it when a driver connects.
    started = subprocess.run([RAY, "start", "--head", "--port", str(port),
                              "--num-cpus", "2", "--num-gpus", "0", "--include-dashboard", "false",
                              "--disable-usage-stats"], capture_output=True, text=True, env=env, timeout=180)
    assert started.returncode == 0, started.stdout + started.stderr
    yield f"127.0.0.1:{port}"
    subprocess.run([RAY, "stop", "--force"], capture_output=True, env=env, timeout=120)


def worker_pids(task_name):
    """Processes of Ray workers running `task_name` now (Ray names them ray::<task>)."""
    pids = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/cmdline", "rb") as f:
                    if f.read().startswith(f"ray::{task_name}".encode()):
                        pids.append(int(entry))
            except OSError:
                pass
    return pids


def batch_args(contents, out, iterations=10, width=96):
    return ["--contents", *contents, "--styles", input_path("starry_night.jpg"), "--output-dir", out,
            "--network-type", "sqz", "--width", width, "--iterations", iterations, "--seed", 1]


def outputs(folder):
    """{name: (pixels, stored parameters but the output's own path)} of the images in `folder`."""
    found = {}
    for path in folder.iterdir():
        params = json.loads(images.read_params(str(path)))
        assert params.pop("output") == str(path)
        found[path.name] = (images.load_image(str(path)).tobytes(), params)
    return found


def reference_outputs(tmp_path, contents, **kwargs):
    """What a batch on one machine writes with the same flags (one TensorFlow thread)."""
    out = tmp_path / "one_machine"
    out.mkdir()
    result = run_tool("batch.py", *batch_args(contents, out, **kwargs), env=ONE_THREAD, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    return outputs(out)


def test_batch_on_ray_equals_one_machine_reports_a_bad_pair_and_resumes(ray_cluster, tmp_path):
    contents = [input_path("cat.png"), input_path("coffee.png")]
    expected = reference_outputs(tmp_path, contents)
    bad = tmp_path / "broken.jpg"
    bad.write_bytes(b"\xff\xd8 not really a JPEG")
    out = tmp_path / "ray"
    out.mkdir()
    result = run_tool("batch.py", *batch_args(contents + [str(bad)], out), "--ray", ray_cluster, cwd=tmp_path)
    # The bad pair fails on its own, named; the others complete; exit 1 at the end, listing it.
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr
    assert "broken.jpg x starry_night.jpg" in result.stderr.splitlines()[-1] and "1 pair(s) failed" in result.stderr
    assert "not an image file" in result.stderr or "could not be read" in result.stderr
    got = outputs(out)
    assert got == expected  # same names, same pixels, same stored parameters
    # Resume: finished pairs are skipped; a partial result is redone.
    os.remove(bad)
    first = out / sorted(got)[0]
    partial = images.load_image(str(first))
    images.save_image(str(first), partial, json.dumps({"partial": "interrupted"}))
    result = run_tool("batch.py", *batch_args(contents, out), "--ray", ray_cluster, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.count("skipping") == 1 and "2 of 2 pairs done" in result.stdout
    assert outputs(out) == expected


def test_a_killed_worker_is_retried_and_nothing_is_lost(ray_cluster, tmp_path):
    contents = [input_path("cat.png"), input_path("coffee.png")]
    expected = reference_outputs(tmp_path, contents, iterations=150, width=128)
    out = tmp_path / "ray"
    out.mkdir()
    process = subprocess.Popen([sys.executable, os.path.join(ROOT, "batch.py"),
                                *map(str, batch_args(contents, out, iterations=150, width=128)), "--ray", ray_cluster],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=tmp_path)
    deadline = time.monotonic() + 180
    while not worker_pids("render_pair") and time.monotonic() < deadline:
        time.sleep(0.2)
    time.sleep(3)  # well inside the pair: TensorFlow started, the optimisation running
    victims = worker_pids("render_pair")
    assert victims and not list(out.iterdir())
    os.kill(victims[0], signal.SIGKILL)
    stdout, stderr = process.communicate(timeout=600)
    assert process.returncode == 0, stderr
    assert "2 of 2 pairs done" in stdout
    assert outputs(out) == expected


def test_ctrl_c_cancels_the_running_pairs_and_keeps_the_finished(ray_cluster, tmp_path):
    for name in ("a.png", "b.png", "c.png"):  # three pairs, two at a time: the third starts last
        shutil.copy(input_path("cat.png"), tmp_path / name)
    out = tmp_path / "ray"
    out.mkdir()
    process = subprocess.Popen([sys.executable, os.path.join(ROOT, "batch.py"),
                                *map(str, batch_args([str(tmp_path / n) for n in ("a.png", "b.png", "c.png")], out,
                                                     iterations=60, width=128)),
                                "--ray", ray_cluster], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               cwd=tmp_path)
    deadline = time.monotonic() + 300
    while not list(out.glob("t_*")) and time.monotonic() < deadline:
        time.sleep(0.2)
    finished = sorted(p.name for p in out.glob("t_*"))
    assert finished and process.poll() is None
    process.send_signal(signal.SIGINT)
    stdout, stderr = process.communicate(timeout=120)
    assert process.returncode == 130, stderr
    assert "Traceback" not in stderr and "interrupted" in stderr
    kept = sorted(p.name for p in out.iterdir())
    assert set(finished) <= set(kept) and len(kept) < 3 and not list(out.glob(".tmp-*"))
    for name in kept:
        assert "partial" not in json.loads(images.read_params(str(out / name)))
    deadline = time.monotonic() + 30  # the cancelled tasks' workers are stopped
    while worker_pids("render_pair") and time.monotonic() < deadline:
        time.sleep(0.5)
    assert not worker_pids("render_pair")


def test_tiles_on_a_local_ray_equal_the_tiles_here(tmp_path):
    """--ray with no address: a local Ray started for the run, gone after it."""
    common = ["--content", input_path("coffee.png"), "--styles", input_path("the_scream.jpg"), "--network-type",
              "sqz", "--width", 200, "--tile-size", 128, "--iterations", 30, "--no-collage", "--seed", 2]
    here = run_tool("neural_style.py", *common, "--output", tmp_path / "here.png", env=ONE_THREAD, cwd=tmp_path)
    assert here.returncode == 0, here.stderr
    on_ray = run_tool("neural_style.py", *common, "--ray", "--output", tmp_path / "ray.png", env=ONE_THREAD,
                      cwd=tmp_path)
    assert on_ray.returncode == 0, on_ray.stderr
    assert "Ray: a local Ray" in on_ray.stderr and "tile worker(s)" in on_ray.stderr
    a, b = (images.load_image(str(tmp_path / n)).astype(int) for n in ("here.png", "ray.png"))
    assert a.shape == b.shape == (133, 200, 3)
    assert np.array_equal(a, b)
    params = json.loads(images.read_params(str(tmp_path / "ray.png")))
    assert params["ray"] == "local" and params["tiled_levels"] == {"200x133": 128}
    assert not worker_pids("_TileWorker")


def test_ray_flags_are_checked_before_any_work(monkeypatch, tmp_path):
    import batch
    import cluster
    import neural_style
    from errors import ToolError, UsageError
    with pytest.raises(UsageError, match="--cpus-per-task"):
        neural_style.main(["--content", "c.jpg", "--styles", "s.jpg", "--cpus-per-task", "0"])
    with pytest.raises(UsageError, match="--checkpoint-iterations cannot be used with --ray"):
        batch.main(["--contents", input_path("cat.png"), "--styles", input_path("starry_night.jpg"), "--output-dir",
                    str(tmp_path), "--ray", "--checkpoint-iterations", "10"])
    assert list(tmp_path.iterdir()) == []
    monkeypatch.setitem(sys.modules, "ray", None)  # as if Ray were not installed
    with pytest.raises(ToolError, match=r"pip install '\.\[ray\]'"):
        cluster.connect("local", 1)


def video_args(clip, out, *extra):
    return [sys.executable, os.path.join(ROOT, "neural_video.py"), "--content", clip, "--styles",
            input_path("starry_night.jpg"), "--network-type", "sqz", "--iterations", "20", "--seed", "1",
            "--output", str(out), *extra]


def video_frames(folder):
    return {name: images.load_image(str(folder / name)).tobytes() for name in sorted(os.listdir(folder))}


def test_video_shots_on_ray_equal_one_machine_and_survive_a_killed_worker(ray_cluster, tmp_path):
    """A clip of two shots: on Ray the shots run at the same time, each frame after the one before;
    the frames equal those made on one machine (one TensorFlow thread), and a worker killed in the
    middle is replaced, its frame made again, nothing finished lost."""
    import clips
    clip = clips.write_clip(str(tmp_path / "two shots.mp4"), clips.two_shots(), audio=False)
    here = subprocess.run(video_args(clip, tmp_path / "here"), capture_output=True, text=True, cwd=tmp_path,
                          env=dict(os.environ, **ONE_THREAD), timeout=600)
    assert here.returncode == 0, here.stderr
    assert "2 shots, from frames 1, 6" in here.stdout
    process = subprocess.Popen(video_args(clip, tmp_path / "ray", "--ray", ray_cluster), stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True, cwd=tmp_path)
    deadline = time.monotonic() + 300
    work = tmp_path / "ray.work" / "frames"
    victims = []
    while process.poll() is None and time.monotonic() < deadline:
        victims = worker_pids("FrameWorker")
        if victims and work.is_dir() and len(os.listdir(work)) >= 2:
            break
        time.sleep(0.2)
    if process.poll() is not None or not victims:
        process.kill()
        pytest.fail(f"no frame worker running after {len(os.listdir(work)) if work.is_dir() else 0} frames; "
                    f"the run's output:\n{process.communicate()[1]}")
    os.kill(victims[0], signal.SIGKILL)
    stdout, stderr = process.communicate(timeout=600)
    assert process.returncode == 0, stderr
    assert "frame worker(s)" in stderr and "Traceback" not in stderr
    assert video_frames(tmp_path / "ray") == video_frames(tmp_path / "here")
