"""Peak memory and time to answer an upload, per upload kind, for 10 MB and 2 MB inputs.

Each case runs in a fresh Python process (so one case's peak cannot hide another's): the process
imports the ingest code, reads the input file from disk, notes its RSS, then reads the upload with
`services.ingest.parse_uploaded_files` (the code behind `/api/predict-file` and the dashboard's
upload) and reports the peak RSS growth (the kernel's VmHWM, reset through /proc/self/clear_refs
just before, minus the RSS then; ru_maxrss would carry the parent's peak across fork/exec) and
the wall time until the window is read or the upload refused. The model is not involved.
With `--route api` the process instead builds the app (SQLite history), warms the model with one
`/predict`, and measures the whole `POST /api/predict-file` request, multipart parsing, analysis
and history write included (the request body is built before the measurement starts); with
`--route dash` the same for the Analyze page's upload, i.e. Dash's callback request carrying the
files as base64 data URLs (4/3 of their size).

    .venv/bin/python benchmarks/bench_upload_memory.py            # 10 MB and 2 MB of every kind
    .venv/bin/python benchmarks/bench_upload_memory.py --sizes 10  # 10 MB only
    .venv/bin/python benchmarks/bench_upload_memory.py --route api # the whole POST /api/predict-file
    .venv/bin/python benchmarks/bench_upload_memory.py --route dash  # the dashboard's upload callback
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


def _csv_long_cells(size: int) -> list[tuple[str, bytes]]:
    """726 rows of time, Ia, Ib, Ic whose currents run to thousands of digits."""
    digits = max(int(size * 0.97) // (726 * 3) - 4, 1)
    cell = b"1." + b"1" * digits
    rows = (b"%.4f," % (k / 1e4) + b",".join([cell] * 3) + b"\n" for k in range(726))
    return [("long-cells.csv", b"".join(rows))]


def _form_feeds(size: int) -> list[tuple[str, bytes]]:
    return [("feeds.txt", b"\x0c" * size)]


def _comtrade_blank_fields(size: int) -> list[tuple[str, bytes]]:
    """An ASCII record whose time stamps are all blank (allowed when the .cfg gives the rate)."""
    cfg, dat = _comtrade(size, "ASCII")
    rows = (b",".join([row.split(b",", 1)[0], b"", *row.split(b",")[2:]]) for row in dat.split(b"\r\n") if row)
    return [("blank.cfg", cfg), ("blank.dat", b"\r\n".join(rows) + b"\r\n")]


def _comtrade_wide(size: int) -> list[tuple[str, bytes]]:
    """An ASCII record of 4,000 analog channels (few samples per channel)."""
    from tests.test_comtrade_ingest import Channel, write_comtrade

    channels = [Channel(f"I{k}", "") for k in range(3997)] + [Channel("IdA", "A"), Channel("IdB", "B"),
                                                              Channel("IdC", "C")]
    samples = max(int(size * 0.9) // (len(channels) * 7), 10)
    values = np.ones((len(channels), samples))
    cfg, dat, _ = write_comtrade(values, channels, fmt="ASCII", trigger_ms=1.0, status_channels=0)
    return [("wide.cfg", cfg), ("wide.dat", dat)]


KINDS = {
    "csv, one column": _csv_one_column,
    "csv, 4 columns (long recording)": _csv_four_columns,
    "csv, 726 rows of long numbers": _csv_long_cells,
    "text of form feeds": _form_feeds,
    "npy (3, n) float32": _npy,
    "npy header claiming (3, 10^12)": _npy_header_lie,
    "comtrade cfg+dat ASCII": _comtrade_pair("ASCII"),
    "comtrade ASCII, blank time stamps": _comtrade_blank_fields,
    "comtrade ASCII, 4000 channels": _comtrade_wide,
    "comtrade cfg+dat BINARY": _comtrade_pair("BINARY"),
    "comtrade .cff BINARY": _cff,
}

_CHILD = r"""
import json, sys, tempfile, time
from pathlib import Path
sys.path.insert(0, sys.argv[1])
route, paths = sys.argv[2], sys.argv[3:]

def status_kib(field):
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(field)

files = [(path.split("/")[-1].split("__", 1)[1], Path(path).read_bytes()) for path in paths]
if route == "parse":
    from services.ingest import parse_uploaded_files
    from services.waveform import WaveformError

    def answer():
        try:
            parse_uploaded_files(files, max_bytes=10 * 1024 * 1024)
            return "read"
        except WaveformError as exc:
            return "refused: " + str(exc)[:90]
