"""The feature networks by --network-type: `vgg` (VGG19, vgg.py) and `sqz` (SqueezeNet v1.1,
squeezenet.py), their weights files and the precision they compute in."""
import device
import network
import squeezenet
import vgg

NETWORKS = {"vgg": vgg, "sqz": squeezenet}


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


def load(settings, weights_path=None):
    """The network of settings.Network, its weights read and checked."""
    path = weights_path or find_weights(settings)
    return NETWORKS[settings.network_type].load(path, settings.pooling,
                                                compute_dtype(settings.precision, settings.network_type))
