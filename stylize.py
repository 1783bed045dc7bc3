"""One optimisation at one scale (a whole image, or one tile of it): the compiled loss and its
gradient, the start image, the optimiser's run with progress, checkpoints and the best image.

`stylize()` is a generator: it yields a Step at every checkpoint and, last, the best image.
Images go in and come out as HxWx3 float32 RGB pixel values in 0..255 (not clipped).
"""
import sys
from typing import NamedTuple

import numpy as np
import tensorflow as tf
from tqdm import tqdm

import device
import optimizers
from errors import Interrupted, NumericalError, Stopped
from losses import LOSS_NAMES, TransferLoss
from settings import LossWeights, OptimizerSettings

NOISE_SCALE = 16.384  # std of the noise blended into the start image (--initial-noiseblend)


class Step(NamedTuple):
    iteration: int
    image: np.ndarray   # HxWx3 float32, pixel values
    final: bool
    losses: np.ndarray = None  # the four losses of `image`


class Stylizer:
    """Compiles the loss-and-gradient function of one scale, traced once."""

    def __init__(self, net, content, styles, style_blend_weights, weights, jit_compile=False, style_targets=None,
                 part=False, anchor=None, temporal=None):
        device.graph_rewrites_off_on_cpu()
        self.net = net
        self.shape = (1,) + content.shape
        anchor = anchor and (net.preprocess(np.asarray(anchor[0], np.float32)), anchor[1],
                             [net.preprocess(np.asarray(s, np.float32)) for s in anchor[2]])
        self.loss = TransferLoss(net, net.preprocess(content), [net.preprocess(s) for s in styles],
                                 style_blend_weights, weights, style_targets, part, anchor, temporal)
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

    def set_temporal(self, targets=()):
        """A video frame's earlier frames: [(result [H, W, 3] in pixels, flow from it to this frame
        [H, W, 2], certainty there [H, W], the result warped here [H, W, 3] in pixels, certainty here
        [H, W])] (losses.py)."""
        self.loss.set_temporal([(self.net.preprocess(np.asarray(image, np.float32)), field, certainty,
                                 self.net.preprocess(np.asarray(warped, np.float32)), certainty_here)
                                for image, field, certainty, warped, certainty_here in targets])

    def balance_temporal(self, x0):
        """Scale a video frame's temporal term to the frame: temporal_weight x its content + style +
        total variation loss at the start image `x0` ([1, H, W, 3] preprocessed) per 255^2 of mean
        squared deviation (losses.py). One evaluation; nothing without earlier frames."""
        if not self.loss.temporal:
            return
        self.loss.temporal_scale.assign(0.0)
        content, style, tv, _ = self.loss_and_grad(tf.constant(x0))[0].numpy()
        self.loss.temporal_scale.assign(self.loss.temporal_weight * float(content + style + tv) / 255.0 ** 2)

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
    """The preprocessed HxWx3 start image: `initial` blended with noise, (1 - n) x0 + n N(0, 1) 16.384."""
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


def progress_bar(total, desc=None, quiet=False):
    return tqdm(total=total, desc=desc, unit="it", disable=True if quiet else None, leave=False, file=sys.stderr)


class Progress:
    """Iterations done in this run, a tqdm bar showing them (its own, or one shared by the tiles of
    a level), the loss lines every `print_iterations`, and the caller's `on_iteration(i, losses, image)`,
    `image()` giving the best image so far in pixels. tqdm does not count while disabled, so `done`
    is kept here."""

    def __init__(self, total, desc=None, on_iteration=None, bar=None, print_iterations=None, quiet=False,
                 image=None):
        self.done = 0
        self.image = image
        self.total = total
        self.shared = bar is not None
        self.bar = bar if self.shared else progress_bar(total, desc, quiet)
        self.on_iteration = on_iteration
        self.print_iterations = print_iterations

    def prints(self, i):
        """Whether the losses are printed after iteration i (never after the last: the end prints them)."""
        return bool(self.print_iterations) and i % self.print_iterations == 0 and i < self.total

    def advance(self, losses=None):
        self.done += 1
        self.bar.update(1)
        if self.on_iteration:
            self.on_iteration(self.done, losses, self.image)
        if losses is not None and self.prints(self.done):
            print_losses(losses)

    def close(self):
        if not self.shared:
            self.bar.close()


