"""Inference speed: windows/s (torch and ONNX Runtime), batch-1 latency, fraction of the roofline.

    python benchmarks/bench_inference.py [--artifacts DIR] [--batch 256] [--seconds 3] [--threads N]

The last column is predict() with a stated relay connection (services.inference.connections): the
same network call, then that connection's head instead of the shipped one, outside the micro-batcher.

The roofline: one window is 23.2 MFLOP (services.model.FLOPS_PER_WINDOW); a 2-core AVX-512
machine peaks at about 64-128 GFLOP/s in float32, i.e. 2,760-5,520 windows/s. Prints the load
average before and after, since other processes on the machine change the figures.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from services.labels import LABELS  # noqa: E402
from services.model import FLOPS_PER_WINDOW  # noqa: E402

ROOFLINE_FLOPS = (64e9, 128e9)


def _random_artifacts(folder: Path) -> Path:
    """Random weights saved the original way, for when no trained artifacts exist."""
    import torch

    from services.model import ConvNet

    torch.manual_seed(0)
    torch.save(ConvNet().state_dict(), folder / "best_model.pth")
    (folder / "labels.json").write_text(json.dumps({str(i): label for i, label in enumerate(LABELS)}))
    np.savez(folder / "normalization_stats.npz", mean=np.zeros((1, 3, 1), np.float32), std=np.ones((1, 3, 1), np.float32))
    return folder


def _windows(n: int, seed: int = 0) -> np.ndarray:
    """Simulated events if the simulator is importable, else 60 Hz sinusoids with noise."""
    try:
        from services.simulation import generate_dataset

        X, _, _ = generate_dataset(max(1, -(-n // len(LABELS))), seed=seed)
        return np.ascontiguousarray(X[np.random.default_rng(seed).permutation(len(X))[:n]])
    except Exception:  # noqa: BLE001 - the benchmark must run without the simulator
        t = np.arange(726) / 1e4
        rng = np.random.default_rng(seed)
        base = np.sin(2 * np.pi * 60 * t[None, None, :] + rng.uniform(0, 6.3, (n, 3, 1)))
        return (base * rng.uniform(0.1, 5, (n, 1, 1)) + rng.normal(0, 0.01, (n, 3, 726))).astype(np.float32)


def _throughput(run, batch: np.ndarray, seconds: float) -> float:
    run(batch)
    count, started = 0, time.perf_counter()
    while time.perf_counter() - started < seconds:
        run(batch)
        count += len(batch)
    return count / (time.perf_counter() - started)


def _latency(run, window: np.ndarray, seconds: float) -> tuple[float, float]:
    for _ in range(20):
        run(window)
    samples = []
    started = time.perf_counter()
    while time.perf_counter() - started < seconds:
        begin = time.perf_counter()
        run(window)
        samples.append(time.perf_counter() - begin)
    return float(np.percentile(samples, 50) * 1e3), float(np.percentile(samples, 99) * 1e3)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--artifacts", default=None, help="artifacts folder (default: the repository's artifacts/)")
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--seconds", type=float, default=3.0, help="time per measurement")
    parser.add_argument("--threads", type=int, default=None, help="inference threads (default: the service's default)")
    args = parser.parse_args()

    from services.inference import InferenceOptions, ModelUnavailable
    from services.inference.predictor import Predictor

    options = InferenceOptions(threads=args.threads)

    temporary = tempfile.TemporaryDirectory()
    try:
        onnx = Predictor(args.artifacts, backend="onnxruntime", options=options)
        torch_predictor = Predictor(args.artifacts, backend="torch", options=options)
        source = str(onnx.artifacts_dir)
    except ModelUnavailable as exc:
        folder = _random_artifacts(Path(temporary.name))
        onnx = Predictor(folder, backend="onnxruntime", options=options)
        torch_predictor = Predictor(folder, backend="torch", options=options)
        source = f"random weights ({exc})"

    load_before = os.getloadavg()
    batch = _windows(args.batch)
    window = batch[:1]
    print(f"artifacts: {source}")
    print(f"threads: {options.resolved_threads}  batch: {args.batch}  cpu count: {os.cpu_count()}  "
          f"load average before: {load_before[0]:.2f} {load_before[1]:.2f} {load_before[2]:.2f}")
    rows = []
    for name, predictor in (("torch", torch_predictor), ("onnxruntime", onnx)):
        backend_rate = _throughput(predictor._backend.run, batch, args.seconds)
        service_rate = _throughput(predictor.predict_batch, batch, args.seconds)
        lean_rate = _throughput(lambda x, p=predictor: p.predict_batch(x, explain=False), batch, args.seconds)
        backend_p50, backend_p99 = _latency(predictor._backend.run, window, args.seconds)
        predict_p50, predict_p99 = _latency(lambda x, p=predictor: p.predict(x[0]), window, args.seconds)
        stated = ((lambda x, p=predictor: p.predict(x[0], relay_connection="zero_sequence_removed"))
                  if predictor.connection_heads is not None else None)
        stated_p50, stated_p99 = _latency(stated, window, args.seconds) if stated else (float("nan"),) * 2
        rows.append((name, backend_rate, service_rate, lean_rate, backend_p50, backend_p99, predict_p50, predict_p99,
                     stated_p50, stated_p99))
    print()
    print(f"{'backend':<12} {'network w/s':>12} {'roofline %':>14} {'predict_batch w/s':>18} {'(no explain)':>13} "
          f"{'batch-1 network p50/p99 ms':>27} {'predict() p50/p99 ms':>21} {'stated connection p50/p99 ms':>29}")
    for name, backend_rate, service_rate, lean_rate, b50, b99, p50, p99, s50, s99 in rows:
        achieved = backend_rate * FLOPS_PER_WINDOW
        roofline = f"{achieved / ROOFLINE_FLOPS[1]:.0%}-{achieved / ROOFLINE_FLOPS[0]:.0%}"
        print(f"{name:<12} {backend_rate:>12,.0f} {roofline:>14} {service_rate:>18,.0f} {lean_rate:>13,.0f} "
              f"{b50:>15.3f} / {b99:<9.3f} {p50:>10.3f} / {p99:<8.3f} {s50:>14.3f} / {s99:<8.3f}")
    load_after = os.getloadavg()
    print()
    print(f"{FLOPS_PER_WINDOW / 1e6:.1f} MFLOP per window; roofline {ROOFLINE_FLOPS[0] / 1e9:.0f}-"
          f"{ROOFLINE_FLOPS[1] / 1e9:.0f} GFLOP/s = {ROOFLINE_FLOPS[0] / FLOPS_PER_WINDOW:,.0f}-"
          f"{ROOFLINE_FLOPS[1] / FLOPS_PER_WINDOW:,.0f} windows/s")
    print(f"load average after: {load_after[0]:.2f} {load_after[1]:.2f} {load_after[2]:.2f}")
    temporary.cleanup()
    return 0


if __name__ == "__main__":
    sys.exit(main())
