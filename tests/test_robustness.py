"""Bad input, unusual images, memory, interruption and numerical faults: a clear line and the
right exit code, never a traceback, never a partial or lost file."""
import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
from PIL import Image

import errors
import hierarchy
import images
import memory
import neural_style
import network
import squeezenet
import vgg
from conftest import ROOT, run_in_process, run_tool


def cli(argv, capsys):
    """Run neural_style.py's entry point in process: (exit code, stderr lines)."""
    code, _, err = run_in_process(neural_style.main, argv, capsys)
    return code, [line for line in err.splitlines() if line.strip()]


@pytest.fixture
def base(small_images, sqz_weights, tmp_path):
    return ["--content", small_images["cat.png"], "--styles", small_images["starry_night.jpg"],
            "--network-type", "sqz", "--network-file", sqz_weights, "--iterations", "3",
            "--output", str(tmp_path / "out.jpg")]


def replace(argv, flag, value):
    argv = list(argv)
    argv[argv.index(flag) + 1] = str(value)
    return argv


@pytest.fixture(scope="module")
def bad_files(tmp_path_factory, small_images):
    """Files that are not images, made once for the module (the bomb takes a second to write)."""
    tmp_path = tmp_path_factory.mktemp("bad files")
    text = tmp_path / "notes.jpg"
    text.write_text("this is not an image\n")
    empty = tmp_path / "empty.png"
    empty.write_bytes(b"")
    truncated = tmp_path / "truncated.jpg"
    data = open(small_images["starry_night.jpg"], "rb").read()
    truncated.write_bytes(data[: len(data) // 2])
    bomb = tmp_path / "bomb.png"
    Image.new("1", (20000, 20000)).save(bomb)  # 400 Mpx of zeros: a tiny file, over Pillow's limit
    return {"text": text, "empty": empty, "truncated": truncated, "bomb": bomb}


@pytest.mark.parametrize("flag", ["--content", "--styles"])
@pytest.mark.parametrize("kind, message", [
    ("missing", "not found"), ("text", "not an image file"), ("empty", "not an image file"),
    ("truncated", "could not be read"), ("bomb", "too large to load safely")])
def test_bad_image_files(base, tmp_path, bad_files, capsys, flag, kind, message):
    path = tmp_path / "nope.jpg" if kind == "missing" else bad_files[kind]
    code, lines = cli(replace(base, flag, path), capsys)
    assert code == 1
    assert len(lines) == 1 and message in lines[0] and str(path) in lines[0]
    assert not (tmp_path / "out.jpg").exists()


def test_bad_weights_files(base, tmp_path, capsys, sqz_weights):
    corrupt = tmp_path / "corrupt.mat"
    corrupt.write_bytes(os.urandom(5000))
    vgg_like = tmp_path / "vgg.mat"
    import scipy.io
    scipy.io.savemat(vgg_like, {"layers": np.zeros((1, 3))})
    for path, message in ((tmp_path / "absent.mat", "weights file not found"),
                          (corrupt, "not a readable MATLAB .mat file"),
                          (vgg_like, "has no layer conv1")):
        code, lines = cli(replace(base, "--network-file", path), capsys)
        assert code == 1 and len(lines) == 1 and message in lines[0], lines
    assert not (tmp_path / "out.jpg").exists()


def test_failed_checksum_in_the_cache(tmp_path, monkeypatch, sqz_weights):
    """A damaged file in the cache is not used: it is downloaded again, and when that fails
    (offline) the user is told."""
    cache = tmp_path / "cache"
    cache.mkdir()
    (cache / "sqz_notop.mat").write_bytes(open(sqz_weights, "rb").read()[:-100])
    monkeypatch.setattr(network, "cache_dir", lambda: str(cache))
    monkeypatch.setattr(network, "install_dirs", lambda: [str(tmp_path)])
    monkeypatch.delenv(network.MODELS_ENV, raising=False)
    source = network.WeightsSource("sqz_notop.mat", "file:///nonexistent/sqz_notop.mat", squeezenet.SOURCE.file_hash)
    with pytest.raises(errors.ToolError, match="sqz_notop.mat not found"):
        network.find_weights(source)


def unwritable_folder(tmp_path):
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        return "/sys"  # root ignores permission bits; sysfs refuses new files even to root
    folder = tmp_path / "read-only"
    folder.mkdir()
    folder.chmod(0o500)
    return str(folder)


def test_output_folder_problems_are_found_before_any_work(base, tmp_path, capsys):
    for output, message in ((tmp_path / "no such folder" / "out.jpg", "output folder does not exist"),
                            (os.path.join(unwritable_folder(tmp_path), "out.jpg"), "output folder is not writable"),
                            (tmp_path / "out.unknownext", "cannot tell the image format")):
        started = time.time()
        code, lines = cli(replace(base, "--output", output), capsys)
        assert code == 1 and len(lines) == 1 and message in lines[0], lines
        assert time.time() - started < 5  # nothing was computed
    code, lines = cli(base + ["--checkpoint-iterations", "1", "--checkpoint-output",
                              str(tmp_path / "missing" / "c%s.jpg")], capsys)
    assert code == 1 and "output folder does not exist" in lines[0]


def test_image_too_small_for_the_network(base, tmp_path, capsys):
    tiny = tmp_path / "tiny.png"
    images.save_image(str(tiny), np.full((24, 40, 3), 128, np.uint8))
    code, lines = cli(replace(base, "--content", tiny), capsys)
    assert code == 1 and len(lines) == 1
    assert "at least 31 px" in lines[0] and "40x24" in lines[0]
    code, lines = cli(base + ["--style-scales", "0.05"], capsys)
    assert code == 1 and "a style image" in lines[0] and "--style-scales" in lines[0]
    assert not (tmp_path / "out.jpg").exists()


def make_unusual_images(folder):
    """Greyscale, greyscale+alpha, RGBA, palette, CMYK JPEG, 16-bit PNG, EXIF-rotated JPEG."""
    rng = np.random.default_rng(0)
    y, x = np.mgrid[0:40, 0:60]
    rgb = np.dstack([x * 4, y * 6, (x + y) * 2]).astype(np.uint8)  # smooth: JPEG keeps it close
    grey = rng.integers(0, 256, (40, 60), dtype=np.uint8)
    paths = {}
    Image.fromarray(grey, "L").save(paths.setdefault("L", str(folder / "grey.png")))
    Image.fromarray(np.dstack([grey, grey]), "LA").save(paths.setdefault("LA", str(folder / "grey_alpha.png")))
    Image.fromarray(np.dstack([rgb, np.full((40, 60), 7, np.uint8)]), "RGBA").save(
        paths.setdefault("RGBA", str(folder / "rgba.png")))
    Image.fromarray(rgb).quantize(16).save(paths.setdefault("P", str(folder / "palette.gif")))
    Image.fromarray(rgb).convert("CMYK").save(paths.setdefault("CMYK", str(folder / "cmyk.jpg")), quality=95)
    Image.fromarray(grey.astype(np.uint16) * 257).save(paths.setdefault("I;16", str(folder / "deep.png")))
    exif = Image.Exif()
    exif[0x0112] = 6  # orientation: the camera was turned; viewers rotate 90 degrees clockwise
    Image.fromarray(rgb).save(paths.setdefault("EXIF", str(folder / "phone.jpg")), exif=exif, quality=95)
    return rgb, grey, paths


def test_unusual_images_load_as_8bit_rgb(tmp_path):
    rgb, grey, paths = make_unusual_images(tmp_path)
    loaded = {kind: images.load_image(path) for kind, path in paths.items()}
    for kind, image in loaded.items():
        assert image.dtype == np.uint8 and image.ndim == 3 and image.shape[2] == 3, kind
    for kind in ("L", "LA", "I;16"):
        np.testing.assert_array_equal(loaded[kind], np.dstack([grey] * 3))  # 16 bit scaled, not clipped
    np.testing.assert_array_equal(loaded["RGBA"], rgb)
    assert np.abs(loaded["CMYK"].astype(int) - rgb).mean() < 4
    assert loaded["EXIF"].shape == (60, 40, 3)  # upright
    assert np.abs(loaded["EXIF"].astype(int) - np.rot90(rgb, -1)).mean() < 4


def test_unusual_images_run_end_to_end(base, tmp_path, capsys):
    _, _, paths = make_unusual_images(tmp_path)
    big = {}
    for kind in ("LA", "CMYK"):
        image = Image.open(paths[kind])
        big[kind] = str(tmp_path / f"big_{os.path.basename(paths[kind])}")
        image.resize((96, 64)).save(big[kind])
    code, lines = cli(replace(replace(base, "--content", big["LA"]), "--styles", big["CMYK"]), capsys)
    assert code == 0, lines
    assert images.load_image(str(tmp_path / "out.jpg")).shape == (96, 96, 3)  # collage of 96x64


def test_memory_estimate():
    sizes = lambda w: [(w * 3 // 4, w)]  # noqa: E731
    for cls in (vgg.VGG19, squeezenet.SqueezeNet):
        small, large = (memory.estimate_memory(cls, sizes(w), "lbfgs-scipy") for w in (256, 512))
        assert 3.5 < large / small < 4.5  # activations grow with the pixel count
        assert memory.estimate_memory(cls, sizes(512) + sizes(256), "lbfgs-scipy") == large  # levels run one at a time
    # Calibrated on this machine (benchmarks/bench.py measures the peaks): VGG19 at 512x512 with
    # SciPy's L-BFGS-B peaked at 1.0 GB above the process baseline, SqueezeNet at 0.44 GB.
    vgg_512 = memory.estimate_memory(vgg.VGG19, [(512, 512)], "lbfgs-scipy")
    sqz_512 = memory.estimate_memory(squeezenet.SqueezeNet, [(512, 512)], "lbfgs-scipy")
    assert 0.87e9 < vgg_512 < 1.6e9
    assert 0.44e9 < sqz_512 < 0.9e9
    assert memory.estimate_memory(vgg.VGG19, [(512, 512)], "adam") < vgg_512
    # conv + relu per conv layer at the block's size, then the pooled output at half size.
    blocks = [(224, 64, 4), (112, 128, 4), (56, 256, 8), (28, 512, 8), (14, 512, 8)]
    expected = sum(side * side * c * n + (side // 2) ** 2 * c * (b < 4) for b, (side, c, n) in enumerate(blocks))
    assert vgg.VGG19.activation_elements(224, 224) == expected


def test_too_large_for_memory_is_refused_with_advice(base, capsys, monkeypatch, tmp_path):
    monkeypatch.setattr(memory, "available_memory", lambda: 200 * 2**20)
    code, lines = cli(base + ["--width", "4000"], capsys)
    assert code == 1 and len(lines) == 1
    for text in ("GiB of memory", "0.2 GiB available", "--width", "--max-hierarchy", "--network-type sqz"):
        assert text in lines[0]
    assert not (tmp_path / "out.jpg").exists()


def test_real_out_of_memory_is_reported_the_same_way(base, capsys, monkeypatch, tmp_path):
    import tensorflow as tf

    def oom(*args, **kwargs):
        raise tf.errors.ResourceExhaustedError(None, None, "OOM when allocating tensor")
    monkeypatch.setattr(hierarchy, "run_levels", oom)
    code, lines = cli(base, capsys)
    assert code == 1 and len(lines) == 1
    assert "error: out of memory" in lines[0] and "--network-type sqz" in lines[0]


def test_nan_loss_stops_and_keeps_the_best_finite_image(base, tmp_path, capsys, small_images):
    code, lines = cli(replace(base, "--iterations", 50) + ["--optim", "adam", "--learning-rate", "1e38"], capsys)
    assert code == 1 and len(lines) == 1
    assert "loss became" in lines[0] and "--learning-rate" in lines[0] and "partial" in lines[0]
    saved = images.load_image(str(tmp_path / "out.jpg")).astype(float)
    content = images.load_image(small_images["cat.png"]).astype(float)
    assert np.abs(saved - content).mean() < 30  # the (finite) start image, not black or noise
    assert json.loads(images.read_params(str(tmp_path / "out.jpg")))["partial"].startswith("stopped")


def test_atomic_writes_leave_no_truncated_file(tmp_path, monkeypatch):
    path = str(tmp_path / "out.png")
    images.save_image(path, np.zeros((8, 8, 3)))
    before = open(path, "rb").read()

    def broken_save(self, fp, *args, **kwargs):
        fp.write(b"\x89PNG half")
        raise OSError("disk full")
    monkeypatch.setattr(Image.Image, "save", broken_save)
    with pytest.raises(OSError):
        images.save_image(path, np.full((8, 8, 3), 255))
    assert open(path, "rb").read() == before
    assert os.listdir(tmp_path) == ["out.png"]
    if os.name == "posix":  # the temporary file's private mode does not leak into the image
        mask = os.umask(0)
        os.umask(mask)
        assert os.stat(path).st_mode & 0o777 == 0o666 & ~mask


@pytest.mark.slow  # the command line end to end
@pytest.mark.parametrize("signum, code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_interrupting_a_real_run_writes_the_best_image(small_images, sqz_weights, tmp_path, signum, code):
    out = tmp_path / "out.png"
    args = [sys.executable, os.path.join(ROOT, "neural_style.py"), "--content", small_images["coffee.png"],
            "--styles", small_images["starry_night.jpg"], "--network-type", "sqz", "--network-file", sqz_weights,
            "--iterations", "100000", "--print-iterations", "5", "--checkpoint-iterations", "50",
            "--checkpoint-output", str(tmp_path / "ck%s.png"), "--output", str(out)]
    process = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=tmp_path)
    totals = 0
    for line in process.stdout:  # wait until the optimisation is well under way
        totals += line.startswith("total loss")
        if totals >= 12:
            break
    process.send_signal(signum)
    stdout, stderr = process.communicate(timeout=60)
    assert process.returncode == code, stderr
    assert "Traceback" not in stderr and "partial" in stderr
    saved = images.load_image(str(out))
    assert saved.shape == images.load_image(small_images["coffee.png"]).shape  # the plain best image
    assert json.loads(images.read_params(str(out)))["partial"] == "interrupted"
    checkpoints = sorted(p.name for p in tmp_path.glob("ck*.png"))
    assert checkpoints and all(images.load_image(str(tmp_path / c)).shape == saved.shape for c in checkpoints)
    assert not list(tmp_path.glob(".tmp-*"))


def test_interrupt_before_the_optimisation_exits_cleanly(small_images, sqz_weights, tmp_path):
    process = subprocess.Popen([sys.executable, os.path.join(ROOT, "neural_style.py"), "--content",
                                small_images["cat.png"], "--styles", small_images["starry_night.jpg"],
                                "--network-type", "sqz", "--network-file", sqz_weights], cwd=tmp_path,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    time.sleep(0.5)  # still importing
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 130 and "Traceback" not in stderr
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("tool", ["luma_transfer.py", "build_collage.py"])
def test_standalone_tools_bad_input(tool, tmp_path, small_images):
    notes = tmp_path / "t_cat.png_starry_night.jpg_lbfgs0010_h1_pmax_sw00500_swe10_cwe10_as000_sqz.jpg"
    notes.write_text("not an image")
    import shutil
    shutil.copy(small_images["cat.png"], tmp_path / "cat.png")
    shutil.copy(small_images["starry_night.jpg"], tmp_path / "starry_night.jpg")
    for argv, message in ((["--in", notes], "not an image file"),
                          (["--in", tmp_path / "t_x.jpg_y.jpg_lbfgs.jpg"], "not found"),
                          (["--in", tmp_path / "holiday.jpg"], "cannot find the content and style names")):
        result = run_tool(tool, *argv)
        assert result.returncode == 1 and "Traceback" not in result.stderr
        assert len(result.stderr.strip().splitlines()) == 1 and message in result.stderr, result.stderr
    assert run_tool(tool, "--in", notes, "--mode", "nope").returncode == 2
    assert sorted(os.listdir(tmp_path)) == ["cat.png", "starry_night.jpg", notes.name]
