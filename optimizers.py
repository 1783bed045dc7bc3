"""The optimisers of --optim, each one class behind one interface. Adding one: a class here, and
its name in OPTIMIZERS.

An optimiser is made once per compiled loss (a stylize.Stylizer: one image size) and its
settings, and serves every run of that size (the tiles of a level). The per-scale loop
(stylize.stylize) drives it:

    optimizer.start(x0, losses, gradient, best)     # a run from x0, whose losses and gradient are known
    stopped = optimizer.run(end, progress, best)    # iterations until progress.done == end (a checkpoint
                                                    #   or the last), or until it converged: True then
    optimizer.sync(best)                            # its best image so far into `best` (a Best)
    optimizer.finish(best)                          # after its last iteration

What the loop and the memory plan read of the class: `bytes_per_value` (its image-sized state,
bytes per image value), `restarts_at_checkpoints` (a checkpoint restarts it and loses its history:
checkpoints are then at least MIN_CHUNK iterations apart, see checkpoint_interval), `preload()`
(work to start before the targets' network passes), `prepare()` (work to do while the first
evaluation runs). Images are [1, H, W, 3] preprocessed float32 arrays.

TensorFlow and SciPy are imported where an optimiser is made or run, not at the top: the command
line checks its flags against OPTIMIZERS before TensorFlow starts (seconds).
"""
import importlib
import sys
import threading

import numpy as np
from tqdm import tqdm

from errors import NumericalError

MIN_CHUNK = 50      # SciPy's optimisers restart at each checkpoint and lose their history: never split finer
CHECK_EVERY = 10    # a device optimiser's losses are read back this often at least (NaN, convergence)


class Best:
    """The lowest-loss finite image seen so far (kept on the host). Offered arrays must not be
    changed afterwards by the caller: they are kept without a copy (this runs every iteration)."""

    def __init__(self, image):
        self.image, self.losses = image, None

    def offer(self, image, losses):
        if np.isfinite(losses[3]) and (self.losses is None or losses[3] < self.losses[3]):
            self.image, self.losses = image, losses


def check_finite(losses, iteration):
    if not np.all(np.isfinite(losses)):
        raise NumericalError(f"the loss became {losses[3]} at iteration {iteration}; the run was stopped "
                             "(lower --learning-rate or the loss weights)")


class Optimizer:
    name = ""
    restarts_at_checkpoints = False

    @classmethod
    def bytes_per_value(cls):
        """Memory of its image-sized state: bytes per image value."""
        raise NotImplementedError

    def __init__(self, stylizer, settings):
        self.stylizer = stylizer
        self.settings = settings

    @staticmethod
    def preload():
        """Start work needed a little later, in a thread (returned), or None."""
        return None

    def prepare(self):
        """Start work the first iteration needs, in a thread (returned) while the caller runs the
        first evaluation, or None."""
        return None

    @classmethod
    def checkpoint_interval(cls, every, iterations):
        """Iterations between checkpoints for --checkpoint-iterations `every` (None: none)."""
        return every

    def start(self, x0, losses, gradient, best):
        raise NotImplementedError

    def run(self, end, progress, best):
        raise NotImplementedError

    def sync(self, best):
        pass

    def best_image(self, best):
        """The best image so far (1xHxWx3, as the network sees it), read while the run goes on."""
        return best.image

    def finish(self, best):
        pass

    def iterations_done(self, counted):
        """Iterations this run has made, where the host counted `counted` (they differ once a
        device optimiser has stopped between two read-backs)."""
        return counted


# --- SciPy's optimisers ---------------------------------------------------------------------

SCIPY_L_BFGS_B = {"maxcor": 10, "maxls": 20, "gtol": 1e-5, "ftol": 2.22e-9, "maxfun": 15000}
SCIPY_CG = {"gtol": 1e-5}
FIRST_STEP_POLYAK = 0.25  # both L-BFGS's first step, as a share of Polyak's (lbfgs.LBFGS._first_step)


def _import_in_thread(module):
    """`module` imported in a thread, or None if it already is."""
    if module in sys.modules:
        return None
    return in_thread(lambda: importlib.import_module(module))


