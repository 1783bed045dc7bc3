"""neural-style: repaint a photo in the style of one or more paintings.

    python neural_style.py --content photo.jpg --styles painting.jpg [options]

The command line: parses and checks the flags, runs the pipeline (pipeline.py), reports.
"""
import argparse
import json
import sys
import time

import optimizers
import pipeline
from errors import ArgumentParser, NumericalError, ToolError, UsageError, run_cli
from images import read_params
from preview import serving
from settings import (ANTIALIAS, DEFAULTS as D, MIN_TILE_SIZE, NETWORK_TYPES, POOLINGS, PRECISIONS, PRESERVE_COLORS,
                      STYLE_FEAT_TYPES, Settings)


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
    g.add_argument("--initial-noiseblend", type=float, default=D["initial_noiseblend"], metavar="N",
                   help="blend the start image with Gaussian noise, 0..1 (default: %(default)s)")
    g.add_argument("--seed", type=int, metavar="N", help="seed for the noise, for reproducible runs")
    g.add_argument("--print-iterations", type=int, metavar="N",
                   help="print the losses every N iterations (default: only at the start and end)")
    g.add_argument("--checkpoint-output", default=D["checkpoint_output"], metavar="PATTERN",
                   help="checkpoint file name; %%s becomes HHHHxWWWW-IIII (default: %(default)s)")
    g.add_argument("--checkpoint-iterations", type=int, metavar="N",
                   help="write a checkpoint every N iterations (L-BFGS/CG: at least 50; default: none)")
    g.add_argument("--bit-depth", type=int, default=D["bit_depth"], choices=(8, 16),
                   help="bits per channel of the output: 16 keeps the optimised image's precision, for prints "
                        "(a .png or .tif --output; checkpoints stay 8-bit) (default: %(default)s)")
    g.add_argument("--no-collage", action="store_true",
                   help="write the plain result instead of the collage of result, content and style")

    add_transfer_flags(p)
    add_preview_flags(p)
    g = p.add_argument_group("other")
    g.add_argument("--show-params", metavar="FILE",
                   help="print the parameters stored in an output file and exit")
    return p


