"""One optimisation at one scale: targets, losses (SPEC section 6), the optimizer loop.

`stylize()` is a generator: it yields a Step for every checkpoint and, last, the best image.
Images go in and come out as HxWx3 float32 RGB in 0..255 (not clipped).
"""
import importlib
import sys
import threading
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
import tensorflow as tf
from threadpoolctl import threadpool_limits
from tqdm import tqdm

from errors import Interrupted, NumericalError
from lbfgs import FIRST_STEP_POLYAK, LBFGS

NOISE_SCALE = 16.384        # std of the noise blended into the start image (--initial-noiseblend)
STD_FLOOR = 1e-5            # std_F = sqrt(max(var_F, STD_FLOOR)): finite gradient for dead channels
DISTR_EPS = 1e-5            # T = std_S / (std_F + DISTR_EPS) * (F - mean_F) + mean_S
MIN_SCIPY_CHUNK = 50        # SciPy's L-BFGS-B/CG restart at each chunk and lose their history: never split finer
SCIPY_OPTIONS = {
    "lbfgs": ("L-BFGS-B", {"maxcor": 10, "maxls": 20, "gtol": 1e-5, "ftol": 2.22e-9, "maxfun": 15000}),
    "cg": ("CG", {"gtol": 1e-5}),
}
LOSS_NAMES = ("content", "style", "tv", "total")


@dataclass(frozen=True)
class LossWeights:
    content_weight: float = 5.0
    content_weight_blend: float = 1.0
    style_weight: float = 500.0
    style_layer_weight_exp: float = 1.0
    style_distr_weight: float = 0.0
    style_feat_type: str = "gram"
    tv_weight: float = 100.0
    ashift: float = 0.0


class Step(NamedTuple):
    iteration: int
    image: np.ndarray   # HxWx3 float32, pixel values
    final: bool
    losses: np.ndarray = None  # the four losses of `image`


def geometric_weights(ratio, count):
    """Weights 1, r, r^2, ... over `count` layers, normalised to sum 1 (r = 0 -> all on the first,
    r = inf -> all on the last). Computed from the larger end so large ratios cannot overflow."""
    if np.isinf(ratio):
        weights = np.zeros(count)
        weights[-1] = 1.0
    elif ratio <= 1.0:
        weights = np.array([ratio ** i for i in range(count)], dtype=np.float64)
    else:
        weights = np.array([(1.0 / ratio) ** (count - 1 - i) for i in range(count)], dtype=np.float64)
    return weights / weights.sum()


def content_layer_weights(blend, count):
    """--content-weight-blend b: ratio (1 - b) / b (b = 0: all weight on the last layer)."""
    return geometric_weights(np.inf if blend == 0 else (1.0 - blend) / blend, count)


def style_layer_weights(exponent, count):
    return geometric_weights(exponent, count)


def _as_matrix(activation):
    """[1, H, W, C] -> (F [HW, C], H*W, C) with static sizes."""
    _, h, w, c = activation.shape
    return tf.reshape(activation, [h * w, c]), h * w, c


@tf.custom_gradient
def _self_product(f):
    """f^T f, with a gradient of one matmul: d(f^T f) . dG = f (dG + dG^T). Autodiff would
    differentiate the two operands separately, with two matmuls of the same size."""
    def grad(dg):
        return tf.matmul(f, dg + tf.transpose(dg))
    return tf.matmul(f, f, transpose_a=True), grad


def _moments(features):
    """Per-channel mean and population variance over positions."""
    mean = tf.reduce_mean(features, axis=0)
    return mean, tf.reduce_mean(tf.square(features - mean), axis=0)


def _std(var, floor=None):
    return tf.sqrt(var if floor is None else tf.maximum(var, floor))


class Statistics(NamedTuple):
    """What the style loss needs of an image's (or a part's) features at one layer, in a form
    that parts add up to the whole: positions n, Gram sum (F + shift)^T (F + shift), per-channel
    mean and population variance."""
    positions: tf.Tensor
    gram_sum: tf.Tensor
    mean: tf.Tensor
    var: tf.Tensor


