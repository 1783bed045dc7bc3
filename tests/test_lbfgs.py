"""The device L-BFGS (--optim lbfgs, lbfgs.py) against SciPy's L-BFGS-B (--optim lbfgs-scipy)."""
import numpy as np
import pytest
import scipy.optimize
import tensorflow as tf

import images
import lbfgs
from conftest import input_path
from stylize import LossWeights, Stylizer, stylize

N = 40


def rosenbrock():
    """SciPy's Rosenbrock function as a loss-and-gradient function of the four-losses form."""
    @tf.function(input_signature=[tf.TensorSpec([N], tf.float32)], autograph=False)
    def loss_and_grad(x):
        with tf.GradientTape() as tape:
            tape.watch(x)
            total = tf.reduce_sum(100.0 * tf.square(x[1:] - tf.square(x[:-1])) + tf.square(1.0 - x[:-1]))
        return tf.stack([total, 0.0, 0.0, total]), tape.gradient(total, x)
    return loss_and_grad


def start():
    x0 = np.full(N, -1.2, np.float32)
    x0[1::2] = 1.0
    return x0


def test_follows_scipy_lbfgsb_step_for_step():
    """Same algorithm (two-loop recursion over 10 pairs, Moré-Thuente line search with
    L-BFGS-B's tolerances, first step of length 1): the same values iteration by iteration."""
    loss_and_grad = rosenbrock()
    x0 = start()
    optimizer = lbfgs.LBFGS(loss_and_grad, (N,))
    losses, gradient = loss_and_grad(tf.constant(x0))
    optimizer.reset(tf.constant(x0), losses, gradient)
    ours = []
    for _ in range(40):
        optimizer.step()
        ours.append(float(optimizer.f.numpy()))

    def function(x):
        losses, gradient = loss_and_grad(tf.constant(x, tf.float32))
        return float(losses[3]), gradient.numpy().astype(np.float64)
    theirs = []
    scipy.optimize.minimize(function, x0.astype(np.float64), jac=True, method="L-BFGS-B",
                            options={"maxiter": 40, "maxcor": 10, "gtol": 1e-5, "ftol": 2.22e-9},
                            callback=lambda intermediate_result: theirs.append(intermediate_result.fun))
    assert len(theirs) == 40 and int(optimizer.iterations.numpy()) == 40
    np.testing.assert_allclose(ours, theirs, rtol=1e-4)
    assert ours[-1] < 0.01 * ours[0]
    evaluations = int(optimizer.evaluations.numpy())
    assert 40 <= evaluations < 80


def test_stops_when_converged():
    """A quadratic bowl converges in a few iterations; then step() does nothing and the
    optimizer says it stopped (the host stops calling it)."""
    target = tf.constant(np.linspace(-3, 3, N), tf.float32)

    @tf.function(input_signature=[tf.TensorSpec([N], tf.float32)], autograph=False)
    def loss_and_grad(x):
        total = tf.reduce_sum(tf.square(x - target))
        return tf.stack([total, 0.0, 0.0, total]), 2.0 * (x - target)
    optimizer = lbfgs.LBFGS(loss_and_grad, (N,))
    x0 = tf.zeros([N])
    optimizer.reset(x0, *loss_and_grad(x0))
    for _ in range(30):
        optimizer.step()
    assert bool(optimizer.stopped.numpy())
    assert int(optimizer.iterations.numpy()) < 10
    np.testing.assert_allclose(optimizer.best_image.numpy(), target.numpy(), atol=1e-3)


def pair(content_name, style_name, width):
    content = images.load_image(input_path(content_name)).astype(np.float32)
    style = images.load_image(input_path(style_name)).astype(np.float32)
    return images.resize_to_width(content, width), images.resize_to_width(style, width)


@pytest.mark.parametrize("content_name,style_name", [("cat.png", "starry_night.jpg"),
                                                     ("coffee.png", "the_scream.jpg"),
                                                     ("cat.png", "shipwreck.jpg")])
def test_quality_gate_against_scipy(sqz_net, content_name, style_name):
    """Real images, real SqueezeNet weights, 96 px: after 50, 200 and 500 iterations the device
    L-BFGS's loss is at most 1% above SciPy L-BFGS-B's from the same start."""
    sqz = sqz_net
    content, style = pair(content_name, style_name, 96)
    stylizer = Stylizer(sqz, content, [style], [1.0], LossWeights())
    marks = (50, 200, 500)
    ours = {step.iteration: step.losses[3] for step in
            stylize(sqz, content, content, [style], [1.0], optim="lbfgs", iterations=marks[-1], checkpoint_iterations=50,
                    stylizer=stylizer, quiet=True)}
    theirs = {}
    for step in stylize(sqz, content, content, [style], [1.0], optim="lbfgs-scipy", iterations=marks[-1],
                        stylizer=stylizer, quiet=True,
                        on_iteration=lambda i, losses: theirs.__setitem__(i, losses[3])):
        pass
    for mark in marks:
        assert ours[mark] <= 1.01 * theirs[mark], (mark, ours[mark], theirs[mark])
    assert int(stylizer.optimizers["lbfgs"].iterations.numpy()) == marks[-1]  # --iterations counts iterations
