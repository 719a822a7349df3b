"""Cross-site writes, body types, security headers and log lines that requests cannot forge (issue 12, items 5-6)."""

from __future__ import annotations

import base64
import hashlib
import io
import logging
import re
from pathlib import Path

import pytest
from flask import Flask

from app import create_app
from app.logging_setup import (
    LOGGED_TEXT_LIMIT,
    EscapeControlCharacters,
    configure_logging,
    escape_control_characters,
    loggable,
)
from app.security import normalise_origin, parse_origins, security_headers
from app.settings import Settings, SettingsError
from services.analysis import EXTENSION_KEY

ROOT = Path(__file__).resolve().parents[1]
ARTIFACTS = ROOT / "artifacts"
PEERS = {"sender_peer": "prosumer-a", "receiver_peer": "consumer-home"}
EVIL = "https://evil.example"


def _app(tmp_path, prefix: str = "/", server: Flask | None = None, **settings):
    return create_app(server=server, url_base_pathname=prefix,
                      settings=Settings(artifacts_dir=ARTIFACTS, instance_dir=tmp_path / "instance", **settings))


@pytest.fixture
def app(tmp_path):
    return _app(tmp_path)


@pytest.fixture
def client(app):
    return app.server.test_client()


def _rows(app) -> int:
    return app.server.extensions[EXTENSION_KEY].store.count()


def _body(client, prefix: str = "/") -> dict:
    sample = client.get(f"{prefix}api/samples").get_json()["samples"][0]["filename"]
    return {**PEERS, "sample_filename": sample}


def _npy_upload() -> bytes:
    return (ARTIFACTS / "sample_data" / sorted(p.name for p in (ARTIFACTS / "sample_data").glob("*.npy"))[0]).read_bytes()


# -- body types ---------------------------------------------------------------------------------
@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded", None,
                                          "multipart/form-data; boundary=x", "application/jsonx"])
def test_predict_takes_json_only(app, client, content_type):
    import json

    body = json.dumps(_body(client))
    kwargs = {"content_type": content_type} if content_type else {}
    response = client.post("/predict", data=body, **kwargs)
    assert response.status_code == 415
    assert "application/json" in response.get_json()["error"]
    assert _rows(app) == 0
    assert client.post("/predict", json=_body(client)).status_code == 200
    assert _rows(app) == 1


def test_predict_file_takes_multipart_only(app, client):
    response = client.post("/api/predict-file", json=PEERS)
    assert response.status_code == 415 and "multipart/form-data" in response.get_json()["error"]
    response = client.post("/api/predict-file", data=b"sender_peer=prosumer-a",
                           content_type="application/x-www-form-urlencoded")
    assert response.status_code == 415
    assert _rows(app) == 0


def test_dash_callbacks_take_json_only(client):
    response = client.post("/_dash-update-component", data="{}", content_type="text/plain")
    assert response.status_code == 415 and response.is_json and "application/json" in response.get_json()["error"]


# -- origins ------------------------------------------------------------------------------------
@pytest.mark.parametrize("headers", [
    {"Origin": EVIL},
    {"Origin": "null"},
    {"Origin": "http://localhost.evil.example"},
    {"Origin": "http://localhost:8080"},  # same host, another port: another origin
    {"Referer": f"{EVIL}/page"},  # an old browser that sends no Origin
    {"Origin": EVIL, "Referer": "http://localhost/"},  # Origin wins when both are there
])
def test_cross_site_writes_are_refused_and_write_nothing(app, client, headers):
    response = client.post("/predict", json=_body(client), headers=headers)
    assert response.status_code == 403 and "origin" in response.get_json()["error"]
    data = {**PEERS, "file": (io.BytesIO(_npy_upload()), "window.npy")}
    response = client.post("/api/predict-file", data=data, content_type="multipart/form-data", headers=headers)
    assert response.status_code == 403
    response = client.post("/_dash-update-component", json={"output": "x", "inputs": []}, headers=headers)
    assert response.status_code == 403 and response.is_json
    assert _rows(app) == 0


