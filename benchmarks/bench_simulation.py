"""Generation speed of the simulator: 45 labels x 400 windows (issue 2 asks <= 60 s on 2 cores).

Run: python benchmarks/bench_simulation.py [--per-class 400] [--repeat 3]
Prints seconds and windows/s for the whole set and the slowest labels.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from services.labels import LABELS  # noqa: E402
from services.simulation import generate_dataset  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--per-class", type=int, default=400)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    n = args.per_class * len(LABELS)
    timings = []
    for _ in range(args.repeat):
        start = time.perf_counter()
        generate_dataset(args.per_class, seed=1)
        timings.append(time.perf_counter() - start)
    best = min(timings)
    print(f"45 x {args.per_class} = {n} windows: best {best:.2f} s of {args.repeat} "
          f"({n / best:,.0f} windows/s), all runs {', '.join(f'{t:.2f}' for t in timings)} s")
    per_label = []
    for label_id, label in enumerate(LABELS):
        start = time.perf_counter()
        generate_dataset(args.per_class, seed=1, classes=[label_id])
        per_label.append((time.perf_counter() - start, label))
    for seconds, label in sorted(per_label, reverse=True)[:5]:
        print(f"  slowest: {label}: {seconds:.3f} s ({args.per_class / seconds:,.0f} windows/s)")


if __name__ == "__main__":
    main()
