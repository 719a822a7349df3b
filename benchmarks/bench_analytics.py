"""Time of the signal analytics of one window (services.analytics), on the shipped sample windows.

Usage: python benchmarks/bench_analytics.py [--rounds N] [--compare RUNS]
Prints p50/p95 of `compute_analytics` alone, of it plus `to_dict()` (what the API and the pages
use), and the machine's load from `uptime`; asserts nothing. The issue's budget: <= 20 ms a window.
With --compare, also the comparison of four events: the /compare layout on the server (analytics
cache cold and warm) and, in headless Chromium, from navigation to the 12 traces drawn and the table
shown (budget: <= 1 s).
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
    parser.add_argument("--compare", type=int, default=0, metavar="RUNS",
                        help="also time the comparison of four events RUNS times (server and Chromium)")
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
    if args.compare:
        bench_compare(args.compare)
    print("load:", subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip())


def bench_compare(runs: int) -> None:
    """The /compare page of four analyses: server layout time and browser render time."""
    import tempfile

    from app.pages import compare
    from app.settings import Settings
    from components import ids
    from scripts.screenshots import browser, start_server
    from services.analytics.cache import ANALYTICS_CACHE

    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(artifacts_dir=ROOT / "artifacts", database_url=f"sqlite:///{tmp}/history.db",
                            instance_dir=Path(tmp) / "instance")
        app, server = start_server(settings, 8791)
        context = app.server.extensions["grid_event_monitor"]
        chosen = [sample["filename"] for sample in context.samples()[::20][:4]]
        numbers = [context.analyze_sample(name, sender="prosumer-a", receiver="consumer-home",
                                          transfer_kw=5.0).analysis_id for name in chosen]
        query = ",".join(map(str, numbers))
        cold, warm = [], []
        with app.server.test_request_context("/compare"):
            for _ in range(runs):
                ANALYTICS_CACHE.clear()  # the cold path
                start = time.perf_counter()
                compare.layout(ids=query)
                cold.append((time.perf_counter() - start) * 1000.0)
                start = time.perf_counter()
                compare.layout(ids=query)
                warm.append((time.perf_counter() - start) * 1000.0)
        print(f"/compare layout, 4 events, analytics cold: {percentiles(cold)}")
        print(f"/compare layout, 4 events, analytics cached: {percentiles(warm)}")
        driver = browser()
        rendered = []
        try:
            for _ in range(runs + 1):
                start = time.perf_counter()
                driver.get(f"http://127.0.0.1:8791/compare?ids={query}")
                while driver.execute_script(
                        f"const gd = document.querySelector('#{ids.COMPARE_WAVEFORMS} .js-plotly-plot');"
                        f"return !(gd && gd.querySelectorAll('.scatterlayer .trace').length === 12 && "
                        f"document.querySelectorAll('#{ids.COMPARE_TABLE} tbody tr').length === 4);"):
                    time.sleep(0.005)
                rendered.append((time.perf_counter() - start) * 1000.0)
        finally:
            driver.quit()
            server.shutdown()
        print(f"/compare in Chromium, first navigation (scripts not cached yet): {rendered[0]:.0f} ms")
        print(f"/compare in Chromium, navigation to 12 traces and the table: {percentiles(rendered[1:])}")


if __name__ == "__main__":
    main()