@pytest.mark.parametrize("headers", [
    {},  # scripts and curl send neither
    {"Origin": "http://localhost"},  # the test client's host
    {"Origin": "https://localhost"},  # behind a TLS proxy the app sees http, the browser https
    {"Referer": "http://localhost/analyze"},
    {"Origin": "https://grid.example.org", "X-Forwarded-Host": "grid.example.org"},  # a proxy that rewrites Host
])
def test_same_origin_and_scripts_may_write(app, client, headers):
    response = client.post("/predict", json=_body(client), headers=headers)
    assert response.status_code == 200, response.get_json()
    assert _rows(app) == 1


def test_listed_origins_may_write(tmp_path):
    app = _app(tmp_path, allowed_origins="https://portal.example.com, http://10.0.0.5:8080")
    client = app.server.test_client()
    for origin in ("https://portal.example.com", "https://PORTAL.example.com:443", "http://10.0.0.5:8080"):
        assert client.post("/predict", json=_body(client), headers={"Origin": origin}).status_code == 200
    assert client.post("/predict", json=_body(client), headers={"Origin": "http://portal.example.com"}).status_code == 403
    assert _rows(app) == 3


def test_origin_parsing():
    assert normalise_origin("HTTPS://Portal.Example.com:443/x?y") == "https://portal.example.com"
    assert normalise_origin("http://[::1]:8050") == "http://[::1]:8050"
    assert normalise_origin("null") is None and normalise_origin("javascript:alert(1)") is None
    assert normalise_origin("http://host:99999") is None
    assert parse_origins(" https://a.example ,http://b.example:81/ ") == ["https://a.example", "http://b.example:81"]
    assert parse_origins(None) == []


