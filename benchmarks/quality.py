"""What the pictures are like, case by case (the performance document has the figures).

    python benchmarks/quality.py --range     # the pixel range kept or not, each optimiser (~25 minutes)
    python benchmarks/quality.py --print DIR # prints with --max-hierarchy auto against small runs (~10 minutes)
    python benchmarks/quality.py --quick     # --range with one pair and 100 iterations

For each case: the fraction of the optimised values outside 0..255 before saving (for a run that
keeps the range, of the variable the loss clips), the optimiser's final total loss and the saved
file's (a PNG read back from disk, so clipped and rounded to 8 bits, its loss computed as the
image is), the content structure kept (SSIM of the luminance against the content, scikit-image)
and the colourfulness (Hasler and Suesstrunk 2003) against the style's. SqueezeNet, the bundled
images of examples/inputs.
"""
import argparse
import os
import sys
import tempfile
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
INPUTS = os.path.join(ROOT, "examples", "inputs")
sys.path.insert(0, ROOT)
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

PAIRS = (("cat.png", "starry_night.jpg"), ("coffee.png", "the_scream.jpg"), ("cat.png", "shipwreck.jpg"))
OPTIMIZERS = ("lbfgs", "lbfgs-scipy", "cg", "adam")


def luminance(rgb):
    rgb = np.asarray(rgb, dtype=np.float64)
    return rgb[..., 0] * 0.299 + rgb[..., 1] * 0.587 + rgb[..., 2] * 0.114


def structure_kept(image, content):
    """SSIM of the luminance of `image` against the content's (same size)."""
    from skimage.metrics import structural_similarity
    return structural_similarity(luminance(image), luminance(content), data_range=255.0)


def colourfulness(rgb):
    """Hasler and Suesstrunk's colourfulness: std and mean of the opponent channels rg and yb."""
    rgb = np.asarray(rgb, dtype=np.float64)
    rg = rgb[..., 0] - rgb[..., 1]
    yb = 0.5 * (rgb[..., 0] + rgb[..., 1]) - rgb[..., 2]
    return float(np.hypot(rg.std(), yb.std()) + 0.3 * np.hypot(rg.mean(), yb.mean()))


def detail(rgb):
    """Mean squared Laplacian of the luminance: fine detail, per pixel."""
    from scipy.ndimage import laplace
    return float(np.mean(laplace(luminance(rgb)) ** 2))


def sqz():
    import squeezenet
    return squeezenet.load(os.path.join(ROOT, "sqz_weights.npz"))


def pair_images(content_name, style_name, width):
    """A bundled content image at `width`, and its style at the same width (--style-scales 1)."""
    import images
    content = images.load_image(os.path.join(INPUTS, content_name))
    style = images.load_image(os.path.join(INPUTS, style_name))
    return (images.resize_to_width(content, width).astype(np.float32),
            images.resize_to_width(style, width).astype(np.float32))


def saved_file(pixels, folder):
    """`pixels` written as a PNG and read back (clipped to 0..255, rounded to 8 bits)."""
    import images
    path = os.path.join(folder, "saved.png")
    images.save_image(path, pixels)
    return images.load_image(path).astype(np.float32)


def total_loss(judge, net, pixels):
    """The total loss of an image as it is (a stylizer with --unbounded: no clipping, no range term)."""
    import tensorflow as tf
    return float(judge.loss_and_grad(tf.constant(net.preprocess(np.asarray(pixels, np.float32))[None]))[0][3])


