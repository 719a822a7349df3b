"""Command line: python -m services.simulation --per-class N --seed S --out FILE.npz [--classes ...]
[--relay-view VIEW] (windows in kA on the data set's 500 MVA, 230 kV reference system)."""

from __future__ import annotations

import argparse
import io
import os
import sys
from pathlib import Path

import numpy as np

from services.labels import LABELS
from services.simulation.core import RELAY_VIEWS, generate_dataset, resolve_classes


class _OneLineParser(argparse.ArgumentParser):
    """argparse, but an error is one line on stderr (no usage block) and exit code 2."""

    def error(self, message: str):  # type: ignore[override]
        self.exit(2, f"{self.prog}: error: {message}\n")


def _parser() -> argparse.ArgumentParser:
    parser = _OneLineParser(
        prog="python -m services.simulation",
        description="Simulate labelled differential-current windows of the 45 grid events.",
    )
    parser.add_argument("--per-class", type=int, required=True, help="windows per label (>= 1)")
    parser.add_argument("--seed", type=int, required=True, help="random seed (same seed, same bytes)")
    parser.add_argument("--out", type=Path, required=True, help="output .npz file")
    parser.add_argument("--classes", nargs="+", metavar="LABEL", help="label names or ids (default: all 45)")
    parser.add_argument("--relay-view", choices=RELAY_VIEWS, default=None,
                        help="force this relay view for every internal fault (default: the random mixture)")
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if args.per_class < 1:
        parser.error(f"--per-class must be at least 1, got {args.per_class}")
    try:
        classes = resolve_classes(args.classes)
    except ValueError as exc:
        parser.error(str(exc))
    out: Path = args.out
    if out.is_dir():
        parser.error(f"cannot write {str(out)!r}: it is a folder")
    if not out.parent.is_dir() or not os.access(out.parent, os.W_OK):
        parser.error(f"cannot write {str(out)!r}: the folder does not exist or is not writable")
    X, y, params = generate_dataset(args.per_class, args.seed, classes, progress=sys.stderr.isatty(),
                                 relay_view=args.relay_view)
    buffer = io.BytesIO()
    np.savez(buffer, X=X, y=y, labels=np.array(LABELS), params=np.array(params))
    try:
        out.write_bytes(buffer.getvalue())
    except OSError as exc:
        parser.error(f"cannot write {str(out)!r}: {exc.strerror or exc}")
    print(f"wrote {len(y)} windows of {len(classes)} labels to {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
