"""The command line end to end, as a user runs it: the real photos and paintings of
examples/inputs (downscaled to at most 128 px), the bundled SqueezeNet weights."""
import math
import os
import re

import numpy as np
import pytest

import images
from conftest import ROOT, run_tool

pytestmark = pytest.mark.slow  # the command line end to end


def totals(stdout):
    return [float(v) for v in re.findall(r"^total loss: (\S+)$", stdout, re.M)]


@pytest.mark.parametrize("optim", ["lbfgs", "lbfgs-scipy", "cg", "adam"])
def test_each_optimizer_lowers_the_loss_and_changes_the_image(optim, small_images, sqz_weights, tmp_path):
    out = tmp_path / "out.png"
    result = run_tool("neural_style.py", "--content", small_images["coffee.png"],
                      "--styles", small_images["starry_night.jpg"], "--network-type", "sqz",
                      "--network-file", sqz_weights, "--iterations", 40, "--print-iterations", 20,
                      "--optim", optim, "--learning-rate", 5, "--output", out, "--no-collage", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    loss_lines = re.findall(r"^(content|style|tv|total) loss: \S+$", result.stdout, re.M)
    assert loss_lines[:4] == ["content", "style", "tv", "total"]
    t = totals(result.stdout)
    assert len(t) == 3  # before the first iteration, at 20, at the end
    assert t[-1] < 0.5 * t[0]
    content = images.load_image(small_images["coffee.png"]).astype(float)
    styled = images.load_image(str(out)).astype(float)
    assert styled.shape == content.shape
    assert np.abs(styled - content).mean() > 5
    assert f"wrote {out}" in result.stdout


def test_default_output_is_the_auto_named_collage(small_images, sqz_weights, tmp_path):
    result = run_tool("neural_style.py", "--content", small_images["cat.png"], "--styles", small_images["the_scream.jpg"],
                      "--network-type", "sqz", "--network-file", sqz_weights, "--iterations", 10, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    name = "t_cat.png_the_scream.jpg_lbfgs0010_h1_pmax_sw00500_swe10_cwe10_as000_sqz.jpg"
    assert sorted(p.name for p in tmp_path.iterdir()) == [name]
    content = images.load_image(small_images["cat.png"])
    collage = images.load_image(str(tmp_path / name))
    assert collage.shape == (math.ceil(1.5 * content.shape[0]), content.shape[1], 3)


def test_three_level_hierarchy_with_checkpoints(small_images, sqz_weights, tmp_path):
    """A 3-level run needs a shorter side above 256 px (hierarchy.py): this test alone uses 400x265."""
    from conftest import input_path
    out = tmp_path / "out.jpg"
    result = run_tool("neural_style.py", "--content", input_path("cat.png"),
                      "--styles", small_images["starry_night.jpg"], "--width", 400, "--max-hierarchy", 3,
                      "--network-type", "sqz", "--network-file", sqz_weights, "--optim", "adam",
                      "--iterations", 30, "--checkpoint-iterations", 20,
                      "--checkpoint-output", str(tmp_path / "ck_%s.png"), "--output", out, "--no-collage", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    checkpoints = sorted(p.name for p in tmp_path.glob("ck_*.png"))
    # Levels 100x66 and 200x132 run 25 iterations, 400x265 runs 30: a checkpoint every 20 and at each end.
    assert checkpoints == ["ck_0066x0100-0020.png", "ck_0066x0100-0025.png", "ck_0132x0200-0020.png",
                           "ck_0132x0200-0025.png", "ck_0265x0400-0020.png", "ck_0265x0400-0030.png"]
    assert images.load_image(str(out)).shape == (265, 400, 3)
    assert result.stdout.count("hierarchy level") == 3
    assert len(totals(result.stdout)) == 6  # start and end of each level


def test_two_styles_with_blend_weights_and_scales(small_images, sqz_weights, tmp_path):
    outputs = []
    for weights in (["1", "0"], ["0", "1"], ["0.5", "0.5"]):
        out = tmp_path / f"out_{'_'.join(weights)}.png"
        result = run_tool("neural_style.py", "--content", small_images["cat.png"],
                          "--styles", small_images["starry_night.jpg"], small_images["shipwreck.jpg"],
                          "--style-blend-weights", *weights, "--style-scales", "1.0", "0.5",
                          "--network-type", "sqz", "--network-file", sqz_weights, "--iterations", 20,
                          "--output", out, "--no-collage", cwd=tmp_path)
        assert result.returncode == 0, result.stderr
        outputs.append(images.load_image(str(out)).astype(float))
    assert np.abs(outputs[0] - outputs[1]).mean() > 3
    # The blend lies between its two styles.
    assert np.abs(outputs[2] - outputs[0]).mean() < np.abs(outputs[1] - outputs[0]).mean()


def test_initial_and_preserve_colors(small_images, sqz_weights, tmp_path):
    common = ["--content", small_images["cat.png"], "--styles", small_images["starry_night.jpg"],
              "--network-type", "sqz", "--network-file", sqz_weights, "--iterations", 15, "--no-collage"]
    plain, initial, colours = tmp_path / "plain.png", tmp_path / "initial.png", tmp_path / "colours.png"
    for extra, out in ((["--output", plain], plain),
                       (["--initial", small_images["the_scream.jpg"], "--output", initial], initial),
                       (["--preserve-colors", "out", "--output", colours], colours)):
        result = run_tool("neural_style.py", *common, *extra, cwd=tmp_path)
        assert result.returncode == 0, result.stderr
    a, b, c = (images.load_image(str(p)) for p in (plain, initial, colours))
    assert np.abs(a.astype(float) - b).mean() > 5
    # With colours preserved, the chroma is the content's (YCbCr Cb/Cr), within JPEG-free PNG rounding.
    from PIL import Image
    content = images.load_image(small_images["cat.png"])
    cbcr = lambda x: np.asarray(Image.fromarray(x).convert("YCbCr"), dtype=float)[:, :, 1:]  # noqa: E731
    assert np.abs(cbcr(c) - cbcr(content)).mean() < 2.0
    assert np.abs(cbcr(a) - cbcr(content)).mean() > 4.0


def readme_quick_start():
    """The first command of the README's quick start, as a list of arguments."""
    import shlex
    readme = open(os.path.join(ROOT, "README.md"), encoding="utf-8").read()
    section = readme.split("## Quick start", 1)[1]
    block = section.split("```sh\n", 1)[1].split("```", 1)[0]
    return shlex.split(block.replace("\\\n", " ").splitlines()[0])


def test_readme_quick_start_runs_offline_on_a_bare_clone(tmp_path):
    """Exactly the README's line, fewer iterations, from a folder holding only the repository's
    examples/: bundled weights and images, no $NEURAL_STYLE_MODELS, an empty user cache."""
    argv = readme_quick_start()
    assert argv[:2] == ["python", "neural_style.py"] and "--network-file" not in argv
    iterations = argv.index("--iterations") + 1
    assert argv[iterations] == "200"
    argv[iterations] = "20"
    (tmp_path / "examples").symlink_to(os.path.join(ROOT, "examples"))
    home = tmp_path / "home"
    home.mkdir()
    result = run_tool(argv[1], *argv[2:], cwd=tmp_path,
                      env={"NEURAL_STYLE_MODELS": "", "HOME": str(home), "XDG_CACHE_HOME": str(home / ".cache")})
    assert result.returncode == 0, result.stderr
    name = "t_cat.png_starry_night.jpg_lbfgs0020_h1_pmax_sw00500_swe10_cwe10_as000_sqz.jpg"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["examples", "home", name]
    assert not (home / ".cache").exists()  # nothing looked up in the cache, nothing downloaded
    collage = images.load_image(str(tmp_path / name)).astype(float)
    content = images.load_image(os.path.join(ROOT, "examples", "inputs", "cat.png")).astype(float)
    assert collage.shape == (math.ceil(1.5 * 170), 256, 3)
    assert np.abs(collage[:170] - content).mean() > 5  # the top is the stylised photo, not the photo
    t = totals(result.stdout)
    assert t[-1] < 0.5 * t[0]
