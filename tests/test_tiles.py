"""Tiled levels (tiles.py, --tile-size): the grid, the blending windows, shared style targets,
when a level is tiled, and tiled runs of the command line on real images and weights."""
import json
import re

import numpy as np
import pytest
import tensorflow as tf

import hierarchy
import images
import memory
import neural_style
import squeezenet
import tiles
from conftest import input_path, run_tool
from errors import ToolError, UsageError
from losses import StyleTargets
from settings import LossWeights


@pytest.mark.parametrize("length, tile_size", [(255, 128), (384, 128), (1000, 256), (8000, 1024), (100, 128)])
def test_grid_covers_the_image_with_equal_overlapping_tiles(length, tile_size):
    overlap = tiles.overlap_for(tile_size)
    spans = tiles.axis_spans(length, tile_size, overlap)
    assert spans[0][0] == 0 and spans[-1][0] + spans[-1][1] == length
    assert len({size for _, size in spans}) == 1 and spans[0][1] <= tile_size
    for (s1, z1), (s2, _) in zip(spans, spans[1:]):
        assert s1 + z1 - s2 >= overlap  # neighbours share at least the overlap
    for (s1, z1), (s3, _) in zip(spans, spans[2:]):
        assert s1 + z1 <= s3  # tiles two apart never meet: a colour group's tiles are disjoint
    # Few tiles: the overlap costs about a fifth more pixels, not a multiple.
    assert sum(size for _, size in spans) <= 1.25 * length + tile_size // 10


def test_colour_groups_never_overlap_and_windows_blend_to_a_convex_combination():
    height, width = 255, 384
    grid = tiles.grid(height, width, 128)
    groups = tiles.colour_groups(grid)
    assert len(groups) == 4 and sum(map(len, groups)) == len(grid) == 12
    for group in groups:
        covered = np.zeros((height, width), int)
        for t in group:
            covered[t.y:t.y + t.height, t.x:t.x + t.width] += 1
        assert covered.max() == 1
    # Blending each tile's own constant value in visiting order: every pixel ends a convex
    # combination of the tiles covering it (no trace of the value before), changing smoothly.
    windows = tiles.blend_windows(grid)
    image = np.full((height, width, 1), -1000.0)
    weight_of_new = np.zeros((height, width, 1))
    for i, t in enumerate(grid):
        region = (slice(t.y, t.y + t.height), slice(t.x, t.x + t.width))
        w = windows[t]
        assert w.min() >= 0 and w.max() == 1
        image[region] = (1 - w) * image[region] + w * i
        weight_of_new[region] = (1 - w) * weight_of_new[region] + w
    np.testing.assert_allclose(weight_of_new, 1.0)
    assert image.min() >= 0
    # No tile's edge reaches the image: its outer quarter of each overlap carries no weight.
    for t in grid:
        if t.col % 2 == 1:
            assert windows[t][:, 0].max() == 0
    # The switch from one tile to the next is a ramp, not a step.
    assert np.abs(np.diff(tiles._ramp(40))).max() < 0.1


def test_pass_schedule_keeps_iterations_and_checkpoints():
    assert tiles.pass_ends(120) == [50, 100, 120]
    assert tiles.pass_ends(100, 30) == [30, 50, 60, 90, 100]
    assert tiles.pass_ends(40) == [40]


def test_style_targets_in_pieces_match_the_whole_image(sqz_net):
    style = sqz_net.preprocess(images.load_image(input_path("starry_night.jpg")).astype(np.float32))
    weights = LossWeights(style_distr_weight=10.0, ashift=20.0)
    whole = StyleTargets(sqz_net, [style], [1.0], weights)
    one_piece = StyleTargets(sqz_net, [style], [1.0], weights, chunk=256)
    pieces = StyleTargets(sqz_net, [style], [1.0], weights, chunk=128)  # 2 x 2 pieces

    def relative_error(approx, exact):
        return np.abs(approx.numpy() - exact.numpy()).sum() / np.abs(exact.numpy()).sum()
    for layer in ("conv1", "fire5/expand3x3", "fire9/expand1x1"):
        np.testing.assert_array_equal(whole.style[0][layer].numpy(), one_piece.style[0][layer].numpy())
        for exact, approx in zip(whole.distr[0][layer], one_piece.distr[0][layer]):
            np.testing.assert_array_equal(exact.numpy(), approx.numpy())
        # In pieces, only the positions near the pieces' borders see different surroundings.
        assert relative_error(pieces.style[0][layer], whole.style[0][layer]) < 0.2
        for exact, approx in zip(whole.distr[0][layer], pieces.distr[0][layer]):
            assert relative_error(approx, exact) < 0.3  # fire9 sees 7x7 positions a piece


