"""neural-style: repaint a photo in the style of one or more paintings.

    python neural_style.py --content photo.jpg --styles painting.jpg [options]

Flow: flags -> images -> hierarchy of scales -> stylize (network + losses + optimizer) -> output.
"""
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")  # TensorFlow's start-up chatter is not for users

import json  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from functools import partial  # noqa: E402

import numpy as np  # noqa: E402

import images  # noqa: E402
import names  # noqa: E402
from build_collage import build_collage  # noqa: E402
from errors import ArgumentParser, Interrupted, NumericalError, ToolError, UsageError, run_cli  # noqa: E402
from luma_transfer import colortransfer  # noqa: E402

NETWORK_TYPES = ("vgg", "sqz")
OPTIMIZERS = ("lbfgs", "lbfgs-device", "cg", "adam")
POOLINGS = ("max", "avg")
STYLE_FEAT_TYPES = ("gram", "mean", "distr")
PRESERVE_COLORS = ("none", "before", "all", "out", "interm")
PRECISIONS = ("auto", "float32", "bfloat16", "float16")
MIN_LEVEL_SIDE = 128        # a new hierarchy level is added while the last one's shorter side exceeds this
MIN_LEVEL_ITERATIONS = 25   # with several levels, none runs fewer iterations
MIN_TILE_SIZE = 128         # smaller tiles leave too little room inside their overlaps
AUTO_TILE_SIZES = (4096, 3072, 2048, 1536, 1024, 768, 512, 384, 256, MIN_TILE_SIZE)  # tried largest first


