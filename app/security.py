"""Cross-site protection and security headers for the dashboard and the API (issue 12, item 6).

`install_security(app, settings, prefix)` adds to the app's Flask server:

- a check before every state-changing request under our prefix (`POST /predict`,
  `POST /api/predict-file`, Dash's `_dash-update-component`, whose callbacks write history rows):
  a browser's foreign `Origin` (or, without one, a foreign `Referer`) is refused with 403 JSON
  unless listed in `GEM_ALLOWED_ORIGINS`; requests without either (scripts, curl) and same-origin
  requests pass. Then the body's type: `/predict` and the callbacks take `application/json` only,
  the file route `multipart/form-data` only (415 JSON otherwise). Together they close the
  "simple request" hole: a cross-site page can POST `text/plain` or a form without preflight, and
  SameSite cookies do not help because the API has no cookie at all.
- headers on every answer of ours: `X-Content-Type-Options: nosniff`, a Content-Security-Policy
  (`CSP` below; its frame-ancestors from `GEM_FRAME_ANCESTORS`), `Referrer-Policy`, and
  `X-Frame-Options` when the frame policy can say the same. Embedded in a portal, the portal's own
  routes keep their own headers: only answers of our endpoints, or unmatched paths under our
  prefix, get ours.
- JSON for a read timeout (408, app/gunicorn_workers.py raises it while a slow client sends its body)
  under our prefix, instead of Flask's HTML page.

The policy is the smallest Dash and its components run under, with nothing from elsewhere:
scripts only from our origin plus the hashes of Dash's own inline scripts (the renderer start and
the clientside callbacks, `Dash.csp_hashes()`), no eval; styles from our origin plus inline
styles (Plotly, AG Grid and Cytoscape inject `<style>` elements at run time: without
'unsafe-inline' the pages log about 180 violations); images from our origin and `data:` URLs
(Cytoscape draws with them; without, the Network page logs violations) and `blob:` (Plotly's
"download as PNG" renders through one); fonts and fetches from our origin only; no plugins; forms
and `<base>` to our origin only. Measured by tests/test_security.py::test_csp001 (no console
entry on any page) with each source removed in turn.
"""

from __future__ import annotations

from collections.abc import Iterable
from urllib.parse import urlsplit

import dash
import orjson
from flask import Flask, Response, request
from werkzeug.exceptions import HTTPException, RequestTimeout

from app.settings import Settings

#: methods that may change state; the others are never checked
UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
REFERRER_POLICY = "strict-origin-when-cross-origin"
JSON_TYPE = "application/json"
MULTIPART_TYPE = "multipart/form-data"


