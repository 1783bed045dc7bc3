"""The feature networks by --network-type: `vgg` (VGG19, vgg.py) and `sqz` (SqueezeNet v1.1,
squeezenet.py), their weights files and the precision they compute in."""
import time

import device
import network
import squeezenet
import vgg

NETWORKS = {"vgg": vgg, "sqz": squeezenet}
PROBE_SIDES = (192, 384)    # iteration_seconds' two passes
ITERATION_OVERHEAD = 0.01   # seconds of an iteration beside the network's passes


def network_class(network_type):
    """The network's class: its layers, smallest input and memory model, before any weights load."""
    return NETWORKS[network_type].NETWORK


def find_weights(settings):
    """The weights file for settings.Network (looked up, or downloaded: network.find_weights)."""
    return network.find_weights(NETWORKS[settings.network_type].SOURCE, settings.network_file)


def compute_dtype(precision, network_type):
    """The convolutions' dtype. `auto` takes bfloat16 only where it is faster with the final loss
    within 2% of float32's (the performance document): VGG19 on a CPU with native bfloat16.
    SqueezeNet gains nothing from it; GPUs are not measured, so they keep float32."""
    tf = device.tf
    if precision == "auto":
        fast = network_type == "vgg" and not device.gpu_present() and device.cpu_has_native_bfloat16()
        precision = "bfloat16" if fast else "float32"
    return getattr(tf, precision)


def antialiased(antialias, network_type):
    """Whether the network's strides are anti-aliased (--antialias, network.py). `auto` turns it on
    where it was judged by eye and measured: SqueezeNet, whose strides otherwise leave a grid of
    dots (the performance document). VGG19 keeps the original's pooling: its examples show no grid,
    and no VGG19 picture could be judged without its weights."""
    return antialias == "on" or (antialias == "auto" and network_type == "sqz")


def load(settings, weights_path=None):
    """The network of settings.Network, its weights read and checked."""
    path = weights_path or find_weights(settings)
    return NETWORKS[settings.network_type].load(path, settings.pooling,
                                                compute_dtype(settings.precision, settings.network_type),
                                                antialiased(settings.antialias, settings.network_type))


def iteration_seconds(net):
    """(seconds per pixel, seconds) of an iteration on this machine, estimated: forward and backward
    passes of the network at two sizes, each timed after a first one, give the cost of a pixel (the
    difference) and the network's `iteration_over_pass` its ratio to an iteration; ITERATION_OVERHEAD
    is the optimiser's and the host's part."""
    tf = device.tf
    layer = net.deepest(net.STYLE_LAYERS + net.CONTENT_LAYERS)

    def timed(side):
        image = tf.zeros([1, side, side, 3])

        def one_pass():
            with tf.GradientTape() as tape:
                tape.watch(image)
                total = tf.reduce_sum(net.features(image, [layer])[layer])
            return tape.gradient(total, image).numpy()
        one_pass()
        started = time.perf_counter()
        one_pass()
        return time.perf_counter() - started
    small, large = PROBE_SIDES
    per_pixel = max(timed(large) - timed(small), 0.0) / (large ** 2 - small ** 2)
    return per_pixel * net.iteration_over_pass, ITERATION_OVERHEAD
