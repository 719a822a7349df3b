"""Peak memory and time to answer an upload, per upload kind, for 10 MB and 2 MB inputs.

Each case runs in a fresh Python process (so one case's peak cannot hide another's): the process
imports the ingest code, reads the input file from disk, notes its RSS, then reads the upload with
`services.ingest.parse_uploaded_files` (the code behind `/api/predict-file` and the dashboard's
upload) and reports the peak RSS growth (the kernel's VmHWM, reset through /proc/self/clear_refs
just before, minus the RSS then; ru_maxrss would carry the parent's peak across fork/exec) and
the wall time until the window is read or the upload refused. The model is not involved.

    .venv/bin/python benchmarks/bench_upload_memory.py            # 10 MB and 2 MB of every kind
    .venv/bin/python benchmarks/bench_upload_memory.py --sizes 10  # 10 MB only
"""

from __future__ import annotations

import argparse
import io
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

MB = 1024 * 1024


def _rows_to_size(row: bytes, size: int) -> bytes:
    return row * (size // len(row))


def _csv_one_column(size: int) -> list[tuple[str, bytes]]:
    return [("one-column.csv", _rows_to_size(b"0.1234567\n", size))]


def _csv_four_columns(size: int) -> list[tuple[str, bytes]]:
    rows = int(size / 40)
    table = np.column_stack([np.arange(rows) / 1e4, np.sin(np.arange(rows * 3) / 17.0).reshape(rows, 3)])
    text = io.StringIO()
    np.savetxt(text, table, fmt="%.6f", delimiter=",", header="time,Ia,Ib,Ic", comments="")
    return [("recording.csv", text.getvalue().encode()[:size])]


def _npy(size: int) -> list[tuple[str, bytes]]:
    buffer = io.BytesIO()
    np.save(buffer, np.zeros((3, (size - 128) // 12), dtype=np.float32))
    return [("big.npy", buffer.getvalue())]


def _npy_header_lie(_size: int) -> list[tuple[str, bytes]]:
    header = "{'descr': '<f4', 'fortran_order': False, 'shape': (3, 1000000000000), }"
    header += " " * (63 - (len(header) + 10) % 64) + "\n"
    return [("lie.npy", b"\x93NUMPY\x01\x00" + len(header).to_bytes(2, "little") + header.encode() + b"\0" * 4096)]


def _comtrade(size: int, fmt: str) -> tuple[bytes, bytes]:
    from tests.test_comtrade_ingest import PHASE_CHANNELS, write_comtrade

    per_sample = {"ASCII": 40, "BINARY": 16}[fmt]
    samples = int(size * 0.97) // per_sample  # the .cfg and the framing fit under the 10 MB limit
    values = 1000.0 * np.sin(2 * np.pi * 60.0 * np.arange(samples) / 1e4)[None, :] * np.array([[1.0], [0.9], [0.8]])
    cfg, dat, _ = write_comtrade(values, PHASE_CHANNELS, fmt=fmt, trigger_ms=30.0)
    return cfg, dat


def _comtrade_pair(fmt: str):
    def build(size: int) -> list[tuple[str, bytes]]:
        cfg, dat = _comtrade(size, fmt)
        return [("record.cfg", cfg), ("record.dat", dat)]
    return build


def _cff(size: int) -> list[tuple[str, bytes]]:
    from tests.test_comtrade_ingest import to_cff

    cfg, dat = _comtrade(size, "BINARY")
    return [("record.cff", to_cff(cfg, dat, "BINARY"))]


KINDS = {
    "csv, one column": _csv_one_column,
    "csv, 4 columns (long recording)": _csv_four_columns,
    "npy (3, n) float32": _npy,
    "npy header claiming (3, 10^12)": _npy_header_lie,
    "comtrade cfg+dat ASCII": _comtrade_pair("ASCII"),
    "comtrade cfg+dat BINARY": _comtrade_pair("BINARY"),
    "comtrade .cff BINARY": _cff,
}

_CHILD = r"""
import json, sys, time
from pathlib import Path
sys.path.insert(0, sys.argv[1])
from services.ingest import parse_uploaded_files
from services.waveform import WaveformError

def status_kib(field):
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(field)

files = [(path.split("/")[-1].split("__", 1)[1], Path(path).read_bytes()) for path in sys.argv[2:]]
Path("/proc/self/clear_refs").write_text("5")  # reset the peak (VmHWM) to the RSS now
before = status_kib("VmRSS")
start = time.perf_counter()
try:
    parse_uploaded_files(files, max_bytes=10 * 1024 * 1024)
    outcome = "read"
except WaveformError as exc:
    outcome = "refused: " + str(exc)[:90]
seconds = time.perf_counter() - start
peak = status_kib("VmHWM")
print(json.dumps({"seconds": seconds, "peak_growth_mb": max(peak - before, 0) / 1024, "outcome": outcome}))
"""


def run_case(files: list[tuple[str, bytes]], folder: Path) -> dict:
    paths = []
    for k, (name, data) in enumerate(files):
        path = folder / f"{k}__{name}"
        path.write_bytes(data)
        paths.append(str(path))
    result = subprocess.run([sys.executable, "-c", _CHILD, str(ROOT), *paths], capture_output=True, text=True,
                            timeout=600)
    for path in paths:
        Path(path).unlink()
    if result.returncode:
        last = (result.stderr.strip().splitlines() or ["no output"])[-1]
        return {"seconds": float("nan"), "peak_growth_mb": float("nan"), "outcome": f"CRASHED: {last[:90]}"}
    return json.loads(result.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=float, nargs="+", default=[10.0, 2.0], help="input sizes in MB")
    args = parser.parse_args(argv)
    print(f"{'kind':34s} {'size':>8s} {'peak RSS growth':>16s} {'time':>9s}  outcome")
    with tempfile.TemporaryDirectory() as tmp:
        for kind, build in KINDS.items():
            for size_mb in args.sizes:
                files = build(int(size_mb * MB))
                total = sum(len(data) for _, data in files)
                result = run_case(files, Path(tmp))
                print(f"{kind:34s} {total / MB:6.2f}MB {result['peak_growth_mb']:13.1f} MB "
                      f"{result['seconds'] * 1000:7.0f}ms  {result['outcome']}", flush=True)
                if kind.startswith("npy header"):
                    break
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
