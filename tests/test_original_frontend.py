"""The original application's front end, served unchanged beside the app, against our `/predict`.

Its page (../shared/original-frontend) is the reference client of the JSON API. It is served as
the original application served it (Jinja template, its static folder), with two lines changed
because nothing may be downloaded: Plotly comes from the local `plotly` package instead of its
CDN, and the Tailwind CDN line is dropped. For an internal fault and for every transient kind the
page must draw three waveform traces, colour at least one box of its diagram, and say "Disrupted"
exactly when our answer's `is_fault_condition` is true, with no console error.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import plotly
import pytest
import requests
from flask import Flask, render_template_string, send_file
from selenium.webdriver.support.ui import Select

from app import create_app
from app.settings import Settings

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parents[1]
ARTIFACTS = Path(os.environ.get("GEM_ARTIFACTS_DIR") or ROOT / "artifacts")
FRONTEND = ROOT.parent / "shared" / "original-frontend"
TIMEOUT = 20
PLOTLY_JS = Path(plotly.__file__).parent / "package_data" / "plotly.min.js"


def _page_template() -> str:
    """index.html with Plotly from the local package and without the Tailwind CDN line."""
    lines = []
    for line in (FRONTEND / "templates" / "index.html").read_text(encoding="utf-8").splitlines():
        if "cdn.tailwindcss.com" in line:
            continue
        if "cdn.plot.ly" in line:
            line = '    <script src="/vendor/plotly.min.js"></script>'
        lines.append(line)
    return "\n".join(lines)


def _one_sample_per_case() -> list[tuple[str, str]]:
    """(file name, true label) of one internal fault and of each transient kind."""
    info = json.loads((ARTIFACTS / "samples_info.json").read_text())
    chosen: dict[str, str] = {}
    for name, entry in sorted(info.items()):
        label = entry["true_label_str"]
        key = label if label.startswith("transient_") else "internal_fault"
        chosen.setdefault(key, name)
    return [(name, key) for key, name in sorted(chosen.items())]


@pytest.fixture
def portal(tmp_path):
    if not FRONTEND.is_dir():
        pytest.fail(f"the original front end is not at {FRONTEND}")
    server = Flask(__name__, static_folder=str(FRONTEND / "static"), static_url_path="/static")
    template = _page_template()
    info = json.loads((ARTIFACTS / "samples_info.json").read_text())
    options = [{"filename": name, "display_name": entry["true_label_str"]} for name, entry in sorted(info.items())]

    @server.get("/original/")
    def original_page():
        return render_template_string(template, sample_options=options)

    @server.get("/vendor/plotly.min.js")
    def plotly_js():
        return send_file(PLOTLY_JS, mimetype="text/javascript")

    settings = Settings(artifacts_dir=ARTIFACTS, database_url=f"sqlite:///{tmp_path / 'history.db'}",
                        instance_dir=tmp_path / "instance")
    return create_app(server=server, url_base_pathname="/", settings=settings)


def test_ofe001_original_page_works_unchanged_for_a_fault_and_every_transient(dash_duo, portal):
    dash_duo.start_server(portal)
    base = dash_duo.server_url.rstrip("/")
    cases = _one_sample_per_case()
    assert len(cases) == 7, cases  # one internal fault + the six transient kinds
    driver = dash_duo.driver
    driver.get(f"{base}/original/")
    dash_duo.wait_for_element("#predictButton", timeout=TIMEOUT)
    for sample, case in cases:
        expected = requests.post(f"{base}/predict", json={
            "sample_filename": sample, "sender_peer": "prosumer-b", "receiver_peer": "ev-hub"}, timeout=30).json()
        details = expected["p2p_impact_details"]
        assert any(key in details["highlight_keys"] for key in (
            "prosumer-a", "prosumer-b", "community-battery", "micro-industry", "consumer-home", "ev-hub",
            "local-business", "consumer-load", "microgrid-hub")), (case, details)

        Select(driver.find_element("id", "sampleSelector")).select_by_value(sample)
        Select(driver.find_element("id", "senderPeer")).select_by_value("prosumer-b")
        Select(driver.find_element("id", "receiverPeer")).select_by_value("ev-hub")
        driver.execute_script("document.getElementById('grid-status-text').textContent = 'waiting';")
        dash_duo.wait_for_element("#predictButton:not([disabled])", timeout=TIMEOUT).click()
        dash_duo.wait_for_contains_text("#grid-status-text", "P2P", timeout=TIMEOUT)

        traces = driver.execute_script(
            "return document.querySelectorAll('#waveformPlot .scatterlayer .trace').length;")
        assert traces == 3, case
        coloured = driver.execute_script(
            "return document.querySelectorAll('.fault-indicator-red, .normal-indicator-green').length;")
        assert coloured >= 1, case
        status = driver.find_element("id", "grid-status-text").text
        if details["is_fault_condition"]:
            assert "Disrupted" in status and details["event_type"] in status, (case, status)
            assert driver.execute_script("return document.querySelectorAll('.fault-indicator-red').length;") >= 1
        else:
            assert "Stable" in status, (case, status)
        assert expected["predicted_label"] in driver.find_element("id", "resultArea").text
    assert dash_duo.get_logs() == []
