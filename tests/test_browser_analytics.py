"""The signal-analytics card in headless Chromium: an analysis's page shows it at the event's
window, moving the window slider changes the phasors and moves the cursor on the waveform, the
Analyze page shows the card once a result is there.

Run with `pytest tests/test_browser_analytics.py --headless`.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support.ui import WebDriverWait

from app import create_app
from app.settings import Settings
from components import ids

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parents[1]
ARTIFACTS = Path(os.environ.get("GEM_ARTIFACTS_DIR") or ROOT / "artifacts")
TIMEOUT = 20
PREFIX = ids.ANALYSIS_ANALYTICS


@pytest.fixture
def app(tmp_path):
    if not (ARTIFACTS / "best_model.pth").is_file():
        pytest.fail(f"no trained model in {ARTIFACTS}: the shipped artifacts are part of the repository")
    return create_app(settings=Settings(artifacts_dir=ARTIFACTS, database_url=f"sqlite:///{tmp_path / 'history.db'}",
                                        instance_dir=tmp_path / "instance"))


def _until(dash_duo, condition) -> None:
    WebDriverWait(dash_duo.driver, TIMEOUT).until(lambda _driver: condition())


def _disabled(element) -> bool:
    """A button, or a link styled as one, that is disabled."""
    return element.get_attribute("disabled") is not None or element.get_attribute("aria-disabled") == "true" \
        or "disabled" in (element.get_attribute("class") or "").split()


def _plot(dash_duo, component_id: str, expression: str):
    """Evaluate `expression` on the Plotly graph div of dcc.Graph `component_id` (bound as `gd`)."""
    return dash_duo.driver.execute_script(
        f"const gd = document.querySelector('#{component_id} .js-plotly-plot'); return gd ? ({expression}) : null;")


def test_an001_phasor_cursor_moves_phasors_and_waveform_cursor(dash_duo, app):
    context = app.server.extensions["grid_event_monitor"]
    sample = next(s for s in context.samples() if str(s.get("true_label")).startswith("internal_power_transformer"))
    result = context.analyze_sample(sample["filename"], sender="prosumer-a", receiver="consumer-home",
                                    transfer_kw=5.0)
    dash_duo.start_server(app)
    dash_duo.driver.get(f"{dash_duo.server_url}/analysis/{result.analysis_id}")
    dash_duo.wait_for_element(f"#{PREFIX}", timeout=TIMEOUT)
    phasors = ids.analytics_id(PREFIX, ids.ANALYTICS_PHASORS)
    dash_duo.wait_for_element(f"#{phasors} .js-plotly-plot", timeout=TIMEOUT)
    table = dash_duo.find_element(f"#{ids.analytics_id(PREFIX, ids.ANALYTICS_TABLE)}").text
    assert "Peak" in table and "kA" in table and "2nd harmonic" in table and "I2/I1" in table
    before = _plot(dash_duo, phasors, "gd.data.map(trace => trace.r[1])")
    title_before = _plot(dash_duo, phasors, "gd.layout.title.text")
    cursor_before = _plot(dash_duo, ids.ANALYSIS_WAVEFORM, "gd.layout.shapes[gd.layout.shapes.length - 1].x0")
    assert len(before) == 3 and cursor_before is not None

    slider = dash_duo.wait_for_element(f"#{ids.analytics_id(PREFIX, ids.ANALYTICS_SLIDER)}", timeout=TIMEOUT)
    dash_duo.driver.execute_script("arguments[0].scrollIntoView({block: 'center', behavior: 'instant'}); "
                                   "arguments[0].focus();", slider)
    for _ in range(12):  # by keyboard, 12 windows of 1 ms later
        slider.send_keys(Keys.ARROW_RIGHT)
    text_id = ids.analytics_id(PREFIX, ids.ANALYTICS_CYCLE_TEXT)
    _until(dash_duo, lambda: _plot(dash_duo, phasors, "gd.layout.title.text") != title_before)
    _until(dash_duo, lambda: _plot(dash_duo, ids.ANALYSIS_WAVEFORM, "gd.layout.shapes[gd.layout.shapes.length - 1].x0")
           == cursor_before + 12.0)
    after = _plot(dash_duo, phasors, "gd.data.map(trace => trace.r[1])")
    assert after != before  # the phasors of another window
    start = cursor_before + 12.0
    assert f"{start:.1f}" in dash_duo.find_element(f"#{text_id}").text
    assert f"{start:.1f}" in _plot(dash_duo, phasors, "gd.layout.title.text")
    # the other panels follow the same window
    spectrum = ids.analytics_id(PREFIX, ids.ANALYTICS_SPECTRUM)
    assert f"{start:.1f}" in _plot(dash_duo, spectrum, "gd.layout.title.text")
    # Plotly's own PNG export of the four figures runs under the CSP without a console error
    png = dash_duo.find_element(f"#{ids.analytics_id(PREFIX, ids.ANALYTICS_PNG_BUTTON)}")
    dash_duo.driver.execute_script("arguments[0].click();", png)
    dash_duo.driver.execute_script("window.__png = null; Plotly.toImage(document.querySelector("
                                   f"'#{phasors} .js-plotly-plot'), {{format: 'png'}}).then(url => window.__png = url);")
    _until(dash_duo, lambda: (dash_duo.driver.execute_script("return window.__png;") or "").startswith(
        "data:image/png;base64,"))
    assert dash_duo.get_logs() == []


def test_an002_analyze_page_shows_the_card_after_an_analysis(dash_duo, app):
    dash_duo.start_server(app)
    dash_duo.wait_for_element(f"#{ids.ANALYZE_PAGE}")
    card = dash_duo.find_element(f"#{ids.ANALYZE_ANALYTICS}")
    assert not card.is_displayed()  # nothing analysed yet
    button = dash_duo.wait_for_element(f"#{ids.ANALYZE_BUTTON}", timeout=TIMEOUT)
    dash_duo.driver.execute_script("arguments[0].scrollIntoView({block: 'center', behavior: 'instant'});", button)
    button.click()
    dash_duo.wait_for_element(f"#{ids.CONFIDENCE_VALUE}", timeout=TIMEOUT)
    _until(dash_duo, lambda: dash_duo.find_element(f"#{ids.ANALYZE_ANALYTICS}").is_displayed())
    table = ids.analytics_id(ids.ANALYZE_ANALYTICS, ids.ANALYTICS_TABLE)
    dash_duo.wait_for_contains_text(f"#{table}", "Peak", timeout=TIMEOUT)
    phasors = ids.analytics_id(ids.ANALYZE_ANALYTICS, ids.ANALYTICS_PHASORS)
    _until(dash_duo, lambda: _plot(dash_duo, phasors, "gd.data.length") == 3)
    # the cursor band is on the waveform the big callback drew
    _until(dash_duo, lambda: _plot(dash_duo, ids.WAVEFORM,
                                   "gd.layout.shapes.some(s => s.type === 'rect' && s.fillcolor === '#0d6efd')"))
    # another transfer empties the result (no waveform graph any more): the card hides, nothing errs
    from selenium.webdriver.support.ui import Select

    Select(dash_duo.find_element(f"#{ids.RECEIVER}")).select_by_value("ev-hub")
    _until(dash_duo, lambda: not dash_duo.find_element(f"#{ids.ANALYZE_ANALYTICS}").is_displayed())
    assert dash_duo.find_elements(f"#{ids.WAVEFORM}") == []
    assert dash_duo.get_logs() == []


def test_an003_compare_two_events_from_the_history_and_from_an_analysis(dash_duo, app):
    context = app.server.extensions["grid_event_monitor"]
    samples = context.samples()
    fault = next(s for s in samples if str(s.get("true_label")).startswith("internal_power_transformer"))
    inrush = next(s for s in samples if s.get("true_label") == "transient_magnetising_inrush")
    first = context.analyze_sample(fault["filename"], sender="prosumer-a", receiver="consumer-home", transfer_kw=5.0)
    second = context.analyze_sample(inrush["filename"], sender="prosumer-b", receiver="ev-hub", transfer_kw=3.0)
    dash_duo.start_server(app)
    dash_duo.driver.get(f"{dash_duo.server_url}/history")
    dash_duo.wait_for_element(f"#{ids.HISTORY_GRID} .ag-row", timeout=TIMEOUT)
    button = dash_duo.find_element(f"#{ids.HISTORY_COMPARE}")
    assert _disabled(button)  # nothing ticked yet
    for checkbox in dash_duo.find_elements(f"#{ids.HISTORY_GRID} .ag-row .ag-checkbox-input")[:2]:
        dash_duo.driver.execute_script("arguments[0].scrollIntoView({block: 'center', behavior: 'instant'});",
                                       checkbox)
        checkbox.click()
    dash_duo.wait_for_text_to_equal(f"#{ids.HISTORY_COMPARE}", "Compare 2 selected", timeout=TIMEOUT)
    _until(dash_duo, lambda: not _disabled(dash_duo.find_element(f"#{ids.HISTORY_COMPARE}")))
    dash_duo.driver.execute_script("arguments[0].click();", dash_duo.find_element(f"#{ids.HISTORY_COMPARE}"))
    dash_duo.wait_for_element(f"#{ids.COMPARE_WAVEFORMS} .js-plotly-plot", timeout=TIMEOUT)
    assert "/compare?ids=" in dash_duo.driver.current_url  # a permanent link
    assert sorted(dash_duo.driver.current_url.split("ids=")[1].split(",")) == sorted(
        [str(first.analysis_id), str(second.analysis_id)])
    assert _plot(dash_duo, ids.COMPARE_WAVEFORMS, "gd.data.length") == 6  # 2 analyses x 3 phases
    # aligned on inception: each trace's time axis starts before 0 by that event's inception
    assert _plot(dash_duo, ids.COMPARE_WAVEFORMS, "gd.data.every(trace => trace.x[0] <= 0)")
    rows = dash_duo.find_elements(f"#{ids.COMPARE_TABLE} tbody tr")
    assert len(rows) == 2
    table = dash_duo.find_element(f"#{ids.COMPARE_TABLE}").text
    assert "Magnetising inrush" in table and f"{100 * second.confidence:.1f} %" in table

    # "compare with" on an analysis page gives the same permanent link
    dash_duo.driver.get(f"{dash_duo.server_url}/analysis/{first.analysis_id}")
    field = dash_duo.wait_for_element(f"#{ids.ANALYSIS_COMPARE_WITH}", timeout=TIMEOUT)
    field.send_keys(str(second.analysis_id))
    wanted = f"/compare?ids={first.analysis_id},{second.analysis_id}"
    _until(dash_duo, lambda: (dash_duo.find_element(f"#{ids.ANALYSIS_COMPARE_LINK}").get_attribute("href") or "")
           .endswith(wanted))
    assert dash_duo.get_logs() == []
