"""CLI: ``python -m services.shiftset --per-class N --seed S --out F.npz [--transients-only]``.

Writes X (n,3,726) float32 kA, y (n,) int64, labels (45 strings) and params (JSON text, one object
per window) to an .npz. These windows are for evaluation only, never for training.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

from services.labels import LABELS
from services.shiftset import VIEWS, generate_independent_transients, generate_shift_set


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="python -m services.shiftset",
        description="Write labelled shift-set windows (kA, 500 MVA / 230 kV base) to an .npz: an "
                    "independent generator for evaluation only, never for training.")
    ap.add_argument("--per-class", type=int, default=100, help="windows per label (default 100)")
    ap.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    ap.add_argument("--out", type=Path, required=True, help="output .npz file")
    ap.add_argument("--transients-only", action="store_true", help="only the six transient labels (39-44)")
    ap.add_argument("--classes", type=str, default=None, help="comma-separated label ids or strings")
    ap.add_argument("--views", type=str, default=None,
                    help=f"comma-separated relay views to draw from (default all): {', '.join(VIEWS)}")
    args = ap.parse_args(argv)
    if args.per_class < 1:
        ap.error("--per-class must be at least 1")
    views = None if args.views is None else [v.strip() for v in args.views.split(",") if v.strip()]
    start = time.perf_counter()
    try:
        if args.transients_only:
            x, y, params = generate_independent_transients(args.per_class, args.seed, views=views)
        else:
            classes = None if args.classes is None else [c.strip() for c in args.classes.split(",") if c.strip()]
            x, y, params = generate_shift_set(args.per_class, args.seed, classes=classes, views=views)
    except ValueError as exc:
        ap.error(str(exc))
    elapsed = time.perf_counter() - start  # noqa: F821 (always bound: ap.error exits)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(args.out, X=x, y=y, labels=np.array(LABELS), params=np.array(json.dumps(params)))
    print(f"wrote {len(y)} windows ({len(set(y.tolist()))} labels, seed {args.seed}) to {args.out} "
          f"in {elapsed:.1f} s; units kA; evaluation only, never for training")
    return 0


if __name__ == "__main__":
    sys.exit(main())
