"""Load benchmark of `POST /predict` on a gunicorn-served app: requests/s and p50/p90/p99.

Starts gunicorn (gunicorn.conf.py, GEM_WORKERS workers) on a free local port with a fresh SQLite
history in a temporary folder, waits for /api/health, then drives /predict at 16 connections for a
fixed time with `wrk` (a Lua script cycles through the request bodies) when it is installed, else
with a Python client (one keep-alive connection per thread). Afterwards it checks that the history
holds one row per answered request. Only 127.0.0.1 is ever contacted.

The bodies cycle through every bundled sample (the original front end's request, docs/contracts.md,
"JSON API"), so no single cached file flatters the figure; `--raw-waveform` posts raw 3 x 726
waveforms instead, 500 distinct ones (the samples with a little noise), more than any
per-process cache holds.

    python benchmarks/bench_api_load.py                     # 2 workers, 16 connections, 20 s
    python benchmarks/bench_api_load.py --raw-waveform --duration 10
    python benchmarks/bench_api_load.py --client python --duration 10
    python benchmarks/bench_api_load.py --url http://127.0.0.1:8050   # an already running server
    python benchmarks/bench_api_load.py --in-process 2000             # CPU per request, split
    python benchmarks/bench_api_load.py --in-process 2000 --profile 25  # ... and the top functions

`--in-process N` serves N requests through the app's WSGI callable in this process, one at a time
(no network, no server), and splits the CPU time of each: the network call (the inference
backend's `run`) and everything else (parsing, validation, rules, the predictor's post-processing,
the history write, JSON). `--profile K` adds cProfile's K costliest functions outside the network.

Targets: at least 530 requests/s with p99 at most 50 ms on the 2-core machine (issue 3); at most
1 ms of server CPU per `/predict` outside the network call (issue 12).
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path
from urllib.parse import urlsplit

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from services.history import HistoryStore  # noqa: E402


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def server_cpu_seconds(master_pid: int) -> float:
    """User + system CPU of the gunicorn workers (children of the master), from /proc."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == master_pid:
            total += int(fields[11]) + int(fields[12])
    return total / ticks


def wait_healthy(base: str, timeout_s: float, process: subprocess.Popen | None) -> dict:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise SystemExit(f"gunicorn exited with {process.returncode}")
        try:
            with urllib.request.urlopen(f"{base}/api/health", timeout=5) as response:
                return json.load(response)
        except OSError:
            time.sleep(0.5)
    raise SystemExit(f"{base} did not become healthy in {timeout_s:.0f} s")


def sample_names(base: str) -> list[str]:
    with urllib.request.urlopen(f"{base}/api/samples", timeout=10) as response:
        samples = json.load(response)["samples"]
    if not samples:
        raise SystemExit("the server lists no samples: regenerate them with python -m services.simulation.samples")
    return [sample["filename"] for sample in samples]


RAW_BODIES = 500
#: sender -> receiver pairs the bodies take in turn (ids of docs/contracts.md, "Microgrid ids")
PEERS = (("prosumer-a", "consumer-home"), ("prosumer-b", "ev-hub"), ("micro-industry", "local-business"))


def request_bodies(names: list[str], artifacts: Path, raw: bool) -> list[bytes]:
    """The JSON bodies to cycle through: one per sample, or RAW_BODIES distinct raw waveforms."""
    if not raw:
        return [
            json.dumps({"sample_filename": name, "sender_peer": PEERS[i % len(PEERS)][0],
                        "receiver_peer": PEERS[i % len(PEERS)][1]}).encode()
            for i, name in enumerate(names)
        ]
    rng = np.random.default_rng(1)
    waveforms = [np.load(artifacts / "sample_data" / name) for name in names]
    bodies = []
    for i in range(RAW_BODIES):
        base = waveforms[i % len(waveforms)]
        noisy = base + rng.normal(0.0, 1e-3 * (np.abs(base).max() + 1e-9), base.shape)
        sender, receiver = PEERS[i % len(PEERS)]
        bodies.append(json.dumps({"waveform": np.round(noisy, 6).tolist(), "sender_peer": sender,
                                  "receiver_peer": receiver}).encode())
    return bodies


