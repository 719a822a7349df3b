"""The one task of the record pipeline: `analyse_record(job_id, pipeline)`.

Both engines run exactly this: the in-process thread pool (`services.jobs.engine.ThreadEngine`)
and the Celery worker (`services.jobs.celery_app`). It reads the job's files (the same readers as
`/api/predict-file`: `services.ingest.parse_uploaded_files`, COMTRADE through
`services.comtrade_ingest`), analyses the window with `services.analysis.analyze`, and keeps the
history row and the job's "done" in one transaction (`JobStore.finish`), so a task delivered
twice (a killed worker, a redelivery) still leaves one analysis.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy.engine import Connection

from services.analysis import AnalysisError, Predictor, analyze
from services.comtrade_ingest import MAX_RECORD_BYTES
from services.grid import Microgrid
from services.ingest import parse_uploaded_files
from services.jobs.store import AlreadyFinished, JobNotFound, JobStore
from services.waveform import WaveformError

log = logging.getLogger(__name__)

#: the Celery task's name (the web process sends it by name, the worker registers it)
TASK_NAME = "gem.analyse_record"


class RetryLater(RuntimeError):
    """The analysis was made but could not be kept (the database did not take it): run the job again."""


@dataclass(frozen=True)
class RecordPipeline:
    """What the task needs, built once per worker process: the job store (its history store
    inside), how to get the loaded model, the microgrid with its tariffs, the record size limit."""

    jobs: JobStore
    predictor: Callable[[], Predictor]
    grid: Microgrid | None = None
    max_bytes: int = MAX_RECORD_BYTES


class _JobHistory:
    """The `store` handed to `analyze`: its one `add` goes through `JobStore.finish`, so the
    history row and the job's completion are one transaction."""

    def __init__(self, jobs: JobStore, job_id: str, connection: Connection | None = None) -> None:
        self.jobs = jobs
        self.job_id = job_id
        self.connection = connection

    def add(self, record: Mapping[str, Any]) -> int:
        history = self.jobs.history
        return self.jobs.finish(self.job_id, history._row(record), self.connection)  # the store's own validated row


def analyse_record(job_id: str, pipeline: RecordPipeline) -> int | None:
    """Analyse the record of job `job_id` into the history; the analysis id, or None when it failed
    (the reason is on the job). Safe to call again for the same job: a finished job is not redone.

    Errors of the record (unreadable, wrong shape, bad peers) fail the job; database errors
    propagate, so the engine can retry the job later.
    """
    with pipeline.jobs.engine.connect() as connection:  # one connection for the whole job
        return _analyse(job_id, pipeline, connection)


def _analyse(job_id: str, pipeline: RecordPipeline, connection: Connection) -> int | None:
    try:
        job = pipeline.jobs.claim(job_id, connection)
    except JobNotFound:
        log.warning("job %s does not exist (its database was reset?); skipped", job_id)
        return None
    if job is None:  # finished by an earlier delivery
        finished = pipeline.jobs.get(job_id)
        return finished["analysis_id"] if finished else None
    options = job.get("options") or {}
    try:
        loaded = parse_uploaded_files(job["files"], channels=_channels(options.get("channels")),
                                      unit=options.get("unit") or None,
                                      rated_current_a=options.get("rated_current_a") or None,
                                      max_bytes=pipeline.max_bytes)
    except WaveformError as exc:
        pipeline.jobs.fail(job_id, str(exc))
        return None
    from services.inference import ModelUnavailable

    try:
        predictor = pipeline.predictor()
    except ModelUnavailable as exc:
        pipeline.jobs.fail(job_id, f"model unavailable: {exc}")
        return None
    try:
        analysis = analyze(
            loaded.waveform, source=job["source"], sender=job["sender"], receiver=job["receiver"],
            transfer_kw=job.get("transfer_kw"), sample_name=loaded.name,
            recording=loaded.comtrade.to_dict() if loaded.comtrade is not None else None,
            units=loaded.units.to_dict() if loaded.units is not None else None,
            predictor=predictor, store=_JobHistory(pipeline.jobs, job_id, connection), grid=pipeline.grid,
            relay_connection=options.get("relay_connection"),
        )
    except AlreadyFinished:
        finished = pipeline.jobs.get(job_id)
        return finished["analysis_id"] if finished else None
    except AnalysisError as exc:
        pipeline.jobs.fail(job_id, str(exc))
        return None
    if analysis.analysis_id is None:  # `analyze` kept the answer but the history write failed
        finished = pipeline.jobs.get(job_id)
        if finished is not None and finished["analysis_id"] is not None:
            return finished["analysis_id"]
        raise RetryLater(f"job {job_id}: the history did not take the analysis")
    return analysis.analysis_id


def _channels(value: Any) -> tuple[str | int, ...] | None:
    if not value:
        return None
    return tuple(value)
