"""Limits on what a request may be: body sizes on every route, Dash's callback endpoint included,
and the shape of a callback request (issue 12, items 3 and 4).

`limit_requests(app, settings, prefix)` puts a small WSGI layer in front of the Flask app, so a
request is measured before any view, Dash's included, reads a byte of it:

- a declared `Content-Length` over the route's limit is answered 413 JSON at once, unread
  (a 105 MB body to `/_dash-update-component` costs nothing);
- a body without one (`Transfer-Encoding: chunked`) is read up to the limit plus one byte: over
  it, 413 JSON; within it, the body is handed on with its length set, so the views see an ordinary
  request (Werkzeug would otherwise cut a chunked body at the limit and the view would answer
  "not valid JSON").

The limits (`body_limit`): `GEM_MAX_BODY_BYTES` (1 MB) for JSON and everything else; a multipart
upload gets `GEM_MAX_UPLOAD_BYTES` plus its framing; Dash's callbacks get the upload limit as the
base64 data URL `dcc.Upload` sends, plus the page's other state. Embedded in a portal, only paths
under our prefix are limited: the portal's own routes keep their own rules.

Dash's `/_dash-update-component` trusts its body: a request naming no registered callback, with
inputs that are not the callback's, or a `changedPropIds` naming no input, fails deep inside Dash
with a 500 HTML page (after our callback may already have run). `check_callback_request` compares
the request with the callback's declaration first and answers 400 JSON; an error inside a
callback answers 500 JSON (logged, no traceback) rather than HTML.
"""

from __future__ import annotations

import io
import logging
import math
from collections.abc import Callable, Iterable, Mapping

import dash
import orjson
from dash._utils import split_callback_id, stringify_id
from dash.exceptions import PreventUpdate
from flask import Flask, Response, request
from werkzeug.exceptions import BadRequest, HTTPException

from app.settings import Settings

#: room for the multipart framing (boundaries, part headers, the form fields) around the files
MULTIPART_OVERHEAD_BYTES = 256 * 1024
DASH_CALLBACK_PATH = "_dash-update-component"
#: `POST /api/batches` takes an archive (GEM_MAX_BATCH_BYTES), not one recording
BATCH_PATH = "api/batches"
_READ_BLOCK = 64 * 1024

WSGIApp = Callable[[dict, Callable], Iterable[bytes]]

log = logging.getLogger(__name__)


def body_limit(path: str, content_type: str | None, settings: Settings) -> int:
    """The largest body accepted for `path` (relative to the prefix) with this content type, in bytes."""
    if path == DASH_CALLBACK_PATH:
        # dcc.Upload sends the files as base64 data URLs inside the callback's JSON, beside the page's
        # state. The Batch page's archive obeys the same upload limit: a bigger archive goes through
        # `POST /api/batches` (streamed multipart) or an allowed folder, never a 60 MB JSON body
        return math.ceil(settings.max_upload_bytes / 3) * 4 + MULTIPART_OVERHEAD_BYTES + settings.max_body_bytes
    if (content_type or "").split(";", 1)[0].strip().lower() == "multipart/form-data":
        if path == BATCH_PATH:  # a whole archive of records
            return max(settings.max_upload_bytes, settings.max_batch_bytes) + MULTIPART_OVERHEAD_BYTES
        return settings.max_upload_bytes + MULTIPART_OVERHEAD_BYTES
    return settings.max_body_bytes


def too_large_message(limit: int) -> str:
    return f"request body too large: the limit is {limit // 1024} kB"


def json_answer(start_response: Callable, status: int, message: str) -> list[bytes]:
    """A JSON error answer from outside Flask; the connection closes (the body may be unread)."""
    body = orjson.dumps({"error": message})
    reason = {400: "Bad Request", 408: "Request Timeout", 413: "Content Too Large"}.get(status, "Error")
    start_response(f"{status} {reason}", [("Content-Type", "application/json"), ("Content-Length", str(len(body))),
                                          ("X-Content-Type-Options", "nosniff"), ("Connection", "close")])
    return [body]


class BodyLimit:
    """The WSGI layer of `limit_bodies`: measures each request under `prefix` before the app runs."""

    def __init__(self, app: WSGIApp, prefix: str, settings: Settings) -> None:
        self.app = app
        self.prefix = prefix
        self.settings = settings

    def __call__(self, environ: dict, start_response: Callable) -> Iterable[bytes]:
        path = environ.get("PATH_INFO") or "/"
        if not path.startswith(self.prefix):
            return self.app(environ, start_response)
        limit = body_limit(path[len(self.prefix):], environ.get("CONTENT_TYPE"), self.settings)
        declared = (environ.get("CONTENT_LENGTH") or "").strip()
        chunked = "chunked" in (environ.get("HTTP_TRANSFER_ENCODING") or "").lower()
        if declared and not chunked:
            if not declared.isascii() or not declared.isdigit() or len(declared) > 18:
                return json_answer(start_response, 400, "invalid Content-Length header")
            if int(declared) > limit:
                return json_answer(start_response, 413, too_large_message(limit))
            return self.app(environ, start_response)
        if chunked:
            try:
                body = _read_at_most(environ["wsgi.input"], limit + 1)
            except HTTPException as exc:  # e.g. a read timeout raised by the worker
                return json_answer(start_response, exc.code or 400, exc.description or exc.name)
            except (OSError, ValueError):
                return json_answer(start_response, 400, "the request body could not be read")
            if len(body) > limit:
                return json_answer(start_response, 413, too_large_message(limit))
            environ = _with_body(environ, body)
        return self.app(environ, start_response)


