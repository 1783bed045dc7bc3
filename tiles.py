"""Tiled optimisation of one hierarchy level too large for memory (print sizes).

The level's image is optimised in overlapping tiles, in passes. Every pass gives every tile the
same number of iterations, so every pixel gets the level's iterations in all (pixels in an
overlap get more). Each tile's content loss uses its own region of the content; the style
targets are computed once per level from the whole style image and shared by all tiles; total
variation reaches across a tile's border through the overlap, which holds its neighbours'
pixels. A tile's result is blended into the image with a window that switches from one tile
to the next in the middle of their overlap, away from both tiles' edges (where the network
saw the tile's border), so no tile's edge shows in the image.

From the second pass on, a tile's style loss is the whole image's (block-coordinate descent):
its style statistics (Gram sums, means, variances) are pooled with those of the rest of the
image, kept as running sums from each tile's last visit, so tiles share out the style's
features as an untiled run does instead of each holding the whole style.

Tiles are visited in four colour groups (row and column parity): tiles of one group never
overlap and see the same statistics of the rest, so within a group the order does not matter
and they can run at the same time with the same result. `stylize.py` optimises each tile as it
would a whole image (told the rest's statistics); only this file knows the grid.
"""
import sys
from typing import NamedTuple

import numpy as np

import optimizers
from errors import Interrupted, NumericalError, Stopped, ToolError
from losses import Statistics, StyleTargets
from settings import OptimizerSettings
from stylize import Step, Stylizer, print_losses, progress_bar, start_image, stylize

PASS_ITERATIONS = 50  # iterations a tile gets per visit (the optimizer starts afresh at each: another tile)