def in_thread(work):
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


def lbfgsb_scale(f, gradient, pair=None):
    """The c of L-BFGS-B's change of variable x = c z (see ScipyOptimizer), such that its first
    trial step, of length 1 in z, is in x: where a previous chunk left a recent correction pair
    (s, y), the step -(s.y / y.y) g of L-BFGS's initial inverse Hessian; at the start, for this
    loss that is never negative, a quarter of Polyak's step f / |g|^2 g, as the device L-BFGS's
    (near a minimum far above 0, as at a chunk's end, it would overshoot). 1 where neither is
    defined."""
    norm = float(np.linalg.norm(gradient))
    if not 0.0 < norm < np.inf:
        return 1.0
    sy = float(np.dot(*pair)) if pair is not None else 0.0
    if sy > 0.0:
        return sy / float(np.dot(pair[1], pair[1])) * norm
    return FIRST_STEP_POLYAK * f / norm if f > 0.0 and np.isfinite(f) else 1.0


class ScipyOptimizer(Optimizer):
    """An optimiser of scipy.optimize.minimize on float64 copies of the image, one minimize call
    per chunk between checkpoints (each restarts it).

    L-BFGS-B's first trial step has length 1 (it then grows it over about six evaluations for
    an image's gradient, at the start of each chunk). L-BFGS is unchanged by a uniform change of
    variable after its first step, so it optimises z = x / c, c = lbfgsb_scale(...) at the
    chunk's start (gtol scaled alike, so that it stops at the same gradient in x): its first step
    then usually needs one evaluation. CG runs on x itself (`scaled` False): scaled alike it ends
    higher after as many iterations."""
    method = ""
    options = {}
    scaled = False
    restarts_at_checkpoints = True

    @classmethod
    def bytes_per_value(cls):
        return 8 * 26  # float64 image-sized arrays SciPy's L-BFGS-B holds: 2 x maxcor history + work

    @staticmethod
    def preload():
        # Imported while the targets' network passes run (TensorFlow releases the GIL there), not
        # while the loss is traced, which needs the GIL as much as an import does.
        return _import_in_thread("scipy.optimize")

    @classmethod
    def checkpoint_interval(cls, every, iterations):
        if not every:
            return every
        chunk = max(every, MIN_CHUNK)
        if every < MIN_CHUNK:
            tqdm.write(f"warning: --checkpoint-iterations {every} raised to {chunk} for {cls.name}", file=sys.stderr)
        if chunk < iterations:
            tqdm.write(f"warning: checkpoints split the {cls.name} run every {chunk} iterations; each split "
                       "restarts the optimizer, which hurts convergence (--optim lbfgs keeps its history)",
                       file=sys.stderr)
        return chunk

    def start(self, x0, losses, gradient, best):
        self.shape = x0.shape
        # The most recent evaluation (SciPy's callback point is almost always that one), at first x0's.
        self.last = {"x": x0.astype(np.float64).ravel(), "losses": losses,
                     "gradient": np.asarray(gradient, np.float64).ravel()}
        self.chunk_start = {}  # z, c and the evaluation where the chunk starts (SciPy evaluates it again)
        self.pair = None  # a recent correction pair of the previous chunk, in x
        self.result = None  # the previous chunk's
        self.progress = None

    def _loss_and_grad(self, z):
        import tensorflow as tf
        c = self.chunk_start["c"]
        last = self.last
        if np.array_equal(z, self.chunk_start["z"]):
            last.update(self.chunk_start["evaluation"])
        else:
            x = z * c
            losses, grad = self.stylizer.loss_and_grad(tf.constant(x.reshape(self.shape), dtype=tf.float32))
            last["x"], last["losses"], last["gradient"] = x, losses.numpy(), grad.numpy().astype(np.float64).ravel()
            check_finite(last["losses"], self.progress.done + 1)
        return float(last["losses"][3]), last["gradient"] * c

    def run(self, end, progress, best):
        import scipy.optimize
        from threadpoolctl import threadpool_limits
        self.progress = progress
        last, c_old = self.last, self.chunk_start.get("c")
        if self.result is not None:  # the previous chunk's end: this chunk starts there
            if not np.array_equal(self.result.x * c_old, last["x"]):
                self._loss_and_grad(self.result.x.copy())  # the scale needs f and g there
            if self.scaled and len(self.result.hess_inv.sk):
                self.pair = (self.result.hess_inv.sk[-1] * c_old, self.result.hess_inv.yk[-1] / c_old)

        def callback(intermediate_result):
            if not np.array_equal(intermediate_result.x * self.chunk_start["c"], last["x"]):
                self._loss_and_grad(intermediate_result.x.copy())
            best.offer(last["x"].reshape(self.shape), last["losses"])
            progress.advance(last["losses"])

        before = progress.done
        maxiter = end - before
        # SciPy's vector operations gain nothing from BLAS threads, and OpenBLAS threads left
        # spinning after them slow the next TensorFlow evaluation. One thread also makes the
        # scale's dot products repeat on any machine (a sum split over threads rounds
        # differently, and L-BFGS amplifies the last bit).
        with threadpool_limits(limits=1, user_api="blas"):
            c = lbfgsb_scale(float(last["losses"][3]), last["gradient"], self.pair) if self.scaled else 1.0
            self.chunk_start.update(c=c, z=last["x"] / c, evaluation=dict(last))
            self.result = scipy.optimize.minimize(
                self._loss_and_grad, self.chunk_start["z"], jac=True, method=self.method, callback=callback,
                options=dict(self.options, maxiter=maxiter, gtol=self.options["gtol"] * c))
        return progress.done - before < maxiter  # converged (or the line search gave up)


