"""One style transfer, from images to the result: the command line, batch.py, the Ray workers and
Python callers all run it through here.

    the images -> sizes, the hierarchy of scales, the memory plan (which levels run in tiles) ->
    the network -> each level (hierarchy.py; whole, or in tiles: tiles.py) -> the collage ->
    a Result (the image and every setting it was made with) -> the output file

From Python (settings are keywords named as the command line's flags, with the same defaults):

    from pipeline import transfer
    result = transfer("photo.jpg", "painting.jpg", network_type="sqz", width=512, no_collage=True)
    result.image.save("photo_painting.png")    # a PIL image; result.save() also stores the settings
"""
import json
import os
import sys
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
from PIL import Image

import images
import names
from build_collage import build_collage
from errors import NumericalError, Stopped, ToolError
from luma_transfer import colortransfer
from preview import serving
from settings import Settings

PARTIAL = {"interrupted": "interrupted", "numerical": "stopped: the loss was not finite"}
TILE_COST = 1.25  # a level in tiles costs about this much more per pixel (their overlaps)


@dataclass(frozen=True)
class Result:
    """A transfer's image and every setting it was made with. `stopped` is what ended the run
    early (Ctrl-C or a loss that was not finite), if anything did: the image is then the best one
    so far, without the collage, and `params["partial"]` says why."""
    pixels: np.ndarray      # HxWx3 float32 pixel values, 0..255 (beyond only with --unbounded)
    params: dict            # the settings by flag name, and notes (tiled_levels, partial)
    stopped: BaseException = None

    @property
    def image(self):
        """The result as a PIL image (8-bit RGB)."""
        return Image.fromarray(images.to_uint8(self.pixels))

    @property
    def partial(self):
        return self.params.get("partial")

    def params_text(self, **extra):
        return json.dumps(dict(self.params, **extra))

    def save(self, path, bit_depth=8):
        """Write the image (the extension picks the format) with its settings stored in the file;
        `bit_depth` 16 keeps 16 bits per channel (.png, .tif)."""
        images.check_writable(path)
        images.save_image(path, self.pixels, self.params_text(), bit_depth)


class Progress(NamedTuple):
    """What a progress callback is told after every iteration."""
    level: int        # 1 .. levels, smallest first
    levels: int
    width: int
    height: int
    iteration: int    # at this level
    iterations: int   # at this level
    losses: np.ndarray  # content, style, tv, total; None where not read back (a device optimiser's: every 10)
    image: object = None  # image(): the level's best image so far (HxWx3 pixels; a level in tiles: the
    #                       whole level, its finished tiles blended in); it reads back from the device


def load_images(inputs, read=None):
    """The content, style and initial images (uint8 arrays) of settings.Inputs. `read(path)` gives a
    file's bytes where the files are not on this machine (a Ray worker is sent them)."""
    def load(path, what):
        return images.load_image(path, what, data=read(path) if read else None)
    return (load(inputs.content, "content image"), [load(path, "style image") for path in inputs.styles],
            load(inputs.initial, "initial image") if inputs.initial else None)


def output_path(settings):
    """The output file: --output, or the auto-generated name in the current folder."""
    return settings.output.output or names.auto_output_name(settings)


def check_not_over_inputs(settings, output, flag="--output"):
    """A usage error if the output or a checkpoint would replace one of the run's input images."""
    inputs = [("content image", settings.inputs.content), *(("style image", s) for s in settings.inputs.styles),
              ("initial image", settings.inputs.initial)]
    images.check_not_input(output, inputs, flag)
    if settings.output.checkpoint_iterations:
        images.check_not_input(settings.output.checkpoint_output, inputs, "--checkpoint-output", pattern=True)


def check_outputs(settings, output):
    """Before any work: the output and the checkpoints can be written, and replace no input image."""
    check_not_over_inputs(settings, output)
    images.check_writable(output)
    if settings.output.checkpoint_iterations:
        images.check_writable(settings.output.checkpoint_output % "x")


class Prepared(NamedTuple):
    """What a transfer decides before it optimises, once for all the images of one size (a video's
    frames): the levels, which run in tiles, the memory estimate, the network, the style images
    (recoloured for --preserve-colors before), the parameters every output stores."""
    settings: Settings
    height: int
    width: int
    levels: list
    tile_sizes: list
    estimate: int
    net: object
    styles: list
    params: dict