def run_wrk(base: str, bodies: list[bytes], connections: int, duration: int, threads: int) -> dict:
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
        script.write('wrk.method = "POST"\n')
        script.write('wrk.headers["Content-Type"] = "application/json"\n')
        script.write("bodies = {\n")
        for body in bodies:
            script.write(f"  {json.dumps(body.decode())},\n")
        script.write("}\n")
        # each wrk thread starts at its own offset and walks the list
        script.write("counter = 0\n")
        script.write("function setup(thread) thread:set('offset', math.random(#bodies)) end\n")
        script.write("function init(args) counter = offset or 0 end\n")
        script.write("function request()\n  counter = counter + 1\n"
                     "  return wrk.format(nil, nil, nil, bodies[counter % #bodies + 1])\nend\n")
    try:
        output = subprocess.run(
            ["wrk", f"-t{threads}", f"-c{connections}", f"-d{duration}s", "--latency", "-s", script.name,
             f"{base}/predict"],
            check=True, capture_output=True, text=True,
        ).stdout
    finally:
        os.unlink(script.name)
    def latency(percent: str) -> float:
        match = re.search(rf"^\s*{percent}%\s+([\d.]+)(us|ms|s)\s*$", output, re.M)
        value, unit = float(match.group(1)), match.group(2)
        return value / 1000 if unit == "us" else value * 1000 if unit == "s" else value
    completed = int(re.search(r"(\d+) requests in", output).group(1))
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    errors = re.search(r"Socket errors: (.*)", output)
    return {
        "client": "wrk",
        "requests": completed,
        "requests_per_s": float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1)),
        "p50_ms": latency("50"),
        "p90_ms": latency("90"),
        "p99_ms": latency("99"),
        "non_2xx": int(non_2xx.group(1)) if non_2xx else 0,
        "socket_errors": errors.group(1).strip() if errors else "none",
    }


def run_python(base: str, bodies: list[bytes], connections: int, duration: int) -> dict:
    parts = urlsplit(base)
    prefix = parts.path.rstrip("/")
    latencies: list[list[float]] = [[] for _ in range(connections)]
    failures = [0] * connections
    stop_at = time.monotonic() + duration
    headers = {"Content-Type": "application/json", "Connection": "keep-alive"}

    def worker(index: int) -> None:
        connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
        sent = index * 7
        while time.monotonic() < stop_at:
            body = bodies[sent % len(bodies)]
            sent += 1
            start = time.perf_counter()
            try:
                connection.request("POST", f"{prefix}/predict", body=body, headers=headers)
                response = connection.getresponse()
                response.read()
                ok = response.status == 200
            except (OSError, http.client.HTTPException):
                connection.close()
                connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
                ok = False
            latencies[index].append((time.perf_counter() - start) * 1000)
            failures[index] += 0 if ok else 1
        connection.close()

    started = time.perf_counter()
    workers = [threading.Thread(target=worker, args=(i,)) for i in range(connections)]
    for thread in workers:
        thread.start()
    for thread in workers:
        thread.join()
    elapsed = time.perf_counter() - started
    values = np.concatenate([np.asarray(items) for items in latencies if items])
    return {
        "client": "python",
        "requests": int(values.size),
        "requests_per_s": values.size / elapsed,
        "p50_ms": float(np.percentile(values, 50)),
        "p90_ms": float(np.percentile(values, 90)),
        "p99_ms": float(np.percentile(values, 99)),
        "non_2xx": int(sum(failures)),
        "socket_errors": "none",
    }