def _shifted(f, shift):
    """F + shift (--ashift); F itself when the shift is 0 (fewer operations to trace)."""
    return f + shift if shift else f


def statistics_of(features, shift):
    f, positions, _ = _as_matrix(features)
    return Statistics(tf.constant(float(positions)), _self_product(_shifted(f, shift)), *_moments(f))


def pool(a, b):
    """The statistics of two parts together (Chan et al.'s pairwise means and variances). With
    `a` empty (no positions), `b`'s values come out unchanged, bit for bit."""
    n = a.positions + b.positions
    share = b.positions / n
    delta = b.mean - a.mean
    return Statistics(n, a.gram_sum + b.gram_sum, a.mean + delta * share,
                      a.var * (1.0 - share) + b.var * share + tf.square(delta) * ((1.0 - share) * share))


def pool_all(parts):
    """{layer: Statistics} of several parts together."""
    out = dict(parts[0])
    for part in parts[1:]:
        out = {layer: pool(out[layer], part[layer]) for layer in out}
    return out


def _sq_sum(x):
    return tf.reduce_sum(tf.square(x))  # = 2 * l2(x)


def tv_loss(image, tv_weight):
    dy = image[:, 1:, :, :] - image[:, :-1, :, :]
    dx = image[:, :, 1:, :] - image[:, :, :-1, :]
    # Means as products with 1 / size: the gradient of a division would also build the divisor's.
    return tv_weight * (_sq_sum(dy) * (1.0 / int(np.prod(dy.shape)))
                        + _sq_sum(dx) * (1.0 / int(np.prod(dx.shape))))


class StyleTargets:
    """What every style loss aims at, for one scale: per style, the Gram matrix (or mean and std)
    of each style layer, and the mean and std the remapping loss uses. Computed once per scale
    and shared by every tile of it. `chunk` (pixels a side) computes them piece by piece, for
    style images too large for one network pass: Gram sums and moments (Chan's parallel
    algorithm) are accumulated over the pieces; one piece gives exactly the whole-image values."""

    def __init__(self, net, styles, style_blend_weights, weights, chunk=None):
        sw = style_layer_weights(weights.style_layer_weight_exp, len(net.STYLE_LAYERS))
        # Layers whose weight is zero cost nothing: they are neither computed nor compared.
        self.style_layers = [(l, w) for l, w in zip(net.STYLE_LAYERS, sw) if w > 0 and weights.style_weight != 0]
        self.distr_layers = list(net.STYLE_LAYERS) if weights.style_distr_weight != 0 else []
        self.blend = [float(b) for b in style_blend_weights]
        layers = sorted({l for l, _ in self.style_layers} | set(self.distr_layers), key=net.LAYERS.index)
        self.style = []  # per style: {layer: gram A, or (mean_S, std_S)}
        self.distr = []  # per style: {layer: (mean_S, std_S)}
        for style in styles:
            stats = _style_statistics(net, style, layers, weights.ashift, chunk)
            targets, distr = {}, {}
            for layer, (gram, moments) in stats.items():
                if layer in dict(self.style_layers):
                    targets[layer] = gram if weights.style_feat_type == "gram" else moments
                if layer in self.distr_layers:
                    distr[layer] = moments
            self.style.append(targets)
            self.distr.append(distr)


def _style_statistics(net, style, layers, shift, chunk):
    """{layer: (Gram of F + shift, (mean, population std))} of a preprocessed HxWx3 style image."""
    height, width = style.shape[:2]
    chunk = chunk or max(height, width)
    pieces = []  # per piece: {layer: Statistics}; small, C x C at most

    def start(offset, size):  # a sliver at the far border is widened inwards to a network-sized piece
        return max(0, size - chunk) if size - offset < net.min_size else offset

    for y in range(0, height, chunk):
        for x in range(0, width, chunk):
            piece = style[None, start(y, height):y + chunk, start(x, width):x + chunk]
            feats = net.features(tf.constant(piece), layers)
            pieces.append({layer: statistics_of(feats[layer], shift) for layer in layers})
    whole = pool_all(pieces)
    return {layer: (s.gram_sum / (s.positions * int(s.mean.shape[0])), (s.mean, _std(s.var)))
            for layer, s in whole.items()}


