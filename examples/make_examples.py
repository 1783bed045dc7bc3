"""Re-create every image of the README's gallery (examples/) with this project's own tools, from the
photos and paintings of examples/inputs/full alone (their sources and licences are listed there).

    python examples/make_examples.py            # the gallery (about 15 minutes on 2 CPU cores)
    python examples/make_examples.py --print    # only the print: 4096 px with --max-hierarchy auto
    python examples/make_examples.py --video    # only the video example (video.gif)
    python examples/make_examples.py --preview  # only the live page's screenshot (preview.jpg; needs Chromium)

SqueezeNet v1.1 (the bundled weights), fixed seeds. Every image carries the flags it was made with
(`python neural_style.py --show-params examples/FILE`).
"""
import argparse
import json
import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
INPUTS = os.path.join(HERE, "inputs", "full")
sys.path.insert(0, ROOT)

import images  # noqa: E402
import neural_style  # noqa: E402
from luma_transfer import colortransfer  # noqa: E402

WIDTH = 320
CAT, COFFEE, ROCKET, ASTRONAUT = (os.path.join(INPUTS, n) for n in ("cat.png", "coffee.jpg", "rocket.jpg",
                                                                     "astronaut.jpg"))
STARRY, SCREAM, SHIPWRECK = (os.path.join(INPUTS, n) for n in ("starry_night.jpg", "the_scream.jpg", "shipwreck.jpg"))
PRINT_FLAGS = ["--content", ROCKET, "--styles", STARRY, "--network-type", "sqz", "--width", "4096",
               "--max-hierarchy", "auto", "--iterations", "500", "--seed", "1", "--no-collage"]


def run(name, content, style, *flags, collage=False, width=WIDTH, iterations=300):
    out = os.path.join(HERE, name)
    argv = ["--content", content, "--styles", style, "--network-type", "sqz", "--width", str(width),
            "--iterations", str(iterations), "--seed", "1", "--output", out, *map(str, flags)]
    if not collage:
        argv.append("--no-collage")
    print(f"== {name}", flush=True)
    neural_style.main(argv)
    return out


def gallery():
    # The collage that neural_style.py writes by default.
    run("collage.jpg", ROCKET, STARRY, collage=True)

    # Hierarchy: each level's result, written as a checkpoint at its end.
    run("hierarchy.jpg", ROCKET, STARRY, "--max-hierarchy", "3", "--checkpoint-iterations", "100000",
        "--checkpoint-output", os.path.join(HERE, "hierarchy_%s.jpg"), width=512, iterations=200)
    os.remove(os.path.join(HERE, "hierarchy_0341x0512-0200.jpg"))  # the same image as hierarchy.jpg

    # Style feature types.
    for feat in ("gram", "mean", "distr"):
        run(f"feat_{feat}.jpg", CAT, STARRY, "--style-feat-type", feat)

    # Perceptual convergence: activation shift and the distribution remapping loss, on a hard style.
    hard = ["--style-weight", "2000", "--content-weight-blend", "0.5"]
    run("conv_naive.jpg", ASTRONAUT, SCREAM, *hard)
    run("conv_ashift.jpg", ASTRONAUT, SCREAM, *hard, "--ashift", "100")
    run("conv_distr.jpg", ASTRONAUT, SCREAM, *hard, "--style-distr-weight", "2000")
    run("conv_both.jpg", ASTRONAUT, SCREAM, *hard, "--ashift", "100", "--style-distr-weight", "2000")

    # Content-heavy and style-heavy settings.
    run("content_heavy.jpg", CAT, STARRY, "--content-weight", "50", "--content-weight-blend", "0.5",
        "--style-layer-weight-exp", "0.5", "--ashift", "-10")
    run("style_heavy.jpg", CAT, STARRY, "--content-weight", "1", "--style-weight", "2000",
        "--style-layer-weight-exp", "1.5", "--ashift", "100")

    # Colour: one stylization recoloured by each mode of luma_transfer.py, and --preserve-colors before.
    styled_path = run("colour_none.jpg", COFFEE, SHIPWRECK)
    styled, content = images.load_image(styled_path), images.load_image(COFFEE)
    for mode in ("yuv", "hsv", "hist", "hist-rgb", "distr"):
        images.save_image(os.path.join(HERE, f"colour_{mode.replace('-', '')}.jpg"),
                          colortransfer(content, styled, mode), f'{{"luma_transfer": "{mode}"}}')
    run("colour_before.jpg", COFFEE, SHIPWRECK, "--preserve-colors", "before")
    video_example()
    preview_screenshot()
    total = sum(os.path.getsize(os.path.join(HERE, f)) for f in os.listdir(HERE) if f.endswith(".jpg"))
    print(f"examples/: {total / 2**20:.2f} MB of images")


