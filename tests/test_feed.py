"""The demo feed: COMTRADE records the app reads back as the simulated window, every class in turn,
random peers, written atomically into a folder or posted to `/api/records`."""

from __future__ import annotations

import datetime as dt
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest
from werkzeug.serving import make_server

from app import create_app
from app.jobs import JOBS_KEY
from app.settings import Settings
from services.analysis import EXTENSION_KEY
from services.feed import Feed, comtrade_files, parse_rate, post_record, write_record
from services.grid import RECEIVERS, SENDERS
from services.ingest import parse_uploaded_files
from services.jobs import peers_from_name
from services.labels import LABELS
from services.simulation import simulate_event

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("label_id", [0, 17, 38, 40, 44])
def test_fee001_a_record_reads_back_as_the_simulated_window(label_id):
    window, _ = simulate_event(label_id, 3)
    cfg, dat = comtrade_files(window, start=dt.datetime(2026, 5, 1, 12, 0, 0))
    loaded = parse_uploaded_files([("ev.cfg", cfg), ("ev.dat", dat)])
    peak = float(np.abs(window).max())
    assert np.abs(loaded.waveform - window).max() <= peak / 32000 * 1.01  # int16 quantisation only
    assert loaded.comtrade.placement == "trigger" and loaded.comtrade.window_start_ms == 0.0
    assert loaded.comtrade.channels == ("IdA", "IdB", "IdC") and loaded.comtrade.data_format == "BINARY"


def test_fee002_every_class_comes_in_turn_with_random_distinct_peers():
    feed = Feed(seed=5)
    records = [feed.next_record() for _ in range(len(LABELS))]
    assert sorted(record.label for record in records) == sorted(LABELS)
    pairs = {(record.sender, record.receiver) for record in records}
    assert len(pairs) > 5 and all(s in SENDERS and r in RECEIVERS and s != r for s, r in pairs)
    assert all(peers_from_name(record.stem) == (record.sender, record.receiver) for record in records)


def test_fee003_records_land_in_the_folder_atomically(tmp_path):
    record = Feed(seed=1).next_record()
    written = write_record(tmp_path, record)
    assert [path.name for path in written] == [f"{record.stem}.dat", f"{record.stem}.cfg"]  # .dat first
    assert sorted(path.name for path in tmp_path.iterdir()) == sorted(name for name, _ in record.files)
    assert all((tmp_path / name).read_bytes() == data for name, data in record.files)


@pytest.mark.parametrize(("text", "per_second"), [("1/s", 1.0), ("30/min", 0.5), ("5", 5.0), ("7200/h", 2.0)])
def test_fee004_rates(text, per_second):
    assert parse_rate(text) == pytest.approx(per_second)


@pytest.mark.parametrize("text", ["0/s", "-1", "fast", "1/week", "inf"])
def test_fee005_bad_rates_are_refused(text):
    with pytest.raises(ValueError, match="rate must be"):
        parse_rate(text)


def test_fee006_the_command_writes_the_records_asked_for(tmp_path):
    out = tmp_path / "drop"
    result = subprocess.run([sys.executable, "-m", "services.feed", "--out", str(out), "--rate", "200/s",
                             "--count", "3", "--seed", "2"], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert len(list(out.glob("*.cfg"))) == 3 and len(list(out.glob("*.dat"))) == 3
    assert not [path for path in out.iterdir() if path.name.startswith(".")]
    bad = subprocess.run([sys.executable, "-m", "services.feed", "--out", str(out), "--rate", "often"],
                         cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert bad.returncode == 2 and "rate must be" in bad.stderr


def test_fee007_records_posted_to_a_running_app_are_analysed(tmp_path, artifacts_copy):
    app = create_app(settings=Settings(artifacts_dir=artifacts_copy, instance_dir=tmp_path))
    server = make_server("127.0.0.1", 0, app.server, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        record = Feed(seed=9).next_record()
        answer = post_record(f"http://127.0.0.1:{server.server_port}/api/records", record)
        jobs = app.server.extensions[JOBS_KEY]
        jobs.engine.close()  # waits for the queued job to finish
        job = jobs.get(answer["job_id"])
        assert job["state"] == "done" and job["sender"] == record.sender and job["receiver"] == record.receiver
        assert app.server.extensions[EXTENSION_KEY].store.get(job["analysis_id"])["source"] == "api-records"
    finally:
        server.shutdown()
        app.server.extensions[EXTENSION_KEY].store.dispose()
