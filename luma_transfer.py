"""Colour transfer from an original photo into a stylized image. The original is resized to the
stylized image's size first; the modes:

- yuv: YCbCr of both (Pillow's); Y from the stylized, Cb and Cr from the original;
- hsv: H from the original, S the smaller of the two, V from the stylized;
- hist: per-channel histogram matching of the stylized to the original in HSV (256 bins over
  0..255, through the stylized image's CDF, then the original's inverse CDF); hist-rgb the same in RGB;
- distr: per-channel mean and standard deviation matching in HSV.

Importable (`colortransfer`) and a command-line tool:
    python luma_transfer.py --in t_cat.jpg_starry.jpg_..._vgg.jpg [--mode yuv|hsv|hist|hist-rgb|distr]
    python luma_transfer.py --content cat.jpg --stylized result.jpg [--output out.jpg]
"""
import os
import sys

import numpy as np
from PIL import Image

import images
import names
from errors import ArgumentParser, run_cli

MODES = ("yuv", "hsv", "hist", "hist-rgb", "distr")


def _convert(array, mode):
    """An HxWx3 uint8 RGB array converted by Pillow to `mode` (YCbCr, HSV), as an array."""
    return np.asarray(Image.fromarray(array).convert(mode))


def _to_rgb(array, mode):
    return np.asarray(Image.fromarray(np.ascontiguousarray(array, dtype=np.uint8), mode).convert("RGB"))


def match_histogram(source, reference):
    """Map uint8 `source` values through its CDF, then through the inverse CDF of `reference`
    (256 bins over 0..255): the smallest value whose reference CDF reaches the source CDF."""
    # CDFs as integer counts scaled to a common denominator: exact comparisons, no rounding.
    source_cdf = np.cumsum(np.bincount(source.ravel(), minlength=256)).astype(np.int64) * reference.size
    reference_cdf = np.cumsum(np.bincount(reference.ravel(), minlength=256)).astype(np.int64) * source.size
    lookup = np.searchsorted(reference_cdf, source_cdf, side="left").clip(0, 255)
    return lookup.astype(np.uint8)[source]


def match_distribution(source, reference):
    """Per-channel mean/std matching of `source` to `reference` (HxWxC arrays)."""
    source = source.astype(np.float64)
    reference = reference.astype(np.float64)
    s_mean, s_std = source.mean(axis=(0, 1)), source.std(axis=(0, 1))
    r_mean, r_std = reference.mean(axis=(0, 1)), reference.std(axis=(0, 1))
    return (source - s_mean) * (r_std / np.maximum(s_std, 1e-6)) + r_mean


def colortransfer(original_image, styled_image, mode="yuv"):
    """The styled image with the original's colours (both HxWx3 RGB arrays; the original is
    resized to the styled image's size first). Returns an HxWx3 uint8 array."""
    if mode not in MODES:
        raise ValueError(f"unknown colour transfer mode {mode!r}; expected one of {', '.join(MODES)}")
    styled = images.to_uint8(styled_image)
    original = images.resize(images.to_uint8(original_image), styled.shape[:2])
    if mode == "yuv":
        out = _convert(styled, "YCbCr").copy()
        out[:, :, 1:] = _convert(original, "YCbCr")[:, :, 1:]
        return _to_rgb(out, "YCbCr")
    if mode == "hsv":
        o, s = _convert(original, "HSV"), _convert(styled, "HSV")
        out = np.stack([o[:, :, 0], np.minimum(o[:, :, 1], s[:, :, 1]), s[:, :, 2]], axis=2)
        return _to_rgb(out, "HSV")
    if mode == "hist-rgb":
        return np.stack([match_histogram(styled[:, :, c], original[:, :, c]) for c in range(3)], axis=2)
    o, s = _convert(original, "HSV"), _convert(styled, "HSV")
    if mode == "hist":
        out = np.stack([match_histogram(s[:, :, c], o[:, :, c]) for c in range(3)], axis=2)
    else:  # distr
        out = images.to_uint8(match_distribution(s, o))
    return _to_rgb(out, "HSV")


def suffix(mode):
    return "_pc" + mode.replace("-", "")


def collage_top_height(stylized_shape, content_shape):
    """Height of the result part if `stylized` is a collage of this content, else None.

    A collage is ceil(1.5 x) as tall as its result; the result has the content's aspect ratio
    (at whatever width the run used), so the spec's test "same width as the content, height
    within 2 px of 1.5 x its height" is applied at the stylized image's width."""
    height, width = stylized_shape[:2]
    top = int(round(content_shape[0] / content_shape[1] * width))
    return top if abs(height - 1.5 * top) <= 2 and top < height else None


def transfer_file(stylized_path, content_path, mode, output_path):
    images.check_not_input(output_path, [("stylized image", stylized_path), ("content image", content_path)])
    stylized = images.load_image(stylized_path, "stylized image")
    content = images.load_image(content_path, "content image")
    images.check_writable(output_path)
    top = collage_top_height(stylized.shape, content.shape)
    if top is None:
        result = colortransfer(content, stylized, mode)
    else:  # a collage: recolour the result part only, keep the strip below it
        result = stylized.copy()
        result[:top] = colortransfer(content, stylized[:top], mode)
    images.save_image(output_path, result)
    return output_path


def main(argv=None):
    parser = ArgumentParser(description="Transfer the colours of the content photo into a stylized image.")
    parser.add_argument("--in", dest="input", metavar="STYLIZED",
                        help="a stylized file named by neural_style.py (t_<content>_<style>_...); "
                             "the content is found from its name")
    parser.add_argument("--content-path", metavar="DIR",
                        help="folder holding the content image (default: beside the --in file)")
    parser.add_argument("--content", help="the content image, given explicitly (with --stylized)")
    parser.add_argument("--stylized", help="the stylized image, given explicitly (with --content)")
    parser.add_argument("--mode", default="yuv", choices=MODES,
                        help="yuv: luma of the stylized, colour of the content; hsv: hue of the content, "
                             "min saturation, value of the stylized; hist / hist-rgb: histogram matching "
                             "in HSV / RGB; distr: mean and std matching in HSV (default: %(default)s)")
    parser.add_argument("--output", help="output file (default: the input name plus _pc<mode>)")
    args = parser.parse_args(argv)
    if args.input and (args.content or args.stylized):
        parser.error("give either --in, or --content with --stylized, not both")
    if args.input:
        stylized_path = args.input
        content_name, _ = names.names_from_stylized(stylized_path)
        content_path = names.find_named_file(
            content_name, [args.content_path, os.path.dirname(os.path.abspath(stylized_path))], "content image")
    elif args.content and args.stylized:
        stylized_path, content_path = args.stylized, args.content
    else:
        parser.error("give --in STYLIZED, or --content and --stylized")
    output = args.output or names.with_suffix(stylized_path, suffix(args.mode))
    print(transfer_file(stylized_path, content_path, args.mode, output))


def cli():
    """Console entry point (`pip install .` installs it as a command)."""
    run_cli(main, sys.argv[1:])


if __name__ == "__main__":
    cli()
