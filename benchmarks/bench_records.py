"""Records per second through the whole record pipeline: job in, read the COMTRADE record, convert,
classify, assess the impact, write the history row and finish the job (issue 13 items 2 and 7).

    python benchmarks/bench_records.py --engine threads --records 300 --threads 2
    python benchmarks/bench_records.py --engine celery --records 300 --workers 1   # Redis + PostgreSQL
    python benchmarks/bench_records.py --engine celery --records 300 --workers 2
    python benchmarks/bench_records.py --engine watch --records 100 --rate 5    # drop -> history latency

The records are demo-feed records (simulated events of every class, COMTRADE 1999 BINARY, 10 kHz),
made before the clock starts. `threads` is the embedded default (worker threads in one process,
SQLite history); `celery` starts `celery -A app.worker worker --concurrency N` (prefork) on the
local Redis with the history in a fresh PostgreSQL schema, dropped afterwards. Prints records/s and
the per-record latency from job creation to its history row (p50/p95).
"""

from __future__ import annotations

import argparse
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
for _variable in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "GEM_THREADS"):
    os.environ.setdefault(_variable, "1")

POSTGRES_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
REDIS_URL = "redis://127.0.0.1:6379/0"


def make_records(count: int, seed: int) -> list:
    from services.feed import Feed

    feed = Feed(seed=seed)
    return [feed.next_record() for _ in range(count)]


def wait_all(jobs, job_ids: list[str], timeout_s: float) -> list[dict]:
    """The jobs once all are finished; polls the state counts (a cheap query), not the rows."""
    deadline = time.monotonic() + timeout_s
    target = sum(jobs.counts().values())  # every job of this run's tables, these included
    while time.monotonic() < deadline:
        counts = jobs.counts()
        if counts["done"] + counts["failed"] >= target:
            return [jobs.get(job_id) for job_id in job_ids]
        time.sleep(0.05)
    raise SystemExit(f"jobs not finished within {timeout_s} s: {jobs.counts()}")


def report(name: str, jobs: list[dict], elapsed_s: float) -> None:
    failed = [job for job in jobs if job["state"] != "done"]
    latencies = sorted((_time(job["finished_at"]) - _time(job["created_at"])) * 1000.0 for job in jobs)
    p95 = latencies[min(len(latencies) - 1, int(round(0.95 * (len(latencies) - 1))))]
    print(f"{name}: {len(jobs)} records in {elapsed_s:.2f} s = {len(jobs) / elapsed_s:.1f} records/s; "
          f"latency created->analysed p50 {statistics.median(latencies):.0f} ms, p95 {p95:.0f} ms; "
          f"{len(failed)} failed; load average {os.getloadavg()[0]:.1f}")