def test_when_a_level_is_tiled(tmp_path, monkeypatch):
    levels = [level[:2] for level in hierarchy.levels(3000, 4000, 100, 2)]
    weights = input_path("../../sqz_weights.npz")
    # Forced: every level larger than the tile size; 0: never.
    plan, _ = memory.plan_tiles(squeezenet.NETWORK, levels, "lbfgs", weights, 1500)
    assert plan == [1500, 1500]
    plan, _ = memory.plan_tiles(squeezenet.NETWORK, [level[:2] for level in hierarchy.levels(1000, 1400, 10, 2)],
                                "lbfgs", weights, 1000)
    assert plan == [1000, None]
    # Automatic: only what does not fit whole, with the largest tile that fits; one line says so.
    whole = memory.level_memory(squeezenet.NETWORK, levels[0], "lbfgs")
    small = memory.level_memory(squeezenet.NETWORK, levels[1], "lbfgs")
    monkeypatch.setattr(memory, "available_memory", lambda: (whole + small) / 2)
    said = []
    plan, estimate = memory.plan_tiles(squeezenet.NETWORK, levels, "lbfgs", weights, None, log=said.append)
    assert plan[1] is None and plan[0] in memory.AUTO_TILE_SIZES and estimate <= (whole + small) / 2
    assert len(said) == 1 and f"tiles of at most {plan[0]}x{plan[0]} px" in said[0]
    bigger = [t for t in memory.AUTO_TILE_SIZES if t > plan[0] and t < 4000]
    assert all(memory.level_memory(squeezenet.NETWORK, levels[0], "lbfgs", t) > (whole + small) / 2
               for t in bigger)
    # Memory that does not grow with the image: an 8000x6000 level in 1024 px tiles needs
    # less than a sixth of what it needs whole, mostly its image buffers.
    big = (6000, 8000)
    tiled = memory.level_memory(squeezenet.NETWORK, big, "lbfgs", 1024)
    assert tiled < memory.level_memory(squeezenet.NETWORK, big, "lbfgs") / 6
    assert tiled < memory.FULL_IMAGE_COPIES * 12 * 48e6 + memory.level_memory(squeezenet.NETWORK, (1024, 1024),
                                                                                "lbfgs")
    # With --tile-size 0, or when not even the smallest tile fits: refused with the advice.
    monkeypatch.setattr(memory, "available_memory", lambda: 2**20)
    for tile_size in (None, 0):
        with pytest.raises(ToolError, match="--tile-size"):
            memory.plan_tiles(squeezenet.NETWORK, levels, "lbfgs", weights, tile_size)


def seam_contrast(image, axis):
    """Mean absolute difference between each pair of neighbouring rows (axis 0) or columns."""
    return np.abs(np.diff(image.astype(float), axis=axis)).mean(axis=(1 - axis, 2))