def test_listed_origins_get_cors_and_others_no_preflight(tmp_path):
    app = _app(tmp_path, allowed_origins="https://portal.example.com")
    client = app.server.test_client()
    preflight = {"Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "content-type"}
    answer = client.options("/predict", headers={"Origin": "https://portal.example.com", **preflight})
    assert answer.status_code == 204 and answer.headers["Access-Control-Allow-Origin"] == "https://portal.example.com"
    assert answer.headers["Access-Control-Allow-Methods"] == "POST"
    assert "Content-Type" in answer.headers["Access-Control-Allow-Headers"]
    refused = client.options("/predict", headers={"Origin": EVIL, **preflight})
    assert refused.status_code == 403 and "Access-Control-Allow-Origin" not in refused.headers
    posted = client.post("/predict", json=_body(client), headers={"Origin": "https://portal.example.com"})
    assert posted.headers["Access-Control-Allow-Origin"] == "https://portal.example.com" and "Origin" in posted.vary
    assert "Access-Control-Allow-Origin" not in client.get("/api/samples", headers={"Origin": EVIL}).headers


def test_other_methods_on_the_api_answer_json_with_the_real_allow_list(client):
    assert client.options("/predict").headers["Allow"] == "POST, OPTIONS"
    assert client.options("/api/health").headers["Allow"] == "GET, HEAD, OPTIONS"
    assert client.options("/api/no-such-route").status_code == 404
    for method, path, allow in (("TRACE", "/predict", "POST"), ("PROPFIND", "/api/health", "GET, HEAD"),
                                ("PUT", "/predict", "POST")):
        response = client.open(path, method=method)
        assert response.status_code == 405 and response.is_json, (method, path)
        assert method in response.get_json()["error"] and response.headers["Allow"] == allow, (method, path)


def test_reads_are_never_refused_for_their_origin(client):
    response = client.get("/api/health", headers={"Origin": EVIL})
    assert response.status_code in (200, 503)  # the model's state, not a 403
    assert client.get("/api/samples", headers={"Origin": EVIL}).status_code == 200


# -- headers ------------------------------------------------------------------------------------
def _policy(response) -> dict[str, str]:
    header = response.headers["Content-Security-Policy"]
    return {part.split()[0]: " ".join(part.split()[1:]) for part in header.split("; ")}


def _inline_script_hashes(html: str) -> set[str]:
    """Hashes of the scripts the page would execute (JSON data blocks and IE comments excluded)."""
    html = re.sub(r"<!--.*?-->", "", html, flags=re.S)
    found = set()
    for attributes, body in re.findall(r"<script([^>]*)>(.*?)</script>", html, flags=re.S):
        if "src=" in attributes or "application/json" in attributes:
            continue
        found.add("'sha256-" + base64.b64encode(hashlib.sha256(body.encode()).digest()).decode() + "'")
    return found


def test_every_answer_carries_the_security_headers(client):
    answers = {
        "page": client.get("/"),
        "unknown page": client.get("/no-such-page"),
        "asset": client.get("/assets/bootstrap.min.css"),
        "layout": client.get("/_dash-layout"),
        "health": client.get("/api/health"),
        "unknown api": client.get("/api/no-such-route"),
        "wrong method": client.get("/predict"),
        "bad body": client.post("/predict", data=b"{", content_type="application/json"),
        "cross-site": client.post("/predict", json=PEERS, headers={"Origin": EVIL}),
    }
    for name, response in answers.items():
        assert response.headers["X-Content-Type-Options"] == "nosniff", name
        assert response.headers["Referrer-Policy"] == "strict-origin-when-cross-origin", name
        assert response.headers["X-Frame-Options"] == "SAMEORIGIN", name
        policy = _policy(response)
        assert policy["frame-ancestors"] == "'self'" and policy["default-src"] == "'self'", name
        assert policy["object-src"] == "'none'" and "unsafe-eval" not in policy["script-src"], name
        assert "Server" not in response.headers or "gunicorn" not in response.headers["Server"]
    for name in ("unknown api", "wrong method", "bad body", "cross-site"):
        assert answers[name].is_json and "error" in answers[name].get_json(), name
    assert (answers["unknown api"].status_code, answers["wrong method"].status_code) == (404, 405)


def test_page_policy_allows_exactly_its_own_inline_scripts(client):
    page = client.get("/")
    scripts = _inline_script_hashes(page.get_data(as_text=True))
    assert scripts, "Dash's page starts its renderer with an inline script"
    allowed = set(_policy(page)["script-src"].split())
    assert scripts <= allowed
    assert allowed - scripts == {"'self'"}  # nothing else: no 'unsafe-inline', no host
    assert "http" not in page.headers["Content-Security-Policy"]  # no CDN anywhere


def test_frame_policy_is_the_portal_owners_to_set(tmp_path):
    app = _app(tmp_path, frame_ancestors="'self' https://portal.example.com")
    response = app.server.test_client().get("/")
    assert _policy(response)["frame-ancestors"] == "'self' https://portal.example.com"
    assert "X-Frame-Options" not in response.headers  # it cannot name the portal: the CSP says it
    assert security_headers((), "'none'")["X-Frame-Options"] == "DENY"
    for bad in ("'self'; script-src *", "x\r\nSet-Cookie: a=b", ""):
        with pytest.raises(SettingsError, match="GEM_FRAME_ANCESTORS"):
            Settings(frame_ancestors=bad)


def test_eval_only_in_debug_mode(tmp_path):
    """Dash's debug mode serves development bundles built with eval; the served app never does."""
    debug = _app(tmp_path / "debug", debug=True).server.test_client().get("/")
    assert "'unsafe-eval'" in _policy(debug)["script-src"]
    served = _app(tmp_path / "served").server.test_client().get("/")
    assert "'unsafe-eval'" not in _policy(served)["script-src"]


def test_embedded_only_our_prefix_gets_our_headers(tmp_path):
    portal = Flask("portal")

    @portal.get("/")
    def home():
        return "<html><script>window.portal = 1</script></html>"

    @portal.post("/form")
    def form():
        return "ok"

    _app(tmp_path, prefix="/grid/", server=portal)
    client = portal.test_client()
    for path in ("/", "/missing"):
        assert "Content-Security-Policy" not in client.get(path).headers, path
    assert client.post("/form", data="a=b", headers={"Origin": EVIL}).status_code == 200  # the portal's business
    for path in ("/grid/", "/grid/api/health", "/grid/api/nothing", "/grid/assets/bootstrap.min.css"):
        assert "Content-Security-Policy" in client.get(path).headers, path
    sample = client.get("/grid/api/samples").get_json()["samples"][0]["filename"]
    assert client.post("/grid/predict", json={**PEERS, "sample_filename": sample},
                       headers={"Origin": EVIL}).status_code == 403
    assert client.post("/grid/predict", json={**PEERS, "sample_filename": sample},
                       headers={"Origin": "http://localhost"}).status_code == 200


def test_model_unavailable_names_no_server_path(tmp_path):
    empty = tmp_path / "no-model"
    (empty / "sample_data").mkdir(parents=True)
    app = create_app(settings=Settings(artifacts_dir=empty, instance_dir=tmp_path / "instance"))
    client = app.server.test_client()
    waveform = [[0.0] * 726] * 3
    response = client.post("/predict", json={**PEERS, "waveform": waveform})
    assert response.status_code == 503
    message = response.get_json()["error"]
    assert "model unavailable" in message and str(tmp_path) not in message and "/" not in message.replace(
        "/api/health", "")
    health = client.get("/api/health").get_data(as_text=True)
    assert str(tmp_path) not in health


# -- log lines ----------------------------------------------------------------------------------
def _log_through_filter(message: str, *args, exc_info=None) -> str:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter("%(levelname)s %(message)s"))
    handler.addFilter(EscapeControlCharacters())
    logger = logging.getLogger("test_security.escaping")
    logger.propagate = False
    logger.addHandler(handler)
    try:
        logger.error(message, *args, exc_info=exc_info)
    finally:
        logger.removeHandler(handler)
    return stream.getvalue()


