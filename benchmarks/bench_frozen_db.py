"""Time to answer each route when the history's PostgreSQL is frozen or stopped, on gunicorn.

Starts a freezable TCP proxy (tests/freezable_proxy.py) in front of the PostgreSQL at
127.0.0.1:5432, a fresh schema, and gunicorn (gunicorn.conf.py, GEM_WORKERS workers, the default
database timeouts unless GEM_DB_* are set) on a free local port. Then, for each state (frozen:
sockets open, nothing forwarded, like a SIGSTOPped server; stopped: connections refused), it times
every route the audit found hanging, and finally thaws the proxy and checks that everything
recovers without a restart. Prints one line per route and state: status, seconds, answer.

    python benchmarks/bench_frozen_db.py
    GEM_DB_STATEMENT_TIMEOUT_S=2 python benchmarks/bench_frozen_db.py --workers 1

Target (issue 12 item 1): every answer within about 10 s, none a 500 or a cut stream.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from sqlalchemy import create_engine, text  # noqa: E402

from tests.freezable_proxy import FreezableProxy  # noqa: E402

POSTGRES = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
PEERS = {"sender_peer": "prosumer-a", "receiver_peer": "consumer-home"}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def call(base: str, method: str, path: str, body: dict | None = None, timeout: float = 70.0):
    """(status, seconds, the answer in a few words); status 0 when no whole answer came."""
    body = dict(body) if body is not None else None
    key = body.pop("_key", None) if body is not None else None  # sent as the Idempotency-Key header
    data = json.dumps(body).encode() if body is not None else None
    headers = {"Content-Type": "application/json"} if data else {}
    if key:
        headers["Idempotency-Key"] = key
    request = urllib.request.Request(base + path, data=data, method=method, headers=headers)
    started = time.monotonic()
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            status, answer = response.status, response.read()
    except urllib.error.HTTPError as exc:
        status, answer = exc.code, exc.read()
    except OSError as exc:  # reset, cut stream, timeout
        return 0, time.monotonic() - started, f"no answer: {type(exc).__name__}"
    return status, time.monotonic() - started, summary(answer)


def summary(answer: bytes) -> str:
    """What an answer says about the history, in one line."""
    text_ = answer.decode("utf-8", "replace")
    try:
        body = json.loads(text_)
    except json.JSONDecodeError:
        if text_.startswith("id,"):
            return f"CSV, {text_.count(chr(10)) - 1} rows"
        return f"HTML page, {len(text_)} bytes" + (", says the history is unavailable"
                                                   if "history is unavailable" in text_.lower() else "")
    if isinstance(body, dict) and "saved" in body:
        return f"analysis {body.get('predicted_label')}, saved={body['saved']}, save_error={body.get('save_error')!r}"
    if isinstance(body, dict) and "_pages_content" in body.get("response", {}):
        return "page layout" + (", says the history is unavailable" if "history is unavailable" in text_ else "")
    if isinstance(body, dict) and "response" in body:
        notice = json.dumps(body["response"].get("history-notice", {}))
        return "grid: " + ("history unavailable notice" if "unavailable" in notice else
                           f"{body['response']['history-grid']['getRowsResponse']['rowCount']} rows")
    if isinstance(body, dict) and "database" in body:
        return f"health {body['status']}: {body['database']['message']}"
    return text_[:100]


def grid_body(callback_output: str) -> dict:
    return {"output": callback_output,
            "outputs": [{"id": "history-grid", "property": "getRowsResponse"},
                        {"id": "history-total", "property": "children"},
                        {"id": "history-csv", "property": "href"},
                        {"id": "history-notice", "property": "children"}],
            "inputs": [{"id": "history-grid", "property": "getRowsRequest", "value": {"startRow": 0, "endRow": 50}}],
            "changedPropIds": ["history-grid.getRowsRequest"], "state": []}


def page_body(pathname: str) -> dict:
    """Dash's pages callback: the layout of the page at `pathname` (what the browser loads after the shell)."""
    return {"output": ".._pages_content.children..._pages_store.data..",
            "outputs": [{"id": "_pages_content", "property": "children"}, {"id": "_pages_store", "property": "data"}],
            "inputs": [{"id": "_pages_location", "property": "pathname", "value": pathname},
                       {"id": "_pages_location", "property": "search", "value": ""}],
            "changedPropIds": ["_pages_location.pathname"], "state": []}


