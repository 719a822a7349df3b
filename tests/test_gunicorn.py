"""gunicorn with 2 workers and concurrent clients: exactly one history row per accepted request."""

from __future__ import annotations

import json
import logging
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
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


def _wait_until_healthy(base: str, process: subprocess.Popen, output: Callable[[], str], seconds: float = 120) -> None:
    """Wait for /api/health to answer 200; fail with gunicorn's output if it exits first."""
    deadline = time.monotonic() + seconds
    while True:
        if process.poll() is not None:
            pytest.fail(f"gunicorn exited early:\n{output()}")
        try:
            if requests.get(f"{base}/api/health", timeout=5).status_code == 200:
                return
        except requests.RequestException:
            pass
        if time.monotonic() > deadline:
            pytest.fail(f"gunicorn did not become healthy within {seconds:g} s")
        time.sleep(0.5)


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
        "GEM_AUTH": "off",  # these tests measure serving, not login (test_gunicorn_requires_login_by_default)
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "-c", "gunicorn.conf.py"],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        _wait_until_healthy(base, process, process.stdout.read)
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


THREADED = "app.gunicorn_workers.ThreadWorker"
SYNC = "app.gunicorn_workers.SyncWorker"


@pytest.mark.parametrize(
    ("environment", "worker_class", "threads"),
    [
        ({}, THREADED, 8),  # a slow client holds a thread, not the worker
        ({"GEM_WORKER_THREADS": "2"}, THREADED, 2),
        ({"GEM_WORKER_CLASS": "sync"}, SYNC, 1),
        ({"GEM_WORKER_CLASS": "sync", "GEM_WORKER_THREADS": "8"}, SYNC, 1),
    ],
)
def test_config_runs_threaded_workers_unless_sync_is_asked_for(monkeypatch, environment, worker_class, threads):
    import runpy

    monkeypatch.setattr(os, "environ", os.environ.copy())  # the config sets thread variables
    for name in ("GEM_WORKER_CLASS", "GEM_WORKER_THREADS"):
        monkeypatch.delenv(name, raising=False)
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    config = runpy.run_path(str(ROOT / "gunicorn.conf.py"))
    assert (config["worker_class"], config["threads"]) == (worker_class, threads)
    assert config["preload_app"] is False  # the model must load after fork
    assert config["logger_class"] == "app.gunicorn_workers.EscapingLogger"


# -- hardening (issue 12): slow clients, gunicorn's own answers, log lines ---------------------------
READ_TIMEOUT_S = 12


