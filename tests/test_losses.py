"""Each loss of losses.py's docstring against an independent NumPy computation on small arrays.

The network's activations are taken once from TensorFlow; every formula below is written
again in NumPy (float64) from those formulas, not by calling the project's code."""
import numpy as np
import pytest
import tensorflow as tf

from network import FeatureNetwork, conv
import scipy.linalg

from losses import W2_EPS, TransferLoss, content_layer_weights, style_layer_weights
from settings import LossWeights, OptimizerSettings


class TinyNet(FeatureNetwork):
    """Three random conv+relu layers: a network small enough for exact comparisons."""
    LAYERS = ("a", "b", "c")
    CONTENT_LAYERS = ("b", "c")
    STYLE_LAYERS = ("a", "b", "c")
    min_size = 4

    def _forward(self, x):
        for name in self.LAYERS:
            x = tf.nn.relu(conv(x, self.weights[name]))
            yield name, x


def tiny_net(seed=0):
    rng = np.random.default_rng(seed)
    widths = {"a": (3, 4), "b": (4, 5), "c": (5, 6)}
    weights = {n: ((rng.standard_normal((3, 3, i, o)) * 0.3).astype(np.float32),
                   (rng.standard_normal(o) * 0.1).astype(np.float32)) for n, (i, o) in widths.items()}
    return TinyNet(weights, (100.0, 110.0, 120.0), "max")


def acts(net, image):
    feats = net.features(tf.constant(image[None], tf.float32), net.LAYERS)
    return {k: v.numpy()[0].astype(np.float64) for k, v in feats.items()}


def np_geometric(r, n):
    w = np.array([r ** i for i in range(n)], dtype=np.float64)
    return w / w.sum()


def np_content(F, P, weights, cw):
    return cw * sum(w * np.sum((F[l] - P[l]) ** 2) / P[l].size for l, w in weights.items())


def np_gram(A, shift):
    h, w, c = A.shape
    M = A.reshape(h * w, c) + shift
    return M.T @ M / (h * w * c)


def np_style_layer(F, S, kind, shift):
    c = F.shape[2]
    f, s = F.reshape(-1, c), S.reshape(-1, c)
    if kind == "gram":
        return np.sum((np_gram(F, shift) - np_gram(S, shift)) ** 2) / c ** 2
    if kind == "mean":
        return np.sum((f.mean(0) - s.mean(0)) ** 2)
    if kind == "w2":  # the squared Wasserstein-2 distance of Gaussians, by SciPy's matrix square root
        cov_f = np.cov(f.T, bias=True) + W2_EPS * np.eye(c)
        cov_s = np.cov(s.T, bias=True) + W2_EPS * np.eye(c)
        root_s = scipy.linalg.sqrtm(cov_s).real
        cross = scipy.linalg.sqrtm(root_s @ cov_f @ root_s).real
        return (np.sum((f.mean(0) - s.mean(0)) ** 2) + np.trace(cov_f + cov_s - 2 * cross)) / c
    std_f = np.sqrt(np.maximum(f.var(0), 1e-5))
    return np.sum((f.mean(0) - s.mean(0)) ** 2) + np.sum((std_f - s.std(0)) ** 2)


def np_distr(F, S, d):
    h, w, c = F.shape
    f, s = F.reshape(-1, c), S.reshape(-1, c)
    std_f = np.sqrt(np.maximum(f.var(0), 1e-5))
    T = (s.std(0) / (std_f + 1e-5)) * (f - f.mean(0)) + s.mean(0)
    return d * 0.5 * np.sum((f - T) ** 2) / (h * w * c)


def np_tv(x, tv_weight):
    dy = x[1:] - x[:-1]
    dx = x[:, 1:] - x[:, :-1]
    return tv_weight * 2 * (0.5 * np.sum(dy ** 2) / dy.size + 0.5 * np.sum(dx ** 2) / dx.size)


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(1)
    content = rng.uniform(0, 255, (12, 10, 3)).astype(np.float32)
    styles = [rng.uniform(0, 255, (9, 14, 3)).astype(np.float32), rng.uniform(0, 255, (16, 8, 3)).astype(np.float32)]
    image = rng.uniform(0, 255, (12, 10, 3)).astype(np.float32)
    return content, styles, image


def test_layer_weights_match_the_spec():
    np.testing.assert_allclose(style_layer_weights(2.0, 4), np_geometric(2.0, 4))
    np.testing.assert_allclose(style_layer_weights(0.5, 5), np_geometric(0.5, 5))
    np.testing.assert_allclose(style_layer_weights(1.0, 3), [1 / 3] * 3)
    np.testing.assert_allclose(content_layer_weights(1.0, 2), [1.0, 0.0])  # b = 1: first layer only
    np.testing.assert_allclose(content_layer_weights(0.0, 2), [0.0, 1.0])  # b = 0: last layer only
    np.testing.assert_allclose(content_layer_weights(0.25, 3), np_geometric(3.0, 3))
    w = style_layer_weights(1e6, 17)  # huge ratios must not overflow
    assert np.all(np.isfinite(w)) and w[-1] == pytest.approx(1.0, abs=1e-5)