def in_process_breakdown(bodies: list[bytes], artifacts: Path, count: int, profile_top: int) -> None:
    """Serve `count` /predict requests through the WSGI app here and split their CPU time."""
    import cProfile
    import io
    import pstats

    from werkzeug.test import EnvironBuilder

    from app import create_app
    from app.settings import Settings
    from services.analysis import EXTENSION_KEY

    instance = Path(tempfile.mkdtemp(prefix="gem-inproc-"))
    try:
        app = create_app(settings=Settings(artifacts_dir=artifacts, instance_dir=instance))
        context = app.server.extensions[EXTENSION_KEY]
        backend = context.predictor()._backend
        network_cpu = [0.0]
        run = backend.run

        def timed_run(batch):
            start = time.process_time()
            try:
                return run(batch)
            finally:
                network_cpu[0] += time.process_time() - start

        backend.run = timed_run
        predictor = context.predictor()
        predict = predictor.predict
        predictor_cpu = [0.0]

        def timed_predict(x):
            start = time.process_time()
            try:
                return predict(x)
            finally:
                predictor_cpu[0] += time.process_time() - start

        predictor.predict = timed_predict
        environs = []
        for body in bodies:
            builder = EnvironBuilder(path="/predict", method="POST", data=body, content_type="application/json")
            environs.append(builder.get_environ())
            builder.close()
        wsgi = app.server.wsgi_app
        statuses: list[str] = []

        def start_response(status, headers, exc_info=None):
            statuses.append(status)

        def serve(n: int) -> None:
            environ = dict(environs[n % len(environs)])
            environ["wsgi.input"] = io.BytesIO(bodies[n % len(bodies)])
            for _ in wsgi(environ, start_response):
                pass

        for n in range(min(50, count)):  # warm-up: caches, first-call costs
            serve(n)
        statuses.clear()
        network_cpu[0] = predictor_cpu[0] = 0.0
        profiler = cProfile.Profile() if profile_top else None
        wall_start, cpu_start = time.perf_counter(), time.process_time()
        if profiler:
            profiler.enable()
        for n in range(count):
            serve(n)
        if profiler:
            profiler.disable()
        cpu = time.process_time() - cpu_start
        wall = time.perf_counter() - wall_start
        ok = sum(status.startswith("200") for status in statuses)
        print(f"in-process: {count} requests ({ok} answered 200), one at a time, backend {context.predictor().backend}"
              f"{', under cProfile (slower)' if profiler else ''}")
        per = {name: value / count * 1000 for name, value in (
            ("all", cpu), ("network", network_cpu[0]), ("outside", cpu - network_cpu[0]),
            ("post", predictor_cpu[0] - network_cpu[0]), ("rest", cpu - predictor_cpu[0]))}
        print(f"CPU per request: {per['all']:.3f} ms in all; network call {per['network']:.3f} ms; "
              f"outside the network call {per['outside']:.3f} ms (target <= 1 ms), of which the predictor's "
              f"post-processing (levels, unknown detector, explanation) {per['post']:.3f} ms and the request path "
              f"(parsing, validation, rules, history write, JSON) {per['rest']:.3f} ms")
        print(f"one process, one request at a time: {count / wall:.0f} requests/s; "
              f"load average {os.getloadavg()[0]:.2f} (other processes share the cores)")
        print(f"history rows: {context.store.count()}")
        if profiler:
            text = io.StringIO()
            pstats.Stats(profiler, stream=text).sort_stats("tottime").print_stats(profile_top)
            print(text.getvalue())
        context.store.dispose()
    finally:
        shutil.rmtree(instance, ignore_errors=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", help="benchmark this running server instead of starting gunicorn")
    parser.add_argument("--workers", type=int, default=int(os.environ.get("GEM_WORKERS", "2")))
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--duration", type=int, default=20, help="seconds of load")
    parser.add_argument("--warmup", type=int, default=3, help="seconds of load before measuring")
    parser.add_argument("--client", choices=("auto", "wrk", "python"), default="auto")
    parser.add_argument("--raw-waveform", action="store_true", help="post a raw waveform instead of a sample name")
    parser.add_argument("--artifacts", default=os.environ.get("GEM_ARTIFACTS_DIR", str(ROOT / "artifacts")))
    parser.add_argument("--in-process", type=int, metavar="N",
                        help="serve N requests in this process, one at a time, and split their CPU time")
    parser.add_argument("--profile", type=int, default=0, metavar="K",
                        help="with --in-process: print cProfile's K costliest functions")
    args = parser.parse_args()

    if args.in_process:
        from services.analysis import list_samples

        names = [sample["filename"] for sample in list_samples(Path(args.artifacts))]
        in_process_breakdown(request_bodies(names, Path(args.artifacts), args.raw_waveform), Path(args.artifacts),
                             args.in_process, args.profile)
        return 0

    client = args.client
    if client == "auto":
        client = "wrk" if shutil.which("wrk") else "python"
    instance = Path(tempfile.mkdtemp(prefix="gem-bench-"))
    process = None
    if args.url:
        base = args.url.rstrip("/")
    else:
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        env = {**os.environ, "GEM_AUTH": "off", "GEM_BIND": f"127.0.0.1:{port}", "GEM_WORKERS": str(args.workers),
               "GEM_INSTANCE_DIR": str(instance), "GEM_ARTIFACTS_DIR": args.artifacts, "GEM_DATABASE_URL": ""}
        process = subprocess.Popen([sys.executable, "-m", "gunicorn", "-c", "gunicorn.conf.py"], cwd=ROOT, env=env,
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        health = wait_healthy(base, 180, process)
        names = sample_names(base)
        bodies = request_bodies(names, Path(args.artifacts), args.raw_waveform)
        store = None if args.url else HistoryStore(f"sqlite:///{instance / 'history.db'}")

        def load(seconds: int) -> dict:
            if client == "wrk":
                return run_wrk(base, bodies, args.connections, seconds, threads=2)
            return run_python(base, bodies, args.connections, seconds)

        if args.warmup:
            load(args.warmup)
        before = store.count() if store else None
        cpu_before = server_cpu_seconds(process.pid) if process else None
        result = load(args.duration)
        cpu_after = server_cpu_seconds(process.pid) if process else None
        time.sleep(0.5)
        after = store.count() if store else None

        print(f"server: {'external ' + base if args.url else f'gunicorn, {args.workers} workers'}; "
              f"model backend {health['model'].get('backend')}, fingerprint {health['model'].get('fingerprint')}")
        print(f"load: {client}, {args.connections} connections, {args.duration} s, "
              f"{f'{len(bodies)} distinct raw waveforms' if args.raw_waveform else f'{len(bodies)} samples in turn'}")
        print(f"requests/s: {result['requests_per_s']:.1f}")
        print(f"latency ms: p50 {result['p50_ms']:.2f}  p90 {result['p90_ms']:.2f}  p99 {result['p99_ms']:.2f}")
        print(f"requests: {result['requests']}  non-2xx: {result['non_2xx']}  socket errors: {result['socket_errors']}")
        if cpu_before is not None and result["requests"]:
            per_request = (cpu_after - cpu_before) / result["requests"] * 1000
            print(f"server CPU per request: {per_request:.2f} ms (workers' user+system time; "
                  f"{os.cpu_count()} cores could serve at most {os.cpu_count() * 1000 / per_request:.0f} requests/s)")
            print(f"load average during the run: {os.getloadavg()[0]:.2f} (other processes share the cores)")
        if store is not None:
            written = after - before
            # the client counts answers it read; a request cut at the deadline may still be recorded
            print(f"history rows written during the run: {written} (client counted {result['requests']})")
        target = result["requests_per_s"] >= 530 and result["p99_ms"] <= 50
        print(f"target >= 530 requests/s with p99 <= 50 ms: {'met' if target else 'NOT met'}")
        return 0
    finally:
        if process is not None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
        shutil.rmtree(instance, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
