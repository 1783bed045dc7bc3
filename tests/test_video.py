"""Video (neural_video.py, video.py) on a short clip the tests make: a slow pan, then a zoom, over a
bundled photo, with a tone as its sound (clips.py). The optical flow against the known motion, the
certainty and the temporal loss, flicker against independent frames, the sound kept, resuming,
Ctrl-C, and bad input."""
import glob
import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import tensorflow as tf

import clips
import images
import video
from conftest import ROOT, input_path, run_tool

STYLE = input_path("starry_night.jpg")
FAST = ["--network-type", "sqz", "--iterations", "20", "--seed", "1"]


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    folder = tmp_path_factory.mktemp("clip")
    frames = clips.pan_and_zoom()
    return clips.write_clip(str(folder / "clip.mp4"), frames), frames


def test_flow_recovers_the_pan():
    """DIS on the pan's frames: the scene moves left by PAN pixels a frame; the mean end-point
    error is under 1 px (away from the right edge, where the scene comes in)."""
    frames = clips.pan_and_zoom()
    for a, b in zip(frames[:5], frames[1:6]):
        field = video.flow(a, b)
        error = np.hypot(field[..., 0] + clips.PAN, field[..., 1])[:, :-clips.PAN - 2]
        assert error.mean() < 1.0, error.mean()
        backward = video.flow(b, a)
        assert np.abs(backward[..., 0] - clips.PAN)[:, clips.PAN + 2:].mean() < 1.0


def test_certainty_marks_disocclusions_and_flow_fields_scale():
    """A square moving 6 px right over a still background, its true flows: where it uncovers the
    background (no pixel of the earlier frame comes there) and along its edges (a motion boundary)
    the certainty is 0; on the background and inside the square, 1."""
    forward = np.zeros((48, 64, 2), np.float32)   # earlier -> later
    forward[16:32, 10:26, 0] = 6.0
    backward = np.zeros((48, 64, 2), np.float32)  # later -> earlier
    backward[16:32, 16:32, 0] = -6.0
    c = video.certainty(backward, forward)
    assert c[:, 40:].min() == 1.0 and c[19:29, 19:29].min() == 1.0  # the background; inside the square
    assert c[18:30, 10:15].max() == 0.0  # uncovered by the square: disoccluded
    assert c[18:30, 15:17].max() == 0.0 and c[18:30, 31:33].max() == 0.0  # its edges: a motion boundary
    field = np.dstack([np.full((48, 64), 2.0), np.full((48, 64), -1.0)]).astype(np.float32)
    half = video.resize_flow(field, (24, 32))
    np.testing.assert_allclose(half[..., 0], 1.0, atol=1e-5)
    np.testing.assert_allclose(half[..., 1], -0.5, atol=1e-5)


def test_long_term_weights_let_the_closer_frame_win():
    one, two, four = np.array([1.0, 1.0, 0.0, 0.0]), np.array([1.0, 0.0, 1.0, 0.0]), np.array([1.0, 1.0, 1.0, 1.0])
    weights = video.long_term_weights([one, two, four])
    np.testing.assert_array_equal(weights[0], one)
    np.testing.assert_array_equal(weights[1], [0.0, 0.0, 1.0, 0.0])
    np.testing.assert_array_equal(weights[2], [0.0, 0.0, 0.0, 1.0])


