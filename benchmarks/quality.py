"""What the pictures are like, case by case (the performance document has the figures).

    python benchmarks/quality.py --range     # the pixel range kept or not, each optimiser (~25 minutes)
    python benchmarks/quality.py --print DIR # prints with --max-hierarchy auto against small runs (~10 minutes)
    python benchmarks/quality.py --quick     # --range with one pair and 100 iterations
    python benchmarks/quality.py --grid DIR  # the dot grid: --antialias against the original's network (~40 minutes)
    python benchmarks/quality.py --sheet DIR # the contact sheet: the original's behaviour, --antialias off, the default
    python benchmarks/quality.py --features DIR  # --style-feat-type w2 and Adam's --average 0.99 (~15 minutes)

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
sys.path.append(os.path.dirname(os.path.abspath(__file__)))  # bench.py; after the tool's modules (video.py)

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


def _centre(array, side=256):
    """The side x side centre crop (the whole where it is smaller)."""
    height, width = array.shape[:2]
    y, x = max(0, (height - side) // 2), max(0, (width - side) // 2)
    return array[y:y + side, x:x + side]


def _periodic(high, period):
    """The pattern of `high` that repeats every `period` px (the mean over all pixels of the same
    (y mod period, x mod period)), and `high` cut to whole periods."""
    height, width = high.shape[0] // period * period, high.shape[1] // period * period
    high = high[:height, :width]
    return high.reshape(height // period, period, width // period, period).mean(axis=(0, 2)), high


def lattice_score(rgb, period):
    """How strongly fine detail repeats on a grid of `period` px, about 1 for a photo: on the
    256x256 centre crop, the luminance minus its Gaussian blur (sigma 3 px) folded onto a period x
    period grid (the mean over all pixels with the same (y mod P, x mod P)); the folded pattern's
    variance over the high-pass crop's, times the number of P x P cells (detail without a grid
    folds to about 1 / cells of its variance)."""
    from scipy.ndimage import gaussian_filter
    y = _centre(luminance(rgb))
    folded, high = _periodic(y - gaussian_filter(y, 3.0), period)
    return float(folded.var() / high.var() * (high.size / period ** 2))


GRID_PERIOD = 8  # the network's strides that a grid can follow: 2, 4 and 8 px all repeat every 8 px


def detail(rgb):
    """Mean squared Laplacian of the luminance, fine detail per pixel, without what repeats at the
    network's strides (the luminance's pattern of period GRID_PERIOD removed first): a grid of dots
    is not detail."""
    from scipy.ndimage import laplace
    y = luminance(rgb)
    folded, y = _periodic(y, GRID_PERIOD)
    return float(np.mean(laplace(y - np.tile(folded, (y.shape[0] // GRID_PERIOD, y.shape[1] // GRID_PERIOD))) ** 2))


SHIFTS = [(dy, dx) for dy in range(4) for dx in range(4)]  # SqueezeNet's stride after its first pool: 4 px


def aligned_style_losses(net, pictures, style, feat_type="gram"):
    """Each picture's style loss (the plain network `net`, the style at the picture's width) at the
    16 alignments to SqueezeNet's 4-px stride (cropped by 0-3 px at the top and left), [pictures,
    16]: an image fitted to one alignment with a grid of dots scores well there only. `feat_type`:
    the style loss's (--style-feat-type)."""
    import tensorflow as tf

    import images
    import stylize
    from settings import LossWeights
    style = images.resize(style, images.size_at_width(style.shape, pictures[0].shape[1])).astype(np.float32)
    height, width = pictures[0].shape[0] - 3, pictures[0].shape[1] - 3
    judge = stylize.Stylizer(net, np.zeros((height, width, 3), np.float32), [style], [1.0],
                             LossWeights(unbounded=True, style_feat_type=feat_type))

    def loss(crop):
        return float(judge.loss_and_grad(tf.constant(net.preprocess(crop.astype(np.float32))[None]))[0][1])
    return np.array([[loss(p[dy:dy + height, dx:dx + width]) for dy, dx in SHIFTS] for p in pictures])


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
                                         quiet=True, on_iteration=lambda i, losses, image: stamps.append(time.perf_counter())))
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


