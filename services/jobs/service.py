"""JobService: what the web app holds of the record pipeline (one per app, on the Flask app).

It takes records (`submit_record`, for `POST /api/records`), hands them to the engine, reads jobs
back (`get`, `recent`, `rejected`) and runs the background loop: the folder watcher's scans, under a
lease in the database so that one scanner at a time works whatever the number of web workers and
machines, and a recovery pass that offers again jobs a stopped process left unfinished.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Mapping, Sequence
from typing import Any

from services.ingest import safe_filename
from services.jobs.engine import EngineUnavailable, JobEngine
from services.jobs.store import JobStore
from services.jobs.watch import FolderWatcher

log = logging.getLogger(__name__)

API_SOURCE = "api-records"
RECOVER_LOCK = "jobs:recover"
#: a job untouched this long while queued or running was lost by a process that stopped
RECOVER_AFTER_S = 120.0
RECOVER_EVERY_S = 60.0


def find_job_service(extensions: Mapping[str, Any]) -> JobService | None:
    """The JobService an app keeps among its server's extensions (None when it has none)."""
    return next((item for item in extensions.values() if isinstance(item, JobService)), None)


class JobService:
    """The job store, the engine and (when a folder is watched) the watcher of one app."""

    def __init__(self, jobs: JobStore, engine: JobEngine, watcher: FolderWatcher | None = None, *,
                 poll_s: float = 0.5, recover_after_s: float = RECOVER_AFTER_S) -> None:
        self.jobs = jobs
        self.engine = engine
        self.watcher = watcher
        self.poll_s = max(0.05, float(poll_s))
        self.recover_after_s = float(recover_after_s)
        self.owner = uuid.uuid4().hex  # this process's name in the leases
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # -- records ----------------------------------------------------------------------------------
    def submit_record(self, files: Sequence[tuple[str, bytes]], *, sender: str, receiver: str,
                      transfer_kw: float | None = None, options: Mapping[str, Any] | None = None,
                      source: str = API_SOURCE) -> str:
        """Queue one record (its files as (name, bytes)); the job id. EngineUnavailable (the job is
        then failed with that reason) when the broker cannot take it."""
        name = next((n for n, _ in files if n.lower().endswith((".cfg", ".cff"))), files[0][0] if files else "record")
        name = safe_filename(name)  # shown on pages and in lists: no control or format characters
        job_id = self.jobs.create(source=source, name=name, files=files, sender=sender, receiver=receiver,
                                  transfer_kw=transfer_kw, options=options)
        assert job_id is not None  # no dedupe key: always created
        try:
            self.engine.submit(job_id)
        except EngineUnavailable as exc:
            self.jobs.fail(job_id, str(exc))
            raise
        return job_id

    def get(self, job_id: str) -> dict[str, Any] | None:
        return self.jobs.get(job_id)

    def recent(self, limit: int = 50, **filters: Any) -> list[dict[str, Any]]:
        return self.jobs.recent(limit, **filters)

    def rejected(self, limit: int = 50, source: str | None = None) -> list[dict[str, Any]]:
        return self.jobs.rejected(limit, source)

    # -- background -------------------------------------------------------------------------------
    def start(self) -> JobService:
        """Start the background loop (watcher scans and recovery) in a daemon thread; without a
        watched folder, only offer once the jobs a stopped process left behind."""
        if self.watcher is None:
            self._recover_safely()
            return self
        if self._thread is None:
            self._thread = threading.Thread(target=self._loop, name="gem-watch", daemon=True)
            self._thread.start()
        return self

    def stop(self, close_engine: bool = False) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
        if self.watcher is not None:
            try:
                self.jobs.release_lock(self.watcher.lock_name, self.owner)
            except Exception:
                log.exception("could not release the watch lease")
        if close_engine:
            self.engine.close()

    def _loop(self) -> None:
        """Scan while holding the folder's lease (renewed at every scan; a stopped holder's lapses
        and another process takes over), and now and then recover lost jobs."""
        assert self.watcher is not None
        lease_s = max(10.0, 10 * self.poll_s)
        next_recovery = 0.0
        while not self._stop.is_set():
            try:
                if self.jobs.acquire_lock(self.watcher.lock_name, self.owner, lease_s):
                    self.watcher.scan()
                    if time.monotonic() >= next_recovery:
                        next_recovery = time.monotonic() + RECOVER_EVERY_S
                        self.recover()
            except Exception:  # a database or folder outage: log it and try again next time
                log.exception("watch folder scan failed")
            self._stop.wait(self.poll_s)

    def _recover_safely(self) -> None:
        try:
            self.recover()
        except Exception:
            log.exception("job recovery failed")

    def recover(self) -> list[str]:
        """Offer the engine again the jobs left queued or running for `recover_after_s` (their
        process stopped); running one twice is harmless, `analyse_record` finishes a job once."""
        if not self.jobs.acquire_lock(RECOVER_LOCK, self.owner, RECOVER_EVERY_S / 2):
            return []
        stale = self.jobs.stale(self.recover_after_s)
        if stale:
            log.warning("offering %d unfinished job(s) again", len(stale))
            self.jobs.touch(stale)
            for job_id in stale:
                try:
                    self.engine.submit(job_id)
                except EngineUnavailable:
                    break
        return stale
