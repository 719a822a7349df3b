"""Time per impact report: cold (power flows computed) and warm (memoised), over all labels x pairs.

Usage: python benchmarks/bench_rules.py [--cold-sample N] [--warm-rounds R]
Prints figures; asserts nothing. The issue's budget: one report, power flow included, <= 150 ms.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from services.grid import RECEIVERS, SENDERS  # noqa: E402
from services.labels import LABELS, label_parts  # noqa: E402

PAIRS = [(s, r) for s in SENDERS for r in RECEIVERS if s != r]


def prediction(label: str, confidence: float = 0.95) -> dict:
    parts = label_parts(label)
    return {"label": label, "confidence": confidence, "category": {parts.category: confidence},
            "equipment": {parts.equipment: confidence}, "kind": {parts.kind: confidence}, "unknown": False}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cold-sample", type=int, default=len(LABELS),
                        help="reports timed fully cold, caches cleared before each (default: one per label)")
    parser.add_argument("--warm-rounds", type=int, default=3, help="passes over all labels x pairs when warm")
    args = parser.parse_args()

    start = time.perf_counter()
    from services.rules import assess_impact, clear_caches

    imported = time.perf_counter()
    assess_impact(prediction(LABELS[0]), *PAIRS[0])
    first = time.perf_counter()
    print(f"import services.rules (pandapower): {(imported - start) * 1e3:8.1f} ms")
    print(f"first report (builds the pandapower network): {(first - imported) * 1e3:8.1f} ms")

    cases = [(label, PAIRS[i % len(PAIRS)]) for i, label in enumerate(LABELS)][: args.cold_sample]
    cold, cold_cpu = [], []
    for label, pair in cases:
        clear_caches(networks=False)
        t0, c0 = time.perf_counter(), time.process_time()
        assess_impact(prediction(label), *pair)
        cold.append((time.perf_counter() - t0) * 1e3)
        cold_cpu.append((time.process_time() - c0) * 1e3)
    for name, values in (("wall", cold), ("CPU", cold_cpu)):
        values.sort()
        print(f"cold report, power flows computed (n={len(values)}), {name} time: mean {statistics.mean(values):.1f} ms, "
              f"median {statistics.median(values):.1f} ms, p95 {values[int(0.95 * (len(values) - 1))]:.1f} ms, "
              f"max {values[-1]:.1f} ms")

    clear_caches(networks=False)
    t0 = time.perf_counter()
    for label in LABELS:
        for pair in PAIRS:
            assess_impact(prediction(label), *pair)
    n = len(LABELS) * len(PAIRS)
    first_pass = time.perf_counter() - t0
    print(f"first pass over {len(LABELS)} labels x {len(PAIRS)} pairs = {n} reports (shared power flows): "
          f"{first_pass:.2f} s, {first_pass / n * 1e3:.2f} ms per report")

    t0, c0 = time.perf_counter(), time.process_time()
    for _ in range(args.warm_rounds):
        for label in LABELS:
            for pair in PAIRS:
                assess_impact(prediction(label), *pair).to_dict()
    warm = (time.perf_counter() - t0) / (n * args.warm_rounds)
    warm_cpu = (time.process_time() - c0) / (n * args.warm_rounds)
    print(f"warm report incl. to_dict ({n * args.warm_rounds} reports): wall {warm * 1e3:.3f} ms, "
          f"CPU {warm_cpu * 1e3:.3f} ms per report ({1 / warm_cpu:,.0f} reports/s per core)")
    print(f"load average while measuring: {', '.join(f'{x:.2f}' for x in os.getloadavg())} "
          f"({os.cpu_count()} CPUs)")


if __name__ == "__main__":
    main()
