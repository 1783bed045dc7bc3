"""No grid of dots at the network's strides in a default SqueezeNet run, for every optimiser
(--antialias, network.py); the original's network, one flag away, shows it."""
import os
import sys

import numpy as np
import pytest

import images
import neural_style
from conftest import ROOT, input_path

sys.path.append(os.path.join(ROOT, "benchmarks"))  # after the tool's modules: benchmarks/video.py is not video.py
from quality import lattice_score  # noqa: E402


def test_lattice_score_finds_a_grid_and_not_a_photo():
    """About 1 for a photo; a faint grid of dots every 4 px (a tenth of the photo's own detail)
    raises it many times at 4 and 8 px."""
    photo = images.load_image(os.path.join(ROOT, "examples", "inputs", "full", "coffee.jpg")).astype(np.float64)
    dots = np.zeros(photo.shape[:2])
    dots[::4, ::4] = 6.0
    assert lattice_score(photo, 4) < 2 and lattice_score(photo, 8) < 2
    dotted = photo + dots[..., None]
    assert lattice_score(dotted, 4) > 10 and lattice_score(dotted, 8) > 5
    assert lattice_score(np.roll(dotted, (1, 2), axis=(0, 1)), 4) == pytest.approx(lattice_score(dotted, 4), rel=0.2)


def run(tmp_path, optim, *flags):
    out = tmp_path / f"{optim}{'-'.join(flags)}.png"
    neural_style.main(["--content", input_path("cat.png"), "--styles", input_path("starry_night.jpg"),
                       "--network-type", "sqz", "--width", "256", "--iterations", "100", "--optim", optim,
                       "--no-collage", "--output", str(out), *flags])
    return images.load_image(str(out)).astype(np.float64)


@pytest.mark.slow  # two runs for each optimiser
@pytest.mark.parametrize("optim", ["lbfgs", "lbfgs-scipy", "cg", "adam"])
def test_a_default_run_has_no_dot_grid(tmp_path, optim):
    """Lattice scores at 4 and 8 px at most max(2, 1.5x the photo's own at the same size) by
    default; with --antialias off (the original's network) the grid is there."""
    photo = images.resize_to_width(images.load_image(input_path("cat.png")), 256).astype(np.float64)
    default, original = run(tmp_path, optim), run(tmp_path, optim, "--antialias", "off")
    for period in (4, 8):
        bound = max(2.0, 1.5 * lattice_score(photo, period))
        assert lattice_score(default, period) <= bound, (period, lattice_score(default, period), bound)
    assert lattice_score(original, 4) > 2 * max(2.0, 1.5 * lattice_score(photo, 4)), lattice_score(original, 4)