def test_log_records_cannot_forge_lines():
    forged = "/api/x\r\n2026-01-01 00:00:00 INFO app: admin logged in\x1b[2J\x07\u2028"
    output = _log_through_filter("unexpected error on %s %s", "GET", forged)
    assert output.count("\n") == 1 and output.endswith("\n")
    assert "\r" not in output and "\x1b" not in output and "\x07" not in output and "\u2028" not in output
    assert "\\r\\n2026-01-01" in output and "\\x1b[2J" in output
    assert _log_through_filter(forged).count("\n") == 1  # in the message itself too


def test_tracebacks_keep_their_lines_but_no_line_looks_like_a_record():
    try:
        raise ValueError("bad name\nERROR forged record\x1b[31m")
    except ValueError:
        import sys

        output = _log_through_filter("failed on %s", "x\ny", exc_info=sys.exc_info())
    first, *rest = output.rstrip("\n").split("\n")
    assert first == "ERROR failed on x\\ny"
    assert rest and all(line.startswith("    | ") for line in rest)
    assert "\x1b" not in output and any("ValueError: bad name" in line for line in rest)


def test_loggable_escapes_and_truncates():
    assert loggable("a\nb") == "a\\nb"
    long = loggable("x" * 5000)
    assert len(long) < LOGGED_TEXT_LIMIT + 30 and long.endswith("...[4800 more]")
    assert escape_control_characters("tab\there \\n") == "tab\\there \\n"


def test_python_m_app_logging_escapes(monkeypatch):
    root = logging.getLogger()
    monkeypatch.setattr(root, "handlers", [])
    configure_logging()
    assert root.handlers and all(any(isinstance(f, EscapeControlCharacters) for f in handler.filters)
                                 for handler in root.handlers)


# -- in the browser -----------------------------------------------------------------------------
@pytest.mark.browser
def test_csp001_every_page_renders_under_the_policy(dash_duo, tmp_path):
    """Dash, Plotly, AG Grid and Cytoscape run under the policy: each page renders and the console
    holds no violation (a blocked script or style is logged as a SEVERE 'security' entry)."""
    import requests

    from components import ids

    app = _app(tmp_path)
    client = app.server.test_client()
    analysis_id = client.post("/predict", json=_body(client)).get_json()["analysis_id"]
    dash_duo.start_server(app)
    base = dash_duo.server_url.rstrip("/")
    # each page, and what its components draw: Cytoscape's canvas, AG Grid's rows, Plotly's charts
    pages = {"/": (ids.ANALYZE_PAGE, "main"), "/network": (ids.NETWORK_PAGE, "canvas"),
             "/history": (ids.HISTORY_PAGE, ".ag-row"), "/model": (ids.MODEL_PAGE, "main"),
             f"/analysis/{analysis_id}": (ids.ANALYSIS_PAGE, ".js-plotly-plot .main-svg")}
    for path, (page_id, drawn) in pages.items():
        policy = requests.get(f"{base}{path}", timeout=30).headers["Content-Security-Policy"]
        assert "'unsafe-eval'" not in policy and "script-src 'self' 'sha256-" in policy, path
        dash_duo.driver.get(f"{base}{path}")
        dash_duo.wait_for_element(f"#{page_id}", timeout=30)
        dash_duo.wait_for_element(f"#{page_id} {drawn}" if drawn != "main" else drawn, timeout=30)
    assert dash_duo.get_logs() == []
