"""Every setting of a run, in immutable groups: what the command line, batch.py, the Ray workers
and Python callers hand to the pipeline.

Each setting is named as its command-line flag (`style_weight` is --style-weight) and has the
flag's default. `Settings.from_flags(**flags)` fills in the defaults and checks every value (a
UsageError names the flag); `Settings.flags()` gives them all back, as every output file stores
them (`neural_style.py --show-params FILE`).
"""
import dataclasses
import math
import os
from dataclasses import dataclass

import numpy as np

import optimizers
from errors import UsageError

NETWORK_TYPES = ("vgg", "sqz")
POOLINGS = ("max", "avg")
STYLE_FEAT_TYPES = ("gram", "mean", "distr", "w2")
PRESERVE_COLORS = ("none", "before", "all", "out", "interm")
PRECISIONS = ("auto", "float32", "bfloat16", "float16")
ANTIALIAS = ("auto", "on", "off")
MIN_TILE_SIZE = 128  # smaller tiles leave too little room inside their overlaps


@dataclass(frozen=True)
class Inputs:
    """The images and how they are scaled and weighed. `content`, `styles` and `initial` are
    file names (a Python caller's in-memory images are named here by a description)."""
    content: str = None
    styles: tuple = ()
    initial: str = None
    width: int = None                # the content is resized to this width
    style_scales: tuple = None       # one per style: its width is scale x the content's
    style_blend_weights: tuple = None  # one per style, normalised to sum 1 (default: equal)
    initial_noiseblend: float = 0.0
    seed: int = None


@dataclass(frozen=True)
class LossWeights:
    """The loss's weights (losses.py gives the formulas)."""
    content_weight: float = 5.0
    content_weight_blend: float = 1.0
    style_weight: float = 500.0
    style_layer_weight_exp: float = 1.0
    style_distr_weight: float = 0.0
    style_feat_type: str = "gram"
    tv_weight: float = 100.0
    ashift: float = 0.0
    unbounded: bool = False  # optimise without keeping the pixel range, as the original (losses.py)


@dataclass(frozen=True)
class OptimizerSettings:
    optim: str = "lbfgs"
    learning_rate: float = 10.0  # Adam's
    beta1: float = 0.9
    beta2: float = 0.999
    eps: float = 1e-08
    average: float = 0.0  # Adam's result: 0 the best iterate, else the moving average of the iterates with this decay


@dataclass(frozen=True)
class Hierarchy:
    """The scales a run optimises (hierarchy.py), and the colour kept at each."""
    iterations: int = 1000
    max_hierarchy: int = 1  # or "auto": the levels, their iterations and style sizes for the width (prints)
    preserve_colors: str = "none"
    h_preserve_colors: bool = False


@dataclass(frozen=True)
class Network:
    network_type: str = "vgg"
    network_file: str = None
    pooling: str = "max"
    precision: str = "auto"
    antialias: str = "auto"  # on, off, or auto: on for SqueezeNet, off for VGG19 (backends.antialiased)


@dataclass(frozen=True)
class Tiles:
    """Levels in tiles (print sizes), and where they run."""
    tile_size: int = None   # None: only what does not fit in memory; 0: never
    ray: str = None         # a Ray address, or "local"
    cpus_per_task: int = 1
    gpus_per_task: float = 0


@dataclass(frozen=True)
class Output:
    output: str = None      # None: the auto-generated name (names.py)
    out_postfix: str = None
    no_collage: bool = False
    print_iterations: int = None
    checkpoint_iterations: int = None
    checkpoint_output: str = "checkpoint%s.jpg"
    bit_depth: int = 8  # of the output: 16 keeps 16 bits per channel (.png or .tif)


GROUPS = {"inputs": Inputs, "losses": LossWeights, "optimizer": OptimizerSettings, "hierarchy": Hierarchy,
          "network": Network, "tiles": Tiles, "output": Output}
GROUP_OF = {field.name: group for group, cls in GROUPS.items() for field in dataclasses.fields(cls)}
DEFAULTS = {field.name: field.default for cls in GROUPS.values() for field in dataclasses.fields(cls)}
TUPLES = ("styles", "style_scales", "style_blend_weights")
FLOATS = ("initial_noiseblend", "content_weight", "content_weight_blend", "style_weight", "style_layer_weight_exp",
          "style_distr_weight", "tv_weight", "ashift", "learning_rate", "beta1", "beta2", "eps",
          "average")


@dataclass(frozen=True)
class Settings:
    inputs: Inputs = Inputs()
    losses: LossWeights = LossWeights()
    optimizer: OptimizerSettings = OptimizerSettings()
    hierarchy: Hierarchy = Hierarchy()
    network: Network = Network()
    tiles: Tiles = Tiles()
    output: Output = Output()

    @classmethod
    def from_flags(cls, **flags):
        """Settings from flags named as on the command line (underscores for dashes); the rest
        take the flags' defaults. A UsageError for an unknown name or a value that cannot work."""
        unknown = sorted(set(flags) - set(DEFAULTS))
        if unknown:
            raise UsageError(f"unknown setting(s): {', '.join(unknown)} (settings are named as the command "
                             "line's flags, e.g. style_weight for --style-weight)")
        values = dict(DEFAULTS, **flags)
        for name in TUPLES:
            if isinstance(values[name], str):
                values[name] = (values[name],)
            elif values[name] is not None:
                values[name] = tuple(values[name])
        for name in FLOATS:
            if isinstance(values[name], int) and not isinstance(values[name], bool):
                values[name] = float(values[name])
        check(values)
        return cls(**{group: group_class(**{name: values[name] for name in values if GROUP_OF[name] == group})
                      for group, group_class in GROUPS.items()})

    def flags(self):
        """{flag name: value} of every setting, in the flags' names."""
        out = {}
        for group in GROUPS:
            out.update(dataclasses.asdict(getattr(self, group)))
        return out

    def replace(self, **flags):
        """A copy with some settings changed (checked again)."""
        return Settings.from_flags(**dict(self.flags(), **flags))

    @property
    def style_scales(self):
        return self.inputs.style_scales or (1.0,) * len(self.inputs.styles)

    @property
    def style_blend_weights(self):
        """The styles' blend weights normalised to sum 1 (equal by default)."""
        weights = self.inputs.style_blend_weights
        weights = np.ones(len(self.inputs.styles)) if weights is None else np.asarray(weights, dtype=np.float64)
        return weights / weights.sum()


