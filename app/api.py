"""The JSON API: the original `POST /predict` (docs/contracts.md, "JSON API") plus samples, history, health.

Every answer is JSON; every error is `{"error": "<reason>"}` with a 4xx/5xx status and never a
traceback. Bodies over the configured limit (1 MB) are refused with 413 before they are read.
The views are thin: validation of the request's shape here, the analysis in services.analysis.
"""

from __future__ import annotations

import hashlib
import logging
import math
import re
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import orjson
from flask import Blueprint, Response, current_app, request, stream_with_context
from sqlalchemy.exc import SQLAlchemyError
from werkzeug.exceptions import HTTPException, RequestEntityTooLarge

from app.auth import recorded_user
from app.logging_setup import loggable
from app.security import served_methods
from services.analysis import (
    EXTENSION_KEY,
    AnalysisContext,
    AnalysisError,
    analyze,
    api_view,
    check_peers,
    check_transfer_kw,
    list_samples,
    load_sample,
)
from services.analytics.cache import analytics_for
from services.comtrade_ingest import parse_channel_spec
from services.history import ColumnFilter, HistoryQueryError, HistoryUnavailable, filters_from_ag_grid
from services.history.filters import check_text
from services.inference.connections import check_relay_connection
from services.ingest import MAX_UPLOAD_FILES, parse_uploaded_files
from services.units import convert
from services.waveform import WaveformError, waveform_from_json

log = logging.getLogger(__name__)

MAX_HISTORY_PAGE = 1000
DEFAULT_HISTORY_PAGE = 50
#: room for the multipart framing around the files of `POST /api/predict-file`
MULTIPART_OVERHEAD_BYTES = 256 * 1024
FILE_FIELD = "file"
#: the longest number a form field may hold (a 5,000-digit "number" is not a rating)
MAX_NUMBER_CHARS = 64
#: the retry-safety header of `/predict` and `/api/predict-file`, and what a key may look like
IDEMPOTENCY_HEADER = "Idempotency-Key"
IDEMPOTENCY_KEY_PATTERN = re.compile(r"[A-Za-z0-9_.:~+/=-]{1,128}")