def add_transfer_flags(p):
    """The flags of the transfer itself (network, losses, optimiser, print sizes, Ray, hierarchy,
    colour, Adam), which neural_video.py takes too."""
    g = p.add_argument_group("network")
    g.add_argument("--network-type", default=D["network_type"], choices=NETWORK_TYPES,
                   help="feature network: vgg (VGG19) or sqz (SqueezeNet v1.1) (default: %(default)s)")
    g.add_argument("--network-file", metavar="FILE",
                   help="weights file (default: imagenet-vgg-verydeep-19.mat or sqz_notop.mat, found "
                        "or downloaded as described below)")
    g.add_argument("--pooling", default=D["pooling"], choices=POOLINGS,
                   help="pooling layers: max or avg (default: %(default)s)")
    g.add_argument("--precision", default=D["precision"], choices=PRECISIONS,
                   help="precision of the convolutions (losses and optimiser stay float32): auto picks "
                        "bfloat16 for vgg on CPUs with native bfloat16, where it is faster with the final "
                        "loss within 2%% of float32's, else float32 (default: %(default)s)")
    g.add_argument("--antialias", default=D["antialias"], choices=ANTIALIAS,
                   help="anti-alias each stride of the network (pool at every position and blur, or average "
                        "phases, before striding), so that the image cannot fit one alignment of it with a grid "
                        "of dots: auto is on for sqz and off for vgg; off is the original's network "
                        "(default: %(default)s)")

    g = p.add_argument_group("losses")
    g.add_argument("--content-weight", type=float, default=D["content_weight"], metavar="W",
                   help="content loss weight, >= 0 (default: %(default)s)")
    g.add_argument("--content-weight-blend", type=float, default=D["content_weight_blend"], metavar="B",
                   help="content layer weights, 0..1: 1 puts all weight on the first (finer) content "
                        "layer, 0 on the last (default: %(default)s)")
    g.add_argument("--style-weight", type=float, default=D["style_weight"], metavar="W",
                   help="style loss weight, >= 0 (default: %(default)s)")
    g.add_argument("--style-layer-weight-exp", type=float, default=D["style_layer_weight_exp"], metavar="E",
                   help="style layer weights 1, E, E^2, ...: below 1 favours fine style features, "
                        "above 1 coarse ones; >= 0 (default: %(default)s)")
    g.add_argument("--style-blend-weights", type=float, nargs="+", metavar="W",
                   help="one weight per style, any numbers >= 0 (not all 0), normalised to sum 1: "
                        "2 1 weighs the first style twice the second (default: equal)")
    g.add_argument("--style-feat-type", default=D["style_feat_type"], choices=STYLE_FEAT_TYPES,
                   help="style features: gram (Gram matrices), mean (mean activations), distr "
                        "(mean and standard deviation) or w2 (means and covariances, the Wasserstein-2 "
                        "distance) (default: %(default)s)")
    g.add_argument("--style-distr-weight", type=float, default=D["style_distr_weight"], metavar="W",
                   help="weight of the distribution remapping loss, >= 0; 0 turns it off (default: %(default)s)")
    g.add_argument("--ashift", type=float, default=D["ashift"], metavar="A",
                   help="activation shift for Gram matrices, e.g. 50..100 for abstract transfer "
                        "(default: %(default)s)")
    g.add_argument("--tv-weight", type=float, default=D["tv_weight"], metavar="W",
                   help="total variation (smoothness) weight, >= 0 (default: %(default)s)")
    g.add_argument("--unbounded", action="store_true",
                   help="optimise the image without keeping its pixels within 0..255, as the original did "
                        "(saving then clips it, which loses part of what was optimised)")

    g = p.add_argument_group("optimiser")
    g.add_argument("--optim", default=D["optim"], choices=optimizers.NAMES,
                   help="optimiser: lbfgs (L-BFGS in TensorFlow, its state on the device; checkpoints keep its "
                        "history), lbfgs-scipy (SciPy's L-BFGS-B, as the original ran it), cg (SciPy's conjugate "
                        "gradient) or adam (default: %(default)s)")
    g.add_argument("--iterations", type=int, default=D["iterations"], metavar="N",
                   help="iterations at full size (default: %(default)s)")

    g = p.add_argument_group("print sizes")
    g.add_argument("--tile-size", type=int, metavar="PX",
                   help="optimise every level larger than PX pixels in overlapping tiles of at most PX x PX "
                        f"(at least {MIN_TILE_SIZE}), so memory does not grow with the image; 0 never tiles "
                        "(default: tile only a level that would not fit in the free memory, with the largest "
                        "tile that fits; on a GPU, whose free memory is not known in advance, give it)")

    g = p.add_argument_group("Ray cluster (pip install '.[ray]')")
    g.add_argument("--ray", nargs="?", const="local", metavar="ADDRESS",
                   help="optimise the tiles of tiled levels as Ray tasks (with batch.py: run each pair as one; with "
                        "neural_video.py: run the shots at the same time); "
                        "no ADDRESS starts a local Ray for the run, 'auto' or host:port or ray://host:port "
                        "joins an existing cluster")
    g.add_argument("--cpus-per-task", type=int, default=D["cpus_per_task"], metavar="N",
                   help="CPUs each Ray task asks for; TensorFlow uses that many threads (default: %(default)s)")
    g.add_argument("--gpus-per-task", type=float, default=D["gpus_per_task"], metavar="N",
                   help="GPUs each Ray task asks for (default: %(default)s)")

    g = p.add_argument_group("hierarchy")
    g.add_argument("--max-hierarchy", type=levels_or_auto, default=D["max_hierarchy"], metavar="L",
                   help="up to L scales, each half the size of the next, smallest first; 1 is plain "
                        "single-scale transfer; auto chooses the scales, their iterations (--iterations for "
                        "the smallest) and the styles' sizes for the width, for prints (default: %(default)s)")

    g = p.add_argument_group("colour")
    g.add_argument("--preserve-colors", default=D["preserve_colors"], choices=PRESERVE_COLORS,
                   help="keep the content's colours: none; before (recolour the styles first); out "
                        "(the output); interm (intermediate scales); all (both) (default: %(default)s)")
    g.add_argument("--h-preserve-colors", action="store_true",
                   help="also preserve colours at the intermediate hierarchy scales")

    g = p.add_argument_group("Adam")
    g.add_argument("--learning-rate", type=float, default=D["learning_rate"], metavar="LR",
                   help="Adam learning rate, > 0 (default: %(default)s)")
    g.add_argument("--beta1", type=float, default=D["beta1"], help="Adam beta1, 0..1 (default: %(default)s)")
    g.add_argument("--beta2", type=float, default=D["beta2"], help="Adam beta2, 0..1 (default: %(default)s)")
    g.add_argument("--eps", type=float, default=D["eps"], help="Adam epsilon, > 0 (default: %(default)s)")
    g.add_argument("--average", type=float, default=D["average"], metavar="DECAY",
                   help="Adam's result: 0 the iterate of the lowest loss; else the exponential moving average of "
                        "the iterates with this decay, 0..1 (0.99 as in crowsonkb's style-transfer-pytorch), "
                        "which smooths Adam's last steps' noise (default: %(default)s)")