def check(v):
    """Usage errors, found before any work starts: `v` holds every setting by flag name."""
    missing = [flag for flag, value in (("--content", v["content"]), ("--styles", v["styles"])) if not value]
    if missing:
        raise UsageError(f"the following arguments are required: {', '.join(missing)}")
    choices = (("--optim", "optim", optimizers.NAMES), ("--network-type", "network_type", NETWORK_TYPES),
               ("--pooling", "pooling", POOLINGS), ("--style-feat-type", "style_feat_type", STYLE_FEAT_TYPES),
               ("--preserve-colors", "preserve_colors", PRESERVE_COLORS), ("--precision", "precision", PRECISIONS),
               ("--antialias", "antialias", ANTIALIAS))
    for flag, name, allowed in choices:
        if v[name] not in allowed:
            raise UsageError(f"{flag} must be one of {', '.join(allowed)}, got {v[name]!r}")
    if v["max_hierarchy"] != "auto" and not isinstance(v["max_hierarchy"], int):
        raise UsageError(f"--max-hierarchy must be a number of levels or auto, got {v['max_hierarchy']!r}")
    levels = None if v["max_hierarchy"] == "auto" else v["max_hierarchy"]
    for flag, value, low in (("--iterations", v["iterations"], 1), ("--print-iterations", v["print_iterations"], 1),
                             ("--checkpoint-iterations", v["checkpoint_iterations"], 1),
                             ("--width", v["width"], 1), ("--max-hierarchy", levels, 1)):
        if value is not None and value < low:
            raise UsageError(f"{flag} must be at least {low}, got {value}")
    for flag, value in (("--content-weight-blend", v["content_weight_blend"]),
                        ("--initial-noiseblend", v["initial_noiseblend"])):
        if not 0.0 <= value <= 1.0:
            raise UsageError(f"{flag} must be between 0 and 1, got {value}")
    for flag, value in (("--content-weight", v["content_weight"]), ("--style-weight", v["style_weight"]),
                        ("--style-distr-weight", v["style_distr_weight"]), ("--tv-weight", v["tv_weight"]),
                        ("--style-layer-weight-exp", v["style_layer_weight_exp"])):
        if not value >= 0.0:
            raise UsageError(f"{flag} must be 0 or more, got {value}")
    count = len(v["styles"])
    for flag, values in (("--style-scales", v["style_scales"]), ("--style-blend-weights", v["style_blend_weights"])):
        if values is not None and len(values) != count:
            raise UsageError(f"{flag} needs one value per style: {count} style(s), {len(values)} value(s)")
    if v["style_scales"] and not all(s > 0 for s in v["style_scales"]):
        raise UsageError(f"--style-scales must all be above 0, got {list(v['style_scales'])}")
    if v["style_blend_weights"] is not None:
        if not all(w >= 0.0 and math.isfinite(w) for w in v["style_blend_weights"]):
            raise UsageError(f"--style-blend-weights must each be 0 or more, got {list(v['style_blend_weights'])}")
        if sum(v["style_blend_weights"]) <= 0:
            raise UsageError("--style-blend-weights must not all be 0")
    pattern = v["checkpoint_output"]
    if "%s" not in pattern:
        raise UsageError(f"--checkpoint-output must contain %s (replaced by size and iteration), got {pattern!r}")
    try:
        pattern % "x"
    except (TypeError, ValueError):
        raise UsageError(f"--checkpoint-output must contain exactly one %s and no other %% codes "
                         f"(write %%%% for a literal %%), got {pattern!r}") from None
    if not v["learning_rate"] > 0:
        raise UsageError(f"--learning-rate must be above 0, got {v['learning_rate']}")
    for flag, value in (("--beta1", v["beta1"]), ("--beta2", v["beta2"])):
        if not 0.0 <= value < 1.0:
            raise UsageError(f"{flag} must be at least 0 and below 1, got {value}")
    if not 0.0 <= v["average"] < 1.0:
        raise UsageError(f"--average must be at least 0 and below 1, got {v['average']}")
    if not v["eps"] > 0:
        raise UsageError(f"--eps must be above 0, got {v['eps']}")
    if v["cpus_per_task"] < 1 or not v["gpus_per_task"] >= 0:
        raise UsageError("--cpus-per-task must be at least 1 and --gpus-per-task 0 or more")
    if v["bit_depth"] not in (8, 16):
        raise UsageError(f"--bit-depth must be 8 or 16, got {v['bit_depth']}")
    if v["bit_depth"] == 16 and os.path.splitext(v["output"] or ".jpg")[1].lower() not in (".png", ".tif", ".tiff"):
        raise UsageError("--bit-depth 16 needs an --output ending in .png or .tif (JPEG holds 8 bits per channel)")
    tile_size = v["tile_size"]
    if tile_size is not None and tile_size != 0 and tile_size < MIN_TILE_SIZE:
        raise UsageError(f"--tile-size must be 0 (no tiles) or at least {MIN_TILE_SIZE}, got {tile_size}")