def build_parser():
    p = ArgumentParser(
        description="Neural style transfer (Gatys et al.) with hierarchical transfer, VGG19 and "
                    "SqueezeNet backends, colour preservation and collages.",
        epilog="Exit codes: 0 success, 1 failure (bad file, weights, memory), 2 usage error, "
               "130 interrupted (Ctrl-C), 143 terminated. Weights are looked up as --network-file, "
               "$NEURAL_STYLE_MODELS, the repository folder, the user cache, then downloaded.")
    g = p.add_argument_group("input and output")
    g.add_argument("--content", metavar="FILE", help="content image (required)")
    g.add_argument("--styles", nargs="+", metavar="FILE", help="one or more style images (required)")
    g.add_argument("--output", metavar="FILE",
                   help="output file; the extension picks the format (default: an auto-generated "
                        "t_<content>_<style>_<parameters>.jpg in the current folder)")
    g.add_argument("--out-postfix", metavar="TEXT", help="text appended to the auto-generated name")
    g.add_argument("--width", type=int, metavar="PX",
                   help="resize the content to this width, keeping its aspect (default: its own size)")
    g.add_argument("--style-scales", type=float, nargs="+", metavar="S",
                   help="one scale per style: each style is resized to S x the content width (default: 1.0)")
    g.add_argument("--initial", metavar="FILE",
                   help="start from this image (resized to the content) instead of the content")
    g.add_argument("--initial-noiseblend", type=float, default=0.0, metavar="N",
                   help="blend the start image with Gaussian noise, 0..1 (default: %(default)s)")
    g.add_argument("--seed", type=int, metavar="N", help="seed for the noise, for reproducible runs")
    g.add_argument("--print-iterations", type=int, metavar="N",
                   help="print the losses every N iterations (default: only at the start and end)")
    g.add_argument("--checkpoint-output", default="checkpoint%s.jpg", metavar="PATTERN",
                   help="checkpoint file name; %%s becomes HHHHxWWWW-IIII (default: %(default)s)")
    g.add_argument("--checkpoint-iterations", type=int, metavar="N",
                   help="write a checkpoint every N iterations (L-BFGS/CG: at least 50; default: none)")
    g.add_argument("--no-collage", action="store_true",
                   help="write the plain result instead of the collage of result, content and style")

    g = p.add_argument_group("network")
    g.add_argument("--network-type", default="vgg", choices=NETWORK_TYPES,
                   help="feature network: vgg (VGG19) or sqz (SqueezeNet v1.1) (default: %(default)s)")
    g.add_argument("--network-file", metavar="FILE",
                   help="weights file (default: imagenet-vgg-verydeep-19.mat or sqz_notop.mat, found "
                        "or downloaded as described below)")
    g.add_argument("--pooling", default="max", choices=POOLINGS,
                   help="pooling layers: max or avg (default: %(default)s)")
    g.add_argument("--precision", default="auto", choices=PRECISIONS,
                   help="precision of the convolutions (losses and optimiser stay float32): auto picks "
                        "bfloat16 for vgg on CPUs with native bfloat16 (measured 1.8x faster, final loss "
                        "within 1%%), else float32 (default: %(default)s)")

    g = p.add_argument_group("losses")
    g.add_argument("--content-weight", type=float, default=5.0, metavar="W",
                   help="content loss weight, >= 0 (default: %(default)s)")
    g.add_argument("--content-weight-blend", type=float, default=1.0, metavar="B",
                   help="content layer weights, 0..1: 1 puts all weight on the first (finer) content "
                        "layer, 0 on the last (default: %(default)s)")
    g.add_argument("--style-weight", type=float, default=500.0, metavar="W",
                   help="style loss weight, >= 0 (default: %(default)s)")
    g.add_argument("--style-layer-weight-exp", type=float, default=1.0, metavar="E",
                   help="style layer weights 1, E, E^2, ...: below 1 favours fine style features, "
                        "above 1 coarse ones; >= 0 (default: %(default)s)")
    g.add_argument("--style-blend-weights", type=float, nargs="+", metavar="W",
                   help="one weight per style, any numbers >= 0 (not all 0), normalised to sum 1: "
                        "2 1 weighs the first style twice the second (default: equal)")
    g.add_argument("--style-feat-type", default="gram", choices=STYLE_FEAT_TYPES,
                   help="style features: gram (Gram matrices), mean (mean activations) or distr "
                        "(mean and standard deviation) (default: %(default)s)")
    g.add_argument("--style-distr-weight", type=float, default=0.0, metavar="W",
                   help="weight of the distribution remapping loss, >= 0; 0 turns it off (default: %(default)s)")
    g.add_argument("--ashift", type=float, default=0.0, metavar="A",
                   help="activation shift for Gram matrices, e.g. 50..100 for abstract transfer "
                        "(default: %(default)s)")
    g.add_argument("--tv-weight", type=float, default=100.0, metavar="W",
                   help="total variation (smoothness) weight, >= 0 (default: %(default)s)")

    g = p.add_argument_group("optimiser")
    g.add_argument("--optim", default="lbfgs", choices=OPTIMIZERS,
                   help="optimiser: lbfgs (SciPy's L-BFGS-B, as the original), lbfgs-device (the same algorithm "
                        "in TensorFlow, its state on the device: for GPUs, and checkpoints keep its history), cg "
                        "(SciPy's conjugate gradient) or adam (default: %(default)s)")
    g.add_argument("--iterations", type=int, default=1000, metavar="N",
                   help="iterations at full size (default: %(default)s)")

    g = p.add_argument_group("print sizes")
    g.add_argument("--tile-size", type=int, metavar="PX",
                   help="optimise every level larger than PX pixels in overlapping tiles of at most PX x PX "
                        f"(at least {MIN_TILE_SIZE}), so memory does not grow with the image; 0 never tiles "
                        "(default: tile only a level that would not fit in the free memory, with the largest "
                        "tile that fits; on a GPU, whose free memory is not known in advance, give it)")

    g = p.add_argument_group("Ray cluster (pip install '.[ray]')")
    g.add_argument("--ray", nargs="?", const="local", metavar="ADDRESS",
                   help="optimise the tiles of tiled levels as Ray tasks (with batch.py: run each pair as one); "
                        "no ADDRESS starts a local Ray for the run, 'auto' or host:port or ray://host:port "
                        "joins an existing cluster")
    g.add_argument("--cpus-per-task", type=int, default=1, metavar="N",
                   help="CPUs each Ray task asks for; TensorFlow uses that many threads (default: %(default)s)")
    g.add_argument("--gpus-per-task", type=float, default=0, metavar="N",
                   help="GPUs each Ray task asks for (default: %(default)s)")

    g = p.add_argument_group("hierarchy")
    g.add_argument("--max-hierarchy", type=int, default=1, metavar="L",
                   help="up to L scales, each half the size of the next, smallest first; 1 is plain "
                        "single-scale transfer (default: %(default)s)")

    g = p.add_argument_group("colour")
    g.add_argument("--preserve-colors", default="none", choices=PRESERVE_COLORS,
                   help="keep the content's colours: none; before (recolour the styles first); out "
                        "(the output); interm (intermediate scales); all (both) (default: %(default)s)")
    g.add_argument("--h-preserve-colors", action="store_true",
                   help="also preserve colours at the intermediate hierarchy scales")

    g = p.add_argument_group("Adam")
    g.add_argument("--learning-rate", type=float, default=10.0, metavar="LR",
                   help="Adam learning rate, > 0 (default: %(default)s)")
    g.add_argument("--beta1", type=float, default=0.9, help="Adam beta1, 0..1 (default: %(default)s)")
    g.add_argument("--beta2", type=float, default=0.999, help="Adam beta2, 0..1 (default: %(default)s)")
    g.add_argument("--eps", type=float, default=1e-08, help="Adam epsilon, > 0 (default: %(default)s)")

    g = p.add_argument_group("other")
    g.add_argument("--show-params", metavar="FILE",
                   help="print the parameters stored in an output file and exit")
    return p


