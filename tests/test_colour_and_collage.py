"""luma_transfer and build_collage (their docstrings): every colour mode against an independent
computation on real images, the collage geometry, and both standalone tools end to end in a
folder whose path contains a space."""
import math
import shutil

import numpy as np
import pytest
from PIL import Image

import images
from build_collage import build_collage
from conftest import run_tool
from luma_transfer import colortransfer
from names import with_suffix


@pytest.fixture(scope="module")
def pair(small_images):
    content = images.load_image(small_images["cat.png"])
    styled = images.resize(images.load_image(small_images["starry_night.jpg"]), content.shape[:2])
    return content, styled


def pil(array, mode):
    return np.asarray(Image.fromarray(array).convert(mode))


def reference_hist_match(source, reference):
    """Histogram matching written out value by value: for each of the 256 source levels, the
    smallest reference level whose CDF reaches the source level's CDF."""
    s_cdf = np.cumsum(np.bincount(source.ravel(), minlength=256)) / source.size
    r_cdf = np.cumsum(np.bincount(reference.ravel(), minlength=256)) / reference.size
    table = np.zeros(256, dtype=np.uint8)
    for level in range(256):
        table[level] = next(v for v in range(256) if r_cdf[v] >= s_cdf[level] - 1e-9)
    return table[source]


def test_yuv_takes_luma_from_the_styled_and_chroma_from_the_original(pair):
    content, styled = pair
    out = colortransfer(content, styled, "yuv")
    expected = np.dstack([pil(styled, "YCbCr")[:, :, :1], pil(content, "YCbCr")[:, :, 1:]])
    np.testing.assert_array_equal(out, np.asarray(Image.fromarray(expected, "YCbCr").convert("RGB")))
    assert np.abs(pil(out, "YCbCr")[:, :, 0].astype(int) - pil(styled, "YCbCr")[:, :, 0]).mean() < 1.5


def test_hsv_hue_from_original_min_saturation_value_from_styled(pair):
    content, styled = pair
    o, s = pil(content, "HSV"), pil(styled, "HSV")
    expected = np.dstack([o[:, :, 0], np.minimum(o[:, :, 1], s[:, :, 1]), s[:, :, 2]])
    np.testing.assert_array_equal(colortransfer(content, styled, "hsv"),
                                  np.asarray(Image.fromarray(expected, "HSV").convert("RGB")))


def test_hist_rgb_and_hist_hsv_match_reference_cdfs(pair):
    content, styled = pair
    expected_rgb = np.dstack([reference_hist_match(styled[:, :, c], content[:, :, c]) for c in range(3)])
    np.testing.assert_array_equal(colortransfer(content, styled, "hist-rgb"), expected_rgb)
    o, s = pil(content, "HSV"), pil(styled, "HSV")
    expected_hsv = np.dstack([reference_hist_match(s[:, :, c], o[:, :, c]) for c in range(3)])
    np.testing.assert_array_equal(colortransfer(content, styled, "hist"),
                                  np.asarray(Image.fromarray(expected_hsv, "HSV").convert("RGB")))
    # The matched image's histogram follows the original's: its per-channel means are close.
    assert np.abs(expected_rgb.mean(axis=(0, 1)) - content.mean(axis=(0, 1))).max() < 3


def test_distr_matches_mean_and_std_in_hsv(pair):
    content, styled = pair
    o, s = pil(content, "HSV").astype(float), pil(styled, "HSV").astype(float)
    matched = (s - s.mean((0, 1))) / s.std((0, 1)) * o.std((0, 1)) + o.mean((0, 1))
    expected = np.asarray(Image.fromarray(np.clip(np.round(matched), 0, 255).astype(np.uint8), "HSV").convert("RGB"))
    np.testing.assert_array_equal(colortransfer(content, styled, "distr"), expected)


def test_original_is_resized_to_the_styled_size(pair):
    content, styled = pair
    out = colortransfer(images.resize(content, (40, 50)), styled, "yuv")
    assert out.shape == styled.shape