def range_run(net, content, style, optim, unbounded, marks, folder, judge):
    """One optimisation from the content; a row per mark: outside, optimiser's and file's loss,
    SSIM, colourfulness; and seconds per iteration. Device optimisers run once with checkpoints
    at the marks (they keep their state over them); SciPy's run once per mark (a checkpoint would
    restart them)."""
    import optimizers
    import stylize
    from settings import LossWeights, OptimizerSettings
    weights = LossWeights(unbounded=unbounded)
    stylizer = stylize.Stylizer(net, content, [style], [1.0], weights)
    raw = {}  # id of each yielded image: the optimiser's best image before clipping
    real_best_pixels = stylize.best_pixels

    def noted(net_, best, weights_):
        pixels = real_best_pixels(net_, best, weights_)
        raw[id(pixels)] = net_.unprocess(np.asarray(best.image[0], dtype=np.float32))
        return pixels
    stylize.best_pixels = noted
    gaps, rows = [], {}
    try:
        restarts = optimizers.OPTIMIZERS[optim].restarts_at_checkpoints
        runs = [(mark, None) for mark in marks] if restarts else [(marks[-1], marks[0])]
        for iterations, every in runs:
            stamps = []
            steps = list(stylize.stylize(net, content, content, [style], [1.0], weights, OptimizerSettings(optim),
                                         iterations=iterations, checkpoint_iterations=every, stylizer=stylizer,
                                         quiet=True, on_iteration=lambda i, losses: stamps.append(time.perf_counter())))
            gaps += list(np.diff(stamps[5:]))
            for mark in (iterations,) if restarts else marks:
                # The step at the mark (or the last, where the optimiser converged before it)
                step = next((s for s in steps if s.iteration >= mark), steps[-1])
                saved = saved_file(step.image, folder)
                outside = float(np.mean((raw[id(step.image)] < 0) | (raw[id(step.image)] > 255)))
                rows[mark] = dict(outside=outside, optimiser=float(step.losses[3]),
                                  file=total_loss(judge, net, saved), ssim=structure_kept(saved, content),
                                  colour=colourfulness(saved))
    finally:
        stylize.best_pixels = real_best_pixels
    return rows, float(np.median(gaps))


def range_cases(pairs=PAIRS, marks=(100, 300, 1000), width=256, optims=OPTIMIZERS):
    from bench import cpu_description
    import stylize
    from settings import LossWeights
    net = sqz()
    print(cpu_description())
    print(f"pixel range: SqueezeNet, {width} px, from the content; 'keep' is the default, 'free' --unbounded (the "
          "original's behaviour). outside: share of the optimised values outside 0..255; optimiser: its final "
          "total loss; file: the saved PNG's, read back; SSIM of the luminance against the content; colourfulness "
          "(the style's in brackets); s/it: median seconds per iteration", flush=True)
    summary = []
    with tempfile.TemporaryDirectory() as folder:
        for content_name, style_name in pairs:
            content, style = pair_images(content_name, style_name, width)
            judge = stylize.Stylizer(net, content, [style], [1.0], LossWeights(unbounded=True))
            print(f"  {content_name} x {style_name} ({content.shape[1]}x{content.shape[0]}), style colourfulness "
                  f"{colourfulness(style):.1f}, content's {colourfulness(content):.1f}", flush=True)
            for optim in optims:
                results = {}
                for unbounded in (False, True):
                    results[unbounded] = range_run(net, content, style, optim, unbounded, marks, folder, judge)
                    rows, per_iteration = results[unbounded]
                    for mark in marks:
                        r = rows[mark]
                        print(f"    {optim:12} {'free' if unbounded else 'keep':4} {mark:5}: outside {r['outside']:7.2%}  "
                              f"optimiser {r['optimiser']:9.1f}  file {r['file']:9.1f} ({r['file'] / r['optimiser'] - 1:+7.2%})"
                              f"  SSIM {r['ssim']:.3f}  colourfulness {r['colour']:5.1f}", flush=True)
                    print(f"    {optim:12} {'free' if unbounded else 'keep':4} s/it {per_iteration:.4f}", flush=True)
                keep, free = results[False], results[True]
                for mark in marks:
                    summary.append((content_name, style_name, optim, mark, keep[0][mark]["file"] / keep[0][mark]["optimiser"],
                                    keep[0][mark]["file"] / free[0][mark]["file"]))
                print(f"    {optim:12} cost per iteration, keep / free: {keep[1] / free[1]:.3f}", flush=True)
    print("  summary: the saved file's loss over the optimiser's (keep), and over the original behaviour's file:")
    for content_name, style_name, optim, mark, own, against in summary:
        print(f"    {content_name} x {style_name} {optim:12} {mark:5}: file/optimiser {own - 1:+.2%}, "
              f"file/original's file {against:.3f}")
    worst = max(abs(own - 1) for *_, own, _ in summary)
    print(f"  largest file/optimiser difference {worst:.2%}; files lower than the original's: "
          f"{sum(against < 1 for *_, against in summary)} of {len(summary)}", flush=True)


