"""Dashboard speed: the Analyze callback's server time and each page's first render in Chromium.

    python benchmarks/bench_dashboard.py [--artifacts artifacts] [--runs 200] [--page-runs 5] [--skip-browser]

1. Analyze callback: the function behind the one multi-output callback
   (`callbacks.analyze.analyze_page_update`: sample -> inference -> rules -> history row -> every
   panel's components), called directly in a request context, `--runs` times after a warm-up;
   also the same update through Dash's HTTP endpoint (Flask test client), which adds Dash's
   request parsing and JSON serialisation. Target: p50 <= 100 ms.
2. Page render: headless Chromium (flags of tests/conftest.py) against a live server; the time from
   `driver.get(url)` to a page-specific element being visible. The first load of the session is
   cold (scripts downloaded), the others warm. Target: <= 2 s.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from app import create_app  # noqa: E402
from app.settings import Settings  # noqa: E402
from callbacks import data  # noqa: E402
from callbacks.analyze import AnalyzeRequest, analyze_page_update  # noqa: E402
from components import ids  # noqa: E402
from services.analysis import EXTENSION_KEY  # noqa: E402

PEERS = {"sender": "prosumer-a", "receiver": "consumer-home", "transfer_kw": 5.0}
PAGES = (
    ("/", f"#{ids.MICROGRID} canvas"),
    ("/history", f"#{ids.HISTORY_GRID} .ag-row"),
    ("/model", f"#{ids.MODEL_CONFUSION} .main-svg"),
    ("/network", f"#{ids.NETWORK_GRAPH} canvas"),
    ("/analysis/1", f"#{ids.ANALYSIS_WAVEFORM} .main-svg"),
)


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[index]


def report(name: str, seconds: list[float]) -> None:
    ms = [s * 1000 for s in seconds]
    print(f"{name:<62} n={len(ms):<4} p50 {statistics.median(ms):7.1f} ms   p99 {percentile(ms, 99):7.1f} ms   "
          f"max {max(ms):7.1f} ms")


def _dash_payload(sample: str) -> dict:
    """The body Dash's renderer posts when the Analyze button is clicked (one multi-output callback)."""
    outputs = [(ids.MICROGRID, "elements"), (ids.MICROGRID_CAPTION, "children"), (ids.RESULT_HEADLINE, "children"),
               (ids.WAVEFORM_CONTAINER, "children"), (ids.CONFIDENCE, "children"), (ids.DESCRIPTION, "children"),
               (ids.IMPACT, "children"), (ids.LATEST_TABLE, "children"), (ids.ANALYZE_ALERT, "children"),
               (ids.ANALYZE_RESULT_STORE, "data"), (ids.UPLOAD_STORE, "data"), (ids.UPLOAD_STATUS, "children")]
    return {
        "output": ".." + "...".join(f"{i}.{p}" for i, p in outputs) + "..",
        "outputs": [{"id": i, "property": p} for i, p in outputs],
        "inputs": [{"id": ids.ANALYZE_BUTTON, "property": "n_clicks", "value": 1},
                   {"id": ids.UPLOAD, "property": "contents", "value": None},
                   {"id": ids.WAVEFORM_VIEW, "property": "value", "value": "raw"},
                   {"id": ids.SENDER, "property": "value", "value": PEERS["sender"]},
                   {"id": ids.RECEIVER, "property": "value", "value": PEERS["receiver"]}],
        "changedPropIds": [f"{ids.ANALYZE_BUTTON}.n_clicks"],
        "state": [{"id": ids.UPLOAD, "property": "filename", "value": None},
                  {"id": ids.EVENT_SOURCE_TABS, "property": "active_tab", "value": ids.SOURCE_SAMPLE},
                  {"id": ids.SAMPLE, "property": "value", "value": sample},
                  {"id": ids.SIM_LABEL, "property": "value", "value": "transient_magnetising_inrush"},
                  {"id": ids.SIM_SEED, "property": "value", "value": 7},
                  [], [],
                  {"id": ids.UPLOAD_STORE, "property": "data", "value": None},
                  {"id": ids.UPLOAD_CHANNELS, "property": "value", "value": None},
                  {"id": ids.TRANSFER_KW, "property": "value", "value": PEERS["transfer_kw"]},
                  {"id": ids.ANALYZE_RESULT_STORE, "property": "data", "value": None}],
    }


def bench_callback(app, runs: int) -> None:
    context = app.server.extensions[EXTENSION_KEY]
    samples = [s["filename"] for s in context.samples()]
    with app.server.test_request_context("/"):
        requests = [AnalyzeRequest(trigger=ids.ANALYZE_BUTTON, source_tab=ids.SOURCE_SAMPLE,
                                   sample=samples[i % len(samples)], **PEERS) for i in range(runs)]
        for request in requests[:5]:  # warm-up: model load, ONNX session, first SQL
            analyze_page_update(request, context)
        timings = []
        for request in requests:
            started = time.perf_counter()
            outputs = analyze_page_update(request, context)
            timings.append(time.perf_counter() - started)
            assert outputs.get("alert") is None, outputs.get("alert")
        report("Analyze callback (function, direct)", timings)
    client = app.server.test_client()
    client.get("/")
    timings = []
    for index in range(runs):
        body = json.dumps(_dash_payload(samples[index % len(samples)]))
        started = time.perf_counter()
        response = client.post("/_dash-update-component", data=body, content_type="application/json")
        timings.append(time.perf_counter() - started)
        assert response.status_code == 200, response.data[:300]
    report("Analyze callback (Dash HTTP endpoint)", timings)
    print(f"history rows written: {context.store.count()}")