@pytest.mark.slow  # the command line end to end
def test_tiled_run_has_no_seams_and_keeps_the_quality(tmp_path):
    """384x255, 128 px tiles (12 tiles) against the same run whole, real images and weights."""
    common = ["--content", input_path("cat.png"), "--styles", input_path("starry_night.jpg"),
              "--network-type", "sqz", "--width", 384, "--iterations", 60, "--no-collage", "--seed", 3]
    runs = {}
    for tile_size in (0, 128):
        out = tmp_path / f"tile{tile_size}.png"
        result = run_tool("neural_style.py", *common, "--tile-size", tile_size, "--output", out, cwd=tmp_path)
        assert result.returncode == 0, result.stderr
        runs[tile_size] = (images.load_image(str(out)), result)
    tiled, result = runs[128]
    assert "tiled: 12 tiles of 108x96 px" in result.stderr
    assert json.loads(images.read_params(str(tmp_path / "tile128.png")))["tiled_levels"] == {"384x255": 128}
    # Seams: across each tile border (the two edges of every overlap and the middle, where one
    # tile hands over to the next), the mean absolute difference between neighbouring pixels is
    # within the range of that measure over the image's other rows/columns (10% above its
    # maximum allowed: the cat's eyes make rows 92-97 the most contrasted of the untiled result
    # too), and relative to the untiled result at the same rows no border stands out either.
    grid = tiles.grid(255, 384, 128)
    for axis, spans in ((0, sorted({(t.y, t.height) for t in grid})), (1, sorted({(t.x, t.width) for t in grid}))):
        contrast = seam_contrast(tiled, axis)  # contrast[i]: between rows (columns) i and i + 1
        relative = contrast / seam_contrast(runs[0][0], axis)
        borders = set()
        for (start, size), (next_start, _) in zip(spans, spans[1:]):
            end = start + size
            borders |= {next_start - 1, (next_start + end) // 2 - 1, end - 1}
        others = np.delete(contrast, sorted(borders))
        assert others.min() <= contrast[sorted(borders)].min() and contrast[sorted(borders)].max() <= 1.1 * others.max()
        others = np.delete(relative, sorted(borders))
        assert others.min() <= relative[sorted(borders)].min() and relative[sorted(borders)].max() <= 1.1 * others.max()
    # Quality: the whole image's loss of the tiled result, against the untiled one's.
    net = squeezenet.load(input_path("../../sqz_weights.npz"))
    content = images.resize_to_width(images.load_image(input_path("cat.png")), 384).astype(np.float32)
    style = images.load_image(input_path("starry_night.jpg")).astype(np.float32)
    style = images.resize(style, images.size_at_width(style.shape, 384))
    from stylize import Stylizer
    stylizer = Stylizer(net, content, [style], [1.0], LossWeights())

    def whole_loss(image):
        return stylizer.loss_and_grad(tf.constant(net.preprocess(image.astype(np.float32))[None]))[0].numpy()[3]
    untiled = whole_loss(runs[0][0])
    # Both keep the pixel range, so both files hold what was optimised: the tiles' gap to the whole
    # run is their own (1.26x here at 60 iterations; when the whole run's file lost its values
    # outside 0..255 to clipping, the tiled file was the lower of the two).
    assert whole_loss(tiled) < 1.35 * untiled
    assert whole_loss(tiled) < 0.5 * whole_loss(content)  # and it did stylise


@pytest.mark.slow  # the command line end to end
@pytest.mark.parametrize("optim", ["adam", "cg"])
def test_tiled_checkpoints_colours_and_optimizers(tmp_path, optim):
    out = tmp_path / "out.png"
    result = run_tool("neural_style.py", "--content", input_path("coffee.png"), "--styles",
                      input_path("the_scream.jpg"), "--network-type", "sqz", "--width", 200, "--tile-size", 128,
                      "--optim", optim, "--iterations", 60, "--checkpoint-iterations", 50, "--print-iterations", 50,
                      "--checkpoint-output", tmp_path / "ck_%s.png", "--preserve-colors", "out",
                      "--output", out, "--no-collage", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "tiled: 4 tiles" in result.stderr
    assert sorted(p.name for p in tmp_path.glob("ck_*.png")) == ["ck_0133x0200-0050.png", "ck_0133x0200-0060.png"]
    assert images.load_image(str(tmp_path / "ck_0133x0200-0050.png")).shape == (133, 200, 3)
    totals = [float(v) for v in re.findall(r"^total loss: (\S+)$", result.stdout, re.M)]
    assert len(totals) == 3 and totals[-1] < 0.7 * totals[0]  # start, at 50, end
    styled = images.load_image(str(out))
    assert styled.shape == (133, 200, 3)
    from PIL import Image
    content = images.resize_to_width(images.load_image(input_path("coffee.png")), 200)
    cbcr = lambda x: np.asarray(Image.fromarray(x).convert("YCbCr"), dtype=float)[:, :, 1:]  # noqa: E731
    assert np.abs(cbcr(styled) - cbcr(content)).mean() < 2.0


def test_tile_size_flag_is_validated():
    with pytest.raises(UsageError, match="--tile-size"):
        neural_style.main(["--content", "c.jpg", "--styles", "s.jpg", "--tile-size", "64"])


@pytest.mark.slow  # the command line end to end
def test_interrupting_a_tiled_run_writes_the_whole_best_image(tmp_path):
    """Ctrl-C in the middle of a tiled level: the whole image (every tile's best so far blended
    in) is written, marked partial; the checkpoints already written stay."""
    import os
    import signal
    import subprocess
    import sys
    import time
    from conftest import ROOT
    out = tmp_path / "out.png"
    process = subprocess.Popen(
        [sys.executable, os.path.join(ROOT, "neural_style.py"), "--content", input_path("coffee.png"),
         "--styles", input_path("the_scream.jpg"), "--network-type", "sqz", "--width", "200", "--tile-size", "128",
         "--iterations", "100000", "--checkpoint-iterations", "50", "--checkpoint-output", str(tmp_path / "ck%s.png"),
         "--output", str(out)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=tmp_path)
    deadline = time.monotonic() + 240
    while not list(tmp_path.glob("ck*.png")) and time.monotonic() < deadline and process.poll() is None:
        time.sleep(0.2)  # until the first pass over all tiles has ended and been checkpointed
    time.sleep(1.0)  # now inside the second pass, in some tile
    process.send_signal(signal.SIGINT)
    stdout, stderr = process.communicate(timeout=60)
    assert process.returncode == 130, stderr
    assert "Traceback" not in stderr and "partial" in stderr and "tiled: 4 tiles" in stderr
    saved = images.load_image(str(out))
    assert saved.shape == (133, 200, 3)
    assert json.loads(images.read_params(str(out)))["partial"] == "interrupted"
    assert [p.name for p in tmp_path.glob("ck*.png")] == ["ck0133x0200-0050.png"]
    checkpoint = images.load_image(str(tmp_path / "ck0133x0200-0050.png"))
    # The partial image carries the first pass and whatever the second did: it is a stylised
    # whole, not the content, and no tile is missing (each quadrant differs from the content).
    content = images.resize_to_width(images.load_image(input_path("coffee.png")), 200).astype(float)
    for quadrant in (np.s_[:66, :100], np.s_[:66, 100:], np.s_[66:, :100], np.s_[66:, 100:]):
        assert np.abs(saved[quadrant] - content[quadrant]).mean() > 10
    assert np.abs(saved.astype(float) - checkpoint).mean() < np.abs(saved - content).mean()
    assert not list(tmp_path.glob(".tmp-*"))


def test_pooled_statistics_of_the_tiles_outside_a_group():
    """The running sums give the statistics of every tile but a group's, as computed from the
    pooled features themselves; updating one tile changes them accordingly."""
    from losses import statistics_of
    rng = np.random.default_rng(0)
    features = {name: rng.normal(3.0, 2.0, (1, h, 5, 4)).astype(np.float32)
                for name, h in (("a", 6), ("b", 3), ("c", 8))}

    def stats(f):
        return {"layer": statistics_of(tf.constant(f), 1.5)}

    def expected(names):
        f = np.concatenate([features[n].reshape(-1, 4) for n in names]).astype(np.float64)
        return len(f), (f + 1.5).T @ (f + 1.5), f.mean(0), f.var(0)

    pooled = tiles.PooledStatistics({n: stats(f) for n, f in features.items()})
    for group, rest in ((["a"], "bc"), (["b", "c"], "a"), (["c"], "ab")):
        got = pooled.outside(group)["layer"]
        for g, e in zip(got, expected(rest)):
            np.testing.assert_allclose(g, e, rtol=1e-4, atol=1e-4)
    features["b"] = rng.normal(-1.0, 0.5, (1, 7, 5, 4)).astype(np.float32)
    pooled.update("b", stats(features["b"]))
    for g, e in zip(pooled.outside(["a"])["layer"], expected("bc")):
        np.testing.assert_allclose(g, e, rtol=1e-4, atol=1e-4)
