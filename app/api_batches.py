"""`GET /api/batches/<id>` (a batch's summary and progress) and `GET /api/batches/<id>.csv` (its
results, one row per record). Batches are started from the Batch page; these let scripts and the
page's CSV link read them back from any web worker (the jobs live in the history's database)."""

from __future__ import annotations

from flask import Response, current_app, stream_with_context

from app.api import ApiError, _prepend, json_response
from app.jobs import JOBS_KEY
from services.batch import batch_summary, iter_batch_csv
from services.jobs import JobStore, is_job_id


def _jobs() -> JobStore:
    return current_app.extensions[JOBS_KEY].jobs


def _checked(batch_id: str) -> str:
    if not is_job_id(batch_id):
        raise ApiError(400, "batch id must be the 32 hex digits the Batch page shows")
    return batch_id


def batch_status(batch_id: str) -> Response:
    """The batch's counts by state, by category, unit, severity and label, and its rejected records."""
    summary = batch_summary(_jobs(), _checked(batch_id))
    if summary is None:
        raise ApiError(404, f"no batch with id {batch_id}")
    return json_response(summary)


def batch_csv(batch_id: str) -> Response:
    """The batch's results as CSV: record, state, reason, analysis id and the verdict's fields."""
    jobs = _jobs()
    if batch_summary(jobs, _checked(batch_id)) is None:
        raise ApiError(404, f"no batch with id {batch_id}")
    chunks = iter_batch_csv(jobs, batch_id)
    header = next(chunks)  # the rows are read before the answer starts: an outage is still a 503
    response = Response(stream_with_context(_prepend(header, chunks)), mimetype="text/csv")
    response.headers["Content-Disposition"] = f"attachment; filename=batch-{batch_id}.csv"
    return response