class TransferLoss:
    """The loss of SPEC section 6 for one scale. Targets (content activations, style Gram
    matrices or moments) are computed once here; calling the object computes the four losses
    (content, style, tv, total) of a [1, H, W, 3] preprocessed image with one network pass.
    The content targets live in variables: `set_content` points the same compiled loss at
    another content image of the same size (the next tile).

    With `part=True` the image is one part of a larger one (a tile): `set_rest` gives the style
    statistics of the rest of the image and how many times this part's statistics count (parts
    optimised at the same time each stand for all of them); the style loss then compares the
    whole image's statistics with the targets, and the total counts it `scale` times (the
    whole's area over the parts'), so optimising the part descends the whole image's loss."""

    def __init__(self, net, content, styles, style_blend_weights, weights, style_targets=None, part=False):
        self.net = net
        self.w = weights
        cw = content_layer_weights(weights.content_weight_blend, len(net.CONTENT_LAYERS))
        self.content_layers = [(l, w) for l, w in zip(net.CONTENT_LAYERS, cw)
                               if w > 0 and weights.content_weight != 0]
        self.content_targets = {l: tf.Variable(f, trainable=False) for l, f in self._content_features(content).items()}
        targets = style_targets or StyleTargets(net, styles, style_blend_weights, weights)
        self.style_layers, self.distr_layers, self.blend = targets.style_layers, targets.distr_layers, targets.blend
        self.style_targets, self.distr_targets = targets.style, targets.distr
        self.layers = sorted({l for l, _ in self.content_layers + self.style_layers} | set(self.distr_layers),
                             key=net.LAYERS.index)
        self.part = part
        if part:
            channels = {l: int(self.style_targets[0][l][0].shape[-1]) for l, _ in self.style_layers}
            self.rest = {l: Statistics(tf.Variable(0.0), tf.Variable(tf.zeros([c, c])), tf.Variable(tf.zeros([c])),
                                       tf.Variable(tf.zeros([c]))) for l, c in channels.items()}
            self.scale, self.own_weight = tf.Variable(1.0), tf.Variable(1.0)

    def _content_features(self, content):
        return self.net.features(tf.constant(content[None]), [l for l, _ in self.content_layers])

    def set_content(self, content):
        for layer, f in self._content_features(content).items():
            self.content_targets[layer].assign(f)

    def set_rest(self, rest=None, own_weight=1.0, scale=1.0):
        """The rest of the image's {layer: Statistics} (None: the image is alone), the weight of
        this part's statistics in the whole, and the whole image's area over the parts'."""
        for layer, variables in self.rest.items():
            for variable, value in zip(variables, rest[layer] if rest else [tf.zeros_like(v) for v in variables]):
                variable.assign(value)
        self.own_weight.assign(own_weight)
        self.scale.assign(scale)

    def statistics(self, image):
        """{layer: Statistics} of a [1, H, W, 3] preprocessed image at the style layers."""
        feats = self.net.features(image, list(self.rest))
        return {layer: statistics_of(feats[layer], self.w.ashift) for layer in self.rest}

    def __call__(self, image):
        w = self.w
        feats = self.net.features(image, self.layers)
        image_moments = {}  # per layer, shared by the distr features and the remapping loss

        def moments(layer, f):
            if layer not in image_moments:
                image_moments[layer] = _moments(f)
            return image_moments[layer]

        content = tf.constant(0.0)
        for layer, lw in self.content_layers:
            target = self.content_targets[layer]
            content += lw * _sq_sum(feats[layer] - target) * (1.0 / int(np.prod(target.shape)))
        content *= w.content_weight

        style = tf.constant(0.0)
        for layer, lw in self.style_layers:
            f, positions, channels = _as_matrix(feats[layer])
            if self.part:  # the whole image's statistics: this part's pooled with the others'
                own = statistics_of(feats[layer], w.ashift)
                own = own._replace(positions=own.positions * self.own_weight, gram_sum=own.gram_sum * self.own_weight)
                whole = pool(self.rest[layer], own)
                gram, mean, var = whole.gram_sum / (whole.positions * channels), whole.mean, whole.var
            elif w.style_feat_type == "gram":
                gram = _self_product(_shifted(f, w.ashift)) * (1.0 / (positions * channels))
            else:
                mean, var = moments(layer, f)
            if w.style_feat_type == "gram":
                per_style = [_sq_sum(gram - t[layer]) * (1.0 / channels ** 2) for t in self.style_targets]
            elif w.style_feat_type == "mean":
                per_style = [_sq_sum(mean - t[layer][0]) for t in self.style_targets]
            else:  # distr: mean and std
                std = _std(var, STD_FLOOR)
                per_style = [_sq_sum(mean - t[layer][0]) + _sq_sum(std - t[layer][1]) for t in self.style_targets]
            for beta, loss in zip(self.blend, per_style):
                style += w.style_weight * beta * lw * loss
        pooled = style

        # Distribution remapping: pull F towards its own features remapped to the style's
        # mean/std (unshifted features, no layer or blend weight); gradients flow through T.
        # A per-position loss like the content loss: a part needs nothing of the others for it.
        for layer in self.distr_layers:
            f, positions, channels = _as_matrix(feats[layer])
            mean, var = moments(layer, f)
            std = _std(var, STD_FLOOR)
            for targets in self.distr_targets:
                mean_s, std_s = targets[layer]
                remapped = (std_s / (std + DISTR_EPS)) * (f - mean) + mean_s
                style += w.style_distr_weight * 0.5 * _sq_sum(f - remapped) / (positions * channels)

        tv = tv_loss(image, w.tv_weight)
        total = content + style + tv
        if self.part:  # a part's total counts the whole image's style loss `scale` times
            total += (self.scale - 1.0) * pooled
        return tf.stack([content, style, tv, total])