def _read_at_most(stream, size: int) -> bytes:
    """Up to `size` bytes of `stream`, read in blocks (never more than `size` held)."""
    parts, held = [], 0
    while held < size:
        block = stream.read(min(_READ_BLOCK, size - held))
        if not block:
            break
        parts.append(block)
        held += len(block)
    return b"".join(parts)


def _with_body(environ: dict, body: bytes) -> dict:
    """`environ` with a fully read body: an ordinary request of known length."""
    environ = dict(environ)
    environ.pop("HTTP_TRANSFER_ENCODING", None)
    environ["CONTENT_LENGTH"] = str(len(body))
    environ["wsgi.input"] = io.BytesIO(body)
    environ["wsgi.input_terminated"] = True
    return environ


def limit_requests(app: dash.Dash, settings: Settings, prefix: str) -> None:
    """Limit the bodies of every request under `prefix` on `app`'s server and check the shape of its
    callback requests (see the module's docstring)."""
    server: Flask = app.server
    server.wsgi_app = BodyLimit(server.wsgi_app, prefix, settings)
    path = f"{prefix}{DASH_CALLBACK_PATH}"
    endpoint = next((rule.endpoint for rule in server.url_map.iter_rules() if rule.rule == path), None)
    if endpoint is not None:
        server.view_functions[endpoint] = _checked_dispatch(server.view_functions[endpoint], app)


def _checked_dispatch(dispatch: Callable, app: dash.Dash) -> Callable:
    def checked_dispatch(*args, **kwargs):
        try:
            body = request.get_json(force=True)  # parsed once: Flask caches it for Dash's own get_json()
        except BadRequest:
            return _json_response(400, "the callback request is not valid JSON")
        problem = check_callback_request(body, app.callback_map, app.config.requests_pathname_prefix)
        if problem is not None:
            return _json_response(400, f"not a callback request of this page: {problem}")
        output = str(body["output"])[:200].encode("unicode_escape").decode()
        del body
        try:
            return dispatch(*args, **kwargs)
        except (HTTPException, PreventUpdate):
            raise
        except Exception:
            if app.server.debug:  # Dash's debug page shows the traceback to the developer
                raise
            log.exception("callback failed: %s", output)
            return _json_response(500, "internal error")

    checked_dispatch.__name__ = getattr(dispatch, "__name__", "dispatch")
    checked_dispatch.__qualname__ = getattr(dispatch, "__qualname__", "dispatch")
    checked_dispatch.__module__ = getattr(dispatch, "__module__", __name__)
    return checked_dispatch


def _json_response(status: int, message: str) -> Response:
    return Response(orjson.dumps({"error": message}), status=status, mimetype="application/json")


def check_callback_request(body: object, callback_map: Mapping[str, Mapping], prefix: str = "/") -> str | None:
    """What is wrong with a callback request `body` for the callbacks of `callback_map`, or None.

    The request must name a registered callback (`output`), list its outputs, inputs and state
    with the ids and properties the callback declares (pattern-matching ones as lists of items of
    that property), and `changedPropIds` must name some of those inputs."""
    if not isinstance(body, dict):
        return "the body must be a JSON object"
    output = body.get("output")
    if not isinstance(output, str) or "callback" not in callback_map.get(output, {}):
        return "output names no server callback"
    callback = callback_map[output]
    declared_outputs = split_callback_id(output)
    outputs = body.get("outputs")
    if isinstance(declared_outputs, list):
        if not isinstance(outputs, list) or len(outputs) != len(declared_outputs):
            return f"outputs must list the callback's {len(declared_outputs)} outputs"
        if not all(_matches(declared, given) for declared, given in zip(declared_outputs, outputs, strict=True)):
            return "outputs name outputs the callback does not have"
    elif not _matches(declared_outputs, outputs):
        return "outputs name outputs the callback does not have"
    given_ids: set[str] = set()
    for group in ("inputs", "state"):
        declared_items = callback.get(group) or []
        given_items = body.get(group, [])
        if not isinstance(given_items, list) or len(given_items) != len(declared_items):
            return f"{group} must list the callback's {len(declared_items)} {group}"
        for declared, given in zip(declared_items, given_items, strict=True):
            if not _matches(declared, given):
                return f"{group} do not match {str(declared['id'])[:80]}.{declared['property']}"
            for item in given if isinstance(given, list) else [given]:
                prop_id = f"{stringify_id(item['id'])}.{item['property']}"
                given_ids.add(prop_id)
                if prop_id in _DASH_VALUES and not _DASH_VALUES[prop_id](item.get("value"), prefix):
                    return f"{prop_id} is not a path or query string of this app"
    changed = body.get("changedPropIds", [])
    if not isinstance(changed, list) or not all(isinstance(prop, str) and prop in given_ids for prop in changed):
        return "changedPropIds must name inputs of the callback"
    return None


#: values Dash's own callbacks read without checking (the pages router), as the renderer sends them
_DASH_VALUES: dict[str, Callable[[object, str], bool]] = {
    "_pages_location.pathname": lambda value, prefix: isinstance(value, str) and value.startswith(prefix),
    "_pages_location.search": lambda value, prefix: value is None or isinstance(value, str),
}


def _matches(declared: Mapping, given: object) -> bool:
    """True when `given` is the item (or, for a pattern-matching id, the items) of `declared`."""
    declared_id, prop = declared["id"], declared["property"]
    if isinstance(declared_id, str) and declared_id.startswith("{"):  # pattern-matching: {"type": ..., ALL}
        items = given if isinstance(given, list) else [given]
        return all(isinstance(item, dict) and isinstance(item.get("id"), dict) and item.get("property") == prop
                   for item in items)
    return isinstance(given, dict) and given.get("id") == declared_id and given.get("property") == prop
