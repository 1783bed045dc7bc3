"""What the live preview page (--preview) costs a run: seconds per iteration of SqueezeNet at
512 px with no preview, and with the page open in headless Chromium and updating (its image read
back every 2 s), in rounds of alternating order in one process. --blank opens the browser on an
empty page instead: the browser's own cost, and the measurement's noise.

    python benchmarks/preview.py [--rounds 6] [--iterations 150] [--optim lbfgs] [--blank]

Needs Debian's chromium and chromium-driver. Prints the CPU, each round's median and the ratio.
"""
import argparse
import os
import statistics
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path[:0] = [ROOT, HERE]

import chromium  # noqa: E402
from bench import cpu_description  # noqa: E402

WARM_UP = 10  # iterations left out of each round's median (tracing, the first line searches)


def seconds_per_iteration(prepared, content, live):
    """The median seconds between iterations of one run of `prepared`, told to `live` if given."""
    import pipeline
    stamps = []

    def on_iteration(progress):
        stamps.append(time.perf_counter())
        if live:
            live.iteration(progress)
    pipeline.render_prepared(prepared, content, log=lambda *a: None, on_iteration=on_iteration, quiet=True)
    return statistics.median(b - a for a, b in zip(stamps[WARM_UP:], stamps[WARM_UP + 1:]))


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--iterations", type=int, default=150)
    parser.add_argument("--optim", default="lbfgs")
    parser.add_argument("--blank", action="store_true",
                        help="the browser open on an empty page instead: what the browser costs by itself")
    args = parser.parse_args()
    import images
    import pipeline
    import preview
    from settings import Settings
    inputs = os.path.join(ROOT, "examples", "inputs", "full")
    settings = Settings.from_flags(content="rocket.jpg", styles=["starry_night.jpg"], network_type="sqz", width=512,
                                   iterations=args.iterations, optim=args.optim, seed=1, no_collage=True)
    content = images.load_image(os.path.join(inputs, "rocket.jpg"))
    style = images.load_image(os.path.join(inputs, "starry_night.jpg"))
    prepared = pipeline.prepare(settings, content, [style], log=lambda *a: None)
    seconds_per_iteration(prepared, content, None)  # traced and compiled once, before any round
    print(cpu_description())
    print(f"SqueezeNet {prepared.width}x{prepared.height}, {args.optim}, {args.iterations} iterations a round")
    browser = chromium.browser()
    times = {"off": [], "page": []}
    try:
        for r in range(args.rounds):
            for name in ("off", "page") if r % 2 == 0 else ("page", "off"):  # drift cancels
                if name == "off":
                    times[name].append(seconds_per_iteration(prepared, content, None))
                    continue
                with preview.serving(("127.0.0.1", 0)) as live:
                    live.plan(pipeline.plan_of(prepared), settings.flags())
                    browser.get("about:blank" if args.blank else live.url)
                    times[name].append(seconds_per_iteration(prepared, content, live))
                    images_sent = live.state["image"]
                    live.finish(None)
            print(f"round {r + 1}: {times['off'][-1]:.4f} s/it without, {times['page'][-1]:.4f} s/it with the page "
                  f"open ({images_sent} images read back)", flush=True)
    finally:
        browser.quit()
    ratio = statistics.median(p / o for p, o in zip(times["page"], times["off"]))
    print(f"with the page open / without: {ratio:.3f}x per iteration (median of {args.rounds} rounds; goal: at most 1.03x)")


if __name__ == "__main__":
    main()