class ScipyLBFGSB(ScipyOptimizer):
    """SciPy's L-BFGS-B, as the original tool ran it."""
    name = "lbfgs-scipy"
    method = "L-BFGS-B"
    options = SCIPY_L_BFGS_B
    scaled = True


class ScipyCG(ScipyOptimizer):
    name = "cg"
    method = "CG"
    options = SCIPY_CG


# --- optimisers on the device -----------------------------------------------------------------

class DeviceOptimizer(Optimizer):
    """An optimiser whose state and best image stay on the device, one compiled call per
    iteration (`step`). The host reads back only to print, checkpoint, or check every CHECK_EVERY
    iterations for a non-finite loss or a stop. Subclasses set `state` (an object with `step`,
    `reset(x0, losses, gradient)`, `trace`, `traced` and the variables `best_image`, `best_losses`,
    `last_losses`; `stopped` and `iterations` if it can stop by itself)."""

    def prepare(self):
        """Trace, in a thread, what the first iteration needs while the caller runs the first
        evaluation (TensorFlow releases the GIL while it computes)."""
        if self.state.traced():
            return None
        self.stylizer.loss_and_grad.get_concrete_function()  # traced here first: the step calls it
        return in_thread(self.state.trace)

    def start(self, x0, losses, gradient, best):
        import tensorflow as tf
        self.state.reset(tf.constant(x0), tf.constant(losses), gradient)

    def run(self, end, progress, best):
        stopped = getattr(self.state, "stopped", None)
        for i in range(progress.done + 1, end + 1):
            self.state.step()
            if not (progress.prints(i) or i % CHECK_EVERY == 0 or i == end):
                progress.advance()
                continue
            losses = self.state.last_losses.numpy()
            check_finite(losses, i)
            progress.advance(losses)
            if stopped is not None and stopped.numpy():
                return True
        return False

    def sync(self, best):
        best.image, best.losses = self.state.best_image.numpy(), self.state.best_losses.numpy()

    def best_image(self, best):
        return self.state.best_image.numpy()

    def iterations_done(self, counted):
        return int(self.state.iterations.numpy())


