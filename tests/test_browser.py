"""The dashboard in headless Chromium (dash_duo): every page, the one-click analysis, uploads,
the permanent link and the app mounted under a prefix in a Flask portal.

Run with `pytest tests/test_browser.py --headless`. Each test builds its own app on a temp SQLite
database and the shipped artifacts (GEM_ARTIFACTS_DIR overrides the folder, as for the app).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from flask import Flask

from app import create_app
from app.settings import Settings
from components import ids

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parents[1]
ARTIFACTS = Path(os.environ.get("GEM_ARTIFACTS_DIR") or ROOT / "artifacts")
TIMEOUT = 20


def _settings(tmp_path: Path, artifacts: Path = ARTIFACTS) -> Settings:
    return Settings(artifacts_dir=artifacts, database_url=f"sqlite:///{tmp_path / 'history.db'}",
                    instance_dir=tmp_path / "instance")


@pytest.fixture
def settings(tmp_path):
    if not (ARTIFACTS / "best_model.pth").is_file():
        pytest.fail(f"no trained model in {ARTIFACTS}: the shipped artifacts are part of the repository")
    return _settings(tmp_path)


def _wait_analysis_done(dash_duo, rows: int) -> None:
    """Wait until the confidence card shows a value and the latest table has `rows` rows."""
    dash_duo.wait_for_element(f"#{ids.CONFIDENCE_VALUE}", timeout=TIMEOUT)
    dash_duo.wait_for_element(f"#{ids.IMPACT_SEVERITY}", timeout=TIMEOUT)
    dash_duo.wait_for_contains_text(f"#{ids.MICROGRID_CAPTION}", "Severity", timeout=TIMEOUT)
    dash_duo.wait_for_text_to_equal(  # newest first
        f"#{ids.LATEST_TABLE} tbody tr:first-child td:first-child", f"#{rows}", timeout=TIMEOUT)
    assert len(dash_duo.find_elements(f"#{ids.LATEST_TABLE} tbody tr")) == rows


def _click(dash_duo, target) -> None:
    """Scroll the element (or selector) to the middle of the window, no smooth scrolling, then click it."""
    element = dash_duo.wait_for_element(target, timeout=TIMEOUT) if isinstance(target, str) else target
    dash_duo.driver.execute_script("arguments[0].scrollIntoView({block: 'center', behavior: 'instant'});", element)
    element.click()


def _tab(dash_duo, title: str) -> None:
    """Open one of the grid-event tabs (Sample, Simulate, Upload)."""
    dash_duo.wait_for_element(f"#{ids.EVENT_SOURCE_TABS} .nav-link", timeout=TIMEOUT)
    tabs = dash_duo.find_elements(f"#{ids.EVENT_SOURCE_TABS} .nav-link")
    _click(dash_duo, next(tab for tab in tabs if tab.text == title))


def _upload(dash_duo, path: Path) -> None:
    _tab(dash_duo, "Upload")
    file_input = dash_duo.find_element(f"#{ids.UPLOAD} input[type=file]")
    file_input.send_keys(str(path))


def _analyse_upload(dash_duo, settings: Settings, path: Path) -> None:
    """Start the app, upload one recording on the Analyze page and wait until it is analysed."""
    dash_duo.start_server(create_app(settings=settings))
    dash_duo.wait_for_element(f"#{ids.ANALYZE_PAGE}", timeout=TIMEOUT)
    _upload(dash_duo, path)
    _wait_analysis_done(dash_duo, rows=1)


def test_dash001_every_page_loads(dash_duo, settings):
    app = create_app(settings=settings)
    dash_duo.start_server(app)
    dash_duo.wait_for_element(f"#{ids.ANALYZE_PAGE}", timeout=TIMEOUT)
    dash_duo.wait_for_element(f"#{ids.MICROGRID} canvas", timeout=TIMEOUT)
    for page, marker in (("history", f"#{ids.HISTORY_GRID} .ag-row"), ("model_card", f"#{ids.MODEL_CONFUSION} .main-svg"),
                         ("network", f"#{ids.NETWORK_PRICE}"), ("analyze", f"#{ids.ANALYZE_BUTTON}")):
        _click(dash_duo, f"#{ids.NAV_LINK_PREFIX}{page}")
        if page == "history":
            dash_duo.wait_for_contains_text(f"#{ids.HISTORY_TOTAL}", "0 analyses", timeout=TIMEOUT)
        else:
            dash_duo.wait_for_element(marker, timeout=TIMEOUT)
    assert dash_duo.find_elements(f".{ids.MODEL_STATUS_BANNER_CLASS}") == []
    # the Network page re-runs the power flow when the transfer changes
    _click(dash_duo, f"#{ids.NAV_LINK_PREFIX}network")
    dash_duo.wait_for_contains_text(f"#{ids.NETWORK_PEERS}", "sends 5 kW", timeout=TIMEOUT)
    kw = dash_duo.find_element(f"#{ids.NETWORK_KW}")
    kw.clear()
    kw.send_keys("12\n")
    dash_duo.wait_for_contains_text(f"#{ids.NETWORK_PEERS}", "sends 12 kW", timeout=TIMEOUT)
    assert dash_duo.get_logs() == []


def test_dash002_one_click_updates_every_panel(dash_duo, settings):
    app = create_app(settings=settings)
    dash_duo.start_server(app)
    dash_duo.wait_for_element(f"#{ids.ANALYZE_PAGE}", timeout=TIMEOUT)
    assert "no event analysed yet" in dash_duo.find_element(f"#{ids.MICROGRID_CAPTION}").text
    assert dash_duo.find_elements(f"#{ids.WAVEFORM} .scatterlayer .trace") == []
    _click(dash_duo, f"#{ids.ANALYZE_BUTTON}")
    _wait_analysis_done(dash_duo, rows=1)
    traces = dash_duo.find_elements(f"#{ids.WAVEFORM} .scatterlayer .trace")
    assert len(traces) == 3
    assert dash_duo.find_element(f"#{ids.CONFIDENCE_VALUE}").text.endswith("%")
    assert len(dash_duo.find_elements(f"#{ids.TOP5_GRAPH} .prob-row")) == 5
    assert dash_duo.find_element(f"#{ids.IMPACT_TRANSFER_STATUS}").text
    assert dash_duo.find_elements(f"#{ids.IMPACT_ACTIONS} li")
    assert dash_duo.find_element(f"#{ids.DESCRIPTION} .fw-semibold").text
    assert dash_duo.find_element(f"#{ids.RESULT_PERMALINK}").get_attribute("href").endswith("/analysis/1")
    # the RMS view redraws the same analysis without a new history row
    _click(dash_duo, f"#{ids.WAVEFORM_VIEW} input[value=rms]")
    dash_duo.wait_for_contains_text(f"#{ids.WAVEFORM} .ytitle", "RMS", timeout=TIMEOUT)
    assert len(dash_duo.find_elements(f"#{ids.LATEST_TABLE} tbody tr")) == 1
    assert dash_duo.get_logs() == []


def test_dash003_simulated_event_goes_through(dash_duo, settings):
    app = create_app(settings=settings)
    dash_duo.start_server(app)
    dash_duo.wait_for_element(f"#{ids.ANALYZE_PAGE}", timeout=TIMEOUT)
    _tab(dash_duo, "Simulate")
    dash_duo.wait_for_element(f"input[id*='{ids.SIM_PARAM_TYPE}'][id*='remanence_percent']", timeout=TIMEOUT)
    _click(dash_duo, f"#{ids.ANALYZE_BUTTON}")
    _wait_analysis_done(dash_duo, rows=1)
    assert dash_duo.find_element(f"#{ids.LATEST_TABLE} tbody tr td:last-child").text.startswith("simulated")
    assert dash_duo.get_logs() == []


def test_dash004_uploaded_file_goes_through(dash_duo, settings, tmp_path):
    sample = sorted((ARTIFACTS / "sample_data").glob("*.npy"))[0]
    upload = tmp_path / "recording.npy"
    np.save(upload, np.load(sample))
    _analyse_upload(dash_duo, settings, upload)
    dash_duo.wait_for_contains_text(f"#{ids.UPLOAD_STATUS}", "recording.npy", timeout=TIMEOUT)
    assert dash_duo.find_element(f"#{ids.LATEST_TABLE} tbody tr td:last-child").text == "recording.npy"
    # Analyze with the Upload tab open analyses the stored upload again
    _click(dash_duo, f"#{ids.ANALYZE_BUTTON}")
    _wait_analysis_done(dash_duo, rows=2)
    assert dash_duo.get_logs() == []


def test_dash005_bad_upload_shows_message_and_changes_nothing(dash_duo, settings, tmp_path):
    bad = tmp_path / "broken.csv"
    bad.write_text("time,Ia,Ib,Ic\n0,1,2,3\n0.0001,1,2,3\n")
    app = create_app(settings=settings)
    dash_duo.start_server(app)
    dash_duo.wait_for_element(f"#{ids.ANALYZE_PAGE}", timeout=TIMEOUT)
    _upload(dash_duo, bad)
    dash_duo.wait_for_contains_text(f"#{ids.ANALYZE_ALERT}", "broken.csv", timeout=TIMEOUT)
    assert "726" in dash_duo.find_element(f"#{ids.ANALYZE_ALERT}").text
    assert "no event analysed yet" in dash_duo.find_element(f"#{ids.MICROGRID_CAPTION}").text
    assert dash_duo.find_elements(f"#{ids.CONFIDENCE_VALUE}") == []
    assert dash_duo.find_elements(f"#{ids.LATEST_TABLE} tbody tr") == []
    assert app.server.extensions["grid_event_monitor"].store.count() == 0
    assert dash_duo.get_logs() == []


def test_dash006_history_permanent_link_reopens_the_analysis(dash_duo, settings):
    app = create_app(settings=settings)
    context = app.server.extensions["grid_event_monitor"]
    first_sample = context.samples()[0]["filename"]
    result = context.analyze_sample(first_sample, sender="prosumer-b", receiver="ev-hub", transfer_kw=7.5)
    dash_duo.start_server(app)
    dash_duo.wait_for_element(f"#{ids.ANALYZE_PAGE}", timeout=TIMEOUT)
    _click(dash_duo, f"#{ids.NAV_LINK_PREFIX}history")
    link = dash_duo.wait_for_element(f"#{ids.HISTORY_GRID} .ag-row a", timeout=TIMEOUT)
    assert link.text == f"#{result.analysis_id}"
    _click(dash_duo, link)
    dash_duo.wait_for_element(f"#{ids.ANALYSIS_PAGE}", timeout=TIMEOUT)
    assert f"Analysis #{result.analysis_id}" in dash_duo.find_element(f"#{ids.ANALYSIS_HEADER}").text
    assert dash_duo.driver.current_url.endswith(f"/analysis/{result.analysis_id}")
    assert len(dash_duo.find_elements(f"#{ids.ANALYSIS_WAVEFORM} .scatterlayer .trace")) == 3
    assert dash_duo.find_element(f"#{ids.CONFIDENCE_VALUE}").text == f"{result.confidence:.1%}"
    assert dash_duo.find_element(f"#{ids.IMPACT_SEVERITY}").text == result.severity.upper()
    assert "7.5 kW" in dash_duo.find_element(f"#{ids.ANALYSIS_HEADER}").text
    assert dash_duo.get_logs() == []
    # an unknown id answers HTTP 404 (the only console entry) with a page that says so
    dash_duo.driver.get(f"{dash_duo.server_url}/analysis/99999")
    dash_duo.wait_for_element(f"#{ids.ANALYSIS_NOT_FOUND}", timeout=TIMEOUT)
    assert [(entry["source"], "404" in entry["message"] and "/analysis/99999" in entry["message"])
            for entry in dash_duo.get_logs()] == [("network", True)]
    # so does a path without a page, with links back instead of Dash's bare "404"
    dash_duo.driver.get(f"{dash_duo.server_url}/no-such-page")
    dash_duo.wait_for_element(f"#{ids.NOT_FOUND_PAGE} a", timeout=TIMEOUT)
    assert [(entry["source"], "404" in entry["message"]) for entry in dash_duo.get_logs()] == [("network", True)]
    _click(dash_duo, f"#{ids.NOT_FOUND_PAGE} a")
    dash_duo.wait_for_element(f"#{ids.ANALYZE_PAGE}", timeout=TIMEOUT)
    assert dash_duo.get_logs() == []


def test_dash007_mounted_under_a_prefix_in_a_flask_portal(dash_duo, settings):
    portal = Flask("portal")

    @portal.route("/")
    def portal_home():
        return ('<html><head><link rel="icon" href="data:,"></head><body><h1 id="portal-title">Utility portal</h1>'
                '<a id="to-grid" href="/grid/">Grid</a></body></html>')

    app = create_app(server=portal, url_base_pathname="/grid/", settings=settings)
    dash_duo.start_server(app, navigate=False)
    dash_duo.driver.get(dash_duo.server.url.rstrip("/") + "/")
    assert dash_duo.wait_for_element("#portal-title", timeout=TIMEOUT).text == "Utility portal"
    _click(dash_duo, "#to-grid")
    dash_duo.wait_for_element(f"#{ids.ANALYZE_PAGE}", timeout=TIMEOUT)
    _click(dash_duo, f"#{ids.ANALYZE_BUTTON}")
    _wait_analysis_done(dash_duo, rows=1)
    row_link = dash_duo.find_element(f"#{ids.LATEST_TABLE} tbody tr td:first-child a")
    assert row_link.get_attribute("href").endswith("/grid/analysis/1")
    _click(dash_duo, f"#{ids.NAV_LINK_PREFIX}history")
    dash_duo.wait_for_element(f"#{ids.HISTORY_GRID} .ag-row a", timeout=TIMEOUT)
    assert dash_duo.driver.current_url.endswith("/grid/history")
    csv_href = dash_duo.find_element(f"#{ids.HISTORY_CSV_LINK}").get_attribute("href")
    assert csv_href.endswith("/grid/api/history.csv")
    _click(dash_duo, f"#{ids.HISTORY_GRID} .ag-row a")
    dash_duo.wait_for_element(f"#{ids.ANALYSIS_PAGE}", timeout=TIMEOUT)
    assert dash_duo.driver.current_url.endswith("/grid/analysis/1")
    assert dash_duo.get_logs() == []


def test_dash008_missing_model_shows_a_banner(dash_duo, tmp_path):
    empty = tmp_path / "no-artifacts"
    empty.mkdir()
    app = create_app(settings=_settings(tmp_path, empty))
    dash_duo.start_server(app)
    banner = dash_duo.wait_for_element(f"#{ids.ANALYZE_MODEL_BANNER} .{ids.MODEL_STATUS_BANNER_CLASS}",
                                       timeout=TIMEOUT)
    assert "Model unavailable" in banner.text
    _click(dash_duo, f"#{ids.NAV_LINK_PREFIX}model_card")
    dash_duo.wait_for_element(f"#{ids.MODEL_BANNER} .{ids.MODEL_STATUS_BANNER_CLASS}", timeout=TIMEOUT)
    _click(dash_duo, f"#{ids.NAV_LINK_PREFIX}analyze")
    dash_duo.wait_for_element(f"#{ids.ANALYZE_BUTTON}", timeout=TIMEOUT)
    _tab(dash_duo, "Simulate")
    _click(dash_duo, f"#{ids.ANALYZE_BUTTON}")
    dash_duo.wait_for_contains_text(f"#{ids.ANALYZE_ALERT}", "Model unavailable", timeout=TIMEOUT)
    assert dash_duo.get_logs() == []


def test_dash009_a_new_transfer_clears_the_old_result_and_kw_says_its_limit(dash_duo, settings):
    """After an analysis, another receiver must not leave the old verdict beside a new graph."""
    from selenium.webdriver.support.ui import Select

    app = create_app(settings=settings)
    dash_duo.start_server(app)
    dash_duo.wait_for_element(f"#{ids.ANALYZE_PAGE}", timeout=TIMEOUT)
    _click(dash_duo, f"#{ids.ANALYZE_BUTTON}")
    _wait_analysis_done(dash_duo, rows=1)
    Select(dash_duo.find_element(f"#{ids.RECEIVER}")).select_by_value("ev-hub")
    dash_duo.wait_for_contains_text(f"#{ids.MICROGRID_CAPTION}", "no event analysed yet", timeout=TIMEOUT)
    assert "EV" in dash_duo.find_element(f"#{ids.MICROGRID_CAPTION}").text
    assert dash_duo.find_elements(f"#{ids.CONFIDENCE_VALUE}") == []
    assert dash_duo.find_elements(f"#{ids.IMPACT_SEVERITY}") == []
    assert dash_duo.find_elements(f"#{ids.WAVEFORM} .scatterlayer .trace") == []
    assert dash_duo.find_elements(f"#{ids.RESULT_PERMALINK}") == []
    assert len(dash_duo.find_elements(f"#{ids.LATEST_TABLE} tbody tr")) == 1  # the history keeps the analysis
    # a power above the limit is refused with the limit itself
    kw = dash_duo.find_element(f"#{ids.TRANSFER_KW}")
    kw.clear()
    kw.send_keys("5000")
    _click(dash_duo, f"#{ids.ANALYZE_BUTTON}")
    dash_duo.wait_for_contains_text(f"#{ids.ANALYZE_ALERT}", "500", timeout=TIMEOUT)
    assert "at most 500" in dash_duo.find_element(f"#{ids.ANALYZE_ALERT}").text
    assert dash_duo.get_logs() == []


def test_dash010_phases_the_model_cannot_tell_apart_are_shown_uncertain(dash_duo, settings, tmp_path):
    """An AG fault seen with the zero sequence removed is (2, -1, -1)/3, exactly what an AB fault
    shows through a Yd-compensated relay: the verdict says the phases are uncertain and lists them.
    Stating the relay connection on the page then reads the same window through its own head."""
    from selenium.webdriver.support.select import Select

    from services.inference import get_predictor
    from services.labels import LABEL_TO_ID
    from services.simulation import generate_dataset

    ag = LABEL_TO_ID["internal_power_transformer_internal_faults_Class1"]
    windows, _, _ = generate_dataset(8, seed=77, classes=[ag], relay_view="zero_sequence_removed")
    predictor = get_predictor(settings.artifacts_dir)
    predictions = predictor.predict_batch(windows, explain=False)
    stated = predictor.predict_batch(windows, explain=False, relay_connection="zero_sequence_removed")
    chosen = next((i for i, (p, q) in enumerate(zip(predictions, stated, strict=True))
                   if p.levels["phases"] and p.levels["phases"]["uncertain"]
                   and q.levels["phases"] == {**q.levels["phases"], "value": "A", "uncertain": False}), None)
    assert chosen is not None, "no window both ambiguous unstated and read as phase A once the connection is stated"
    upload = tmp_path / "zero_sequence_removed_ag.npy"
    np.save(upload, windows[chosen])
    _analyse_upload(dash_duo, settings, upload)
    dash_duo.wait_for_contains_text(f"#{ids.RESULT_LEVELS}", "phases uncertain", timeout=TIMEOUT)
    candidates = predictions[chosen].levels["phases"]["candidates"]
    shown = dash_duo.find_element(f"#{ids.RESULT_LEVELS}").text
    assert all(f"{'-'.join(group)} {round(100 * p)}%" in shown for group, p in candidates if group.isupper())
    assert "phases uncertain (" in dash_duo.find_element(f"#{ids.RESULT_HEADLINE}").text
    assert dash_duo.find_elements(f"#{ids.RESULT_CONNECTION}") == []
    Select(dash_duo.find_element(f"#{ids.RELAY_CONNECTION}")).select_by_value("zero_sequence_removed")
    _click(dash_duo, f"#{ids.ANALYZE_BUTTON}")
    dash_duo.wait_for_contains_text(f"#{ids.RESULT_CONNECTION}", "Zero sequence removed", timeout=TIMEOUT)
    _wait_analysis_done(dash_duo, rows=2)
    assert "phases uncertain" not in dash_duo.find_element(f"#{ids.RESULT_LEVELS}").text
    assert "phases A" in dash_duo.find_element(f"#{ids.RESULT_HEADLINE}").text
    assert dash_duo.get_logs() == []