def routes(base: str, sample: str, analysis_id: int, grid_output: str) -> list[tuple[str, str, str, dict | None]]:
    return [
        ("POST /predict", "POST", "/predict", {**PEERS, "sample_filename": sample}),
        ("POST /predict + key", "POST", "/predict", {**PEERS, "sample_filename": sample, "_key": uuid.uuid4().hex}),
        ("GET /api/health", "GET", "/api/health", None),
        ("GET /api/history", "GET", "/api/history", None),
        ("GET /api/history/<id>", "GET", f"/api/history/{analysis_id}", None),
        ("GET /api/history.csv", "GET", "/api/history.csv", None),
        ("Dash history grid", "POST", "/_dash-update-component", grid_body(grid_output)),
        ("GET /analysis/<id>", "GET", f"/analysis/{analysis_id}", None),
        ("Dash layout of /", "POST", "/_dash-update-component", page_body("/")),
        ("Dash layout /analysis/<id>", "POST", "/_dash-update-component", page_body(f"/analysis/{analysis_id}")),
        ("Dash layout of /network", "POST", "/_dash-update-component", page_body("/network")),
    ]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()

    schema = f"gem_frozen_{uuid.uuid4().hex[:8]}"
    admin = create_engine(POSTGRES)
    with admin.begin() as connection:
        connection.execute(text(f"CREATE SCHEMA {schema}"))
    proxy = FreezableProxy(("127.0.0.1", 5432))
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    folder = tempfile.mkdtemp(prefix="gem-frozen-")
    env = {**os.environ, "GEM_DATABASE_URL": f"postgresql+psycopg://postgres@127.0.0.1:{proxy.port}/test"
           f"?options=-csearch_path%3D{schema}", "GEM_BIND": f"127.0.0.1:{port}", "GEM_WORKERS": str(args.workers),
           "GEM_INSTANCE_DIR": folder, "GEM_LOG_LEVEL": "warning", "GEM_AUTH": "off"}
    log_path = Path(folder) / "gunicorn.log"
    server = subprocess.Popen([sys.executable, "-m", "gunicorn", "-c", "gunicorn.conf.py", "app:create_server()"],
                              cwd=ROOT, env=env, stdout=log_path.open("w"), stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 120
        while call(base, "GET", "/api/health", timeout=5)[0] != 200:
            if time.monotonic() > deadline or server.poll() is not None:
                print(log_path.read_text()[-3000:])
                return 1
            time.sleep(0.5)
        sample = json.loads(urllib.request.urlopen(base + "/api/samples").read())["samples"][0]["filename"]
        request = urllib.request.Request(base + "/predict", data=json.dumps({**PEERS, "sample_filename": sample})
                                         .encode(), headers={"Content-Type": "application/json"})
        first = json.loads(urllib.request.urlopen(request).read())
        layout = json.loads(urllib.request.urlopen(base + "/_dash-dependencies").read())
        grid_output = next(item["output"] for item in layout if "history-grid.getRowsResponse" in item["output"])
        print(f"gunicorn, {args.workers} workers; database timeouts: connect "
              f"{os.environ.get('GEM_DB_CONNECT_TIMEOUT_S', '3 (default)')} s, statement "
              f"{os.environ.get('GEM_DB_STATEMENT_TIMEOUT_S', '5 (default)')} s, pool "
              f"{os.environ.get('GEM_DB_POOL_TIMEOUT_S', '3 (default)')} s")
        worst = 0.0
        for state, action in (("frozen", proxy.freeze), ("stopped", proxy.stop), ("recovered", proxy.resume)):
            action()
            for _ in range(2 if state != "recovered" else 1):  # twice: fresh and already-broken pools
                for name, method, path, body in routes(base, sample, first["analysis_id"], grid_output):
                    status, seconds, answer = call(base, method, path, body)
                    if state != "recovered":
                        worst = max(worst, seconds)
                    print(f"{state:9s} {name:26s} {status:3d} {seconds:6.2f} s  {answer}", flush=True)
        print(f"slowest answer with the database frozen or stopped: {worst:.2f} s")
        return 0 if worst < 10 else 1
    finally:
        proxy.resume()
        server.terminate()
        server.wait(timeout=30)
        proxy.close()
        with admin.begin() as connection:
            connection.execute(text(f"DROP SCHEMA {schema} CASCADE"))
        admin.dispose()


if __name__ == "__main__":
    sys.exit(main())
