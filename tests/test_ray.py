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
import tempfile
import time

import numpy as np
import pytest

import images
from conftest import ROOT, input_path, run_tool

ONE_THREAD = {"TF_NUM_INTRAOP_THREADS": "1", "TF_NUM_INTEROP_THREADS": "1"}
RAY = os.path.join(os.path.dirname(sys.executable), "ray")
pytestmark = pytest.mark.slow  # a real Ray cluster


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def group_members(group):
    """Live processes (not zombies) of a process group."""
    members = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    fields = f.read().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[2]) == group and fields[0] != "Z":
                members.append(int(entry))
    return members


def start_cluster(folder, **env):
    """`ray start --head` with 2 CPUs in a process group of its own, with its own temporary folder
    and ports, so that it is stopped alone (`ray stop` would stop every Ray on the machine). Yields
    its address, then stops every process of its group (its workers too)."""
    port = free_port()
    env = dict(os.environ, RAY_USAGE_STATS_ENABLED="0", **env)
    # Ray binds to the machine's own address and maps 127.0.0.1 to it when a driver connects.
    starter = subprocess.Popen([RAY, "start", "--head", "--port", str(port), "--num-cpus", "2", "--num-gpus", "0",
                                "--include-dashboard", "false", "--disable-usage-stats", "--temp-dir", str(folder),
                                "--ray-client-server-port", str(free_port()), "--dashboard-port", str(free_port())],
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env,
                               start_new_session=True)
    group = starter.pid
    try:
        output = starter.communicate(timeout=180)[0]
        assert starter.returncode == 0, output
        yield f"127.0.0.1:{port}"
    finally:
        for signum, wait in ((signal.SIGTERM, 5), (signal.SIGKILL, 15)):
            try:
                os.killpg(group, signum)
            except ProcessLookupError:
                break
            deadline = time.monotonic() + wait
            while group_members(group) and time.monotonic() < deadline:
                time.sleep(0.2)
            if not group_members(group):
                break
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture(scope="module", autouse=True)
def a_ray_token_on_this_machine(tmp_path_factory):
    """The tools of this module run with a home folder holding a Ray token (~/.ray/auth_token), as
    on a machine where any Ray once turned token authentication on (a local `ray.init` does); the
    module's cluster has no authentication. A driver that took the token's presence to mean the
    cluster wants it lost its actors (the cluster's calls back to it were refused)."""
    home = tmp_path_factory.mktemp("home with a token")
    (home / ".ray").mkdir()
    (home / ".ray" / "auth_token").write_text("0" * 64)
    saved = os.environ["HOME"]
    os.environ["HOME"] = str(home)
    yield home
    os.environ["HOME"] = saved


@pytest.fixture(scope="module")
def ray_cluster():
    """A Ray cluster of this module on this machine, without token authentication; its address."""
    yield from start_cluster(tempfile.mkdtemp(prefix="ray-tests-", dir="/tmp"), RAY_AUTH_MODE="disabled")


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


@pytest.fixture(scope="module")
def two_pairs(tmp_path_factory):
    """Two pairs at 128 px, 150 iterations, and what one machine writes for them."""
    contents = [input_path("cat.png"), input_path("coffee.png")]
    return contents, reference_outputs(tmp_path_factory.mktemp("two pairs"), contents, iterations=150, width=128)


def test_a_killed_worker_is_retried_and_nothing_is_lost(ray_cluster, two_pairs, tmp_path):
    contents, expected = two_pairs
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


def ray_state(folder="/tmp/ray"):
    """What `ray start` clusters and the `ray` command find in Ray's default folder."""
    if not os.path.isdir(folder):
        return None
    latest = os.path.join(folder, "session_latest")
    return sorted(os.listdir(folder)), os.path.realpath(latest) if os.path.islink(latest) else None