class ApiError(Exception):
    """An error answer with a status code and a message for the client."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def json_response(payload: Any, status: int = 200) -> Response:
    body = orjson.dumps(payload, option=orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_NON_STR_KEYS)
    return Response(body, status=status, mimetype="application/json")


def error_response(status: int, message: str) -> Response:
    return json_response({"error": message}, status)


def _context() -> AnalysisContext:
    return current_app.extensions[EXTENSION_KEY]


def build_api_blueprint(prefix: str = "/") -> Blueprint:
    """A fresh blueprint per app (its name carries the prefix, so one portal can mount several)."""
    suffix = re.sub(r"[^A-Za-z0-9]+", "_", prefix).strip("_")
    blueprint = Blueprint(f"grid_event_monitor_api{'_' + suffix if suffix else ''}", __name__)
    blueprint.before_request(_limit_body)
    blueprint.add_url_rule("/predict", "predict", predict, methods=["POST"])
    blueprint.add_url_rule("/api/predict-file", "predict_file", predict_file, methods=["POST"])
    blueprint.add_url_rule("/api/samples", "samples", samples, methods=["GET"])
    blueprint.add_url_rule("/api/history", "history", history, methods=["GET"])
    blueprint.add_url_rule("/api/history.csv", "history_csv", history_csv, methods=["GET"])
    blueprint.add_url_rule("/api/history/<analysis_id>", "history_item", history_item, methods=["GET"])
    blueprint.add_url_rule("/api/health", "health", health, methods=["GET"])
    from app import api_records  # live records, jobs and alarms; they build on this module's helpers

    blueprint.add_url_rule("/api/records", "post_record", api_records.post_record, methods=["POST"])
    blueprint.add_url_rule("/api/jobs", "job_list", api_records.job_list, methods=["GET"])
    blueprint.add_url_rule("/api/jobs/<job_id>", "job_status", api_records.job_status, methods=["GET"])
    from app import api_batches  # batch analysis (issue 13 item 5)

    blueprint.add_url_rule("/api/batches", "post_batch", api_batches.post_batch, methods=["POST"])
    blueprint.add_url_rule("/api/batches/<batch_id>.csv", "batch_csv", api_batches.batch_csv, methods=["GET"])
    blueprint.add_url_rule("/api/batches/<batch_id>", "batch_status", api_batches.batch_status, methods=["GET"])
    blueprint.add_url_rule("/api/alarms", "alarm_list", api_records.alarm_list, methods=["GET"])
    blueprint.add_url_rule("/api/alarms/ack", "alarm_acknowledge_all", api_records.alarm_acknowledge_all,
                           methods=["POST"])
    blueprint.add_url_rule("/api/alarms/<alarm_id>/ack", "alarm_acknowledge", api_records.alarm_acknowledge,
                           methods=["POST"])
    # every other method or /api/ path answers JSON too (not the dashboard's HTML page)
    blueprint.add_url_rule("/predict", "predict_other_methods", _no_such_route, methods=_OTHER_METHODS)
    blueprint.add_url_rule("/api/<path:rest>", "api_unknown", _no_such_route, methods=_ALL_METHODS)
    blueprint.after_request(_no_sniffing)
    blueprint.register_error_handler(ApiError, lambda exc: error_response(exc.status, exc.message))
    blueprint.register_error_handler(AnalysisError, lambda exc: error_response(exc.status_code, str(exc)))
    blueprint.register_error_handler(HistoryQueryError, lambda exc: error_response(400, str(exc)))
    blueprint.register_error_handler(HistoryUnavailable, _history_unavailable)
    blueprint.register_error_handler(HTTPException, _http_error)
    blueprint.register_error_handler(Exception, _unexpected_error)
    return blueprint


_ALL_METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]
_OTHER_METHODS = [method for method in _ALL_METHODS if method != "POST"]


def _no_such_route(rest: str | None = None) -> Response:
    """JSON 405 (with Allow) when the path exists for other methods, else JSON 404."""
    allowed = served_methods(current_app)
    if allowed:
        response = error_response(405, f"method {request.method} is not allowed here; use {' or '.join(allowed)}")
        response.headers["Allow"] = ", ".join(allowed)
        return response
    return error_response(404, "no such API route; see the README's JSON API section")


def _no_sniffing(response: Response) -> Response:
    """Browsers must not guess another type for our JSON and CSV answers."""
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    return response


def _limit_body() -> None:
    """Apply the body limit to our routes only, so an embedding portal keeps its own."""
    limit = _body_limit()
    request.max_content_length = limit
    if request.content_length is not None and request.content_length > limit:
        raise RequestEntityTooLarge()


def _body_limit() -> int:
    """The JSON body limit (`Settings.max_body_bytes`), or the upload limit on the file route."""
    settings = current_app.config["GEM_SETTINGS"]
    if (request.endpoint or "").endswith(".post_batch"):  # an archive of records (issue 13 item 5)
        return max(settings.max_upload_bytes, settings.max_batch_bytes) + MULTIPART_OVERHEAD_BYTES
    if (request.endpoint or "").endswith((".predict_file", ".post_record")):
        return settings.max_upload_bytes + MULTIPART_OVERHEAD_BYTES
    return settings.max_body_bytes


def _http_error(exc: HTTPException) -> Response:
    status = exc.code or 500
    if isinstance(exc, RequestEntityTooLarge):
        return error_response(413, f"request body too large: the limit is {_body_limit() // 1024} kB")
    return error_response(status, exc.description or exc.name)


def _history_unavailable(exc: HistoryUnavailable) -> Response:
    """503 with the store's reason (written for people: no paths, no internals)."""
    return error_response(503, f"history unavailable: {exc}")


def _unexpected_error(exc: Exception) -> Response:
    # the store turns database failures into HistoryUnavailable; one that slips through is a 503
    # too, answered at once (asking the database again could wait another deadline)
    if isinstance(exc, SQLAlchemyError):
        log.error("history database unavailable on %s %s: %s", loggable(request.method), loggable(request.path),
                  type(exc).__name__)
        return error_response(503, "history unavailable: the history database failed; try again later")
    log.exception("unexpected error on %s %s", loggable(request.method), loggable(request.path))
    return error_response(500, "internal error")