def transfer(content_name, style_name, **flags):
    """The tool's result (pipeline.render, SqueezeNet, --seed 1, no collage; its other flags the
    defaults but for `flags`) for images of examples/inputs/full, and the seconds it took."""
    import images
    import pipeline
    from settings import Settings
    settings = Settings.from_flags(content=os.path.join(FULL, content_name), styles=[os.path.join(FULL, style_name)],
                                   network_type="sqz", no_collage=True, seed=1, **flags)
    started = time.perf_counter()
    content, styles, _ = pipeline.load_images(settings.inputs)
    result = pipeline.render(settings, content, styles, log=lambda *a: None, quiet=True)
    return images.to_uint8(result.pixels), time.perf_counter() - started


def grid_figures(net, picture, style_name):
    """Lattice scores at 4 and 8 px, and the style loss over the 16 alignments: mean, worst/best."""
    import images
    losses = aligned_style_losses(net, [picture], images.load_image(os.path.join(FULL, style_name)))[0]
    return dict(lattice4=lattice_score(picture, 4), lattice8=lattice_score(picture, 8), style=float(losses.mean()),
                spread=float(losses.max() / losses.min()))


# (content, style, width, flags): the first two chose the filters (network.py, squeezenet.py); the
# rest were not looked at before they were measured
GRID_CASES = [
    ("cat.png", "starry_night.jpg", 384, dict(optim="lbfgs")),
    ("coffee.jpg", "the_scream.jpg", 384, dict(optim="adam")),
    ("astronaut.jpg", "shipwreck.jpg", 256, dict(optim="lbfgs")),
    ("rocket.jpg", "starry_night.jpg", 512, dict(optim="lbfgs-scipy")),
    ("astronaut.jpg", "the_scream.jpg", 512, dict(optim="cg")),
    ("rocket.jpg", "shipwreck.jpg", 384, dict(optim="adam")),
    ("coffee.jpg", "starry_night.jpg", 768, dict(optim="lbfgs", max_hierarchy=3)),
    ("astronaut.jpg", "starry_night.jpg", 1024, dict(optim="lbfgs")),
]
PRINT_CASE = ("rocket.jpg", "the_scream.jpg", 2048, dict(optim="lbfgs", max_hierarchy="auto"))


def grid_cases(folder, iterations=300, cases=GRID_CASES):
    """Each case with the default (--antialias auto: on for SqueezeNet) and with --antialias off
    (the original's network): the lattice scores against the content's at the same size (goal: at
    most max(2, 1.5x)), the style loss over the 16 alignments (goal: at most 0.9x off's) and its
    worst over its best (goal: at most 1.5), and the seconds of each run. A print case is judged
    on the 512x512 centre crop."""
    import images
    from bench import cpu_description
    net = sqz()
    print(cpu_description())
    print(f"the dot grid: SqueezeNet, --iterations {iterations}, --seed 1; the default (--antialias auto) against "
          "--antialias off; lattice at 4 and 8 px (the content's at the same size), style loss over the 16 "
          "alignments (the plain network) and its worst/best, seconds per iteration", flush=True)
    os.makedirs(folder, exist_ok=True)
    for content_name, style_name, width, flags in cases:
        rows = {}
        for label, antialias in (("default", "auto"), ("off", "off")):
            picture, seconds = transfer(content_name, style_name, width=width, iterations=iterations,
                                        antialias=antialias, **flags)
            stem = f"{os.path.splitext(content_name)[0]}_{os.path.splitext(style_name)[0]}_{width}_{label}"
            images.save_image(os.path.join(folder, stem + ".png"), picture)
            if picture.shape[1] > 1024:  # a print: its centre
                picture = _centre(picture, 512)
            rows[label] = dict(grid_figures(net, picture.astype(np.float32), style_name), seconds=seconds)
        content = images.load_image(os.path.join(FULL, content_name))
        content = _centre(images.resize(content, images.size_at_width(content.shape, width)), 512)
        new, old = rows["default"], rows["off"]
        print(f"  {content_name} x {style_name} {width} px {flags}: lattice 4/8 {new['lattice4']:.2f}/"
              f"{new['lattice8']:.2f} (off {old['lattice4']:.2f}/{old['lattice8']:.2f}, content "
              f"{lattice_score(content, 4):.2f}/{lattice_score(content, 8):.2f}); style over alignments "
              f"{new['style']:.0f} = {new['style'] / old['style']:.2f}x off's, worst/best {new['spread']:.2f} (off "
              f"{old['spread']:.2f}); {new['seconds']:.0f} s ({old['seconds']:.0f} s off)", flush=True)


def iteration_cost(width=512, iterations=40):
    """Median seconds per iteration with --antialias on and off (SqueezeNet, L-BFGS and Adam)."""
    import stylize
    import squeezenet
    from settings import LossWeights, OptimizerSettings
    content, style = pair_images(os.path.join("full", "rocket.jpg"), os.path.join("full", "starry_night.jpg"), width)
    for optim in ("lbfgs", "adam"):
        per = {}
        for antialias in (False, True, False, True):  # twice each, interleaved: the later figure is kept
            net = squeezenet.load(os.path.join(ROOT, "sqz_weights.npz"), antialias=antialias)
            stamps = []
            for _ in stylize.stylize(net, content, content, [style], [1.0], LossWeights(), OptimizerSettings(optim),
                                     iterations=iterations, quiet=True,
                                     on_iteration=lambda i, losses, image: stamps.append(time.perf_counter())):
                pass
            per[antialias] = float(np.median(np.diff(stamps[5:])))
        print(f"  cost per iteration, {optim} at {width} px: antialiased {per[True]:.4f} s, original "
              f"{per[False]:.4f} s ({per[True] / per[False]:.2f}x)", flush=True)


# (content, style, width, optimiser): none of them chose a default
FEATURE_CASES = [
    ("astronaut.jpg", "starry_night.jpg", 384, "lbfgs"),
    ("rocket.jpg", "the_scream.jpg", 384, "lbfgs"),
    ("coffee.jpg", "shipwreck.jpg", 384, "adam"),
    ("cat.png", "the_scream.jpg", 384, "adam"),
]


def feature_cases(folder, iterations=300):
    """The Wasserstein-2 style loss (--style-feat-type w2) and, for Adam, the moving average of
    its iterates (--average 0.99) against the defaults: the style loss over the 16 alignments by the
    Gram and the W2 judge (the plain network), the lattice score at 4 px, the SSIM of the luminance
    against the content, the seconds of the run. Images into `folder`, to look at."""
    import images
    from bench import cpu_description
    net = sqz()
    print(cpu_description())
    print(f"style losses: SqueezeNet, --iterations {iterations}, --seed 1, each image's style loss over the 16 "
          "alignments by the Gram judge and the W2 judge, lattice at 4 px, SSIM against the content", flush=True)
    os.makedirs(folder, exist_ok=True)
    for content_name, style_name, width, optim in FEATURE_CASES:
        runs = [("default", {}), ("w2", dict(style_feat_type="w2"))]
        if optim == "adam":
            runs.append(("average 0.99", dict(average=0.99)))
        style = images.load_image(os.path.join(FULL, style_name))
        content = images.load_image(os.path.join(FULL, content_name))
        for label, flags in runs:
            picture, seconds = transfer(content_name, style_name, width=width, iterations=iterations, optim=optim, **flags)
            stem = f"{os.path.splitext(content_name)[0]}_{os.path.splitext(style_name)[0]}_{optim}_{label.replace(' ', '')}"
            images.save_image(os.path.join(folder, stem + ".png"), picture)
            gram, w2 = (aligned_style_losses(net, [picture.astype(np.float32)], style, kind)[0].mean()
                        for kind in ("gram", "w2"))
            print(f"  {content_name} x {style_name} {width} px {optim}, {label}: style over alignments gram {gram:.0f}, "
                  f"w2 {w2:.1f}; lattice 4 {lattice_score(picture, 4):.2f}; SSIM "
                  f"{structure_kept(picture, images.resize(content, picture.shape[:2])):.3f}; {seconds:.0f} s", flush=True)


SHEET_PAIRS = (("cat.png", "starry_night.jpg"), ("coffee.jpg", "the_scream.jpg"), ("rocket.jpg", "shipwreck.jpg"))
SHEET_RUNS = (("the original's behaviour", dict(antialias="off", unbounded=True, optim="lbfgs-scipy")),
              ("--antialias off", dict(antialias="off")),
              ("the default", dict()))


def contact_sheet(folder, width=512, iterations=1000, crop=192):
    """One PNG: a row per pair at `width` px, a column per SHEET_RUNS, each the whole picture above a
    100% crop of its centre; and the figures of each."""
    from PIL import Image, ImageDraw

    import images
    net = sqz()
    os.makedirs(folder, exist_ok=True)
    cells = []
    for content_name, style_name in SHEET_PAIRS:
        row = []
        for label, flags in SHEET_RUNS:
            picture, seconds = transfer(content_name, style_name, width=width, iterations=iterations, **flags)
            f = grid_figures(net, picture.astype(np.float32), style_name)
            print(f"  {content_name} x {style_name}, {label}: lattice 4/8 {f['lattice4']:.2f}/{f['lattice8']:.2f}, "
                  f"style over alignments {f['style']:.0f}, worst/best {f['spread']:.2f}, {seconds:.0f} s", flush=True)
            row.append((label, picture))
        cells.append(row)
    gap, caption = 8, 18
    height = max(p.shape[0] for row in cells for _, p in row)
    sheet = Image.new("RGB", (len(SHEET_RUNS) * (width + gap), len(cells) * (height + crop + caption + 2 * gap)), "white")
    draw = ImageDraw.Draw(sheet)
    for r, row in enumerate(cells):
        top = r * (height + crop + caption + 2 * gap)
        for c, (label, picture) in enumerate(row):
            left = c * (width + gap)
            draw.text((left + 4, top + 3), label, fill="black")
            sheet.paste(Image.fromarray(picture), (left, top + caption))
            y, x = (picture.shape[0] - crop) // 2, (picture.shape[1] - crop) // 2
            sheet.paste(Image.fromarray(picture[y:y + crop, x:x + crop]), (left, top + caption + height + gap))
    path = os.path.join(folder, "contact_sheet.png")
    sheet.save(path)
    print(f"  wrote {path}")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--range", action="store_true", help="the pixel range cases")
    parser.add_argument("--quick", action="store_true", help="the pixel range cases, one pair, 100 iterations")
    parser.add_argument("--print", dest="print_dir", metavar="DIR", help="the print cases; their images go to DIR")
    parser.add_argument("--grid", metavar="DIR", help="the dot grid cases and the cost per iteration; images to DIR")
    parser.add_argument("--with-print", action="store_true", help="--grid also runs a 2048 px print (~30 minutes)")
    parser.add_argument("--sheet", metavar="DIR", help="the contact sheet, into DIR")
    parser.add_argument("--features", metavar="DIR", help="w2 and Adam's --average against the defaults; images to DIR")
    args = parser.parse_args()
    import device  # noqa: F401 - TensorFlow, quietly
    if args.quick:
        range_cases(PAIRS[:1], marks=(100,))
    if args.range:
        range_cases()
    if args.print_dir:
        print_cases(args.print_dir)
    if args.grid:
        iteration_cost()
        grid_cases(args.grid, cases=GRID_CASES + ([PRINT_CASE] if args.with_print else []))
    if args.sheet:
        contact_sheet(args.sheet)
    if args.features:
        feature_cases(args.features)


if __name__ == "__main__":
    main()