def video_example():
    """examples/video.gif: a pan and a zoom over the rocket photo, stylised with frames independent
    (left) and consistent (right), 100 iterations a frame."""
    import tempfile

    import numpy as np
    from PIL import Image

    import video
    from settings import Settings
    sys.path.insert(0, os.path.join(ROOT, "tests"))
    import clips
    folder = tempfile.mkdtemp()
    clip = clips.write_clip(os.path.join(folder, "clip.mp4"), clips.pan_and_zoom(size=(128, 192), pan_frames=12,
                                                                                  zoom_frames=6))
    sides = []
    for weight in (0.0, video.VideoSettings().temporal_weight):
        out = os.path.join(folder, f"weight{weight:g}")
        print(f"== video.gif, --temporal-weight {weight:g}", flush=True)
        settings = Settings.from_flags(content=clip, styles=[STARRY], network_type="sqz", iterations=100, seed=1,
                                       no_collage=True, output=out)
        video.run(settings, video.VideoSettings(weight))
        sides.append([images.load_image(os.path.join(out, f)) for f in sorted(os.listdir(out))])
    gap = np.full((128, 8, 3), 255, np.uint8)
    frames = [Image.fromarray(np.concatenate([a, gap, b], axis=1)) for a, b in zip(*sides)]
    frames[0].save(os.path.join(HERE, "video.gif"), save_all=True, append_images=frames[1:], duration=100, loop=0)


def preview_screenshot():
    """examples/preview.jpg: the --preview page, in headless Chromium, two thirds into a run
    (rocket x Starry Night, 512 px, --max-hierarchy 3)."""
    import subprocess
    import tempfile

    from PIL import Image
    sys.path.append(os.path.join(ROOT, "benchmarks"))
    import chromium
    print("== preview.jpg", flush=True)
    folder = tempfile.mkdtemp()
    process = subprocess.Popen([sys.executable, os.path.join(ROOT, "neural_style.py"), "--content", ROCKET,
                                "--styles", STARRY, "--network-type", "sqz", "--width", "512", "--max-hierarchy", "3",
                                "--iterations", "300", "--seed", "1", "--no-collage", "--print-iterations", "50",
                                "--output", os.path.join(folder, "out.png"), "--preview"],
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    url = chromium.address(process)
    browser = chromium.browser(1280, 760)
    try:
        browser.get(url)
        # The title is "NN% · neural-style" while the run goes, its status at the end.
        while not browser.execute_script("const t = document.title; "
                                         "return /%/.test(t) ? parseInt(t) >= 67 : /finished|stopped/.test(t);"):
            time.sleep(0.5)
        time.sleep(1.0)  # the image of this moment, loaded
        shot = os.path.join(folder, "page.png")
        browser.save_screenshot(shot)
    finally:
        browser.quit()
        process.terminate()
        process.wait()
    Image.open(shot).convert("RGB").save(os.path.join(HERE, "preview.jpg"), quality=88)


def make_print(path=None):
    """The print: rocket x Starry Night, 4096 px wide, --max-hierarchy auto (in a temporary file
    unless `path`), shown as examples/print_small.jpg (the whole, downscaled) and print_crop.jpg (a
    768x512 crop at full resolution); the flags and the time go into examples/print.json."""
    import tempfile
    folder = tempfile.mkdtemp()
    path = path or os.path.join(folder, "print.png")
    started = time.time()
    neural_style.main(PRINT_FLAGS + ["--output", path])
    seconds = time.time() - started
    params = images.read_params(path)
    big = images.load_image(path)
    height, width = big.shape[:2]
    images.save_image(os.path.join(HERE, "print_small.jpg"), images.resize_to_width(big, 1024), params)
    y, x = int(height * 0.35), int(width * 0.40)  # the rocket and the smoke: detail a small run cannot have
    images.save_image(os.path.join(HERE, "print_crop.jpg"), big[y:y + 512, x:x + 768], params)
    with open(os.path.join(HERE, "print.json"), "w") as f:
        json.dump({"flags": " ".join(os.path.relpath(a, ROOT) if os.path.isabs(a) else a for a in PRINT_FLAGS),
                   "size": f"{width}x{height}", "seconds": round(seconds), "crop": f"768x512 from x={x}, y={y}",
                   "cpu": cpu()}, f, indent=1)
    print(f"{path}: {width}x{height} in {seconds:.0f} s; examples/print_small.jpg, examples/print_crop.jpg")


def cpu():
    sys.path.insert(0, os.path.join(ROOT, "benchmarks"))
    from bench import cpu_description
    return cpu_description()


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--print", dest="print_only", action="store_true", help="only the print (about 15 minutes)")
    parser.add_argument("--video", dest="video_only", action="store_true", help="only the video example")
    parser.add_argument("--preview", dest="preview_only", action="store_true",
                        help="only the screenshot of the live page (needs Debian's chromium and chromium-driver)")
    parser.add_argument("--keep", metavar="FILE", help="with --print: keep the full print at FILE")
    args = parser.parse_args()
    if args.print_only:
        make_print(args.keep)
    elif args.video_only:
        video_example()
    elif args.preview_only:
        preview_screenshot()
    else:
        gallery()


if __name__ == "__main__":
    main()
