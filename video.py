"""Video: frames in and out (through imageio-ffmpeg's own ffmpeg), optical flow (OpenCV's DIS)
and temporal consistency after Ruder, Dosovitskiy and Brox, "Artistic style transfer for videos"
(2016).

A shot's first frame is stylised as a still image. Each later frame starts from the previous
result warped to it by the optical flow between the content frames (where the flow is uncertain,
from the content frame), and the temporal loss (losses.py) keeps it close to each earlier result,
both warped back to that frame and with the result warped to it, pixel by pixel as certain as
the flow there. The certainty of the flow from frame t to frame s, w, comes from the
forward-backward check with the flow from s to t, f: a pixel where w and f(x + w) do not cancel,
|w + f(x + w)|^2 > 0.01 (|w|^2 + |f(x + w)|^2) + 0.5, is disoccluded; one where w changes fast,
|grad w_x|^2 + |grad w_y|^2 > 0.01 |w|^2 + 0.002, is on a motion boundary; both get 0, every
other pixel 1 (and likewise for f, checked against w). With several earlier frames (--temporal-frames
1,2,4) the closer frame wins where both are certain: frame j's weight is its certainty less the
closer frames' (not below 0), on frame t's pixels (sampled where frame s's pixels come, for the
comparison on frame s's). --temporal-weight 0 stylises the frames independently, each started
as a still.

A shot ends where the flow from the previous frame is certain over less than CUT_CERTAINTY of the
frame. Shots are independent: on Ray they run at the same time. Flows and finished frames go to a
work folder as they are made (frames as 8-bit PNG files, which the next frames warp, so that a run
resumed from them gives the frames an uninterrupted run gives); running the same command again
continues where it stopped.
"""
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from typing import NamedTuple

import numpy as np

import images
from errors import ToolError, UsageError

VIDEO_EXTENSIONS = (".mp4", ".mov", ".mkv", ".webm", ".avi", ".gif", ".m4v", ".mpg", ".mpeg")
FRAME_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp")
CUT_CERTAINTY = 0.3     # a new shot where the flow from the previous frame is certain over less of the frame
FOLDER_FPS = 25.0       # the frame rate of a folder of frames (--fps)
FRAME_NAME = "%06d.png"  # the work folder's frames, and an output folder's, from 1


class Source(NamedTuple):
    """A video file or a folder of numbered frames."""
    path: str
    files: list      # a folder's frame files in order; empty for a video file
    count: int
    fps: float
    height: int
    width: int
    has_audio: bool


def ffmpeg():
    import imageio_ffmpeg
    return imageio_ffmpeg.get_ffmpeg_exe()


def _number(name):
    digits = re.findall(r"\d+", os.path.splitext(name)[0])
    return int(digits[-1]) if digits else None


def open_source(path, fps=None):
    """The video or folder of frames at `path`, checked: a ToolError for what cannot be read, has
    no frames, or mixes frame sizes."""
    if os.path.isdir(path):
        named = [(n, f) for f in os.listdir(path) if f.lower().endswith(FRAME_EXTENSIONS) and not f.startswith(".")
                 for n in [_number(f)] if n is not None]
        if not named:
            raise ToolError(f"no numbered frames (frame0001.png, ...) in the folder {path}")
        files = [os.path.join(path, f) for _, f in sorted(named)]
        from PIL import Image
        sizes = {}
        for f in files:
            try:
                with Image.open(f) as image:
                    sizes.setdefault(image.size, f)
            except OSError as e:
                raise ToolError(f"frame {f} could not be read: {e}") from None
        if len(sizes) > 1:
            (a, first), (b, other) = list(sizes.items())[:2]
            raise ToolError(f"the frames differ in size: {first} is {a[0]}x{a[1]}, {other} {b[0]}x{b[1]}")
        (width, height), = sizes
        return Source(path, files, len(files), fps or FOLDER_FPS, height, width, False)
    if not os.path.isfile(path):
        raise ToolError(f"content video not found: {path}")
    import imageio_ffmpeg
    try:
        reader = read_frames(path)
        meta = next(reader)
        first = next(reader, None)
        reader.close()
    except (RuntimeError, OSError, StopIteration) as e:
        raise ToolError(f"{path} is not a video ffmpeg can read ({str(e).strip().splitlines()[-1][:200]})") from None
    if first is None:
        raise ToolError(f"the video {path} has no frames")
    width, height = meta["size"]
    count = imageio_ffmpeg.count_frames_and_secs(path)[0]
    if not count:
        raise ToolError(f"the video {path} has no frames")
    probe = subprocess.run([ffmpeg(), "-hide_banner", "-i", path], capture_output=True, text=True)
    has_audio = bool(re.search(r"Stream #\S+.*: Audio:", probe.stderr))
    return Source(path, [], count, fps or float(meta["fps"]), height, width, has_audio)


