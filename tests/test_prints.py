"""Prints: --max-hierarchy auto's plan, its anchor, the warning for a wide single level, and print
files (16 bits per channel, an sRGB ICC profile in every output)."""
import io
import json

import cv2
import numpy as np
import pytest
import tensorflow as tf
from PIL import Image, ImageCms

import hierarchy
import images
import names
import neural_style
import pipeline
from conftest import input_path
from errors import UsageError
from settings import LossWeights, Settings


@pytest.mark.parametrize("width, expected", [
    (4096, [4096, 2048, 1024, 512, 256]),
    (3000, [3000, 1500, 750, 375]),
    (1024, [1024, 512, 256]),
    (600, [600, 300]),
    (511, [511]),
    (200, [200]),
])
def test_auto_plan_halves_down_to_a_first_level_of_at_least_256(width, expected):
    """The smallest level runs --iterations, each larger one half as many as the one below (at
    least 25); level 0 is the full size."""
    found = hierarchy.levels(width * 3 // 4, width, 400, "auto")
    assert [level.width for level in found] == expected
    assert [level.height for level in found] == [width * 3 // 4 // 2 ** k for k in range(len(expected))]
    assert [level.iterations for level in reversed(found)] == [400] + [max(25, 400 // 2 ** k)
                                                                      for k in range(1, len(expected))]


def test_auto_styles_scale_with_the_level_but_never_beyond_their_own_width():
    style = np.zeros((640, 1024, 3), np.uint8)
    assert hierarchy.style_sizes([style], [1.0], 512, capped=True) == [(320, 512)]
    assert hierarchy.style_sizes([style], [1.0], 4096, capped=True) == [(640, 1024)]
    assert hierarchy.style_sizes([style], [1.0], 4096) == [(2560, 4096)]  # the original's rule


def test_anchor_term_matches_numpy():
    """The anchor: anchor_weight * mean((avgpool_f(x) - A)^2) over A's values."""
    from losses import ANCHOR_WEIGHT, TransferLoss
    from test_losses import np_tv, tiny_net
    net = tiny_net(7)
    rng = np.random.default_rng(3)
    content = rng.uniform(0, 255, (12, 10, 3)).astype(np.float32)
    first = rng.uniform(0, 255, (6, 5, 3)).astype(np.float32)  # the first level, half the size
    image = rng.uniform(0, 255, (12, 10, 3)).astype(np.float32)
    weights = LossWeights(content_weight=0.0, style_weight=0.0, tv_weight=2.0)
    loss = TransferLoss(net, net.preprocess(content), [net.preprocess(content)], [1.0], weights,
                        anchor=(net.preprocess(first), 2))
    total = loss(tf.constant(net.preprocess(image)[None])).numpy()[3]
    pooled = image.astype(np.float64).reshape(6, 2, 5, 2, 3).mean(axis=(1, 3))
    expected = np_tv(image.astype(np.float64), 2.0) + ANCHOR_WEIGHT * np.mean((pooled - first) ** 2)
    np.testing.assert_allclose(total, expected, rtol=1e-4)


@pytest.mark.slow  # a run of two levels
def test_auto_run_prints_its_plan_and_anchors_the_larger_levels(tmp_path, capsys, monkeypatch):
    """One line before the run: the levels, their iterations, the time estimate. The larger levels
    are held at the first level's result (the anchor), so seen at the first level's size the
    result is that level's result."""
    import stylize
    anchors = []
    real = stylize.Stylizer

    class Spy(real):
        def __init__(self, *args, anchor=None, **kwargs):
            anchors.append(None if anchor is None else (anchor[0].shape, anchor[1]))
            super().__init__(*args, anchor=anchor, **kwargs)
    monkeypatch.setattr(stylize, "Stylizer", Spy)
    out = tmp_path / "out.png"
    neural_style.main(["--content", input_path("cat.png"), "--styles", input_path("starry_night.jpg"),
                       "--network-type", "sqz", "--width", "512", "--max-hierarchy", "auto", "--iterations", "30",
                       "--no-collage", "--output", str(out)])
    printed = capsys.readouterr().out
    plan = [line for line in printed.splitlines() if line.startswith("plan:")]
    assert len(plan) == 1 and plan[0].startswith("plan: 2 levels, 256x170 (30 it.), 512x340 (25 it.); about ")
    assert plan[0].endswith(" on this machine")
    assert anchors == [None, ((170, 256, 3), 2)]
    assert json.loads(images.read_params(str(out)))["max_hierarchy"] == "auto"


def test_plan_line():
    found = hierarchy.levels(1362, 2048, 400, "auto")
    assert hierarchy.describe(found, [1024, None, None, None], 200) == (
        "plan: 4 levels, 256x170 (400 it.), 512x340 (200 it.), 1024x681 (100 it.), "
        "2048x1362 (50 it., in tiles of 1024 px); about 3 minutes on this machine")
    assert hierarchy.describe(found[-1:], None, 40).endswith("256x170 (400 it.); about 40 s on this machine")


def test_auto_in_the_output_name_and_invalid_values():
    args = neural_style.build_parser().parse_args(["--content", "c.jpg", "--styles", "s.jpg", "--max-hierarchy", "auto"])
    assert names.auto_output_name(neural_style.settings_from(args)) == \
        "t_c.jpg_s.jpg_lbfgs1000_hauto_pmax_sw00500_swe10_cwe10_as000_vgg.jpg"
    with pytest.raises(UsageError, match="--max-hierarchy"):
        neural_style.main(["--content", "c.jpg", "--styles", "s.jpg", "--max-hierarchy", "some"])
    with pytest.raises(UsageError, match="--max-hierarchy"):
        Settings.from_flags(content="c.jpg", styles=["s.jpg"], max_hierarchy="2")


def test_a_wide_single_level_is_warned_about(capsys, monkeypatch):
    monkeypatch.setattr(hierarchy, "run_levels", lambda settings, content, *args, **kwargs: content.astype(float))
    settings = Settings.from_flags(content="c", styles=["s"], network_type="sqz", width=1100, no_collage=True)
    cat, style = images.load_image(input_path("cat.png")), images.load_image(input_path("starry_night.jpg"))
    pipeline.render(settings, cat, [style], log=lambda *a: None)
    warning = [line for line in capsys.readouterr().err.splitlines() if line.startswith("warning:")]
    assert len(warning) == 1 and "1100 px" in warning[0] and "--max-hierarchy auto" in warning[0]
    pipeline.render(settings.replace(width=1000), cat, [style], log=lambda *a: None)
    pipeline.render(settings.replace(max_hierarchy=2), cat, [style], log=lambda *a: None)
    assert "warning" not in capsys.readouterr().err


def icc_description(path):
    with Image.open(path) as image:
        profile = image.info.get("icc_profile")
    return ImageCms.getProfileDescription(ImageCms.ImageCmsProfile(io.BytesIO(profile))) if profile else None


@pytest.mark.parametrize("name", ["out.jpg", "out.png", "out.tif", "out.webp"])
def test_every_output_carries_an_srgb_profile(tmp_path, name):
    path = str(tmp_path / name)
    images.save_image(path, np.full((8, 9, 3), 100.0), '{"a": 1}')
    assert "sRGB" in icc_description(path)


@pytest.mark.parametrize("name", ["deep.png", "deep.tif"])
def test_sixteen_bits_per_channel_keep_the_optimised_precision(tmp_path, name):
    """--bit-depth 16: the file holds the result's values to 1/257 of a grey level (read back with
    OpenCV, not by the code that wrote it), its parameters and its sRGB profile."""
    path = tmp_path / name
    result = pipeline.transfer(input_path("cat.png"), input_path("starry_night.jpg"), network_type="sqz",
                               width=64, iterations=5, no_collage=True, output=str(path), bit_depth=16)
    back = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    assert back.dtype == np.uint16 and back.shape == (42, 64, 3)
    np.testing.assert_array_equal(back[:, :, ::-1], images.to_uint16(result.pixels))  # OpenCV reads BGR
    assert np.mean(back % 257 != 0) > 0.5  # values between the 8-bit levels: more than 8 bits kept
    assert json.loads(images.read_params(str(path)))["bit_depth"] == 16
    assert "sRGB" in icc_description(str(path))
    assert images.load_image(str(path)).shape == (42, 64, 3)  # and it reads back as an input


def test_sixteen_bits_need_a_png_or_tiff_output():
    for flags in (["--bit-depth", "16"], ["--bit-depth", "16", "--output", "x.jpg"]):
        with pytest.raises(UsageError, match="--bit-depth 16 needs an --output ending in .png or .tif"):
            neural_style.main(["--content", "c.jpg", "--styles", "s.jpg", *flags])
    with pytest.raises(UsageError, match="--bit-depth"):
        neural_style.main(["--content", "c.jpg", "--styles", "s.jpg", "--bit-depth", "12"])
