"""L-BFGS that stays on the device (--optim lbfgs).

The algorithm of SciPy's L-BFGS-B (--optim lbfgs-scipy) without bounds: 10 correction pairs, the Moré-Thuente line
search of MINPACK-2 (dcsrch: it ends on a step that satisfies the strong Wolfe conditions) with
L-BFGS-B's tolerances, a first step of length 1 (or, for a loss known never to be negative, a
share of Polyak's step: see _first_step), at most 20 evaluations per line search, a restart from
steepest descent when a line search fails, and the same stopping tests. The image, its gradient,
the correction pairs and the best image stay on the device. Every evaluation of a line search is
one compiled call (`evaluate`): begin an iteration if the last one ended, the loss and gradient
at the trial point, the line search's judgement, and the iteration's end where the line search
ends, as it mostly does at its first trial point. Where the search goes on, one more call sets
its next trial point (and one ends a failed search). The host reads back one number per call
(whether the line search, the iteration or the run ended) and otherwise only what it prints,
checkpoints or checks. The state lives in variables, so a run split at checkpoints keeps its
curvature history.

Precision: the state (image, gradient, direction, pairs) is float32 by default, the precision
the network computes the loss and gradient in; the scalars (dot products once summed, rho, the
line search) are float64. Each pair's s is the step actually taken, the new image minus the old
as rounded, not the step length times the direction, which would drift away from SciPy's. With
`dtype=tf.float64` a run follows SciPy's L-BFGS-B to rounding (a test checks it step for step).

The line search's loop runs on the host, one compiled call per evaluation, because the loss
evaluated inside a tf.while_loop does not repeat to the bit on a CPU from one compiled copy to
the next (oneDNN's kernels inside the loop may split their work differently, and L-BFGS amplifies
the last bit): called once per compiled call, outside any loop, it repeats. The price is one
read-back per evaluation, a synchronisation that is small beside a network pass.
(TensorFlow Probability's `lbfgs_minimize` runs its whole loop in one call, so it could not stop
at a checkpoint or a printed line without restarting, and its line search is Hager-Zhang's.)
The performance document (benchmarks/README.md) has the figures and what else was tried.
"""
from typing import NamedTuple

import tensorflow as tf

MEMORY = 10              # correction pairs (L-BFGS-B's maxcor)
MAX_EVALUATIONS = 20     # per line search (maxls)
FTOL, GTOL, XTOL = 1e-3, 0.9, 0.1  # dcsrch's sufficient decrease, curvature and interval tolerances
STEP_MAX = 1e10
PGTOL = 1e-5             # stop when no gradient component is larger (SciPy's gtol)
FACTR = 2.22e-9          # stop when f fell by less than this, relatively (SciPy's ftol)
F64 = tf.float64
STATE = tf.float32       # the image, gradient, direction and pairs (see the module's docstring)
# Image-sized float32 arrays of the state: 2 x 10 pairs, the image, gradient, direction, trial
# point, best image, the gradient held for the line search's rarer path, and 4 temporaries.
STATE_BYTES_PER_VALUE = 4 * 30


def _dot(a, b, axes=None):
    return tf.cast(tf.reduce_sum(a * b, axes), F64)  # a float64 scalar


def _subtract(variable, a, x):
    """variable -= a * x, in place and in one pass (the kernel of plain gradient descent)."""
    tf.raw_ops.ResourceApplyGradientDescent(var=variable.handle, alpha=a, delta=x)


def _sign(negative):
    return tf.where(negative, tf.constant(-1.0, F64), tf.constant(1.0, F64))


def _gamma(theta, a, b):
    """The root in the minimiser of the cubic interpolating two points (clamped at 0 for
    rounding, where dcstep clamps it in one case of four)."""
    s = tf.reduce_max(tf.abs(tf.stack([theta, a, b])))
    return s * tf.sqrt(tf.maximum(tf.square(theta / s) - (a / s) * (b / s), 0.0))