def read_frames(path):
    """imageio-ffmpeg's reader of the video at `path`: its metadata, then each frame's bytes. Every
    decoded frame once (-fps_mode passthrough): by default ffmpeg repeats frames to fill a constant
    rate, for example where an AVI's sound outlasts its pictures, and the frames would outnumber
    the count."""
    import imageio_ffmpeg
    return imageio_ffmpeg.read_frames(path, output_params=["-fps_mode", "passthrough"])


def frames(source, size=None):
    """The source's frames, in order, as uint8 HxWx3 arrays, resized to `size` (height, width)."""
    if source.files:
        for f in source.files:
            frame = images.load_image(f, "frame")
            yield images.resize(frame, size) if size else frame
        return
    reader = read_frames(source.path)
    meta = next(reader)
    width, height = meta["size"]
    try:
        for raw in reader:
            frame = np.frombuffer(raw, np.uint8).reshape(height, width, 3)
            yield images.resize(frame, size) if size else frame.copy()
    finally:
        reader.close()


# --- optical flow ---------------------------------------------------------------------------------

def grey(frame):
    import cv2
    return cv2.cvtColor(np.ascontiguousarray(frame), cv2.COLOR_RGB2GRAY)


def flow(a, b):
    """The optical flow from frame `a` to frame `b` (HxWx2 float32, x then y): where each pixel of
    `a` is in `b`. OpenCV's DIS, its medium preset."""
    import cv2
    dis = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM)
    return dis.calc(grey(a), grey(b), None)


def warp(image, field):
    """`image` sampled at each pixel x at x + field(x) (bilinear; at the border, its edge)."""
    import cv2
    height, width = field.shape[:2]
    grid_x, grid_y = np.meshgrid(np.arange(width, dtype=np.float32), np.arange(height, dtype=np.float32))
    return cv2.remap(np.asarray(image, np.float32), grid_x + field[..., 0], grid_y + field[..., 1],
                     interpolation=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)


def certainty(backward, forward):
    """1 where the backward flow (this frame to an earlier one) is reliable, 0 at disocclusions and
    motion boundaries (the module's docstring)."""
    there = warp(forward, backward)  # the forward flow where each pixel lands
    both = backward + there
    disoccluded = np.sum(both ** 2, -1) > 0.01 * (np.sum(backward ** 2, -1) + np.sum(there ** 2, -1)) + 0.5
    dy_u, dx_u = np.gradient(backward[..., 0])
    dy_v, dx_v = np.gradient(backward[..., 1])
    boundary = dx_u ** 2 + dy_u ** 2 + dx_v ** 2 + dy_v ** 2 > 0.01 * np.sum(backward ** 2, -1) + 0.002
    return (~(disoccluded | boundary)).astype(np.float32)


def resize_flow(field, size):
    """A flow field at another size (height, width), its vectors scaled alike."""
    height, width = field.shape[:2]
    resized = images.resize(field.astype(np.float32), size)
    return resized * np.array([size[1] / width, size[0] / height], np.float32)


class FlowPair(NamedTuple):
    """The flows between a frame and an earlier one, each with its certainty on its own grid."""
    backward: np.ndarray            # from this frame to the earlier one (on this frame's pixels)
    forward: np.ndarray             # from the earlier frame to this one (on the earlier frame's pixels)
    backward_certainty: np.ndarray
    forward_certainty: np.ndarray


class Flows:
    """The flows and their certainty for each frame and earlier frame the run uses, cached in the
    work folder (flow/FRAME-J.npz: between frame FRAME and frame FRAME - J)."""

    def __init__(self, folder):
        self.folder = os.path.join(folder, "flow")
        os.makedirs(self.folder, exist_ok=True)

    def path(self, index, back):
        return os.path.join(self.folder, f"{index:06d}-{back}.npz")

    def get(self, index, back, frame=None, earlier=None):
        """The FlowPair between frame `index` and frame `index - back`: from the cache, or computed
        from the two content frames and cached."""
        path = self.path(index, back)
        if os.path.isfile(path):
            try:
                with np.load(path) as data:
                    return FlowPair(*(data[key].astype(np.float32) for key in FlowPair._fields))
            except (OSError, ValueError, KeyError):
                pass  # damaged, or made by an earlier version: computed again
        if frame is None:
            raise ToolError(f"the flow of frame {index} is missing from {self.folder}")
        backward, forward = flow(frame, earlier), flow(earlier, frame)
        stored = dict(backward=backward.astype(np.float16), forward=forward.astype(np.float16),
                      backward_certainty=certainty(backward, forward).astype(np.uint8),
                      forward_certainty=certainty(forward, backward).astype(np.uint8))
        tmp = path + ".partial.npz"
        np.savez_compressed(tmp, **stored)
        os.replace(tmp, path)
        return FlowPair(*(stored[key].astype(np.float32) for key in FlowPair._fields))