def _graph_rewrites_off_on_cpu():
    """TensorFlow's graph optimizer (Grappler) rewrites every new compiled function on its first
    call: about 1 s here for the L-BFGS step, at each start. On the CPU its rewrites gained nothing
    per iteration (benchmarks/bench.py prints both ways), so there it is off; with a GPU it stays
    on (its layout and fusion passes are made for GPUs)."""
    if not tf.config.list_physical_devices("GPU"):
        tf.config.optimizer.set_experimental_options({"disable_meta_optimizer": True})


class Stylizer:
    """Compiles the loss-and-gradient function of one scale, traced once."""

    def __init__(self, net, content, styles, style_blend_weights, weights, jit_compile=False, style_targets=None,
                 part=False):
        _graph_rewrites_off_on_cpu()
        self.net = net
        self.shape = (1,) + content.shape
        self.loss = TransferLoss(net, net.preprocess(content), [net.preprocess(s) for s in styles],
                                 style_blend_weights, weights, style_targets, part)
        self.optimizers = {}  # compiled device optimizers (Adam by hyperparameters, L-BFGS), reused across tiles
        self._statistics = None  # compiled on first use (parts only)
        self.traces = 0  # how often TensorFlow traced loss_and_grad (tests check it is once)
        self.loss_and_grad = tf.function(self._loss_and_grad, jit_compile=jit_compile, autograph=False,
                                         input_signature=[tf.TensorSpec(self.shape, tf.float32)])

    def _loss_and_grad(self, image):
        self.traces += 1  # Python side effect: runs only while tracing
        with tf.GradientTape() as tape:
            tape.watch(image)
            losses = self.loss(image)
            total = losses[3]
        return losses, tape.gradient(total, image)

    def set_content(self, content):
        """Aim the compiled loss at another content image of the same size (pixel values)."""
        self.loss.set_content(self.net.preprocess(content))

    def set_rest(self, rest=None, own_weight=1.0, scale=1.0):
        """This image is one part of a larger one (part=True): see TransferLoss."""
        self.loss.set_rest(rest, own_weight, scale)

    def statistics(self, pixels):
        """{layer: Statistics} of an HxWx3 image of this stylizer's size (pixel values)."""
        if self._statistics is None:
            self._statistics = tf.function(self.loss.statistics,
                                           input_signature=[tf.TensorSpec(self.shape, tf.float32)])
        return self._statistics(tf.constant(self.net.preprocess(pixels)[None]))


