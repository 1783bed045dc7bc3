"""Image input and output, in one place: load any image as 8-bit RGB, resize, save atomically."""
import functools
import io
import os
import re
import struct
import tempfile
import warnings
import zlib

import numpy as np
from PIL import Image, ImageCms, ImageOps, JpegImagePlugin, PngImagePlugin, TiffImagePlugin

from errors import ToolError, UsageError

JPEG_QUALITY = 95
PARAMS_KEY = "neural-style"  # PNG text chunk / JPEG comment key holding the run's parameters


def load_image(path, what="image", data=None):
    """Read `path` (or `data`, the bytes of the file named `path`) as an HxWx3 uint8 RGB array.

    EXIF orientation is applied; greyscale becomes three equal channels, alpha is dropped,
    palette, CMYK and 16-bit images are converted. Every failure is a ToolError naming the file.
    """
    try:
        with warnings.catch_warnings():
            # Pillow warns before its hard decompression-bomb limit; we only refuse past the limit.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(path if data is None else io.BytesIO(data)) as img:
                img.load()
                img = ImageOps.exif_transpose(img)
                return to_rgb_array(img)
    except FileNotFoundError:
        raise ToolError(f"{what} not found: {path}") from None
    except IsADirectoryError:
        raise ToolError(f"{what} is a directory, not an image file: {path}") from None
    except PermissionError:
        raise ToolError(f"cannot read {what} (permission denied): {path}") from None
    except Image.DecompressionBombError as e:
        raise ToolError(f"{what} {path} is too large to load safely ({e})") from None
    except Image.UnidentifiedImageError:
        raise ToolError(f"{what} is not an image file Pillow can read: {path}") from None
    except (OSError, SyntaxError, ValueError) as e:
        raise ToolError(f"{what} {path} could not be read (damaged or truncated?): {e}") from None


def as_rgb(image, what="image"):
    """An image given as a file path, a PIL image or an array (HxW or HxWx3/4, 0..255 values) as an
    HxWx3 uint8 RGB array."""
    if isinstance(image, (str, os.PathLike)):
        return load_image(os.fspath(image), what)
    if isinstance(image, Image.Image):
        return to_rgb_array(image)
    array = np.asarray(image)
    if array.ndim == 2:
        array = array[:, :, None]
    if array.ndim != 3 or array.shape[2] not in (1, 3, 4) or array.dtype.kind not in "uif":
        raise ToolError(f"{what} must be a file path, a PIL image or an HxWx3 array of 0..255 values, got "
                        f"{type(image).__name__} {getattr(array, 'shape', '')}")
    return np.repeat(to_uint8(array), 3, axis=2) if array.shape[2] == 1 else to_uint8(array[:, :, :3])


def describe(image):
    """The name a run's settings store for an image: its path, or what it was given as."""
    if isinstance(image, (str, os.PathLike)):
        return os.fspath(image)
    size = image.size if isinstance(image, Image.Image) else np.shape(image)[1::-1]
    return f"<{type(image).__name__} {size[0]}x{size[1]}>"


def to_rgb_array(img):
    """A Pillow image of any mode as an HxWx3 uint8 array."""
    if img.mode in ("I;16", "I;16B", "I;16L", "I;16N", "I"):
        # 16-bit (or 32-bit int) greyscale: scale to 8 bits instead of Pillow's clipping.
        data = np.asarray(img, dtype=np.float64)
        top = 65535.0 if img.mode.startswith("I;16") or data.max() > 255 else 255.0
        grey = np.clip(np.round(data * (255.0 / top)), 0, 255).astype(np.uint8)
        return np.repeat(grey[:, :, None], 3, axis=2)
    if img.mode == "F":
        grey = np.clip(np.round(np.asarray(img)), 0, 255).astype(np.uint8)
        return np.repeat(grey[:, :, None], 3, axis=2)
    if img.mode == "P" and "transparency" in img.info:
        img = img.convert("RGBA")
    if img.mode != "RGB":
        img = img.convert("RGB")  # L, LA, RGBA, P, CMYK, YCbCr, 1: alpha dropped, grey replicated
    return np.asarray(img, dtype=np.uint8).copy()