def stylize(net, initial, content, styles, style_blend_weights, weights=LossWeights(),
            optimizer=OptimizerSettings(), iterations=1000, print_iterations=None, checkpoint_iterations=None,
            initial_noiseblend=0.0, rng=None, desc=None, jit_compile=False, stylizer=None, on_iteration=None,
            bar=None, quiet=False, anchor=None):
    """Optimise an image of `content`'s size from `initial` with the optimiser of `optimizer`
    (settings.OptimizerSettings), for `iterations`.

    Yields Step(iteration, best image so far, False) at each checkpoint and finally
    Step(iterations done, best image, True); the Steps' `losses` are the best image's. On Ctrl-C,
    SIGTERM or a non-finite loss it raises Stopped with the best finite image seen.
    `on_iteration(i, losses, image)` is called after every iteration (losses: the four losses, or None
    where a device optimiser's losses were not read back: they are at least every 10 iterations;
    image(): the best image so far in pixels, read back from the device: call it seldom).
    A caller optimising tiles passes the tile's `stylizer` (aimed at the tile's content) and a
    shared progress `bar`; `quiet` prints no loss lines and shows no bar of its own. `anchor`
    (pixels, f): an image of 1/f the size that the image, averaged over f x f blocks, is held at
    (--max-hierarchy auto: the larger levels refine the first one).
    """
    optimizer_class = optimizers.OPTIMIZERS[optimizer.optim]
    importing = optimizer_class.preload()
    stylizer = stylizer or Stylizer(net, content, styles, style_blend_weights, weights, jit_compile, anchor=anchor)
    x0 = start_image(net, initial, initial_noiseblend, rng)[None]

    chosen = optimizers.make(stylizer, optimizer)
    best = optimizers.Best(x0)
    progress = Progress(iterations, desc, on_iteration, bar, print_iterations, quiet,
                        image=lambda: pixels(net, chosen.best_image(best)[0], stylizer.loss.w))
    show = (lambda losses: None) if quiet else print_losses
    started = False
    try:
        preparing = chosen.prepare()
        stylizer.balance_temporal(x0)
        losses, gradient = stylizer.loss_and_grad(tf.constant(x0))  # the gradient stays on the device
        losses = losses.numpy()
        for thread in (preparing, importing):
            if thread:
                thread.join()
        optimizers.check_finite(losses, 0)
        best.offer(x0, losses)
        show(losses)
        every = optimizer_class.checkpoint_interval(checkpoint_iterations, iterations)
        chosen.start(x0, losses, gradient, best)
        started = True
        while progress.done < iterations:
            end = min(iterations, (progress.done // every + 1) * every) if every else iterations
            stopped = chosen.run(end, progress, best)
            if progress.done == end < iterations:  # a checkpoint
                chosen.sync(best)
                yield Step(end, best_pixels(net, best, stylizer.loss.w), False, best.losses)
            if stopped:  # converged: no more iterations run
                progress.done = chosen.iterations_done(progress.done)
                break
        chosen.sync(best)
        chosen.finish(best)
        progress.close()
        show(best.losses)
        yield Step(progress.done, best_pixels(net, best, stylizer.loss.w), True, best.losses)
    except (Interrupted, NumericalError, KeyboardInterrupt) as e:
        if started:
            chosen.sync(best)
        raise Stopped(e, best_pixels(net, best, stylizer.loss.w)) from None
    finally:
        progress.close()


def best_pixels(net, best, weights):
    """The best image as HxWx3 float32 pixel values."""
    return pixels(net, best.image[0], weights)


def pixels(net, image, weights):
    """An HxWx3 image as the network sees it, in float32 pixel values: clipped to 0..255 as its
    loss saw it, unless --unbounded."""
    values = net.unprocess(np.asarray(image, dtype=np.float32))
    return values if weights.unbounded else np.clip(values, 0.0, 255.0)