def start_image(net, initial, initial_noiseblend=0.0, rng=None):
    """The preprocessed HxWx3 start image: `initial` blended with noise (SPEC section 6)."""
    x0 = net.preprocess(np.asarray(initial, dtype=np.float32))
    if initial_noiseblend:
        rng = rng if rng is not None else np.random.default_rng()
        noise = rng.standard_normal(x0.shape).astype(np.float32) * NOISE_SCALE
        x0 = (1.0 - initial_noiseblend) * x0 + initial_noiseblend * noise
    return x0.astype(np.float32)


def print_losses(losses):
    for name, value in zip(LOSS_NAMES, losses):
        tqdm.write(f"{name} loss: {value:g}", file=sys.stdout)
    sys.stdout.flush()  # seen at once through a pipe or tee, not when the buffer fills


def stylize(net, initial, content, styles, style_blend_weights, weights=LossWeights(),
            optim="lbfgs", iterations=1000, print_iterations=None, checkpoint_iterations=None,
            learning_rate=10.0, beta1=0.9, beta2=0.999, epsilon=1e-8, initial_noiseblend=0.0,
            rng=None, desc=None, jit_compile=False, stylizer=None, on_iteration=None, bar=None, quiet=False):
    """Optimise an image of `content`'s size from `initial` (SPEC section 6).

    Yields Step(iteration, best image so far, False) at each checkpoint and finally
    Step(iterations done, best image, True). On Ctrl-C/SIGTERM or a non-finite loss the
    exception raised carries `partial_image`, the best finite image seen.
    `on_iteration(i, losses)` is called after every iteration (losses: the four losses, or None
    where a device optimizer's losses were not read back: they are every 10 iterations).
    A caller optimising tiles passes the tile's `stylizer` (set to the tile's content), a shared
    progress `bar`, and `quiet` (no loss lines); the last Step's `losses` are the best image's.
    """
    # SciPy's optimizers: imported while the targets' network passes run (TensorFlow releases
    # the GIL there), not while the loss is traced, which needs the GIL as much as an import does.
    importing = _import_scipy_in_thread() if optim in SCIPY_OPTIONS else None
    stylizer = stylizer or Stylizer(net, content, styles, style_blend_weights, weights, jit_compile)
    x0 = start_image(net, initial, initial_noiseblend, rng)[None]

    device = _device_optimizer(stylizer, optim, learning_rate, beta1, beta2, epsilon)
    best = _Best(x0)
    progress = _Progress(iterations, desc, on_iteration, bar)
    show = (lambda losses: None) if quiet else print_losses
    try:
        preparing = _prepare_while_evaluating(stylizer, device)
        losses, gradient = stylizer.loss_and_grad(tf.constant(x0))  # the gradient stays on the device
        losses = losses.numpy()
        for thread in (preparing, importing):
            if thread:
                thread.join()
        best.offer(x0, losses)
        show(losses)
        if device is None:
            steps = _scipy(stylizer, x0, gradient, best, progress, optim, iterations, print_iterations,
                           checkpoint_iterations)
        else:
            steps = _on_device(stylizer, device, x0, gradient, best, progress, iterations, print_iterations,
                               checkpoint_iterations)
        for iteration in steps:
            yield Step(iteration, best.pixels(net), False, best.losses)
        progress.close()
        show(best.losses)
        yield Step(progress.done, best.pixels(net), True, best.losses)
    except (Interrupted, NumericalError) as e:
        e.partial_image = best.pixels(net)
        raise
    finally:
        progress.close()


def progress_bar(total, desc=None):
    return tqdm(total=total, desc=desc, unit="it", disable=None, leave=False, file=sys.stderr)