def prepare(settings, content, styles, log=print):
    """Check and plan a transfer of `content` (uint8 HxWx3; its size, and its colours for
    --preserve-colors before) by `settings`, and load the network: a Prepared."""
    # TensorFlow and the network code take seconds to import: only now, once the flags, the files
    # and the output have been checked, so that a mistake is reported at once.
    import backends
    import hierarchy
    import memory

    # Everything that can be refused is checked before any large allocation or computation.
    width = settings.inputs.width
    height, width = images.size_at_width(content.shape, width) if width else content.shape[:2]
    found = hierarchy.levels(height, width, settings.hierarchy.iterations, settings.hierarchy.max_hierarchy)
    network_class = backends.network_class(settings.network.network_type)
    auto = settings.hierarchy.max_hierarchy == "auto"
    hierarchy.check_sizes(found, styles, settings.style_scales, network_class, capped=auto)
    weights_path = backends.find_weights(settings.network)
    tile_sizes, estimate = memory.plan_tiles(network_class, [level[:2] for level in found], settings.optimizer.optim,
                                             weights_path, settings.tiles.tile_size, log)
    tiled_levels = {f"{w}x{h}": t for (h, w, _), t in zip(found, tile_sizes) if t}
    # As the files store them (JSON: tuples become lists), sorted by name
    params = json.loads(json.dumps(dict(sorted(dict(settings.flags(), tiled_levels=tiled_levels).items()))))

    if settings.hierarchy.preserve_colors == "before":
        resized = images.resize(content, (height, width))
        styles = [colortransfer(resized, style, "hsv") for style in styles]
    net = backends.load(settings.network, weights_path)
    if auto:
        per_pixel, overhead = backends.iteration_seconds(net)
        seconds = sum(n * (overhead + per_pixel * h * w * (TILE_COST if t else 1.0))
                      for (h, w, n), t in zip(found, tile_sizes))
        log(hierarchy.describe(found, tile_sizes, seconds))
    elif len(found) == 1 and width > hierarchy.SINGLE_LEVEL_WARNING:
        print(f"warning: one level at {width} px paints the style's strokes at a small scale only: "
              "--max-hierarchy auto paints large ones first, then refines them", file=sys.stderr)
    return Prepared(settings, height, width, found, tile_sizes, estimate, net, styles, params)


def render(settings, content, styles, initial=None, log=print, on_iteration=None, quiet=False):
    """The transfer of loaded images (uint8 HxWx3 arrays) by `settings`: a Result, its image the
    collage unless --no-collage. Checkpoints are written as the run goes. `on_iteration(Progress)`
    is called after every iteration; `quiet` shows no progress bar and prints no losses."""
    return render_prepared(prepare(settings, content, styles, log), content, initial, log, on_iteration, quiet)


def render_prepared(prepared, content, initial=None, log=print, on_iteration=None, quiet=False, **frame):
    """The transfer of `content` by a Prepared plan (render's). `frame` (a video's): the `seed` of
    this image's noise, its `temporal` targets and the levels' stylizer `cache` (hierarchy.run_levels)."""
    import hierarchy
    import memory
    from device import tf
    settings, params, found, tile_sizes = prepared.settings, prepared.params, prepared.levels, prepared.tile_sizes
    content = images.resize(content, (prepared.height, prepared.width))
    if initial is not None:
        initial = images.resize(initial, (prepared.height, prepared.width))
    workers = None
    if settings.tiles.ray and any(tile_sizes):
        import cluster  # optional: Ray
        workers = cluster.TileWorkers(settings.tiles, settings.network,
                                      log=lambda message: print(message, file=sys.stderr))
    elif settings.tiles.ray:
        print("--ray: no level of this run is tiled (see --tile-size), so it runs here", file=sys.stderr)

    def checkpoint(step, height, width):
        path = settings.output.checkpoint_output % ("%04dx%04d-%04d" % (height, width, step.iteration))
        images.save_image(path, step.image, json.dumps(dict(params, checkpoint=path)))

    def progress(level, iteration, losses, image):
        h, w, n = found[level]
        on_iteration(Progress(len(found) - level, len(found), w, h, iteration, n, losses, image))

    try:
        image = hierarchy.run_levels(settings, content, prepared.styles, initial, prepared.net, found, tile_sizes,
                                     workers, log, on_iteration and progress, checkpoint, quiet, **frame)
    except Stopped as stop:
        why = "numerical" if isinstance(stop.cause, NumericalError) else "interrupted"
        return Result(stop.image, dict(params, partial=PARTIAL[why]), stop.cause)
    except (tf.errors.ResourceExhaustedError, MemoryError):
        raise ToolError("out of memory: " + memory.advice(prepared.estimate)) from None
    finally:
        if workers is not None:
            workers.close()
    if not settings.output.no_collage:
        image, _ = build_collage(image, content, prepared.styles[0], "crop")
    return Result(image, params)