def _json_object(text: bytes | str | None = None, what: str = "request body") -> dict[str, Any]:
    """`text` (the request body by default) read as a JSON object, or a 400 naming `what`."""
    body = request.get_data(cache=False) if text is None else text
    if not body:
        raise ApiError(400, f"{what} must be a JSON object")
    try:
        payload = orjson.loads(body)
    except orjson.JSONDecodeError:
        raise ApiError(400, f"{what} is not valid JSON") from None
    if not isinstance(payload, dict):
        raise ApiError(400, f"{what} must be a JSON object")
    return payload


def _idempotency(request_digest: Callable[[], str]) -> dict[str, str | None]:
    """`analyze`'s idempotency arguments: the Idempotency-Key header (checked) and the digest of
    this request (computed only when a key is given)."""
    key = request.headers.get(IDEMPOTENCY_HEADER)
    if key is None:
        return {"idempotency_key": None, "request_digest": None}
    if not IDEMPOTENCY_KEY_PATTERN.fullmatch(key):
        raise ApiError(400, f"{IDEMPOTENCY_HEADER} must be 1 to 128 letters, digits or _ . : ~ + / = - "
                            "(a UUID is a good key)")
    return {"idempotency_key": key, "request_digest": request_digest()}


def _json_digest(route: str, payload: Mapping[str, Any]) -> str:
    """The digest of a JSON request: its content, whatever the key order or spacing."""
    body = orjson.dumps(payload, option=orjson.OPT_SORT_KEYS | orjson.OPT_SERIALIZE_NUMPY)
    return hashlib.sha256(route.encode() + b"\0" + body).hexdigest()


def _form_digest(route: str, fields: Mapping[str, Any], files: list[tuple[str, bytes]]) -> str:
    """The digest of a multipart request: its fields and files (not the random boundary)."""
    digest = hashlib.sha256(route.encode() + b"\0")
    for name in sorted(fields):
        digest.update(orjson.dumps([name, fields.getlist(name) if hasattr(fields, "getlist") else fields[name]]))
    for name, content in files:
        digest.update(orjson.dumps([name, hashlib.sha256(content).hexdigest()]))
    return digest.hexdigest()


def _required_string(payload: Mapping[str, Any], name: str) -> str:
    value = payload.get(name)
    if value is None:
        raise ApiError(400, f"missing field {name}")
    if not isinstance(value, str):
        raise ApiError(400, f"{name} must be a string")
    return value


# -- views --------------------------------------------------------------------------------------
def predict() -> Response:
    """Classify a sample (`sample_filename`) or a raw `waveform` and assess the P2P impact.

    A raw waveform may come in amperes, kA or per unit: `unit` ("window" by default, "A", "kA",
    "pu") and `rated_current_a` (the recorded unit's rating) say how to bring it to window units.
    `relay_connection` (optional) states how the relay compares the currents
    (services.inference.connections.RELAY_CONNECTIONS)."""
    payload = _json_object()
    context = _context()
    idempotency = _idempotency(lambda: _json_digest("predict", payload))
    sender = _required_string(payload, "sender_peer")
    receiver = _required_string(payload, "receiver_peer")
    check_peers(sender, receiver)
    transfer_kw = check_transfer_kw(payload.get("transfer_kw"))
    sample_name = payload.get("sample_filename")
    waveform = payload.get("waveform")
    unit, rated_current_a = payload.get("unit"), payload.get("rated_current_a")
    if sample_name is not None and waveform is not None:
        raise ApiError(400, "give either sample_filename or waveform, not both")
    if sample_name is None and waveform is None:
        raise ApiError(400, "missing field sample_filename (or a raw waveform of 3 x 726 numbers)")
    units = None
    if sample_name is not None:
        if unit is not None or rated_current_a is not None:
            raise ApiError(400, "unit and rated_current_a apply to a raw waveform; samples are in window units")
        x, entry = load_sample(sample_name, context.artifacts_dir)
        source, name, true_label = "sample", entry.name, entry.true_label
    else:
        try:
            checked = waveform_from_json(waveform)  # numbers only: no strings, booleans or nulls
        except WaveformError as exc:
            raise ApiError(400, str(exc)) from None
        x, source, name, true_label = checked, "api", None, None
        if unit is not None or rated_current_a is not None:
            x, units = _to_window_units(checked, unit, rated_current_a)
    predictor = _predictor(context)
    analysis = analyze(x, source=source, sender=sender, receiver=receiver, transfer_kw=transfer_kw,
                       sample_name=name, true_label=true_label, units=units, predictor=predictor,
                       store=context.store, grid=context.grid, relay_connection=payload.get("relay_connection"),
                       **idempotency)
    return json_response(api_view(analysis))


