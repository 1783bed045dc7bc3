"""What the two feature networks share: finding and reading weights files, the layer ops,
and the interface the losses use (FeatureNetwork)."""
import hashlib
import json
import os
import shutil
import sys
from dataclasses import dataclass

import platformdirs

import numpy as np
import tensorflow as tf

from errors import ToolError

REPO_ROOT = os.path.dirname(os.path.abspath(__file__))
MODELS_ENV = "NEURAL_STYLE_MODELS"


@dataclass(frozen=True)
class WeightsSource:
    filename: str
    url: str
    file_hash: str  # MD5 (32 hex digits) or SHA-256 (64); get_file picks the algorithm by length
    bundled: str = ""  # a converted copy shipped with the project (found offline), if any
    offline_hint: str = ""  # appended to the message when no file is found nor downloaded


def install_dirs():
    """The repository root, and where `pip install .` puts the bundled weights (data files)."""
    return [REPO_ROOT, os.path.join(sys.prefix, "share", "neural-style")]


def cache_dir():
    """The user cache directory for weights (~/.cache/neural-style on Linux)."""
    return platformdirs.user_cache_dir("neural-style", appauthor=False)


def find_weights(source, network_file=None):
    """Path of the weights file: --network-file, $NEURAL_STYLE_MODELS, the repository root (the
    bundled copy first), the user cache, else a download into the cache (progress bar, checksum
    check)."""
    if network_file:
        if not os.path.isfile(network_file):
            raise ToolError(f"weights file not found: {network_file} (given with --network-file)")
        return network_file
    looked = []
    candidates = []
    if os.environ.get(MODELS_ENV):
        candidates += [os.path.join(os.environ[MODELS_ENV], name) for name in (source.filename, source.bundled) if name]
    for folder in install_dirs():
        candidates += [os.path.join(folder, name) for name in (source.bundled, source.filename) if name]
    for path in candidates:
        if os.path.isfile(path):
            return path
        if os.path.dirname(path) not in looked:
            looked.append(os.path.dirname(path))
    cache = cache_dir()
    looked.append(cache)
    try:
        os.makedirs(cache, exist_ok=True)
        # Keras' downloader: reuses a cached file whose hash matches, else downloads with a
        # progress bar and verifies the hash.
        return tf.keras.utils.get_file(source.filename, origin=source.url, file_hash=source.file_hash,
                                       cache_dir=cache, cache_subdir="")
    except Exception as e:  # Ctrl-C and SIGTERM (BaseException) pass through untouched
        partial = os.path.join(cache, source.filename)
        if isinstance(e, ValueError) and os.path.exists(partial):
            os.remove(partial)  # a download that failed its checksum must not be used later
        raise ToolError(
            f"weights file {source.filename} not found (looked in: {', '.join(looked)}) and "
            f"could not be downloaded ({str(e).strip() or type(e).__name__}). Download it from "
            f"{source.url} into one of those folders, or pass --network-file PATH"
            f"{source.offline_hint}") from None


CONVERTED_FOLDER = "converted"


def _file_digest(path):
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 22), b""):
            digest.update(block)
    return digest.hexdigest()


def cached_conversion(path, kind, convert):
    """`convert(path)` ({name: array}) of a weights file, kept in the user cache after the first
    use: reading the 534 MB VGG19 .mat takes seconds, its converted conv layers (80 MB) a tenth of
    one. The copy is a folder of .npy files named by the file's SHA-256, memory-mapped when read
    (the network copies each array once, into its own constant); an index maps the file's path,
    size and modification time to it, so the file is hashed only when it is new or has changed.
    A cache that cannot be read or written is passed over (the file is converted again)."""
    folder = os.path.join(cache_dir(), CONVERTED_FOLDER)
    index_path = os.path.join(folder, "index.json")
    stat = os.stat(path)
    entry = f"{kind}:{os.path.realpath(path)}"
    stamp = [stat.st_size, stat.st_mtime_ns]
    index = {}
    try:
        with open(index_path) as f:
            index = dict(json.load(f))
    except (OSError, ValueError, TypeError):
        pass
    known = index.get(entry)
    if isinstance(known, dict) and known.get("stamp") == stamp:
        try:
            copy = os.path.join(folder, f"{kind}-{known['sha256']}")
            with open(os.path.join(copy, "names.json")) as f:
                names = json.load(f)
            return {name: np.load(os.path.join(copy, _array_file(name)), mmap_mode="r", allow_pickle=False)
                    for name in names}
        except (OSError, ValueError, KeyError, TypeError):
            pass
    arrays = convert(path)
    try:
        digest = _file_digest(path)
        target = os.path.join(folder, f"{kind}-{digest}")
        partial = f"{target}.{os.getpid()}.partial"
        os.makedirs(partial, exist_ok=True)
        for name, array in arrays.items():
            np.save(os.path.join(partial, _array_file(name)), array, allow_pickle=False)
        with open(os.path.join(partial, "names.json"), "w") as f:
            json.dump(list(arrays), f)
        shutil.rmtree(target, ignore_errors=True)  # a damaged copy
        os.replace(partial, target)
        index[entry] = {"stamp": stamp, "sha256": digest}
        with open(f"{index_path}.{os.getpid()}.partial", "w") as f:
            json.dump(index, f)
        os.replace(f"{index_path}.{os.getpid()}.partial", index_path)
    except OSError:
        pass
    return arrays


def _array_file(name):
    """The .npy file of an array named like "conv1_1/kernel" (layer names hold no dots)."""
    return name.replace("/", ".") + ".npy"


