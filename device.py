"""TensorFlow in this process, and what the machine offers it.

Importing this module imports TensorFlow with its C++ start-up messages hidden (oneDNN, CUDA
probing, absl: they go straight to file descriptor 2, which TF_CPP_MIN_LOG_LEVEL does not cover):
import it before anything that imports TensorFlow.
"""
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")  # TensorFlow's start-up chatter is not for users


def _import_tensorflow_quietly():
    if "tensorflow" in sys.modules:
        return
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "w") as devnull:
            os.dup2(devnull.fileno(), 2)
            import tensorflow  # noqa: F401
    finally:
        os.dup2(saved, 2)
        os.close(saved)


_import_tensorflow_quietly()
import tensorflow as tf  # noqa: E402 - imported above, quietly

# TensorFlow's Python warnings (retracing of functions that runs of other sizes compile anew, in
# a batch or a gallery made in one process) are not for users either.
tf.get_logger().setLevel("ERROR")


def gpu_present():
    return bool(tf.config.list_physical_devices("GPU"))


def limit_threads(threads):
    """TensorFlow uses `threads` CPU threads (before its first operation; later, it keeps its count)."""
    try:
        tf.config.threading.set_intra_op_parallelism_threads(threads)
        tf.config.threading.set_inter_op_parallelism_threads(threads)
    except RuntimeError:
        pass  # TensorFlow already started in this process, with its count


def graph_rewrites_off_on_cpu():
    """TensorFlow's graph optimizer (Grappler) rewrites every new compiled function on its first
    call, which costs start-up time and gains nothing per iteration on the CPU (see the performance
    document): there it is off. With a GPU it stays on (its layout and fusion passes are made for
    GPUs)."""
    if not gpu_present():
        tf.config.optimizer.set_experimental_options({"disable_meta_optimizer": True})


def cpu_has_native_bfloat16():
    try:
        with open("/proc/cpuinfo") as f:
            flags = next((line for line in f if line.startswith("flags")), "").split()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags
