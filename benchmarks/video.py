"""Flicker of stylised video: temporally consistent frames (the defaults) against independent
frames (--temporal-weight 0), on many clips (the performance document has the figures).

    python benchmarks/video.py [DIR]                     # the table: every case, about 40 minutes
    python benchmarks/video.py --cases 1,3 --weights 50,200   # some cases, other temporal weights
    python benchmarks/video.py --long                    # a 64-frame clip: steady over 8 frames, no blur
    python benchmarks/video.py --long --temporal-frames 1,4   # with other earlier frames
    python benchmarks/video.py --calibrate               # the cases the default weight was chosen on

Clips are made from the bundled photos by tests/clips.py (sub-pixel pan, zoom, rotation, or an
object crossing a still view), styled with SqueezeNet and --seed 1. Styles: The Scream (large
smooth areas), The Starry Night (busy) and a line drawing (the coffee photo turned into black
ink lines on white, made here). For each case: Lai et al. (2018)'s warping error (flows and
their certainty from the input frames by Farneback's method, not the tool's DIS) of the
consistent frames over the independent ones', and each frame's style loss (averaged over its 16
alignments to the network's stride) over the independent frame's, on average and at worst. The
calibration cases (the coffee photo, Turner's Shipwreck) are in none of the table's.
"""
import argparse
import os
import sys
import tempfile
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
sys.path.insert(0, os.path.join(ROOT, "tests"))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

FULL = os.path.join(ROOT, "examples", "inputs", "full")
PHOTOS = {"rocket": "rocket.jpg", "astronaut": "astronaut.jpg", "cat": "cat.png", "coffee": "coffee.jpg"}
STYLES = {"scream": "the_scream.jpg", "starry": "starry_night.jpg", "line": None, "shipwreck": "shipwreck.jpg"}
# (photo, style, motion, width, iterations, optimiser, frames)
CASES = [
    ("rocket", "scream", "pan", 160, 60, "lbfgs", 16),
    ("astronaut", "starry", "zoom", 160, 60, "adam", 16),
    ("cat", "line", "rotation", 160, 60, "lbfgs", 16),
    ("rocket", "line", "object", 160, 300, "adam", 16),
    ("cat", "scream", "pan", 160, 300, "lbfgs", 16),
    ("astronaut", "scream", "rotation", 360, 60, "lbfgs", 12),
    ("cat", "starry", "object", 360, 60, "adam", 12),
    ("rocket", "starry", "zoom", 360, 300, "lbfgs", 10),
    ("astronaut", "line", "pan", 360, 60, "lbfgs", 12),
]
CALIBRATION = [
    ("coffee", "shipwreck", "zoom", 160, 60, "lbfgs", 16),
    ("coffee", "shipwreck", "object", 160, 60, "adam", 16),
]
LONG = ("rocket", "starry", "pan", 160, 60, "lbfgs", 64)


def line_drawing():
    """The coffee photo as black ink lines on white (adaptive threshold of its blurred luminance)."""
    import cv2

    import images
    grey = cv2.cvtColor(images.load_image(os.path.join(FULL, "coffee.jpg")), cv2.COLOR_RGB2GRAY)
    lines = cv2.adaptiveThreshold(cv2.GaussianBlur(grey, (0, 0), 1.2), 255, cv2.ADAPTIVE_THRESH_MEAN_C,
                                  cv2.THRESH_BINARY, 9, 6)
    return np.repeat(lines[..., None], 3, axis=2)


def style_path(name, folder):
    import images
    if STYLES[name]:
        return os.path.join(FULL, STYLES[name])
    path = os.path.join(folder, "line_drawing.png")
    if not os.path.isfile(path):
        images.save_image(path, line_drawing())
    return path


def style_losses(outputs, style_file, net):
    """Each output frame's style loss against the style image at the frame's width (SqueezeNet),
    averaged over the 16 alignments of the frame to the network's 4-px stride: a frame that moves
    with the scene is not judged by one alignment, which independent frames, each fitted to it,
    are favoured by."""
    import images
    from quality import aligned_style_losses
    return aligned_style_losses(net, outputs, images.load_image(style_file)).mean(axis=1)


def write_frames(frames, folder):
    import images
    os.makedirs(folder, exist_ok=True)
    for i, frame in enumerate(frames):
        images.save_image(os.path.join(folder, f"{i + 1:06d}.png"), frame)
    return folder


def stylise(clip, style_file, out, iterations, optim, weight, frames_back=None):
    """The clip's frames stylised into the folder `out` (the tool's defaults but for these); the
    frames and the seconds it took."""
    import images
    import video
    from settings import Settings
    settings = Settings.from_flags(content=clip, styles=[style_file], network_type="sqz", iterations=iterations,
                                   optim=optim, seed=1, no_collage=True, output=out)
    defaults = video.VideoSettings()
    chosen = video.VideoSettings(defaults.temporal_weight if weight is None else weight,
                                 frames_back or defaults.temporal_frames)
    started = time.perf_counter()
    video.run(settings, chosen, log=lambda *a: None)
    seconds = time.perf_counter() - started
    return [images.load_image(os.path.join(out, f)) for f in sorted(os.listdir(out))], seconds


def run_case(case, folder, net, weights, long=False, frames_back=None):
    import clips
    import images
    import video
    photo, style, motion, width, iterations, optim, count = case
    name = f"{photo}-{style}-{motion}-{width}-{iterations}-{optim}"
    frames = clips.moving_clip(images.load_image(os.path.join(FULL, PHOTOS[photo])), motion,
                               (round(width * 0.7), width), count)
    clip = write_frames(frames, os.path.join(folder, name, "clip"))
    style_file = style_path(style, folder)
    independent, base_seconds = stylise(clip, style_file, os.path.join(folder, name, "independent"), iterations,
                                        optim, 0.0)
    base_error = video.warping_error(independent, frames)
    base_style = style_losses(independent, style_file, net)
    rows = []
    for weight in weights:
        label = "default" if weight is None else f"{weight:g}"
        back = "" if frames_back is None else "-back" + "_".join(map(str, frames_back))
        outputs, seconds = stylise(clip, style_file, os.path.join(folder, name, f"weight-{label}{back}"), iterations,
                                   optim, weight, frames_back)
        losses = style_losses(outputs, style_file, net)
        ratios = losses / base_style
        row = dict(case=name, weight=label, error=video.warping_error(outputs, frames) / base_error,
                   style_mean=float(ratios.mean()), style_max=float(ratios.max()), seconds=seconds / count,
                   base_seconds=base_seconds / count)
        if long:
            row["error8"] = (video.warping_error(outputs, frames, 8) / video.warping_error(independent, frames, 8))
            row["last_first"] = float(losses[-8:].mean() / losses[:8].mean())
            row["independent_last_first"] = float(base_style[-8:].mean() / base_style[:8].mean())
        rows.append(row)
        print_row(row, long)
    return rows


def print_row(row, long=False):
    text = (f"| {row['case']} | {row['weight']} | {row['error']:.2f}x | {row['style_mean']:.3f}x | "
            f"{row['style_max']:.3f}x | {row['seconds']:.1f} s ({row['base_seconds']:.1f} s) |")
    if long:
        text += (f" t/t+8: {row['error8']:.2f}x | style, last 8 / first 8: {row['last_first']:.3f} "
                 f"(independent {row['independent_last_first']:.3f}) |")
    print(text, flush=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("folder", nargs="?", help="where the clips and the outputs go (default: a temporary folder)")
    parser.add_argument("--cases", default="", help="numbers of the table's cases to run (1-based), e.g. 1,3")
    parser.add_argument("--weights", default="", help="temporal weights to measure instead of the default, e.g. 50,200")
    parser.add_argument("--temporal-frames", default="", help="--temporal-frames to measure instead of the default, e.g. 1,2,4")
    parser.add_argument("--long", action="store_true", help="the 64-frame clip: warping error over 8 frames, drift")
    parser.add_argument("--calibrate", action="store_true", help="the cases the default was chosen on")
    args = parser.parse_args()
    import squeezenet  # TensorFlow: after the flags, so that --help is quick
    from bench import cpu_description
    folder = args.folder or tempfile.mkdtemp()
    os.makedirs(folder, exist_ok=True)
    net = squeezenet.load(os.path.join(ROOT, "sqz_weights.npz"))
    weights = [float(w) for w in args.weights.split(",") if w] or [None]
    if args.long:
        cases = [LONG]
    elif args.calibrate:
        cases = CALIBRATION
    else:
        cases = [CASES[int(i) - 1] for i in args.cases.split(",") if i] or CASES
    print(cpu_description())
    print("| case (photo-style-motion-width-iterations-optimiser) | temporal weight | warping error vs independent | "
          "style loss a frame vs independent, mean | at worst | time a frame (independent) |")
    print("|---|---|---|---|---|---|")
    for case in cases:
        run_case(case, folder, net, weights, long=args.long,
                 frames_back=tuple(int(j) for j in args.temporal_frames.split(",")) if args.temporal_frames else None)


if __name__ == "__main__":
    main()
