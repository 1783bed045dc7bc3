"""One optimisation at one scale: targets, losses (SPEC section 6), the optimizer loop.

`stylize()` is a generator: it yields a Step for every checkpoint and, last, the best image.
Images go in and come out as HxWx3 float32 RGB in 0..255 (not clipped).
"""
import sys
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
import scipy.optimize
import tensorflow as tf
from threadpoolctl import threadpool_limits
from tqdm import tqdm

from errors import Interrupted, NumericalError

NOISE_SCALE = 16.384        # std of the noise blended into the start image (--initial-noiseblend)
STD_FLOOR = 1e-5            # std_F = sqrt(max(var_F, STD_FLOOR)): finite gradient for dead channels
DISTR_EPS = 1e-5            # T = std_S / (std_F + DISTR_EPS) * (F - mean_F) + mean_S
MIN_SCIPY_CHUNK = 50        # L-BFGS/CG restarts lose curvature history: never split finer
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


def _gram(features, positions, channels, shift):
    return _self_product(features + shift) / (positions * channels)


def _moments(features, floor=None):
    """Per-channel mean and population std over positions; `floor` bounds the variance below."""
    mean = tf.reduce_mean(features, axis=0)
    var = tf.reduce_mean(tf.square(features - mean), axis=0)
    return mean, tf.sqrt(var if floor is None else tf.maximum(var, floor))


def _sq_sum(x):
    return tf.reduce_sum(tf.square(x))  # = 2 * l2(x)


def tv_loss(image, tv_weight):
    dy = image[:, 1:, :, :] - image[:, :-1, :, :]
    dx = image[:, :, 1:, :] - image[:, :, :-1, :]
    return tv_weight * (_sq_sum(dy) / int(np.prod(dy.shape)) + _sq_sum(dx) / int(np.prod(dx.shape)))


class TransferLoss:
    """The loss of SPEC section 6 for one scale. Targets (content activations, style Gram
    matrices or moments) are computed once here; calling the object computes the four losses
    (content, style, tv, total) of a [1, H, W, 3] preprocessed image with one network pass."""

    def __init__(self, net, content, styles, style_blend_weights, weights):
        self.net = net
        self.w = weights
        cw = content_layer_weights(weights.content_weight_blend, len(net.CONTENT_LAYERS))
        sw = style_layer_weights(weights.style_layer_weight_exp, len(net.STYLE_LAYERS))
        # Layers whose weight is zero cost nothing: they are neither computed nor compared.
        self.content_layers = [(l, w) for l, w in zip(net.CONTENT_LAYERS, cw)
                               if w > 0 and weights.content_weight != 0]
        self.style_layers = [(l, w) for l, w in zip(net.STYLE_LAYERS, sw)
                             if w > 0 and weights.style_weight != 0]
        self.distr_layers = list(net.STYLE_LAYERS) if weights.style_distr_weight != 0 else []
        self.layers = sorted({l for l, _ in self.content_layers + self.style_layers} | set(self.distr_layers),
                             key=net.LAYERS.index)
        self.blend = [float(b) for b in style_blend_weights]

        content_feats = net.features(tf.constant(content[None]), [l for l, _ in self.content_layers])
        self.content_targets = {l: content_feats[l] for l, _ in self.content_layers}
        style_layer_names = sorted({l for l, _ in self.style_layers} | set(self.distr_layers),
                                   key=net.LAYERS.index)
        self.style_targets = []  # per style: {layer: gram A, or (mean_S, std_S)}
        self.distr_targets = []  # per style: {layer: (mean_S, std_S)}
        for style in styles:
            feats = net.features(tf.constant(style[None]), style_layer_names)
            targets, distr = {}, {}
            for layer in style_layer_names:
                f, positions, channels = _as_matrix(feats[layer])
                moments = _moments(f)
                if layer in dict(self.style_layers):
                    if weights.style_feat_type == "gram":
                        targets[layer] = _gram(f, positions, channels, weights.ashift)
                    else:
                        targets[layer] = moments
                if layer in self.distr_layers:
                    distr[layer] = moments
            self.style_targets.append(targets)
            self.distr_targets.append(distr)

    def __call__(self, image):
        w = self.w
        feats = self.net.features(image, self.layers)
        image_moments = {}  # per layer, shared by the distr features and the remapping loss

        def moments(layer, f):
            if layer not in image_moments:
                image_moments[layer] = _moments(f, STD_FLOOR)
            return image_moments[layer]

        content = tf.constant(0.0)
        for layer, lw in self.content_layers:
            target = self.content_targets[layer]
            content += lw * _sq_sum(feats[layer] - target) / int(np.prod(target.shape))
        content *= w.content_weight

        style = tf.constant(0.0)
        for layer, lw in self.style_layers:
            f, positions, channels = _as_matrix(feats[layer])
            if w.style_feat_type == "gram":
                gram = _gram(f, positions, channels, w.ashift)
                per_style = [_sq_sum(gram - t[layer]) / channels ** 2 for t in self.style_targets]
            elif w.style_feat_type == "mean":
                mean = tf.reduce_mean(f, axis=0)
                per_style = [_sq_sum(mean - t[layer][0]) for t in self.style_targets]
            else:  # distr: mean and std
                mean, std = moments(layer, f)
                per_style = [_sq_sum(mean - t[layer][0]) + _sq_sum(std - t[layer][1])
                             for t in self.style_targets]
            for beta, loss in zip(self.blend, per_style):
                style += w.style_weight * beta * lw * loss

        # Distribution remapping: pull F towards its own features remapped to the style's
        # mean/std (unshifted features, no layer or blend weight); gradients flow through T.
        for layer in self.distr_layers:
            f, positions, channels = _as_matrix(feats[layer])
            mean, std = moments(layer, f)
            for targets in self.distr_targets:
                mean_s, std_s = targets[layer]
                remapped = (std_s / (std + DISTR_EPS)) * (f - mean) + mean_s
                style += w.style_distr_weight * 0.5 * _sq_sum(f - remapped) / (positions * channels)

        tv = tv_loss(image, w.tv_weight)
        return tf.stack([content, style, tv, content + style + tv])


