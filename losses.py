"""The loss of one scale: what the optimisers minimise. With F the (H*W, C) matrix of an image's
activations at a layer of H x W positions and C channels, and l2(x) = sum(x^2) / 2:

- Layer weights. Content: b = --content-weight-blend, r = (1 - b) / b, weights 1, r, r^2, ...
  over the content layers, normalised to sum 1 (b = 1: all on the first layer; b = 0: all on the
  last). Style: 1, e, e^2, ... with e = --style-layer-weight-exp, normalised to sum 1.
- Content loss: content_weight * sum_l w_l * 2 * l2(F_l - P_l) / size(P_l), P the content
  image's activations.
- Style loss, for each style i with blend weight b_i (--style-blend-weights, normalised):
  style_weight * b_i * sum_l w_l * L_l, where per layer
  - gram: G = (F + ashift)^T (F + ashift) / (H W C) for the image and likewise A for the style
    image (its own H, W); L = 2 * l2(G - A) / C^2;
  - mean: L = 2 * l2(mean_F - mean_S) (means over positions, per channel);
  - distr: L = 2 * (l2(mean_F - mean_S) + l2(std_F - std_S)), std_F = sqrt(max(var_F, 1e-5))
    and std_S the population std of the style's features;
  - w2 (ours; crowsonkb's style-transfer-pytorch): the squared Wasserstein-2 distance between
    Gaussians of the features' means and covariances, per channel: L = (|m_F - m_S|^2 + tr(C_F +
    C_S - 2 (C_S^1/2 C_F C_S^1/2)^1/2)) / C, C_F and C_S the population covariances (+ 1e-4 on the
    diagonal). At the default weights it keeps about as much of the content as gram does.
- Distribution remapping (--style-distr-weight d, when not 0), per style and style layer, with
  no layer or blend weight: d * l2(F - T) / (H W C), T = (std_S / (std_F + 1e-5)) * (F - mean_F)
  + mean_S on the unshifted features; gradients flow through T.
- Total variation: tv_weight * 2 * (l2(dy) / size(dy) + l2(dx) / size(dx)), dy and dx the
  vertical and horizontal neighbour differences of the image.
- Pixel range (unless --unbounded): the image the losses above see is the image clipped to
  0..255 (before the mean pixel is subtracted), the image a file will hold, and a range term
  range_weight * 2 * l2(x - clip(x)) / size(x) pulls values outside back (0 for an image within
  the range), so that what is saved is what was optimised. --unbounded optimises the image as it
  is, as the original did; saving then clips it.
- Anchor (--max-hierarchy auto, the levels after the first): anchor_weight * 2 * l2(avgpool_f(x)
  - A) / size(A), A the first level's result, f the level's size over A's (hierarchy.py); and the
  style loss of avgpool_f(x) against the styles at A's size, added to the style loss.
- Temporal (a video's frames, neural_video.py): temporal_weight * L0 * sum_j (B_j + F_j) / (2 D
  255^2), for each earlier frame j with result y_j: B_j = sum_p c_j(p) (x(p + f_j(p)) - y_j(p))^2
  over the earlier frame's pixels p, f_j the optical flow from that frame to this one and x(p +
  f_j(p)) this image sampled there (bilinear), 0 where that falls outside; F_j = sum_q d_j(q)
  (x(q) - w_j(q))^2 over this frame's pixels, w_j = y_j warped to this frame (bilinear). Each
  compares the image with a resampled one, and bilinear resampling blurs: F alone pulls the image
  towards a blurred copy and B alone towards a sharpened one, and either would add up from frame to
  frame; together the two nearly cancel. c_j and d_j in [0, 1] where the flow is certain
  (video.py); D the image's number of values; L0 the frame's content + style + total variation
  loss at its start image (set by Stylizer.balance_temporal): the term is a share of the frame's
  own loss per mean squared deviation of 255^2, so one weight holds whatever the style's, size's
  or layers' loss scale.
- Total = content + style + total variation (+ the range term, + the anchor, + the temporal term).

Images are [1, H, W, 3] float32 RGB with the network's mean pixel subtracted.
"""
from typing import NamedTuple

import numpy as np
import tensorflow as tf

ANCHOR_WEIGHT = 1000.0     # of the anchor: the larger levels of --max-hierarchy auto add detail, not new strokes
RANGE_WEIGHT = 1000.0      # of the range term: strong enough to bring values outside back within an iteration or two
STD_FLOOR = 1e-5            # std_F = sqrt(max(var_F, STD_FLOOR)): finite gradient for dead channels
W2_EPS = 1e-4               # added to the covariances' diagonals (w2): their square roots stay differentiable
DISTR_EPS = 1e-5            # T = std_S / (std_F + DISTR_EPS) * (F - mean_F) + mean_S
LOSS_NAMES = ("content", "style", "tv", "total")


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