def validate(args):
    """Usage errors, found before any work starts."""
    if args.show_params:
        return
    missing = [flag for flag, value in (("--content", args.content), ("--styles", args.styles)) if not value]
    if missing:
        raise UsageError(f"the following arguments are required: {', '.join(missing)}")
    for flag, value, low in (("--iterations", args.iterations, 1), ("--print-iterations", args.print_iterations, 1),
                             ("--checkpoint-iterations", args.checkpoint_iterations, 1),
                             ("--width", args.width, 1), ("--max-hierarchy", args.max_hierarchy, 1)):
        if value is not None and value < low:
            raise UsageError(f"{flag} must be at least {low}, got {value}")
    for flag, value in (("--content-weight-blend", args.content_weight_blend),
                        ("--initial-noiseblend", args.initial_noiseblend)):
        if not 0.0 <= value <= 1.0:
            raise UsageError(f"{flag} must be between 0 and 1, got {value}")
    for flag, value in (("--content-weight", args.content_weight), ("--style-weight", args.style_weight),
                        ("--style-distr-weight", args.style_distr_weight), ("--tv-weight", args.tv_weight),
                        ("--style-layer-weight-exp", args.style_layer_weight_exp)):
        if not value >= 0.0:
            raise UsageError(f"{flag} must be 0 or more, got {value}")
    count = len(args.styles)
    for flag, values in (("--style-scales", args.style_scales), ("--style-blend-weights", args.style_blend_weights)):
        if values is not None and len(values) != count:
            raise UsageError(f"{flag} needs one value per style: {count} style(s), {len(values)} value(s)")
    if args.style_scales and not all(s > 0 for s in args.style_scales):
        raise UsageError(f"--style-scales must all be above 0, got {args.style_scales}")
    if args.style_blend_weights is not None:
        if not all(w >= 0.0 and np.isfinite(w) for w in args.style_blend_weights):
            raise UsageError(f"--style-blend-weights must each be 0 or more, got {args.style_blend_weights}")
        if sum(args.style_blend_weights) <= 0:
            raise UsageError("--style-blend-weights must not all be 0")
    if "%s" not in args.checkpoint_output:
        raise UsageError(f"--checkpoint-output must contain %s (replaced by size and iteration), "
                         f"got {args.checkpoint_output!r}")
    try:
        args.checkpoint_output % "x"
    except (TypeError, ValueError):
        raise UsageError(f"--checkpoint-output must contain exactly one %s and no other %% codes "
                         f"(write %%%% for a literal %%), got {args.checkpoint_output!r}") from None
    if not args.learning_rate > 0:
        raise UsageError(f"--learning-rate must be above 0, got {args.learning_rate}")
    for flag, value in (("--beta1", args.beta1), ("--beta2", args.beta2)):
        if not 0.0 <= value < 1.0:
            raise UsageError(f"{flag} must be at least 0 and below 1, got {value}")
    if not args.eps > 0:
        raise UsageError(f"--eps must be above 0, got {args.eps}")
    if args.cpus_per_task < 1 or not args.gpus_per_task >= 0:
        raise UsageError("--cpus-per-task must be at least 1 and --gpus-per-task 0 or more")
    if args.tile_size is not None and args.tile_size != 0 and args.tile_size < MIN_TILE_SIZE:
        raise UsageError(f"--tile-size must be 0 (no tiles) or at least {MIN_TILE_SIZE}, got {args.tile_size}")


