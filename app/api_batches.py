"""`POST /api/batches` (an archive of records analysed in the background), `GET /api/batches/<id>`
(its summary and progress) and `GET /api/batches/<id>.csv` (its results, one row per record), for
scripts and the Batch page's CSV link; any web worker answers (the jobs live in the history's database).

A posted batch runs on the app's job engine: worker threads in the web process, or the Celery
record workers with GEM_BROKER_URL. The Batch page runs its batches as a Dash background callback."""

from __future__ import annotations

from flask import Response, current_app, request, stream_with_context, url_for

from app.api import FILE_FIELD, ApiError, _prepend, form_relay_connection, json_response
from app.jobs import JOBS_KEY
from services.batch import BatchError, batch_summary, create_batch, iter_batch_csv, read_archive, submit_batch
from services.jobs import EngineUnavailable, JobStore, is_job_id


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


def post_batch() -> Response:
    """Take an archive (multipart field `file`: zip, tar or tar.gz; optional field `relay_connection`
    for every record), create its batch and queue its records; 202 with the batch id, the counts and its Location. Refused whole: 400 (not an archive,
    over a limit), 413 (over GEM_MAX_BATCH_BYTES), 415 (not multipart), 503 (the queue is down)."""
    if request.mimetype != "multipart/form-data":
        raise ApiError(415, f"send the archive as multipart/form-data, field '{FILE_FIELD}'")
    connection = form_relay_connection(request.form)
    uploads = request.files.getlist(FILE_FIELD)
    if len(uploads) != 1:
        raise ApiError(400, f"send one archive (zip, tar or tar.gz) in the field '{FILE_FIELD}'")
    settings = current_app.config["GEM_SETTINGS"]
    try:
        found = read_archive(uploads[0].read(), uploads[0].filename or "archive", settings.batch_limits())
    except BatchError as exc:
        raise ApiError(400, str(exc)) from None
    if not found.records and not found.rejected:
        raise ApiError(400, f"{found.source_name} holds no records")
    service = current_app.extensions[JOBS_KEY]
    batch_id = create_batch(service.jobs, found, relay_connection=connection)
    try:
        submit_batch(service.jobs, batch_id, service.engine.submit)
    except EngineUnavailable as exc:
        service.jobs.cancel_batch(batch_id)  # nothing of it runs later by surprise
        raise ApiError(503, f"{exc}; the batch was cancelled, send it again later") from None
    location = url_for(f"{request.blueprint}.batch_status", batch_id=batch_id)
    response = json_response({"batch_id": batch_id, "records": len(found.records), "rejected": len(found.rejected),
                              "location": location}, 202)
    response.headers["Location"] = location
    return response