def covariance(s, shift):
    """The population covariance of a layer's features (+ W2_EPS on the diagonal) from their
    Statistics; `shift` is the --ashift their Gram sum was taken with."""
    mean = s.mean + shift
    cov = s.gram_sum / s.positions - mean[:, None] * mean[None, :]
    return cov + W2_EPS * tf.eye(int(cov.shape[0]))


def psd_sqrt(matrix):
    """The square root of a symmetric positive semi-definite matrix (its eigenvalues below 0,
    from rounding, taken as 0)."""
    values, vectors = tf.linalg.eigh(matrix)
    return tf.matmul(vectors * tf.sqrt(tf.maximum(values, 0.0)), vectors, transpose_b=True)


def w2_distance(mean, cov, target):
    """The squared Wasserstein-2 distance between Gaussians (mean, cov) and the target's (mean_S,
    cov_S, cov_S^1/2): |m - m_S|^2 + tr(C + C_S) - 2 tr((C_S^1/2 C C_S^1/2)^1/2). The last trace is
    the sum of the square roots of the eigenvalues, whose gradient stays defined where eigenvalues
    repeat (that of the eigenvectors does not)."""
    mean_s, cov_s, root_s = target
    inner = tf.matmul(root_s, tf.matmul(cov, root_s))
    values = tf.cast(tf.linalg.eigh(tf.cast(0.5 * (inner + tf.transpose(inner)), tf.float64))[0], tf.float32)
    cross = tf.reduce_sum(tf.sqrt(tf.maximum(values, W2_EPS ** 2)))
    return _sq_sum(mean - mean_s) + tf.linalg.trace(cov) + tf.linalg.trace(cov_s) - 2.0 * cross


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


def _clip(image, low):
    """(`image` clipped to low..low + 255 per channel, the sum of squares of what was cut off),
    with one gradient for both: inside the range the clipped image's, outside the sum's.
    (TensorFlow's own clipping also differentiates with respect to the bounds, with reductions
    over the whole image at every evaluation.)"""
    low = tf.constant(low, tf.float32)

    @tf.custom_gradient
    def clip(x):
        inside = tf.clip_by_value(x, low, low + 255.0)
        outside = x - inside

        def grad(d_inside, d_sum):
            return tf.where(tf.equal(outside, 0.0), d_inside, (2.0 * d_sum) * outside)
        return (inside, tf.reduce_sum(tf.square(outside))), grad
    return clip(image)


def bilinear_taps(field):
    """How to sample an image of the field's size at p + field(p) for each pixel p (field: HxWx2,
    x then y): (the 4 flat pixel indices [H*W, 4], their bilinear weights [H*W, 4], 1 where the
    point lies inside the image and 0 where it falls outside [H, W])."""
    height, width = field.shape[:2]
    grid_y, grid_x = np.mgrid[0:height, 0:width].astype(np.float32)
    x, y = grid_x + field[..., 0], grid_y + field[..., 1]
    inside = ((x >= 0) & (x <= width - 1) & (y >= 0) & (y <= height - 1)).astype(np.float32)
    x, y = np.clip(x, 0, width - 1), np.clip(y, 0, height - 1)
    x0 = np.minimum(np.floor(x), width - 2).astype(np.int64)
    y0 = np.minimum(np.floor(y), height - 2).astype(np.int64)
    fx, fy = x - x0, y - y0
    first = y0 * width + x0
    taps = np.stack([first, first + 1, first + width, first + width + 1], -1).reshape(-1, 4)
    weights = np.stack([(1 - fx) * (1 - fy), fx * (1 - fy), (1 - fx) * fy, fx * fy], -1).reshape(-1, 4)
    return taps, weights.astype(np.float32), inside


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
            for layer, s in stats.items():
                moments = (s.mean, _std(s.var))
                if layer in dict(self.style_layers):
                    targets[layer] = _style_target(s, weights.style_feat_type, weights.ashift)
                if layer in self.distr_layers:
                    distr[layer] = moments
            self.style.append(targets)
            self.distr.append(distr)


def _style_target(s, feat_type, shift):
    """What a style loss of `feat_type` compares with, from a style layer's Statistics: the Gram
    matrix, (mean, population std), or for w2 (mean, covariance, its square root)."""
    if feat_type == "gram":
        return s.gram_sum / (s.positions * int(s.mean.shape[0]))
    if feat_type == "w2":
        cov = covariance(s, shift)
        return s.mean, cov, psd_sqrt(cov)
    return s.mean, _std(s.var)