class _Progress:
    """Iterations done in this run, and a tqdm bar showing them (its own, or one shared by the
    tiles of a level). tqdm does not count while disabled, so `done` is kept here."""

    def __init__(self, total, desc, on_iteration=None, bar=None):
        self.done = 0
        self.shared = bar is not None
        self.bar = bar if self.shared else progress_bar(total, desc)
        self.on_iteration = on_iteration

    def advance(self, losses=None):
        self.done += 1
        self.bar.update(1)
        if self.on_iteration:
            self.on_iteration(self.done, losses)

    def close(self):
        if not self.shared:
            self.bar.close()


class _Best:
    """The lowest-loss finite image seen so far (kept on the host). Offered arrays must not be
    changed afterwards by the caller: they are kept without a copy (this runs every iteration)."""

    def __init__(self, image):
        self.image, self.losses = image, None

    def offer(self, image, losses):
        if np.isfinite(losses[3]) and (self.losses is None or losses[3] < self.losses[3]):
            self.image, self.losses = image, losses

    def pixels(self, net):
        """HxWx3 float32 RGB."""
        return net.unprocess(np.asarray(self.image[0], dtype=np.float32))


def _check_finite(losses, iteration):
    if not np.all(np.isfinite(losses)):
        raise NumericalError(f"the loss became {losses[3]} at iteration {iteration}; the run was stopped "
                             "(lower --learning-rate or the loss weights)")


def lbfgsb_scale(f, gradient, pair=None):
    """The c of L-BFGS-B's change of variable x = c z (see _scipy), such that its first trial
    step, of length 1 in z, is in x: where a previous chunk left a recent correction pair
    (s, y), the step -(s.y / y.y) g of L-BFGS's initial inverse Hessian; at the start, for this loss that
    is never negative, a quarter of Polyak's step f / |g|^2 g, as the device L-BFGS's
    (lbfgs.LBFGS._first_step; near a minimum far above 0, as at a chunk's end, it would
    overshoot). 1 where neither is defined."""
    norm = float(np.linalg.norm(gradient))
    if not 0.0 < norm < np.inf:
        return 1.0
    sy = float(np.dot(*pair)) if pair is not None else 0.0
    if sy > 0.0:
        return sy / float(np.dot(pair[1], pair[1])) * norm
    return FIRST_STEP_POLYAK * f / norm if f > 0.0 and np.isfinite(f) else 1.0