def _to_window_units(waveform: Any, unit: Any, rated_current_a: Any) -> tuple[Any, dict[str, Any]]:
    """A checked waveform in `unit` (of a unit rated `rated_current_a` A) in window units, or a 400."""
    try:
        converted, conversion = convert(waveform, unit, rated_current_a)
    except WaveformError as exc:
        raise ApiError(400, str(exc)) from None
    return converted, conversion.to_dict()


def predict_file() -> Response:
    """Classify an uploaded recording: multipart field `file` holds a `.npy`/CSV window or a
    COMTRADE record (`.cfg` and `.dat`, or one `.cff`); form fields `sender_peer`,
    `receiver_peer`, optional `transfer_kw`, `channels` (COMTRADE channel names or numbers), `unit`
    and `rated_current_a` (how a window's values convert to window units), `relay_connection`
    (how the relay compares the currents, when known). Answers like
    `/predict`; `recording` says which channels and window of a record were read, `units` which
    conversion was applied."""
    sender, receiver, transfer_kw, files = read_record_form("recording")
    form = request.form
    idempotency = _idempotency(lambda: _form_digest("predict-file", form, files))
    try:
        loaded = parse_uploaded_files(files, channels=parse_channel_spec(form.get("channels")),
                                      unit=form.get("unit") or None,
                                      rated_current_a=form.get("rated_current_a") or None,
                                      max_bytes=_context().settings.max_upload_bytes)
    except WaveformError as exc:
        raise ApiError(400, str(exc)) from None
    context = _context()
    analysis = analyze(
        loaded.waveform,
        source="upload",
        sender=sender,
        receiver=receiver,
        transfer_kw=transfer_kw,
        sample_name=loaded.name,
        recording=loaded.comtrade.to_dict() if loaded.comtrade is not None else None,
        units=loaded.units.to_dict() if loaded.units is not None else None,
        predictor=_predictor(context),
        store=context.store,
        grid=context.grid,
        relay_connection=form.get("relay_connection"),
        **idempotency,
    )
    return json_response(api_view(analysis))


def read_record_form(what: str) -> tuple[str, str, float, list[tuple[str, bytes]]]:
    """(sender, receiver, transfer_kw, files) of a multipart recording form (`/api/predict-file`,
    `/api/records`), checked; `what` names the upload in the errors."""
    if request.mimetype != "multipart/form-data":
        raise ApiError(415, f"send the {what} as multipart/form-data: field '{FILE_FIELD}' (the file or "
                            "files) plus sender_peer and receiver_peer")
    form = request.form
    sender = _required_string(form, "sender_peer")
    receiver = _required_string(form, "receiver_peer")
    check_peers(sender, receiver)
    transfer_kw = check_transfer_kw(_form_number(form.get("transfer_kw"), "transfer_kw"))
    uploads = request.files.getlist(FILE_FIELD)
    if not uploads:
        raise ApiError(400, f"missing field {FILE_FIELD}: a .npy or CSV window, or a COMTRADE .cfg with its "
                            ".dat (or one .cff)")
    if len(uploads) > MAX_UPLOAD_FILES:
        raise ApiError(400, f"{len(uploads)} files at once; send one {what}: a .npy or CSV file, or a COMTRADE "
                            ".cfg with its .dat (or one .cff)")
    return sender, receiver, transfer_kw, [(upload.filename or "upload", upload.read()) for upload in uploads]


def form_relay_connection(form: Mapping[str, Any]) -> str | None:
    """The form's `relay_connection` (services.inference.connections), None when not stated; 400 otherwise."""
    try:
        return check_relay_connection(form.get("relay_connection"))
    except ValueError as exc:
        raise ApiError(400, str(exc)) from None


def _form_number(value: str | None, name: str) -> float | None:
    """A finite number sent as a form field (text), or None when absent or blank."""
    if value is None or not value.strip():
        return None
    if len(value) > MAX_NUMBER_CHARS:
        raise ApiError(400, f"{name} must be a number of at most {MAX_NUMBER_CHARS} characters")
    try:
        number = float(value)
    except ValueError:
        raise ApiError(400, f"{name} must be a number") from None
    if not math.isfinite(number):
        raise ApiError(400, f"{name} must be a finite number")
    return number