def read_mat(path):
    """A MATLAB .mat file as a dict, or a ToolError naming the file."""
    import scipy.io  # here: only .mat files need it, and its import is slow
    try:
        return scipy.io.loadmat(path)
    except FileNotFoundError:
        raise ToolError(f"weights file not found: {path}") from None
    except Exception as e:  # scipy raises ValueError, TypeError, OSError, ... on foreign data
        raise ToolError(f"weights file {path} is not a readable MATLAB .mat file ({e})") from None


def check_conv(path, name, kernel, bias, ksize, in_channels):
    """Validate one conv layer's weights against the topology; return (kernel, bias) as float32."""
    kernel = np.asarray(kernel)
    bias = np.asarray(bias).reshape(-1)
    expected = (ksize, ksize, in_channels)
    if kernel.ndim != 4 or kernel.shape[:3] != expected or bias.shape[0] != kernel.shape[3]:
        raise ToolError(f"weights file {path}: layer {name} has kernel {kernel.shape} and bias "
                        f"{bias.shape}, expected kernel {expected + ('N',)} and bias (N,)")
    return kernel.astype(np.float32, copy=False), bias.astype(np.float32, copy=False)  # no copy of a memory map


def conv(x, weights, stride=1, padding="SAME"):
    kernel, bias = weights  # in x's dtype (FeatureNetwork casts them once)
    return tf.nn.bias_add(tf.nn.conv2d(x, kernel, stride, padding), bias)


def pool(x, kind, size, stride, padding):
    op = tf.nn.max_pool2d if kind == "max" else tf.nn.avg_pool2d
    return op(x, size, stride, padding)


POOL_BLUR = (1, 4, 6, 4, 1)  # binomial filter taps of an anti-aliased pooling's downsampling


def blur(x, taps, stride=1):
    """x filtered by the separable filter taps x taps, every `stride`-th value kept. At the edges
    the filter is renormalised to the part of it that falls on x (any size of x, even 1 px)."""
    taps = np.asarray(taps, np.float32) / np.sum(taps)
    r = len(taps) // 2
    kernel = tf.cast(np.tile(np.outer(taps, taps)[:, :, None, None], [1, 1, x.shape[3], 1]), x.dtype)
    out = tf.nn.depthwise_conv2d(tf.pad(x, [[0, 0], [r, r], [r, r], [0, 0]]), kernel, [1, stride, stride, 1], "VALID")

    def coverage(n):  # per output position along one axis: the filter's weight on x
        return np.convolve(np.pad(np.ones(n, np.float32), r), taps, "valid")[::stride]
    return out * tf.cast(1.0 / np.outer(coverage(x.shape[1]), coverage(x.shape[2]))[None, :, :, None], x.dtype)


class FeatureNetwork:
    """A feature extractor. Subclasses define LAYERS, CONTENT_LAYERS, STYLE_LAYERS, min_size
    and _forward(x), a generator of (layer name, activation) in network order."""

    LAYERS = ()
    CONTENT_LAYERS = ()
    STYLE_LAYERS = ()
    min_size = 1
    memory_factor = 2.0  # peak over forward activation bytes (memory.py), per network
    iteration_over_pass = 1.0  # an iteration's time over a forward and backward pass (backends.iteration_seconds)

    @staticmethod
    def activation_elements(height, width):
        """Elements of all forward activations for an input of this size (canonical widths)."""
        raise NotImplementedError

    def __init__(self, weights, mean_pixel, pooling, dtype=tf.float32, antialias=False):
        # Constants in the compute dtype: cast once here, not at every pass.
        self.weights = {name: (tf.cast(tf.constant(k), dtype), tf.cast(tf.constant(b), dtype))
                        for name, (k, b) in weights.items()}
        self.mean_pixel = np.asarray(mean_pixel, dtype=np.float32).reshape(3)
        self.pooling = pooling
        self.dtype = dtype  # compute dtype of the convolutions; activations returned in float32
        # Anti-aliased downsampling (Zhang 2019, "Making Convolutional Networks Shift-Invariant
        # Again"): a stride samples the image at one alignment, and an optimised image can fit that
        # alignment with a grid of dots at the stride's period. Pooled at every position and blurred
        # before the stride (a network's conv strides: its own way), what the network sees hardly
        # depends on the alignment, and the gradient has no such grid.
        self.antialias = antialias

    def preprocess(self, pixels):
        return pixels - self.mean_pixel

    def unprocess(self, image):
        return image + self.mean_pixel

    def deepest(self, layers):
        return max(layers, key=self.LAYERS.index)

    def features(self, image, layers):
        """{layer: float32 activation [1, H, W, C]} for the given layers of a [1, H, W, 3]
        preprocessed image; nothing past the deepest of them is computed."""
        wanted = set(layers)
        unknown = wanted.difference(self.LAYERS)
        if unknown:
            raise ValueError(f"unknown layers {sorted(unknown)}")
        out = {}
        if not wanted:
            return out
        x = tf.cast(image, self.dtype)
        for name, activation in self._forward(x):
            if name in wanted:
                out[name] = tf.cast(activation, tf.float32)
                if len(out) == len(wanted):
                    break
        return out

    def _forward(self, x):
        raise NotImplementedError

    def _downsample_pool(self, x, size, padding):
        """A pooling of stride 2: max (or average) over size x size windows at every second
        position; anti-aliased, the windows at every position, then blurred and every second kept."""
        if not self.antialias:
            return pool(x, self.pooling, size, 2, padding)
        return blur(pool(x, self.pooling, size, 1, padding), POOL_BLUR, 2)