def _scipy(stylizer, x0, gradient, best, progress, optim, iterations, print_iterations, checkpoint_iterations):
    """L-BFGS-B or CG through scipy.optimize.minimize, split into checkpoint chunks.
    Yields the iteration count at each chunk end but the last.

    L-BFGS-B's first trial step has length 1 (it then grows it over about six evaluations for
    an image's gradient, at the start of each chunk). L-BFGS is unchanged by a uniform change of
    variable after its first step, so it optimises z = x / c, c = lbfgsb_scale(...) at the
    chunk's start (gtol scaled alike, so that it stops at the same gradient in x): its first step
    then usually needs one evaluation. CG runs on x itself: scaled alike, it took fewer evaluations
    but ended 1-2% higher after as many iterations."""
    import scipy.optimize  # here: its import costs a third of a second of every start
    method, options = SCIPY_OPTIONS[optim]
    shape = x0.shape
    # The most recent evaluation (SciPy's callback point is almost always that one), at first x0's.
    last = {"x": x0.astype(np.float64).ravel(), "losses": best.losses,
            "gradient": np.asarray(gradient, np.float64).ravel()}
    chunk_start = {}  # z, c and the evaluation where the current chunk starts (SciPy evaluates it again)

    def loss_and_grad(z):
        c = chunk_start["c"]
        if np.array_equal(z, chunk_start["z"]):
            last.update(chunk_start["evaluation"])
        else:
            x = z * c
            losses, grad = stylizer.loss_and_grad(tf.constant(x.reshape(shape), dtype=tf.float32))
            last["x"], last["losses"], last["gradient"] = x, losses.numpy(), grad.numpy().astype(np.float64).ravel()
            _check_finite(last["losses"], progress.done + 1)
        return float(last["losses"][3]), last["gradient"] * c

    def callback(intermediate_result):
        if not np.array_equal(intermediate_result.x * chunk_start["c"], last["x"]):
            loss_and_grad(intermediate_result.x.copy())
        best.offer(last["x"].reshape(shape), last["losses"])
        progress.advance(last["losses"])
        if print_iterations and progress.done % print_iterations == 0 and progress.done < iterations:
            print_losses(last["losses"])

    chunk = iterations
    if checkpoint_iterations:
        chunk = max(checkpoint_iterations, MIN_SCIPY_CHUNK)
        if checkpoint_iterations < MIN_SCIPY_CHUNK:
            tqdm.write(f"warning: --checkpoint-iterations {checkpoint_iterations} raised to {chunk} for "
                       f"{optim}", file=sys.stderr)
        if chunk < iterations:
            tqdm.write(f"warning: checkpoints split the {optim} run every {chunk} iterations; each "
                       "split restarts the optimizer, which hurts convergence (--optim lbfgs-device keeps its "
                       "history)", file=sys.stderr)
    pair = None  # a recent correction pair of the previous chunk, in x (SciPy returns its ring buffer as it is)
    while progress.done < iterations:
        before = progress.done
        maxiter = min(chunk, iterations - before)
        # SciPy's vector operations gain nothing from BLAS threads, and OpenBLAS threads left
        # spinning after them slowed the next TensorFlow evaluation by 60% on 2 cores. One
        # thread also makes the scale's dot products repeat on any machine (a sum split over
        # threads rounds differently, and L-BFGS amplifies the last bit).
        with threadpool_limits(limits=1, user_api="blas"):
            c = lbfgsb_scale(float(last["losses"][3]), last["gradient"], pair) if method == "L-BFGS-B" else 1.0
            chunk_start.update(c=c, z=last["x"] / c, evaluation=dict(last))
            result = scipy.optimize.minimize(loss_and_grad, chunk_start["z"], jac=True, method=method,
                                             callback=callback,
                                             options=dict(options, maxiter=maxiter, gtol=options["gtol"] * c))
        if progress.done - before < maxiter:
            break  # converged (or the line search gave up): more chunks would not move
        if progress.done < iterations:
            if not np.array_equal(result.x * c, last["x"]):
                loss_and_grad(result.x.copy())  # the next chunk starts here, and its scale needs f and g
            if method == "L-BFGS-B" and len(result.hess_inv.sk):
                pair = (result.hess_inv.sk[-1] * c, result.hess_inv.yk[-1] / c)
            yield progress.done


class _AdamStep:
    """Adam (Keras' update rule) on an image variable, with the best-image bookkeeping, as one
    compiled step. Made once per stylizer and hyperparameters and reset for every run, so the
    tiles of a level share one trace."""

    def __init__(self, stylizer, learning_rate, beta1, beta2, epsilon):
        shape = stylizer.shape
        self.image, self.m, self.v, self.best_image = (tf.Variable(tf.zeros(shape)) for _ in range(4))
        self.t = tf.Variable(0.0)
        self.best_losses, self.last_losses = tf.Variable(tf.zeros([4])), tf.Variable(tf.zeros([4]))
        lr, b1, b2, eps = (tf.constant(v, tf.float32) for v in (learning_rate, beta1, beta2, epsilon))

        @tf.function
        def step():
            losses, grad = stylizer.loss_and_grad(self.image)
            better = losses[3] < self.best_losses[3]  # False for NaN: the best image stays finite
            self.best_image.assign(tf.where(better, self.image, self.best_image))
            self.best_losses.assign(tf.where(better, losses, self.best_losses))
            self.last_losses.assign(losses)
            self.t.assign_add(1.0)
            alpha = lr * tf.sqrt(1.0 - tf.pow(b2, self.t)) / (1.0 - tf.pow(b1, self.t))
            self.m.assign_add((grad - self.m) * (1.0 - b1))
            self.v.assign_add((tf.square(grad) - self.v) * (1.0 - b2))
            self.image.assign_sub(self.m * alpha / (tf.sqrt(self.v) + eps))
        self.step = step
        self.trace = step.get_concrete_function
        self.traced = lambda: step.experimental_get_tracing_count() > 0

    def reset(self, x0, losses, gradient):
        for variable, value in ((self.image, x0), (self.best_image, x0), (self.best_losses, losses),
                                (self.last_losses, losses)):
            variable.assign(value)
        for variable in (self.m, self.v):
            variable.assign(tf.zeros_like(variable))
        self.t.assign(0.0)