def test_a_local_ray_beside_another_ray_leaves_it_alone(ray_cluster, two_pairs, tmp_path):
    """--ray with no address: a Ray of the run's own, gone after it. Beside it, the module's cluster
    takes a batch whose driver joins it while the local Ray is up (where a driver lost its actors
    before): both give what one machine gives, and the local Ray leaves no token in the home folder
    and nothing in Ray's default folder (/tmp/ray). (The module's next tests use the cluster after
    the local Ray has gone.)"""
    contents, batch_expected = two_pairs
    common = ["--content", input_path("coffee.png"), "--styles", input_path("the_scream.jpg"), "--network-type",
              "sqz", "--width", 200, "--tile-size", 128, "--iterations", 30, "--no-collage", "--seed", 2]
    here = run_tool("neural_style.py", *common, "--output", tmp_path / "here.png", env=ONE_THREAD, cwd=tmp_path)
    assert here.returncode == 0, here.stderr
    empty_home = tmp_path / "home"
    empty_home.mkdir()
    before = ray_state()
    local = subprocess.Popen([sys.executable, os.path.join(ROOT, "neural_style.py"), *map(str, common), "--ray",
                              "local", "--output", str(tmp_path / "ray.png")], stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True, cwd=tmp_path,
                             env=dict(os.environ, **ONE_THREAD, HOME=str(empty_home)))
    deadline = time.monotonic() + 180
    while not worker_pids("_TileWorker") and local.poll() is None and time.monotonic() < deadline:
        time.sleep(0.1)
    local.send_signal(signal.SIGSTOP)  # its Ray stays up, its driver waits until the batch has joined
    out = tmp_path / "batch on the cluster"
    out.mkdir()
    batch = subprocess.Popen([sys.executable, os.path.join(ROOT, "batch.py"),
                              *map(str, batch_args(contents, out, iterations=150, width=128)), "--ray", ray_cluster],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=tmp_path)
    deadline = time.monotonic() + 180
    while not worker_pids("render_pair") and batch.poll() is None and time.monotonic() < deadline:
        time.sleep(0.1)
    assert local.poll() is None and worker_pids("render_pair")
    local.send_signal(signal.SIGCONT)
    _, local_stderr = local.communicate(timeout=600)
    assert local.returncode == 0, local_stderr
    _, batch_stderr = batch.communicate(timeout=600)
    assert batch.returncode == 0, batch_stderr
    assert outputs(out) == batch_expected
    assert "Ray: a local Ray" in local_stderr and "tile worker(s)" in local_stderr
    a, b = (images.load_image(str(tmp_path / n)).astype(int) for n in ("here.png", "ray.png"))
    assert a.shape == b.shape == (133, 200, 3)
    assert np.array_equal(a, b)
    params = json.loads(images.read_params(str(tmp_path / "ray.png")))
    assert params["ray"] == "local" and params["tiled_levels"] == {"200x133": 128}
    assert not worker_pids("_TileWorker")
    assert not (empty_home / ".ray").exists() and ray_state() == before


def test_a_cluster_with_token_authentication(tmp_path):
    """A cluster that asks for a token: joined with this machine's token when it is the cluster's;
    refused in one line, at once, when this machine has none or another."""
    token = "5" * 64
    for address in start_cluster(tempfile.mkdtemp(prefix="ray-tests-", dir="/tmp"), RAY_AUTH_MODE="token",
                                 RAY_AUTH_TOKEN=token):
        out = tmp_path / "out"
        out.mkdir()
        args = batch_args([input_path("cat.png")], out, iterations=5, width=64) + ["--ray", address]
        other_home = tmp_path / "no token"
        other_home.mkdir()
        for env, message in (({"HOME": str(other_home)}, "asks for its token"),
                             ({}, "refuses this machine's token")):  # the module's home: another token
            started = time.monotonic()
            refused = run_tool("batch.py", *args, env=env, cwd=tmp_path)
            assert refused.returncode == 1 and "Traceback" not in refused.stderr
            assert message in refused.stderr.strip().splitlines()[-1]
            assert time.monotonic() - started < 60 and list(out.iterdir()) == []
        joined = run_tool("batch.py", *args, env={"RAY_AUTH_TOKEN": token}, cwd=tmp_path)
        assert joined.returncode == 0, joined.stderr
        assert "1 of 1 pairs done" in joined.stdout and len(list(out.iterdir())) == 1


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
