"""Run neural_style.py over every content x style pair, resumably.

    python batch.py --contents photos/ --styles paintings/ [--output-dir DIR]
                    [--luma-transfer MODE] [--collage MODE] [--ray [ADDRESS]] [any neural_style.py flag]

Each pair gets neural_style.py's auto-generated name in --output-dir. A pair whose output
already exists (and is not a partial result) is skipped, so a stopped batch resumes where it
stopped. `--luma-transfer` and `--collage` run luma_transfer.py / build_collage.py on each result.
With `--ray`, each pair is a task on a Ray cluster (cluster.py); results are written here.
"""
import json
import os
import sys

from tqdm import tqdm

import images
import names
import neural_style
import pipeline
from build_collage import MODES as COLLAGE_MODES, SUFFIXES as COLLAGE_SUFFIXES, build_collage
from errors import ArgumentParser, Interrupted, ToolError, UsageError, run_cli
from luma_transfer import MODES as COLOUR_MODES, suffix as colour_suffix, transfer_file
from preview import serving

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


def render_pair(settings, files):
    """A Ray task: one pair, whole, from its input files' bytes ({path: bytes}). Returns {"image"
    (uint8), "params"}, with "error" for a run stopped by a loss that was not finite (the image is
    then its best finite one), or only {"error"}."""
    settings = settings.replace(ray=None)  # the pair itself runs whole on this worker
    try:
        content, styles, initial = pipeline.load_images(settings.inputs, read=files.__getitem__)
        result = pipeline.render(settings, content, styles, initial, log=lambda *a: None)
    except ToolError as e:
        return {"error": str(e)}
    out = {"image": images.to_uint8(result.pixels), "params": result.params_text()}
    if result.stopped is not None:
        out["error"] = str(result.stopped)
    return out


def main(argv=None):
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
    neural_style.add_preview_flags(parser)
    args, passed = parser.parse_known_args(argv)
    preview = neural_style.preview_options(args)
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
        settings = neural_style.settings_from(
            neural_style.build_parser().parse_args(["--content", content, "--styles", style] + passed))
        output = os.path.join(args.output_dir, names.auto_output_name(settings))
        extra_outputs = [names.with_suffix(output, colour_suffix(args.luma_transfer))] if args.luma_transfer else []
        if args.collage:  # "auto" picks its suffix from the images: check both
            extra_outputs += [names.with_suffix(output, suffix) for suffix in COLLAGE_SUFFIXES.values()]
        for path in [output] + extra_outputs:
            pipeline.check_not_over_inputs(settings, path, "the output")
        if settings.tiles.ray and settings.output.checkpoint_iterations:
            raise UsageError("--checkpoint-iterations cannot be used with --ray in batch.py: a pair's checkpoints "
                             "would be written on the worker that runs it (Ray re-runs a pair whose worker died)")
        plan.append((content, style, settings.replace(output=output), output))

    def extras(content, style, settings, output):
        """The colour-transferred copy and the collage of a finished output (on this machine)."""
        if args.luma_transfer:
            transfer_file(output, content, args.luma_transfer,
                          names.with_suffix(output, colour_suffix(args.luma_transfer)))
        if args.collage:
            result, content_image = images.load_image(output), images.load_image(content)
            if not settings.output.no_collage:  # the output is already a collage: use its top part
                result = result[:images.size_at_width(content_image.shape, result.shape[1])[0]]
            collage, collage_suffix = build_collage(result, content_image, images.load_image(style), args.collage)
            images.save_image(names.with_suffix(output, collage_suffix), collage)

    def pair_name(content, style):
        return f"{os.path.basename(content)} x {os.path.basename(style)}"

    failures = []
    todo = []
    for content, style, settings, output in plan:
        if is_complete(output):
            print(f"skipping {pair_name(content, style)}: {output} exists")
        else:
            todo.append((content, style, settings, output))

    def run_here(todo, live):
        """The pairs one after another in this process."""
        if live:
            live.units(len(todo), "pair")
        for index, (content, style, settings, output) in enumerate(
                tqdm(todo, desc="pairs", unit="pair", disable=None, file=sys.stderr)):
            tqdm.write(f"{pair_name(content, style)} -> {output}", file=sys.stdout)
            if live:
                live.unit(index, pair_name(content, style))
            try:
                neural_style.run(settings, live=live)
                extras(content, style, settings, output)
            except ToolError as e:
                tqdm.write(f"error: {pair_name(content, style)}: {e}", file=sys.stderr)
                failures.append((content, style))
            except Interrupted:
                tqdm.write("batch interrupted: run the same command again to resume", file=sys.stderr)
                raise

    def run_on_ray(todo, live):
        """Every pair a Ray task; the results come back here to be written."""
        import cluster  # optional: Ray
        pairs = {output: (content, style, settings) for content, style, settings, output in todo}
        if live:  # the pairs run elsewhere: the page shows each result as it comes back
            live.units(len(todo), "pair")
            live.plan([], {})
        bar = tqdm(total=len(todo), desc="pairs", unit="pair", disable=None, file=sys.stderr)

        def on_result(output, result, error):
            content, style, settings = pairs[output]
            result = result or {"error": error}
            try:
                if "image" in result:
                    images.save_image(output, result["image"], result["params"])
                    if live:
                        live.unit_done(result["image"])
                if "error" in result:
                    raise ToolError(result["error"] + (f"; the best finite image (partial) was written to {output}"
                                                       if "image" in result else ""))
                extras(content, style, settings, output)
                tqdm.write(f"{pair_name(content, style)} -> {output}", file=sys.stdout)
            except ToolError as e:
                tqdm.write(f"error: {pair_name(content, style)}: {e}", file=sys.stderr)
                failures.append((content, style))
            bar.update(1)
        tiles = todo[0][2].tiles
        jobs = [(output, (settings,), [p for p in (settings.inputs.content, *settings.inputs.styles,
                                                   settings.inputs.initial) if p])
                for _, _, settings, output in todo]
        try:
            cluster.run_tasks(render_pair, jobs, on_result, tiles.ray, tiles.cpus_per_task, tiles.gpus_per_task,
                              log=lambda message: tqdm.write(message, file=sys.stderr))
        except Interrupted:
            tqdm.write("batch interrupted: finished pairs are kept; run the same command again to resume",
                       file=sys.stderr)
            raise
        finally:
            bar.close()

    with serving(preview, "neural-style batch") as live:
        if todo and todo[0][2].tiles.ray:
            run_on_ray(todo, live)
        else:
            run_here(todo, live)
        if live:
            live.finish()
    done = len(plan) - len(failures)
    print(f"{done} of {len(plan)} pairs done" + (f", {len(failures)} failed" if failures else ""))
    if failures:
        listed = "; ".join(pair_name(content, style) for content, style in failures)
        raise ToolError(f"{len(failures)} pair(s) failed: {listed}; run the same command again to retry them")


def cli():
    run_cli(main, sys.argv[1:])


if __name__ == "__main__":
    cli()
