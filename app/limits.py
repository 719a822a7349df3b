"""Body limits for every route under the app's prefix, Dash's callback endpoint included (issue 12).

`limit_bodies(server, prefix, settings)` puts a small WSGI layer in front of the Flask app, so a
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
"""

from __future__ import annotations

import io
import math
from collections.abc import Callable, Iterable

import orjson
from flask import Flask
from werkzeug.exceptions import HTTPException

from app.settings import Settings

#: room for the multipart framing (boundaries, part headers, the form fields) around the files
MULTIPART_OVERHEAD_BYTES = 256 * 1024
DASH_CALLBACK_PATH = "_dash-update-component"
_READ_BLOCK = 64 * 1024

WSGIApp = Callable[[dict, Callable], Iterable[bytes]]


def body_limit(path: str, content_type: str | None, settings: Settings) -> int:
    """The largest body accepted for `path` (relative to the prefix) with this content type, in bytes."""
    if path == DASH_CALLBACK_PATH:
        # dcc.Upload sends the files as base64 data URLs inside the callback's JSON, beside the page's state
        return math.ceil(settings.max_upload_bytes / 3) * 4 + MULTIPART_OVERHEAD_BYTES + settings.max_body_bytes
    if (content_type or "").split(";", 1)[0].strip().lower() == "multipart/form-data":
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


def limit_bodies(server: Flask, prefix: str, settings: Settings) -> None:
    """Limit the bodies of every request under `prefix` on `server` (see the module's docstring)."""
    server.wsgi_app = BodyLimit(server.wsgi_app, prefix, settings)
