"""Make sqz_weights.npz, the bundled SqueezeNet v1.1 weights, from the original tool's sqz_notop.mat.

    python convert_sqz_weights.py sqz_notop.mat [--output sqz_weights.npz]
    python convert_sqz_weights.py sqz_notop.mat --check sqz_weights.npz

The .mat holds one [kernel, bias] cell per conv layer (kernels already [kh, kw, in, out]);
the .npz holds the same float32 arrays as '<layer>/kernel' and '<layer>/bias' (bias flat),
compressed, so it loads with NumPy alone. `--check` verifies that a file equals a fresh
conversion, array for array (CI runs it against the copy in ../shared).
The weights are DeepScale's SqueezeNet v1.1 (BSD 2-clause licence, see NOTICE).
"""
import os
import sys

import numpy as np

from errors import ArgumentParser, ToolError, run_cli


def converted(mat_path):
    """{'<layer>/kernel' | '<layer>/bias': float32 array} from a validated .mat."""
    import device  # noqa: F401 - first: squeezenet imports TensorFlow, and device imports it quietly
    import squeezenet
    weights = squeezenet.validate_layers(mat_path, squeezenet.read_layers(mat_path))
    arrays = {}
    for name in sorted(weights):
        kernel, bias = weights[name]
        arrays[f"{name}/kernel"], arrays[f"{name}/bias"] = kernel, bias
    return arrays


def differences(arrays, npz_path):
    """Names of the arrays that differ between `arrays` and the .npz file (empty if equal)."""
    with np.load(npz_path, allow_pickle=False) as data:
        stored = {key: data[key] for key in data.files}
    names = sorted(set(arrays) | set(stored))
    return [n for n in names if n not in arrays or n not in stored or stored[n].dtype != np.float32
            or not np.array_equal(arrays[n], stored[n])]


def main(argv=None):
    parser = ArgumentParser(description="Convert sqz_notop.mat into the bundled sqz_weights.npz.")
    parser.add_argument("mat", help="the original tool's sqz_notop.mat")
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--output", default="sqz_weights.npz", help="where to write (default: %(default)s)")
    group.add_argument("--check", metavar="NPZ", help="only verify that NPZ equals the conversion")
    args = parser.parse_args(argv)
    arrays = converted(args.mat)
    if args.check:
        different = differences(arrays, args.check)
        if different:
            raise ToolError(f"{args.check} differs from the conversion of {args.mat}: {', '.join(different[:5])}")
        print(f"{args.check} equals the conversion of {args.mat} ({len(arrays)} arrays)")
        return
    tmp = args.output + ".tmp.npz"
    np.savez_compressed(tmp, **arrays)
    os.replace(tmp, args.output)
    print(f"wrote {args.output}: {len(arrays) // 2} layers, {os.path.getsize(args.output) / 2**20:.2f} MB")


if __name__ == "__main__":
    run_cli(main, sys.argv[1:])
