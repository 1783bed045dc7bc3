"""The device L-BFGS (--optim lbfgs, lbfgs.py) against SciPy's L-BFGS-B (--optim lbfgs-scipy), and the
latter's first steps."""
import numpy as np
import pytest
import scipy.optimize
import tensorflow as tf

import images
import lbfgs
from conftest import input_path
from settings import LossWeights, OptimizerSettings
from stylize import Stylizer, stylize

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
    L-BFGS-B's tolerances, first step of length 1): the same values iteration by iteration, with
    the state in float64 as SciPy's. (In float32, the default, the same run follows SciPy's to
    1e-4 for 29 iterations, then differs by up to 1.2% in this ill-conditioned valley, ending
    0.2% lower: the quality gate below is what holds for the transfer loss.)"""
    loss_and_grad = rosenbrock()
    x0 = start()
    optimizer = lbfgs.LBFGS(loss_and_grad, (N,), dtype=tf.float64)
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


def test_a_failing_line_search_stops_the_run_and_keeps_the_best_image():
    """A gradient that points uphill (a bug in a loss, say): every line search fails, the run
    stops without a step (the rarer path's calls: search_on, then end_failed), and the best image
    is still the start."""
    @tf.function(input_signature=[tf.TensorSpec([N], tf.float32)], autograph=False)
    def loss_and_grad(x):
        total = tf.reduce_sum(tf.square(x))
        return tf.stack([total, 0.0, 0.0, total]), -2.0 * x
    optimizer = lbfgs.LBFGS(loss_and_grad, (N,))
    x0 = tf.constant(np.linspace(1, 2, N), tf.float32)
    losses, gradient = loss_and_grad(x0)
    optimizer.reset(x0, losses, gradient)
    for _ in range(3):
        optimizer.step()
    assert bool(optimizer.stopped.numpy())
    assert int(optimizer.iterations.numpy()) == 0
    assert int(optimizer.evaluations.numpy()) > 1
    np.testing.assert_array_equal(optimizer.best_image.numpy(), x0.numpy())
    assert optimizer.best_losses.numpy()[3] == losses.numpy()[3]


def pair(content_name, style_name, width):
    content = images.load_image(input_path(content_name)).astype(np.float32)
    style = images.load_image(input_path(style_name)).astype(np.float32)
    return images.resize_to_width(content, width), images.resize_to_width(style, width)


PAIRS = (("cat.png", "starry_night.jpg"), ("coffee.png", "the_scream.jpg"), ("cat.png", "shipwreck.jpg"))


@pytest.mark.slow  # many iterations
def test_quality_gate_against_scipy(sqz_net):
    """Real images, real SqueezeNet weights, 128 px: after 50, 200 and 500 iterations the device
    L-BFGS's loss, averaged over the three pairs, is at most 1% above SciPy L-BFGS-B's from the
    same start, and no pair's is more than 2% above. Per pair, 1% is below the noise at this
    size: two SciPy runs from starts 0.001 grey levels apart ended up to 1.0% apart at 128 px
    (4.9% at 96 px). The benchmark checks 1% per pair at 512 px (bench.py --lbfgs)."""
    sqz = sqz_net
    marks = (50, 200, 500)
    ratios = []
    for content_name, style_name in PAIRS:
        content, style = pair(content_name, style_name, 128)
        stylizer = Stylizer(sqz, content, [style], [1.0], LossWeights())
        ours = {step.iteration: step.losses[3] for step in
                stylize(sqz, content, content, [style], [1.0], optimizer=OptimizerSettings("lbfgs"), iterations=marks[-1],
                        checkpoint_iterations=50, stylizer=stylizer, quiet=True)}
        assert int(stylizer.optimizers["lbfgs"].state.iterations.numpy()) == marks[-1]  # --iterations counts iterations
        theirs = {}
        for step in stylize(sqz, content, content, [style], [1.0], optimizer=OptimizerSettings("lbfgs-scipy"), iterations=marks[-1],
                            stylizer=stylizer, quiet=True,
                            on_iteration=lambda i, losses, image: theirs.__setitem__(i, losses[3])):
            pass
        ratios.append([ours[mark] / theirs[mark] for mark in marks])
    ratios = np.array(ratios)
    assert np.all(ratios.mean(axis=0) <= 1.01), ratios
    assert np.all(ratios <= 1.02), ratios


def test_first_step_of_a_nonnegative_loss_needs_one_evaluation(sqz_net):
    """The transfer loss is never negative: the first iteration tries a quarter of Polyak's step
    and ends at once (start-up), where L-BFGS-B's step of length 1 takes several evaluations
    (and needs the line search's rarer path, traced then and not before)."""
    content, style = pair("cat.png", "starry_night.jpg", 128)
    stylizer = Stylizer(sqz_net, content, [style], [1.0], LossWeights())
    x0 = tf.constant(sqz_net.preprocess(content)[None])
    losses, gradient = stylizer.loss_and_grad(x0)
    evaluations = {}
    for nonnegative in (True, False):
        optimizer = lbfgs.LBFGS(stylizer.loss_and_grad, stylizer.shape, polyak_share=0.25 if nonnegative else None)
        optimizer.reset(x0, losses, gradient)
        optimizer.step()
        assert int(optimizer.iterations.numpy()) == 1
        evaluations[nonnegative] = int(optimizer.evaluations.numpy())
        # The line search's rarer path is traced only when a search goes on (start-up)
        assert optimizer.search_on.experimental_get_tracing_count() == (0 if nonnegative else 1)
        if nonnegative:  # and a real step: L-BFGS-B's first one lowers the loss by about 3% here
            assert optimizer.f.numpy() < 0.9 * losses[3].numpy()
    assert evaluations[True] == 1 and evaluations[False] >= 4, evaluations


@pytest.mark.slow  # many iterations
def test_scipy_lbfgs_first_steps_need_one_evaluation(sqz_net):
    """--optim lbfgs-scipy (SciPy's L-BFGS-B, on a rescaled image: optimizers.lbfgsb_scale): the first
    iteration needs one evaluation beyond the start's, and so does the first after a checkpoint
    restarts SciPy, whose start is not evaluated again (L-BFGS-B's own step of length 1 took
    about six here, and SciPy evaluated the start twice)."""
    content, style = pair("cat.png", "starry_night.jpg", 128)
    stylizer = Stylizer(sqz_net, content, [style], [1.0], LossWeights())
    compiled, evaluations, marks, totals = stylizer.loss_and_grad, [], [], []

    def counted(image):
        evaluations.append(1)
        return compiled(image)
    stylizer.loss_and_grad = counted
    *_, last = stylize(sqz_net, content, content, [style], [1.0], optimizer=OptimizerSettings("lbfgs-scipy"), iterations=60,
                       stylizer=stylizer,
                       checkpoint_iterations=50, quiet=True,
                       on_iteration=lambda i, losses, image: (marks.append(len(evaluations)), totals.append(losses[3])))
    assert last.iteration == 60 and len(marks) == 60
    assert marks[0] == 2, marks[:5]  # the start, then one step
    assert marks[50] - marks[49] == 1, marks[45:55]
    assert len(evaluations) <= 66, len(evaluations)  # about one per iteration
    assert last.losses[3] < 0.2 * totals[0]  # and it optimises: 387,000 after one iteration, 52,000 after 60


@pytest.mark.slow  # many iterations
@pytest.mark.parametrize("optim", ["lbfgs", "lbfgs-scipy", "cg", "adam"])
def test_the_same_run_twice_gives_the_same_image(sqz_run_net, optim):
    """The same flags give the same image: three runs, each with its own compiled loss and
    optimizer (as two invocations of the command have), agree to the bit. (The device L-BFGS
    did not when its line search ran inside one compiled call: see lbfgs.py.) The network is the
    default one, anti-aliased: its remedy for the dot grid is deterministic."""
    content, style = pair("cat.png", "starry_night.jpg", 96)
    results = []
    for _ in range(3):
        stylizer = Stylizer(sqz_run_net, content, [style], [1.0], LossWeights())
        *_, last = stylize(sqz_run_net, content, content, [style], [1.0], optimizer=OptimizerSettings(optim), iterations=30,
                           stylizer=stylizer,
                           quiet=True)
        results.append(last.image)
    for image in results[1:]:
        np.testing.assert_array_equal(image, results[0])


@pytest.mark.parametrize("decay", [0.0, 0.9])
def test_adams_average_is_the_moving_average_of_its_iterates(sqz_net, decay):
    """--average D: Adam's result is the bias-corrected exponential moving average of its iterates,
    sum_k (1 - D) D^(t-k) x_k / (1 - D^t), whatever its loss; 0 keeps the iterate of the lowest loss."""
    import optimizers
    content, style = pair("cat.png", "starry_night.jpg", 64)
    settings = OptimizerSettings("adam", average=decay)
    stylizer = Stylizer(sqz_net, content, [style], [1.0], LossWeights())
    adam = optimizers.make(stylizer, settings)  # the optimiser stylize will use: one per stylizer and settings
    iterates, losses, step = [], [], adam.state.step

    def recorded():
        step()
        iterates.append(adam.state.image.numpy())
        losses.append(float(stylizer.loss_and_grad(adam.state.image)[0][3]))
    adam.state.step = recorded
    *_, last = stylize(sqz_net, content, content, [style], [1.0], optimizer=settings, iterations=12,
                       stylizer=stylizer, quiet=True)
    assert len(iterates) == 12
    if decay:
        t = len(iterates)
        expected = sum((1 - decay) * decay ** (t - k) * x for k, x in enumerate(iterates, 1)) / (1 - decay ** t)
    else:
        expected = iterates[int(np.argmin(losses))]
    np.testing.assert_allclose(last.image, np.clip(sqz_net.unprocess(expected[0]), 0, 255), rtol=1e-5, atol=1e-3)
    if decay:  # not merely the last iterate
        assert not np.allclose(last.image, np.clip(sqz_net.unprocess(iterates[-1][0]), 0, 255), atol=0.5)
