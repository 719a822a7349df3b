"""Time of the signal analytics of one window (services.analytics), on the shipped sample windows.

Usage: python benchmarks/bench_analytics.py [--rounds N]
Prints p50/p95 of `compute_analytics` alone, of it plus `to_dict()` (what the API and the pages
use), and the machine's load from `uptime`; asserts nothing. The issue's budget: <= 20 ms a window.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from services.analytics import compute_analytics  # noqa: E402


def windows() -> list[np.ndarray]:
    """The shipped sample windows (45 labels), or simulated ones if the folder is missing."""
    files = sorted((ROOT / "artifacts" / "sample_data").glob("*.npy"))
    if files:
        return [np.load(path).astype(np.float32) for path in files]
    from services.simulation import simulate_event

    return [simulate_event(label, seed=label)[0] for label in range(45)]


def percentiles(times_ms: list[float]) -> str:
    ordered = sorted(times_ms)
    p95 = ordered[min(len(ordered) - 1, int(round(0.95 * (len(ordered) - 1))))]
    return f"p50 {statistics.median(ordered):.2f} ms, p95 {p95:.2f} ms, max {ordered[-1]:.2f} ms (n={len(ordered)})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5, help="passes over every sample window")
    args = parser.parse_args()
    data = windows()
    compute_analytics(data[0]).to_dict()  # warm-up: projections cached, numpy paths loaded
    alone, with_json = [], []
    for _ in range(args.rounds):
        for window in data:
            start = time.perf_counter()
            result = compute_analytics(window)
            middle = time.perf_counter()
            result.to_dict()
            end = time.perf_counter()
            alone.append((middle - start) * 1000.0)
            with_json.append((end - start) * 1000.0)
    print(f"windows: {len(data)} x {args.rounds} rounds")
    print(f"compute_analytics:           {percentiles(alone)}")
    print(f"compute_analytics + to_dict: {percentiles(with_json)}")
    print("load:", subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip())


if __name__ == "__main__":
    main()