def seed_rows(store, n: int) -> None:
    """Bulk-insert n synthetic analyses (no waveforms) so the History grid has a realistic table."""
    from sqlalchemy import insert

    from services.history.schema import utc_now
    from services.labels import LABELS, label_parts

    now = utc_now()
    rows = []
    for index in range(n):
        label = LABELS[index % len(LABELS)]
        parts = label_parts(label)
        rows.append({"created_at": now, "source": "api", "sender": ("prosumer-a", "prosumer-b")[index % 2],
                     "receiver": "ev-hub", "transfer_kw": 5.0, "label": label, "label_id": index % len(LABELS),
                     "confidence": (index * 7919 % 1000) / 1000, "category": parts.category,
                     "equipment": parts.equipment, "kind": parts.kind, "unknown": False,
                     "severity": ("info", "minor", "major", "critical")[index % 4], "transfer_status": "continues"})
    with store.engine.begin() as connection:
        for start in range(0, n, 5000):
            connection.execute(insert(store.table), rows[start:start + 5000])


def bench_history(app, n_rows: int, runs: int = 20) -> None:
    """The History grid's server side (callbacks.history.history_rows) over n_rows analyses."""
    from callbacks.history import history_rows

    context = app.server.extensions[EXTENSION_KEY]
    seed_rows(context.store, n_rows)
    total = context.store.count()
    cases = {
        "first block, newest first": {"startRow": 0, "endRow": 100},
        "block at row 50,000": {"startRow": 50_000, "endRow": 50_100},
        "sorted by confidence": {"startRow": 0, "endRow": 100, "sortModel": [{"colId": "confidence", "sort": "desc"}]},
        "filter label contains 'inrush'": {"startRow": 0, "endRow": 100, "filterModel": {
            "label": {"filterType": "text", "type": "contains", "filter": "inrush"}}},
        "filter category = transient + sort sender": {
            "startRow": 0, "endRow": 100, "sortModel": [{"colId": "sender", "sort": "asc"}],
            "filterModel": {"category": {"filterType": "text", "type": "equals", "filter": "transient"}}},
    }
    with app.server.test_request_context("/"):
        for name, request in cases.items():
            timings = []
            for _ in range(runs):
                started = time.perf_counter()
                response, _ = history_rows(request, context.store, data.analysis_href)
                timings.append(time.perf_counter() - started)
            assert response["rowData"], name
            report(f"history {total:,} rows: {name}", timings)


def bench_pages(app, page_runs: int, port: int) -> None:
    from selenium import webdriver
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions
    from selenium.webdriver.support.ui import WebDriverWait
    from werkzeug.serving import make_server

    from tests.conftest import pytest_setup_options

    server = make_server("127.0.0.1", port, app.server, threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    options = pytest_setup_options()
    options.add_argument("--headless=new")
    driver = webdriver.Chrome(options=options)
    base = f"http://127.0.0.1:{port}"
    try:
        cold = True
        for path, selector in PAGES:
            timings = []
            for _ in range(page_runs):
                driver.get("about:blank")
                started = time.perf_counter()
                driver.get(base + path)
                WebDriverWait(driver, 30).until(
                    expected_conditions.visibility_of_element_located((By.CSS_SELECTOR, selector)))
                timings.append(time.perf_counter() - started)
            if cold:
                print(f"{'first load of the session (cold) ' + path:<62} {timings[0] * 1000:7.1f} ms")
                timings = timings[1:] or timings
                cold = False
            report(f"page {path} (warm) until {selector.split()[0]}", timings)
    finally:
        driver.quit()
        server.shutdown()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--artifacts", type=Path, default=ROOT / "artifacts")
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--page-runs", type=int, default=5)
    parser.add_argument("--port", type=int, default=8766)
    parser.add_argument("--skip-browser", action="store_true")
    parser.add_argument("--history-rows", type=int, default=100_000)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(artifacts_dir=args.artifacts, database_url=f"sqlite:///{tmp}/history.db",
                            instance_dir=Path(tmp) / "instance")
        app = create_app(settings=settings)
        with app.server.test_request_context("/"):
            status = data.model_status()
        if not status["loaded"]:
            print(f"cannot benchmark: {status['message']}")
            return 1
        print(f"artifacts {args.artifacts} (fingerprint {status['fingerprint']}, backend {status['backend']})")
        bench_callback(app, args.runs)
        if args.history_rows:
            bench_history(app, args.history_rows)
        if not args.skip_browser:
            bench_pages(app, args.page_runs, args.port)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