@pytest.fixture(scope="module")
def hardened(tmp_path_factory):
    """The shipped configuration with a short read deadline and the access log on, its output in a file."""
    tmp_path = tmp_path_factory.mktemp("hardened")
    port = _free_port()
    output = (tmp_path / "gunicorn.log").open("w+")
    env = {**os.environ, "GEM_AUTH": "off", "GEM_BIND": f"127.0.0.1:{port}", "GEM_INSTANCE_DIR": str(tmp_path / "instance"),
           "GEM_ARTIFACTS_DIR": str(ROOT / "artifacts"), "GEM_DATABASE_URL": "", "GEM_ACCESS_LOG": "-",
           "GEM_READ_TIMEOUT": str(READ_TIMEOUT_S)}
    for name in ("GEM_WORKER_CLASS", "GEM_WORKER_THREADS", "GEM_WORKERS"):
        env.pop(name, None)
    process = subprocess.Popen([sys.executable, "-m", "gunicorn", "-c", "gunicorn.conf.py"], cwd=ROOT, env=env,
                               stdout=output, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"

    def logged() -> str:
        output.seek(0)
        return output.read()

    try:
        _wait_until_healthy(base, process, logged)
        yield base, port, tmp_path / "gunicorn.log"
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
        output.close()


def _raw(port: int, data: bytes, timeout: float = 10) -> bytes:
    """Send raw bytes, read the answer until the server closes."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(data)
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
        return answer


def test_two_slow_clients_do_not_stop_other_requests(hardened):
    base, port, _ = hardened
    sample = requests.get(f"{base}/api/samples", timeout=10).json()["samples"][0]["filename"]
    body = json.dumps({"sample_filename": sample, "sender_peer": "prosumer-a", "receiver_peer": "consumer-home",
                       "pad": "x" * 2000}).encode()
    head = (f"POST /predict HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n\r\n").encode()
    slow = [socket.create_connection(("127.0.0.1", port), timeout=READ_TIMEOUT_S + 20) for _ in range(2)]
    opened = time.monotonic()
    try:
        for sock in slow:
            sock.sendall(head + body[: len(body) // 2])  # half a body, then nothing
        time.sleep(1.0)
        # each normal request must finish well before the slow clients' deadline: a worker they held
        # would answer only after READ_TIMEOUT_S, past this timeout
        answers = []
        while time.monotonic() - opened < 4:
            response = requests.post(f"{base}/predict", data=body, headers={"Content-Type": "application/json"},
                                     timeout=READ_TIMEOUT_S - 6)
            answers.append(response.status_code)
        assert len(answers) >= 3 and set(answers) == {200}
        # the slow clients get a JSON 408 once their deadline passes, and the connection closes
        for sock in slow:
            answer = b""
            while chunk := sock.recv(65536):
                answer += chunk
            head_part, _, payload = answer.partition(b"\r\n\r\n")
            assert head_part.startswith(b"HTTP/1.1 408"), answer[:200]
            assert "slowly" in json.loads(payload)["error"]
        assert READ_TIMEOUT_S - 1 <= time.monotonic() - opened <= READ_TIMEOUT_S + 15
    finally:
        for sock in slow:
            sock.close()


def test_gunicorn_answers_json_without_a_server_header(hardened):
    base, port, _ = hardened
    health = requests.get(f"{base}/api/health", timeout=10)
    assert "Server" not in health.headers
    assert health.headers["X-Content-Type-Options"] == "nosniff" and "frame-ancestors" in health.headers[
        "Content-Security-Policy"]
    for path, status in ((f"/api/{'a' * 5000}", 414), ("/api/no-such-route", 404), ("/predict", 405)):
        response = requests.get(f"{base}{path}", timeout=10)
        assert response.status_code == status and "error" in response.json(), path
        assert response.headers["Content-Type"] == "application/json" and "Server" not in response.headers
    for raw in (b"GET /x\x1b[31m HTTP/1.1\r\nHost: a\r\n\r\n", b"NONSENSE\r\n\r\n",
                b"GET / HTTP/1.1\r\nHost: a\r\n" + b"X-Big: " + b"b" * 9000 + b"\r\n\r\n"):
        answer = _raw(port, raw)
        head, _, payload = answer.partition(b"\r\n\r\n")
        assert head.split(b" ")[1] in (b"400", b"431"), answer[:200]
        assert b"Content-Type: application/json" in head and b"Server:" not in head
        assert json.loads(payload)["error"] and b"x1b" not in payload  # no request text echoed back


def test_server_log_lines_escape_control_characters(hardened, capsys):
    from gunicorn.config import Config

    from app.gunicorn_workers import EscapingLogger

    config = Config()
    config.set("accesslog", "-")
    config.set("errorlog", "-")
    root, ours = logging.getLogger(), logging.getLogger("app")
    saved = (list(root.handlers), root.level, ours.level)
    try:
        logger = EscapingLogger(config)  # as in a worker: gunicorn's logs, and the root logger for ours
        logger.error("bad request for %s", "/api/x\r\n[2026-01-01 00:00:00 +0000] [1] [INFO] forged\x1b[2J")
        logging.getLogger("app.api").error("unexpected error on %s", "/x\nforged")
    finally:
        root.handlers, _, _ = saved[0], root.setLevel(saved[1]), ours.setLevel(saved[2])
    written = capsys.readouterr()
    lines = (written.out + written.err).splitlines()
    assert len(lines) == 2 and all("forged" in line for line in lines), lines
    assert "\x1b" not in written.err + written.out and "\\r\\n[2026" in lines[0]
    # and the running server's log holds no raw control character
    requests.get(f"{hardened[0]}/api/health", headers={"User-Agent": "agent\tname"}, timeout=10)
    time.sleep(0.5)
    text = hardened[2].read_text()
    assert "/api/health" in text and not any(char in text for char in "\r\x1b\t")


def test_gunicorn_requires_login_by_default_even_on_loopback(tmp_path):
    """The shipped configuration is no open door: anonymous writes get 401, pages go to the login."""
    port = _free_port()
    env = {**{key: value for key, value in os.environ.items() if key != "GEM_AUTH"},
           "GEM_BIND": f"127.0.0.1:{port}", "GEM_WORKERS": "1", "GEM_WARMUP": "0",
           "GEM_INSTANCE_DIR": str(tmp_path / "instance"), "GEM_ARTIFACTS_DIR": str(ROOT / "artifacts"),
           "GEM_DATABASE_URL": ""}
    process = subprocess.Popen([sys.executable, "-m", "gunicorn", "-c", "gunicorn.conf.py"], cwd=ROOT, env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    base = f"http://127.0.0.1:{port}"
    try:
        _wait_until_healthy(base, process, process.stdout.read)  # health stays open for load balancers
        refused = requests.post(f"{base}/predict", json={"sample_filename": "x.npy", "sender_peer": "prosumer-a",
                                                         "receiver_peer": "consumer-home"}, timeout=10)
        assert refused.status_code == 401 and "error" in refused.json()
        page = requests.get(f"{base}/history", timeout=10, allow_redirects=False)
        assert page.status_code in (302, 303) and "login" in page.headers["Location"]
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            output, _ = process.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            output, _ = process.communicate()
    assert "login" in output.lower()  # the start says login is required
