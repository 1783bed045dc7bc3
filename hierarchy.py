"""The hierarchy of scales (--max-hierarchy): the image is optimised at the smallest scale first,
then at each larger one from the previous result upscaled, the last at full size.

Levels: level 0 is the full content size with --iterations. While the shorter side of the last
level is above 128 px and there are fewer than --max-hierarchy levels, a level of size
full // 2^k with int(iterations / 1.5^k) iterations is added (k = 1, 2, ...); with more than one
level, none runs fewer than 25 iterations. Levels run from the smallest. Each starts from
0.9 * running + 0.1 * content at its size, the running image being the previous level's result
(first: --initial resized to the content, or the content itself). Each style image is scaled
to style_scale * level width / its own width.

--max-hierarchy auto, for prints: the size is halved while the width stays at least 256 px; the
smallest level, which sets the composition and the style's large shapes, runs --iterations, each
larger one half as many as the one below (at least 25). Each style image is scaled with the level
as above but never beyond its own width (its strokes stay sharp, and a print gets finer strokes
up close). Each level after the first refines it rather than painting it again: an anchor term,
anchor_weight * mean((avgpool_f(x) - first)^2), keeps the image, averaged over f x f blocks (f
the level's width over the first's), at the first level's result, and the style loss of that
averaged image (against the styles at the first level's size) is added to the level's own, so
that the print seen whole is as stylised as the first level and the larger levels add detail.
(A level in tiles has neither.)

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
from stylize import Stylizer, stylize
from tiles import stylize_tiled

MIN_LEVEL_SIDE = 128        # a new level is added while the last one's shorter side exceeds this
MIN_LEVEL_ITERATIONS = 25   # with several levels, none runs fewer iterations
AUTO_FIRST_WIDTH = 256      # --max-hierarchy auto: the smallest level is at least this wide
SINGLE_LEVEL_WARNING = 1024  # wider than this in one level, the style paints only fine texture


class Level(NamedTuple):
    height: int
    width: int
    iterations: int


def levels(height, width, iterations, max_hierarchy):
    """[Level] with level 0 the full size (the module's docstring)."""
    if max_hierarchy == "auto":
        return auto_levels(height, width, iterations)
    found = [Level(height, width, iterations)]
    k = 1
    while min(found[-1][:2]) > MIN_LEVEL_SIDE and len(found) < max_hierarchy:
        found.append(Level(height // 2 ** k, width // 2 ** k, int(iterations / 1.5 ** k)))
        k += 1
    if len(found) > 1:
        found = [Level(h, w, max(MIN_LEVEL_ITERATIONS, n)) for h, w, n in found]
    return found


def auto_levels(height, width, iterations):
    """--max-hierarchy auto's levels (the module's docstring), level 0 the full size."""
    count = 1
    while width // 2 ** count >= AUTO_FIRST_WIDTH:
        count += 1
    return [Level(height // 2 ** k, width // 2 ** k,
                  iterations if k == count - 1 else max(MIN_LEVEL_ITERATIONS, iterations // 2 ** (count - 1 - k)))
            for k in range(count)]


def describe(found, tile_sizes=None, seconds=None):
    """The plan of a run in one line: its levels, smallest first, with their iterations and tiles,
    and the time estimate."""
    tile_sizes = tile_sizes or [None] * len(found)
    parts = [f"{w}x{h} ({n} it.{f', in tiles of {t} px' if t else ''})"
             for (h, w, n), t in reversed(list(zip(found, tile_sizes)))]
    estimate = f"; about {minutes(seconds)} on this machine" if seconds else ""
    return f"plan: {len(found)} level{'s' if len(found) > 1 else ''}, {', '.join(parts)}{estimate}"


def minutes(seconds):
    return f"{seconds:.0f} s" if seconds < 90 else f"{seconds / 60:.0f} minutes"


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


def style_sizes(styles, scales, width, capped=False):
    """(height, width) of each style image at a level of this width; `capped`: never beyond its own."""
    return [images.size_at_width(s.shape, min(s.shape[1], round(scale * width)) if capped else max(1, round(scale * width)))
            for s, scale in zip(styles, scales)]


def check_sizes(found, styles, scales, network_class, capped=False):
    """Every image at every level must be large enough for the network (checked up front)."""
    name = network_class.__name__
    for height, width, _ in found:
        for (h, w), what in [((height, width), "the content"),
                             *((size, "a style image") for size in style_sizes(styles, scales, width, capped))]:
            if min(h, w) < network_class.min_size:
                raise ToolError(f"{what} would be {w}x{h} px, too small for {name}: it needs at least "
                                f"{network_class.min_size} px on each side (use a larger --width or "
                                "--style-scales, or a smaller --max-hierarchy)")


def level_stylizer(cache, net, content, styles, blend, weights, anchor, temporal):
    """The level's compiled loss from `cache` (made there the first time), aimed at this content
    and these earlier frames; None where there is nothing to keep (stylize makes its own)."""
    if cache is None or anchor is not None:  # an anchor is the frame's own: nothing to keep
        if temporal is None:
            return None
        stylizer = Stylizer(net, content, styles, blend, weights, anchor=anchor, temporal=temporal[0])
        stylizer.set_temporal(temporal[1])
        return stylizer
    key = content.shape[:2]
    if key not in cache:
        cache[key] = Stylizer(net, content, styles, blend, weights, temporal=temporal and temporal[0])
    else:
        cache[key].set_content(content)
    if temporal:
        cache[key].set_temporal(temporal[1])
    return cache[key]


def run_levels(settings, content, styles, initial, net, found, tile_sizes=None, workers=None, log=print,
               on_iteration=None, on_checkpoint=None, quiet=False, seed=None, temporal=None, cache=None):
    """Run the levels `found`, smallest first; returns the full-size result (float HxWx3).
    `content` and `initial` are at full size. `tile_sizes[level]` (None: whole) runs a level in
    tiles (tiles.py), on Ray `workers` if given. `on_iteration(level, i, losses, image)` is called after
    every iteration, `on_checkpoint(Step, height, width)` at each checkpoint (--checkpoint-iterations)
    and at each level's end when checkpoints are asked for. Ctrl-C or a non-finite loss raises
    Stopped with the best image so far at full size.

    A video's frame also gives the `seed` of its noise (else --seed), `temporal` (weight, count,
    targets), targets(height, width) giving the earlier frames at a level's size ([(warped result,
    certainty)]), and a `cache` of the levels' compiled losses kept from frame to frame."""
    rng = np.random.default_rng(settings.inputs.seed if seed is None else seed)
    blend = settings.style_blend_weights
    auto = settings.hierarchy.max_hierarchy == "auto"
    running = (initial if initial is not None else content).astype(np.float32)
    first = None  # auto: (the smallest level's result, its style images), which the larger levels refine
    for level in reversed(range(len(found))):
        height, width, iterations = found[level]
        level_content = images.resize(content.astype(np.float32), (height, width))
        running = images.resize(running, (height, width))
        if not settings.losses.unbounded:  # resizing (Lanczos) overshoots at edges
            level_content, running = np.clip(level_content, 0.0, 255.0), np.clip(running, 0.0, 255.0)
        start = 0.9 * running + 0.1 * level_content
        level_styles = [images.resize(s.astype(np.float32), size)
                        for s, size in zip(styles, style_sizes(styles, settings.style_scales, width, auto))]
        desc = f"level {len(found) - level}/{len(found)} {width}x{height}" if len(found) > 1 else None
        if len(found) > 1:
            log(f"hierarchy level {len(found) - level}/{len(found)}: {width}x{height}, {iterations} iterations")
        tile = tile_sizes[level] if tile_sizes else None
        common = dict(optimizer=settings.optimizer, iterations=iterations,
                      print_iterations=settings.output.print_iterations,
                      checkpoint_iterations=settings.output.checkpoint_iterations,
                      initial_noiseblend=settings.inputs.initial_noiseblend, rng=rng, desc=desc, quiet=quiet,
                      on_iteration=on_iteration and (lambda i, losses, image, lv=level: on_iteration(lv, i, losses, image)))
        targets = temporal[2](height, width) if temporal else None
        try:
            if tile:
                steps = stylize_tiled(net, start, level_content, level_styles, blend, settings.losses, tile,
                                      workers=workers, temporal=temporal and (temporal[:2], targets), **common)
            else:
                anchor = (first[0], width // first[0].shape[1], first[1]) if first is not None else None
                stylizer = level_stylizer(cache, net, level_content, level_styles, blend, settings.losses, anchor,
                                          temporal and (temporal[:2], targets))
                steps = stylize(net, start, level_content, level_styles, blend, settings.losses, anchor=anchor,
                                stylizer=stylizer, **common)
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
        if auto and first is None:
            first = running, level_styles
    return running
