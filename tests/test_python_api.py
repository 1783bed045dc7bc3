"""The Python interface (pipeline.transfer): the README's example as written, images as paths, PIL
images or arrays, settings by the flags' names, progress, and a run ended early."""
import os
import re
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

import images
from conftest import ROOT, input_path
from errors import UsageError
from pipeline import Result, transfer

SMALL = dict(network_type="sqz", width=64, iterations=5, no_collage=True)


def readme_python_example():
    """The code block of the README's "From Python" section."""
    readme = open(os.path.join(ROOT, "README.md"), encoding="utf-8").read()
    section = readme.split("## From Python", 1)[1]
    return section.split("```python\n", 1)[1].split("```", 1)[0]


def test_readme_is_short_and_its_images_exist():
    """The README is for users (under 4,000 words), and every image it shows is in the repository."""
    readme = open(os.path.join(ROOT, "README.md"), encoding="utf-8").read()
    assert len(readme.split()) < 4000
    shown = re.findall(r'src="([^"]+)"', readme)
    assert len(shown) > 10
    assert [path for path in shown if not os.path.isfile(os.path.join(ROOT, path))] == []


@pytest.mark.slow  # a real transfer in a new process
def test_readme_example_runs_as_written(tmp_path):
    """The example, as written but for fewer iterations, from a folder that holds what the
    repository's root holds (its modules importable, its examples/ there)."""
    code = readme_python_example()
    assert "from pipeline import transfer" in code and "iterations=100" in code
    (tmp_path / "examples").symlink_to(os.path.join(ROOT, "examples"))
    env = dict(os.environ, PYTHONPATH=ROOT)
    result = subprocess.run([sys.executable, "-c", code.replace("iterations=100", "iterations=10")], cwd=tmp_path,
                            env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    saved = images.load_image(str(tmp_path / "cat_starry_night.png"))
    content = images.load_image(input_path("cat.png"))
    assert saved.shape == (170, 256, 3)
    assert np.abs(saved.astype(float) - content).mean() > 5  # stylised, not the photo
    assert result.stdout.strip().splitlines()[-1] == "500.0 (170, 256, 3)"  # the flag's default, the image's shape


def test_images_as_paths_pil_images_or_arrays_give_the_same_result():
    by_path = transfer(input_path("cat.png"), input_path("starry_night.jpg"), **SMALL)
    pil = Image.open(input_path("cat.png"))
    array = images.load_image(input_path("starry_night.jpg"))
    by_objects = transfer(pil, [array], **SMALL)
    assert isinstance(by_path, Result) and by_path.partial is None
    np.testing.assert_array_equal(by_path.pixels, by_objects.pixels)
    assert by_path.image.size == (64, 42) and by_path.image.mode == "RGB"
    assert by_path.params["content"] == input_path("cat.png")
    assert by_objects.params["content"] == "<PngImageFile 256x170>"
    assert by_objects.params["styles"] == ["<ndarray 256x160>"]
    # Every setting, by the flags' names and with their defaults where not given.
    assert by_path.params["style_weight"] == 500.0 and by_path.params["optim"] == "lbfgs"
    assert by_path.params["iterations"] == 5 and by_path.params["tiled_levels"] == {}


def test_collage_by_default_and_save_stores_the_settings(tmp_path):
    result = transfer(input_path("cat.png"), input_path("starry_night.jpg"), network_type="sqz", width=64,
                      iterations=3)
    assert result.image.size == (64, 63)  # the collage, as the command line writes by default
    result.save(str(tmp_path / "out.png"))
    assert images.read_params(str(tmp_path / "out.png")) == result.params_text()


@pytest.mark.slow  # a run of two levels
def test_progress_callback_replaces_the_bar_and_the_loss_lines(capsys):
    seen = []
    transfer(input_path("cat.png"), input_path("starry_night.jpg"), progress=seen.append,
             **dict(SMALL, width=200, max_hierarchy=2, iterations=27))
    out = capsys.readouterr()
    assert "loss" not in out.out and "hierarchy level" not in out.out and out.err == ""
    assert [(p.level, p.levels, p.width) for p in (seen[0], seen[-1])] == [(1, 2, 100), (2, 2, 200)]
    assert [p.iteration for p in seen if p.level == 1] == list(range(1, 26))  # 25 at least on a level
    assert [p.iteration for p in seen if p.level == 2] == list(range(1, 28))
    assert all(p.iterations == (25 if p.level == 1 else 27) for p in seen)
    assert seen[-1].losses is not None and len(seen[-1].losses) == 4


def test_ctrl_c_returns_the_best_image_so_far(capsys):
    def stop_at_three(p):
        if p.iteration == 3:
            raise KeyboardInterrupt
    result = transfer(input_path("cat.png"), input_path("starry_night.jpg"), progress=stop_at_three,
                      **dict(SMALL, iterations=50))
    assert result.partial == "interrupted" and isinstance(result.stopped, KeyboardInterrupt)
    assert result.pixels.shape == (42, 64, 3)  # the plain best image, not the collage
    assert "best image so far" in capsys.readouterr().err


@pytest.mark.parametrize("settings, message", [
    (dict(stlye_weight=10), "unknown setting"),
    (dict(optim="sgd"), "--optim must be one of"),
    (dict(iterations=0), "--iterations must be at least 1"),
    (dict(style_blend_weights=[1, 2]), "one value per style"),
])
def test_settings_are_checked_as_the_flags_are(settings, message):
    with pytest.raises(UsageError, match=message):
        transfer(input_path("cat.png"), input_path("starry_night.jpg"), **settings)


def test_a_bad_image_is_a_clear_error():
    from errors import ToolError
    with pytest.raises(ToolError, match="content image not found: nope.jpg"):
        transfer("nope.jpg", input_path("starry_night.jpg"), **SMALL)
    with pytest.raises(ToolError, match="style image must be a file path, a PIL image or an HxWx3 array"):
        transfer(input_path("cat.png"), [np.zeros((4, 4, 7))], **SMALL)