def resize(image, size):
    """Resize an HxWx3 array to size = (height, width) with Lanczos.

    uint8 arrays stay uint8; float arrays are resized per channel in float (values outside
    0..255, as in an optimised image, survive).
    """
    height, width = int(size[0]), int(size[1])
    if image.shape[:2] == (height, width):
        return image.copy()
    if image.dtype == np.uint8:
        return np.asarray(Image.fromarray(image).resize((width, height), Image.LANCZOS))
    channels = [np.asarray(Image.fromarray(np.ascontiguousarray(image[:, :, c], dtype=np.float32), "F")
                           .resize((width, height), Image.LANCZOS)) for c in range(image.shape[2])]
    return np.stack(channels, axis=2).astype(image.dtype)


def size_at_width(shape, width):
    """(height, width) of an image of `shape` scaled to `width`: height = floor(h / w * width)."""
    h, w = shape[:2]
    return max(1, int(h / w * width)), int(width)


def resize_to_width(image, width):
    """Resize keeping the aspect ratio."""
    return resize(image, size_at_width(image.shape, width))


def to_uint8(image):
    return np.clip(np.round(image), 0, 255).astype(np.uint8)


def check_writable(path):
    """Fail before any computation if `path` cannot be written (missing or read-only folder)."""
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise ToolError(f"output folder does not exist: {folder}")
    try:  # really try: permission bits do not tell for root, read-only mounts or ACLs
        fd, probe = tempfile.mkstemp(prefix=".tmp-", dir=folder)
        os.close(fd)
        os.remove(probe)
    except OSError as e:
        raise ToolError(f"output folder is not writable: {folder} ({e.strerror})") from None
    if os.path.isdir(path):
        raise ToolError(f"output path is a directory: {path}")
    if image_format(path) is None:
        raise ToolError(f"cannot tell the image format from the output name: {path} "
                        "(use an extension such as .jpg or .png)")


def _real(path):
    return os.path.normcase(os.path.realpath(path))


def same_file(a, b):
    """Whether two paths name the same file, however spelled (relative, links, case on Windows)."""
    if os.path.exists(a) and os.path.exists(b):
        return os.path.samefile(a, b)
    return _real(a) == _real(b)


def checkpoint_matches(pattern, path):
    """Whether `path` is one of the files a checkpoint pattern (one %s, for HHHHxWWWW-IIII) writes."""
    sample = os.path.abspath(pattern % "\0")
    folder, name = os.path.split(sample)
    if "\0" not in folder:
        sample = os.path.join(_real(folder), os.path.normcase(name))
    before, after = sample.split("\0", 1)
    return re.fullmatch(re.escape(before) + r"\d{4,}x\d{4,}-\d{4,}" + re.escape(after), _real(path)) is not None


def check_not_input(output, inputs, flag="--output", pattern=False):
    """A usage error if `output` (a file, or with `pattern` a checkpoint pattern) would replace one
    of the `inputs`, a list of (what, path): the tool never writes over a user's images."""
    for what, path in inputs:
        if path and (checkpoint_matches(output, path) if pattern else same_file(output, path)):
            raise UsageError(f"{flag} {output} would overwrite the {what} {path}: choose another name")


def image_format(path):
    ext = os.path.splitext(path)[1].lower()
    return Image.registered_extensions().get(ext)


ICC_FORMATS = ("JPEG", "PNG", "TIFF", "WEBP")  # Pillow stores an ICC profile in these
DEEP_FORMATS = ("PNG", "TIFF")  # can hold 16 bits per channel (--bit-depth 16)


@functools.lru_cache(maxsize=None)
def srgb_profile():
    """The bytes of an sRGB ICC profile (Little CMS's, through Pillow), which every output carries:
    the pixel values are sRGB, as print services and colour-managed viewers expect to be told."""
    return ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()


def to_uint16(image):
    """0..255 values (clipped) as 16-bit ones, 0..65535: the optimised image's precision kept."""
    return np.round(np.clip(np.asarray(image, np.float64), 0, 255) * 257.0).astype(np.uint16)