@pytest.mark.parametrize("kind, ashift", [("gram", 0.0), ("gram", 30.0), ("mean", 0.0), ("distr", 0.0),
                                         ("w2", 0.0), ("w2", 30.0)])
def test_total_loss_matches_numpy(data, kind, ashift):
    content, styles, image = data
    net = tiny_net()
    w = LossWeights(content_weight=3.0, content_weight_blend=0.4, style_weight=70.0, style_layer_weight_exp=1.7,
                    style_distr_weight=0.0, style_feat_type=kind, tv_weight=2.5, ashift=ashift, unbounded=True)
    blend = [0.25, 0.75]
    loss = TransferLoss(net, net.preprocess(content), [net.preprocess(s) for s in styles], blend, w)
    got = loss(tf.constant(net.preprocess(image)[None])).numpy()

    F, P = acts(net, net.preprocess(image)), acts(net, net.preprocess(content))
    S = [acts(net, net.preprocess(s)) for s in styles]
    cw = dict(zip(net.CONTENT_LAYERS, np_geometric((1 - 0.4) / 0.4, 2)))
    sw = dict(zip(net.STYLE_LAYERS, np_geometric(1.7, 3)))
    content_loss = np_content(F, P, cw, 3.0)
    style_loss = sum(70.0 * b * sw[l] * np_style_layer(F[l], s[l], kind, ashift)
                     for b, s in zip(blend, S) for l in net.STYLE_LAYERS)
    tv = np_tv(net.preprocess(image).astype(np.float64), 2.5)
    np.testing.assert_allclose(got, [content_loss, style_loss, tv, content_loss + style_loss + tv], rtol=2e-4)


@pytest.mark.parametrize("kind", ["gram", "mean", "distr", "w2"])
def test_loss_of_a_part_pools_the_whole_images_statistics(data, kind):
    """A tile's loss (part=True): its style term compares the whole image's statistics (the rest's
    pooled with its own, counted `own_weight` times) with the targets; its total counts that term
    `scale` times. Alone it is the ordinary loss."""
    content, styles, image = data
    net = tiny_net(3)
    w = LossWeights(content_weight=3.0, style_weight=70.0, style_feat_type=kind, tv_weight=2.5, ashift=5.0,
                    style_distr_weight=2.0)
    pre = [net.preprocess(s) for s in styles]
    x = tf.constant(net.preprocess(image)[None])
    whole = TransferLoss(net, net.preprocess(content), pre, [0.5, 0.5], w)
    part = TransferLoss(net, net.preprocess(content), pre, [0.5, 0.5], w, part=True)
    np.testing.assert_allclose(part(x).numpy(), whole(x).numpy(), rtol=1e-6)
    other = np.random.default_rng(5).uniform(0, 255, (14, 10, 3)).astype(np.float32)
    part.set_rest(part.statistics(tf.constant(net.preprocess(other)[None])), own_weight=2.0, scale=3.0)
    got = part(x).numpy()

    F, R, P = (acts(net, net.preprocess(i)) for i in (image, other, content))
    S = [acts(net, p) for p in pre]
    sw = dict(zip(net.STYLE_LAYERS, np_geometric(1.0, 3)))

    def style_term(features):  # the style loss of an image whose features are `features`
        return sum(70.0 * 0.5 * sw[l] * np_style_layer(features[l], s[l], kind, 5.0) for s in S for l in net.STYLE_LAYERS)
    # The whole image: the rest's positions and this part's twice (own_weight 2).
    pooled = {l: np.concatenate([R[l].reshape(-1, R[l].shape[2])] + [F[l].reshape(-1, F[l].shape[2])] * 2)[:, None]
              for l in net.STYLE_LAYERS}
    pooled_style = style_term(pooled)
    remap = sum(np_distr(F[l], s[l], 2.0) for s in S for l in net.STYLE_LAYERS)
    content_loss = np_content(F, P, dict(zip(net.CONTENT_LAYERS, [1.0, 0.0])), 3.0)
    tv = np_tv(net.preprocess(image).astype(np.float64), 2.5)
    np.testing.assert_allclose(got, [content_loss, pooled_style + remap, tv,
                                     content_loss + 3.0 * pooled_style + remap + tv], rtol=5e-4)
    part.set_rest()  # alone again
    np.testing.assert_allclose(part(x).numpy(), whole(x).numpy(), rtol=1e-6)


