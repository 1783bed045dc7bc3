"""SqueezeNet v1.1 feature network (no classifier): the bundled sqz_weights.npz, or the
original tool's sqz_notop.mat."""
import zipfile

import numpy as np
import tensorflow as tf

from errors import ToolError
from network import FeatureNetwork, WeightsSource, check_conv, conv, read_mat

SOURCE = WeightsSource(
    filename="sqz_notop.mat",
    url="https://github.com/avoroshilov/neural-style/raw/master/sqz_notop.mat",
    file_hash="1bb1685c050e78053830d0c70a813479952e0c6fa5f334118cd0a93fb8acd166",
    bundled="sqz_weights.npz")  # made from sqz_notop.mat by convert_sqz_weights.py

MEAN_PIXEL = (122.679, 116.669, 104.006)
FIRES = ("fire2", "fire3", "fire4", "fire5", "fire6", "fire7", "fire8", "fire9")
SQUEEZE = {"fire2": 16, "fire3": 16, "fire4": 32, "fire5": 32, "fire6": 48, "fire7": 48, "fire8": 64, "fire9": 64}
EXPAND = {fire: 4 * squeeze for fire, squeeze in SQUEEZE.items()}  # each of expand1x1 and expand3x3
POOL_BEFORE = {"fire4": "pool3", "fire6": "pool5"}  # pool1 follows conv1

# Activations: conv1 relu, then for each fire module its expand1x1 and expand3x3 relus.
FEATURE_LAYERS = ("conv1",) + tuple(f"{fire}/{e}" for fire in FIRES for e in ("expand1x1", "expand3x3"))


class SqueezeNet(FeatureNetwork):
    LAYERS = FEATURE_LAYERS
    CONTENT_LAYERS = FEATURE_LAYERS
    STYLE_LAYERS = FEATURE_LAYERS
    # conv1 (3x3/2 VALID) and three 3x3/2 VALID poolings need at least 31 px for fire9.
    min_size = 31
    memory_factor = 2.2  # calibrated by benchmarks/bench.py (the performance document)
    iteration_over_pass = 1.0  # calibrated by benchmarks/quality.py --print (the performance document)

    @staticmethod
    def activation_elements(height, width):
        def valid(n, k=3, stride=2):
            return (n - k) // stride + 1
        height, width = valid(height), valid(width)
        total = 5 * height * width * 64  # conv1 and its relu at two phases, pool1 at every position (anti-aliased)
        height, width = valid(height), valid(width)
        total += height * width * 64
        channels = 64
        for fire in FIRES:
            if fire in POOL_BEFORE:
                total += height * width * channels  # the pooling at every position
                height, width = valid(height), valid(width)
                total += height * width * channels
            channels = 2 * EXPAND[fire]
            # squeeze, two expands (conv + relu each), their concatenation
            total += height * width * (2 * SQUEEZE[fire] + 4 * EXPAND[fire] + channels)
        return total

    def _conv1(self, x):
        """conv1 and its relu: 3x3 at stride 2, which sees one of the image's four phases (its
        pixels at even or odd rows and columns). Anti-aliased, the mean of two phases: the image's
        own and the image moved one pixel diagonally (its last row and column repeated). All four
        phases (a stride-1 conv1, then blurred) cost about 1.5x per iteration and, blurred, lose the
        finest texture; a blur before the stride loses it too (the performance document)."""
        def strided(image):
            return tf.nn.relu(conv(image, self.weights["conv1"], stride=2, padding="VALID"))
        if not self.antialias:
            return strided(x)
        moved = tf.pad(x[:, 1:, 1:], [[0, 0], [0, 1], [0, 1], [0, 0]], mode="SYMMETRIC")
        return 0.5 * (strided(x) + strided(moved))

    def _forward(self, x):
        x = self._conv1(x)
        yield "conv1", x
        x = self._downsample_pool(x, 3, "VALID")
        for fire in FIRES:
            if fire in POOL_BEFORE:
                x = self._downsample_pool(x, 3, "VALID")
            squeeze = tf.nn.relu(conv(x, self.weights[f"{fire}/squeeze1x1"], padding="VALID"))
            e1 = tf.nn.relu(conv(squeeze, self.weights[f"{fire}/expand1x1"], padding="VALID"))
            yield f"{fire}/expand1x1", e1
            e3 = tf.nn.relu(conv(squeeze, self.weights[f"{fire}/expand3x3"], padding="SAME"))
            yield f"{fire}/expand3x3", e3
            x = tf.concat([e1, e3], axis=3)


NETWORK = SqueezeNet


def read_layers(path):
    """{layer name: (kernel, bias)} from an .npz ('<layer>/kernel' and '<layer>/bias' arrays, as
    convert_sqz_weights.py writes) or a .mat of the original layout (name -> [kernel, bias]).
    Raw arrays: validate_layers checks them."""
    if path.lower().endswith(".npz"):
        try:
            with np.load(path, allow_pickle=False) as data:
                arrays = {key: data[key] for key in data.files}
        except FileNotFoundError:
            raise ToolError(f"weights file not found: {path}") from None
        except (OSError, ValueError, zipfile.BadZipFile, EOFError) as e:
            raise ToolError(f"weights file {path} is not a readable NumPy .npz file ({e})") from None
        names = {key.rsplit("/", 1)[0] for key in arrays if key.endswith(("/kernel", "/bias"))}
        return {name: (arrays.get(f"{name}/kernel"), arrays.get(f"{name}/bias")) for name in names}
    layers = {}
    for name, value in read_mat(path).items():
        if name.startswith("__"):
            continue  # MATLAB header entries
        try:
            layers[name] = tuple(value[0])
        except (IndexError, TypeError, ValueError):
            layers[name] = (None, None)  # an error only if the network needs this entry
        if len(layers[name]) != 2:
            layers[name] = (None, None)
    return layers


def validate_layers(path, layers):
    """The conv layers SqueezeNet v1.1 needs, checked against its topology, as float32
    {name: (kernel [kh, kw, in, out], bias [out])}; a ToolError names what is wrong."""
    weights = {}

    def take(name, ksize, in_channels):
        if name not in layers:
            raise ToolError(f"weights file {path} has no layer {name}: not SqueezeNet v1.1 weights")
        kernel, bias = layers[name]
        if kernel is None or bias is None:
            raise ToolError(f"weights file {path}: layer {name} is not a [kernel, bias] pair")
        weights[name] = check_conv(path, name, kernel, bias, ksize, in_channels)
        return weights[name][0].shape[3]

    channels = take("conv1", 3, 3)
    for fire in FIRES:
        squeezed = take(f"{fire}/squeeze1x1", 1, channels)
        channels = take(f"{fire}/expand1x1", 1, squeezed) + take(f"{fire}/expand3x3", 3, squeezed)
    return weights


def load(path, pooling="max", dtype=tf.float32, antialias=False):
    """Load and validate SqueezeNet v1.1 weights (.npz or .mat, see read_layers)."""
    return SqueezeNet(validate_layers(path, read_layers(path)), MEAN_PIXEL, pooling, dtype=dtype, antialias=antialias)