FULL = os.path.join(INPUTS, "full")
PRINT_PAIRS = (("cat.png", "starry_night.jpg"), ("rocket.jpg", "the_scream.jpg"), ("coffee.jpg", "shipwreck.jpg"))


def print_cases(folder, width=2048, iterations=300, pairs=PRINT_PAIRS):
    """--max-hierarchy auto at `width` against a direct 256 px run of the same settings: the
    print downscaled to 256 px, its style loss against the style at 256 (SqueezeNet), within 1.25x
    of the direct run's is the goal; a full-resolution crop of the print, its detail (mean squared
    Laplacian of the luminance) against the same crop of the 256 px result upscaled to `width`, at
    least 1.5x. Also the SSIM of the luminance against the content and the colourfulness, at 256."""
    import images
    import pipeline
    import stylize
    from bench import cpu_description
    from settings import LossWeights, Settings
    net = sqz()
    print(cpu_description())
    print(f"prints: --max-hierarchy auto at {width} px against a direct 256 px run, --iterations {iterations}, "
          "SqueezeNet, examples/inputs/full", flush=True)
    os.makedirs(folder, exist_ok=True)
    for content_name, style_name in pairs:
        content_path, style_path = os.path.join(FULL, content_name), os.path.join(FULL, style_name)
        runs = {}
        for name, flags in (("direct", dict(width=256)), ("auto", dict(width=width, max_hierarchy="auto"))):
            settings = Settings.from_flags(content=content_path, styles=[style_path], network_type="sqz",
                                           iterations=iterations, no_collage=True, seed=1, **flags)
            started = time.perf_counter()
            content, styles, _ = pipeline.load_images(settings.inputs)
            result = pipeline.render(settings, content, styles, log=lambda *a: None, quiet=True)
            runs[name] = (images.to_uint8(result.pixels).astype(np.float32), time.perf_counter() - started)
            images.save_image(os.path.join(folder, f"{name}_{os.path.splitext(content_name)[0]}.png"), result.pixels)
        content, style = pair_images(os.path.join("full", content_name), os.path.join("full", style_name), 256)
        judge = stylize.Stylizer(net, content, [style], [1.0], LossWeights(unbounded=True))
        direct, auto = runs["direct"][0], runs["auto"][0]
        small = images.resize(auto, content.shape[:2])

        def losses_of(pixels):
            import tensorflow as tf
            return judge.loss_and_grad(tf.constant(net.preprocess(pixels)[None]))[0].numpy()
        style_direct, style_small = losses_of(direct)[1], losses_of(small)[1]
        height = auto.shape[0]
        up = images.resize(direct, auto.shape[:2])
        y, x = (height - 512) // 2, (width - 512) // 2
        crop, crop_up = auto[y:y + 512, x:x + 512], up[y:y + 512, x:x + 512]
        print(f"  {content_name} x {style_name}: {width}x{height} in {runs['auto'][1]:.0f} s, the 256 px run in "
              f"{runs['direct'][1]:.0f} s; style loss at 256: print {style_small:.0f}, direct {style_direct:.0f} "
              f"({style_small / style_direct:.2f}x, goal <= 1.25); detail of a 512x512 crop: {detail(crop):.1f} against "
              f"{detail(crop_up):.1f} upscaled ({detail(crop) / detail(crop_up):.1f}x, goal >= 1.5); SSIM at 256 "
              f"{structure_kept(small, content):.3f} (direct {structure_kept(direct, content):.3f}); colourfulness "
              f"{colourfulness(small):.1f} (direct {colourfulness(direct):.1f}, style {colourfulness(style):.1f})",
              flush=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--range", action="store_true", help="the pixel range cases")
    parser.add_argument("--quick", action="store_true", help="the pixel range cases, one pair, 100 iterations")
    parser.add_argument("--print", dest="print_dir", metavar="DIR", help="the print cases; their images go to DIR")
    args = parser.parse_args()
    import device  # noqa: F401 - TensorFlow, quietly
    if args.quick:
        range_cases(PAIRS[:1], marks=(100,))
    if args.range:
        range_cases()
    if args.print_dir:
        print_cases(args.print_dir)


if __name__ == "__main__":
    main()
