"""Shared fixtures. Everything the suite reads is in the repository: the bundled SqueezeNet
weights (sqz_weights.npz) and the photos and paintings of examples/inputs."""
import os
import subprocess
import sys

import numpy as np
import pytest
import scipy.io

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
INPUTS = os.path.join(ROOT, "examples", "inputs")
BUNDLED_WEIGHTS = os.path.join(ROOT, "sqz_weights.npz")
IMAGE_NAMES = ("cat.png", "coffee.png", "starry_night.jpg", "the_scream.jpg", "shipwreck.jpg")
sys.path.insert(0, ROOT)

import images  # noqa: E402


@pytest.fixture(scope="session", autouse=True)
def own_user_cache(tmp_path_factory):
    """The suite never writes into the user's cache (converted weights): its own, for every test
    and every process a test starts."""
    saved = os.environ.get("XDG_CACHE_HOME")
    os.environ["XDG_CACHE_HOME"] = str(tmp_path_factory.mktemp("user-cache"))
    yield
    if saved is None:
        del os.environ["XDG_CACHE_HOME"]
    else:
        os.environ["XDG_CACHE_HOME"] = saved


def input_path(name):
    return os.path.join(INPUTS, name)


@pytest.fixture(scope="session")
def sqz_weights():
    return BUNDLED_WEIGHTS


@pytest.fixture(scope="session")
def sqz_mat(tmp_path_factory):
    """The bundled weights written back in the layout of the original tool's sqz_notop.mat
    (name -> 1x2 cell [kernel [kh, kw, in, out], bias [1, out]])."""
    return write_sqz_mat(str(tmp_path_factory.mktemp("weights") / "sqz_notop.mat"))


def write_sqz_mat(path, layers=None):
    """A .mat of the original layout from {name: (kernel, bias)} (default: the bundled weights)."""
    if layers is None:
        with np.load(BUNDLED_WEIGHTS) as data:
            names = {key.rsplit("/", 1)[0] for key in data.files}
            layers = {name: (data[f"{name}/kernel"], data[f"{name}/bias"]) for name in names}
    cells = {}
    for name, (kernel, bias) in layers.items():
        cell = np.empty((1, 2), dtype=object)
        cell[0, 0], cell[0, 1] = kernel, np.asarray(bias).reshape(1, -1)
        cells[name] = cell
    scipy.io.savemat(path, cells)
    return path


@pytest.fixture(scope="session")
def sqz_net(sqz_weights):
    """SqueezeNet as its weights define it (--antialias off): the network the losses are judged by."""
    import squeezenet
    return squeezenet.load(sqz_weights)


@pytest.fixture(scope="session")
def sqz_run_net(sqz_weights):
    """SqueezeNet as a run with default flags builds it (anti-aliased): the network it optimised with."""
    import backends
    from settings import Settings
    return backends.load(Settings.from_flags(content="c.jpg", styles=["s.jpg"], network_type="sqz").network,
                         sqz_weights)


@pytest.fixture(scope="session")
def small_images(tmp_path_factory):
    """The photos and paintings of examples/inputs, downscaled to at most 128 px wide, in a
    folder whose path contains a space. Returns {name: path}."""
    folder = tmp_path_factory.mktemp("small images")
    out = {}
    for name in IMAGE_NAMES:
        image = images.load_image(input_path(name))
        path = str(folder / name)
        images.save_image(path, images.resize_to_width(image, min(128, image.shape[1])))
        out[name] = path
    return out


def run_tool(script, *args, cwd=None, env=None, timeout=300):
    """Run one of the command-line tools as a user would; returns CompletedProcess."""
    full_env = dict(os.environ, **(env or {}))
    return subprocess.run([sys.executable, os.path.join(ROOT, script), *map(str, args)], cwd=cwd,
                          env=full_env, capture_output=True, text=True, timeout=timeout)


def run_in_process(main, argv, capsys):
    """Run a tool's entry point (its main, through errors.run_cli) in this process, as the command
    line would: (exit code, stdout, stderr)."""
    import errors
    try:
        errors.run_cli(main, [str(a) for a in argv])
        code = 0
    except SystemExit as e:
        code = e.code
    out = capsys.readouterr()
    return code, out.out, out.err


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