# --- the run ----------------------------------------------------------------------------------------

class VideoSettings(NamedTuple):
    temporal_weight: float = 300.0  # a share of the frame's own loss (losses.py); benchmarks/video.py
    temporal_frames: tuple = (1,)
    work_dir: str = None
    fps: float = None


def long_term_weights(certainties):
    """Each earlier frame's weight, closest first: its certainty less the closer frames' (not below 0)."""
    weights, closer = [], None
    for c in certainties:
        weights.append(c if closer is None else np.maximum(c - closer, 0.0))
        closer = c if closer is None else closer + c
    return weights


def shots(flows, count, content_frames):
    """The first frame of each shot (0 first): a frame starts one where the flow from the one
    before is certain over less than CUT_CERTAINTY of it. Computes (and caches) the flows to the
    previous frame of every frame from `content_frames` (an iterator of the content frames)."""
    starts = [0]
    previous = None
    for index, frame in enumerate(content_frames):
        if previous is not None:
            if flows.get(index, 1, frame, previous).backward_certainty.mean() < CUT_CERTAINTY:
                starts.append(index)
        previous = frame
    return starts


class FrameInputs(NamedTuple):
    """What stylising one frame needs beside the content frame: where it starts and the earlier
    frames the temporal loss compares it with (at full size)."""
    initial: np.ndarray
    earlier: list  # [(earlier result, flow from it to this frame, certainty on its pixels, the result
    #                  warped to this frame, certainty on this frame's pixels)]
    seed: object


def frame_inputs(index, shot_start, content, results, flows, video, seed):
    """The inputs of frame `index` (its shot from `shot_start`): `results(j)` gives frame j's
    finished result (uint8). The frame starts from the previous result warped to it (disoccluded
    pixels from the content frame). Each earlier frame counts where the flow both ways is certain,
    and where a closer frame counts it counts no more (long_term_weights, on this frame's pixels,
    sampled where the earlier frame's pixels come)."""
    frame_seed = None if seed is None else [seed, index]
    if video.temporal_weight == 0 or index == shot_start:
        return FrameInputs(None, [], frame_seed)
    pairs = []
    for back in sorted(video.temporal_frames):
        if index - back < shot_start:
            break
        pairs.append((back, flows.get(index, back)))
    here = long_term_weights([pair.backward_certainty for _, pair in pairs])
    earlier = []
    for (back, pair), weight in zip(pairs, here):
        result = results(index - back).astype(np.float32)
        earlier.append((result, pair.forward, pair.forward_certainty * np.clip(warp(weight, pair.forward), 0.0, 1.0),
                        warp(result, pair.backward), weight))
    c = pairs[0][1].backward_certainty[..., None]
    initial = c * earlier[0][3] + (1.0 - c) * content
    return FrameInputs(initial, earlier, frame_seed)


def temporal_targets(earlier):
    """targets(height, width) for hierarchy.run_levels: the earlier frames (FrameInputs.earlier) at a
    level's size."""
    def at(height, width):
        if earlier and earlier[0][0].shape[:2] == (height, width):
            return earlier
        def weight(c):
            return images.resize(np.asarray(c, np.float32)[..., None], (height, width))[..., 0].clip(0.0, 1.0)
        return [(images.resize(np.asarray(result, np.float32), (height, width)), resize_flow(field, (height, width)),
                 weight(c), images.resize(np.asarray(warped, np.float32), (height, width)), weight(c_here))
                for result, field, c, warped, c_here in earlier]
    return at


