"""VGG19 feature network from MatConvNet weights (imagenet-vgg-verydeep-19.mat)."""
import numpy as np
import tensorflow as tf

from errors import ToolError
from network import FeatureNetwork, WeightsSource, cached_conversion, check_conv, conv, read_mat

SOURCE = WeightsSource(
    filename="imagenet-vgg-verydeep-19.mat",
    url="https://www.vlfeat.org/matconvnet/models/beta16/imagenet-vgg-verydeep-19.mat",
    file_hash="8ee3263992981a1d26e73b3ca028a123",
    offline_hint=" (534 MB). --network-type sqz runs offline with the SqueezeNet weights bundled "
                 "in the repository")

LAYERS = (
    "conv1_1", "relu1_1", "conv1_2", "relu1_2", "pool1",
    "conv2_1", "relu2_1", "conv2_2", "relu2_2", "pool2",
    "conv3_1", "relu3_1", "conv3_2", "relu3_2", "conv3_3", "relu3_3", "conv3_4", "relu3_4", "pool3",
    "conv4_1", "relu4_1", "conv4_2", "relu4_2", "conv4_3", "relu4_3", "conv4_4", "relu4_4", "pool4",
    "conv5_1", "relu5_1", "conv5_2", "relu5_2", "conv5_3", "relu5_3", "conv5_4", "relu5_4",
)

CHANNELS = (64, 128, 256, 512, 512)  # per block, in the real network


class VGG19(FeatureNetwork):
    LAYERS = LAYERS
    CONTENT_LAYERS = ("relu4_2", "relu5_2")
    STYLE_LAYERS = ("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1")
    min_size = 16  # four 2x2 poolings: relu5 activations stay at least one pixel
    memory_factor = 1.4  # calibrated by benchmarks/bench.py (the performance document)
    iteration_over_pass = 1.2  # calibrated by benchmarks/quality.py --print (the performance document)

    @staticmethod
    def activation_elements(height, width):
        total = 0
        for name in LAYERS:  # conv1_1, relu1_1, ..., pool1: the block number is name[4]
            if name.startswith("pool"):
                height, width = -(-height // 2), -(-width // 2)  # SAME pooling rounds up
            total += height * width * CHANNELS[int(name[4]) - 1]
        return total

    def _forward(self, x):
        for name in LAYERS:
            kind = name[:4]
            if kind == "conv":
                x = conv(x, self.weights[name])
            elif kind == "relu":
                x = tf.nn.relu(x)
            else:
                x = self._downsample_pool(x, 2, "SAME")
            yield name, x


def _field(record, name, index):
    """A struct field by name when MATLAB stored names, else by position."""
    names = record.dtype.names or ()
    return record[name] if name in names else record[index]


NETWORK = VGG19


def load(path, pooling="max", dtype=tf.float32, antialias=False):
    """The network of a MatConvNet file, read through its converted copy in the user cache."""
    arrays = cached_conversion(path, "vgg19", convert)
    weights = {name: check_conv(path, name, arrays[f"{name}/kernel"], arrays[f"{name}/bias"], 3,
                                arrays[f"{name}/kernel"].shape[2])
               for name in LAYERS if name.startswith("conv")}
    return VGG19(weights, arrays["mean_pixel"], pooling, dtype=dtype, antialias=antialias)


def convert(path):
    """Read and validate the MatConvNet file: layers[0][i][0][0][0][0] = (kernel [w,h,in,out], bias),
    normalization[0][0][0] = the mean image. Returns the mean pixel and the conv layers as
    {"mean_pixel", "<layer>/kernel" [h,w,in,out], "<layer>/bias"} float32 arrays."""
    data = read_mat(path)
    try:
        mean_pixel = np.mean(np.asarray(data["normalization"][0][0][0], dtype=np.float64), axis=(0, 1))
        layers = data["layers"][0]
    except (KeyError, IndexError, TypeError, ValueError):
        raise ToolError(f"weights file {path} is not a MatConvNet VGG19 file "
                        "(no 'layers' and 'normalization' entries)") from None
    if mean_pixel.shape != (3,):
        raise ToolError(f"weights file {path}: the mean image has {mean_pixel.shape} channels, expected 3")
    arrays = {"mean_pixel": mean_pixel.astype(np.float32)}
    in_channels = 3
    for i, name in enumerate(LAYERS):
        if not name.startswith("conv"):
            continue
        try:
            record = layers[i][0][0]
            stored_name = _field(record, "name", 3) if "name" in (record.dtype.names or ()) else None
            kernel, bias = _field(record, "weights", 0)[0]
        except (IndexError, TypeError, ValueError):
            raise ToolError(f"weights file {path}: layer {i} ({name}) is missing or not a conv layer") from None
        if stored_name is not None and str(np.squeeze(stored_name)) != name:
            raise ToolError(f"weights file {path}: layer {i} is {np.squeeze(stored_name)}, expected {name}")
        # MatConvNet kernels are [width, height, in, out]; TensorFlow wants [height, width, in, out].
        kernel = np.transpose(np.asarray(kernel), (1, 0, 2, 3)) if np.ndim(kernel) == 4 else kernel
        kernel, bias = check_conv(path, name, kernel, bias, 3, in_channels)
        arrays[f"{name}/kernel"], arrays[f"{name}/bias"] = kernel, bias
        in_channels = kernel.shape[3]
    return arrays
