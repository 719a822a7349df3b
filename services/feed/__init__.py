"""The demo feed: realistic COMTRADE records of simulated grid events, as a substation would send them.

Each record is one simulated event (`services.simulation.simulate_event`; the classes are taken
in turn, so every one of the 45 appears) written as a COMTRADE 1999 record: a `.cfg` and a BINARY
`.dat` with the three differential currents IdA, IdB, IdC in primary amperes at 10 kHz and the
relay's trip bit, the trigger 1.5 cycles into the window. A random P2P transfer (sender and
receiver from the microgrid's peers) goes with it: in the file name (`...__<sender>__<receiver>`,
which the watched folder reads) or in the form fields of `POST /api/records`.

Records reach a folder atomically (written under a hidden temporary name, then renamed), so a
watcher never sees half a file; or they are posted to a URL.
"""

from __future__ import annotations

import datetime as dt
import os
import uuid
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from services.grid import RECEIVERS, SENDERS
from services.labels import LABELS
from services.waveform import N_SAMPLES, SAMPLE_RATE_HZ

#: primary amperes per window unit (kA on the data set's system): the reader turns them back
AMPERES_PER_KA = 1000.0
TRIGGER_LEAD_MS = 25.0  # 1.5 cycles at 60 Hz: where the reader expects the trigger in the window
FULL_SCALE = 32000.0
STATION = "Microgrid substation"
DEVICE = "87T differential relay"


@dataclass(frozen=True)
class FeedRecord:
    """One record of the feed: its files and the P2P transfer it concerns."""

    stem: str
    files: tuple[tuple[str, bytes], ...]
    label: str
    sender: str
    receiver: str


def comtrade_files(waveform_ka: np.ndarray, *, start: dt.datetime, station: str = STATION,
                   device: str = DEVICE) -> tuple[bytes, bytes]:
    """(.cfg, .dat) of a COMTRADE 1999 BINARY record of a (3, n) differential-current window in kA."""
    values = np.asarray(waveform_ka, dtype=np.float64) * AMPERES_PER_KA
    n_analog, count = values.shape
    peaks = np.abs(values).max(axis=1)
    scales = np.where(peaks > 0, peaks / FULL_SCALE, 1.0)
    scales = np.array([float(f"{scale:.9g}") for scale in scales])
    lines = [f"{station},{device},1999", f"{n_analog + 1},{n_analog}A,1D"]
    for k, (phase, scale) in enumerate(zip("ABC", scales, strict=False)):
        lines.append(f"{k + 1},Id{phase},{phase},87T,A,{scale:.9g},0,0,-32767,32767,1200,5,P")
    lines += [f"{n_analog + 1},87T TRIP,,87T,0", "60", "1", f"{SAMPLE_RATE_HZ:g},{count}"]
    trigger = start + dt.timedelta(milliseconds=TRIGGER_LEAD_MS)
    lines += [_stamp(start), _stamp(trigger), "BINARY", "1"]
    cfg = ("\r\n".join(lines) + "\r\n").encode("latin-1")
    row = np.dtype([("n", "<u4"), ("t", "<u4"), ("a", "<i2", (n_analog,)), ("s", "<u2", (1,))])
    table = np.zeros(count, dtype=row)
    table["n"] = np.arange(1, count + 1)
    table["t"] = np.round(np.arange(count) / SAMPLE_RATE_HZ * 1e6).astype(np.int64)
    table["a"] = np.clip(np.round(values / scales[:, None]), -32767, 32767).T
    trip_from = int(TRIGGER_LEAD_MS / 1000.0 * SAMPLE_RATE_HZ) + 40  # the relay trips ~4 ms after the trigger
    table["s"][trip_from:, 0] = 1
    return cfg, table.tobytes()


def _stamp(moment: dt.datetime) -> str:
    return f"{moment.strftime('%d/%m/%Y')},{moment.strftime('%H:%M:%S.%f')}"


class Feed:
    """Records of simulated events, every class in turn, with random P2P transfers."""

    def __init__(self, seed: int | None = None, classes: list[int] | None = None) -> None:
        self.rng = np.random.default_rng(seed)
        self.classes = list(classes) if classes else list(range(len(LABELS)))
        self.count = 0

    def next_record(self, now: dt.datetime | None = None) -> FeedRecord:
        from services.simulation import simulate_event

        label_id = self.classes[self.count % len(self.classes)]
        self.count += 1
        window, _params = simulate_event(label_id, int(self.rng.integers(2**31)))
        if window.shape[1] != N_SAMPLES:
            raise ValueError(f"the simulator gave {window.shape[1]} samples, expected {N_SAMPLES}")
        sender = str(self.rng.choice(SENDERS))
        receiver = str(self.rng.choice([peer for peer in RECEIVERS if peer != sender]))
        now = now or dt.datetime.now(dt.UTC)
        stem = f"{now:%Y%m%dT%H%M%S_%f}_{uuid.uuid4().hex[:6]}__{sender}__{receiver}"
        cfg, dat = comtrade_files(window, start=now.replace(tzinfo=None))
        return FeedRecord(stem, ((f"{stem}.cfg", cfg), (f"{stem}.dat", dat)), LABELS[label_id], sender, receiver)


def write_record(folder: str | Path, record: FeedRecord) -> list[Path]:
    """Write the record's files into `folder` atomically: each under a hidden temporary name in the
    same folder, then renamed (the `.dat` first, as recorders often do)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for name, data in sorted(record.files, key=lambda item: not item[0].endswith(".dat")):
        temporary = folder / f".{name}.{uuid.uuid4().hex[:8]}.tmp"
        with open(temporary, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        target = folder / name
        os.replace(temporary, target)
        written.append(target)
    return written


def post_record(url: str, record: FeedRecord, timeout_s: float = 10.0) -> dict:
    """POST the record to `url` (`.../api/records`) as multipart/form-data; the JSON answer."""
    import json
    import urllib.request

    boundary = uuid.uuid4().hex
    parts = []
    for field, value in (("sender_peer", record.sender), ("receiver_peer", record.receiver)):
        parts.append(f'--{boundary}\r\nContent-Disposition: form-data; name="{field}"\r\n\r\n{value}\r\n'.encode())
    for name, data in record.files:
        parts.append(f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{name}"\r\n'
                     "Content-Type: application/octet-stream\r\n\r\n".encode() + data + b"\r\n")
    body = b"".join(parts) + f"--{boundary}--\r\n".encode()
    request = urllib.request.Request(url, data=body, method="POST",
                                     headers={"Content-Type": f"multipart/form-data; boundary={boundary}"})
    with urllib.request.urlopen(request, timeout=timeout_s) as response:  # noqa: S310 (the operator's URL)
        return json.loads(response.read() or b"{}")


def parse_rate(text: str) -> float:
    """Records per second from '2', '2/s', '30/min', '0.5/s'."""
    value, _, unit = str(text).strip().partition("/")
    per = {"": 1.0, "s": 1.0, "sec": 1.0, "min": 60.0, "m": 60.0, "h": 3600.0}.get(unit.strip().lower())
    try:
        number = float(value)
    except ValueError:
        number = float("nan")
    if per is None or not number > 0 or number == float("inf"):
        raise ValueError(f"rate must be a positive number of records per s, min or h, like 2/s or 30/min; got {text!r}")
    return number / per
