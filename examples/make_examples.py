"""Re-create every image in examples/ (the README's gallery) with this project's own tools.

    python examples/make_examples.py [--shared ../shared]

SqueezeNet v1.1, the photos and paintings of ../shared/images, fixed seeds. About 5 minutes on
2 CPU cores. Every image carries the flags it was made with (`neural_style.py --show-params`).
"""
import argparse
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, ROOT)

import images  # noqa: E402
import neural_style  # noqa: E402
from luma_transfer import colortransfer  # noqa: E402

WIDTH = 320


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--shared", default=os.path.join(os.path.dirname(ROOT), "shared"))
    parser.add_argument("--tiled", metavar="FILE",
                        help="only the tiled print-size example: make FILE (4096 px wide, about 15 minutes on 2 "
                             "cores; an existing FILE made with these flags is reused) and its two gallery views")
    args = parser.parse_args()
    if args.tiled:
        return tiled_example(args.tiled)
    pictures = os.path.join(args.shared, "images")
    weights = os.path.join(args.shared, "weights", "sqz_notop.mat")
    cat, tubingen = os.path.join(pictures, "cat.png"), os.path.join(pictures, "tubingen.jpg")
    starry, shipwreck = os.path.join(pictures, "starry_night.jpg"), os.path.join(pictures, "shipwreck.jpg")
    nude = os.path.join(pictures, "seated-nude.jpg")

    def run(name, content, style, *flags, collage=False, width=WIDTH, iterations=300):
        out = os.path.join(HERE, name)
        argv = ["--content", content, "--styles", style, "--network-type", "sqz", "--network-file", weights,
                "--width", str(width), "--iterations", str(iterations), "--seed", "1", "--output", out,
                *map(str, flags)]
        if not collage:
            argv.append("--no-collage")
        print(f"== {name}", flush=True)
        neural_style.main(argv)
        return out

    # The collage that neural_style.py writes by default.
    run("collage.jpg", tubingen, starry, collage=True)

    # Hierarchy: each level's result, written as a checkpoint at its end.
    run("hierarchy.jpg", tubingen, starry, "--max-hierarchy", "3", "--checkpoint-iterations", "100000",
        "--checkpoint-output", os.path.join(HERE, "hierarchy_%s.jpg"), width=512, iterations=200)
    os.remove(os.path.join(HERE, "hierarchy_0384x0512-0200.jpg"))  # the same image as hierarchy.jpg

    # Style feature types.
    for feat in ("gram", "mean", "distr"):
        run(f"feat_{feat}.jpg", cat, starry, "--style-feat-type", feat)

    # Perceptual convergence: activation shift and the distribution remapping loss, on a hard style.
    hard = ["--style-weight", "2000", "--content-weight-blend", "0.5"]
    run("conv_naive.jpg", cat, nude, *hard)
    run("conv_ashift.jpg", cat, nude, *hard, "--ashift", "100")
    run("conv_distr.jpg", cat, nude, *hard, "--style-distr-weight", "2000")
    run("conv_both.jpg", cat, nude, *hard, "--ashift", "100", "--style-distr-weight", "2000")

    # Content-heavy and style-heavy settings.
    run("content_heavy.jpg", cat, starry, "--content-weight", "50", "--content-weight-blend", "0.5",
        "--style-layer-weight-exp", "0.5", "--ashift", "-10")
    run("style_heavy.jpg", cat, starry, "--content-weight", "1", "--style-weight", "2000",
        "--style-layer-weight-exp", "1.5", "--ashift", "100")

    # Colour: one stylization recoloured by each mode of luma_transfer.py, and --preserve-colors before.
    styled_path = run("colour_none.jpg", tubingen, shipwreck)
    styled, content = images.load_image(styled_path), images.load_image(tubingen)
    for mode in ("yuv", "hsv", "hist", "hist-rgb", "distr"):
        images.save_image(os.path.join(HERE, f"colour_{mode.replace('-', '')}.jpg"),
                          colortransfer(content, styled, mode), f'{{"luma_transfer": "{mode}"}}')
    run("colour_before.jpg", tubingen, shipwreck, "--preserve-colors", "before")
    total = sum(os.path.getsize(os.path.join(HERE, f)) for f in os.listdir(HERE) if f.endswith(".jpg"))
    print(f"examples/: {total / 2**20:.2f} MB of images")


TILED_FLAGS = ["--content", os.path.join(HERE, "inputs", "cat.png"), "--styles",
               os.path.join(HERE, "inputs", "starry_night.jpg"), "--network-type", "sqz", "--width", "4096",
               "--iterations", "20", "--max-hierarchy", "2", "--tile-size", "1024", "--no-collage"]


def tiled_example(path):
    """A print-size result in tiles (from the bundled inputs), shown downscaled and as a crop at
    full resolution: examples/tiled_small.jpg and examples/tiled_crop.jpg."""
    if not os.path.isfile(path):
        neural_style.main(TILED_FLAGS + ["--output", path])
    params = images.read_params(path)
    big = images.load_image(path)
    height, width = big.shape[:2]
    images.save_image(os.path.join(HERE, "tiled_small.jpg"), images.resize_to_width(big, 1024), params)
    y, x = int(height * 0.30), int(width * 0.22)  # the cat's eye: detail a small run cannot have
    images.save_image(os.path.join(HERE, "tiled_crop.jpg"), big[y:y + 512, x:x + 768], params)
    print(f"{path}: {width}x{height}; examples/tiled_small.jpg, examples/tiled_crop.jpg (768x512 at full size, "
          f"from x={x}, y={y})")


if __name__ == "__main__":
    main()
