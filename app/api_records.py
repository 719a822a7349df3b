"""`POST /api/records` (a record to analyse in the background), `GET /api/jobs[/<id>]`, and the
alarms of live events (`GET /api/alarms`, `POST /api/alarms/<id>/ack`, `POST /api/alarms/ack`).

The record takes the same multipart form as `/api/predict-file`; the answer is 202 at once with
the job id and its `Location`. The job is then read back from the database, so any web worker
(or machine) answers for it: state queued / running / done / failed, and once done the analysis
as `/predict` answers it, with links to it.
"""

from __future__ import annotations

from flask import Response, current_app, request, url_for

from app.api import (
    ApiError,
    _context,
    _form_number,
    _int_arg,
    _json_object,
    form_relay_connection,
    json_response,
    read_record_form,
)
from app.auth import recorded_user
from app.jobs import JOBS_KEY
from services.alarms import MAX_ALARM_PAGE, AlarmError, AlarmStore
from services.analysis import api_view
from services.comtrade_ingest import parse_channel_spec
from services.jobs import DONE, STATES, EngineUnavailable, JobService, is_job_id
from services.jobs.store import MAX_JOB_PAGE
from services.units import normalise_unit
from services.waveform import WaveformError


def _jobs() -> JobService:
    return current_app.extensions[JOBS_KEY]


def post_record() -> Response:
    """Queue a record (multipart, like `/api/predict-file`); 202 with the job id and Location."""
    sender, receiver, transfer_kw, files = read_record_form("record")
    form = request.form
    try:
        channels = parse_channel_spec(form.get("channels"))
        unit = normalise_unit(form.get("unit")) if form.get("unit") else None
    except WaveformError as exc:
        raise ApiError(400, str(exc)) from None
    rated = _form_number(form.get("rated_current_a"), "rated_current_a")
    options = {"channels": list(channels) if channels else None, "unit": unit, "rated_current_a": rated,
               "relay_connection": form_relay_connection(form)}
    try:
        job_id = _jobs().submit_record(files, sender=sender, receiver=receiver, transfer_kw=transfer_kw,
                                       options=options)
    except EngineUnavailable as exc:
        raise ApiError(503, f"{exc}; try again later") from None
    location = url_for(f"{request.blueprint}.job_status", job_id=job_id)
    response = json_response({"job_id": job_id, "state": "queued", "location": location}, 202)
    response.headers["Location"] = location
    return response


def job_status(job_id: str) -> Response:
    """One job: its state and, once done, the analysis (as `/predict` answers) and its links."""
    if not is_job_id(job_id):
        raise ApiError(400, "job id must be the 32 hex digits that POST /api/records answered")
    job = _jobs().get(job_id)
    if job is None:
        raise ApiError(404, f"no job with id {job_id}")
    return json_response(_with_result(job, include_analysis=True))


def job_list() -> Response:
    """Jobs newest first (`limit`, `source`, `state`): what a Live page polls; done ones carry
    `analysis`, the verdict in a few fields (label, severity, unit, transfer status), failed ones
    the reason (the rejected records)."""
    limit = _int_arg("limit", 50, 1, MAX_JOB_PAGE)
    state = request.args.get("state") or None
    if state is not None and state not in STATES:
        raise ApiError(400, f"state must be one of {', '.join(STATES)}")
    items = _jobs().recent(limit, source=request.args.get("source") or None, state=state, with_analysis=True)
    return json_response({"items": [_with_result(job, include_analysis=False) for job in items],
                          "count": len(items)})


def _with_result(job: dict, *, include_analysis: bool) -> dict:
    job = {key: value for key, value in job.items() if key != "content_hash"}
    analysis_id = job.get("analysis_id")
    if job["state"] == DONE and analysis_id is not None:
        job["links"] = {
            "analysis": url_for(f"{request.blueprint}.history_item", analysis_id=analysis_id),
            "page": _page_link(analysis_id),
        }
        if include_analysis:
            analysis = _context().load(analysis_id)
            job["result"] = api_view(analysis) if analysis is not None else None
    return job


def _page_link(analysis_id: int) -> str:
    from app.context import analysis_href

    return analysis_href(analysis_id)


# -- alarms (issue 13 item 3) ---------------------------------------------------------------------
def _alarms() -> AlarmStore:
    alarms = _jobs().jobs.alarms
    if alarms is None:
        raise ApiError(404, "alarms are not kept by this app")
    return alarms


def alarm_list() -> Response:
    """Alarms newest first (`limit`, `unacknowledged=1`, `after_id` for the ones newer than those
    seen) and the count still waiting for an operator."""
    limit = _int_arg("limit", 50, 1, MAX_ALARM_PAGE)
    after_id = _int_arg("after_id", 0, 0, 2**62) or None
    unacknowledged = request.args.get("unacknowledged", "").lower() in {"1", "true", "yes"}
    alarms = _alarms()
    items = alarms.recent(limit, unacknowledged=unacknowledged, after_id=after_id)
    for item in items:
        item["links"] = {"page": _page_link(item["analysis_id"])}
    return json_response({"items": items, "count": len(items), "unacknowledged": alarms.unacknowledged_count(),
                          "severities": list(alarms.severities)})


def alarm_acknowledge(alarm_id: str) -> Response:
    """Acknowledge one alarm: JSON `{"by": "<operator>"}`; the alarm with who and when (the first
    acknowledgement stands)."""
    if not alarm_id.isascii() or not alarm_id.isdigit() or len(alarm_id) > 18:
        raise ApiError(400, "alarm id must be a positive integer")
    payload = _json_object()
    try:
        alarm = _alarms().acknowledge(int(alarm_id), recorded_user() or payload.get("by"))
    except AlarmError as exc:
        raise ApiError(400, str(exc)) from None
    if alarm is None:
        raise ApiError(404, f"no alarm with id {alarm_id}")
    return json_response(alarm)


def alarm_acknowledge_all() -> Response:
    """Acknowledge every open alarm up to `up_to_id` (those on the operator's screen): JSON
    `{"by": "<operator>", "up_to_id": N}`; how many were acknowledged."""
    payload = _json_object()
    up_to = payload.get("up_to_id")
    if isinstance(up_to, bool) or not isinstance(up_to, int) or up_to < 1:
        raise ApiError(400, "up_to_id must be the id of the newest alarm acknowledged (a positive integer)")
    try:
        count = _alarms().acknowledge_all(recorded_user() or payload.get("by"), up_to)
    except AlarmError as exc:
        raise ApiError(400, str(exc)) from None
    return json_response({"acknowledged": count, "unacknowledged": _alarms().unacknowledged_count()})