PREVIEW_FLAGS = ("preview", "preview_host", "preview_port")


def add_preview_flags(p):
    g = p.add_argument_group("live preview")
    g.add_argument("--preview", action="store_true",
                   help="serve a page on this machine that shows the run as it goes (the image, the loss curves, "
                        "the plan, the time left); its address is printed at the start")
    g.add_argument("--preview-host", metavar="ADDRESS",
                   help="the interface the page listens on (default: 127.0.0.1, this machine only; another one "
                        "shows the run to other machines)")
    g.add_argument("--preview-port", type=int, metavar="PORT", help="the page's port (default: a free one)")


def preview_options(args):
    """(host, port) of the preview page if --preview was given, else None."""
    if not args.preview:
        if args.preview_host is not None or args.preview_port is not None:
            raise UsageError("--preview-host and --preview-port need --preview")
        return None
    port = args.preview_port
    if port is not None and not 1 <= port <= 65535:
        raise UsageError(f"--preview-port must be between 1 and 65535, got {port}")
    return args.preview_host or "127.0.0.1", port or 0


def levels_or_auto(text):
    """--max-hierarchy's value: a number of levels, or auto."""
    if text == "auto":
        return text
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of levels or auto, got {text!r}") from None


def settings_from(args):
    """The run's settings from parsed flags (a UsageError for values that cannot work)."""
    return Settings.from_flags(**{name: value for name, value in vars(args).items()
                                  if name != "show_params" and name not in PREVIEW_FLAGS})


def show_params(path):
    params = read_params(path)
    if params is None:
        raise ToolError(f"{path} holds no neural-style parameters")
    for key, value in json.loads(params).items():
        print(f"{key}: {value}")


def run(settings, preview=None, live=None):
    """Run the pipeline to the output file and report: the path and time, or, for a run that
    stopped early, where its best image went (then Interrupted or a ToolError is raised).
    `preview` (host, port) serves the run's live page; a batch's `live` page is told this run too."""
    started = time.time()
    with serving(preview) as own:
        result, output = pipeline.run(settings, live=live or own)
        if own:
            own.finish(result.pixels, result.partial)
        elif live:
            live.unit_done(result.pixels)
    if isinstance(result.stopped, NumericalError):
        raise ToolError(f"{result.stopped}; the best finite image (partial) was written to {output}")
    if result.stopped is not None:
        print(f"interrupted: the best image so far (partial) was written to {output}", file=sys.stderr)
        raise result.stopped
    print(f"wrote {output} in {time.time() - started:.1f} s")


def main(argv=None):
    args = build_parser().parse_args(argv)
    if args.show_params:
        return show_params(args.show_params)
    run(settings_from(args), preview_options(args))


def cli():
    """Console entry point (`pip install .` installs it as a command)."""
    run_cli(main, sys.argv[1:])


if __name__ == "__main__":
    cli()