def test_temporal_loss_samples_this_frame_where_the_flow_leads_and_is_masked_by_the_certainty():
    """The temporal loss of losses.py compares this image, sampled (bilinear) where the flow takes
    each pixel p of the earlier frame, with the earlier result at p, and this image with the result
    warped here: scale * (sum c(p) (x(p + f(p)) - y(p))^2 + sum d(q) (x(q) - w(q))^2) / (2 D),
    nothing where c or d is 0 or p + f(p) falls outside, the scale temporal_weight * L0 / 255^2 with
    L0 the content + style + tv loss at the start image. Against NumPy."""
    from settings import LossWeights
    from stylize import Stylizer
    from test_losses import tiny_net
    net = tiny_net(8)
    rng = np.random.default_rng(4)
    content = rng.uniform(0, 255, (12, 10, 3)).astype(np.float32)
    earlier = rng.uniform(0, 255, (12, 10, 3)).astype(np.float32)
    mask = np.zeros((12, 10), np.float32)
    mask[:, :5] = 1.0
    field = np.zeros((12, 10, 2), np.float32)
    field[..., 0], field[..., 1] = 1.25, -0.5  # each earlier pixel is 1.25 px right and 0.5 px up here

    def sampled(x):  # x at p + (1.25, -0.5), bilinear, and where that lies inside
        out, inside = np.zeros_like(x, dtype=np.float64), np.zeros(x.shape[:2], bool)
        for y in range(12):
            for xx in range(10):
                sy, sx = y - 0.5, xx + 1.25
                if 0 <= sy <= 11 and 0 <= sx <= 9:
                    y0, x0 = min(int(np.floor(sy)), 10), min(int(np.floor(sx)), 8)
                    fy, fx = sy - y0, sx - x0
                    out[y, xx] = ((1 - fy) * (1 - fx) * x[y0, x0] + (1 - fy) * fx * x[y0, x0 + 1]
                                  + fy * (1 - fx) * x[y0 + 1, x0] + fy * fx * x[y0 + 1, x0 + 1])
                    inside[y, xx] = True
        return out, inside

    warped = rng.uniform(0, 255, (12, 10, 3)).astype(np.float32)
    here = np.zeros((12, 10), np.float32)
    here[3:, :] = 0.5
    stylizer = Stylizer(net, content, [content], [1.0], LossWeights(), temporal=(7.0, 2))
    stylizer.set_temporal([(earlier, field, mask, warped, here)])
    start = rng.uniform(0, 255, (12, 10, 3)).astype(np.float32)
    x0 = net.preprocess(start)[None]
    stylizer.balance_temporal(x0)
    content_loss, style_loss, tv_loss, total = stylizer.loss_and_grad(tf.constant(x0))[0].numpy()
    scale = 7.0 * (content_loss + style_loss + tv_loss) / 255.0 ** 2
    np.testing.assert_allclose(stylizer.loss.temporal_scale.numpy(), scale, rtol=1e-5)
    values, inside = sampled(start.astype(np.float64))
    weight = (mask * inside)[..., None]
    expected = scale * (np.sum(weight * (values - earlier) ** 2)
                        + np.sum(here[..., None] * (start.astype(np.float64) - warped) ** 2)) / (2 * start.size)
    np.testing.assert_allclose(total - (content_loss + style_loss + tv_loss), expected, rtol=1e-3)
    assert inside[:, :5].sum() < 60  # the flow leads some of the masked pixels outside: they count for nothing
    only = Stylizer(net, content, [content], [1.0], LossWeights(content_weight=0.0, style_weight=0.0, tv_weight=0.0),
                    temporal=(7.0, 2))
    only.set_temporal([(earlier, np.zeros_like(field), mask, earlier, mask)])  # no motion: x(p) against y(p)
    only.loss.temporal_scale.assign(3.0)
    image = rng.uniform(0, 255, (12, 10, 3)).astype(np.float32)
    losses, grad = only.loss_and_grad(tf.constant(net.preprocess(image)[None]))
    np.testing.assert_allclose(losses.numpy()[3], 3.0 * np.sum(mask[..., None] * (image.astype(np.float64) - earlier) ** 2)
                               / image.size, rtol=1e-4)  # the two halves agree
    grad = grad.numpy()[0]
    assert np.abs(grad[:, :5]).min() > 0 and np.all(grad[:, 5:] == 0)
    np.testing.assert_allclose(grad[:, :5], 3.0 * 2 * (image - earlier)[:, :5] / image.size, rtol=1e-3)
    only.set_temporal([])  # a shot's first frame: no earlier frames, no temporal loss
    assert only.loss_and_grad(tf.constant(net.preprocess(image)[None]))[0].numpy()[3] == 0


