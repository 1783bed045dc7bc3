"""Speed and memory of neural-style on this machine: see the README's performance section.

    python benchmarks/bench.py            # the main table (20-30 minutes on 2 CPU cores)
    python benchmarks/bench.py --quick    # SqueezeNet 256 px and VGG19 256 px only
    python benchmarks/bench.py --lbfgs DIR   # start-up, L-BFGS speed and quality, time to a good image (~1 h)
    python benchmarks/bench.py --tiles DIR   # tiled levels: memory, print sizes, overlap cost (~1 h)
    python benchmarks/bench.py --ray DIR     # Ray's overhead per pair and per tile
    python benchmarks/bench.py --compare OTHER_CHECKOUT DIR  # the command line against another commit

Every table is preceded by the CPU it ran on (model, AVX-512, bfloat16): figures compare only
on one machine, and this machine's speed drifts, so comparisons are measured in one run.

The main table: for VGG19 (random weights of the real shapes, built in memory: no weights file
is needed) and SqueezeNet v1.1 (../shared/weights/sqz_notop.mat), at 256 and 512 px, for lbfgs
and adam, the median seconds per iteration of a real stylize() run after warm-up; the floor,
the median time of one forward+backward pass of the same network to the same deepest layer
with a trivial loss, measured in the same process; their ratio; the time to the first iteration
(tracing and compiling); and the peak resident memory of the run and of the floor alone. Each
case runs in its own process so peaks do not mix. It also times colour-transfer histogram
matching at 1024x1024.

--lbfgs: the command line's start-up (to the end of the first iteration, beyond `import
tensorflow`) for SqueezeNet 256x256 and VGG19 512x512 with a file as large as the real one
(written into DIR); seconds per iteration of lbfgs-device, adam and lbfgs in turns; the loss of
lbfgs-device against lbfgs (SciPy's L-BFGS-B) after 50/200/500 iterations on the three bundled
pairs at 512 px; and the wall time to come within 10% of what 1000 single-scale lbfgs iterations
reach.
"""
import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHARED = os.path.join(os.path.dirname(ROOT), "shared")
SQZ_WEIGHTS = os.path.join(SHARED, "weights", "sqz_notop.mat")
sys.path.insert(0, ROOT)


def cpu_description():
    """The CPU model and whether it has AVX-512 and bfloat16: figures are only comparable on one."""
    model, flags = "unknown CPU", set()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name") and model == "unknown CPU":
                    model = line.split(":", 1)[1].strip()
                elif line.startswith("flags") and not flags:
                    flags = set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return (f"CPU: {model}, {os.cpu_count()} cores, AVX-512 {'yes' if 'avx512f' in flags else 'no'}, "
            f"bfloat16 {'yes' if 'avx512_bf16' in flags or 'amx_bf16' in flags else 'no'}")


def peak_rss_mb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KiB


def build_network(name, precision="float32"):
    import numpy as np
    import tensorflow as tf
    dtype = {"float32": tf.float32, "bfloat16": tf.bfloat16, "float16": tf.float16}[precision]
    if name == "sqz":
        import squeezenet
        return squeezenet.load(SQZ_WEIGHTS, dtype=dtype)
    import vgg
    rng = np.random.default_rng(0)
    weights, in_channels = {}, 3
    for layer in vgg.LAYERS:
        if layer.startswith("conv"):
            out = vgg.CHANNELS[int(layer[4]) - 1]
            weights[layer] = ((rng.standard_normal((3, 3, in_channels, out)) * np.sqrt(2.0 / (9 * in_channels)))
                              .astype(np.float32), np.zeros(out, np.float32))
            in_channels = out
    return vgg.VGG19(weights, (123.68, 116.779, 103.939), "max", dtype=dtype)