class Work:
    """The work folder: the settings its frames were made with, the flows, the finished frames."""

    def __init__(self, folder, fingerprint):
        self.folder = folder
        self.frames = os.path.join(folder, "frames")
        os.makedirs(self.frames, exist_ok=True)
        path = os.path.join(folder, "settings.json")
        if os.path.isfile(path):
            with open(path) as f:
                kept = json.load(f)
            if kept != fingerprint:
                changed = sorted(k for k in set(kept) | set(fingerprint) if kept.get(k) != fingerprint.get(k))
                raise ToolError(f"the work folder {folder} holds frames made with other settings ({', '.join(changed)}):"
                                " remove it to start again, or give another --work-dir")
        else:
            with open(path + ".partial", "w") as f:
                json.dump(fingerprint, f, indent=1)
            os.replace(path + ".partial", path)

    def frame_path(self, index):
        return os.path.join(self.frames, FRAME_NAME % (index + 1))

    def done(self, index):
        return os.path.isfile(self.frame_path(index))

    def result(self, index):
        return images.load_image(self.frame_path(index), "finished frame")

    def save(self, index, pixels, params):
        images.save_image(self.frame_path(index), pixels, params)


def write_output(work, source, count, output, fps):
    """The finished frames as the output: a video with the source's frame rate and audio, or a
    folder of frames. Written beside the output under a temporary name, then renamed into place."""
    if os.path.splitext(output)[1] == "" or output.endswith(os.sep):
        os.makedirs(output, exist_ok=True)
        for index in range(count):
            shutil.copyfile(work.frame_path(index), os.path.join(output, FRAME_NAME % (index + 1)))
        return
    folder = os.path.dirname(os.path.abspath(output))
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=os.path.splitext(output)[1], dir=folder)
    os.close(fd)
    frame = work.result(0)
    odd = frame.shape[0] % 2 or frame.shape[1] % 2
    command = [ffmpeg(), "-y", "-hide_banner", "-loglevel", "error", "-framerate", repr(fps), "-start_number", "1",
               "-i", os.path.join(work.frames, FRAME_NAME)]
    ext = os.path.splitext(output)[1].lower()
    sound = keeps_sound(source, output)
    if sound:
        command += ["-i", source.path, "-map", "0:v:0", "-map", "1:a:0?"]
    if ext == ".gif":
        command += ["-vf", "split[a][b];[a]palettegen[p];[b][p]paletteuse"]
    elif ext == ".webm":
        command += ["-c:v", "libvpx-vp9", "-b:v", "0", "-crf", "30", "-pix_fmt", "yuv420p" if not odd else "yuv444p"]
        if sound:
            command += ["-c:a", "libopus"]
    else:
        command += ["-c:v", "libx264", "-crf", "18", "-pix_fmt", "yuv444p" if odd else "yuv420p"]
        if sound:
            command += ["-c:a", "aac", "-b:a", "192k"]
    command += ["-r", repr(fps), "-f", {".mkv": "matroska", ".mov": "mov", ".avi": "avi", ".gif": "gif",
                                       ".webm": "webm"}.get(ext, "mp4"), tmp]
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode != 0:
        os.remove(tmp)
        raise ToolError(f"ffmpeg could not write {output}: {done.stderr.strip().splitlines()[-1] if done.stderr else ''}")
    os.chmod(tmp, 0o666 & ~images.umask())  # mkstemp makes the file private; a video should not be
    os.replace(tmp, output)


def farneback(a, b):
    """The optical flow from `a` to `b` by Farneback's method (OpenCV): another method than the
    tool's, to measure its results by."""
    import cv2
    return cv2.calcOpticalFlowFarneback(grey(a), grey(b), None, 0.5, 4, 15, 5, 7, 1.5, 0)


def warping_error(outputs, inputs, step=1):
    """Lai et al. (2018)'s warping error of a stylised clip: the mean over frames t of the mean
    squared difference (pixels in 0..1) between output frame t and output frame t + step (1: the
    next) warped back to it, over the pixels where the flow is certain; the flows and their
    certainty from the input frames, by Farneback's method."""
    errors = []
    for (o1, o2), (i1, i2) in zip(zip(outputs, outputs[step:]), zip(inputs, inputs[step:])):
        forward, backward = farneback(i1, i2), farneback(i2, i1)
        mask = certainty(forward, backward)[..., None]  # of the flow from frame 1 to frame 2
        back = warp(np.asarray(o2, np.float32) / 255.0, forward)
        errors.append(float(np.sum(mask * (np.asarray(o1, np.float32) / 255.0 - back) ** 2) / max(mask.sum() * 3, 1)))
    return float(np.mean(errors))


