"""Weights files: the bundled SqueezeNet weights and their conversion, loading both networks,
the lookup order (network.find_weights), downloads through tf.keras.utils.get_file (checked against
a file:// origin, since these machines are offline), and clear errors for missing or wrong files."""
import dataclasses
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
from conftest import BUNDLED_WEIGHTS, ROOT, run_tool, write_vgg_mat
from errors import ToolError


def test_bundled_weights_file():
    """sqz_weights.npz: float32, one kernel/bias pair per SqueezeNet v1.1 conv layer, <= 3 MB."""
    assert os.path.getsize(BUNDLED_WEIGHTS) <= 3 * 2**20
    with np.load(BUNDLED_WEIGHTS, allow_pickle=False) as data:
        arrays = {key: data[key] for key in data.files}
    layers = ["conv1"] + [f"{fire}/{part}" for fire in squeezenet.FIRES
                          for part in ("squeeze1x1", "expand1x1", "expand3x3")]
    assert sorted(arrays) == sorted(f"{layer}/{kind}" for layer in layers for kind in ("kernel", "bias"))
    assert all(a.dtype == np.float32 for a in arrays.values())
    assert arrays["conv1/kernel"].shape == (3, 3, 3, 64) and arrays["fire9/expand3x3/bias"].shape == (256,)


def test_bundled_npz_and_the_original_mat_give_identical_features(sqz_net, sqz_mat):
    """The same weights in the original tool's .mat layout load to the same network, bit for bit."""
    from_mat = squeezenet.load(sqz_mat)
    x = tf.random.stateless_uniform([1, 67, 93, 3], seed=(3, 4), minval=-120.0, maxval=130.0)
    a = sqz_net.features(x, sqz_net.STYLE_LAYERS)
    b = from_mat.features(x, from_mat.STYLE_LAYERS)
    for layer in sqz_net.STYLE_LAYERS:
        np.testing.assert_array_equal(a[layer].numpy(), b[layer].numpy())


@pytest.mark.slow  # the conversion script end to end
def test_conversion_script_reproduces_the_bundled_file(sqz_mat, tmp_path, capsys):
    """convert_sqz_weights.py turns an original-layout .mat into exactly the bundled arrays, and
    --check tells a file that differs. (CI also checks the bundled file against ../shared's
    real sqz_notop.mat.) The conversion runs as a user runs it; the two checks in this process,
    through the same entry point (each process costs seconds of TensorFlow's start)."""
    import convert_sqz_weights
    from errors import run_cli
    out = tmp_path / "converted.npz"
    result = run_tool("convert_sqz_weights.py", sqz_mat, "--output", out)
    assert result.returncode == 0, result.stderr
    with np.load(out) as made, np.load(BUNDLED_WEIGHTS) as bundled:
        assert sorted(made.files) == sorted(bundled.files)
        for key in bundled.files:
            np.testing.assert_array_equal(made[key], bundled[key])
    run_cli(convert_sqz_weights.main, [sqz_mat, "--check", BUNDLED_WEIGHTS])  # exits only on failure
    assert "equals the conversion" in capsys.readouterr().out
    with np.load(out) as made:
        changed = {key: made[key] for key in made.files}
    changed["fire5/expand1x1/bias"] = changed["fire5/expand1x1/bias"] + 1e-3
    np.savez(tmp_path / "changed.npz", **changed)
    with pytest.raises(SystemExit) as exited:
        run_cli(convert_sqz_weights.main, [sqz_mat, "--check", str(tmp_path / "changed.npz")])
    assert exited.value.code == 1 and "fire5/expand1x1/bias" in capsys.readouterr().err


def test_bundled_weights_are_found_without_flags_or_network(monkeypatch):
    """With no --network-file and no $NEURAL_STYLE_MODELS, SqueezeNet uses the bundled file:
    no cache, no download."""
    monkeypatch.delenv(network.MODELS_ENV, raising=False)
    monkeypatch.setattr(network, "cache_dir", lambda: pytest.fail("the cache was consulted"))
    assert network.find_weights(squeezenet.SOURCE) == os.path.join(ROOT, "sqz_weights.npz")


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
    photo = images.load_image(small_images["coffee.png"]).astype(np.float32)
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


@pytest.mark.parametrize("name, content, message", [
    ("bad.mat", b"not a mat file at all", "not a readable MATLAB .mat file"),
    ("bad.mat", b"", "not a readable MATLAB .mat file"),
    ("bad.npz", b"not an npz file at all", "not a readable NumPy .npz file"),
    ("bad.npz", b"PK\x03\x04 truncated zip", "not a readable NumPy .npz file")])
def test_unreadable_weights_file_is_a_clear_error(tmp_path, name, content, message):
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(ToolError, match=message):
        squeezenet.load(str(path))