def save_image(path, image, params=None, bit_depth=8):
    """Write an image (clipped to 0..255) atomically: a temporary file in the same folder,
    renamed into place, so an interrupted write never leaves a truncated image.

    `params` (a string) is stored in the file: a PNG text chunk, a JPEG comment or a TIFF image
    description. Every format that can carries an sRGB ICC profile. `bit_depth` 16 (PNG and TIFF)
    keeps 16 bits per channel.
    """
    fmt = image_format(path)
    if fmt is None:
        raise ToolError(f"cannot tell the image format from the output name: {path}")
    if bit_depth == 16 and fmt not in DEEP_FORMATS:
        raise ToolError(f"16 bits per channel need a .png or .tif output, not {path}")
    folder = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=os.path.splitext(path)[1], dir=folder)
    os.close(fd)
    try:
        if bit_depth == 16:
            (_write_png16 if fmt == "PNG" else _write_tiff16)(tmp, to_uint16(image), params)
        else:
            _write_8bit(tmp, fmt, to_uint8(image), params)
        os.chmod(tmp, 0o666 & ~umask())  # mkstemp makes the file private; an image should not be
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise


def _write_8bit(path, fmt, pixels, params):
    options = {"icc_profile": srgb_profile()} if fmt in ICC_FORMATS else {}
    if fmt == "JPEG":
        options["quality"] = JPEG_QUALITY
        if params:
            options["comment"] = f"{PARAMS_KEY}: {params}".encode("utf-8")
    elif fmt == "PNG" and params:
        info = PngImagePlugin.PngInfo()
        info.add_text(PARAMS_KEY, params)
        options["pnginfo"] = info
    elif fmt == "TIFF":
        options["compression"] = "tiff_adobe_deflate"
        if params:
            options["description"] = _ascii(f"{PARAMS_KEY}: {params}")
    with open(path, "wb") as f:
        Image.fromarray(pixels).save(f, format=fmt, **options)


def _png_chunk(kind, payload):
    return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))


def _write_png16(path, pixels, params):
    """A 16-bit RGB PNG (Pillow writes none): the sRGB profile (iCCP), the parameters (iTXt, UTF-8),
    the rows with PNG's Up filter (each byte less the byte above), deflated."""
    height, width, _ = pixels.shape
    rows = pixels.astype(">u2").reshape(height, width * 3).view(np.uint8)
    filtered = rows.copy()
    filtered[1:] -= rows[:-1]  # modulo 256, as the Up filter is defined
    data = np.concatenate([np.full((height, 1), 2, np.uint8), filtered], axis=1)  # 2: the Up filter
    with open(path, "wb") as f:
        f.write(b"\x89PNG\r\n\x1a\n")
        f.write(_png_chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 16, 2, 0, 0, 0)))
        f.write(_png_chunk(b"iCCP", b"sRGB\x00\x00" + zlib.compress(srgb_profile())))
        if params:
            f.write(_png_chunk(b"iTXt", PARAMS_KEY.encode() + b"\x00\x00\x00\x00\x00" + params.encode("utf-8")))
        f.write(_png_chunk(b"IDAT", zlib.compress(data.tobytes(), 6)))
        f.write(_png_chunk(b"IEND", b""))


def _write_tiff16(path, pixels, params):
    """A 16-bit RGB TIFF (deflated) with the sRGB profile and the parameters, through tifffile."""
    import tifffile  # only for 16-bit TIFFs
    tifffile.imwrite(path, pixels, photometric="rgb", compression="zlib", iccprofile=srgb_profile(),
                     description=_ascii(f"{PARAMS_KEY}: {params}") if params else None, metadata=None)


def _ascii(text):
    """TIFF's text tags hold 7-bit ASCII (the parameters' JSON is, but for what it escapes)."""
    return text.encode("ascii", "backslashreplace").decode("ascii")


def umask():
    mask = os.umask(0)
    os.umask(mask)
    return mask


def read_params(path):
    """The parameters stored by save_image, or None."""
    try:
        with Image.open(path) as img:
            if isinstance(img, JpegImagePlugin.JpegImageFile):
                text = img.info.get("comment", b"")
            elif isinstance(img, TiffImagePlugin.TiffImageFile):
                text = img.tag_v2.get(270, "")  # ImageDescription
            else:
                return img.info.get(PARAMS_KEY)
            text = text.decode("utf-8", "replace") if isinstance(text, bytes) else text
            prefix = f"{PARAMS_KEY}: "
            return text[len(prefix):] if text.startswith(prefix) else None
    except FileNotFoundError:
        raise ToolError(f"file not found: {path}") from None
    except (OSError, SyntaxError) as e:
        raise ToolError(f"{path} is not an image file Pillow can read: {e}") from None
