"""Collage of a result with its content and style images: the result on top (the canvas its width
and ceil(1.5 x) its height), the content at half width and height below it on the left, the style
in the half-size box on the right: `scale` fits it inside (suffix _combs), `crop` fills the box and
crops the middle (_combc), `auto` picks scale where the aspect ratios differ by less than 10%.

Importable (`build_collage`) and a command-line tool:
    python build_collage.py --in t_cat.jpg_starry.jpg_..._vgg.jpg [--mode scale|crop|auto]
"""
import math
import os
import sys

import numpy as np

import images
import names
from errors import ArgumentParser, run_cli

MODES = ("scale", "crop", "auto")
SUFFIXES = {"scale": "_combs", "crop": "_combc"}


def _aspect(shape):
    return shape[1] / shape[0]


def _fit(style, box_h, box_w, mode):
    """The style image in a box_h x box_w box: 'scale' fits inside (centred, black bars),
    'crop' fills the box and centre-crops."""
    h, w = style.shape[:2]
    grow = min if mode == "scale" else max
    factor = grow(box_w / w, box_h / h)
    new_h, new_w = max(1, round(h * factor)), max(1, round(w * factor))
    scaled = images.resize(style, (new_h, new_w))
    box = np.zeros((box_h, box_w, 3), dtype=np.uint8)
    # Offsets: positive -> centre in the box, negative -> centre-crop the scaled image.
    dy, dx = (box_h - new_h) // 2, (box_w - new_w) // 2
    src = scaled[max(0, -dy):max(0, -dy) + box_h, max(0, -dx):max(0, -dx) + box_w]
    box[max(0, dy):max(0, dy) + src.shape[0], max(0, dx):max(0, dx) + src.shape[1]] = src
    return box


def build_collage(result, content, style, mode="scale"):
    """(collage, suffix): the result on top; below it the content at half size (left) and the
    style in the half-size box (right). Canvas: result width x ceil(1.5 x result height)."""
    if mode not in MODES:
        raise ValueError(f"unknown collage mode {mode!r}; expected one of {', '.join(MODES)}")
    result, content, style = (images.to_uint8(a) for a in (result, content, style))
    height, width = result.shape[:2]
    canvas_h = math.ceil(1.5 * height)
    half_w, half_h = width // 2, canvas_h - height
    if mode == "auto":
        box_aspect = (width - half_w) / half_h
        mode = "scale" if abs(_aspect(style.shape) / box_aspect - 1) < 0.1 else "crop"
    canvas = np.zeros((canvas_h, width, 3), dtype=np.uint8)
    canvas[:height] = result
    if half_w > 0 and half_h > 0:
        canvas[height:, :half_w] = images.resize(content, (half_h, half_w))
        canvas[height:, half_w:] = _fit(style, half_h, width - half_w, mode)
    return canvas, SUFFIXES[mode]


def main(argv=None):
    parser = ArgumentParser(description="Build a collage of a stylized image with its content and style.")
    parser.add_argument("--in", dest="input", metavar="STYLIZED", required=True,
                        help="a stylized file named by neural_style.py (t_<content>_<style>_...)")
    parser.add_argument("--mode", default="scale", choices=MODES,
                        help="how the style fills its box: scale (fit inside), crop (fill and crop), "
                             "auto (scale when the aspect ratios differ by less than 10%%, else crop) "
                             "(default: %(default)s)")
    parser.add_argument("--styles-path", metavar="DIR", help="folder of the style image (default: beside --in)")
    parser.add_argument("--content-path", metavar="DIR", help="folder of the content image (default: beside --in)")
    args = parser.parse_args(argv)
    content_name, style_name = names.names_from_stylized(args.input)
    beside = os.path.dirname(os.path.abspath(args.input))
    content_path = names.find_named_file(content_name, [args.content_path, beside], "content image")
    style_path = names.find_named_file(style_name, [args.styles_path, beside], "style image")
    result = images.load_image(args.input, "stylized image")
    content = images.load_image(content_path, "content image")
    style = images.load_image(style_path, "style image")
    collage, suffix = build_collage(result, content, style, args.mode)
    output = names.with_suffix(args.input, suffix)
    images.check_writable(output)
    images.save_image(output, collage)
    print(output)


def cli():
    """Console entry point (`pip install .` installs it as a command)."""
    run_cli(main, sys.argv[1:])


if __name__ == "__main__":
    cli()
