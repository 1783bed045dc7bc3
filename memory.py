"""How much memory a run needs, and which levels run in tiles to fit: decided before any work.

A level's peak is the network's activations with their backward buffers (the network's
`memory_factor`, calibrated by benchmarks/bench.py), the optimiser's image-sized state (its
`bytes_per_value`), and the whole-level image buffers the run keeps. In tiles, the network and
the optimiser work on one tile at a time: only the image buffers grow with the image.
"""
import os

import device
import optimizers
from errors import ToolError
from settings import MIN_TILE_SIZE

FULL_IMAGE_COPIES = 10   # float32 whole-level arrays the run keeps (content, running, start, result, ...)
AUTO_TILE_SIZES = (4096, 3072, 2048, 1536, 1024, 768, 512, 384, 256, MIN_TILE_SIZE)  # tried largest first


def available_memory():
    """Bytes of memory this process can still use on the CPU (Linux: MemAvailable), or None.

    GPU memory is not known before TensorFlow allocates it: on a GPU the estimate is not
    enforced and a real out-of-memory error is reported instead."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_AVPHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return None


def level_memory(network_class, size, optim, tile=None):
    """Peak bytes of one level of this (height, width), whole or in tiles of at most `tile` px."""
    height, width = size
    buffers = FULL_IMAGE_COPIES * 4 * 3 * height * width
    if tile:
        height, width = min(height, tile), min(width, tile)
    activations = 4 * network_class.activation_elements(height, width) * network_class.memory_factor
    state = optimizers.OPTIMIZERS[optim].bytes_per_value() * height * width * 3
    return activations + state + buffers


def estimate_memory(network_class, sizes, optim, weights_bytes=0, tile_sizes=None):
    """Peak bytes of a run over levels of these sizes (tile_sizes[i]: None for a whole level):
    levels run one after another, so the largest counts."""
    tile_sizes = tile_sizes or [None] * len(sizes)
    return int(max(level_memory(network_class, size, optim, tile) for size, tile in zip(sizes, tile_sizes))
               + weights_bytes)


def advice(estimate, available=None):
    have = f", {available / 2**30:.1f} GiB available" if available else ""
    return (f"the transfer needs about {estimate / 2**30:.1f} GiB of memory{have}; use a smaller --width, "
            "--optim adam, --network-type sqz or a smaller --tile-size (a larger --max-hierarchy saves "
            "time, not memory: the full-size level needs it too)")


def plan_tiles(network_class, sizes, optim, weights_path, tile_size=None, log=print):
    """The tile size of each level (None: whole) and the run's memory estimate.

    `tile_size` (--tile-size): N tiles every level larger than N px; 0 never tiles; None tiles a
    level whose estimate exceeds the free CPU memory, with the largest tile that fits. A run that
    does not fit even in the smallest tile is refused (a ToolError with advice). GPU memory is not
    known in advance: there, only --tile-size tiles."""
    weights_bytes = 1.3 * os.path.getsize(weights_path)  # the weights file is read whole, then converted

    def fits(size, tile):
        return level_memory(network_class, size, optim, tile) + weights_bytes <= available

    available = None if device.gpu_present() else available_memory()
    if tile_size:
        plan = [tile_size if max(size) > tile_size else None for size in sizes]
    else:
        plan = [None] * len(sizes)
        for i, size in enumerate(sizes):
            if available is None or fits(size, None):
                continue
            candidates = [t for t in AUTO_TILE_SIZES if t < max(size) and fits(size, t)]
            if tile_size == 0 or not candidates:
                smallest = [MIN_TILE_SIZE if tile_size is None else None]
                raise ToolError(advice(estimate_memory(network_class, [size], optim, weights_bytes, smallest),
                                       available))
            plan[i] = candidates[0]
            log(f"level {size[1]}x{size[0]} needs more than the {available / 2**30:.1f} GiB of memory "
                f"available whole: it runs in tiles of at most {plan[i]}x{plan[i]} px")
    return plan, estimate_memory(network_class, sizes, optim, weights_bytes, plan)