@pytest.mark.parametrize("size", [(85, 128), (90, 127), (31, 33)])
def test_collage_geometry(pair, size):
    content, styled = pair
    result = images.resize(styled, size)
    style = images.resize(styled, (60, 200))  # a wide style: crop and scale differ
    h, w = size
    for mode, suffix in (("crop", "_combc"), ("scale", "_combs")):
        collage, got_suffix = build_collage(result, content, style, mode)
        assert got_suffix == suffix
        assert collage.shape == (math.ceil(1.5 * h), w, 3)
        np.testing.assert_array_equal(collage[:h], result)
        half_h, half_w = math.ceil(1.5 * h) - h, w // 2
        np.testing.assert_array_equal(collage[h:, :half_w], images.resize(content, (half_h, half_w)))
    crop, _ = build_collage(result, content, style, "crop")
    scale, _ = build_collage(result, content, style, "scale")
    box_crop, box_scale = crop[h:, w // 2:], scale[h:, w // 2:]
    assert (box_crop.sum(axis=2) > 0).mean() > 0.95          # crop fills the box
    assert (box_scale.sum(axis=2) == 0).mean() > 0.3         # scale leaves bars around a wide style
    same_aspect = images.resize(styled, (h, w))
    assert build_collage(result, content, same_aspect, "auto")[1] in ("_combs", "_combc")
    assert build_collage(result, content, style, "auto")[1] == "_combc"
    assert build_collage(result, content, images.resize(styled, (64, 2 * 64 * (w - w // 2) // (math.ceil(1.5 * h) - h) // 2)), "auto")[1] == "_combs"


@pytest.fixture
def stylized_folder(tmp_path, small_images, pair):
    """A folder with a space in its path holding a content, a style and a stylized file named
    as neural_style.py names it (a plain result and a collage)."""
    folder = tmp_path / "my results"
    folder.mkdir()
    content, styled = pair
    shutil.copy(small_images["cat.png"], folder / "cat.png")
    shutil.copy(small_images["starry_night.jpg"], folder / "starry_night.jpg")
    name = "t_cat.png_starry_night.jpg_lbfgs0010_h1_pmax_sw00500_swe10_cwe10_as000_sqz.png"
    images.save_image(str(folder / name), styled)
    collage, _ = build_collage(styled, content, images.load_image(small_images["starry_night.jpg"]), "crop")
    (folder / "collages").mkdir()
    images.save_image(str(folder / "collages" / name), collage)
    return folder, name


@pytest.mark.parametrize("mode, suffix", [("yuv", "_pcyuv"), ("hsv", "_pchsv"), ("hist", "_pchist"),
                                          ("hist-rgb", "_pchistrgb"), ("distr", "_pcdistr")])
def test_luma_transfer_cli(stylized_folder, pair, mode, suffix):
    folder, name = stylized_folder
    result = run_tool("luma_transfer.py", "--in", folder / name, "--mode", mode)
    assert result.returncode == 0, result.stderr
    out = folder / with_suffix(name, suffix)
    content, styled = pair
    np.testing.assert_array_equal(images.load_image(str(out)), colortransfer(content, styled, mode))


def test_luma_transfer_cli_collage_and_explicit_paths(stylized_folder, pair, tmp_path):
    folder, name = stylized_folder
    content, styled = pair
    # A collage: only the top part is recoloured, the strip below is kept. Its content is not
    # beside it: without --content-path the tool says so.
    collage = folder / "collages" / name
    missing = run_tool("luma_transfer.py", "--in", collage)
    assert missing.returncode == 1 and "cat.png not found" in missing.stderr
    result = run_tool("luma_transfer.py", "--in", collage, "--content-path", folder)
    assert result.returncode == 0, result.stderr
    before = images.load_image(str(collage))
    after = images.load_image(with_suffix(str(collage), "_pcyuv"))
    h = content.shape[0]
    np.testing.assert_array_equal(after[h:], before[h:])
    np.testing.assert_array_equal(after[:h], colortransfer(content, before[:h], "yuv"))
    # Explicit --content and --stylized, any names, explicit --output.
    plain = tmp_path / "result file.png"
    images.save_image(str(plain), styled)
    result = run_tool("luma_transfer.py", "--content", folder / "cat.png", "--stylized", plain,
                      "--mode", "hsv", "--output", tmp_path / "out put.png")
    assert result.returncode == 0, result.stderr
    np.testing.assert_array_equal(images.load_image(str(tmp_path / "out put.png")), colortransfer(content, styled, "hsv"))


def test_build_collage_cli(stylized_folder, pair, small_images, tmp_path):
    folder, name = stylized_folder
    content, styled = pair
    styles = tmp_path / "style folder"
    styles.mkdir()
    shutil.move(folder / "starry_night.jpg", styles / "starry_night.jpg")
    result = run_tool("build_collage.py", "--in", folder / name, "--styles-path", styles)
    assert result.returncode == 0, result.stderr
    out = images.load_image(str(folder / with_suffix(name, "_combs")))
    expected, _ = build_collage(styled, content, images.load_image(small_images["starry_night.jpg"]), "scale")
    np.testing.assert_array_equal(out, expected)
    result = run_tool("build_collage.py", "--in", folder / name, "--styles-path", styles, "--mode", "crop")
    assert result.returncode == 0 and (folder / with_suffix(name, "_combc")).exists()
    result = run_tool("build_collage.py", "--in", folder / name)
    assert result.returncode == 1 and "starry_night.jpg not found" in result.stderr and "Traceback" not in result.stderr
