"""The hierarchy of scales (--max-hierarchy): the image is optimised at the smallest scale first,
then at each larger one from the previous result upscaled, the last at full size.

Levels: level 0 is the full content size with --iterations. While the shorter side of the last
level is above 128 px and there are fewer than --max-hierarchy levels, a level of size
full // 2^k with int(iterations / 1.5^k) iterations is added (k = 1, 2, ...); with more than one
level, none runs fewer than 25 iterations. Levels run from the smallest. Each starts from
0.9 * running + 0.1 * content at its size, the running image being the previous level's result
(first: --initial resized to the content, or the content itself). Each style image is scaled
to style_scale * level width / its own width.

Colour preservation: a level's result becomes c * yuv + (1 - c) * result, yuv its YCbCr luma
transfer of the content's colours (luma_transfer.py). On level 0, c = 1 for --preserve-colors
all or out; on the others, for all or interm (or --h-preserve-colors), with L levels,
a = (L - 1 - idx) / (L - 2) and c = 0.3 * a + 1.0 * (1 - a) (with two levels, 1.0 for the one
intermediate level).
"""
from typing import NamedTuple

import numpy as np

import images
from errors import Stopped, ToolError
from luma_transfer import colortransfer
from stylize import stylize
from tiles import stylize_tiled

MIN_LEVEL_SIDE = 128        # a new level is added while the last one's shorter side exceeds this
MIN_LEVEL_ITERATIONS = 25   # with several levels, none runs fewer iterations


class Level(NamedTuple):
    height: int
    width: int
    iterations: int


def levels(height, width, iterations, max_hierarchy):
    """[Level] with level 0 the full size (the module's docstring)."""
    found = [Level(height, width, iterations)]
    k = 1
    while min(found[-1][:2]) > MIN_LEVEL_SIDE and len(found) < max_hierarchy:
        found.append(Level(height // 2 ** k, width // 2 ** k, int(iterations / 1.5 ** k)))
        k += 1
    if len(found) > 1:
        found = [Level(h, w, max(MIN_LEVEL_ITERATIONS, n)) for h, w, n in found]
    return found


def color_coefficient(level, level_count, preserve_colors, h_preserve_colors):
    """How much of the YCbCr colour transfer of the content goes into a level's output."""
    if level == 0:
        return 1.0 if preserve_colors in ("all", "out") else 0.0
    if preserve_colors in ("all", "interm") or h_preserve_colors:
        if level_count == 2:
            return 1.0  # the one intermediate level (the formula would divide by zero)
        a = (level_count - 1 - level) / (level_count - 2)
        return 0.3 * a + 1.0 * (1 - a)
    return 0.0


def style_sizes(styles, scales, width):
    """(height, width) of each style image at a level of this width."""
    return [images.size_at_width(s.shape, max(1, round(scale * width))) for s, scale in zip(styles, scales)]


def check_sizes(found, styles, scales, network_class):
    """Every image at every level must be large enough for the network (checked up front)."""
    name = network_class.__name__
    for height, width, _ in found:
        for (h, w), what in [((height, width), "the content"),
                             *((size, "a style image") for size in style_sizes(styles, scales, width))]:
            if min(h, w) < network_class.min_size:
                raise ToolError(f"{what} would be {w}x{h} px, too small for {name}: it needs at least "
                                f"{network_class.min_size} px on each side (use a larger --width or "
                                "--style-scales, or a smaller --max-hierarchy)")


def run_levels(settings, content, styles, initial, net, found, tile_sizes=None, workers=None, log=print,
               on_iteration=None, on_checkpoint=None, quiet=False):
    """Run the levels `found`, smallest first; returns the full-size result (float HxWx3).
    `content` and `initial` are at full size. `tile_sizes[level]` (None: whole) runs a level in
    tiles (tiles.py), on Ray `workers` if given. `on_iteration(level, i, losses)` is called after
    every iteration, `on_checkpoint(Step, height, width)` at each checkpoint (--checkpoint-iterations)
    and at each level's end when checkpoints are asked for. Ctrl-C or a non-finite loss raises
    Stopped with the best image so far at full size."""
    rng = np.random.default_rng(settings.inputs.seed)
    blend = settings.style_blend_weights
    running = (initial if initial is not None else content).astype(np.float32)
    for level in reversed(range(len(found))):
        height, width, iterations = found[level]
        level_content = images.resize(content.astype(np.float32), (height, width))
        running = images.resize(running, (height, width))
        if not settings.losses.unbounded:  # resizing (Lanczos) overshoots at edges
            level_content, running = np.clip(level_content, 0.0, 255.0), np.clip(running, 0.0, 255.0)
        start = 0.9 * running + 0.1 * level_content
        level_styles = [images.resize(s.astype(np.float32), size)
                        for s, size in zip(styles, style_sizes(styles, settings.style_scales, width))]
        desc = f"level {len(found) - level}/{len(found)} {width}x{height}" if len(found) > 1 else None
        if len(found) > 1:
            log(f"hierarchy level {len(found) - level}/{len(found)}: {width}x{height}, {iterations} iterations")
        tile = tile_sizes[level] if tile_sizes else None
        common = dict(optimizer=settings.optimizer, iterations=iterations,
                      print_iterations=settings.output.print_iterations,
                      checkpoint_iterations=settings.output.checkpoint_iterations,
                      initial_noiseblend=settings.inputs.initial_noiseblend, rng=rng, desc=desc, quiet=quiet,
                      on_iteration=on_iteration and (lambda i, losses, lv=level: on_iteration(lv, i, losses)))
        try:
            if tile:
                steps = stylize_tiled(net, start, level_content, level_styles, blend, settings.losses, tile,
                                      workers=workers, **common)
            else:
                steps = stylize(net, start, level_content, level_styles, blend, settings.losses, **common)
            for step in steps:
                if on_checkpoint and settings.output.checkpoint_iterations:
                    on_checkpoint(step, height, width)
        except Stopped as stop:
            raise Stopped(stop.cause, images.resize(stop.image, content.shape[:2])) from None
        running = step.image
        coefficient = color_coefficient(level, len(found), settings.hierarchy.preserve_colors,
                                        settings.hierarchy.h_preserve_colors)
        if coefficient:
            running = coefficient * colortransfer(level_content, running, "yuv") + (1 - coefficient) * running
    return running
