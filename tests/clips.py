"""Short clips the video tests make themselves: a slow pan, then a slow zoom, over a bundled photo,
written with the ffmpeg imageio-ffmpeg brings, with a generated tone as their sound; the motion of
the pan is known."""
import math
import os
import wave

import numpy as np

import images
from conftest import INPUTS

PAN = 2  # pixels a frame: the scene moves left by this much from one frame of the pan to the next


def pan_and_zoom(size=(64, 96), pan_frames=6, zoom_frames=4):
    """[uint8 HxWx3 frames]: a window of `size` (height, width) moving right over the rocket photo
    by PAN pixels a frame, then zooming in by 3% a frame."""
    height, width = size
    y0, x0 = 80, 100
    photo = images.load_image(os.path.join(INPUTS, "full", "rocket.jpg"))
    # 240x360, or larger where the window and its pan would reach past it (every frame `size`)
    scale = max(1.0, (y0 + height) / 240, (x0 + (pan_frames - 1) * PAN + width) / 360)
    photo = images.resize(photo, (math.ceil(240 * scale), math.ceil(360 * scale)))
    frames = [photo[y0:y0 + height, x0 + k * PAN:x0 + k * PAN + width].copy() for k in range(pan_frames)]
    x = x0 + (pan_frames - 1) * PAN
    for k in range(1, zoom_frames + 1):
        scale = 1.03 ** k
        h, w = round(height / scale), round(width / scale)
        y, xx = y0 + (height - h) // 2, x + (width - w) // 2
        frames.append(images.resize(photo[y:y + h, xx:xx + w], size))
    assert all(f.shape[:2] == tuple(size) for f in frames), "a frame left the photo"
    return frames


def tone(path, seconds, rate=44100, frequency=440.0):
    samples = (np.sin(2 * math.pi * frequency * np.arange(int(seconds * rate)) / rate) * 12000).astype("<i2")
    with wave.open(path, "wb") as f:
        f.setnchannels(1)
        f.setsampwidth(2)
        f.setframerate(rate)
        f.writeframes(samples.tobytes())
    return path


def write_clip(path, frames, fps=10, audio=True):
    """The frames as a video (H.264, nearly lossless) with a tone as long as the clip."""
    import imageio_ffmpeg
    height, width = frames[0].shape[:2]
    wav = tone(path + ".wav", len(frames) / fps) if audio else None
    writer = imageio_ffmpeg.write_frames(path, (width, height), fps=fps, codec="libx264", quality=None,
                                         output_params=["-crf", "4"], macro_block_size=1, audio_path=wav,
                                         audio_codec="aac" if audio else None, ffmpeg_log_level="error")
    writer.send(None)
    for frame in frames:
        writer.send(np.ascontiguousarray(frame))
    writer.close()
    if wav:
        os.remove(wav)
    return path


def two_shots(size=(64, 96), frames_each=5):
    """A pan over the rocket, then a cut to a pan over the coffee cup: two shots."""
    first = pan_and_zoom(size, frames_each, 0)
    photo = images.resize(images.load_image(os.path.join(INPUTS, "full", "coffee.jpg")), (240, 360))
    height, width = size
    second = [photo[60:60 + height, 40 + k * PAN:40 + k * PAN + width].copy() for k in range(frames_each)]
    return first + second


MOTIONS = ("pan", "zoom", "rotation", "object")


def moving_clip(photo, motion, size=(112, 160), count=16):
    """[uint8 HxWx3 frames] of `size` (height, width): a camera moving over `photo` (HxWx3 uint8)
    by `motion`: "pan" (1.3 px a frame to the right and 0.4 down), "zoom" (in by 2% a frame),
    "rotation" (0.8 degrees a frame) or "object" (a still view, a disc cut from the middle of the
    photo crossing it at 2.5 px a frame: disocclusions behind it). Sub-pixel motion, as a camera
    gives; each frame sampled from the photo once (bicubic), so none is blurred by the others."""
    import cv2
    height, width = size
    # The photo scaled so that the view, 60% of its width, has about the frame's own resolution.
    scale = width / (0.6 * photo.shape[1])
    source = cv2.resize(photo, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA).astype(np.float32)
    cy, cx = source.shape[0] / 2, source.shape[1] / 2
    frames = []
    for t in range(count):
        angle, zoom, dy, dx = 0.0, 1.0, 0.0, 0.0
        if motion == "pan":
            dx, dy = 1.3 * t - 1.3 * count / 2, 0.4 * t - 0.4 * count / 2
        elif motion == "zoom":
            zoom = 1.02 ** t
        elif motion == "rotation":
            angle = 0.8 * t
        # frame pixel (u, v) shows the source at centre + R(angle) (u - w/2, v - h/2) / zoom + shift
        rad = math.radians(angle)
        a, b = math.cos(rad) / zoom, -math.sin(rad) / zoom
        m = np.array([[a, b, cx + dx - a * width / 2 - b * height / 2],
                      [-b, a, cy + dy + b * width / 2 - a * height / 2]], np.float32)
        frame = cv2.warpAffine(source, m, (width, height), flags=cv2.INTER_CUBIC | cv2.WARP_INVERSE_MAP,
                               borderMode=cv2.BORDER_REFLECT)
        if motion == "object":
            radius = height * 0.3
            yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
            oy, ox = height * 0.45, -radius + t * 2.5 + width * 0.1
            inside = np.clip(radius - np.hypot(yy - oy, xx - ox) + 0.5, 0.0, 1.0)[..., None]
            # the disc's picture: the middle of the photo, moving with the disc
            patch = cv2.warpAffine(source, np.array([[1, 0, cx - ox], [0, 1, cy - oy]], np.float32),
                                   (width, height), flags=cv2.INTER_CUBIC | cv2.WARP_INVERSE_MAP,
                                   borderMode=cv2.BORDER_REFLECT)
            frame = inside * patch + (1.0 - inside) * frame
        frames.append(np.clip(np.round(frame), 0, 255).astype(np.uint8))
    return frames