def keeps_sound(source, output):
    """Whether the output video gets the source's sound: when it has some and is not a GIF (which
    holds none)."""
    return source.has_audio and os.path.splitext(output)[1].lower() != ".gif"


def check_output(output, source_path):
    """A usage error if the output would replace the input; a ToolError if it cannot be written."""
    if os.path.abspath(output) == os.path.abspath(source_path) or (
            os.path.exists(output) and os.path.exists(source_path) and os.path.samefile(output, source_path)):
        raise UsageError(f"--output {output} would overwrite the content video: choose another name")
    if os.path.isdir(source_path) and os.path.realpath(output).startswith(os.path.realpath(source_path) + os.sep):
        raise UsageError(f"--output {output} is inside the folder of content frames: choose another place")
    ext = os.path.splitext(output)[1].lower()
    if ext and ext not in VIDEO_EXTENSIONS:
        raise UsageError(f"--output {output}: a video ({', '.join(VIDEO_EXTENSIONS)}) or a folder (no extension)")
    folder = os.path.dirname(os.path.abspath(output))
    if not os.path.isdir(folder):
        raise ToolError(f"output folder does not exist: {folder}")


def fingerprint(settings, video, source, size):
    """What the work folder's frames depend on: a rerun with other values must not reuse them."""
    flags = settings.flags()
    for name in ("output", "print_iterations", "checkpoint_iterations", "checkpoint_output", "ray", "cpus_per_task",
                 "gpus_per_task", "bit_depth", "no_collage", "out_postfix"):
        flags.pop(name)
    return json.loads(json.dumps(dict(flags, temporal_weight=video.temporal_weight,
                                      temporal_frames=sorted(video.temporal_frames), frames=source.count,
                                      size=list(size), content=os.path.abspath(source.path))))


def run(settings, video, log=print, live=None):
    """Stylise the video or folder of frames settings.inputs.content into settings.output.output
    (a video, or a folder of frames), frame by frame, through the work folder. Returns the output.
    `live`: the preview page (preview.py), told the plan, each frame, its iterations and result."""
    import collections

    from tqdm import tqdm

    import pipeline
    from errors import Interrupted, NumericalError
    output = settings.output.output
    source = open_source(settings.inputs.content, video.fps)
    check_output(output, source.path)
    styles = [images.load_image(path, "style image") for path in settings.inputs.styles]
    size = (images.size_at_width((source.height, source.width), settings.inputs.width) if settings.inputs.width
            else (source.height, source.width))
    work = Work(video.work_dir or output.rstrip(os.sep) + ".work", fingerprint(settings, video, source, size))
    finished = sum(work.done(i) for i in range(source.count))
    log(f"{source.count} frames of {size[1]}x{size[0]} at {source.fps:g} fps{', with sound' if source.has_audio else ''}"
        f"; work folder {work.folder}" + (f", {finished} frames finished" if finished else ""))
    if source.has_audio and not keeps_sound(source, output):
        log("a GIF holds no sound: the output has none (choose .mp4, .mov, .mkv, .webm or .avi to keep it)")
    first = next(frames(source, size))
    prepared = pipeline.prepare(settings, first, styles, log)
    if live:
        live.units(source.count, "frame")
        live.plan(pipeline.plan_of(prepared), dict(settings.flags(), **video._asdict()))
    flows = Flows(work.folder)
    starts = shots(flows, source.count, frames(source, size))
    if len(starts) > 1:
        log(f"{len(starts)} shots, from frames {', '.join(str(s + 1) for s in starts)}")
    count = len(video.temporal_frames)
    cache, window = {}, collections.deque(maxlen=max(video.temporal_frames) + 1)
    bar = tqdm(total=source.count, initial=finished, desc="frames", unit="frame", disable=None, file=sys.stderr)
    try:
        if settings.tiles.ray:
            on_ray(settings, video, source, size, styles, first, work, flows, starts, bar, log)
        for index, frame in enumerate([] if settings.tiles.ray else frames(source, size)):
            window.append(frame)
            if work.done(index):
                continue
            shot = max(s for s in starts if s <= index)
            for back in video.temporal_frames:
                if video.temporal_weight and index - back >= shot:
                    flows.get(index, back, frame, window[-1 - back])
            inputs = frame_inputs(index, shot, frame.astype(np.float32), work.result, flows, video, settings.inputs.seed)
            temporal = (video.temporal_weight, count, temporal_targets(inputs.earlier)) if video.temporal_weight else None
            iterations = sum(level.iterations for level in prepared.levels)
            inner = tqdm(total=iterations, desc=f"frame {index + 1}", unit="it", disable=None, leave=False, file=sys.stderr)
            if live:
                live.unit(index, f"frame {index + 1} of {source.count}")
            result = pipeline.render_prepared(
                prepared, frame, inputs.initial, log=lambda *a: None, quiet=True, seed=inputs.seed, temporal=temporal,
                cache=cache, on_iteration=lambda p: (inner.update(1), live and live.iteration(p)))
            inner.close()
            if isinstance(result.stopped, NumericalError):
                raise ToolError(f"frame {index + 1}: {result.stopped}; the {index} finished frames are kept in "
                                f"{work.frames}")
            if result.stopped is not None:
                raise result.stopped
            work.save(index, result.pixels, result.params_text(frame=index + 1))
            if live:
                live.unit_done(result.pixels)
            bar.update(1)
    except (Interrupted, KeyboardInterrupt):
        bar.close()
        done = sum(work.done(i) for i in range(source.count))
        print(f"interrupted: {done} of {source.count} frames finished, kept in {work.frames}; run the same command "
              "again to continue", file=sys.stderr)
        raise
    bar.close()
    write_output(work, source, source.count, output, source.fps)
    return output