class Stylizer:
    """Compiles the loss-and-gradient function of one scale, traced once."""

    def __init__(self, net, content, styles, style_blend_weights, weights, jit_compile=False):
        self.net = net
        self.shape = (1,) + content.shape
        self.loss = TransferLoss(net, net.preprocess(content), [net.preprocess(s) for s in styles],
                                 style_blend_weights, weights)
        self.traces = 0  # how often TensorFlow traced loss_and_grad (tests check it is once)
        self.loss_and_grad = tf.function(self._loss_and_grad, jit_compile=jit_compile,
                                         input_signature=[tf.TensorSpec(self.shape, tf.float32)])

    def _loss_and_grad(self, image):
        self.traces += 1  # Python side effect: runs only while tracing
        with tf.GradientTape() as tape:
            tape.watch(image)
            losses = self.loss(image)
            total = losses[3]
        return losses, tape.gradient(total, image)


def print_losses(losses):
    for name, value in zip(LOSS_NAMES, losses):
        tqdm.write(f"{name} loss: {value:g}", file=sys.stdout)
    sys.stdout.flush()  # seen at once through a pipe or tee, not when the buffer fills


def stylize(net, initial, content, styles, style_blend_weights, weights=LossWeights(),
            optim="lbfgs", iterations=1000, print_iterations=None, checkpoint_iterations=None,
            learning_rate=10.0, beta1=0.9, beta2=0.999, epsilon=1e-8, initial_noiseblend=0.0,
            rng=None, desc=None, jit_compile=False, stylizer=None, on_iteration=None):
    """Optimise an image of `content`'s size from `initial` (SPEC section 6).

    Yields Step(iteration, best image so far, False) at each checkpoint and finally
    Step(iterations done, best image, True). On Ctrl-C/SIGTERM or a non-finite loss the
    exception raised carries `partial_image`, the best finite image seen.
    `on_iteration(i, losses)` is called after every iteration (losses: the four losses with
    L-BFGS/CG; None with Adam, whose losses stay on the device).
    """
    stylizer = stylizer or Stylizer(net, content, styles, style_blend_weights, weights, jit_compile)
    rng = rng if rng is not None else np.random.default_rng()
    x0 = net.preprocess(np.asarray(initial, dtype=np.float32))
    if initial_noiseblend:
        noise = rng.standard_normal(x0.shape).astype(np.float32) * NOISE_SCALE
        x0 = (1.0 - initial_noiseblend) * x0 + initial_noiseblend * noise
    x0 = x0[None].astype(np.float32)

    run = _adam if optim == "adam" else _scipy
    best = _Best(x0)
    progress = _Progress(iterations, desc, on_iteration)
    try:
        losses, _ = stylizer.loss_and_grad(tf.constant(x0))
        losses = losses.numpy()
        best.offer(x0, losses)
        print_losses(losses)
        steps = run(stylizer, x0, best, progress, optim=optim, iterations=iterations,
                    print_iterations=print_iterations, checkpoint_iterations=checkpoint_iterations,
                    learning_rate=learning_rate, beta1=beta1, beta2=beta2, epsilon=epsilon)
        for iteration in steps:
            yield Step(iteration, best.pixels(net), False)
        progress.bar.close()
        print_losses(best.losses)
        yield Step(progress.done, best.pixels(net), True)
    except (Interrupted, NumericalError) as e:
        e.partial_image = best.pixels(net)
        raise
    finally:
        progress.bar.close()


