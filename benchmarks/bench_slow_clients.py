"""Slow clients against the shipped gunicorn configuration: do normal `/predict` requests still pass?

Starts gunicorn (gunicorn.conf.py, or `--config`) on a free local port with a fresh SQLite history,
measures normal requests alone (baseline), then opens `--slow-clients` connections that each send
the headers and half of a `/predict` body and then stall (send nothing more) or trickle (one byte
a second), and meanwhile drives normal `/predict` requests from `--clients` threads for
`--duration` seconds. Prints, for both phases, how many normal requests succeeded and their
latency, and what the slow clients finally received. Only 127.0.0.1 is ever contacted.

    python benchmarks/bench_slow_clients.py                        # the shipped configuration, stall
    python benchmarks/bench_slow_clients.py --mode trickle
    GEM_WORKER_CLASS=sync python benchmarks/bench_slow_clients.py  # sync workers instead
    git show <old commit>:gunicorn.conf.py > /tmp/old.conf.py
    python benchmarks/bench_slow_clients.py --config /tmp/old.conf.py   # an older configuration

Survives when every normal request during the slow phase succeeded and its p99 stays below 1 s.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.bench_api_load import free_port, sample_names, wait_healthy  # noqa: E402


def normal_requests(port: int, bodies: list[bytes], clients: int, duration: float) -> dict:
    """`clients` threads post /predict for `duration` s, each on a fresh connection with a 10 s timeout."""
    latencies: list[float] = []
    failures: list[str] = []
    lock = threading.Lock()
    stop_at = time.monotonic() + duration

    def client(index: int) -> None:
        sent = index
        while time.monotonic() < stop_at:
            body = bodies[sent % len(bodies)]
            sent += clients
            start = time.perf_counter()
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
            try:
                connection.request("POST", "/predict", body=body, headers={"Content-Type": "application/json"})
                response = connection.getresponse()
                response.read()
                outcome = None if response.status == 200 else f"HTTP {response.status}"
            except (OSError, http.client.HTTPException) as exc:
                outcome = type(exc).__name__
            finally:
                connection.close()
            elapsed = (time.perf_counter() - start) * 1000
            with lock:
                latencies.append(elapsed)
                if outcome:
                    failures.append(outcome)

    threads = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    values = np.asarray(latencies) if latencies else np.asarray([np.nan])
    return {"requests": len(latencies), "failed": len(failures), "failures": sorted(set(failures)),
            "p50_ms": float(np.percentile(values, 50)), "p99_ms": float(np.percentile(values, 99)),
            "max_ms": float(values.max())}


class SlowClient(threading.Thread):
    """One connection that sends the headers and half of a body, then stalls or trickles."""

    def __init__(self, port: int, body: bytes, mode: str, stop: threading.Event) -> None:
        super().__init__(daemon=True)
        self.port, self.body, self.mode, self.stop = port, body, mode, stop
        self.outcome = "still open"
        self.held_s = 0.0

    def run(self) -> None:
        start = time.monotonic()
        sock = socket.create_connection(("127.0.0.1", self.port))
        sock.settimeout(0.5)
        head = (f"POST /predict HTTP/1.1\r\nHost: 127.0.0.1:{self.port}\r\nContent-Type: application/json\r\n"
                f"Content-Length: {len(self.body)}\r\n\r\n").encode()
        half = len(self.body) // 2
        answer = b""
        try:
            sock.sendall(head + self.body[:half])
            sent = half
            while not self.stop.is_set():
                if self.mode == "trickle" and sent < len(self.body) - 1:
                    sock.sendall(self.body[sent:sent + 1])
                    sent += 1
                try:
                    chunk = sock.recv(65536)
                except TimeoutError:
                    chunk = None
                if chunk == b"":
                    self.outcome = f"closed by the server ({answer.split(b' ', 2)[1].decode() if answer else 'no answer'})"
                    break
                if chunk:
                    answer += chunk
                if self.mode == "trickle":
                    self.stop.wait(0.5)
        except OSError as exc:  # the server closed while we were sending: did it answer first?
            try:
                sock.settimeout(1.0)
                answer += sock.recv(65536)
            except OSError:
                pass
            status = answer.split(b" ", 2)[1].decode() if answer.startswith(b"HTTP/") else "no answer"
            self.outcome = f"closed by the server ({status}, then {type(exc).__name__})"
        finally:
            self.held_s = time.monotonic() - start
            sock.close()


def print_phase(name: str, result: dict) -> None:
    failures = f" ({', '.join(result['failures'])})" if result["failures"] else ""
    print(f"{name}: {result['requests']} requests, {result['failed']} failed{failures}; "
          f"latency ms p50 {result['p50_ms']:.1f}  p99 {result['p99_ms']:.1f}  max {result['max_ms']:.1f}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default=str(ROOT / "gunicorn.conf.py"), help="gunicorn configuration file")
    parser.add_argument("--mode", choices=("stall", "trickle"), default="stall")
    parser.add_argument("--slow-clients", type=int, default=2)
    parser.add_argument("--clients", type=int, default=2, help="threads sending normal requests")
    parser.add_argument("--duration", type=float, default=15.0, help="seconds of normal requests per phase")
    parser.add_argument("--artifacts", default=os.environ.get("GEM_ARTIFACTS_DIR", str(ROOT / "artifacts")))
    args = parser.parse_args()

    instance = Path(tempfile.mkdtemp(prefix="gem-slow-"))
    port = free_port()
    env = {**os.environ, "GEM_AUTH": "off", "GEM_BIND": f"127.0.0.1:{port}", "GEM_INSTANCE_DIR": str(instance),
           "GEM_ARTIFACTS_DIR": args.artifacts, "GEM_DATABASE_URL": ""}
    process = subprocess.Popen([sys.executable, "-m", "gunicorn", "-c", args.config], cwd=ROOT, env=env,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_healthy(f"http://127.0.0.1:{port}", 180, process)
        names = sample_names(f"http://127.0.0.1:{port}")
        bodies = [json.dumps({"sample_filename": name, "sender_peer": "prosumer-a",
                              "receiver_peer": "consumer-home"}).encode() for name in names]
        print(f"server: gunicorn -c {Path(args.config).name}, GEM_WORKER_CLASS={os.environ.get('GEM_WORKER_CLASS', '(default)')}, "
              f"GEM_WORKERS={os.environ.get('GEM_WORKERS', '(default)')}; load average {os.getloadavg()[0]:.2f}")
        baseline = normal_requests(port, bodies, args.clients, min(args.duration, 5.0))
        print_phase("baseline, no slow client", baseline)

        stop = threading.Event()
        padded = json.dumps({"sample_filename": names[0], "sender_peer": "prosumer-a",
                             "receiver_peer": "consumer-home", "pad": "x" * 4000}).encode()
        slow = [SlowClient(port, padded, args.mode, stop) for _ in range(args.slow_clients)]
        for client in slow:
            client.start()
        time.sleep(1.0)  # the slow clients have sent their half body
        during = normal_requests(port, bodies, args.clients, args.duration)
        print_phase(f"with {args.slow_clients} slow clients ({args.mode})", during)
        stop.set()
        for client in slow:
            client.join(timeout=5)
        for n, client in enumerate(slow):
            print(f"slow client {n + 1}: {client.outcome} after {client.held_s:.1f} s")
        survived = during["failed"] == 0 and during["p99_ms"] < 1000 and during["requests"] > 0
        print(f"normal requests unaffected (all succeeded, p99 < 1 s): {'yes' if survived else 'NO'}")
        return 0
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
        shutil.rmtree(instance, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