class FrameWorker:
    """A Ray actor stylising a video's frames (cluster.Actors): the plan and the network made once,
    the levels' compiled losses kept from frame to frame."""

    def __init__(self, settings, first, styles):
        import cluster
        import pipeline
        cluster.Worker.__init__(self)
        self.prepared = pipeline.prepare(settings, first, styles, log=lambda *a: None)
        self.cache = {}

    def render(self, frame, initial, seed, temporal_weight, count, earlier):
        import pipeline
        temporal = (temporal_weight, count, temporal_targets(earlier)) if temporal_weight else None
        result = pipeline.render_prepared(self.prepared, frame, initial, log=lambda *a: None, quiet=True, seed=seed,
                                          temporal=temporal, cache=self.cache)
        if result.stopped is not None:
            return {"error": str(result.stopped)}
        return {"image": images.to_uint8(result.pixels), "params": result.params}


def frames_on_disk(source, size, path):
    """The source's frames (uint8, resized to `size`) as one array mapped from a file, written frame
    by frame, so that a long video is read in any order without being held in memory."""
    height, width = size
    if not os.path.isfile(path):
        stored = np.lib.format.open_memmap(path + ".partial.npy", mode="w+", dtype=np.uint8,
                                           shape=(source.count, height, width, 3))
        for index, frame in enumerate(frames(source, size)):
            stored[index] = frame
        stored.flush()
        del stored
        os.replace(path + ".partial.npy", path)
    return np.load(path, mmap_mode="r")


def on_ray(settings, video, source, size, styles, first, work, flows, starts, bar, log):
    """The shots at the same time on a Ray cluster (--ray), each frame of a shot after the one
    before it; every finished frame is written here as it comes back."""
    import cluster
    content = frames_on_disk(source, size, os.path.join(work.folder, "content.npy"))  # the shots read them in any order
    ends = dict(zip(starts, starts[1:] + [source.count]))
    upcoming = {shot: next((i for i in range(shot, ends[shot]) if not work.done(i)), ends[shot]) for shot in starts}
    busy = set()

    def next_call():
        for shot in starts:
            index = upcoming[shot]
            if shot in busy or index >= ends[shot]:
                continue
            frame = np.array(content[index])  # read from the file once
            for back in video.temporal_frames:
                if video.temporal_weight and index - back >= shot:
                    flows.get(index, back, frame, np.array(content[index - back]))
            inputs = frame_inputs(index, shot, frame.astype(np.float32), work.result, flows, video,
                                  settings.inputs.seed)
            busy.add(shot)
            return shot, "render", (frame, inputs.initial, inputs.seed, video.temporal_weight,
                                    len(video.temporal_frames), inputs.earlier)
        return None

    def finished(shot, result):
        index = upcoming[shot]
        if "error" in result:
            raise ToolError(f"frame {index + 1}: {result['error']}; the finished frames are kept in {work.frames}")
        work.save(index, result["image"], json.dumps(dict(result["params"], frame=index + 1)))
        upcoming[shot] += 1
        busy.discard(shot)
        bar.update(1)
    actors = cluster.Actors(FrameWorker, (settings.replace(ray=None), first, styles), settings.tiles, "frame",
                            log=lambda message: print(message, file=sys.stderr))
    try:
        actors.run(next_call, finished)
    finally:
        actors.close()
