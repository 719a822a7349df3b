"""The record pipeline on Celery with Redis (127.0.0.1:6379) and the history in PostgreSQL
(127.0.0.1:5432): a real worker started as a subprocess (`celery -A app.worker worker`, prefork,
concurrency 1) takes the records posted to `/api/records` and dropped in the watched folder; a
worker process killed in the middle of a job loses nothing and doubles nothing (issue 13 items 2, 6).

Each run uses its own queue (and Redis key prefix) and its own PostgreSQL schema, so parallel runs
do not meet.
"""

from __future__ import annotations

import io
import os
import signal
import subprocess
import time
import uuid
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import create_engine, text

from app import create_app
from app.jobs import JOBS_KEY
from app.settings import Settings
from services.analysis import EXTENSION_KEY
from services.feed import Feed, write_record
from services.simulation import simulate_event
from tests.celery_workers import start_worker, stop_worker

pytestmark = [pytest.mark.postgres, pytest.mark.slow]

REDIS_URL = "redis://127.0.0.1:6379/0"
POSTGRES_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


@pytest.fixture(scope="module")
def database_url():
    schema = f"gem_celery_{uuid.uuid4().hex[:10]}"
    admin = create_engine(POSTGRES_URL)
    with admin.begin() as connection:
        connection.execute(text(f"CREATE SCHEMA {schema}"))
    yield f"{POSTGRES_URL}?options=-csearch_path%3D{schema}"
    with admin.begin() as connection:
        connection.execute(text(f"DROP SCHEMA {schema} CASCADE"))
    admin.dispose()


@pytest.fixture(scope="module")
def queue():
    import redis

    name = f"gem-test-{uuid.uuid4().hex[:10]}"
    yield name
    client = redis.Redis.from_url(REDIS_URL)
    keys = list(client.scan_iter(f"{name}:*"))
    if keys:
        client.delete(*keys)
    client.close()


@pytest.fixture(scope="module")
def settings(database_url, queue, artifacts_copy, tmp_path_factory) -> Settings:
    folder = tmp_path_factory.mktemp("celery")
    return Settings(artifacts_dir=artifacts_copy, instance_dir=folder / "instance", database_url=database_url,
                    broker_url=REDIS_URL, job_queue=queue, watch_dir=folder / "drop", watch_poll_s=0.1,
                    watch_stable_s=0.1)


@pytest.fixture(scope="module")
def worker(settings, tmp_path_factory):
    """One Celery worker (prefork, one child: the machine has two cores) on this run's queue."""
    log_path = tmp_path_factory.mktemp("celery-log") / "worker.log"
    process = start_worker("app.worker", settings, log_path, f"{settings.job_queue}@%h")
    yield process, log_path
    stop_worker(process)


@pytest.fixture(scope="module")
def app(settings, worker):
    dash_app = create_app(settings=settings)
    yield dash_app
    dash_app.server.extensions[JOBS_KEY].stop()
    dash_app.server.extensions[EXTENSION_KEY].store.dispose()


def wait_done(jobs, job_ids, worker, timeout_s: float = 120.0) -> list[dict]:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        found = [jobs.get(job_id) for job_id in job_ids]
        if all(job["state"] in ("done", "failed") for job in found):
            return found
        time.sleep(0.1)
    raise AssertionError(f"jobs not finished in {timeout_s} s: {[job['state'] for job in found]}; worker log:\n"
                         + worker[1].read_text()[-4000:])


