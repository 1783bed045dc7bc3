"""File names: the auto-generated output name, and parsing it back (luma_transfer.py, build_collage.py).

Without --output, a run writes
t_{C}_{S}_{optim}{iterations:04d}_h{max_hierarchy}_p{pooling}_sw{int(style_weight):05d}{sdw}
_swe{int(style_layer_weight_exp*10):02d}_cwe{int(content_weight_blend*10):02d}_as{int(ashift):03d}
_{network_type}{sft}{pc}{postfix}.jpg (one line), as the original tool named its outputs: C and S
the content's and first style's file names with their extensions; sdw empty for a distribution
weight of 0, _sdw{int(w)//100:02d}e2 above 100, else _sdw{int(w):03d}; sft empty for gram, else
_ and the feature type; pc empty for none, _bpc for before, else _pc; postfix _ and --out-postfix
when given.
"""
import os
import re

from errors import ToolError

# The original tool's extensions (.jpg .bmp .png .tga) plus the other formats Pillow reads,
# so contents such as photo.jpeg round-trip too.
_IMAGE_EXT = r"\.(?:jpg|jpeg|bmp|png|tga|tif|tiff|webp|gif)"
# The content name runs to the first image extension followed by '_', then the style name likewise.
_STYLIZED_RE = re.compile(rf"^(?:tiles_|t_)(.+?{_IMAGE_EXT})_(.+?{_IMAGE_EXT})_", re.IGNORECASE)


def auto_output_name(settings):
    """The output name of a run's settings (settings.Settings), character for character as the
    original tool's (the module's docstring)."""
    losses, network, hierarchy = settings.losses, settings.network, settings.hierarchy
    w = losses.style_distr_weight
    if w == 0:
        sdw = ""
    elif w > 100:
        sdw = f"_sdw{int(w) // 100:02d}e2"
    else:
        sdw = f"_sdw{int(w):03d}"
    sft = "" if losses.style_feat_type == "gram" else "_" + losses.style_feat_type
    pc = {"none": "", "before": "_bpc"}.get(hierarchy.preserve_colors, "_pc")
    postfix = f"_{settings.output.out_postfix}" if settings.output.out_postfix else ""
    return (f"t_{os.path.basename(settings.inputs.content)}_{os.path.basename(settings.inputs.styles[0])}_"
            f"{settings.optimizer.optim}{hierarchy.iterations:04d}_h{hierarchy.max_hierarchy}_p{network.pooling}"
            f"_sw{int(losses.style_weight):05d}{sdw}_swe{int(losses.style_layer_weight_exp * 10):02d}"
            f"_cwe{int(losses.content_weight_blend * 10):02d}_as{int(losses.ashift):03d}_{network.network_type}"
            f"{sft}{pc}{postfix}.jpg")


def parse_stylized_name(path):
    """(content file name, style file name) encoded in a stylized file's name, or None."""
    match = _STYLIZED_RE.match(os.path.basename(path))
    return (match.group(1), match.group(2)) if match else None


def with_suffix(path, suffix):
    """'dir/t_x.jpg', '_pcyuv' -> 'dir/t_x_pcyuv.jpg'."""
    stem, ext = os.path.splitext(path)
    return stem + suffix + ext


def find_named_file(name, folders, what):
    """The first folders[i]/name that exists, or a ToolError listing where it looked."""
    folders = [f for f in folders if f is not None]
    for folder in folders:
        path = os.path.join(folder, name)
        if os.path.isfile(path):
            return path
    raise ToolError(f"{what} {name} not found in: {', '.join(os.path.abspath(f) for f in folders)}")


def names_from_stylized(path):
    """(content name, style name) parsed from a stylized file's name, or a ToolError."""
    parsed = parse_stylized_name(path)
    if parsed is None:
        raise ToolError(f"cannot find the content and style names in {os.path.basename(path)}: expected "
                        "t_<content>.<ext>_<style>.<ext>_... as neural_style.py names its output")
    return parsed