def hierarchy_levels(height, width, iterations, max_hierarchy):
    """[(height, width, iterations)] with level 0 the full size (SPEC section 5)."""
    levels = [(height, width, iterations)]
    k = 1
    while min(levels[-1][:2]) > MIN_LEVEL_SIDE and len(levels) < max_hierarchy:
        levels.append((height // 2 ** k, width // 2 ** k, int(iterations / 1.5 ** k)))
        k += 1
    if len(levels) > 1:
        levels = [(h, w, max(MIN_LEVEL_ITERATIONS, n)) for h, w, n in levels]
    return levels


def color_coefficient(level, level_count, preserve_colors, h_preserve_colors):
    """How much of the YCbCr colour transfer of the content goes into a level's output."""
    if level == 0:
        return 1.0 if preserve_colors in ("all", "out") else 0.0
    if preserve_colors in ("all", "interm") or h_preserve_colors:
        if level_count == 2:
            return 1.0  # the one intermediate level (the original divided by zero here)
        a = (level_count - 1 - level) / (level_count - 2)
        return 0.3 * a + 1.0 * (1 - a)
    return 0.0


def normalised_blend_weights(weights, count):
    weights = np.ones(count) if weights is None else np.asarray(weights, dtype=np.float64)
    return weights / weights.sum()


def auto_output_name(args):
    return names.output_name(
        args.content, args.styles[0], args.optim, args.iterations, args.max_hierarchy, args.pooling,
        args.style_weight, args.style_distr_weight, args.style_layer_weight_exp, args.content_weight_blend,
        args.ashift, args.network_type, args.style_feat_type, args.preserve_colors, args.out_postfix)


def check_not_over_inputs(args, output, flag="--output"):
    """A usage error if the output or a checkpoint would replace one of the run's input images."""
    inputs = [("content image", args.content), *(("style image", s) for s in args.styles),
              ("initial image", args.initial)]
    images.check_not_input(output, inputs, flag)
    if args.checkpoint_iterations:
        images.check_not_input(args.checkpoint_output, inputs, "--checkpoint-output", pattern=True)


def params_text(args, **extra):
    """Every flag of the run (and notes such as partial=..., the tile sizes used), stored in the
    output files."""
    params = {k: v for k, v in sorted(vars(args).items()) if k != "show_params"}
    return json.dumps(dict(params, **extra))


def import_tensorflow_quietly():
    """Import TensorFlow with its C++ start-up messages (oneDNN, CUDA probing, absl) hidden:
    they go straight to file descriptor 2, which TF_CPP_MIN_LOG_LEVEL does not cover."""
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


def network_module(network_type):
    import_tensorflow_quietly()
    import squeezenet
    import vgg
    return {"vgg": vgg, "sqz": squeezenet}[network_type]


def level_style_sizes(styles, scales, width):
    """(height, width) of each style image at a level of this width."""
    return [images.size_at_width(s.shape, max(1, round(scale * width))) for s, scale in zip(styles, scales)]


def check_sizes(levels, styles, scales, network_class):
    """Every image at every level must be large enough for the network (checked up front)."""
    name = network_class.__name__
    for height, width, _ in levels:
        for (h, w), what in [((height, width), "the content"),
                             *((size, "a style image") for size in level_style_sizes(styles, scales, width))]:
            if min(h, w) < network_class.min_size:
                raise ToolError(f"{what} would be {w}x{h} px, too small for {name}: it needs at least "
                                f"{network_class.min_size} px on each side (use a larger --width or "
                                "--style-scales, or a smaller --max-hierarchy)")


def memory_advice(estimate, available=None):
    have = f", {available / 2**30:.1f} GiB available" if available else ""
    return (f"the transfer needs about {estimate / 2**30:.1f} GiB of memory{have}; use a smaller --width, "
            "--optim adam, --network-type sqz or a smaller --tile-size (a larger --max-hierarchy saves "
            "time, not memory: the full-size level needs it too)")


def cpu_has_native_bfloat16():
    try:
        with open("/proc/cpuinfo") as f:
            flags = next((line for line in f if line.startswith("flags")), "").split()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


def compute_dtype(precision, network_type):
    """The convolutions' dtype. `auto` adopts bfloat16 only where it was measured faster with
    the final loss within 2% of float32's (README, performance): VGG19 on a CPU with native
    bfloat16. SqueezeNet gained nothing from it; GPUs are not measured here, so they keep float32."""
    import tensorflow as tf
    if precision == "auto":
        on_gpu = bool(tf.config.list_physical_devices("GPU"))
        precision = "bfloat16" if network_type == "vgg" and not on_gpu and cpu_has_native_bfloat16() else "float32"
    return getattr(tf, precision)


def plan_memory(module, levels, optim, weights_path, tile_size=None, log=print):
    """Tile sizes per level (None: whole) and the memory estimate, decided before any work.

    `tile_size` (--tile-size): N tiles every level larger than N px; 0 never tiles; None tiles a
    level whose estimate exceeds the free CPU memory, with the largest tile that fits. A run that
    does not fit even in the smallest tile is refused. GPU memory is not known in advance:
    there, only --tile-size tiles."""
    import network
    import tensorflow as tf
    weights_bytes = 1.3 * os.path.getsize(weights_path)  # the weights file is read whole, then converted
    sizes = [(h, w) for h, w, _ in levels]

    def fits(size, tile):
        return network.level_memory(module.NETWORK, size, optim, tile) + weights_bytes <= available

    available = None if tf.config.list_physical_devices("GPU") else network.available_memory()
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
                raise ToolError(memory_advice(network.estimate_memory(module.NETWORK, [size], optim, weights_bytes,
                                                                      smallest), available))
            plan[i] = candidates[0]
            log(f"level {size[1]}x{size[0]} needs more than the {available / 2**30:.1f} GiB of memory "
                f"available whole: it runs in tiles of at most {plan[i]}x{plan[i]} px")
    return plan, network.estimate_memory(module.NETWORK, sizes, optim, weights_bytes, plan)


def transfer(args, content, styles, initial, net, levels, log=print, on_iteration=None, tile_sizes=None,
             workers=None):
    """Run the hierarchy of scales; returns the full-size result (float HxWx3).
    `tile_sizes[level]` (None: whole) runs a level in tiles (tiles.py), on Ray `workers` if given.
    `on_iteration(level, i, losses)` is called after every iteration (for benchmarks)."""
    from stylize import LossWeights, stylize
    from tiles import stylize_tiled

    weights = LossWeights(
        content_weight=args.content_weight, content_weight_blend=args.content_weight_blend,
        style_weight=args.style_weight, style_layer_weight_exp=args.style_layer_weight_exp,
        style_distr_weight=args.style_distr_weight, style_feat_type=args.style_feat_type,
        tv_weight=args.tv_weight, ashift=args.ashift)
    blend = normalised_blend_weights(args.style_blend_weights, len(styles))
    scales = args.style_scales or [1.0] * len(styles)
    rng = np.random.default_rng(args.seed)
    running = (initial if initial is not None else content).astype(np.float32)
    for level in reversed(range(len(levels))):
        height, width, iterations = levels[level]
        level_content = images.resize(content.astype(np.float32), (height, width))
        running = images.resize(running, (height, width))
        start = 0.9 * running + 0.1 * level_content
        level_styles = [images.resize(s.astype(np.float32), size)
                        for s, size in zip(styles, level_style_sizes(styles, scales, width))]
        desc = f"level {len(levels) - level}/{len(levels)} {width}x{height}" if len(levels) > 1 else None
        if len(levels) > 1:
            log(f"hierarchy level {len(levels) - level}/{len(levels)}: {width}x{height}, {iterations} iterations")
        tile = tile_sizes[level] if tile_sizes else None
        run = partial(stylize_tiled, tile_size=tile, workers=workers) if tile else stylize
        try:
            for step in run(net, start, level_content, level_styles, blend, weights, optim=args.optim,
                            iterations=iterations, print_iterations=args.print_iterations,
                            checkpoint_iterations=args.checkpoint_iterations,
                            learning_rate=args.learning_rate, beta1=args.beta1, beta2=args.beta2,
                            epsilon=args.eps, initial_noiseblend=args.initial_noiseblend, rng=rng, desc=desc,
                            on_iteration=on_iteration and (lambda i, losses, lv=level: on_iteration(lv, i, losses))):
                if args.checkpoint_iterations:
                    path = args.checkpoint_output % ("%04dx%04d-%04d" % (height, width, step.iteration))
                    images.save_image(path, step.image, params_text(args, checkpoint=path))
        except (Interrupted, NumericalError) as e:
            e.partial_image = images.resize(e.partial_image, content.shape[:2])
            raise
        running = step.image
        coefficient = color_coefficient(level, len(levels), args.preserve_colors, args.h_preserve_colors)
        if coefficient:
            running = coefficient * colortransfer(level_content, running, "yuv") + (1 - coefficient) * running
    return running


def show_params(path):
    params = images.read_params(path)
    if params is None:
        raise ToolError(f"{path} holds no neural-style parameters")
    for key, value in json.loads(params).items():
        print(f"{key}: {value}")


def main(argv=None):
    args = build_parser().parse_args(argv)
    validate(args)
    if args.show_params:
        return show_params(args.show_params)
    started = time.time()
    output = args.output or auto_output_name(args)
    check_not_over_inputs(args, output)
    images.check_writable(output)
    if args.checkpoint_iterations:
        images.check_writable(args.checkpoint_output % "x")
    content, styles, initial = load_inputs(args)
    try:
        result = render(args, content, styles, initial)
    except Interrupted as e:
        if getattr(e, "partial_image", None) is not None:
            images.save_image(output, e.partial_image, params_text(args, partial="interrupted"))
            print(f"interrupted: the best image so far (partial) was written to {output}", file=sys.stderr)
        raise
    except NumericalError as e:
        images.save_image(output, e.partial_image, params_text(args, partial="stopped: the loss was not finite"))
        raise ToolError(f"{e}; the best finite image (partial) was written to {output}") from None
    images.save_image(output, result, params_text(args))
    print(f"wrote {output} in {time.time() - started:.1f} s")


def load_inputs(args, read=None):
    """The run's content, style and initial images (uint8 arrays). `read(path)` gives a file's
    bytes where the files are not on this machine (a Ray worker is sent them)."""
    def load(path, what):
        return images.load_image(path, what, data=read(path) if read else None)
    return (load(args.content, "content image"), [load(path, "style image") for path in args.styles],
            load(args.initial, "initial image") if args.initial else None)


def render(args, content, styles, initial, log=print):
    """Everything between the loaded images and the result (float HxWx3, the collage included):
    sizes, memory plan, network, the hierarchy of scales. Notes the tiled levels in `args`."""
    # Everything that can be refused is checked before any large allocation or computation.
    height, width = images.size_at_width(content.shape, args.width) if args.width else content.shape[:2]
    levels = hierarchy_levels(height, width, args.iterations, args.max_hierarchy)
    module = network_module(args.network_type)
    check_sizes(levels, styles, args.style_scales or [1.0] * len(styles), module.NETWORK)
    import network
    import tensorflow as tf
    weights_path = network.find_weights(module.SOURCE, args.network_file)
    tile_sizes, estimate = plan_memory(module, levels, args.optim, weights_path, args.tile_size, log)
    args.tiled_levels = {f"{w}x{h}": t for (h, w, _), t in zip(levels, tile_sizes) if t}  # stored in the output

    content = images.resize(content, (height, width))
    if initial is not None:
        initial = images.resize(initial, (height, width))
    if args.preserve_colors == "before":
        styles = [colortransfer(content, style, "hsv") for style in styles]
    net = module.load(weights_path, args.pooling, compute_dtype(args.precision, args.network_type))
    workers = None
    if args.ray and any(tile_sizes):
        import cluster
        workers = cluster.TileWorkers(args, log=lambda message: print(message, file=sys.stderr))
    elif args.ray:
        print("--ray: no level of this run is tiled (see --tile-size), so it runs here", file=sys.stderr)
    try:
        result = transfer(args, content, styles, initial, net, levels, log, tile_sizes=tile_sizes, workers=workers)
    except (tf.errors.ResourceExhaustedError, MemoryError):
        raise ToolError("out of memory: " + memory_advice(estimate)) from None
    finally:
        if workers is not None:
            workers.close()
    if not args.no_collage:
        result, _ = build_collage(result, content, styles[0], "crop")
    return result


def cli():
    """Console entry point (`pip install .` installs it as a command)."""
    run_cli(main, sys.argv[1:])


if __name__ == "__main__":
    cli()