def test_npz_goes_through_the_same_validation(tmp_path):
    with np.load(BUNDLED_WEIGHTS) as data:
        arrays = {key: data[key] for key in data.files}
    missing = {k: v for k, v in arrays.items() if not k.startswith("fire7/expand3x3/")}
    np.savez(tmp_path / "missing.npz", **missing)
    with pytest.raises(ToolError, match="no layer fire7/expand3x3"):
        squeezenet.load(str(tmp_path / "missing.npz"))
    no_bias = {k: v for k, v in arrays.items() if k != "fire2/squeeze1x1/bias"}
    np.savez(tmp_path / "no_bias.npz", **no_bias)
    with pytest.raises(ToolError, match="fire2/squeeze1x1 is not a \\[kernel, bias\\] pair"):
        squeezenet.load(str(tmp_path / "no_bias.npz"))
    shapes = dict(arrays, **{"fire4/squeeze1x1/kernel": arrays["fire4/squeeze1x1/kernel"][:, :, :100]})
    np.savez(tmp_path / "shapes.npz", **shapes)
    with pytest.raises(ToolError, match="fire4/squeeze1x1 has kernel"):
        squeezenet.load(str(tmp_path / "shapes.npz"))


def test_wrong_shapes_and_missing_layers_are_named(tmp_path, sqz_mat):
    sqz_weights = sqz_mat
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


def test_vgg_file_is_read_once_then_from_its_converted_copy(tmp_path, monkeypatch):
    """The .mat is converted on first use into the user cache, under its SHA-256; later runs
    read the copy (no .mat parsing); a changed file or a damaged copy is converted again."""
    monkeypatch.setattr(network, "cache_dir", lambda: str(tmp_path / "cache"))
    path = write_vgg_mat(str(tmp_path / "vgg.mat"))
    first = vgg.load(path)
    converted = tmp_path / "cache" / network.CONVERTED_FOLDER / f"vgg19-{sha256(path)}"
    assert (converted / "conv1_1.kernel.npy").is_file()

    def no_mat(*_):
        raise AssertionError("the .mat was read again")
    monkeypatch.setattr(vgg, "read_mat", no_mat)
    again = vgg.load(path)
    for name, (kernel, bias) in first.weights.items():
        np.testing.assert_array_equal(again.weights[name][0].numpy(), kernel.numpy())
        np.testing.assert_array_equal(again.weights[name][1].numpy(), bias.numpy())
    np.testing.assert_array_equal(again.mean_pixel, first.mean_pixel)

    monkeypatch.undo()
    monkeypatch.setattr(network, "cache_dir", lambda: str(tmp_path / "cache"))
    write_vgg_mat(path, rng=np.random.default_rng(7))  # new weights: a new size or time, a new hash
    os.utime(path, ns=(1, 1))
    changed = vgg.load(path)
    assert not np.array_equal(changed.weights["conv1_1"][0].numpy(), first.weights["conv1_1"][0].numpy())
    assert (tmp_path / "cache" / network.CONVERTED_FOLDER / f"vgg19-{sha256(path)}" / "names.json").is_file()

    for copy in (tmp_path / "cache" / network.CONVERTED_FOLDER).glob("*/*.npy"):
        copy.write_bytes(b"damaged")
    np.testing.assert_array_equal(vgg.load(path).weights["conv1_1"][0].numpy(), changed.weights["conv1_1"][0].numpy())


@pytest.fixture
def isolated_lookup(tmp_path, monkeypatch):
    """A lookup with an empty repository root, cache and models folder of its own."""
    repo, cache, models = tmp_path / "repo", tmp_path / "cache", tmp_path / "models"
    for d in (repo, models):
        d.mkdir()
    monkeypatch.setattr(network, "install_dirs", lambda: [str(repo)])
    monkeypatch.setattr(network, "cache_dir", lambda: str(cache))
    monkeypatch.setenv(network.MODELS_ENV, str(models))
    return repo, cache, models


def sha256(path):
    return hashlib.sha256(open(path, "rb").read()).hexdigest()


def test_lookup_order(isolated_lookup, sqz_weights, tmp_path):
    """--network-file; $NEURAL_STYLE_MODELS (original name, then bundled name); the repository
    (bundled copy, then original name); the cache."""
    repo, cache, models = isolated_lookup
    source = network.WeightsSource("w.mat", "file:///nonexistent/w.mat", sha256(sqz_weights), bundled="w.npz")
    explicit = tmp_path / "explicit.mat"
    for folder in (repo, models):
        for name in ("w.mat", "w.npz"):
            shutil.copy(sqz_weights, folder / name)
    shutil.copy(sqz_weights, explicit)
    assert network.find_weights(source, str(explicit)) == str(explicit)
    expected = [models / "w.mat", models / "w.npz", repo / "w.npz", repo / "w.mat"]
    for path in expected:
        assert network.find_weights(source) == str(path)
        os.remove(path)
    cache.mkdir()
    shutil.copy(sqz_weights, cache / "w.mat")
    assert network.find_weights(source) == str(cache / "w.mat")


