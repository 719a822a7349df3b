"""`python -m services.training`: train the ConvNet and write the artifacts.

Default (the shipped recipe): simulate 1,000 windows per label (seed 20261124), train 24 epochs on
the CPU (about 20-25 minutes on 2 idle cores; on a busier machine the schedule is shortened to end
within --time-limit-min, 28 by default),
calibrate, evaluate on a fresh test seed, write into artifacts/.
`--data DIR` trains on labelled records instead: the public data set's folder tree as downloaded
(folders per unit and class, text files of time, Ia, Ib, Ic) or one sub-folder per label (.npy, CSV
or COMTRADE); unreadable files are listed and skipped (services.dataset).
"""

from __future__ import annotations

import argparse
import shlex
import sys
from collections.abc import Sequence
from pathlib import Path

from services.labels import resolve_label
from services.training.pipeline import TrainingConfig, train
from services.waveform import WaveformError


def _parser() -> argparse.ArgumentParser:
    defaults = TrainingConfig()
    parser = argparse.ArgumentParser(prog="python -m services.training", description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("artifacts"), help="output folder (default: artifacts/)")
    parser.add_argument("--data", type=Path, default=None, help="labelled folder tree to train on instead of simulating (the public data set as downloaded, or a folder per label)")
    parser.add_argument("--per-class", type=int, default=defaults.per_class, help="simulated training windows per label")
    parser.add_argument("--transient-per-class", type=int, default=defaults.transient_per_class,
                        help="simulated training windows per transient label (default %(default)s: a fault kind has "
                             "three labels, one per unit)")
    parser.add_argument("--validation-per-class", type=int, default=defaults.validation_per_class)
    parser.add_argument("--test-per-class", type=int, default=defaults.test_per_class)
    parser.add_argument("--classes", nargs="+", default=None, help="label names or ids to simulate (default: all 45)")
    parser.add_argument("--epochs", type=int, default=defaults.epochs)
    parser.add_argument("--batch-size", type=int, default=defaults.batch_size)
    parser.add_argument("--lr", type=float, default=defaults.learning_rate, help="peak learning rate (one-cycle)")
    parser.add_argument("--patience", type=int, default=defaults.patience, help="early-stopping patience (epochs)")
    parser.add_argument("--seed", type=int, default=defaults.seed)
    parser.add_argument("--test-seed", type=int, default=None, help="seed of the test set (default: seed + 7919)")
    parser.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    parser.add_argument("--time-limit-min", type=float, default=defaults.time_limit_min,
                        help="do not start an epoch that would end after this many minutes (0: no limit)")
    parser.add_argument("--garbage-per-family", type=int, default=defaults.garbage_per_family)
    parser.add_argument("--connection-heads-per-class", type=int, default=defaults.connection_heads_per_class,
                        help="simulated windows per label and stated relay connection for the connection heads "
                             f"(default {defaults.connection_heads_per_class}; 0: none)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    for name in ("per_class", "transient_per_class", "validation_per_class", "test_per_class", "epochs", "batch_size",
                 "garbage_per_family"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be at least 1")
    if args.connection_heads_per_class < 0:
        parser.error("--connection-heads-per-class must be 0 (none) or more")
    try:
        classes = [resolve_label(value) for value in args.classes] if args.classes else None
    except ValueError as exc:
        parser.error(str(exc))
    config = TrainingConfig(
        out_dir=args.out,
        data_dir=args.data,
        per_class=args.per_class,
        transient_per_class=args.transient_per_class,
        validation_per_class=args.validation_per_class,
        test_per_class=args.test_per_class,
        classes=classes,
        epochs=args.epochs,
        batch_size=args.batch_size,
        learning_rate=args.lr,
        patience=args.patience,
        seed=args.seed,
        test_seed=args.test_seed,
        device=args.device,
        threads=args.threads,
        time_limit_min=args.time_limit_min or None,
        garbage_per_family=args.garbage_per_family,
        connection_heads_per_class=args.connection_heads_per_class,
        progress=not args.no_progress,
    )
    arguments = list(sys.argv[1:] if argv is None else argv)
    command = " ".join(["python -m services.training", shlex.join(arguments)]).strip()
    try:
        train(config, command=command)
    except (WaveformError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