def test_distribution_remapping_loss_matches_numpy(data):
    content, styles, image = data
    net = tiny_net(2)
    base = LossWeights(content_weight=0.0, style_weight=0.0, tv_weight=0.0)
    with_distr = LossWeights(content_weight=0.0, style_weight=0.0, tv_weight=0.0, style_distr_weight=40.0)
    pre = [net.preprocess(s) for s in styles]
    x = tf.constant(net.preprocess(image)[None])
    assert TransferLoss(net, net.preprocess(content), pre, [0.5, 0.5], base)(x).numpy()[1] == 0
    got = TransferLoss(net, net.preprocess(content), pre, [0.5, 0.5], with_distr)(x).numpy()[1]
    F = acts(net, net.preprocess(image))
    S = [acts(net, p) for p in pre]
    # No blend or layer weight on this loss: every style and every style layer counts fully.
    expected = sum(np_distr(F[l], s[l], 40.0) for s in S for l in net.STYLE_LAYERS)
    np.testing.assert_allclose(got, expected, rtol=2e-4)


@pytest.mark.parametrize("kind", ["gram", "w2"])
def test_gradient_matches_finite_differences(data, kind):
    """The gradient handed to the optimizers is the gradient of the printed total loss."""
    content, styles, image = data
    from stylize import Stylizer
    net = tiny_net(3)
    w = LossWeights(style_distr_weight=5.0, ashift=10.0, style_feat_type=kind)
    stylizer = Stylizer(net, content, styles[:1], [1.0], w)
    x = net.preprocess(image)[None].astype(np.float32)
    losses, grad = stylizer.loss_and_grad(tf.constant(x))
    grad = grad.numpy()
    rng = np.random.default_rng(0)
    direction = rng.standard_normal(x.shape).astype(np.float32)
    h = 1e-2
    plus = stylizer.loss_and_grad(tf.constant(x + h * direction))[0].numpy()[3]
    minus = stylizer.loss_and_grad(tf.constant(x - h * direction))[0].numpy()[3]
    np.testing.assert_allclose((plus - minus) / (2 * h), np.sum(grad * direction), rtol=2e-2)
    assert stylizer.traces == 1


def test_network_stops_at_the_deepest_needed_layer(data):
    """Content blend 1 and style layers truncated by a zero style weight: only layer 'b' is needed."""
    content, styles, _ = data
    net = tiny_net()
    loss = TransferLoss(net, net.preprocess(content), [net.preprocess(styles[0])], [1.0],
                        LossWeights(content_weight_blend=1.0, style_weight=0.0))
    assert loss.layers == ["b"]
    graph = tf.function(lambda x: loss(x)).get_concrete_function(tf.TensorSpec([1, 12, 10, 3], tf.float32)).graph
    convs = [op for op in graph.get_operations() if op.type == "Conv2D"]
    assert len(convs) == 2  # a and b, never c


@pytest.mark.parametrize("optim", ["lbfgs", "lbfgs-scipy", "cg", "adam"])
def test_traced_once_and_targets_computed_once_per_level(data, optim, monkeypatch):
    """However many iterations and checkpoints, the loss-and-gradient function is traced once
    and the content and style targets are computed once (one eager network pass each)."""
    from stylize import Stylizer, stylize
    content, styles, image = data
    net = tiny_net(4)
    eager_passes = []
    original = net.features

    def counting(x, layers):
        if tf.executing_eagerly():
            eager_passes.append(tuple(x.shape))
        return original(x, layers)
    monkeypatch.setattr(net, "features", counting)
    stylizer = Stylizer(net, content, styles, [0.5, 0.5], LossWeights())
    assert eager_passes == [(1,) + content.shape, (1,) + styles[0].shape, (1,) + styles[1].shape]
    steps = list(stylize(net, image, content, styles, [0.5, 0.5], optimizer=OptimizerSettings(optim), iterations=60,
                         checkpoint_iterations=7 if optim in ("adam", "lbfgs") else 50, print_iterations=5,
                         stylizer=stylizer))
    assert steps[-1].final and len(steps) >= 2 and not steps[0].final
    assert stylizer.traces == 1
    assert len(eager_passes) == 3  # no target was recomputed while optimising


def test_unused_targets_cost_no_network_pass(data, monkeypatch):
    content, styles, _ = data
    net = tiny_net(5)
    passes = []
    original = net._forward

    def counting(x):
        passes.append(tuple(x.shape))
        return original(x)
    monkeypatch.setattr(net, "_forward", counting)
    TransferLoss(net, content, styles, [0.5, 0.5], LossWeights(content_weight=0.0))
    assert passes == [(1,) + styles[0].shape, (1,) + styles[1].shape]  # no content pass
    passes.clear()
    TransferLoss(net, content, styles, [0.5, 0.5], LossWeights(style_weight=0.0))
    assert passes == [(1,) + content.shape]  # no style passes
