"""Shared fixtures. Real images and SqueezeNet weights come from ../shared beside the
repository; with CI=true a missing ../shared fails the tests that need it (never a skip)."""
import os
import subprocess
import sys

import numpy as np
import pytest
import scipy.io

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHARED = os.environ.get("NEURAL_STYLE_SHARED", os.path.join(os.path.dirname(ROOT), "shared"))
sys.path.insert(0, ROOT)

import images  # noqa: E402


def shared_path(*parts):
    path = os.path.join(SHARED, *parts)
    if not os.path.exists(path):
        message = f"{path} is missing: the tests read real images and weights from ../shared"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(message)
        pytest.skip(message)
    return path


@pytest.fixture(scope="session")
def sqz_weights():
    return shared_path("weights", "sqz_notop.mat")


@pytest.fixture(scope="session")
def sqz_net(sqz_weights):
    import squeezenet
    return squeezenet.load(sqz_weights)


@pytest.fixture(scope="session")
def small_images(tmp_path_factory):
    """The real photos and paintings, downscaled to at most 128 px wide, in a folder whose path
    contains a space. Returns {name: path}."""
    folder = tmp_path_factory.mktemp("small images")
    out = {}
    for name in ("tubingen.jpg", "cat.png", "starry_night.jpg", "the_scream.jpg", "shipwreck.jpg", "seated-nude.jpg"):
        image = images.load_image(shared_path("images", name))
        path = str(folder / name)
        images.save_image(path, images.resize_to_width(image, min(128, image.shape[1])))
        out[name] = path
    return out


def run_tool(script, *args, cwd=None, env=None, timeout=300):
    """Run one of the command-line tools as a user would; returns CompletedProcess."""
    full_env = dict(os.environ, **(env or {}))
    return subprocess.run([sys.executable, os.path.join(ROOT, script), *map(str, args)], cwd=cwd,
                          env=full_env, capture_output=True, text=True, timeout=timeout)


def write_vgg_mat(path, widths=(4, 6, 8, 8, 8), rng=None):
    """A MatConvNet file with the layout of imagenet-vgg-verydeep-19.mat (the same keys and
    nesting: layers{i}.weights = {kernel [w, h, in, out], bias}, normalization.averageImage)
    but narrow random layers, so tests can load the VGG path quickly."""
    import vgg
    rng = rng or np.random.default_rng(0)
    layers = np.empty((1, len(vgg.LAYERS)), dtype=object)
    in_channels = 3
    for i, name in enumerate(vgg.LAYERS):
        if name.startswith("conv"):
            out = widths[int(name[4]) - 1]
            kernel = (rng.standard_normal((3, 3, in_channels, out)) * np.sqrt(2.0 / (9 * in_channels))).astype(np.float32)
            bias = (rng.standard_normal((1, out)) * 0.01).astype(np.float32)
            cell = np.empty((1, 2), dtype=object)
            cell[0, 0], cell[0, 1] = kernel, bias
            layers[0, i] = {"weights": cell, "pad": np.ones((1, 4)), "type": "conv", "name": name,
                            "stride": np.ones((1, 2))}
            in_channels = out
        else:
            layers[0, i] = {"type": name[:4].rstrip("0123456789_"), "name": name}
    mean_image = np.tile(np.array([123.68, 116.779, 103.939], dtype=np.float32), (8, 8, 1))
    scipy.io.savemat(path, {"layers": layers,
                            "normalization": {"averageImage": mean_image, "keepAspect": 1}})
    return path