def test_download_into_the_cache_checks_the_hash(isolated_lookup, sqz_mat, tmp_path):
    _, cache, _ = isolated_lookup
    origin = "file://" + os.path.abspath(sqz_mat)
    good = network.WeightsSource("sqz_notop.mat", origin, sha256(sqz_mat))
    path = network.find_weights(good)
    assert path == str(cache / "sqz_notop.mat") and sha256(path) == sha256(sqz_mat)
    assert squeezenet.load(path).weights.keys() == squeezenet.load(sqz_mat).weights.keys()
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


def test_missing_vgg_weights_point_to_the_offline_squeezenet(isolated_lookup):
    offline = dataclasses.replace(vgg.SOURCE, url="file:///nonexistent/imagenet-vgg-verydeep-19.mat")
    with pytest.raises(ToolError) as error:
        network.find_weights(offline)
    message = str(error.value)
    assert "imagenet-vgg-verydeep-19.mat not found" in message and "--network-file PATH" in message
    assert "--network-type sqz runs offline with the SqueezeNet weights bundled" in message


def _plain_squeezenet(weights, x, upto):
    """SPEC section 3's SqueezeNet v1.1 written again from plain TensorFlow ops: conv1 3x3 stride 2
    VALID, 3x3 stride 2 VALID max poolings, fire modules; {layer: activation} up to `upto`."""
    def conv(x, name, stride=1, padding="VALID"):
        kernel, bias = weights[name]
        return tf.nn.relu(tf.nn.conv2d(x, kernel, stride, padding) + bias)
    out = {}
    x = out["conv1"] = conv(x, "conv1", 2)
    x = tf.nn.max_pool2d(x, 3, 2, "VALID")
    for fire in squeezenet.FIRES:
        if fire in ("fire4", "fire6"):
            x = tf.nn.max_pool2d(x, 3, 2, "VALID")
        squeezed = conv(x, f"{fire}/squeeze1x1")
        e1, e3 = conv(squeezed, f"{fire}/expand1x1"), conv(squeezed, f"{fire}/expand3x3", padding="SAME")
        out[f"{fire}/expand1x1"], out[f"{fire}/expand3x3"] = e1, e3
        if fire == upto:
            return out
        x = tf.concat([e1, e3], axis=3)


def test_antialias_off_is_the_original_network(sqz_weights):
    """--antialias off gives the original's SqueezeNet, value for value; auto turns it on for
    SqueezeNet only, and then every layer keeps its size."""
    import backends
    from settings import Settings
    settings = Settings.from_flags(content="c.jpg", styles=["s.jpg"], network_type="sqz", antialias="off")
    off = backends.load(settings.network, sqz_weights)
    on = backends.load(settings.replace(antialias="auto").network, sqz_weights)
    assert not off.antialias and on.antialias
    assert not backends.antialiased("auto", "vgg") and backends.antialiased("on", "vgg")
    x = tf.random.stateless_uniform([1, 67, 75, 3], seed=(3, 4), minval=-120.0, maxval=130.0)
    expected = _plain_squeezenet(off.weights, x, "fire6")
    got, smoothed = off.features(x, list(expected)), on.features(x, list(expected))
    for layer, activation in expected.items():
        np.testing.assert_allclose(got[layer].numpy(), activation.numpy(), rtol=1e-5, atol=1e-4)
        assert smoothed[layer].shape == activation.shape
    smallest = on.features(tf.zeros([1, on.min_size, on.min_size, 3]), ["fire9/expand3x3"])["fire9/expand3x3"]
    assert smallest.shape == (1, 1, 1, 256)  # the blur reaches past a 1-px edge


@pytest.mark.parametrize("network_type", ["sqz", "vgg"])
def test_antialiased_features_hardly_depend_on_the_alignment(sqz_weights, small_images, tmp_path, network_type):
    """What the deep layers see of a photo moved by 1 to 3 px (less than a stride) changes far less
    with the downsampling anti-aliased than with the original's: no alignment of the image to the
    network is special, so none can be fitted with a grid of dots."""
    import images
    if network_type == "sqz":
        off, on, layer = squeezenet.load(sqz_weights), squeezenet.load(sqz_weights, antialias=True), "fire5/expand3x3"
    else:
        path = write_vgg_mat(str(tmp_path / "vgg.mat"))
        off, on, layer = vgg.load(path), vgg.load(path, antialias=True), "relu3_1"
    photo = images.load_image(small_images["cat.png"]).astype(np.float32)
    height, width = photo.shape[0] - 4, photo.shape[1] - 4

    def change(net):
        def gram(dy, dx):
            f = net.features(tf.constant(net.preprocess(photo[dy:dy + height, dx:dx + width])[None]), [layer])[layer]
            f = tf.reshape(f, [-1, f.shape[-1]])
            return tf.matmul(f, f, transpose_a=True).numpy() / f.shape[0]
        base = gram(0, 0)
        return np.mean([np.linalg.norm(gram(dy, dx) - base) / np.linalg.norm(base)
                        for dy, dx in ((0, 1), (1, 0), (1, 1), (2, 2), (0, 3))])
    assert change(on) < 0.6 * change(off)