def _dcstep(stx, fx, dx, sty, fy, dy, stp, fp, dp, brackt, stpmin, stpmax):
    """MINPACK-2's dcstep on float64 scalars: a safeguarded trial step and the new interval.
    The graph has no cheap branches, so every case is computed and one is selected."""
    right = stp > stx
    theta_x = 3.0 * (fx - fp) / (stp - stx) + dx + dp

    # Case 1, a higher function value: the minimum is bracketed.
    g1 = _gamma(theta_x, dx, dp) * _sign(stp < stx)
    r1 = ((g1 - dx) + theta_x) / (((g1 - dx) + g1) + dp)
    stpc1 = stx + r1 * (stp - stx)
    stpq1 = stx + ((dx / ((fx - fp) / (stp - stx) + dx)) / 2.0) * (stp - stx)
    stpf1 = tf.where(tf.abs(stpc1 - stx) <= tf.abs(stpq1 - stx), stpc1, stpc1 + (stpq1 - stpc1) / 2.0)

    # Case 2, lower value and derivatives of opposite signs: bracketed.
    g2 = _gamma(theta_x, dx, dp) * _sign(right)
    r2 = ((g2 - dp) + theta_x) / (((g2 - dp) + g2) + dx)
    stpc2 = stp + r2 * (stx - stp)
    secant = stp + (dp / (dp - dx)) * (stx - stp)
    stpf2 = tf.where(tf.abs(stpc2 - stp) > tf.abs(secant - stp), stpc2, secant)

    # Case 3, lower value, same signs, the derivative decreases in magnitude.
    g3 = _gamma(theta_x, dx, dp) * _sign(right)
    r3 = ((g3 - dp) + theta_x) / ((g3 + (dx - dp)) + g3)
    stpc3 = tf.where((r3 < 0.0) & (g3 != 0.0), stp + r3 * (stx - stp), tf.where(right, stpmax, stpmin))
    bracketed3 = tf.where(tf.abs(stpc3 - stp) < tf.abs(secant - stp), stpc3, secant)
    bracketed3 = tf.where(right, tf.minimum(stp + 0.66 * (sty - stp), bracketed3),
                          tf.maximum(stp + 0.66 * (sty - stp), bracketed3))
    open3 = tf.clip_by_value(tf.where(tf.abs(stpc3 - stp) > tf.abs(secant - stp), stpc3, secant), stpmin, stpmax)
    stpf3 = tf.where(brackt, bracketed3, open3)

    # Case 4, lower value, same signs, the derivative does not decrease in magnitude.
    theta_y = 3.0 * (fp - fy) / (sty - stp) + dy + dp
    g4 = _gamma(theta_y, dy, dp) * _sign(stp > sty)
    r4 = ((g4 - dp) + theta_y) / (((g4 - dp) + g4) + dy)
    stpf4 = tf.where(brackt, stp + r4 * (sty - stp), tf.where(right, stpmax, stpmin))

    case1 = fp > fx
    opposite = tf.sign(dp) * tf.sign(dx) < 0.0
    case2 = ~case1 & opposite
    case3 = ~case1 & ~opposite & (tf.abs(dp) < tf.abs(dx))
    stpf = tf.where(case1, stpf1, tf.where(case2, stpf2, tf.where(case3, stpf3, stpf4)))

    # The new interval: [stx, sty] keeps the lowest point at stx.
    new_y = case1 | opposite
    sty, fy, dy = (tf.where(case1, p, tf.where(new_y, x, y)) for p, x, y in ((stp, stx, sty), (fp, fx, fy), (dp, dx, dy)))
    stx, fx, dx = (tf.where(case1, x, p) for p, x in ((stp, stx), (fp, fx), (dp, dx)))
    return stx, fx, dx, sty, fy, dy, stpf, brackt | case1 | case2


class _Search(NamedTuple):
    """dcsrch's saved state (MINPACK-2's isave/dsave), float64 scalars but `brackt`."""
    brackt: tf.Tensor
    stage: tf.Tensor
    finit: tf.Tensor
    ginit: tf.Tensor
    width: tf.Tensor
    width1: tf.Tensor
    stx: tf.Tensor
    fx: tf.Tensor
    gx: tf.Tensor
    sty: tf.Tensor
    fy: tf.Tensor
    gy: tf.Tensor
    stmin: tf.Tensor
    stmax: tf.Tensor


def _search_start(stp, f0, g0):
    zero = tf.constant(0.0, F64)
    width = tf.constant(STEP_MAX, F64)
    return _Search(tf.constant(False), tf.constant(1.0, F64), f0, g0, width, width / 0.5,
                   zero, f0, g0, zero, f0, g0, zero, stp + 4.0 * stp)