def test_cel001_posted_and_dropped_records_are_analysed_by_the_celery_worker(app, settings, worker):
    client = app.server.test_client()
    jobs = app.server.extensions[JOBS_KEY]
    assert jobs.engine.name == "celery"
    feed = Feed(seed=21)
    posted = []
    for _ in range(4):
        record = feed.next_record()
        response = client.post("/api/records", content_type="multipart/form-data", data={
            "sender_peer": record.sender, "receiver_peer": record.receiver,
            "file": [(io.BytesIO(data), name) for name, data in record.files]})
        assert response.status_code == 202
        posted.append(response.get_json()["job_id"])
    dropped = [feed.next_record() for _ in range(4)]
    write_record(settings.watch_dir, dropped[0])
    (settings.watch_dir / "corrupt.dat").write_bytes(b"\x00\x01 not a record")  # a corrupt record in the queue
    (settings.watch_dir / "corrupt.cfg").write_bytes(b"Substation,relay,1999\r\n3,3A,0D\r\n")
    for record in dropped[1:]:
        write_record(settings.watch_dir, record)

    done = wait_done(jobs, posted, worker)
    assert [job["state"] for job in done] == ["done"] * 4
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        watched = jobs.recent(50, source="watch")
        if len(watched) == 5 and all(job["state"] in ("done", "failed") for job in watched):
            break
        time.sleep(0.1)
    (rejected,) = [job for job in watched if job["state"] == "failed"]
    assert rejected["name"] == "corrupt.cfg" and rejected["error"].startswith("corrupt.cfg")
    watched = [job for job in watched if job is not rejected]
    assert sorted(job["name"] for job in watched) == sorted(f"{record.stem}.cfg" for record in dropped)
    assert all(job["state"] == "done" for job in watched)  # the corrupt record stopped nothing

    store = app.server.extensions[EXTENSION_KEY].store
    assert store.backend == "postgresql"
    ids = [job["analysis_id"] for job in done + watched]
    assert len(set(ids)) == 8
    assert store.query(source="api-records")[1] == 4 and store.query(source="watch")[1] == 4
    polled = client.get(f"/api/jobs/{posted[0]}").get_json()
    assert polled["state"] == "done" and polled["result"]["analysis_id"] == done[0]["analysis_id"]


