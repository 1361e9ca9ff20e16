"""Worked example: a digits ANN (scikit-learn's bundled 8×8 images, no download) compiled for Loihi 2.

    python examples/digits.py                    # MLP: train, convert, compile for loihi2, evaluate
    python examples/digits.py --arch cnn         # the CNN (conv-BN-ReLU-avgpool ×2)
    python examples/digits.py --files build/digits   # only write mlp.pt2, cal.npz, test.npz for the CLI
    python examples/digits.py --table            # the float SNN's accuracy per reset/readout/timesteps

The same with the command line (see README, "Worked example: digits on Loihi 2")::

    python examples/digits.py --files build/digits
    neurocc compile build/digits/mlp.pt2 --target loihi2 -o build/digits-loihi2 \\
        --calibration build/digits/cal.npz --timesteps 64
    neurocc evaluate build/digits-loihi2 --data build/digits/test.npz

The helpers live in :mod:`neurocc.zoo` (importable from an installed neurocc); they are
re-exported here for scripts and tests that load this file.
"""
from __future__ import annotations

import argparse

from neurocc.zoo import (  # noqa: F401
    ann_accuracy,
    compile_digits,
    load_digits_split,
    snn_accuracy_table,
    train_digits_ann,
    write_digits_files,
)


def main() -> None:  # pragma: no cover - a demo printout
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--arch", choices=("mlp", "cnn"), default="mlp")
    p.add_argument("--target", default="loihi2")
    p.add_argument("--timesteps", type=int, default=64)
    p.add_argument("--out", default="build/digits-example", help="artifact directory")
    p.add_argument("--files", metavar="DIR", help="only write the model and the data files into DIR")
    p.add_argument("--table", action="store_true", help="print the converted float SNN's accuracy table")
    args = p.parse_args()
    if args.files:
        for name, path in write_digits_files(args.files, arch=args.arch).items():
            print(f"{name:12} {path}")
        return
    if args.table:
        table = snn_accuracy_table(args.arch)
        print(f"{args.arch}: ANN test accuracy {table['ann']:.4f}; converted float SNN (accuracy / agreement):")
        for (reset, readout), rows in table["snn"].items():
            print(f"  {reset:<8} {readout:<10} " + "  ".join(f"T={t}: {a:.4f}/{g:.4f}" for t, a, g in rows))
        return
    r = compile_digits(args.out, target=args.target, arch=args.arch, timesteps=args.timesteps)
    print(f"{args.arch} on {args.target} (T={r['timesteps']}): ANN test accuracy {100 * r['ann_accuracy']:.2f}%, "
          f"emulator test accuracy {100 * r['emulator_accuracy']:.2f}% "
          f"({100 * (r['emulator_accuracy'] - r['ann_accuracy']):+.2f} points); artifact {r['artifact']}")


if __name__ == "__main__":  # pragma: no cover
    main()