def _search_done(s, stp, f, g):
    """Whether dcsrch ends the search at the step just evaluated: it satisfies the strong Wolfe
    conditions, or (dcsrch's warnings) no further progress is possible."""
    gtest = FTOL * s.ginit
    ftest = s.finit + stp * gtest
    return ((s.brackt & ((stp <= s.stmin) | (stp >= s.stmax))) |
            (s.brackt & (s.stmax - s.stmin <= XTOL * s.stmax)) |
            ((stp == STEP_MAX) & (f <= ftest) & (g <= gtest)) |
            ((stp == 0.0) & ((f > ftest) | (g >= gtest))) |
            ((f <= ftest) & (tf.abs(g) <= GTOL * -s.ginit)))


def _search_next(s, stp, f, g):
    """dcsrch after an evaluation at `stp` that did not end the search: (state, next step)."""
    gtest = FTOL * s.ginit
    ftest = s.finit + stp * gtest
    stage = tf.where((s.stage == 1.0) & (f <= ftest) & (g >= 0.0), tf.constant(2.0, F64), s.stage)

    # In the first stage, while the value is above the sufficient-decrease line but below the
    # lowest one, dcstep works on the function shifted by that line.
    shift = tf.where((stage == 1.0) & (f <= s.fx) & (f > ftest), gtest, tf.zeros_like(gtest))
    stx, fx, gx, sty, fy, gy, new, brackt = _dcstep(
        s.stx, s.fx - s.stx * shift, s.gx - shift, s.sty, s.fy - s.sty * shift, s.gy - shift,
        stp, f - stp * shift, g - shift, s.brackt, s.stmin, s.stmax)
    fx, fy, gx, gy = fx + stx * shift, fy + sty * shift, gx + shift, gy + shift

    # Bisect when the interval does not shrink fast enough.
    bisect = brackt & (tf.abs(sty - stx) >= 0.66 * s.width1)
    new = tf.where(bisect, stx + 0.5 * (sty - stx), new)
    width1 = tf.where(brackt, s.width, s.width1)
    width = tf.where(brackt, tf.abs(sty - stx), s.width)
    stmin = tf.where(brackt, tf.minimum(stx, sty), new + 1.1 * (new - stx))
    stmax = tf.where(brackt, tf.maximum(stx, sty), new + 4.0 * (new - stx))
    new = tf.clip_by_value(new, 0.0, STEP_MAX)
    stuck = brackt & ((new <= stmin) | (new >= stmax) | (stmax - stmin <= XTOL * stmax))
    new = tf.where(stuck, stx, new)  # no progress possible: the best point of the search

    return _Search(brackt, stage, s.finit, s.ginit, width, width1, stx, fx, gx, sty, fy, gy, stmin, stmax), new


def _pack(search):
    return tf.stack([tf.cast(v, F64) for v in search])


def _unpack(vector):
    values = tf.unstack(vector)
    return _Search(values[0] > 0.5, *values[1:])