def overlap_for(tile_size):
    """Pixels shared by neighbouring tiles: wide enough for a smooth blend, narrow enough that the
    overlap costs little (about 20-25% more pixels than the image at the usual tile sizes)."""
    return max(16, tile_size // 10)


class Tile(NamedTuple):
    y: int
    x: int
    height: int
    width: int
    row: int
    col: int


def axis_spans(length, tile_size, overlap):
    """[(start, size)] of equal tiles covering 0..length, neighbours sharing at least `overlap`
    pixels: as few tiles as that allows, each as small as they can be."""
    if length <= tile_size:
        return [(0, length)]
    count = -(-(length - overlap) // (tile_size - overlap))
    size = min(length, -(-(length + (count - 1) * overlap) // count))
    return [(round(i * (length - size) / (count - 1)), size) for i in range(count)]


def grid(height, width, tile_size):
    """The tiles of a level, in colour-group order (row parity, column parity), then by position."""
    overlap = overlap_for(tile_size)
    rows = axis_spans(height, tile_size, overlap)
    cols = axis_spans(width, tile_size, overlap)
    tiles = [Tile(y, x, h, w, r, c) for r, (y, h) in enumerate(rows) for c, (x, w) in enumerate(cols)]
    return sorted(tiles, key=lambda t: (t.row % 2, t.col % 2, t.row, t.col))


def colour_groups(tiles):
    """Tiles split into the groups whose members never overlap, in visiting order."""
    groups = {}
    for tile in tiles:
        groups.setdefault((tile.row % 2, tile.col % 2), []).append(tile)
    return [groups[key] for key in sorted(groups)]


def _ramp(width):
    """Weights across an overlap of `width` pixels, from the tile's edge inwards: 0 over the
    outer quarter (pixels the network saw next to the tile's edge), a raised cosine over the
    middle half, 1 over the inner quarter."""
    u = np.clip(((np.arange(width) + 0.5) / width - 0.25) / 0.5, 0.0, 1.0)
    return 0.5 - 0.5 * np.cos(np.pi * u)


def _axis_window(spans, index, blend_before, blend_after):
    """One axis of a tile's window: it blends in over an overlap with a neighbour visited before
    it in the pass, and stays 1 up to its edge where the neighbour comes later (and overwrites)."""
    start, size = spans[index]
    window = np.ones(size, dtype=np.float32)
    if index > 0 and blend_before:
        before = spans[index - 1][0] + spans[index - 1][1] - start
        window[:before] = _ramp(before)
    if index < len(spans) - 1 and blend_after:
        after = start + size - spans[index + 1][0]
        window[size - after:] = np.minimum(window[size - after:], _ramp(after)[::-1])
    return window


def blend_windows(tiles):
    """{tile: HxWx1 float32 weight}. Tiles are blended into the image in visiting order,
    `image = (1 - w) * image + w * tile`: each pixel ends a convex combination of the tiles that
    cover it (the first to arrive writes it whole), switching from one tile to the next in the
    middle of their overlap, away from both tiles' edges."""
    rows = sorted({(t.row, t.y, t.height) for t in tiles})
    cols = sorted({(t.col, t.x, t.width) for t in tiles})
    row_spans, col_spans = [(y, h) for _, y, h in rows], [(x, w) for _, x, w in cols]
    windows = {}
    for t in tiles:
        # Colour groups run in order (0,0), (0,1), (1,0), (1,1): a neighbour in the other row
        # parity came earlier when this tile's row is odd, in the other column parity when
        # this tile's column is odd.
        earlier_rows, earlier_cols = t.row % 2 == 1, t.col % 2 == 1
        wy = _axis_window(row_spans, t.row, earlier_rows, earlier_rows)
        wx = _axis_window(col_spans, t.col, earlier_cols, earlier_cols)
        windows[t] = (wy[:, None] * wx[None, :])[:, :, None]
    return windows


def pass_ends(iterations, checkpoint_iterations=None):
    """The iteration counts at which passes end: every PASS_ITERATIONS, at each checkpoint, at the end."""
    ends = set(range(PASS_ITERATIONS, iterations, PASS_ITERATIONS)) | {iterations}
    if checkpoint_iterations:
        ends |= set(range(checkpoint_iterations, iterations, checkpoint_iterations))
    return sorted(ends)


def blend(image, tile, window, pixels):
    """Blend a tile's result into the whole image, in place."""
    region = image[tile.y:tile.y + tile.height, tile.x:tile.x + tile.width]
    region[:] = (1 - window) * region + window * pixels


def crop(image, tile):
    return image[tile.y:tile.y + tile.height, tile.x:tile.x + tile.width]


def mean_losses(tile_losses):
    """The whole image's losses from its tiles': content, tv and the remapping part of the style
    loss are per-element means, averaged here by area; the style part is the whole image's
    already (each tile's loss pools the others' statistics), so averaging keeps it."""
    areas = np.array([area for area, _ in tile_losses], dtype=np.float64)
    losses = (np.array([losses for _, losses in tile_losses], dtype=np.float64) * areas[:, None]).sum(0) / areas.sum()
    losses[3] = losses[:3].sum()  # a tile's total weighs its style part by the whole's area over its own
    return losses


class PooledStatistics:
    """The tiles' style statistics as running sums (float64, on the host): the statistics of all
    tiles but one cost one subtraction, however many tiles there are."""

    def __init__(self, statistics):
        self.sums = {tile: self._sums(s) for tile, s in statistics.items()}
        self.total = {layer: [sum(s[layer][k] for s in self.sums.values()) for k in range(4)]
                      for layer in next(iter(self.sums.values()))}

    @staticmethod
    def _sums(statistics):
        """{layer: [n, Gram sum, sum of F, sum of F^2]}."""
        out = {}
        for layer, s in statistics.items():
            n, mean, var = float(s.positions), s.mean.numpy().astype(np.float64), s.var.numpy().astype(np.float64)
            out[layer] = [n, s.gram_sum.numpy().astype(np.float64), n * mean, n * (var + mean ** 2)]
        return out

    def update(self, tile, statistics):
        new = self._sums(statistics)
        for layer, sums in new.items():
            self.total[layer] = [t - old + s for t, old, s in zip(self.total[layer], self.sums[tile][layer], sums)]
        self.sums[tile] = new

    def outside(self, tiles):
        """{layer: Statistics} of every tile but `tiles`."""
        out = {}
        for layer, total in self.total.items():
            n, gram_sum, s1, s2 = (t - sum(self.sums[tile][layer][k] for tile in tiles) for k, t in enumerate(total))
            mean = s1 / n
            out[layer] = Statistics(np.float32(n), gram_sum.astype(np.float32), mean.astype(np.float32),
                                    np.maximum(s2 / n - mean ** 2, 0.0).astype(np.float32))
        return out


class TileStylizers:
    """The compiled losses of one level's tiles: one per tile shape (a level's tiles have at most
    four), aimed at each tile's content in turn. Where the level's tiles run here and where they
    run on Ray workers (cluster.py), they are kept in one of these."""

    def __init__(self, net, targets, style_blend_weights, weights, temporal=None):
        self.net, self.targets, self.blend, self.weights = net, targets, style_blend_weights, weights
        self.temporal = temporal  # a video's (temporal_weight, count)
        self.stylizers = {}

    def aim(self, content, rest=None, own_weight=1.0, scale=1.0, temporal=()):
        """The stylizer of this tile's size, aimed at its content (pixel values), at the rest of the
        image (Stylizer.set_rest) and at a video's earlier frames there (Stylizer.set_temporal)."""
        shape = content.shape[:2]
        if shape not in self.stylizers:
            self.stylizers[shape] = Stylizer(self.net, content, [], self.blend, self.weights,
                                             style_targets=self.targets, part=True, temporal=self.temporal)
        else:
            self.stylizers[shape].set_content(content)
        stylizer = self.stylizers[shape]
        stylizer.set_rest(rest, own_weight, scale)
        if self.temporal:
            stylizer.set_temporal(temporal)
        return stylizer

    def statistics(self, pixels):
        """The style statistics of a tile's pixels (needs a stylizer of its size, not its content)."""
        return self.stylizers[pixels.shape[:2]].statistics(pixels)


def stylize_tiled(net, initial, content, styles, style_blend_weights, weights, tile_size,
                  optimizer=OptimizerSettings(), iterations=1000, print_iterations=None, checkpoint_iterations=None,
                  initial_noiseblend=0.0, rng=None, desc=None, on_iteration=None, workers=None, quiet=False,
                  temporal=None):
    """Optimise a level in tiles of at most `tile_size` pixels a side; a generator like
    stylize.stylize: Step(iteration, whole image, final, mean tile losses) at each checkpoint and
    at the end. On Ctrl-C or a non-finite loss it raises Stopped with the whole image, every
    tile's best so far blended in. `workers` (cluster.TileWorkers) optimises each colour group's
    tiles on a Ray cluster; this process blends them. `temporal` ((temporal_weight, count), the earlier
    frames of video.FrameInputs) at the level's size: a video's, cropped for each tile."""
    height, width = content.shape[:2]
    # The style targets come from the whole style images, a tile-sized piece at a time.
    targets = StyleTargets(net, [net.preprocess(np.asarray(s, np.float32)) for s in styles], style_blend_weights,
                           weights, chunk=tile_size)
    image = net.unprocess(start_image(net, initial, initial_noiseblend, rng))  # the whole level, in pixels
    content = np.asarray(content, dtype=np.float32)
    tiles = grid(height, width, tile_size)
    windows = blend_windows(tiles)
    optimizer_class = optimizers.OPTIMIZERS[optimizer.optim]
    if checkpoint_iterations and optimizer_class.restarts_at_checkpoints:
        checkpoint_iterations = max(checkpoint_iterations, optimizers.MIN_CHUNK)  # as untiled runs (warned there)
    ends = pass_ends(iterations, checkpoint_iterations)
    counts = np.diff([0] + ends)
    bar = progress_bar(int(iterations) * len(tiles), desc, quiet)
    show = (lambda losses: None) if quiet else print_losses
    if not quiet:
        print(f"tiled: {len(tiles)} tiles of {tiles[0].width}x{tiles[0].height} px (overlap at least "
              f"{overlap_for(tile_size)} px), {len(ends)} pass(es)", file=sys.stderr)
    stylizers = TileStylizers(net, targets, style_blend_weights, weights, temporal and temporal[0])

    def earlier(tile):  # a video's earlier frames, cropped to the tile (their flows then lead within it)
        return [tuple(crop(a, tile) for a in frame) for frame in temporal[1]] if temporal else ()

    # From the second pass on (see above), a tile pools its own statistics with those of the tiles
    # outside its colour group, as the previous group left them. Its own stand for its whole group,
    # optimised at the same time: each tile assumes the others do as it does (counting its own
    # once, each made up the whole image's shortfall and together they overshot).
    area = {t: t.height * t.width for t in tiles}
    group_of = {t: group for group in colour_groups(tiles) for t in group}
    group_area = {t: sum(area[s] for s in group_of[t]) for t in tiles}
    total_area = sum(area.values())

    def rest_of(tile, pooled=None):
        """set_rest's arguments for the tile: the rest of the image, its own weight, the scale."""
        if pooled is None or group_area[tile] == total_area:
            return None, 1.0, 1.0
        return pooled.outside(group_of[tile]), group_area[tile] / area[tile], total_area / group_area[tile]

    def finished(tile, step):
        """A tile's result, blended into the image at once: the tiles of a group never overlap, so
        the others of its group still start from what they would have."""
        blend(image, tile, windows[tile], step.image)

    # A tile's iterations report the whole level as its image.
    tile_iteration = on_iteration and (lambda i, losses, _tile: on_iteration(i, losses, image.copy))

    def optimise_here(group, count, pooled):
        """The group's tiles optimised one after another in this process: [(tile, Step)]."""
        done = []
        for tile in group:
            try:
                for step in stylize(net, crop(image, tile), None, None, style_blend_weights, weights,
                                    optimizer=optimizer, iterations=count,
                                    stylizer=stylizers.aim(crop(content, tile), *rest_of(tile, pooled),
                                                           temporal=earlier(tile)),
                                    bar=bar, quiet=True, on_iteration=tile_iteration):
                    pass
            except Stopped as stop:  # keep this tile's best so far
                finished(tile, Step(0, stop.image, False))
                raise
            finished(tile, step)
            done.append((tile, step))
        return done

    def optimise_on_ray(group, count, pooled):
        """The group's tiles optimised at the same time on Ray actors: [(tile, Step)]."""
        if temporal:
            raise ToolError("a video's tiles do not run on Ray: its shots do (neural_video.py --ray)")
        jobs = [(crop(image, t), crop(content, t), *rest_of(t, pooled)) for t in group]
        steps = workers.optimise(jobs, targets, style_blend_weights, weights, optimizer, count,
                                 on_done=lambda i, step: finished(group[i], step), bar=bar)
        return list(zip(group, steps))

    # The level's starting losses: each tile's, before any iteration.
    start_losses = [(area[t], stylizers.aim(crop(content, t), temporal=earlier(t))
                     .loss_and_grad(net.preprocess(crop(image, t))[None])[0].numpy()) for t in tiles]
    show(mean_losses(start_losses))
    done, losses, pooled = 0, None, None
    try:
        for p, count in enumerate(counts):
            tile_losses = []
            bar.set_description(f"{desc + ' ' if desc else ''}pass {p + 1}/{len(counts)}")
            if p == 1:
                pooled = PooledStatistics({t: stylizers.statistics(crop(image, t)) for t in tiles})
            for group in colour_groups(tiles):
                # Tiles of a group never overlap and all see the statistics the previous group left:
                # they can run anywhere, in any order, with the same result.
                results = (optimise_on_ray if workers else optimise_here)(group, int(count), pooled)
                tile_losses += [(area[tile], step.losses) for tile, step in results]
                if pooled is not None:
                    for tile, _ in results:
                        pooled.update(tile, stylizers.statistics(crop(image, tile)))
            done += int(count)
            losses = mean_losses(tile_losses)
            last = done == iterations
            if print_iterations and not last and done // print_iterations > (done - count) // print_iterations:
                print_losses(losses)
            if checkpoint_iterations and not last and done % checkpoint_iterations == 0:
                yield Step(done, image.copy(), False, losses)
        bar.close()
        show(losses)
        yield Step(done, image, True, losses)
    except Stopped as stop:
        raise Stopped(stop.cause, image) from None
    except (Interrupted, NumericalError, KeyboardInterrupt) as e:  # between tiles, or a tile on Ray
        raise Stopped(e, image) from None
    finally:
        bar.close()