def _on_device(stylizer, optimizer, x0, gradient, best, progress, iterations, print_iterations,
               checkpoint_iterations):
    """Run a device optimizer (Adam, L-BFGS): its steps and the best-image bookkeeping stay on the
    device; the host reads back only to print, checkpoint, or check every few steps for a
    non-finite loss or a stop (L-BFGS converged). Yields the iteration count at checkpoints."""
    optimizer.reset(tf.constant(x0), tf.constant(best.losses), gradient)

    def sync():
        best.image, best.losses = optimizer.best_image.numpy(), optimizer.best_losses.numpy()

    check_every = 10
    try:
        for i in range(1, iterations + 1):
            optimizer.step()
            printing = print_iterations and i % print_iterations == 0 and i < iterations
            checkpoint = checkpoint_iterations and i % checkpoint_iterations == 0 and i < iterations
            if not (printing or checkpoint or i % check_every == 0 or i == iterations):
                progress.advance()
                continue
            losses = optimizer.last_losses.numpy()
            _check_finite(losses, i)
            progress.advance(losses)
            if printing:
                print_losses(losses)
            if checkpoint:
                sync()
                yield i
            if getattr(optimizer, "stopped", None) is not None and optimizer.stopped.numpy():
                progress.done = int(optimizer.iterations.numpy())  # converged: no more iterations ran
                break
    finally:
        sync()  # also on interruption or a non-finite loss: the caller saves the best image
    if isinstance(optimizer, _AdamStep):  # the loss of Adam's final image (after the last update) is not known yet
        losses, _ = stylizer.loss_and_grad(optimizer.image)
        best.offer(optimizer.image.numpy(), losses.numpy())


def _device_optimizer(stylizer, optim, learning_rate, beta1, beta2, epsilon):
    """The stylizer's compiled optimizer for `optim` (made once, reset for every run), or None
    for SciPy's."""
    key = ("adam", learning_rate, beta1, beta2, epsilon) if optim == "adam" else optim
    if key not in stylizer.optimizers:
        if optim == "adam":
            stylizer.optimizers[key] = _AdamStep(stylizer, learning_rate, beta1, beta2, epsilon)
        elif optim == "lbfgs-device":  # L-BFGS on the device (lbfgs.py); its history carries over checkpoints
            stylizer.optimizers[key] = LBFGS(stylizer.loss_and_grad, stylizer.shape, nonnegative=True)  # sums of squares
        else:
            return None
    return stylizer.optimizers[key]


def _prepare_while_evaluating(stylizer, optimizer):
    """Trace, in a thread, what a device optimizer's first iteration needs (Adam's step, or the
    device L-BFGS's evaluation, its direction, judgement and update) while the caller runs the first
    evaluation (TensorFlow releases the GIL while it computes: this hid 0.6 s of VGG19's start
    at 512 px here, little of SqueezeNet's, whose first evaluation is short). Returns the
    thread, or None."""
    if optimizer is None or optimizer.traced():
        return None
    stylizer.loss_and_grad.get_concrete_function()  # traced here first: both optimizers' steps call it
    return _in_thread(optimizer.trace)


def _import_scipy_in_thread():
    """scipy.optimize (a third of a second) imported in a thread, or None if it already is."""
    if "scipy.optimize" in sys.modules:
        return None
    return _in_thread(lambda: importlib.import_module("scipy.optimize"))


def _in_thread(work):
    """Start `work` in a daemon thread, for what is needed a little later. A failure there is
    ignored: the caller's thread does the same work again when it needs it, and raises there."""
    def run():
        try:
            work()
        except Exception:  # noqa: BLE001 - see above
            pass
    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread
