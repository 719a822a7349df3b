"""gunicorn with 2 workers and concurrent clients: exactly one history row per accepted request."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests

from services.history import HistoryStore

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.slow


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(entry.name))
    return found


@pytest.fixture
def server(tmp_path):
    port = _free_port()
    env = {
        **os.environ,
        "GEM_BIND": f"127.0.0.1:{port}",
        "GEM_WORKERS": "2",
        "GEM_INSTANCE_DIR": str(tmp_path / "instance"),
        "GEM_ARTIFACTS_DIR": str(ROOT / "artifacts"),
        "GEM_DATABASE_URL": "",
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "-c", "gunicorn.conf.py"],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    try:
        while True:
            if process.poll() is not None:
                pytest.fail(f"gunicorn exited early:\n{process.stdout.read()}")
            try:
                if requests.get(f"{base}/api/health", timeout=5).status_code == 200:
                    break
            except requests.RequestException:
                pass
            if time.monotonic() > deadline:
                pytest.fail("gunicorn did not become healthy within 120 s")
            time.sleep(0.5)
        yield base, process, tmp_path / "instance" / "history.db"
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()


def test_two_workers_write_exactly_one_row_per_accepted_request(server):
    base, process, database = server
    assert len(_children(process.pid)) == 2
    samples = requests.get(f"{base}/api/samples", timeout=10).json()["samples"]
    peers = [("prosumer-a", "consumer-home"), ("prosumer-b", "ev-hub"), ("micro-industry", "local-business")]
    bodies = []
    for n in range(96):
        sender, receiver = peers[n % len(peers)]
        body = {"sample_filename": samples[n % len(samples)]["filename"], "sender_peer": sender,
                "receiver_peer": receiver}
        if n % 8 == 3:
            body["sender_peer"] = "nobody"  # rejected: 400
        if n % 8 == 5:
            body["sample_filename"] = "../../etc/passwd"  # rejected: 400
        bodies.append(body)

    def post(body):
        with requests.Session() as session:
            response = session.post(f"{base}/predict", json=body, timeout=60)
            return response.status_code, response.json()

    with ThreadPoolExecutor(max_workers=16) as pool:
        results = list(pool.map(post, bodies))

    accepted = [payload for status, payload in results if status == 200]
    rejected = [status for status, _ in results if status != 200]
    assert len(accepted) == 72 and rejected == [400] * 24
    store = HistoryStore(f"sqlite:///{database}")
    assert store.count() == len(accepted)
    rows, total = store.query(limit=1000)
    assert total == len(accepted)
    assert {row["id"] for row in rows} == {payload["analysis_id"] for payload in accepted}
    store.dispose()


@pytest.mark.parametrize(
    ("environment", "worker_class", "threads"),
    [
        ({}, "sync", 1),  # gunicorn would silently run gthread if a sync worker got threads > 1
        ({"GEM_WORKER_THREADS": "8"}, "sync", 1),
        ({"GEM_WORKER_CLASS": "gthread"}, "gthread", 4),
        ({"GEM_WORKER_CLASS": "gthread", "GEM_WORKER_THREADS": "8"}, "gthread", 8),
    ],
)
def test_config_runs_sync_workers_unless_gthread_is_asked_for(monkeypatch, environment, worker_class, threads):
    import runpy

    monkeypatch.setattr(os, "environ", os.environ.copy())  # the config sets thread variables
    for name in ("GEM_WORKER_CLASS", "GEM_WORKER_THREADS"):
        monkeypatch.delenv(name, raising=False)
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    config = runpy.run_path(str(ROOT / "gunicorn.conf.py"))
    assert (config["worker_class"], config["threads"]) == (worker_class, threads)
    assert config["preload_app"] is False  # the model must load after fork