def _predictor(context: AnalysisContext):
    from services.inference import ModelUnavailable

    try:
        return context.predictor()
    except ModelUnavailable as exc:
        log.error("model unavailable: %s", exc)  # the full reason, server paths included, for the operator only
        raise ApiError(503, "model unavailable: the model artifacts (GEM_ARTIFACTS_DIR) cannot be loaded; "
                            "/api/health and the server log say why") from None


def samples() -> Response:
    items = list_samples(_context().artifacts_dir)
    return json_response({"samples": items, "count": len(items)})


def _int_arg(name: str, default: int, low: int, high: int) -> int:
    raw = request.args.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ApiError(400, f"{name} must be an integer") from None
    if not low <= value <= high:
        raise ApiError(400, f"{name} must be between {low} and {high}")
    return value


def _history_filters() -> dict[str, Any]:
    """The history filters of the query string: simple ones (label, category, peer, since, until,
    source) and `filter`, the History grid's AG Grid filter model as JSON (what the grid shows)."""
    filters = {name: request.args.get(name) or None for name in ("label", "category", "peer", "since", "until",
                                                                 "source")}
    for name, value in filters.items():
        if value is not None:
            check_text(value, name)  # NUL characters and megabyte values are a 400, not a database error
    grid_model = request.args.get("filter")
    if grid_model:
        filters["filters"] = filters_from_ag_grid(_json_object(grid_model, "filter (the grid's filter model)"))
    # who asked (issue 14): `user=NAME`, or `mine=1` for the caller's own analyses
    user = request.args.get("user") or None
    if request.args.get("mine", "").lower() in {"1", "true", "yes"}:
        user = recorded_user() or ""
    if user is not None:
        check_text(user, "user")
        filters["filters"] = [*filters.get("filters", []),
                              ColumnFilter("user", "equals", user) if user else ColumnFilter("user", "blank")]
    return filters


def history() -> Response:
    """A page of past analyses, newest first; filters label, category, peer, since, until, source."""
    limit = _int_arg("limit", DEFAULT_HISTORY_PAGE, 1, MAX_HISTORY_PAGE)
    offset = _int_arg("offset", 0, 0, 2**62)
    rows, total = _context().store.query(
        limit=limit, offset=offset, sort=request.args.get("sort") or None, **_history_filters()
    )
    return json_response({"items": rows, "total": total, "limit": limit, "offset": offset})


def history_item(analysis_id: str) -> Response:
    if not (analysis_id.isascii() and analysis_id.isdigit()) or len(analysis_id) > 18:  # '¹'.isdigit() too
        raise ApiError(400, "analysis id must be a positive integer")
    item = _context().store.get(int(analysis_id))
    if item is None:
        raise ApiError(404, f"no analysis with id {analysis_id}")
    # signal analytics (issue 15): derived on demand through a per-process LRU, never stored
    item["analytics"] = analytics_for(item["waveform"], item.get("id")) if item.get("waveform") else None
    return json_response(item)


def history_csv() -> Response:
    """The filtered history as CSV, streamed in batches (newest first)."""
    chunks: Iterator[str] = _context().store.iter_csv(**_history_filters())
    header = next(chunks)  # validates the filters while an error can still be a 400
    body = stream_with_context(_prepend(header, chunks))
    response = Response(body, mimetype="text/csv")
    response.headers["Content-Disposition"] = "attachment; filename=grid-event-history.csv"
    return response


def _prepend(first: str, rest: Iterator[str]) -> Iterator[str]:
    yield first
    yield from rest


def health() -> Response:
    """200 when the model answers and the database is reachable, else 503 with the reasons."""
    context = _context()
    status = context.model_status()
    database_problem = context.store.check()
    database_ok = database_problem is None
    healthy = status.loaded and database_ok
    model = status.to_dict()
    model.pop("artifacts_dir", None)
    payload = {
        "status": "ok" if healthy else "unavailable",
        "model": model,
        "database": {
            "reachable": database_ok,
            "backend": context.store.backend,
            "message": "database reachable" if database_ok else f"history unavailable: {database_problem}",
        },
        "samples": len(list_samples(context.artifacts_dir)),
    }
    return json_response(payload, 200 if healthy else 503)