class _Progress:
    """Iterations done, and a tqdm bar showing them (tqdm does not count while disabled)."""

    def __init__(self, total, desc, on_iteration=None):
        self.done = 0
        self.bar = tqdm(total=total, desc=desc, unit="it", disable=None, leave=False, file=sys.stderr)
        self.on_iteration = on_iteration

    def advance(self, losses=None):
        self.done += 1
        self.bar.update(1)
        if self.on_iteration:
            self.on_iteration(self.done, losses)


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


def _scipy(stylizer, x0, best, progress, optim, iterations, print_iterations, checkpoint_iterations, **_):
    """L-BFGS-B or CG through scipy.optimize.minimize, split into checkpoint chunks.
    Yields the iteration count at each chunk end but the last."""
    method, options = SCIPY_OPTIONS[optim]
    shape = x0.shape
    last = {}  # the most recent evaluation: SciPy's callback point is (almost always) that one

    def loss_and_grad(x):
        losses, grad = stylizer.loss_and_grad(tf.constant(x.reshape(shape), dtype=tf.float32))
        losses = losses.numpy()
        _check_finite(losses, progress.done + 1)
        last["x"], last["losses"] = x, losses  # SciPy hands each evaluation its own copy of x
        return float(losses[3]), grad.numpy().astype(np.float64).ravel()

    def callback(intermediate_result):
        x = intermediate_result.x
        if not np.array_equal(x, last.get("x")):
            loss_and_grad(x.copy())
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
                       "split restarts the optimizer, which hurts convergence", file=sys.stderr)
    x = x0.astype(np.float64).ravel()
    while progress.done < iterations:
        before = progress.done
        maxiter = min(chunk, iterations - before)
        # SciPy's vector operations gain nothing from BLAS threads, and OpenBLAS threads left
        # spinning after them slowed the next TensorFlow evaluation by 60% on 2 cores.
        with threadpool_limits(limits=1, user_api="blas"):
            result = scipy.optimize.minimize(loss_and_grad, x, jac=True, method=method, callback=callback,
                                             options=dict(options, maxiter=maxiter))
        x = result.x
        if progress.done - before < maxiter:
            break  # converged (or the line search gave up): more chunks would not move
        if progress.done < iterations:
            yield progress.done


def _adam(stylizer, x0, best, progress, iterations, print_iterations, checkpoint_iterations,
          learning_rate, beta1, beta2, epsilon, **_):
    """Adam in TensorFlow. Each step and the best-image bookkeeping stay on the device; the host
    reads back only to print, checkpoint, or check for a non-finite loss every few steps."""
    image = tf.Variable(x0)
    best_image = tf.Variable(best.image)
    best_losses = tf.Variable(best.losses.astype(np.float32))
    last_losses = tf.Variable(best.losses.astype(np.float32))
    optimizer = tf.keras.optimizers.Adam(learning_rate=learning_rate, beta_1=beta1, beta_2=beta2,
                                         epsilon=epsilon)

    @tf.function
    def step():
        losses, grad = stylizer.loss_and_grad(image)
        better = losses[3] < best_losses[3]  # False for NaN: the best image stays finite
        best_image.assign(tf.where(better, image, best_image))
        best_losses.assign(tf.where(better, losses, best_losses))
        last_losses.assign(losses)
        optimizer.apply_gradients([(grad, image)])

    def sync():
        best.image, best.losses = best_image.numpy(), best_losses.numpy()

    check_every = 10
    try:
        for i in range(1, iterations + 1):
            step()
            progress.advance()
            printing = print_iterations and i % print_iterations == 0 and i < iterations
            checkpoint = checkpoint_iterations and i % checkpoint_iterations == 0 and i < iterations
            if printing or checkpoint or i % check_every == 0 or i == iterations:
                losses = last_losses.numpy()
                _check_finite(losses, i)
                if printing:
                    print_losses(losses)
                if checkpoint:
                    sync()
                    yield i
    finally:
        sync()  # also on interruption or a non-finite loss: the caller saves the best image
    # The loss of the final image (after the last update) has not been seen yet.
    losses, _ = stylizer.loss_and_grad(image)
    best.offer(image.numpy(), losses.numpy())