def install_security(app: dash.Dash, settings: Settings, prefix: str) -> None:
    """Guard `app`'s state-changing routes and put the security headers on its answers.

    The policy of an HTML page lists the hashes of the inline scripts Dash wrote into it (the
    renderer's start, the clientside callbacks); other answers run no script and list none."""
    server: Flask = app.server
    # the API blueprint of this app: the one that serves <prefix>predict
    api_blueprint = next(rule.endpoint.rsplit(".", 1)[0] for rule in server.url_map.iter_rules()
                         if rule.rule == f"{prefix}predict" and rule.endpoint.endswith(".predict"))
    allowed_origins = frozenset(parse_origins(settings.allowed_origins))
    # debug mode (GEM_DEBUG, development only) serves Dash's development bundles, some built with eval
    allow_eval = settings.debug
    other_headers = security_headers((), settings.frame_ancestors, allow_eval)
    callback_endpoint = f"{prefix}_dash-update-component"
    body_types = {
        f"{api_blueprint}.predict": (JSON_TYPE, "send the request as application/json"),
        f"{api_blueprint}.predict_file": (MULTIPART_TYPE, "send the recording as multipart/form-data"),
        callback_endpoint: (JSON_TYPE, "Dash callbacks take application/json"),
    }

    def is_ours() -> bool:
        endpoint = request.endpoint
        if endpoint is None:
            return request.path.startswith(prefix)
        blueprint = request.blueprint
        return endpoint.startswith(prefix) or blueprint == api_blueprint or (
            blueprint is not None and blueprint.startswith(f"{prefix.replace('/', '_')}dash_assets"))

    def is_api() -> bool:
        return request.path == f"{prefix}predict" or request.path.startswith(f"{prefix}api/")

    def guard_writes() -> Response | None:
        if not is_ours():
            return None
        if is_api() and request.method == "OPTIONS":
            return _options_answer(server, request.headers, allowed_origins)
        if is_api() and isinstance(request.routing_exception, HTTPException):  # e.g. TRACE: 405
            return _routing_error(server, request.routing_exception)
        if request.method not in UNSAFE_METHODS:
            return None
        if not same_or_allowed_origin(request.headers, allowed_origins):
            return _json_error(403, "cross-site request refused: this origin is not allowed "
                                    "(GEM_ALLOWED_ORIGINS lists the origins that may post here)")
        expected = body_types.get(request.endpoint or "")
        if expected is not None and request.mimetype != expected[0]:
            return _json_error(415, f"unsupported content type: {expected[1]}")
        return None

    def add_headers(response: Response) -> Response:
        if not is_ours():
            return response
        headers = other_headers
        if response.mimetype == "text/html":
            # the page's inline scripts as Dash wrote them: it adds clientside callbacks declared
            # with dash.clientside_callback to whichever app renders first, so ask after rendering
            headers = security_headers(app.csp_hashes(), settings.frame_ancestors, allow_eval)
        for name, value in headers.items():
            response.headers.setdefault(name, value)
        origin = normalise_origin(request.headers.get("Origin", ""))
        if origin in allowed_origins and is_api():  # a listed portal's page may read the answer
            response.headers["Access-Control-Allow-Origin"] = origin
            response.vary.add("Origin")
        return response

    def read_timeout(exc: RequestTimeout) -> Response:
        if not request.path.startswith(prefix):
            return exc  # the portal's own page for its own routes
        return _json_error(408, "the request body arrived too slowly; send it again")

    server.before_request_funcs.setdefault(None, []).insert(0, guard_writes)
    server.after_request(add_headers)
    server.register_error_handler(RequestTimeout, read_timeout)


def served_methods(server: Flask) -> list[str]:
    """GET and/or POST, as far as the request's path really serves them (the API's JSON catch-all
    routes left out)."""
    adapter = server.url_map.bind_to_environ(request.environ)
    served = []
    for method in ("GET", "POST"):
        try:
            endpoint, _ = adapter.match(method=method)
        except HTTPException:
            continue
        if not endpoint.endswith((".api_unknown", ".predict_other_methods")):
            served.append(method)
    return served


def _allowed_methods(server: Flask) -> list[str]:
    """The methods the request's path serves, HEAD with GET (an OPTIONS answer's Allow)."""
    return [name for method in served_methods(server) for name in (("GET", "HEAD") if method == "GET" else (method,))]


def _options_answer(server: Flask, headers, allowed_origins: frozenset[str]) -> Response:
    """OPTIONS on the API: the real Allow list; a CORS preflight succeeds only for a listed origin."""
    methods = _allowed_methods(server)
    if not methods:
        return _json_error(404, "no such API route; see the README's JSON API section")
    if headers.get("Origin") is not None and headers.get("Access-Control-Request-Method") is not None:
        origin = normalise_origin(headers["Origin"])
        if origin not in allowed_origins:
            return _json_error(403, "cross-site request refused: this origin is not allowed "
                                    "(GEM_ALLOWED_ORIGINS lists the origins that may post here)")
        response = Response(status=204, mimetype=JSON_TYPE)
        response.headers.update({
            "Access-Control-Allow-Origin": origin,
            "Access-Control-Allow-Methods": ", ".join(methods),
            "Access-Control-Allow-Headers": "Content-Type, Idempotency-Key",
            "Access-Control-Max-Age": "600",
        })
        response.vary.add("Origin")
    else:
        response = Response(status=204, mimetype=JSON_TYPE)
    response.headers["Allow"] = ", ".join([*methods, "OPTIONS"])
    return response


def _routing_error(server: Flask, exc: HTTPException) -> Response:
    """A routing error on the API (a method no route knows) as JSON, with the real Allow list."""
    if exc.code == 405:
        methods = _allowed_methods(server)
        usable = [method for method in methods if method != "HEAD"]
        response = _json_error(405, f"method {request.method[:20]} is not allowed here; use {' or '.join(usable)}")
        response.headers["Allow"] = ", ".join(methods)
        return response
    return _json_error(exc.code or 400, exc.description or exc.name)


def security_headers(script_hashes: Iterable[str], frame_ancestors: str, allow_eval: bool = False) -> dict[str, str]:
    """The headers every answer of ours carries (`allow_eval` only for Dash's debug mode)."""
    policy = {
        "default-src": "'self'",
        "script-src": " ".join(["'self'", *script_hashes, *(["'unsafe-eval'"] if allow_eval else [])]),
        "style-src": "'self' 'unsafe-inline'",
        "img-src": "'self' data: blob:",
        "font-src": "'self'",
        "connect-src": "'self'",
        "object-src": "'none'",
        "base-uri": "'self'",
        "form-action": "'self'",
        "frame-ancestors": frame_ancestors,
    }
    headers = {
        "Content-Security-Policy": "; ".join(f"{name} {value}" for name, value in policy.items()),
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": REFERRER_POLICY,
    }
    legacy_frame_option = {"'self'": "SAMEORIGIN", "'none'": "DENY"}.get(frame_ancestors.strip())
    if legacy_frame_option:  # older browsers; it cannot name other origins, so only then
        headers["X-Frame-Options"] = legacy_frame_option
    return headers


def parse_origins(text: str | None) -> list[str]:
    """`GEM_ALLOWED_ORIGINS` ('https://portal.example.com, http://10.0.0.5:8080') as normalised origins."""
    origins = []
    for item in (text or "").replace(" ", ",").split(","):
        if item.strip():
            origins.append(normalise_origin(item.strip()) or item.strip().lower())
    return origins


def normalise_origin(url: str) -> str | None:
    """'HTTPS://Portal.example.com:443/x' -> 'https://portal.example.com'; None if not an http(s) URL."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return None
    default_port = 443 if parts.scheme == "https" else 80
    host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
    return f"{parts.scheme}://{host}" + (f":{port}" if port not in (None, default_port) else "")


def same_or_allowed_origin(headers, allowed: frozenset[str]) -> bool:
    """Whether a request may change state: no Origin/Referer (not a browser's cross-site request),
    the same host as the request (Host, or X-Forwarded-Host behind a proxy), or an allowed origin.

    The host is compared without the scheme: a TLS-terminating proxy turns https into http, and a
    page of the same host and port is ours whatever its scheme."""
    claimed = headers.get("Origin")
    if claimed is None:
        claimed = headers.get("Referer")
        if claimed is None:
            return True
    origin = normalise_origin(claimed.strip())
    if origin is None:  # "null" (sandboxed frames, file: pages) or garbage
        return claimed.strip().lower() in allowed
    if origin in allowed:
        return True
    origin_host = _host_port(origin)
    served_as = [headers.get("Host", "")] + [host.strip() for host in headers.get("X-Forwarded-Host", "").split(",")]
    return any(origin_host == _host_port(f"{urlsplit(origin).scheme}://{host}") for host in served_as if host)


def _host_port(url: str) -> str | None:
    """'http://Host:80' -> 'host:80', with the scheme's default port filled in."""
    try:
        parts = urlsplit(url)
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        return None
    return f"{(parts.hostname or '').lower()}:{port}"


def _json_error(status: int, message: str) -> Response:
    return Response(orjson.dumps({"error": message}), status=status, mimetype="application/json")