class _AdamState:
    """Adam (Keras' update rule) on an image variable, with the best-image bookkeeping, as one
    compiled step. With `settings.average` > 0 it also keeps the exponential moving average of
    the iterates (bias-corrected, as Adam's moments: the average of the iterates so far weighted
    by decay^age, over the weights' sum)."""

    def __init__(self, stylizer, settings):
        import tensorflow as tf
        shape = stylizer.shape
        self.image, self.m, self.v, self.best_image = (tf.Variable(tf.zeros(shape)) for _ in range(4))
        self.t = tf.Variable(0.0)
        self.decay = settings.average
        self.average = tf.Variable(tf.zeros(shape)) if self.decay else None
        decay = tf.constant(self.decay, tf.float32)
        self.best_losses, self.last_losses = tf.Variable(tf.zeros([4])), tf.Variable(tf.zeros([4]))
        lr, b1, b2, eps = (tf.constant(v, tf.float32) for v in
                           (settings.learning_rate, settings.beta1, settings.beta2, settings.eps))

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
            if self.average is not None:
                self.average.assign_add((self.image - self.average) * (1.0 - decay))
        self.step = step
        self.trace = step.get_concrete_function
        self.traced = lambda: step.experimental_get_tracing_count() > 0

    def reset(self, x0, losses, gradient):
        import tensorflow as tf
        for variable, value in ((self.image, x0), (self.best_image, x0), (self.best_losses, losses),
                                (self.last_losses, losses)):
            variable.assign(value)
        for variable in (self.m, self.v) + ((self.average,) if self.average is not None else ()):
            variable.assign(tf.zeros_like(variable))
        self.t.assign(0.0)

    def averaged(self):
        """The moving average of the iterates so far (x0 before the first step)."""
        t = float(self.t.numpy())
        return self.image.numpy() if t == 0 else self.average.numpy() / (1.0 - self.decay ** t)


class Adam(DeviceOptimizer):
    """Adam: --learning-rate, --beta1, --beta2, --eps; one step per iteration. Its result is the
    iterate of the lowest loss, or with --average the moving average of the iterates (at each
    checkpoint too), whatever its loss."""
    name = "adam"

    @classmethod
    def bytes_per_value(cls):
        return 7 * 4  # float32: image, m, v, best image, gradient, update, average (with --average)

    def __init__(self, stylizer, settings):
        super().__init__(stylizer, settings)
        self.state = _AdamState(stylizer, settings)

    def sync(self, best):
        if not self.state.decay:
            return super().sync(best)
        import tensorflow as tf
        best.image = self.state.averaged()
        best.losses = self.stylizer.loss_and_grad(tf.constant(best.image))[0].numpy()

    def finish(self, best):
        if self.state.decay:
            return  # sync, just before, gave the average
        # The loss of the final image (after the last update) is not known yet.
        losses, _ = self.stylizer.loss_and_grad(self.state.image)
        best.offer(self.state.image.numpy(), losses.numpy())

    def iterations_done(self, counted):
        return counted


class DeviceLBFGS(DeviceOptimizer):
    """L-BFGS in TensorFlow (lbfgs.py): SciPy's algorithm, its state on the device, its history
    kept over checkpoints."""
    name = "lbfgs"

    @classmethod
    def bytes_per_value(cls):
        import lbfgs
        return lbfgs.STATE_BYTES_PER_VALUE

    def __init__(self, stylizer, settings):
        super().__init__(stylizer, settings)
        import lbfgs
        # The loss is a sum of squares: its first step is a share of Polyak's (lbfgs.LBFGS._first_step)
        self.state = lbfgs.LBFGS(stylizer.loss_and_grad, stylizer.shape, polyak_share=FIRST_STEP_POLYAK)


OPTIMIZERS = {cls.name: cls for cls in (DeviceLBFGS, ScipyLBFGSB, ScipyCG, Adam)}
NAMES = tuple(OPTIMIZERS)


def make(stylizer, settings):
    """The stylizer's optimiser for these settings (made once, reused for every run of its size)."""
    cls = OPTIMIZERS[settings.optim]
    key = (cls.name, settings) if cls is Adam else cls.name
    if key not in stylizer.optimizers:
        stylizer.optimizers[key] = cls(stylizer, settings)
    return stylizer.optimizers[key]
