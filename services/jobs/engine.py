"""The two engines that run `analyse_record`: worker threads in the web process, or Celery.

`ThreadEngine` needs nothing installed (the embedded default of `python -m app`); `CeleryEngine`
sends each job by name to the Celery workers over Redis (`GEM_BROKER_URL`), which run the same
task function. The web process only ever calls `submit(job_id)`: the job's data is in the database.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Protocol

from services.jobs.tasks import TASK_NAME

log = logging.getLogger(__name__)


class EngineUnavailable(RuntimeError):
    """The engine cannot take the job now (the broker does not answer)."""


class JobEngine(Protocol):
    name: str

    def submit(self, job_id: str) -> None: ...

    def close(self) -> None: ...


class ThreadEngine:
    """A small pool of worker threads in this process.

    The pool is the only queue, so jobs queued here are lost if the process stops before running
    them: they stay 'queued' in the database and the watcher offers them again (`JobService.recover`).
    """

    name = "threads"

    def __init__(self, run: Callable[[str], object], threads: int = 2) -> None:
        self._run = run
        self._pool = ThreadPoolExecutor(max_workers=max(1, int(threads)), thread_name_prefix="gem-job")

    def submit(self, job_id: str) -> None:
        self._pool.submit(self._safely, job_id)

    def _safely(self, job_id: str) -> None:
        try:
            self._run(job_id)
        except Exception:  # a database outage: the job stays unfinished and is recovered later
            log.exception("job %s could not be run", job_id)

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=False)


class CeleryEngine:
    """Send jobs to Celery workers (`celery -A app.worker worker`) through the broker."""

    name = "celery"

    def __init__(self, celery_app, queue: str) -> None:
        self.celery = celery_app
        self.queue = queue

    def submit(self, job_id: str) -> None:
        try:
            self.celery.send_task(TASK_NAME, args=[job_id], queue=self.queue)
        except Exception as exc:  # kombu raises several types for an unreachable broker
            log.error("cannot queue job %s on the broker: %s: %s", job_id, type(exc).__name__, exc)
            raise EngineUnavailable(f"the job queue is unavailable ({type(exc).__name__})") from None

    def close(self) -> None:
        pass