def test_the_temporal_weight_means_the_same_whatever_the_loss_scale(sqz_net):
    """A frame after the first, held to the first's result: the temporal term's share of the loss
    at the result is the same for a style whose losses are 100 times larger (every loss weight
    times 100): the weight is relative to the frame's own loss."""
    from settings import LossWeights
    from stylize import Stylizer, stylize
    clip = clips.pan_and_zoom(size=(64, 96), pan_frames=2, zoom_frames=0)
    frames = [f.astype(np.float32) for f in clip]
    style = images.resize(images.load_image(STYLE), (60, 96)).astype(np.float32)
    backward, forward = video.flow(clip[1], clip[0]), video.flow(clip[0], clip[1])
    certainty, certainty_here = video.certainty(forward, backward), video.certainty(backward, forward)
    results = []
    for factor in (1.0, 100.0):
        weights = LossWeights(content_weight=5.0 * factor, style_weight=500.0 * factor, tv_weight=100.0 * factor)
        first = list(stylize(sqz_net, frames[0], frames[0], [style], [1.0], weights, iterations=10, quiet=True))[-1]
        stylizer = Stylizer(sqz_net, frames[1], [style], [1.0], weights, temporal=(100.0, 1))
        start = video.warp(first.image, backward)
        stylizer.set_temporal([(first.image, forward, certainty, start, certainty_here)])
        last = list(stylize(sqz_net, start, frames[1], [style], [1.0], weights, iterations=10, stylizer=stylizer,
                            quiet=True))[-1]
        content_loss, style_loss, tv_loss, total = last.losses
        results.append(((total - content_loss - style_loss - tv_loss) / total, style_loss))
    (share_a, style_a), (share_b, style_b) = results
    np.testing.assert_allclose(style_b / style_a, 100.0, rtol=0.05)
    assert 0.01 < share_a < 0.9
    # (not exactly: the pixel range's term keeps its own weight)
    np.testing.assert_allclose(share_b, share_a, rtol=0.15)


def run_video(*flags, cwd=None, env=None):
    return run_tool("neural_video.py", *FAST, *flags, cwd=cwd, env=env, timeout=600)


def frames_of(folder):
    return [images.load_image(f) for f in sorted(glob.glob(os.path.join(str(folder), "*.png")))]


@pytest.mark.slow  # two stylised clips
def test_temporal_consistency_halves_the_warping_error(clip, tmp_path):
    """Lai et al.'s warping error (Farneback's flow on the input frames, not the tool's) is at most
    half that of independent frames (--temporal-weight 0), with the same iterations and seed, at
    the default weight."""
    path, _ = clip
    inputs = list(video.frames(video.open_source(path)))
    errors = {}
    for name, flags in (("independent", ["--temporal-weight", "0"]), ("consistent", [])):
        result = run_video("--content", path, "--styles", STYLE, *flags, "--output", tmp_path / name, cwd=tmp_path)
        assert result.returncode == 0, result.stderr
        outputs = frames_of(tmp_path / name)
        assert len(outputs) == len(inputs) and outputs[0].shape == inputs[0].shape
        errors[name] = video.warping_error(outputs, inputs)
    assert errors["consistent"] <= 0.5 * errors["independent"], errors
    assert video.warping_error(inputs, inputs) < errors["consistent"]  # the input's own is the floor


