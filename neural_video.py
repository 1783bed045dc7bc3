"""neural-video: stylise a video, frame by frame, without flicker, its sound kept.

    python neural_video.py --content clip.mp4 --styles painting.jpg [--output clip_painting.mp4] [options]

The command line: parses and checks the flags, runs the video library (video.py), reports. Every
style, network, loss, optimiser, hierarchy, colour and tile flag of neural_style.py applies to each
frame, with the same names and meanings.
"""
import os
import sys
import time

import neural_style
import video
from errors import ArgumentParser, UsageError, run_cli
from preview import serving
from settings import DEFAULTS as D, Settings

VIDEO_FLAGS = ("temporal_weight", "temporal_frames", "work_dir", "fps") + neural_style.PREVIEW_FLAGS


def frame_counts(text):
    """--temporal-frames: earlier frames as a comma-separated list, e.g. 1,2,4."""
    try:
        counts = sorted({int(part) for part in text.split(",")})
    except ValueError:
        raise UsageError(f"--temporal-frames takes whole numbers separated by commas, e.g. 1,2,4, got {text!r}") from None
    if not counts or counts[0] < 1:
        raise UsageError(f"--temporal-frames must be 1 or more, got {text!r}")
    return tuple(counts)


def build_parser():
    p = ArgumentParser(
        description="Stylise a video (or a folder of numbered frames) frame by frame, with temporal consistency "
                    "(Ruder et al. 2016): each frame starts from the previous result moved by the optical flow, "
                    "and a temporal loss keeps it there. The sound is kept.",
        epilog="Exit codes: 0 success, 1 failure, 2 usage error, 130 interrupted (Ctrl-C; finished frames are "
               "kept: run the same command again to continue), 143 terminated.")
    g = p.add_argument_group("input and output")
    g.add_argument("--content", metavar="VIDEO", help="a video (mp4, mov, mkv, webm, avi, gif) or a folder of "
                                                      "numbered frames (required)")
    g.add_argument("--styles", nargs="+", metavar="FILE", help="one or more style images (required)")
    g.add_argument("--output", metavar="VIDEO",
                   help="the stylised video (its extension picks the format), or a folder (no extension) for its "
                        "frames (default: <content>_<style>.mp4 in the current folder)")
    g.add_argument("--width", type=int, metavar="PX", help="resize the frames to this width (default: their own)")
    g.add_argument("--style-scales", type=float, nargs="+", metavar="S",
                   help="one scale per style: each style is resized to S x the frame width (default: 1.0)")
    g.add_argument("--initial-noiseblend", type=float, default=D["initial_noiseblend"], metavar="N",
                   help="blend each shot's first frame with Gaussian noise, 0..1 (default: %(default)s)")
    g.add_argument("--seed", type=int, metavar="N", help="seed for the noise, for reproducible runs")
    g.add_argument("--fps", type=float, metavar="F",
                   help=f"frame rate of a folder of frames (default: {video.FOLDER_FPS:g}; a video keeps its own)")
    g.add_argument("--work-dir", metavar="DIR",
                   help="where finished frames and optical flows are kept (default: <output>.work)")
    g = p.add_argument_group("temporal consistency")
    g.add_argument("--temporal-weight", type=float, default=video.VideoSettings._field_defaults["temporal_weight"], metavar="W",
                   help="weight of the temporal loss, relative to each frame's own loss; 0 stylises the frames "
                        "independently (default: %(default)s)")
    g.add_argument("--temporal-frames", type=frame_counts, default=video.VideoSettings._field_defaults["temporal_frames"],
                   metavar="J,K,...", help="the earlier frames the temporal loss looks back to, e.g. 1,2,4 "
                                           "(long-term consistency; default: 1)")
    neural_style.add_transfer_flags(p)
    neural_style.add_preview_flags(p)
    return p


def default_output(content, style):
    stem = os.path.splitext(os.path.basename(os.path.normpath(content)))[0]
    return f"{stem}_{os.path.splitext(os.path.basename(style))[0]}" + ("" if os.path.isdir(content) else ".mp4")


def main(argv=None):
    args = build_parser().parse_args(argv)
    flags = {k: v for k, v in vars(args).items() if k not in VIDEO_FLAGS}
    if args.content and args.styles and not args.output:
        flags["output"] = default_output(args.content, args.styles[0])
    settings = Settings.from_flags(no_collage=True, **flags)
    if not args.temporal_weight >= 0:
        raise UsageError(f"--temporal-weight must be 0 or more, got {args.temporal_weight}")
    if args.fps is not None and not args.fps > 0:
        raise UsageError(f"--fps must be above 0, got {args.fps}")
    settings_video = video.VideoSettings(args.temporal_weight, args.temporal_frames, args.work_dir, args.fps)
    started = time.time()
    with serving(neural_style.preview_options(args), "neural-video") as live:
        output = video.run(settings, settings_video, live=live)
        if live:
            live.finish()
    print(f"wrote {output} in {time.time() - started:.1f} s")


def cli():
    """Console entry point (`pip install .` installs it as a command)."""
    run_cli(main, sys.argv[1:])


if __name__ == "__main__":
    cli()
