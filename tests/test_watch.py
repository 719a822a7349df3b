"""The watched drop folder: complete records once, whatever order their pieces land in; restarts,
duplicates, racing scanners and rejects (issue 13 item 1). No model here: jobs are only queued."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from services.feed import Feed
from services.history import HistoryStore
from services.jobs import FolderWatcher, JobStore, peers_from_name, record_hash
from services.jobs.service import JobService
from services.jobs.store import FAILED, QUEUED

LATER = 60.0  # seconds after the files were written: every file is stable by then


@pytest.fixture()
def jobs(tmp_path) -> JobStore:
    store = JobStore(HistoryStore(f"sqlite:///{tmp_path / 'history.db'}"))
    yield store
    store.history.dispose()


@pytest.fixture()
def folder(tmp_path) -> Path:
    path = tmp_path / "drop"
    path.mkdir()
    return path


@pytest.fixture(scope="module")
def records():
    feed = Feed(seed=7)
    return [feed.next_record() for _ in range(4)]


def make_watcher(folder: Path, jobs: JobStore, submitted: list[str], **kwargs) -> FolderWatcher:
    return FolderWatcher(folder, jobs, submitted.append, stable_s=kwargs.pop("stable_s", 1.0), **kwargs)


def drop(folder: Path, name: str, data: bytes, age_s: float = 0.0) -> Path:
    path = folder / name
    path.write_bytes(data)
    if age_s:
        moment = time.time() - age_s
        os.utime(path, (moment, moment))
    return path


def test_wat001_a_record_in_pieces_and_out_of_order_is_taken_once_complete(folder, jobs, records):
    record = records[0]
    (cfg_name, cfg), (dat_name, dat) = record.files
    submitted: list[str] = []
    watcher = make_watcher(folder, jobs, submitted)

    drop(folder, dat_name, dat[: len(dat) // 2])  # the .dat first, and only half of it
    report = watcher.scan(time.time() + LATER)
    assert report.queued == [] and report.waiting == [record.stem]  # no .cfg yet: wait for it

    drop(folder, cfg_name, cfg)
    drop(folder, dat_name, dat)  # the rest of the .dat lands now: not stable yet
    report = watcher.scan(time.time())
    assert report.queued == [] and report.waiting == [record.stem]

    report = watcher.scan(time.time() + LATER)
    assert len(report.queued) == 1 and submitted == report.queued
    job = jobs.get(report.queued[0])
    assert job["state"] == QUEUED and job["source"] == "watch" and job["name"] == cfg_name
    assert (job["sender"], job["receiver"]) == (record.sender, record.receiver)
    assert job["content_hash"] == record_hash(list(record.files))
    assert jobs.claim(job["id"])["files"] == [(cfg_name, cfg), (dat_name, dat)]

    assert watcher.scan(time.time() + LATER).queued == []  # seen: never again
    assert len(submitted) == 1
    assert jobs.claim(job["id"])["options"]["relay_connection"] is None  # not stated by default


def test_wat001b_the_records_of_a_watched_folder_carry_its_relay_connection(folder, jobs, records):
    (cfg_name, cfg), (dat_name, dat) = records[1].files
    submitted: list[str] = []
    watcher = make_watcher(folder, jobs, submitted, relay_connection="yd_ia_minus_ic")
    drop(folder, cfg_name, cfg, age_s=10)
    drop(folder, dat_name, dat, age_s=10)
    assert len(watcher.scan(time.time() + LATER).queued) == 1
    assert jobs.claim(submitted[0])["options"]["relay_connection"] == "yd_ia_minus_ic"


def test_wat002_after_a_restart_nothing_is_taken_twice(folder, jobs, records):
    for record in records[:2]:
        for name, data in record.files:
            drop(folder, name, data, age_s=LATER)
    first: list[str] = []
    assert len(make_watcher(folder, jobs, first).scan().queued) == 2
    restarted: list[str] = []
    report = make_watcher(folder, jobs, restarted).scan()  # a new process: no memory but the database
    assert report.queued == [] and restarted == [] and report.known == 2
    assert jobs.counts()["queued"] == 2


def test_wat003_the_same_record_under_another_name_is_a_duplicate(folder, jobs, records):
    (cfg_name, cfg), (dat_name, dat) = records[1].files
    drop(folder, cfg_name, cfg, age_s=LATER)
    drop(folder, dat_name, dat, age_s=LATER)
    drop(folder, "copy.cfg", cfg, age_s=LATER)
    drop(folder, "copy.dat", dat, age_s=LATER)
    submitted: list[str] = []
    report = make_watcher(folder, jobs, submitted).scan()
    assert len(report.queued) == 1 and len(submitted) == 1
    assert sum(jobs.counts().values()) == 1


def test_wat004_two_scanners_racing_take_each_record_once(folder, jobs, records, tmp_path):
    for record in records:
        for name, data in record.files:
            drop(folder, name, data, age_s=LATER)
    other_jobs = JobStore(HistoryStore(f"sqlite:///{tmp_path / 'history.db'}"))  # another machine
    first: list[str] = []
    second: list[str] = []
    watcher_a = make_watcher(folder, jobs, first)
    watcher_b = make_watcher(folder, other_jobs, second)
    # both listed the folder before either wrote: B's inserts meet A's unique keys
    taken_before = jobs.known
    jobs.known = lambda keys: {}  # type: ignore[method-assign]
    other_jobs.known = lambda keys: {}  # type: ignore[method-assign]
    report_a = watcher_a.scan()
    report_b = watcher_b.scan()
    jobs.known = taken_before  # type: ignore[method-assign]
    assert len(report_a.queued) == len(records) and report_b.queued == []
    assert report_b.known == len(records) and second == []
    assert sum(jobs.counts().values()) == len(records)
    other_jobs.history.dispose()


def test_wat005_unreadable_and_incomplete_records_are_rejected_with_the_reason(folder, jobs, records):
    (cfg_name, cfg), _ = records[2].files
    drop(folder, cfg_name, cfg, age_s=LATER)  # its .dat never comes
    drop(folder, "notes.pdf", b"%PDF-1.4", age_s=LATER)
    drop(folder, "big.npy", b"\0" * 2048, age_s=LATER)
    drop(folder, ".hidden.cfg.tmp", b"half written", age_s=LATER)
    submitted: list[str] = []
    watcher = make_watcher(folder, jobs, submitted, pair_timeout_s=LATER * 10, max_bytes=1024)
    report = watcher.scan()
    assert sorted(report.waiting) == [records[2].stem]  # the .cfg still waits for its .dat
    rejected = {job["name"]: job["error"] for job in jobs.rejected()}
    assert set(rejected) == {"notes.pdf", "big.npy"} and submitted == []
    assert "not a record" in rejected["notes.pdf"]
    assert "more than the" in rejected["big.npy"]

    late = make_watcher(folder, jobs, submitted, pair_timeout_s=LATER / 2, max_bytes=1024).scan()
    assert len(late.rejected) == 1
    reason = jobs.get(late.rejected[0])["error"]
    assert f"no .dat arrived within {LATER / 2:g} s" in reason
    assert jobs.get(late.rejected[0])["state"] == FAILED
    assert make_watcher(folder, jobs, submitted).scan().rejected == []  # rejected once, not at every scan
    assert sorted(path.name for path in folder.iterdir()) == sorted(  # nothing deleted without the setting
        [cfg_name, "notes.pdf", "big.npy", ".hidden.cfg.tmp"])


def test_wat006_files_are_deleted_only_with_the_setting_and_once_finished(folder, jobs, records):
    (cfg_name, cfg), (dat_name, dat) = records[3].files
    drop(folder, cfg_name, cfg, age_s=LATER)
    drop(folder, dat_name, dat, age_s=LATER)
    drop(folder, "junk.bin", b"junk", age_s=LATER)
    submitted: list[str] = []
    watcher = make_watcher(folder, jobs, submitted, delete=True)
    report = watcher.scan()
    assert report.deleted == ["junk.bin"]  # rejected: finished at once
    assert (folder / cfg_name).exists()  # queued, not finished: kept
    jobs.fail(submitted[0], "test: finished")
    assert sorted(watcher.scan().deleted) == sorted([cfg_name, dat_name])
    assert list(folder.iterdir()) == []


def test_wat007_peers_come_from_the_name_or_the_defaults():
    assert peers_from_name("rec1__prosumer-b__ev-hub") == ("prosumer-b", "ev-hub")
    assert peers_from_name("rec1__ev-hub__prosumer-b") == ("prosumer-a", "consumer-home")
    assert peers_from_name("rec1__community-battery__community-battery") == ("prosumer-a", "consumer-home")
    assert peers_from_name("plain", "micro-industry", "local-business") == ("micro-industry", "local-business")


def test_wat008_one_scanner_holds_the_lease_until_it_expires(jobs):
    assert jobs.acquire_lock("watch:/x", "worker-1", ttl_s=30)
    assert not jobs.acquire_lock("watch:/x", "worker-2", ttl_s=30)
    assert jobs.acquire_lock("watch:/x", "worker-1", ttl_s=30)  # renewed by its holder
    jobs.release_lock("watch:/x", "worker-1")
    assert jobs.acquire_lock("watch:/x", "worker-2", ttl_s=0.2)
    assert not jobs.acquire_lock("watch:/x", "worker-1", ttl_s=30)
    time.sleep(0.3)
    assert jobs.acquire_lock("watch:/x", "worker-1", ttl_s=30)  # expired: taken over


def test_wat009_the_background_loop_of_two_services_scans_under_one_lease(folder, jobs, records, tmp_path):
    for record in records:
        for name, data in record.files:
            drop(folder, name, data, age_s=LATER)
    other_jobs = JobStore(HistoryStore(f"sqlite:///{tmp_path / 'history.db'}"))
    submitted_a: list[str] = []
    submitted_b: list[str] = []

    class Recorder:
        name = "test"

        def __init__(self, sink):
            self.submit, self.close = sink.append, lambda: None

    services = [JobService(store, Recorder(sink), make_watcher(folder, store, sink), poll_s=0.05).start()
                for store, sink in ((jobs, submitted_a), (other_jobs, submitted_b))]
    deadline = time.monotonic() + 10
    while len(submitted_a) + len(submitted_b) < len(records) and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(0.3)
    for service in services:
        service.stop()
    assert len(submitted_a) + len(submitted_b) == len(records)
    assert not (submitted_a and submitted_b)  # one holder of the lease did all the scanning
    other_jobs.history.dispose()


@pytest.mark.slow
def test_wat010_two_gunicorn_workers_analyse_each_dropped_record_once(tmp_path, records):
    """Two gunicorn workers both run a watcher: one scans at a time, and whichever worker answers,
    a job posted to one is seen by the other."""
    import socket
    import subprocess
    import sys

    import requests

    root = Path(__file__).resolve().parents[1]
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    drop_dir = tmp_path / "gunicorn-drop"
    env = {**os.environ, "GEM_AUTH": "off", "GEM_BIND": f"127.0.0.1:{port}", "GEM_WORKERS": "2", "GEM_DATABASE_URL": "",
           "GEM_INSTANCE_DIR": str(tmp_path / "instance"), "GEM_ARTIFACTS_DIR": str(root / "artifacts"),
           "GEM_WATCH_DIR": str(drop_dir), "GEM_WATCH_POLL_S": "0.1", "GEM_WATCH_STABLE_S": "0.2"}
    process = subprocess.Popen([sys.executable, "-m", "gunicorn", "-c", "gunicorn.conf.py"], cwd=root, env=env,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            assert process.poll() is None, "gunicorn exited early"
            try:
                if requests.get(f"{base}/api/health", timeout=5).status_code == 200:
                    break
            except requests.RequestException:
                pass
            assert time.monotonic() < deadline, "gunicorn did not become healthy within 120 s"
            time.sleep(0.5)
        for record in records:
            for name, data in record.files:
                drop(drop_dir, name, data)
                drop(drop_dir, f"copy-{name}", data)  # the same record twice
        record = records[0]
        posted = requests.post(f"{base}/api/records", timeout=30, files=[("file", item) for item in record.files],
                               data={"sender_peer": record.sender, "receiver_peer": record.receiver})
        assert posted.status_code == 202
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            items = requests.get(f"{base}/api/jobs", timeout=10).json()["items"]
            if len(items) >= len(records) + 1 and all(item["state"] == "done" for item in items):
                break
            time.sleep(0.2)
        watched = [item for item in items if item["source"] == "watch"]
        assert len(watched) == len(records) and all(item["state"] == "done" for item in watched)
        for _ in range(6):  # several requests: both workers answer for the posted job
            job = requests.get(f"{base}{posted.headers['Location']}", timeout=10).json()
            assert job["state"] == "done" and job["result"]["source"] == "api-records"
        history = requests.get(f"{base}/api/history?limit=100", timeout=10).json()
        assert history["total"] == len(records) + 1
    finally:
        process.send_signal(2)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()


def test_wat011_a_record_the_engine_cannot_take_is_retried_at_the_next_scan(folder, jobs, records):
    for name, data in records[0].files:
        drop(folder, name, data, age_s=LATER)
    submitted: list[str] = []
    broker_up = False

    def submit(job_id: str) -> None:
        if not broker_up:
            raise ConnectionError("broker down")
        submitted.append(job_id)

    watcher = FolderWatcher(folder, jobs, submit, stable_s=1.0)
    assert watcher.scan().queued == [] and sum(jobs.counts().values()) == 0  # no job without its message
    broker_up = True
    report = watcher.scan()
    assert report.queued == submitted and len(submitted) == 1 and jobs.counts()["queued"] == 1


def test_wat012_a_missing_folder_is_reported_once_and_watched_once_it_exists(tmp_path, jobs, records, caplog):
    folder = tmp_path / "not-yet"
    submitted: list[str] = []
    watcher = make_watcher(folder, jobs, submitted)
    with caplog.at_level("ERROR", logger="services.jobs.watch"):
        assert watcher.scan().queued == [] and watcher.scan().queued == []
    assert len([r for r in caplog.records if "cannot be read" in r.getMessage()]) == 1
    folder.mkdir()
    for name, data in records[0].files:
        drop(folder, name, data, age_s=LATER)
    assert len(watcher.scan().queued) == 1 and len(submitted) == 1