def slow_record() -> list[tuple[str, bytes]]:
    """A long ASCII record (20 s at 10 kHz, about 6 MB): reading it takes a good fraction of a second,
    time enough to kill the worker in the middle of it."""
    window, _ = simulate_event(40, 4)
    count = 200_000
    values = np.tile(window, (1, count // window.shape[1] + 1))[:, :count] * 1000.0
    scales = np.abs(values).max(axis=1) / 32000.0
    lines = ["Kill test,87T relay,1999", "4,3A,1D"]
    lines += [f"{k + 1},Id{phase},{phase},87T,A,{scale:.9g},0,0,-32767,32767,1200,5,P"
              for k, (phase, scale) in enumerate(zip("ABC", scales, strict=True))]
    lines += ["4,TRIP,,87T,0", "60", "1", f"10000,{count}", "01/01/2026,00:00:00.000000",
              "01/01/2026,00:00:00.025000", "ASCII", "1"]
    raw = np.round(values / scales[:, None]).astype(np.int64)
    table = np.column_stack([np.arange(1, count + 1), np.arange(count) * 100, raw.T, np.zeros(count, np.int64)])
    buffer = io.StringIO()
    np.savetxt(buffer, table, fmt="%d", delimiter=",")
    return [("slow.cfg", ("\r\n".join(lines) + "\r\n").encode()), ("slow.dat", buffer.getvalue().encode())]


def pool_children(pid: int) -> list[int]:
    children = Path(f"/proc/{pid}/task/{pid}/children")
    return [int(value) for value in children.read_text().split()] if children.exists() else []


def test_cel002_a_worker_process_killed_mid_job_loses_and_doubles_nothing(app, worker):
    process, _ = worker
    jobs = app.server.extensions[JOBS_KEY]
    store = app.server.extensions[EXTENSION_KEY].store
    files = slow_record()
    for _attempt in range(5):  # until the kill lands while the job runs (a job may finish first)
        before = store.count()
        job_id = jobs.submit_record(files, sender="prosumer-a", receiver="ev-hub")
        deadline = time.monotonic() + 60
        while jobs.get(job_id)["state"] == "queued" and time.monotonic() < deadline:
            time.sleep(0.005)
        children = pool_children(process.pid)
        if jobs.get(job_id)["state"] != "running" or not children:
            wait_done(jobs, [job_id], worker)
            continue
        os.kill(children[0], signal.SIGKILL)  # the pool process running the job
        (job,) = wait_done(jobs, [job_id], worker)
        if job["attempts"] < 2:  # it finished before the signal arrived: try again
            continue
        assert job["state"] == "done" and job["analysis_id"] is not None
        assert store.count() == before + 1  # analysed exactly once
        assert store.get(job["analysis_id"], include_waveform=False)["source"] == "api-records"
        return
    pytest.fail("the kill never landed while a job was running")


def free_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def start_redis(port: int, folder: Path) -> subprocess.Popen:
    """A private Redis (append-only file in `folder`, so queued messages survive its restart)."""
    process = subprocess.Popen(["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--dir", str(folder),
                                "--appendonly", "yes", "--save", ""], stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
    import redis

    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            if redis.Redis(port=port).ping():
                return process
        except redis.ConnectionError:
            time.sleep(0.1)
    process.kill()
    raise AssertionError("private redis-server did not start")


@pytest.mark.skipif(not Path("/usr/bin/redis-server").exists(), reason="needs redis-server to restart a private Redis")
def test_cel003_the_pipeline_resumes_after_a_redis_restart(settings, tmp_path):
    """Redis stops: posts answer 503 and dropped records wait in the folder; Redis comes back: the
    worker reconnects and every dropped record is analysed once."""
    port = free_port()
    redis_dir = tmp_path / "redis"
    redis_dir.mkdir()
    broker = f"redis://127.0.0.1:{port}/0"
    redis_server = start_redis(port, redis_dir)
    local = settings.with_overrides(broker_url=broker, watch_dir=tmp_path / "drop-restart")
    worker = start_worker("app.worker", local, None, f"restart-{local.job_queue}@%h", pool="solo")
    app = create_app(settings=local)
    jobs = app.server.extensions[JOBS_KEY]
    client = app.server.test_client()
    feed = Feed(seed=33)
    try:
        record = feed.next_record()
        before = jobs.submit_record(list(record.files), sender=record.sender, receiver=record.receiver)
        assert wait_done(jobs, [before], (worker, tmp_path / "none"))[0]["state"] == "done"

        redis_server.terminate()
        redis_server.wait(timeout=20)
        record = feed.next_record()
        refused = client.post("/api/records", content_type="multipart/form-data", data={
            "sender_peer": record.sender, "receiver_peer": record.receiver,
            "file": [(io.BytesIO(data), name) for name, data in record.files]})
        assert refused.status_code == 503 and "job queue is unavailable" in refused.get_json()["error"]
        dropped = [feed.next_record() for _ in range(3)]
        for item in dropped:
            write_record(local.watch_dir, item)
        time.sleep(1.5)  # scans meanwhile find the broker down
        # nothing analysed, nothing rejected: a job whose message could not be sent is dropped
        # again (the scan in progress may hold one for a moment) and the record waits in the folder
        names = {f"{item.stem}.cfg" for item in dropped}
        assert all(job["state"] == "queued" for job in jobs.recent(50, source="watch") if job["name"] in names)

        redis_server = start_redis(port, redis_dir)
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            watched = [job for job in jobs.recent(50, source="watch") if job["name"] in names]
            if len(watched) == 3 and all(job["state"] == "done" for job in watched):
                break
            time.sleep(0.2)
        assert sorted(job["name"] for job in watched) == sorted(names)
        assert all(job["state"] == "done" for job in watched), watched
        rows = app.server.extensions[EXTENSION_KEY].store.query(limit=1000, source="watch")[0]
        assert sorted(row["sample_name"] for row in rows if row["sample_name"] in names) == sorted(names)  # once each
    finally:
        jobs.stop()
        app.server.extensions[EXTENSION_KEY].store.dispose()
        stop_worker(worker)
        redis_server.terminate()
        redis_server.wait(timeout=20)
