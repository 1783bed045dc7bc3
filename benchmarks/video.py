"""Flicker of stylised video: temporal consistency against independent frames (the performance
document has the figures).

    python benchmarks/video.py [DIR] [--weights 100,50,...]   # about 5 minutes on 2 CPU cores

A clip made from a real photo (a slow pan, then a zoom, over the rocket of examples/inputs/full),
stylised with SqueezeNet in The Starry Night's style, with the same iterations and seed: frames
independent (--temporal-weight 0), and consistent (the default, and with --temporal-frames 1,2,4;
--weights adds other temporal weights).
For each: Lai et al. (2018)'s warping error (flows and their certainty from the input frames by
Farneback's method, not the tool's DIS), its ratio to the independent frames', the input's own
warping error (the floor), each frame's style loss against the independent frames', the time per
frame and the optical flow's share of it.
"""
import os
import sys
import tempfile
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
sys.path.insert(0, os.path.join(ROOT, "tests"))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))


def style_losses(outputs, style_path, net):
    """Each output frame's style loss against the style image at the frame's width (SqueezeNet)."""
    import images
    import tensorflow as tf
    from settings import LossWeights
    from stylize import Stylizer
    style = images.load_image(style_path)
    style = images.resize(style, images.size_at_width(style.shape, outputs[0].shape[1])).astype(np.float32)
    judge = Stylizer(net, outputs[0].astype(np.float32), [style], [1.0], LossWeights(unbounded=True))
    return [float(judge.loss_and_grad(tf.constant(net.preprocess(o.astype(np.float32))[None]))[0][1]) for o in outputs]


def main():
    import argparse
    import clips
    import images
    import squeezenet
    import video
    from bench import cpu_description
    from settings import Settings
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("folder", nargs="?", help="where the clip and the outputs go (default: a temporary folder)")
    parser.add_argument("--weights", default="", help="more temporal weights to measure, e.g. 50,20")
    args = parser.parse_args()
    folder = args.folder or tempfile.mkdtemp()
    os.makedirs(folder, exist_ok=True)
    frames = clips.pan_and_zoom(size=(170, 256), pan_frames=16, zoom_frames=8)
    clip = clips.write_clip(os.path.join(folder, "clip.mp4"), frames)
    inputs = list(video.frames(video.open_source(clip)))
    style = os.path.join(ROOT, "examples", "inputs", "full", "starry_night.jpg")
    net = squeezenet.load(os.path.join(ROOT, "sqz_weights.npz"))
    print(cpu_description())
    print(f"a clip of {len(inputs)} frames of 256x170 (a pan, then a zoom, over the rocket photo), The Starry Night, "
          "SqueezeNet, 100 iterations a frame, --seed 1; its own warping error (the floor): "
          f"{video.warping_error(inputs, inputs):.5f}", flush=True)
    spent = {"flow": 0.0}
    real_flow = video.flow

    def timed_flow(a, b):
        started = time.perf_counter()
        try:
            return real_flow(a, b)
        finally:
            spent["flow"] += time.perf_counter() - started
    video.flow = timed_flow
    results = {}
    default = video.VideoSettings._field_defaults["temporal_weight"]
    cases = [("independent", 0.0, (1,)), ("consistent", default, (1,)), ("consistent, 1,2,4", default, (1, 2, 4))]
    cases += [(f"weight {float(w):g}", float(w), (1,)) for w in args.weights.split(",") if w]
    for name, weight, frames_back in cases:
        out = os.path.join(folder, name.replace(", ", "_").replace(",", "").replace(" ", "_"))
        settings = Settings.from_flags(content=clip, styles=[style], network_type="sqz", iterations=100, seed=1,
                                       no_collage=True, output=out)
        spent["flow"] = 0.0
        started = time.perf_counter()
        video.run(settings, video.VideoSettings(weight, frames_back), log=lambda *a: None)
        seconds = time.perf_counter() - started
        outputs = [images.load_image(os.path.join(out, f)) for f in sorted(os.listdir(out))]
        results[name] = (video.warping_error(outputs, inputs), style_losses(outputs, style, net), seconds,
                         spent["flow"])
    base_error, base_style = results["independent"][:2]
    for name, (error, losses, seconds, flow_seconds) in results.items():
        ratios = np.array(losses) / np.array(base_style)
        print(f"  {name:18}: warping error {error:.5f} ({error / base_error:.2f}x the independent frames'); style loss "
              f"{np.mean(losses):.0f} a frame ({np.mean(ratios):.3f}x, at most {ratios.max():.3f}x the independent "
              f"frames'); {seconds / len(inputs):.1f} s a frame, the flow {flow_seconds / seconds:.1%} of it",
              flush=True)


if __name__ == "__main__":
    main()