def _style_statistics(net, style, layers, shift, chunk):
    """{layer: Statistics} of a preprocessed HxWx3 style image."""
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
    return pool_all(pieces)


class TransferLoss:
    """The loss (the module's docstring) of one scale. Targets (content activations, style Gram
    matrices or moments) are computed once here; calling the object computes the four losses
    (content, style, tv, total) of a [1, H, W, 3] preprocessed image with one network pass.
    The content targets live in variables: `set_content` points the same compiled loss at
    another content image of the same size (the next tile).

    With `part=True` the image is one part of a larger one (a tile): `set_rest` gives the style
    statistics of the rest of the image and how many times this part's statistics count (parts
    optimised at the same time each stand for all of them); the style loss then compares the
    whole image's statistics with the targets, and the total counts it `scale` times (the
    whole's area over the parts'), so optimising the part descends the whole image's loss."""

    def __init__(self, net, content, styles, style_blend_weights, weights, style_targets=None, part=False,
                 anchor=None, temporal=None):
        self.net = net
        self.w = weights
        # (A [1, h, w, 3], f, styles at A's size): the image averaged over f x f blocks is held at A
        # (the anchor term), and its style loss there counts too
        self.anchor = anchor and (tf.constant(anchor[0][None]), int(anchor[1]))
        self.coarse_styles = anchor[2] if anchor and len(anchor) > 2 else None
        # (temporal_weight, count): `count` earlier frames, each (its result, the bilinear taps and
        # weights that sample this image where the flow takes its pixels, their certainty: all over
        # the earlier frame's pixels; the result warped here and its certainty, over this frame's),
        # flattened; set_temporal points them at each frame (a certainty of 0 where there is none),
        # balance_temporal scales the term to the frame's loss (temporal_scale = temporal_weight *
        # L0 / 255^2)
        self.temporal_weight, count = temporal or (0.0, 0)
        self.temporal_scale = tf.Variable(0.0, trainable=False)
        pixels = int(np.prod(content.shape[:2]))
        self.temporal = [(tf.Variable(tf.zeros((pixels, 3)), trainable=False),
                          tf.Variable(tf.zeros((pixels, 4), tf.int64), trainable=False),
                          tf.Variable(tf.zeros((pixels, 4)), trainable=False),
                          tf.Variable(tf.zeros((pixels, 1)), trainable=False),
                          tf.Variable(tf.zeros((pixels, 3)), trainable=False),
                          tf.Variable(tf.zeros((pixels, 1)), trainable=False)) for _ in range(count)]
        cw = content_layer_weights(weights.content_weight_blend, len(net.CONTENT_LAYERS))
        self.content_layers = [(l, w) for l, w in zip(net.CONTENT_LAYERS, cw)
                               if w > 0 and weights.content_weight != 0]
        self.content_targets = {l: tf.Variable(f, trainable=False) for l, f in self._content_features(content).items()}
        targets = style_targets or StyleTargets(net, styles, style_blend_weights, weights)
        self.style_layers, self.distr_layers, self.blend = targets.style_layers, targets.distr_layers, targets.blend
        self.style_targets, self.distr_targets = targets.style, targets.distr
        if self.coarse_styles is not None:  # the styles at the first level's size
            self.coarse_targets = StyleTargets(net, self.coarse_styles, style_blend_weights, weights).style
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

    def set_temporal(self, targets=()):
        """The earlier frames of this one: [(result [H, W, 3] preprocessed, flow from that frame to
        this one [H, W, 2], certainty there [H, W], the result warped to this frame [H, W, 3]
        preprocessed, certainty here [H, W])], at most as many as made for; the rest get no weight."""
        for i, (result, taps, weights, certainty, warped, certainty_here) in enumerate(self.temporal):
            if i < len(targets):
                earlier, field, reliable, moved, reliable_here = targets[i]
                flat_taps, flat_weights, inside = bilinear_taps(np.asarray(field, np.float32))
                result.assign(np.asarray(earlier, np.float32).reshape(-1, 3))
                taps.assign(flat_taps)
                weights.assign(flat_weights)
                certainty.assign((np.asarray(reliable, np.float32) * inside).reshape(-1, 1))
                warped.assign(np.asarray(moved, np.float32).reshape(-1, 3))
                certainty_here.assign(np.asarray(reliable_here, np.float32).reshape(-1, 1))
            else:
                certainty.assign(tf.zeros_like(certainty))
                certainty_here.assign(tf.zeros_like(certainty_here))

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
        feats = self.net.features(self._in_range(image)[0], list(self.rest))
        return {layer: statistics_of(feats[layer], self.w.ashift) for layer in self.rest}

    def _in_range(self, image):
        """(The image as a file holds it: clipped to 0..255, the sum of squares of what was cut
        off), or (the image, None) with --unbounded."""
        return (image, None) if self.w.unbounded else _clip(image, -self.net.mean_pixel)

    def _image_style(self, s, channels):
        """What the style loss compares of the image at a layer, from its Statistics: the Gram
        matrix, (mean, variance), or for w2 (mean, covariance)."""
        if self.w.style_feat_type == "gram":
            return s.gram_sum * (1.0 / (s.positions * channels))
        if self.w.style_feat_type == "w2":
            return s.mean, covariance(s, self.w.ashift)
        return s.mean, s.var

    def _style_terms(self, layer, lw, image_style, channels, targets):
        """A style layer's weighted losses against each style's targets (_image_style's form)."""
        w = self.w
        if w.style_feat_type == "gram":
            per_style = [_sq_sum(image_style - t[layer]) * (1.0 / channels ** 2) for t in targets]
        elif w.style_feat_type == "mean":
            per_style = [_sq_sum(image_style[0] - t[layer][0]) for t in targets]
        elif w.style_feat_type == "w2":
            per_style = [w2_distance(*image_style, t[layer]) * (1.0 / channels) for t in targets]
        else:  # distr: mean and std
            std = _std(image_style[1], STD_FLOOR)
            per_style = [_sq_sum(image_style[0] - t[layer][0]) + _sq_sum(std - t[layer][1]) for t in targets]
        return [w.style_weight * beta * lw * loss for beta, loss in zip(self.blend, per_style)]

    def _own_style(self, layer, f, positions, channels, moments):
        """_image_style of the features f [HW, C] of the image alone (each type computes only what
        it compares; `moments` gives the shared per-channel mean and variance)."""
        if self.w.style_feat_type == "gram":
            return _self_product(_shifted(f, self.w.ashift)) * (1.0 / (positions * channels))
        if self.w.style_feat_type == "w2":
            mean = tf.reduce_mean(f, axis=0)
            centred = f - mean
            return mean, _self_product(centred) * (1.0 / positions) + W2_EPS * tf.eye(channels)
        return moments(layer, f)

    def _coarse_style(self, coarse):
        """The style loss of the image seen at the first level's size (--max-hierarchy auto)."""
        feats = self.net.features(coarse, [layer for layer, _ in self.style_layers])
        style = tf.constant(0.0)
        for layer, lw in self.style_layers:
            f, positions, channels = _as_matrix(feats[layer])
            own = self._own_style(layer, f, positions, channels, lambda _, f: _moments(f))
            for term in self._style_terms(layer, lw, own, channels, self.coarse_targets):
                style += term
        return style

    def __call__(self, image):
        w = self.w
        image, cut_off = self._in_range(image)
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
                image_style = self._image_style(pool(self.rest[layer], own), channels)
            else:
                image_style = self._own_style(layer, f, positions, channels, moments)
            for term in self._style_terms(layer, lw, image_style, channels, self.style_targets):
                style += term
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
        if cut_off is not None:
            total += RANGE_WEIGHT * cut_off * (1.0 / int(np.prod(image.shape)))
        if self.temporal:
            flat = tf.reshape(image, [-1, 3])
            temporal = 0.5 * tf.add_n([
                tf.reduce_sum(certainty * tf.square(tf.reduce_sum(tf.gather(flat, taps) * weights[..., None], axis=1)
                                                    - result))
                + tf.reduce_sum(certainty_here * tf.square(flat - warped))
                for result, taps, weights, certainty, warped, certainty_here in self.temporal])
            total += self.temporal_scale * temporal * (1.0 / int(np.prod(image.shape)))
        if self.anchor:
            target, f = self.anchor
            height, width = target.shape[1:3]
            coarse = tf.nn.avg_pool2d(image[:, :height * f, :width * f], f, f, "VALID")
            total += ANCHOR_WEIGHT * _sq_sum(coarse - target) * (1.0 / int(np.prod(target.shape)))
            if self.coarse_styles is not None:
                coarse_style = self._coarse_style(coarse)
                style += coarse_style
                total += coarse_style
        if self.part:  # a part's total counts the whole image's style loss `scale` times
            total += (self.scale - 1.0) * pooled
        return tf.stack([content, style, tv, total])
