"""Run neural_style.py over every content x style pair, resumably.

    python batch.py --contents photos/ --styles paintings/ [--output-dir DIR]
                    [--luma-transfer MODE] [--collage MODE] [any neural_style.py flag]

Each pair gets neural_style.py's auto-generated name in --output-dir. A pair whose output
already exists (and is not a partial result) is skipped, so a stopped batch resumes where it
stopped. `--luma-transfer` and `--collage` run luma_transfer.py / build_collage.py on each result.
"""
import json
import os
import sys

from tqdm import tqdm

import images
import names
from errors import ArgumentParser, Interrupted, ToolError, UsageError, run_cli

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".tga", ".tif", ".tiff", ".webp", ".gif")


def image_files(entries, what):
    """Files given directly, and the images inside folders given (sorted), in order."""
    files = []
    for entry in entries:
        if os.path.isdir(entry):
            files += sorted(os.path.join(entry, f) for f in os.listdir(entry)
                            if f.lower().endswith(IMAGE_EXTENSIONS) and not f.startswith("."))
        elif os.path.isfile(entry):
            files.append(entry)
        else:
            raise ToolError(f"{what} not found: {entry}")
    if not files:
        raise ToolError(f"no {what} images in: {', '.join(entries)}")
    return files


def is_complete(path):
    """An output exists and is not the partial result of an interrupted run."""
    if not os.path.isfile(path):
        return False
    try:
        params = json.loads(images.read_params(path) or "{}")
    except (ToolError, ValueError):
        return False  # unreadable: run the pair again
    return "partial" not in params


def main(argv=None):
    import neural_style
    from build_collage import MODES as COLLAGE_MODES, SUFFIXES as COLLAGE_SUFFIXES, build_collage
    from luma_transfer import MODES as COLOUR_MODES, suffix as colour_suffix, transfer_file

    parser = ArgumentParser(description="Style every content image with every style image.", allow_abbrev=False,
                            epilog="Any other flag is passed to neural_style.py (not --content, --styles "
                                   "or --output).")
    parser.add_argument("--contents", nargs="+", required=True, metavar="DIR_OR_FILE",
                        help="content images, or folders of them")
    parser.add_argument("--styles", nargs="+", required=True, metavar="DIR_OR_FILE",
                        help="style images, or folders of them")
    parser.add_argument("--output-dir", default=".", metavar="DIR",
                        help="where the results go (default: the current folder)")
    parser.add_argument("--luma-transfer", choices=COLOUR_MODES, metavar="MODE",
                        help=f"also write a colour-transferred copy of each result ({', '.join(COLOUR_MODES)})")
    parser.add_argument("--collage", choices=COLLAGE_MODES, metavar="MODE",
                        help="also write a collage of each result with this mode (scale, crop, auto)")
    args, passed = parser.parse_known_args(argv)
    for flag in ("--content", "--output", "--show-params"):
        if any(p == flag or p.startswith(flag + "=") for p in passed):
            raise UsageError(f"{flag} cannot be used with batch.py: each pair gets its auto-generated name")
    contents = image_files(args.contents, "content")
    styles = image_files(args.styles, "style")
    if not os.path.isdir(args.output_dir):
        raise ToolError(f"output folder does not exist: {args.output_dir}")

    # Every pair's flags and output names are checked before any pair runs.
    plan = []
    for content, style in ((c, s) for c in contents for s in styles):
        argv_pair = ["--content", content, "--styles", style] + passed
        pair_args = neural_style.build_parser().parse_args(argv_pair)
        neural_style.validate(pair_args)
        output = os.path.join(args.output_dir, neural_style.auto_output_name(pair_args))
        extra_outputs = [names.with_suffix(output, colour_suffix(args.luma_transfer))] if args.luma_transfer else []
        if args.collage:  # "auto" picks its suffix from the images: check both
            extra_outputs += [names.with_suffix(output, suffix) for suffix in COLLAGE_SUFFIXES.values()]
        for path in [output] + extra_outputs:
            neural_style.check_not_over_inputs(pair_args, path, "the output")
        plan.append((content, style, argv_pair, pair_args, output))

    failures = []
    for content, style, argv_pair, pair_args, output in tqdm(plan, desc="pairs", unit="pair", disable=None,
                                                             file=sys.stderr):
        if is_complete(output):
            tqdm.write(f"skipping {os.path.basename(content)} x {os.path.basename(style)}: {output} exists",
                       file=sys.stdout)
            continue
        tqdm.write(f"{os.path.basename(content)} x {os.path.basename(style)} -> {output}", file=sys.stdout)
        try:
            neural_style.main(argv_pair + ["--output", output])
            if args.luma_transfer:
                transfer_file(output, content, args.luma_transfer,
                              names.with_suffix(output, colour_suffix(args.luma_transfer)))
            if args.collage:
                result, content_image = images.load_image(output), images.load_image(content)
                if not pair_args.no_collage:  # the output is already a collage: use its top part
                    result = result[:images.size_at_width(content_image.shape, result.shape[1])[0]]
                collage, collage_suffix = build_collage(result, content_image, images.load_image(style),
                                                        args.collage)
                images.save_image(names.with_suffix(output, collage_suffix), collage)
        except ToolError as e:
            tqdm.write(f"error: {os.path.basename(content)} x {os.path.basename(style)}: {e}", file=sys.stderr)
            failures.append((content, style))
        except Interrupted:
            tqdm.write("batch interrupted: run the same command again to resume", file=sys.stderr)
            raise
    done = len(plan) - len(failures)
    print(f"{done} of {len(plan)} pairs done" + (f", {len(failures)} failed" if failures else ""))
    if failures:
        raise ToolError(f"{len(failures)} pair(s) failed (see above); run the same command again to retry them")


def cli():
    run_cli(main, sys.argv[1:])


if __name__ == "__main__":
    cli()