class LBFGS:
    """L-BFGS on an image: `reset(x0, losses, gradient)` starts a run (the losses and gradient
    at x0 are already known), each `step()` is one iteration. Made once per stylizer (its
    size) and reset for every run, so the tiles of a level share one trace. Variables the
    host reads: `best_image`, `best_losses`, `last_losses` (of the current image, or of the
    evaluation that was not finite), `iterations` (accepted steps: what --iterations counts),
    `evaluations` and `stopped` (converged, or a line search failed twice, or the loss was not
    finite).

    An iteration is a loop of evaluations, each one compiled call, `evaluate`: `_begin` (if the
    last iteration ended: the direction and the first trial point), the loss and gradient at the
    trial point `trial` (the caller's compiled function), `_judge` (dcsrch's verdict on the
    point), then `_end` where the line search ends, which updates the image and the pairs and
    tests for a stop. Where it goes on (rarely: most iterations end at their first trial point)
    the evaluation is held, and the host calls `search_on`, which sets the next trial point, or
    says the search failed, and then `end_failed`. `polyak_share`: for a loss that is never
    negative, the first step as this share of Polyak's (None: L-BFGS-B's step of length 1).
    `dtype` is the state's precision (see the module's docstring)."""

    def __init__(self, loss_and_grad, shape, polyak_share=None, dtype=STATE):
        self.loss_and_grad = loss_and_grad
        self.polyak_share = polyak_share
        # The image, its gradient, the direction
        self.x, self.g, self.d = (tf.Variable(tf.zeros(shape, dtype)) for _ in range(3))
        self.trial = tf.Variable(tf.zeros(shape))  # float32: where the next evaluation is
        # x + stp d in the state's precision (the same variable in float32)
        self.trial_x = tf.Variable(tf.zeros(shape, dtype)) if dtype != tf.float32 else self.trial
        self.best_image = tf.Variable(tf.zeros(shape))
        # The pairs newest first, one variable each: dense reads and writes only (slicing one
        # stacked variable made every read of it a copy of all ten pairs).
        self.s = [tf.Variable(tf.zeros(shape, dtype)) for _ in range(MEMORY)]
        self.y = [tf.Variable(tf.zeros(shape, dtype)) for _ in range(MEMORY)]
        self.rho = tf.Variable(tf.zeros([MEMORY], F64))  # 1 / s.y per pair; 0 marks an empty slot
        self.f = tf.Variable(tf.constant(0.0, F64))
        self.last_losses, self.best_losses = tf.Variable(tf.zeros([4])), tf.Variable(tf.zeros([4]))
        self.iterations = tf.Variable(0)
        self.evaluations = tf.Variable(0)  # of the loss, in all (benchmarks report it per iteration)
        self.stopped = tf.Variable(False)
        # The line search under way: dcsrch's state, the trial step, the evaluations it made (k),
        # g.d at its start (gd0) and now (gd: a restart from steepest descent changes it).
        self.search = tf.Variable(tf.zeros([len(_Search._fields)], F64))
        self.stp, self.gd0, self.gd = (tf.Variable(tf.constant(0.0, F64)) for _ in range(3))
        self.k = tf.Variable(0)
        self.descent, self.can_restart, self.restarted = (tf.Variable(False) for _ in range(3))
        self.trial_slope = tf.Variable(tf.constant(0.0, F64))  # g.d at the trial point, for search_on
        self.pending = tf.Variable(False)  # an iteration ended: the next evaluation begins a new one
        # An evaluation that did not end its line search, for the rarer path's calls
        self.held_losses, self.held_grad = tf.Variable(tf.zeros([4])), tf.Variable(tf.zeros(shape, dtype))
        # One compiled call per evaluation, the loss inside (as Adam's step): each call of a
        # compiled function costs Python and dispatch time. The line search's rarer path is its
        # own calls, traced only when first needed (tracing is start-up time). Graph control flow
        # is written out (autograph off).
        self.evaluate = tf.function(self._evaluate, autograph=False)
        self.search_on = tf.function(lambda: self._search_on(self.held_losses.read_value()), autograph=False)
        self.end_failed = tf.function(self._end_failed, autograph=False)
        self._stopped = False  # the host's copy of `stopped`

    def step(self):
        """One iteration: evaluations until the line search ends (nothing once stopped). The host
        reads back one number per call: whether the line search, the iteration or the run ended."""
        while not self._stopped:
            code = int(self.evaluate())
            if code == 0:  # the line search goes on, or fails
                if not bool(self.search_on()):
                    continue
                code = 2 if bool(self.end_failed()) else 1
            self._stopped = code == 2
            return

    def _evaluate(self):
        """Begin an iteration if the last one ended (the direction, the first trial point), evaluate
        the trial point, judge it (dcsrch), and end the iteration where the line search ends (the
        update, the pairs, the stopping tests); else hold the evaluation for `search_on`. Returns
        0 (the line search goes on), 1 (the iteration ended) or 2 (the run stopped). The branches
        follow each other, none inside another: tracing nested branches costs several times as
        much per operation (each level captures the variables again), and tracing is start-up
        time."""
        false = lambda: tf.constant(False)  # noqa: E731
        tf.cond(self.pending.read_value(), self._begin, false)
        losses, grad = self.loss_and_grad(self.trial)
        done, grad = self._judge(losses, grad)

        def hold():  # rarely: most iterations end at their first trial point
            self.held_losses.assign(losses)
            self.held_grad.assign(grad)
            return tf.constant(False)
        tf.cond(done, false, hold)
        stopped = tf.cond(done, lambda: self._end(losses, grad, tf.constant(False)), lambda: self.stopped.read_value())
        self.pending.assign(done & ~stopped)
        return tf.where(stopped, 2, tf.where(done, 1, 0))

    def _end_failed(self):
        """The end of an iteration whose line search failed (after `search_on`)."""
        stopped = self._end(self.held_losses.read_value(), self.held_grad.read_value(), tf.constant(True))
        self.pending.assign(~stopped)
        return stopped

    def trace(self):
        """Trace the evaluation: it can be done in another thread, ahead of the first (it needs only
        the shape)."""
        self.evaluate.get_concrete_function()

    def traced(self):
        return self.evaluate.experimental_get_tracing_count() > 0

    def reset(self, x0, losses, gradient):
        for variable, value in ((self.x, tf.cast(x0, self.x.dtype)), (self.best_image, x0),
                                (self.g, tf.cast(gradient, self.g.dtype)), (self.last_losses, losses),
                                (self.best_losses, losses)):
            variable.assign(value)
        self.f.assign(tf.cast(losses[3], F64))
        self.rho.assign(tf.zeros_like(self.rho))
        self.iterations.assign(0)
        self.evaluations.assign(0)
        self._stopped = bool(tf.reduce_max(tf.abs(gradient)) <= PGTOL)
        self.stopped.assign(self._stopped)
        self.pending.assign(True)  # the first evaluation begins the first iteration

    def _direction(self):
        """d = -H g by the two-loop recursion over the stored pairs (empty ones, rho 0, do nothing),
        computed in place in `d` (one pass per vector update, where `q - alpha * y` would take
        two and a new buffer); the second loop runs on -q, so d needs no negation at the end."""
        d = self.d
        d.assign(self.g)
        # Fewer traced operations (tracing is start-up time): one constant for the dot products'
        # axes, each pair read once, reads without read_value's extra identity.
        axes = tf.constant(list(range(len(d.shape))))
        rhos = tf.unstack(tf.cast(self.rho, d.dtype))
        pairs = [(s.value(), y.value()) for s, y in zip(self.s, self.y)]
        alphas = []
        for (s, y), rho in zip(pairs, rhos):  # newest first
            alpha = rho * tf.reduce_sum(s * d.value(), axes)
            _subtract(d, alpha, y)  # q -= alpha y
            alphas.append(alpha)
        rho, y = rhos[0], pairs[0][1]  # the newest pair
        gamma = tf.where(rho > 0.0, 1.0 / (rho * tf.reduce_sum(y * y, axes)), tf.ones_like(rho))  # s.y / y.y
        d.assign(-gamma * d.value())  # r = gamma q, held as -r
        for (s, y), rho, alpha in reversed(list(zip(pairs, rhos, alphas))):
            beta = -rho * tf.reduce_sum(y * d.value(), axes)
            _subtract(d, alpha - beta, s)  # r += (alpha - beta) s

    def _first_step(self, gd):
        """The first iteration's trial step along d = -g. L-BFGS-B's is a step of length 1, tiny
        beside an image's gradient: its line search then grows it over about six evaluations.
        For a loss that is never negative, a share of Polyak's step f / |g|^2 (where the linear
        model reaches 0): for a sum of squares the line minimum lies below twice Polyak's step
        (Gauss-Newton model), so a quarter of it meets the strong Wolfe conditions unless the
        minimum is below an eighth of it, and the line search usually ends at once."""
        scipy_step = 1.0 / tf.sqrt(-gd)
        if self.polyak_share is None:
            return scipy_step
        f = self.f.read_value()
        return tf.where(f > 0.0, self.polyak_share * f / -gd, scipy_step)

    def _set_trial(self, stp, d):
        self.stp.assign(stp)
        # At the iteration's end this is the new image, and its float32 copy the best image, each
        # taken without another pass over the vectors.
        trial = self.x + tf.cast(stp, d.dtype) * d
        if self.trial_x is not self.trial:  # float64 state: the loss is computed in float32
            self.trial_x.assign(trial)
        self.trial.assign(tf.cast(trial, tf.float32))

    def _begin(self):
        """An iteration's start: the direction, the line search's first trial point."""
        g = self.g.read_value()
        self._direction()
        gd = _dot(g, self.d)
        descent = gd < 0.0

        def steepest():
            self.d.assign(-g)
            return -_dot(g, g)
        # Not a descent direction: steepest descent, and forget the pairs. (Branches, not
        # tf.where: a where over image-sized vectors is a pass over them at every iteration.)
        gd = tf.cond(descent, lambda: gd, steepest)
        d = self.d.read_value()
        stp = tf.minimum(tf.where(self.iterations == 0, self._first_step(gd), tf.ones_like(gd)), STEP_MAX)
        self.descent.assign(descent)
        self.can_restart.assign(descent & tf.reduce_any(self.rho > 0.0))
        self.restarted.assign(False)
        self.gd0.assign(gd)
        self.gd.assign(gd)
        self.k.assign(0)
        self.search.assign(_pack(_search_start(stp, self.f.read_value(), gd)))
        self._set_trial(stp, d)
        return tf.constant(True)

    def _judge(self, losses, grad):
        """Whether dcsrch ends the line search at the trial point just evaluated (or its loss or
        slope is not finite), and the point's gradient in the state's precision."""
        self.evaluations.assign_add(1)
        grad = tf.cast(grad, self.g.dtype)
        f, dg = tf.cast(losses[3], F64), _dot(grad, self.d)
        self.trial_slope.assign(dg)
        search = _unpack(self.search.read_value())
        done = _search_done(search, self.stp.read_value(), f, dg) | ~tf.math.is_finite(f) | ~tf.math.is_finite(dg)
        return done, grad

    def _search_on(self, losses):
        """The line search's next trial point after an evaluation that did not end it (False), or,
        when it has made its evaluations, its failure (True: the host then ends the iteration).
        (Most iterations end at their first trial point and never come here.)"""
        search, f, dg = _unpack(self.search.read_value()), tf.cast(losses[3], F64), self.trial_slope.read_value()
        stp, d, gd, k, restarted = (v.read_value() for v in (self.stp, self.d, self.gd, self.k, self.restarted))
        search_, stp_ = _search_next(search, stp, f, dg)
        # As L-BFGS-B: a line search that fails forgets the pairs and tries steepest
        # descent; if that fails too (or there were no pairs), the run stops.
        exhausted = k + 1 >= MAX_EVALUATIONS
        restart = exhausted & self.can_restart & ~restarted
        one = tf.ones_like(stp)
        g = self.g.read_value()
        gd_ = tf.where(restart, -_dot(g, g), gd)
        search_ = tf.nest.map_structure(lambda fresh, old: tf.where(restart, fresh, old),
                                        _search_start(one, self.f.read_value(), gd_), search_)
        failed = exhausted & ~restart
        d_ = tf.where(restart, -g, d)
        self.k.assign(tf.where(restart, 0, k + 1))
        self.restarted.assign(restarted | restart)
        self.d.assign(d_)
        self.gd.assign(gd_)
        self.search.assign(_pack(search_))
        self._set_trial(tf.where(restart, one, stp_), d_)
        return failed

    def _end(self, losses, grad, failed):
        """An iteration's end, at the trial point just evaluated (where the line search ended, or
        `failed`): the update, the pairs, the stopping tests. Returns whether the run stopped
        (if not, the next evaluation begins an iteration)."""
        stp, d = self.stp.read_value(), self.d.read_value()
        was_stopped = self.stopped.read_value()
        g, f0, gd0 = self.g.read_value(), self.f.read_value(), self.gd0.read_value()
        f = tf.cast(losses[3], F64)
        finite = tf.math.is_finite(f)
        accepted = ~was_stopped & ~failed & finite
        s = self.trial_x - self.x  # the step taken, rounding included (not stp d: see the module's docstring)
        y = grad - g
        sy = _dot(s, y)
        keep = accepted & (sy > 2.2e-16 * -gd0 * stp)  # L-BFGS-B skips pairs without enough curvature
        rho = tf.where(~self.descent | self.restarted, tf.zeros_like(self.rho), self.rho)

        def store():  # shift out the oldest pair
            for pairs, new in ((self.s, s), (self.y, y)):
                for older, newer in zip(pairs[:0:-1], pairs[-2::-1]):
                    older.assign(newer)
                pairs[0].assign(new)
            return tf.concat([[1.0 / sy], rho[:-1]], 0)

        self.rho.assign(tf.cond(keep, store, lambda: rho))

        better = accepted & (losses[3] < self.best_losses[3])  # the line search ends lower but for its warnings

        def update():
            self.x.assign(self.trial_x)  # x + s
            self.g.assign(grad)
            self.f.assign(f)
            return tf.constant(True)

        def keep_best():
            self.best_image.assign(self.trial)  # x in float32
            return tf.constant(True)

        # Two branches one after the other, not one inside the other: tracing time
        tf.cond(accepted, update, lambda: tf.constant(False))
        tf.cond(better, keep_best, lambda: tf.constant(False))
        self.best_losses.assign(tf.where(better, losses, self.best_losses))
        self.iterations.assign_add(tf.cast(accepted, tf.int32))
        converged = accepted & ((tf.reduce_max(tf.abs(grad)) <= PGTOL) |
                                (f0 - f <= FACTR * tf.maximum(tf.maximum(tf.abs(f0), tf.abs(f)), 1.0)))
        # A loss that is not finite stops the run; the host sees it in last_losses.
        stopped = was_stopped | converged | failed | ~finite
        self.stopped.assign(stopped)
        self.last_losses.assign(tf.where(accepted | ~finite, losses, self.last_losses))
        return stopped
