"""Weights files: loading both networks, the lookup order of SPEC section 2, downloads through
tf.keras.utils.get_file (checked against a file:// origin, since these machines are offline),
and clear errors for missing or wrong files."""
import hashlib
import os
import shutil

import numpy as np
import pytest
import scipy.io
import tensorflow as tf

import network
import squeezenet
import vgg
from conftest import write_vgg_mat
from errors import ToolError


def test_squeezenet_real_weights_shapes(sqz_net):
    feats = sqz_net.features(tf.zeros([1, 64, 80, 3]), sqz_net.STYLE_LAYERS)
    assert list(feats) == list(squeezenet.FEATURE_LAYERS) and len(feats) == 17
    assert feats["conv1"].shape == (1, 31, 39, 64)
    assert feats["fire9/expand3x3"].shape[-1] == 256
    np.testing.assert_allclose(sqz_net.mean_pixel, [122.679, 116.669, 104.006], rtol=1e-6)


def test_squeezenet_features_are_meaningful(sqz_net, small_images):
    """Real weights: a photo and its mirror image have similar deep style statistics, a
    painting has different ones (random weights would not separate them reliably)."""
    import images
    photo = images.load_image(small_images["tubingen.jpg"]).astype(np.float32)
    painting = images.resize(images.load_image(small_images["starry_night.jpg"]), photo.shape[:2]).astype(np.float32)

    def mean_act(x):
        return sqz_net.features(tf.constant(sqz_net.preprocess(x)[None]), ["fire9/expand3x3"])["fire9/expand3x3"].numpy().mean(axis=(0, 1, 2))
    a, b, c = mean_act(photo), mean_act(photo[:, ::-1].copy()), mean_act(painting)
    assert np.linalg.norm(a - b) < 0.5 * np.linalg.norm(a - c)


def test_vgg_file_of_the_matconvnet_layout_loads(tmp_path):
    path = write_vgg_mat(str(tmp_path / "vgg.mat"))
    net = vgg.load(path, "avg")
    assert net.mean_pixel == pytest.approx([123.68, 116.779, 103.939])
    feats = net.features(tf.zeros([1, 32, 48, 3]), net.STYLE_LAYERS + net.CONTENT_LAYERS)
    assert feats["relu1_1"].shape == (1, 32, 48, 4)
    assert feats["relu5_2"].shape == (1, 2, 3, 8)
    # MatConvNet kernels are [w, h, in, out]: the loader transposes them.
    raw = scipy.io.loadmat(path)["layers"][0][0][0][0][0][0][0]
    np.testing.assert_array_equal(net.weights["conv1_1"][0].numpy(), np.transpose(raw, (1, 0, 2, 3)))


def test_pooling_flag_changes_the_network(tmp_path, sqz_weights):
    path = write_vgg_mat(str(tmp_path / "vgg.mat"))
    x = tf.random.stateless_uniform([1, 32, 32, 3], seed=(1, 2), maxval=100.0)
    for net_max, net_avg, layer in ((vgg.load(path, "max"), vgg.load(path, "avg"), "relu2_1"),
                                    (squeezenet.load(sqz_weights, "max"), squeezenet.load(sqz_weights, "avg"),
                                     "fire2/expand1x1")):
        a = net_max.features(x, [layer])[layer].numpy()
        b = net_avg.features(x, [layer])[layer].numpy()
        assert not np.allclose(a, b)


@pytest.mark.parametrize("content", [b"not a mat file at all", b""])
def test_unreadable_weights_file_is_a_clear_error(tmp_path, content):
    path = tmp_path / "bad.mat"
    path.write_bytes(content)
    with pytest.raises(ToolError, match="not a readable MATLAB .mat file"):
        squeezenet.load(str(path))


def test_wrong_shapes_and_missing_layers_are_named(tmp_path, sqz_weights):
    data = {k: v for k, v in scipy.io.loadmat(sqz_weights).items() if not k.startswith("__")}
    broken = dict(data)
    del broken["fire7/expand3x3"]
    scipy.io.savemat(tmp_path / "missing.mat", broken)
    with pytest.raises(ToolError, match="no layer fire7/expand3x3"):
        squeezenet.load(str(tmp_path / "missing.mat"))
    broken = dict(data)
    kernel, bias = broken["fire4/squeeze1x1"][0]
    cell = np.empty((1, 2), dtype=object)
    cell[0, 0], cell[0, 1] = kernel[:, :, :100, :], bias
    broken["fire4/squeeze1x1"] = cell
    scipy.io.savemat(tmp_path / "shapes.mat", broken)
    with pytest.raises(ToolError, match="fire4/squeeze1x1"):
        squeezenet.load(str(tmp_path / "shapes.mat"))
    # A SqueezeNet file is not a VGG file.
    with pytest.raises(ToolError, match="not a MatConvNet VGG19 file"):
        vgg.load(sqz_weights)


@pytest.fixture
def isolated_lookup(tmp_path, monkeypatch):
    """A lookup with an empty repository root, cache and models folder of its own."""
    repo, cache, models = tmp_path / "repo", tmp_path / "cache", tmp_path / "models"
    for d in (repo, models):
        d.mkdir()
    monkeypatch.setattr(network, "REPO_ROOT", str(repo))
    monkeypatch.setattr(network, "cache_dir", lambda: str(cache))
    monkeypatch.setenv(network.MODELS_ENV, str(models))
    return repo, cache, models


def sha256(path):
    return hashlib.sha256(open(path, "rb").read()).hexdigest()


def test_lookup_order(isolated_lookup, sqz_weights, tmp_path):
    repo, cache, models = isolated_lookup
    source = network.WeightsSource("w.mat", "file:///nonexistent/w.mat", sha256(sqz_weights))
    explicit = tmp_path / "explicit.mat"
    for folder in (repo, models):
        shutil.copy(sqz_weights, folder / "w.mat")
    shutil.copy(sqz_weights, explicit)
    assert network.find_weights(source, str(explicit)) == str(explicit)
    assert network.find_weights(source) == str(models / "w.mat")
    os.remove(models / "w.mat")
    assert network.find_weights(source) == str(repo / "w.mat")
    os.remove(repo / "w.mat")
    cache.mkdir()
    shutil.copy(sqz_weights, cache / "w.mat")
    assert network.find_weights(source) == str(cache / "w.mat")


def test_download_into_the_cache_checks_the_hash(isolated_lookup, sqz_weights, tmp_path):
    _, cache, _ = isolated_lookup
    origin = "file://" + os.path.abspath(sqz_weights)
    good = network.WeightsSource("sqz_notop.mat", origin, squeezenet.SOURCE.file_hash)
    path = network.find_weights(good)
    assert path == str(cache / "sqz_notop.mat") and sha256(path) == squeezenet.SOURCE.file_hash
    bad = network.WeightsSource("other.mat", origin, "0" * 64)
    with pytest.raises(ToolError, match="other.mat"):
        network.find_weights(bad)
    assert not (cache / "other.mat").exists()  # a file that failed its checksum is not kept


def test_offline_with_no_file_names_file_places_and_source(isolated_lookup):
    repo, cache, models = isolated_lookup
    with pytest.raises(ToolError) as error:
        network.find_weights(network.WeightsSource("absent.mat", "file:///nonexistent/absent.mat", "0" * 64))
    message = str(error.value)
    for text in ("absent.mat", str(repo), str(cache), str(models), "file:///nonexistent/absent.mat", "--network-file"):
        assert text in message
    with pytest.raises(ToolError, match="not found: /no/such.mat"):
        network.find_weights(squeezenet.SOURCE, "/no/such.mat")