def tree_cpu_s(pid: int) -> float:
    """CPU seconds (user + system) used so far by process `pid` and its children (Linux /proc)."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0.0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(entry.name) == pid or int(fields[1]) == pid:
            total += (int(fields[11]) + int(fields[12])) / tick
    return total


def _time(text: str) -> float:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def bench_threads(records: list, threads: int) -> None:
    from services.analysis import get_model, warm_up
    from services.history import HistoryStore
    from services.jobs import JobService, JobStore, RecordPipeline, ThreadEngine, analyse_record

    artifacts = ROOT / "artifacts"
    warm_up(artifacts)
    with tempfile.TemporaryDirectory() as folder:
        jobs = JobStore(HistoryStore(f"sqlite:///{folder}/history.db"))
        pipeline = RecordPipeline(jobs=jobs, predictor=lambda: get_model(artifacts))
        service = JobService(jobs, ThreadEngine(lambda job_id: analyse_record(job_id, pipeline), threads))
        started, cpu = time.perf_counter(), time.process_time()
        ids = [service.submit_record(list(r.files), sender=r.sender, receiver=r.receiver) for r in records]
        service.engine.close()  # waits for the pool to drain
        elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
        report(f"in-process, {threads} thread(s), SQLite", wait_all(jobs, ids, 10), elapsed)
        print(f"  CPU of the process (submitting and analysing): {cpu / len(ids) * 1000:.1f} ms a record")
        jobs.history.dispose()


def bench_celery(records: list, workers: int, pool: str = "prefork") -> None:
    from sqlalchemy import create_engine, text

    from services.history import HistoryStore
    from services.jobs import CeleryEngine, JobService, JobStore
    from services.jobs.celery_app import make_celery

    schema = f"gem_bench_{uuid.uuid4().hex[:8]}"
    queue = f"gem-bench-{uuid.uuid4().hex[:8]}"
    admin = create_engine(POSTGRES_URL)
    with admin.begin() as connection:
        connection.execute(text(f"CREATE SCHEMA {schema}"))
    url = f"{POSTGRES_URL}?options=-csearch_path%3D{schema}"
    env = {**os.environ, "GEM_BROKER_URL": REDIS_URL, "GEM_JOB_QUEUE": queue, "GEM_DATABASE_URL": url}
    # prefork: one worker with N pool processes; solo: N worker processes, each running tasks itself
    commands = ([["--pool", "prefork", "--concurrency", str(workers)]] if pool == "prefork"
                else [["--pool", "solo"] for _ in range(workers)])
    started_workers = [subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "app.worker", "worker", *options, "--loglevel", "warning",
         "--without-gossip", "--without-mingle", "--without-heartbeat", "--hostname", f"{queue}-{k}@%h"],
        cwd=ROOT, env=env, start_new_session=True) for k, options in enumerate(commands)]
    try:
        jobs = JobStore(HistoryStore(url))
        service = JobService(jobs, CeleryEngine(make_celery(REDIS_URL, queue), queue))
        warm = [service.submit_record(list(r.files), sender=r.sender, receiver=r.receiver)
                for r in records[:4 * workers]]
        wait_all(jobs, warm, 180)  # every pool process has loaded the model
        started, cpu = time.perf_counter(), sum(tree_cpu_s(worker.pid) for worker in started_workers)
        ids = [service.submit_record(list(r.files), sender=r.sender, receiver=r.receiver) for r in records]
        done = wait_all(jobs, ids, 600)
        cpu = sum(tree_cpu_s(worker.pid) for worker in started_workers) - cpu
        elapsed = max(_time(job["finished_at"]) for job in done) - min(_time(job["created_at"]) for job in done)
        report(f"Celery, {workers} {pool} worker process(es), Redis + PostgreSQL", done, elapsed)
        print(f"  (wall clock including polling: {time.perf_counter() - started:.2f} s); CPU of the Celery "
              f"worker processes: {cpu / len(ids) * 1000:.1f} ms a record (PostgreSQL and Redis not counted)")
        jobs.history.dispose()
    finally:
        for worker in started_workers:
            os.killpg(worker.pid, signal.SIGTERM)
        for worker in started_workers:
            try:
                worker.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(worker.pid, signal.SIGKILL)
        with admin.begin() as connection:
            connection.execute(text(f"DROP SCHEMA {schema} CASCADE"))
        admin.dispose()
        import redis

        client = redis.Redis.from_url(REDIS_URL)
        keys = list(client.scan_iter(f"{queue}:*"))
        if keys:
            client.delete(*keys)


def bench_watch(records: list, threads: int, rate: float, poll_s: float, stable_s: float) -> None:
    """Drop-to-analysed latency: the feed drops records at `rate` into a watched folder."""
    from services.analysis import get_model, warm_up
    from services.feed import write_record
    from services.history import HistoryStore
    from services.jobs import (
        FolderWatcher,
        JobService,
        JobStore,
        RecordPipeline,
        ThreadEngine,
        analyse_record,
    )

    artifacts = ROOT / "artifacts"
    warm_up(artifacts)
    with tempfile.TemporaryDirectory() as folder:
        jobs = JobStore(HistoryStore(f"sqlite:///{folder}/history.db"))
        pipeline = RecordPipeline(jobs=jobs, predictor=lambda: get_model(artifacts))
        engine = ThreadEngine(lambda job_id: analyse_record(job_id, pipeline), threads)
        drop = Path(folder) / "drop"
        drop.mkdir()
        service = JobService(jobs, engine, FolderWatcher(drop, jobs, engine.submit, stable_s=stable_s),
                             poll_s=poll_s).start()
        dropped_at: dict[str, float] = {}
        started = time.perf_counter()
        for index, record in enumerate(records):
            time.sleep(max(0.0, started + index / rate - time.perf_counter()))
            dropped_at[f"{record.stem}.cfg"] = time.time()
            write_record(drop, record)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and jobs.counts()["done"] + jobs.counts()["failed"] < len(records):
            time.sleep(0.05)
        service.stop(close_engine=True)
        done = jobs.recent(500, state="done")
        latencies = sorted((_time(job["finished_at"]) - dropped_at[job["name"]]) * 1000.0 for job in done)
        p95 = latencies[min(len(latencies) - 1, int(round(0.95 * (len(latencies) - 1))))]
        print(f"watched folder, {threads} thread(s), poll {poll_s:g} s, stable {stable_s:g} s, {rate:g} records/s: "
              f"{len(done)}/{len(records)} analysed; drop -> history row p50 {statistics.median(latencies):.0f} ms, "
              f"p95 {p95:.0f} ms; load average {os.getloadavg()[0]:.1f}")
        jobs.history.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--engine", choices=("threads", "celery", "watch"), default="threads")
    parser.add_argument("--records", type=int, default=300)
    parser.add_argument("--threads", type=int, default=2, help="in-process worker threads")
    parser.add_argument("--workers", type=int, default=1, help="Celery worker processes")
    parser.add_argument("--pool", choices=("prefork", "solo"), default="prefork",
                        help="celery: one prefork worker of N processes, or N solo workers")
    parser.add_argument("--seed", type=int, default=13)
    parser.add_argument("--rate", type=float, default=5.0, help="watch: records dropped per second")
    parser.add_argument("--poll", type=float, default=0.5, help="watch: GEM_WATCH_POLL_S")
    parser.add_argument("--stable", type=float, default=0.5, help="watch: GEM_WATCH_STABLE_S")
    args = parser.parse_args()
    records = make_records(args.records, args.seed)
    print(f"{len(records)} COMTRADE records ready; load average {os.getloadavg()[0]:.1f}")
    if args.engine == "threads":
        bench_threads(records, args.threads)
    elif args.engine == "watch":
        bench_watch(records, args.threads, args.rate, args.poll, args.stable)
    else:
        bench_celery(records, args.workers, args.pool)


if __name__ == "__main__":
    main()