else:  # the whole request through the app: body parsing, ingest, analysis, history write
    import base64, io
    from werkzeug.test import EnvironBuilder
    from app import create_app
    from app.settings import Settings

    folder = Path(tempfile.mkdtemp())
    dash_app = create_app(settings=Settings(database_url=f"sqlite:///{folder / 'h.db'}", instance_dir=folder))
    client = dash_app.server.test_client()
    sample = client.get("/api/samples").get_json()["samples"][0]["filename"]
    peers = {"sender_peer": "prosumer-a", "receiver_peer": "consumer-home"}
    assert client.post("/predict", json={**peers, "sample_filename": sample}).status_code == 200  # model warm
    if route == "api":
        data = {**peers, "file": [(io.BytesIO(content), name) for name, content in files]}
        environ = EnvironBuilder(path="/api/predict-file", method="POST", data=data,
                                 content_type="multipart/form-data").get_environ()  # the body, built beforehand
    else:  # the Analyze page's upload: the files as base64 data URLs inside Dash's callback request
        key = next(key for key in dash_app.callback_map if "analyze-upload-store.data" in key)
        callback = dash_app.callback_map[key]
        values = {"analyze-upload.contents": [f"data:application/octet-stream;base64,"
                                              f"{base64.b64encode(content).decode()}" for _, content in files],
                  "analyze-upload.filename": [name for name, _ in files], "analyze-sender.value": "prosumer-a",
                  "analyze-receiver.value": "consumer-home", "analyze-transfer-kw.value": 5}

        def item(declared):
            if declared["id"].startswith("{"):
                return []
            return {**declared, "value": values.get(f"{declared['id']}.{declared['property']}")}

        outputs = [dict(zip(("id", "property"), part.rsplit(".", 1))) for part in key[2:-2].split("...")]
        body = json.dumps({"output": key, "outputs": outputs, "inputs": [item(d) for d in callback["inputs"]],
                           "state": [item(d) for d in callback["state"]],
                           "changedPropIds": ["analyze-upload.contents"]}).encode()
        environ = EnvironBuilder(path="/_dash-update-component", method="POST", data=body,
                                 content_type="application/json").get_environ()
        del values, body

    def answer():
        response = client.open(environ)
        body = response.get_json()
        if route == "dash":
            result = body["response"].get("analyze-result-store", {}).get("data")
            if result:
                return f"{response.status_code}: {result['label'][:60]}"
            alert = body["response"].get("analyze-alert", {}).get("children") or {}
            parts = alert.get("props", {}).get("children", []) if isinstance(alert, dict) else []
            return f"{response.status_code}, refused: {str(parts[-1] if parts else alert)[:80]}"
        return f"{response.status_code}: " + (body.get("error", "")[:85] if response.status_code != 200
                                              else body["predicted_label"][:60])
Path("/proc/self/clear_refs").write_text("5")  # reset the peak (VmHWM) to the RSS now
before = status_kib("VmRSS")
start = time.perf_counter()
outcome = answer()
seconds = time.perf_counter() - start
peak = status_kib("VmHWM")
print(json.dumps({"seconds": seconds, "peak_growth_mb": max(peak - before, 0) / 1024, "outcome": outcome}))
"""


def run_case(files: list[tuple[str, bytes]], folder: Path, route: str = "parse") -> dict:
    paths = []
    for k, (name, data) in enumerate(files):
        path = folder / f"{k}__{name}"
        path.write_bytes(data)
        paths.append(str(path))
    result = subprocess.run([sys.executable, "-c", _CHILD, str(ROOT), route, *paths], capture_output=True, text=True,
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
    parser.add_argument("--route", choices=["parse", "api", "dash"], default="parse",
                        help="parse: the ingest alone; api: the whole POST /api/predict-file; dash: the Analyze "
                             "page's upload callback (model warmed first)")
    args = parser.parse_args(argv)
    print(f"route: {args.route}")
    print(f"{'kind':34s} {'size':>8s} {'peak RSS growth':>16s} {'time':>9s}  outcome")
    with tempfile.TemporaryDirectory() as tmp:
        for kind, build in KINDS.items():
            for size_mb in args.sizes:
                files = build(int(size_mb * MB))
                total = sum(len(data) for _, data in files)
                result = run_case(files, Path(tmp), args.route)
                print(f"{kind:34s} {total / MB:6.2f}MB {result['peak_growth_mb']:13.1f} MB "
                      f"{result['seconds'] * 1000:7.0f}ms  {result['outcome']}", flush=True)
                if kind.startswith("npy header"):
                    break
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