def plan_of(prepared):
    """The levels as the preview shows them: [(width, height, iterations, tiles)], smallest first."""
    from tiles import grid
    return [(w, h, n, len(grid(h, w, tile)) if tile else 1)
            for (h, w, n), tile in reversed(list(zip(prepared.levels, prepared.tile_sizes)))]


def run(settings, log=print, live=None):
    """The command line's run: checks, loads, renders and writes the output (or, for a run that
    stopped early, its best image marked partial). Returns (Result, output path). `live`: the
    preview page (preview.py) that is told the plan and every iteration."""
    output = output_path(settings)
    check_outputs(settings, output)
    content, styles, initial = load_images(settings.inputs)
    prepared = prepare(settings, content, styles, log)
    if live:
        live.plan(plan_of(prepared), settings.flags())
    result = render_prepared(prepared, content, initial, log, on_iteration=live and live.iteration)
    images.save_image(output, result.pixels, result.params_text(), settings.output.bit_depth)
    return result, output


def transfer(content, styles, progress=None, preview=False, preview_host="127.0.0.1", preview_port=0, **settings):
    """Repaint `content` in the style of `styles` (one image or a list): each a file path, a PIL
    image or an HxWx3 array of 0..255 values. Settings are keywords named as the command line's
    flags, with their defaults (`network_type="sqz"`, `width=512`, `iterations=1000`,
    `max_hierarchy=2`, ...); `initial` may be an image too; `output` also writes the result there.
    `preview=True` serves the live page of the run (--preview) and prints its address.

    Progress: the command line's bar and loss lines, or, with `progress` a function, none of them
    and progress(Progress) after every iteration. Returns a Result: `.image` (a PIL image: the
    collage unless no_collage=True), `.pixels`, `.params`, `.save(path)`. Ctrl-C (or a loss that
    is not finite) ends the run early with its best image so far: `.partial` then says why."""
    if isinstance(styles, (str, os.PathLike, np.ndarray)) or hasattr(styles, "getbands"):
        styles = [styles]
    initial = settings.pop("initial", None)
    named = dict(content=images.describe(content), styles=tuple(images.describe(s) for s in styles),
                 initial=None if initial is None else images.describe(initial))
    chosen = Settings.from_flags(**named, **settings)
    if chosen.output.output:
        check_outputs(chosen, chosen.output.output)
    loaded = (images.as_rgb(content, "content image"), [images.as_rgb(s, "style image") for s in styles],
              None if initial is None else images.as_rgb(initial, "initial image"))
    quiet = progress is not None
    log = (lambda *a: None) if quiet else print
    with serving(preview and (preview_host, preview_port)) as live:
        prepared = prepare(chosen, *loaded[:2], log)
        if live:
            live.plan(plan_of(prepared), chosen.flags())
        on_iteration = progress
        if live:
            on_iteration = live.iteration if progress is None else (lambda p: (live.iteration(p), progress(p)))
        result = render_prepared(prepared, loaded[0], loaded[2], log, on_iteration, quiet)
        if live:
            live.finish(result.pixels, result.partial)
    if result.stopped is not None:
        print(f"neural-style: {result.partial}: the result is the best image so far (partial)", file=sys.stderr)
    if chosen.output.output:
        result.save(chosen.output.output, chosen.output.bit_depth)
    return result