def test_images(size):
    """The Tübingen photo (centre square) at size x size, and Starry Night at that width."""
    import images
    content = images.load_image(os.path.join(SHARED, "images", "tubingen.jpg"))
    style = images.load_image(os.path.join(SHARED, "images", "starry_night.jpg"))
    h, w = content.shape[:2]
    side = min(h, w)
    square = content[(h - side) // 2:(h - side) // 2 + side, (w - side) // 2:(w - side) // 2 + side]
    return images.resize(square, (size, size)).astype("float32"), images.resize_to_width(style, size).astype("float32")


def measure_floor(net, layer, shape, repeats):
    """Median seconds of one forward+backward pass to `layer` with a trivial loss."""
    import tensorflow as tf

    @tf.function(input_signature=[tf.TensorSpec(shape, tf.float32)])
    def floor(image):
        with tf.GradientTape() as tape:
            tape.watch(image)
            loss = tf.reduce_sum(net.features(image, [layer])[layer])
        return loss, tape.gradient(loss, image)
    x = tf.random.uniform(shape, -100, 100)
    for _ in range(2):
        floor(x)[1].numpy()
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        floor(x)[1].numpy()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def run_case(network, size, optim, iterations, precision="float32", jit=False, floor_only=False, grappler=False):
    """One case in this process; returns a dict of figures. `grappler`: keep TensorFlow's graph
    optimizer on (stylize.py turns it off on the CPU) to compare."""
    import numpy as np
    import device
    import losses
    import stylize
    from settings import LossWeights, OptimizerSettings
    if grappler:
        device.graph_rewrites_off_on_cpu = lambda: None
    net = build_network(network, precision)
    content, style = test_images(size)
    shape = (1,) + content.shape
    if floor_only:
        layer = net.deepest(losses.TransferLoss(net, net.preprocess(content), [net.preprocess(style)], [1.0],
                                                LossWeights()).layers)
        floor = measure_floor(net, layer, shape, 5)
        return {"floor_s": floor, "floor_peak_mb": peak_rss_mb()}
    started = time.perf_counter()
    stamps = []
    stylizer = stylize.Stylizer(net, content, [style], [1.0], LossWeights(), jit_compile=jit)
    layer = net.deepest(stylizer.loss.layers)
    run = stylize.stylize(net, content, content, [style], [1.0], optimizer=OptimizerSettings(optim), iterations=iterations,
                          stylizer=stylizer, on_iteration=lambda i, losses, image: stamps.append(time.perf_counter()))
    for step in run:
        pass
    first = stamps[0] - started
    per_iteration = statistics.median(np.diff(stamps[2:]))  # after warm-up
    floor = measure_floor(net, layer, shape, 9)
    return {"network": network, "size": f"{content.shape[1]}x{content.shape[0]}", "optim": optim,
            "precision": precision, "jit": jit, "s_per_iter": per_iteration, "floor_s": floor,
            "ratio": per_iteration / floor, "first_iter_s": first, "peak_mb": peak_rss_mb(),
            "traces": stylizer.traces, "deepest": layer, "iterations": len(stamps)}


def final_loss(network, size, optim, iterations, precision, jit):
    """Total loss of the best image after `iterations` (real weights, real images)."""
    import stylize
    from settings import LossWeights, OptimizerSettings
    net = build_network(network, precision)
    content, style = test_images(size)
    stylizer = stylize.Stylizer(net, content, [style], [1.0], LossWeights(), jit_compile=jit)
    started = time.perf_counter()
    for step in stylize.stylize(net, content, content, [style], [1.0], optimizer=OptimizerSettings(optim),
                                iterations=iterations, stylizer=stylizer):
        pass
    # Judge every precision by the float32 loss of its result.
    ref = stylize.Stylizer(build_network(network), content, [style], [1.0], LossWeights())
    import tensorflow as tf
    losses, _ = ref.loss_and_grad(tf.constant(net.preprocess(step.image)[None]))
    return {"network": network, "precision": precision, "jit": jit, "optim": optim, "iterations": iterations,
            "final_loss": float(losses[3]), "seconds": time.perf_counter() - started}


INPUTS = os.path.join(ROOT, "examples", "inputs")
QUALITY_PAIRS = (("cat.png", "starry_night.jpg"), ("coffee.png", "the_scream.jpg"), ("cat.png", "shipwreck.jpg"))


class _Reached(Exception):
    pass


def pair_images(content_name, style_name, width):
    """A bundled content image at `width` and a style image at the same width."""
    import images
    content = images.load_image(os.path.join(INPUTS, content_name))
    style = images.load_image(os.path.join(INPUTS, style_name))
    return (images.resize_to_width(content, width).astype("float32"),
            images.resize_to_width(style, width).astype("float32"))


def quality_gate(width, marks=(50, 200, 500)):
    """Total loss after 50, 200 and 500 iterations of --optim lbfgs-device and lbfgs from the same
    start, on the three bundled content/style pairs (SqueezeNet)."""
    import stylize
    from settings import LossWeights, OptimizerSettings
    net = build_network("sqz")
    rows = []
    for content_name, style_name in QUALITY_PAIRS:
        content, style = pair_images(content_name, style_name, width)
        stylizer = stylize.Stylizer(net, content, [style], [1.0], LossWeights())
        row = {"pair": f"{content_name} x {style_name}", "size": f"{content.shape[1]}x{content.shape[0]}"}
        for optim in ("lbfgs-device", "lbfgs"):
            curve = {}
            started = time.perf_counter()
            # SciPy's run is one chunk (a checkpoint would restart it); it reports every iteration's
            # losses. The device L-BFGS stops at checkpoints without a restart: its best losses there.
            steps = list(stylize.stylize(
                net, content, content, [style], [1.0], optimizer=OptimizerSettings(optim), iterations=marks[-1],
                quiet=True, stylizer=stylizer,
                checkpoint_iterations=marks[0] if optim == "lbfgs-device" else None,
                on_iteration=lambda i, losses, image: curve.__setitem__(i, float(losses[3])) if losses is not None else None))
            if optim == "lbfgs-device":
                curve = {step.iteration: float(step.losses[3]) for step in steps}
            row[optim] = {m: curve[m] for m in marks}
            row[optim + "_s"] = time.perf_counter() - started
        rows.append(row)
    return rows


def time_to_good_image(width, reference_iterations=1000, within=1.10):
    """Wall seconds until the full-size total loss is within 10% of what 1000 single-scale SciPy
    L-BFGS-B iterations reach (the original's defaults), SqueezeNet, cat x Starry Night."""
    import hierarchy
    from settings import Settings
    content, style = pair_images("cat.png", "starry_night.jpg", width)
    net = build_network("sqz")

    def run(optim, max_hierarchy, iterations, target=None):
        settings = Settings.from_flags(content="c.png", styles=["s.jpg"], network_type="sqz", iterations=iterations,
                                       max_hierarchy=max_hierarchy, optim=optim)
        levels = hierarchy.levels(content.shape[0], content.shape[1], iterations, max_hierarchy)
        seen = []
        started = time.perf_counter()

        def hook(level, i, losses, image):
            if level == 0 and losses is not None:
                seen.append((time.perf_counter() - started, i, float(losses[3])))
                if target is not None and seen[-1][2] <= target:
                    raise _Reached
        try:
            hierarchy.run_levels(settings, content, [style], None, net, levels, on_iteration=hook, log=lambda *a: None)
        except _Reached:
            pass
        return seen

    reference = run("lbfgs", 1, reference_iterations)
    target = reference[-1][2] * within
    result = {"size": f"{content.shape[1]}x{content.shape[0]}", "reference_loss": reference[-1][2],
              "reference_seconds": reference[-1][0], "target": target, "runs": []}
    cases = [("lbfgs", 1, reference), ("lbfgs", 2, None), ("lbfgs", 3, None), ("lbfgs-device", 1, None),
             ("lbfgs-device", 2, None), ("lbfgs-device", 3, None)]
    for optim, max_hierarchy, seen in cases:
        seen = seen or run(optim, max_hierarchy, reference_iterations, target)
        hit = next(((t, i) for t, i, loss in seen if loss <= target), None)
        result["runs"].append({"optim": optim, "max_hierarchy": max_hierarchy,
                               "seconds": hit[0] if hit else None, "iteration": hit[1] if hit else None})
    return result


def lbfgs_speed(network, size, rounds, iterations, warm_up):
    """Seconds per iteration of --optim lbfgs-device, adam and lbfgs, in turns (rounds of each) in
    one process: the mean over the iterations after the first `warm_up` of each run (L-BFGS's
    first iterations search long for their step; a run of hundreds of iterations averages about
    one evaluation per iteration), line searches of two evaluations included. Also L-BFGS's loss
    evaluations per iteration over the same iterations."""
    import numpy as np
    import stylize
    from settings import LossWeights, OptimizerSettings
    net = build_network(network)
    content, style = test_images(size)
    stylizer = stylize.Stylizer(net, content, [style], [1.0], LossWeights())
    times = {"lbfgs-device": [], "adam": [], "lbfgs": []}
    round_means = {optim: [] for optim in times}  # per round, to compare runs next to each other in time
    evaluations = []
    for _ in range(rounds):
        for optim in times:
            stamps = []

            def note(i, losses, image):
                stamps.append(time.perf_counter())
                if optim == "lbfgs-device" and i in (warm_up, iterations):
                    evaluations.append(int(stylizer.optimizers["lbfgs-device"].state.evaluations.numpy()))
            for step in stylize.stylize(net, content, content, [style], [1.0], optimizer=OptimizerSettings(optim),
                                        iterations=iterations, quiet=True, stylizer=stylizer, on_iteration=note):
                pass
            seconds = np.diff(stamps[warm_up - 1:])
            times[optim] += list(seconds)
            round_means[optim].append(float(np.mean(seconds)))
    per_round = {optim: float(np.median(np.array(round_means[optim]) / np.array(round_means["adam"])))
                 for optim in ("lbfgs-device", "lbfgs")}
    counted = sum(b - a for a, b in zip(evaluations[::2], evaluations[1::2]))
    return {"network": network, "size": f"{size}x{size}", **{optim: float(np.mean(t)) for optim, t in times.items()},
            "evaluations_per_iteration": counted / (rounds * (iterations - warm_up)), "warm_up": warm_up,
            "iterations": iterations, "rounds": rounds, "median_round_ratio": per_round}


def write_vgg_file(path):
    """A MatConvNet file as large as imagenet-vgg-verydeep-19.mat (random weights of the real
    shapes, its classifier layers fc6-fc8 included): what a user's first and later runs read."""
    import numpy as np
    import scipy.io
    import vgg
    if os.path.exists(path):
        return path
    rng = np.random.default_rng(0)
    names = list(vgg.LAYERS) + ["pool5", "fc6", "relu6", "fc7", "relu7", "fc8", "prob"]
    shapes = {"fc6": (7, 7, 512, 4096), "fc7": (1, 1, 4096, 4096), "fc8": (1, 1, 4096, 1000)}
    layers = np.empty((1, len(names)), dtype=object)
    in_channels = 3
    for i, name in enumerate(names):
        if name.startswith("conv") or name in shapes:
            shape = shapes.get(name) or (3, 3, in_channels, vgg.CHANNELS[int(name[4]) - 1])
            kernel = (rng.standard_normal(shape, dtype=np.float32) * np.float32(np.sqrt(2.0 / np.prod(shape[:3]))))
            cell = np.empty((1, 2), dtype=object)
            cell[0, 0], cell[0, 1] = kernel, np.zeros((1, shape[3]), np.float32)
            layers[0, i] = {"weights": cell, "pad": np.ones((1, 4)), "type": "conv", "name": name,
                            "stride": np.ones((1, 2))}
            in_channels = shape[3]
        else:
            layers[0, i] = {"type": name.rstrip("0123456789_"), "name": name}
    mean_image = np.tile(np.array([123.68, 116.779, 103.939], dtype=np.float32), (224, 224, 1))
    scipy.io.savemat(path + ".partial.mat", {"layers": layers,
                                             "normalization": {"averageImage": mean_image, "keepAspect": 1}})
    os.replace(path + ".partial.mat", path)
    return path


STARTUP_DRIVER = """
import os, sys, time
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")  # as the command line sets it
import tensorflow
print(f"TENSORFLOW_IMPORTED {{time.time()!r}}", file=sys.stderr, flush=True)
sys.path.insert(0, {root!r})
import stylize  # imported first only to note when iterations end; the command line imports it anyway
progress = getattr(stylize, "Progress", None) or stylize._Progress  # (its name before the pipeline's redesign)
advance = progress.advance
def noted(self, *args, **kwargs):
    advance(self, *args, **kwargs)
    print(f"ITERATION_DONE {{time.time()!r}}", file=sys.stderr, flush=True)
progress.advance = noted
import neural_style
neural_style.cli()
"""


def square_content(folder, size):
    """The bundled cat photo cropped square at size x size, as a file for the command line."""
    import images
    path = os.path.join(folder, f"cat_{size}.png")
    if not os.path.exists(path):
        cat = images.load_image(os.path.join(INPUTS, "cat.png"))
        side = min(cat.shape[:2])
        images.save_image(path, images.resize(cat[:side, :side].astype("float32"), (size, size)))
    return path


def startup_seconds(argv, env, root=ROOT, warm_up=10):
    """`python ROOT/neural_style.py ARGV` from its start: (seconds until `import tensorflow` is
    done, seconds from then to the end of the first iteration, median seconds per iteration after
    `warm_up`). The import is timed in the same run (importing it first changes nothing else):
    timed in another process it varied by +-0.6 s."""
    started = time.time()
    out = subprocess.run([sys.executable, "-c", STARTUP_DRIVER.format(root=root), *argv], capture_output=True,
                         text=True, env=env, cwd=root)
    imported = [float(line.split()[1]) for line in out.stderr.splitlines() if line.startswith("TENSORFLOW_IMPORTED ")]
    done = [float(line.split()[1]) for line in out.stderr.splitlines() if line.startswith("ITERATION_DONE ")]
    if out.returncode != 0 or not imported or not done:
        raise RuntimeError(f"start-up run failed:\n{out.stderr[-3000:]}")
    gaps = [b - a for a, b in zip(done[warm_up:], done[warm_up + 1:])]
    return imported[0] - started, done[0] - imported[0], statistics.median(gaps) if gaps else None


def startup_cases(folder, rounds=5):
    """Start-up of the command line beyond `import tensorflow` (to the end of the first
    iteration, defaults otherwise), SqueezeNet 256x256 (bundled weights) and VGG19 512x512 (a
    file as large as the real one, precision auto), with --optim lbfgs (the default) and
    lbfgs-device: medians of `rounds`, taken in turns. VGG19's first use (the conversion into
    the cache) is timed once on its own."""
    import shutil
    os.makedirs(folder, exist_ok=True)
    mat = write_vgg_file(os.path.join(folder, "imagenet-vgg-verydeep-19.mat"))
    out = os.path.join(folder, "out.jpg")
    common = ["--styles", os.path.join(INPUTS, "starry_night.jpg"), "--iterations", "1", "--output", out]
    runs = {}
    for optim in ("lbfgs", "lbfgs-device"):  # the default, SciPy's L-BFGS-B, and the device L-BFGS
        runs[f"sqz 256 {optim}"] = ["--content", square_content(folder, 256), "--network-type", "sqz",
                                    "--optim", optim] + common
        runs[f"vgg 512 {optim}"] = ["--content", square_content(folder, 512), "--network-file", mat,
                                    "--optim", optim] + common
    env = dict(os.environ, XDG_CACHE_HOME=os.path.join(folder, "cache"))
    shutil.rmtree(env["XDG_CACHE_HOME"], ignore_errors=True)
    first_vgg = startup_seconds(runs["vgg 512 lbfgs"], env)  # converts the file into the (empty) cache
    times = {name: [] for name in runs}
    for _ in range(rounds):
        for name, argv in runs.items():
            times[name].append(startup_seconds(argv, env))
    medians = {name: [statistics.median(t[i] for t in values) for i in (0, 1)] for name, values in times.items()}
    return {"medians": medians, "vgg_first_use": first_vgg, "mat_mb": os.path.getsize(mat) / 1e6, "rounds": rounds}


def lbfgs_cases(folder, parts=("startup", "speed", "quality", "time")):
    """Issue 12's figures: start-up, L-BFGS's cost per iteration, its quality gate against SciPy's
    L-BFGS-B, and the time to a good image. The CPU is printed above every table."""
    if "startup" in parts:
        r = startup_cases(folder)
        print(cpu_description())
        print(f"start-up, to the end of the first iteration (median of {r['rounds']}, in turns; the VGG19 file: "
              f"{r['mat_mb']:.0f} MB):")
        for name, (imported, beyond) in r["medians"].items():
            print(f"  {name}: import tensorflow {imported:.2f} s, then {beyond:.2f} s to the end of the first "
                  "iteration", flush=True)
        imported, beyond, _ = r["vgg_first_use"]
        print(f"  vgg 512 lbfgs on first use (converting the .mat into the cache): {beyond:.2f} s beyond the import",
              flush=True)
    if "speed" in parts:
        print(cpu_description())
        print("seconds per iteration, mean after warm-up, optimizers in turns in one process (random VGG19 weights):")
        for network, size, rounds, iterations, warm_up in (("sqz", 256, 5, 100, 40), ("vgg", 512, 1, 24, 12)):
            r = in_subprocess("lbfgs_speed", network=network, size=size, rounds=rounds, iterations=iterations,
                              warm_up=warm_up)
            print(f"  {network} {r['size']}, iterations {r['warm_up'] + 1}-{r['iterations']} of each run: "
                  f"lbfgs-device {r['lbfgs-device']:.4f}, adam {r['adam']:.4f} (lbfgs-device/adam "
                  f"{r['lbfgs-device'] / r['adam']:.3f}), lbfgs {r['lbfgs']:.4f} (lbfgs/adam "
                  f"{r['lbfgs'] / r['adam']:.3f}); lbfgs-device evaluations per iteration "
                  f"{r['evaluations_per_iteration']:.3f}", flush=True)
            if r["rounds"] > 1:  # this machine's speed drifts: ratios of runs next to each other
                print(f"    median over {r['rounds']} rounds of each round's ratio: lbfgs-device/adam "
                      f"{r['median_round_ratio']['lbfgs-device']:.3f}, lbfgs/adam "
                      f"{r['median_round_ratio']['lbfgs']:.3f}", flush=True)
    if "quality" in parts:
        rows = in_subprocess("quality_gate", width=512)
        print(cpu_description())
        print("total loss, --optim lbfgs-device vs lbfgs (SciPy's L-BFGS-B) from the same start (SqueezeNet):")
        for row in rows:
            cells = "  ".join(f"{m}: {row['lbfgs-device'][m]:.5g} vs {row['lbfgs'][m]:.5g} "
                              f"({row['lbfgs-device'][m] / row['lbfgs'][m] - 1:+.2%})" for m in row["lbfgs-device"])
            print(f"  {row['pair']} {row['size']}: {cells}; {row['lbfgs-device_s']:.0f} s vs {row['lbfgs_s']:.0f} s",
                  flush=True)
    if "time" in parts:
        r = in_subprocess("time_to_good_image", width=512)
        print(cpu_description())
        print(f"time to a good image, SqueezeNet {r['size']}, cat x Starry Night: wall seconds until the full-size "
              f"loss is within 10% of what 1000 single-scale lbfgs iterations reach ({r['reference_loss']:.4g} "
              f"after {r['reference_seconds']:.0f} s; lbfgs-device's loss is read every 10 iterations)")
        base = r["runs"][0]["seconds"]
        for run in r["runs"]:
            took = "not reached" if run["seconds"] is None else (
                f"{run['seconds']:.1f} s (iteration {run['iteration']} at full size; "
                f"{base / run['seconds']:.2f}x sooner than the original's defaults)")
            print(f"  --optim {run['optim']} --max-hierarchy {run['max_hierarchy']}: {took}", flush=True)


def print_size_images(width, height):
    """The bundled cat photo and Starry Night, both resized to `width` (as --style-scales 1 does)."""
    import images
    inputs = os.path.join(ROOT, "examples", "inputs")
    content = images.resize(images.load_image(os.path.join(inputs, "cat.png")), (height, width))
    style = images.load_image(os.path.join(inputs, "starry_night.jpg"))
    style = images.resize(style, images.size_at_width(style.shape, width))
    return content.astype("float32"), style.astype("float32")


def level_run(network, width, height, tile_size, iterations):
    """One level of width x height, whole (tile_size 0) or tiled, L-BFGS from the content, in this
    process: wall seconds (everything from the style targets to the result) and peak memory."""
    import stylize
    import tiles
    from settings import LossWeights
    net = build_network(network)
    content, style = print_size_images(width, height)
    started = time.perf_counter()
    if tile_size:
        run = tiles.stylize_tiled(net, content, content, [style], [1.0], LossWeights(), tile_size,
                                  iterations=iterations)
    else:
        run = stylize.stylize(net, content, content, [style], [1.0], iterations=iterations)
    for step in run:
        pass
    return {"seconds": time.perf_counter() - started, "peak_mb": peak_rss_mb(), "final_total": float(step.losses[3])}


def cli_run(argv):
    """neural_style.py in this process (its own memory planning, tiling and output): wall seconds
    and the peak memory of the whole process."""
    import images
    import neural_style
    started = time.perf_counter()
    code = neural_style.main(argv)
    seconds = time.perf_counter() - started
    tiled = json.loads(images.read_params(argv[argv.index("--output") + 1]))["tiled_levels"]
    return {"code": code or 0, "seconds": seconds, "peak_mb": peak_rss_mb(), "tiled_levels": tiled}


def tiled_cases(out_dir):
    """Memory that does not grow with the image, print sizes that complete, the cost of the overlap."""
    import tiles
    print("tiled levels (L-BFGS from the content; peak = resident memory of the whole process):", flush=True)
    tile = 1024
    for network, (width, height), iterations in (("sqz", (4096, 3072), 3), ("vgg", (4000, 3000), 1)):
        one = tiles.grid(height, width, tile)[0]
        plain = in_subprocess("level_run", network=network, width=one.width, height=one.height, tile_size=0,
                              iterations=iterations)
        tiled = in_subprocess("level_run", network=network, width=width, height=height, tile_size=tile,
                              iterations=iterations)
        buffers = 3 * 4 * width * height * 4 / 2**20  # four float32 whole-level images: content, image, start, result
        print(f"  {network} {width}x{height} in {len(tiles.grid(height, width, tile))} tiles of "
              f"{one.width}x{one.height}, {iterations} iteration(s): peak {tiled['peak_mb']:.0f} MB, "
              f"{tiled['seconds']:.0f} s; one tile's size whole: peak {plain['peak_mb']:.0f} MB; "
              f"ratio {tiled['peak_mb'] / plain['peak_mb']:.2f}, or {tiled['peak_mb'] / (plain['peak_mb'] + buffers):.2f} "
              f"against it plus four whole-level images ({buffers:.0f} MB)", flush=True)
    # The cost of the overlap: time per pixel per iteration, tiled against whole, at a size both fit.
    width, height, tile, iterations = 1024, 768, 512, 40
    whole = in_subprocess("level_run", network="sqz", width=width, height=height, tile_size=0, iterations=iterations)
    tiled = in_subprocess("level_run", network="sqz", width=width, height=height, tile_size=tile, iterations=iterations)
    count = len(tiles.grid(height, width, tile))
    print(f"  sqz {width}x{height}, {iterations} iterations: whole {whole['seconds'] / (width * height * iterations) * 1e6:.2f} "
          f"us/pixel/iteration, in {count} tiles of {tile} px {tiled['seconds'] / (width * height * iterations) * 1e6:.2f} "
          f"({tiled['seconds'] / whole['seconds'] - 1:+.0%}); final total loss whole {whole['final_total']:.4g}, "
          f"tiled (mean of tiles) {tiled['final_total']:.4g}", flush=True)
    print_size_runs(out_dir)


def print_size_runs(out_dir, gallery=True):
    """Print sizes through the command line, which plans memory and tiles by itself: 8000x6000
    (the cat photo cropped to 4:3), and the README's tiled gallery example."""
    import images
    inputs = os.path.join(ROOT, "examples", "inputs")
    cat = images.load_image(os.path.join(inputs, "cat.png"))
    four_by_three = os.path.join(out_dir, "cat_4x3.png")
    images.save_image(four_by_three, cat[1:169, 16:240])  # 224x168: --width 8000 gives 8000x6000
    runs = [(four_by_three, 8000, ["--iterations", "3"])]
    if gallery:  # the same flags as examples/make_examples.py --tiled
        runs.append((os.path.join(inputs, "cat.png"), 4096,
                     ["--iterations", "20", "--max-hierarchy", "2", "--tile-size", "1024"]))
    for content, width, extra in runs:
        output = os.path.join(out_dir, f"{os.path.splitext(os.path.basename(content))[0]}_starry_{width}.png")
        r = in_subprocess("cli_run", argv=["--content", content, "--styles", os.path.join(inputs, "starry_night.jpg"),
                                           "--network-type", "sqz", "--width", str(width), "--no-collage",
                                           "--output", output] + extra)
        size = images.load_image(output).shape
        print(f"  neural_style.py sqz --width {width} {' '.join(extra)}: {size[1]}x{size[0]}, exit {r['code']}, "
              f"{r['seconds']:.0f} s, peak {r['peak_mb']:.0f} MB, tiled levels {r['tiled_levels']} -> {output}",
              flush=True)


def ray_cases(out_dir):
    """Ray's overhead: a batch of small pairs on a local Ray against the same batch in one
    process, and a tiled level on Ray against the same level here. One task at a time
    (--cpus-per-task 2 on 2 cores), so the difference is overhead, not parallelism."""
    inputs = os.path.join(ROOT, "examples", "inputs")
    contents = [os.path.join(inputs, name) for name in ("cat.png", "coffee.png")]
    styles = [os.path.join(inputs, name) for name in ("starry_night.jpg", "the_scream.jpg")]
    flags = ["--network-type", "sqz", "--width", "128", "--iterations", "20", "--cpus-per-task", "2"]
    times = {}
    for mode in ("serial", "ray"):
        folder = os.path.join(out_dir, f"batch_{mode}")
        os.makedirs(folder, exist_ok=True)
        argv = [sys.executable, os.path.join(ROOT, "batch.py"), "--contents", *contents, "--styles", *styles,
                "--output-dir", folder, *flags] + (["--ray"] if mode == "ray" else [])
        started = time.perf_counter()
        subprocess.run(argv, check=True, capture_output=True, cwd=out_dir)
        times[mode] = time.perf_counter() - started
    pairs = len(contents) * len(styles)
    print(f"  batch of {pairs} pairs (SqueezeNet, 128 px, 20 iterations): in one process {times['serial']:.1f} s, "
          f"on a local Ray {times['ray']:.1f} s (Ray's start included): {(times['ray'] - times['serial']) / pairs:+.1f} s "
          "per pair", flush=True)
    tiled = ["--content", contents[0], "--styles", styles[0], "--network-type", "sqz", "--width", "512",
             "--tile-size", "256", "--iterations", "100", "--cpus-per-task", "2", "--no-collage"]
    for mode in ("here", "ray"):
        argv = [sys.executable, os.path.join(ROOT, "neural_style.py"), *tiled, "--output",
                os.path.join(out_dir, f"tiled_{mode}.png")] + (["--ray"] if mode == "ray" else [])
        started = time.perf_counter()
        subprocess.run(argv, check=True, capture_output=True, cwd=out_dir)
        times[mode] = time.perf_counter() - started
    import tiles
    visits = len(tiles.grid(340, 512, 256)) * 2  # 100 iterations: two passes
    print(f"  tiled 512x340 in 256 px tiles, 100 iterations ({visits} tile visits): here {times['here']:.1f} s, "
          f"on a local Ray {times['ray']:.1f} s: {(times['ray'] - times['here']) / visits:+.2f} s per tile visit "
          "(Ray's start and the workers' start-up included)", flush=True)


def compare_checkouts(other, folder, rounds=5):
    """The command line of this checkout against another checkout of the project (`git worktree
    add DIR COMMIT`), in turns, each round alternating which goes first: start-up beyond `import
    tensorflow` to the end of the first iteration, and the median seconds per iteration after 10
    of warm-up (from each iteration's end, in the same run). Medians over `rounds`. SqueezeNet
    256x256 with each optimiser, and VGG19 256x256 (a file as large as the real one, read from the
    cache after a first run that converts it)."""
    os.makedirs(folder, exist_ok=True)
    mat = write_vgg_file(os.path.join(folder, "imagenet-vgg-verydeep-19.mat"))
    common = ["--content", square_content(folder, 256), "--styles", os.path.join(INPUTS, "starry_night.jpg"),
              "--no-collage", "--output", os.path.join(folder, "out.png")]
    cases = {f"sqz 256 {optim}": ["--network-type", "sqz", "--optim", optim, "--iterations", "150"]
             for optim in ("lbfgs", "lbfgs-device", "adam")}
    cases["vgg 256 lbfgs"] = ["--network-file", mat, "--optim", "lbfgs", "--iterations", "40"]
    checkouts = {"this": ROOT, "other": os.path.abspath(other)}
    env = dict(os.environ, XDG_CACHE_HOME=os.path.join(folder, "cache"))
    startup_seconds(common + cases["vgg 256 lbfgs"], env)  # converts the VGG file into the cache once
    times = {(name, which): [] for name in cases for which in checkouts}
    for r in range(rounds):
        for name, flags in cases.items():
            for which in (("this", "other") if r % 2 == 0 else ("other", "this")):
                times[name, which].append(startup_seconds(common + flags, env, checkouts[which]))
    print(cpu_description())
    print(f"the command line, this checkout ({ROOT}) against {checkouts['other']}: start-up beyond import "
          f"tensorflow and seconds per iteration after warm-up; medians of {rounds}, in turns")
    print(f"  {'case':20} {'start this':>10} {'start other':>11} {'ratio':>6} {'s/it this':>10} {'s/it other':>10} "
          f"{'ratio':>6}")
    for name in cases:
        start = {w: statistics.median(t[1] for t in times[name, w]) for w in checkouts}
        per = {w: statistics.median(t[2] for t in times[name, w]) for w in checkouts}
        print(f"  {name:20} {start['this']:10.2f} {start['other']:11.2f} {start['this'] / start['other']:6.3f} "
              f"{per['this']:10.4f} {per['other']:10.4f} {per['this'] / per['other']:6.3f}", flush=True)


def histogram_timing():
    import numpy as np
    import luma_transfer
    rng = np.random.default_rng(0)
    a = rng.integers(0, 256, (1024, 1024, 3), dtype=np.uint8)
    b = rng.integers(0, 256, (1024, 1024, 3), dtype=np.uint8)
    times = {}
    for mode in ("hist", "hist-rgb"):
        runs = []
        for _ in range(5):
            t = time.perf_counter()
            luma_transfer.colortransfer(a, b, mode)
            runs.append(time.perf_counter() - t)
        times[mode] = statistics.median(runs)
    return times


def memory_table(gigabytes=(8, 16, 24), aspect=(3, 4)):
    """Largest 4:3 image (width x height) whose estimate, the one neural_style.py uses to refuse
    impossible sizes, fits in the given memory, per network and optimiser."""
    import device  # noqa: F401 - first: TensorFlow, quietly
    import memory
    import squeezenet
    import vgg
    rows = []
    for module, file_mb in ((vgg, 534), (squeezenet, 2.9)):
        for optim in ("lbfgs", "adam"):
            row = []
            for gb in gigabytes:
                budget = gb * 2**30 - RUNTIME_BYTES
                low, high = 64, 20000
                while low < high:  # the largest width that fits
                    mid = (low + high + 1) // 2
                    size = (mid * aspect[0] // aspect[1], mid)
                    fits = memory.estimate_memory(module.NETWORK, [size], optim, 1.3 * file_mb * 2**20) <= budget
                    low, high = (mid, high) if fits else (low, mid - 1)
                row.append(f"{low}x{low * aspect[0] // aspect[1]}")
            rows.append((module.NETWORK.__name__, optim, row))
    return rows


RUNTIME_BYTES = 700 * 2**20  # Python + TensorFlow before any image (measured: 590-800 MB here)


def in_subprocess(function, **kwargs):
    """Run one measurement in a fresh Python process (clean peak memory, no shared caches)."""
    code = (f"import sys, json; sys.path.insert(0, {os.path.join(ROOT, 'benchmarks')!r}); import bench; "
            f"print('RESULT ' + json.dumps(bench.{function}(**{kwargs!r})))")
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=ROOT)
    for line in out.stdout.splitlines():
        if line.startswith("RESULT "):
            return json.loads(line[7:])
    raise RuntimeError(f"{function}{kwargs} failed:\n{out.stderr[-3000:]}")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="256 px cases only, no precision or hierarchy study")
    parser.add_argument("--precision-study", action="store_true",
                        help="also compare float32 / bfloat16 / float16 and XLA on the final loss")
    parser.add_argument("--tiles", metavar="DIR", help="only the tiled-level cases (print sizes: about an hour "
                        "on 2 cores); the print-size results are written to DIR")
    parser.add_argument("--ray", metavar="DIR", help="only Ray's overhead per pair and per tile (a few minutes)")
    parser.add_argument("--print-size", metavar="DIR", help="only the 8000x6000 command-line run (~15 minutes)")
    parser.add_argument("--lbfgs", metavar="DIR", help="only start-up, L-BFGS speed and quality, time to a good "
                        "image (~1 h; DIR holds a 574 MB VGG19-sized file)")
    parser.add_argument("--parts", default="startup,speed,quality,time", help="with --lbfgs: which of them")
    parser.add_argument("--compare", nargs=2, metavar=("OTHER_CHECKOUT", "DIR"),
                        help="only the command line's start-up and time per iteration against another checkout "
                             "(git worktree add OTHER COMMIT); DIR holds a 574 MB VGG19-sized file (~30 minutes)")
    args = parser.parse_args()
    print(cpu_description())
    if args.compare:
        return compare_checkouts(*args.compare)
    if args.tiles or args.ray or args.print_size or args.lbfgs:
        if args.lbfgs:
            lbfgs_cases(args.lbfgs, args.parts.split(","))
        if args.print_size:
            print_size_runs(args.print_size, gallery=False)
        if args.tiles:
            tiled_cases(args.tiles)
        if args.ray:
            ray_cases(args.ray)
        return
    sizes = (256,) if args.quick else (256, 512)
    print(f"{'network':8} {'size':>8} {'optim':6} {'s/iter':>8} {'floor s':>8} {'ratio':>6} "
          f"{'1st iter s':>10} {'peak MB':>8} {'floor peak MB':>13} traces")
    cases = [(network, size, "float32") for network in ("sqz", "vgg") for size in sizes]
    from device import cpu_has_native_bfloat16
    if cpu_has_native_bfloat16():
        cases.append(("vgg", sizes[-1], "bfloat16"))  # what --precision auto picks for VGG19 on this CPU
    for network, size, precision in cases:
        floor_alone = in_subprocess("run_case", network=network, size=size, optim="adam", iterations=0,
                                    precision=precision, floor_only=True)
        for optim in ("lbfgs", "adam"):
            iterations = 12 if network == "vgg" and size == 512 else 40
            r = in_subprocess("run_case", network=network, size=size, optim=optim, iterations=iterations,
                              precision=precision)
            name = network if precision == "float32" else f"{network}-{precision[:4]}"
            print(f"{name:8} {r['size']:>8} {optim:6} {r['s_per_iter']:8.4f} {r['floor_s']:8.4f} "
                  f"{r['ratio']:6.2f} {r['first_iter_s']:10.2f} {r['peak_mb']:8.0f} "
                  f"{floor_alone['floor_peak_mb']:13.0f} {r['traces']}", flush=True)
    print(cpu_description())
    print("TensorFlow's graph optimizer (Grappler), off (as stylize.py runs on a CPU) and on: s/iter, 1st iter s")
    for network, size, iterations in (("sqz", 256, 40), ("vgg", sizes[-1], 12)):
        for optim in ("lbfgs", "adam"):
            off, on = (in_subprocess("run_case", network=network, size=size, optim=optim, iterations=iterations,
                                     grappler=grappler) for grappler in (False, True))
            print(f"  {network} {size} {optim}: off {off['s_per_iter']:.4f} s, {off['first_iter_s']:.2f} s; "
                  f"on {on['s_per_iter']:.4f} s, {on['first_iter_s']:.2f} s", flush=True)
    print("largest 4:3 image by the memory estimate (8 / 16 / 24 GiB):")
    for name, optim, row in memory_table():
        print(f"  {name:10} {optim:6} " + "  ".join(row))
    hist = histogram_timing()
    print(f"histogram matching 1024x1024: hist {hist['hist']:.3f} s, hist-rgb {hist['hist-rgb']:.3f} s")
    if args.quick:
        return
    if args.precision_study:
        print("precision / XLA, SqueezeNet 256 px, L-BFGS 200 iterations (final loss in float32):")
        for precision, jit in (("float32", False), ("float32", True), ("bfloat16", False), ("float16", False)):
            r = in_subprocess("final_loss", network="sqz", size=256, optim="lbfgs", iterations=200,
                              precision=precision, jit=jit)
            print(f"  {precision:8} jit={jit!s:5} final loss {r['final_loss']:.5g}  {r['seconds']:.1f} s", flush=True)


if __name__ == "__main__":
    main()