@pytest.mark.slow  # a stylised clip, encoded
def test_a_video_keeps_its_frame_rate_size_and_sound(clip, tmp_path):
    path, frames = clip
    result = run_video("--content", path, "--styles", STYLE, "--output", tmp_path / "out.mp4", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr and "wrote" in result.stdout
    out = video.open_source(str(tmp_path / "out.mp4"))
    assert (out.count, out.fps, out.width, out.height, out.has_audio) == (len(frames), 10.0, 96, 64, True)
    assert os.path.isdir(tmp_path / "out.mp4.work")  # the finished frames stay for a rerun
    params = json.loads(images.read_params(str(tmp_path / "out.mp4.work" / "frames" / "000003.png")))
    assert params["frame"] == 3 and params["network_type"] == "sqz"


@pytest.mark.slow  # three runs of a clip
def test_ctrl_c_keeps_finished_frames_and_a_resumed_run_equals_an_uninterrupted_one(clip, tmp_path):
    path, frames = clip
    whole = run_video("--content", path, "--styles", STYLE, "--output", tmp_path / "whole", cwd=tmp_path)
    assert whole.returncode == 0, whole.stderr
    args = [sys.executable, os.path.join(ROOT, "neural_video.py"), *FAST, "--content", path, "--styles", STYLE,
            "--output", str(tmp_path / "resumed")]
    process = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=tmp_path)
    work = tmp_path / "resumed.work" / "frames"
    deadline = time.monotonic() + 300
    while len(glob.glob(str(work / "*.png"))) < 3 and time.monotonic() < deadline and process.poll() is None:
        time.sleep(0.1)
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == 130, stderr
    assert "Traceback" not in stderr and "run the same command again to continue" in stderr
    kept = sorted(os.listdir(work))
    assert 3 <= len(kept) < len(frames) and not list(work.glob(".tmp-*"))
    assert not (tmp_path / "resumed").exists()  # no output until every frame is finished
    before = {name: (work / name).read_bytes() for name in kept}
    again = run_video("--content", path, "--styles", STYLE, "--output", tmp_path / "resumed", cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    assert f"{len(kept)} frames finished" in again.stdout
    assert {name: (work / name).read_bytes() for name in kept} == before  # finished frames were not redone
    for a, b in zip(frames_of(tmp_path / "whole"), frames_of(tmp_path / "resumed")):
        np.testing.assert_array_equal(a, b)


def test_other_settings_are_not_mixed_into_a_work_folder(tmp_path):
    video.Work(str(tmp_path / "w"), {"style_weight": 500.0})
    with pytest.raises(video.ToolError, match="other settings \\(style_weight\\)"):
        video.Work(str(tmp_path / "w"), {"style_weight": 100.0})


def test_bad_input(clip, tmp_path):
    """One clear line, exit 1 or 2, nothing written: not a video, an empty video, a folder without
    frames, frames of mixed sizes, an output over the input."""
    path, frames = clip
    text = tmp_path / "notes.mp4"
    text.write_text("not a video")
    empty = tmp_path / "empty.mp4"
    empty.write_bytes(b"")
    no_frames = tmp_path / "no frames"
    no_frames.mkdir()
    (no_frames / "readme.txt").write_text("nothing here")
    mixed = tmp_path / "mixed"
    mixed.mkdir()
    images.save_image(str(mixed / "frame0001.png"), frames[0])
    images.save_image(str(mixed / "frame0002.png"), frames[1][:, :80])
    cases = [(["--content", text], 1, "is not a video ffmpeg can read"),
             (["--content", empty], 1, "is not a video ffmpeg can read"),
             (["--content", tmp_path / "missing.mp4"], 1, "content video not found"),
             (["--content", no_frames], 1, "no numbered frames"),
             (["--content", mixed], 1, "the frames differ in size"),
             (["--content", path, "--output", path], 2, "would overwrite the content video"),
             (["--content", path, "--temporal-frames", "0"], 2, "--temporal-frames"),
             (["--content", path, "--optim", "sgd"], 2, "--optim")]
    for flags, code, message in cases:
        result = run_video(*flags, "--styles", STYLE, cwd=tmp_path)
        lines = result.stderr.strip().splitlines()
        assert result.returncode == code and len(lines) == 1 and message in lines[0], (flags, result.stderr)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["empty.mp4", "mixed", "no frames", "notes.mp4"]


def run_video_here(argv, capsys):
    """neural_video.py's entry point in this process, with the fast flags: (exit code, stdout, stderr)."""
    import neural_video
    from conftest import run_in_process
    return run_in_process(neural_video.main, FAST + list(argv), capsys)


@pytest.mark.slow  # three stylised clips
def test_frames_too_large_for_memory_run_in_tiles(tmp_path, monkeypatch, capsys):
    """Frames that do not fit in memory whole are stylised in tiles, as a still would be, with the
    temporal loss cropped to each tile: it keeps the frames together as well as it does whole. When
    not even the smallest tile fits: one line of advice, exit 1, the finished frames kept."""
    import memory
    import squeezenet
    from conftest import BUNDLED_WEIGHTS
    size = (96, 200)
    clip = clips.write_clip(str(tmp_path / "wide.mp4"), clips.pan_and_zoom(size, pan_frames=4, zoom_frames=0),
                            audio=False)
    inputs = list(video.frames(video.open_source(clip)))
    common = ["--content", clip, "--styles", STYLE, "--max-hierarchy", "1"]

    def stylised(name, flags=(), tiled=True):
        code, out, err = run_video_here(common + list(flags) + ["--output", tmp_path / name], capsys)
        assert code == 0, err
        assert ("level 200x96 needs more than" in out and "tiles of at most 128x128 px" in out) == tiled, out
        frames = sorted(glob.glob(str(tmp_path / f"{name}.work" / "frames" / "*.png")))
        assert len(frames) == len(inputs)
        plan = {"200x96": 128} if tiled else {}
        assert all(json.loads(images.read_params(f))["tiled_levels"] == plan for f in frames)
        return video.warping_error(frames_of(tmp_path / name), inputs)

    whole = stylised("whole", tiled=False)
    level, tile = (memory.level_memory(squeezenet.NETWORK, size, "lbfgs", t) for t in (None, 128))
    monkeypatch.setattr(memory, "available_memory", lambda: 1.3 * os.path.getsize(BUNDLED_WEIGHTS) + (level + tile) / 2)
    independent = stylised("independent", ["--temporal-weight", "0"])
    consistent = stylised("consistent")
    assert consistent <= 0.85 * independent and consistent <= 1.15 * whole, (whole, independent, consistent)
    # Not even the smallest tile fits: refused before any frame, the finished frames untouched.
    work = tmp_path / "consistent.work" / "frames"
    before = {p.name: p.read_bytes() for p in work.iterdir()}
    os.remove(work / "000004.png")
    del before["000004.png"]
    monkeypatch.setattr(memory, "available_memory", lambda: 2**20)
    code, out, err = run_video_here(common + ["--output", tmp_path / "consistent"], capsys)
    lines = err.strip().splitlines()
    assert code == 1 and len(lines) == 1 and "--tile-size" in lines[0], err
    assert {p.name: p.read_bytes() for p in work.iterdir()} == before


def test_frames_on_disk_are_the_frames(clip, tmp_path):
    """The Ray path reads the frames from one file in the work folder, in any order, not from memory;
    a file left half written by an interrupted run is not taken for it."""
    path, _ = clip
    source = video.open_source(path)
    size = (32, 48)
    stored = str(tmp_path / "content.npy")
    with open(stored + ".partial.npy", "wb") as f:
        f.write(b"half written")
    frames = video.frames_on_disk(source, size, stored)
    assert isinstance(frames, np.memmap) and not os.path.exists(stored + ".partial.npy")
    expected = list(video.frames(source, size))
    assert frames.shape == (len(expected), 32, 48, 3)
    for index in (len(expected) - 1, 0, 3):
        np.testing.assert_array_equal(frames[index], expected[index])
    assert video.frames_on_disk(source, size, stored).shape == frames.shape  # made once, then read


def test_every_container_is_written_and_read_back(clip, tmp_path):
    """The output in each container the tool offers, with the frame rate, size and (where the
    container holds sound) the sound of its source, read back as the content of another run."""
    path, frames = clip
    source = video.open_source(path)
    work = video.Work(str(tmp_path / "work"), {})
    for index, frame in enumerate(frames):
        work.save(index, frame.astype(np.float32), "{}")
    for ext in (".mp4", ".mov", ".mkv", ".webm", ".avi", ".gif", ".m4v"):
        output = str(tmp_path / ("out" + ext))
        video.write_output(work, source, len(frames), output, source.fps)
        back = video.open_source(output)
        assert (back.count, back.fps, back.height, back.width) == (len(frames), 10.0, 64, 96), ext
        assert back.has_audio == (ext != ".gif"), ext
        read = np.array(list(video.frames(back)), np.float32)
        assert np.abs(read - np.array(frames, np.float32)).mean() < (12 if ext == ".gif" else 6), ext
    assert sorted(os.listdir(tmp_path)) == sorted(["work"] + ["out" + e for e in
                                                             (".mp4", ".mov", ".mkv", ".webm", ".avi", ".gif", ".m4v")])


def test_the_transfer_flags_of_neural_style_with_the_same_defaults():
    """neural_video.py takes every style, network, loss, optimiser, hierarchy, colour and tile flag
    of neural_style.py with its default; what it leaves out concerns a still's output file."""
    import neural_style
    import neural_video

    def options(parser):
        return {o: (a.default, a.nargs, a.type) for a in parser._actions for o in a.option_strings}
    still, moving = options(neural_style.build_parser()), options(neural_video.build_parser())
    assert set(still) - set(moving) == {"--bit-depth", "--checkpoint-iterations", "--checkpoint-output", "--initial",
                                        "--no-collage", "--out-postfix", "--print-iterations", "--show-params"}
    assert set(moving) - set(still) == {"--fps", "--temporal-frames", "--temporal-weight", "--work-dir"}
    assert all(still[o] == moving[o] for o in set(still) & set(moving))
