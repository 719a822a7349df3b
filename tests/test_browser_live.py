"""The Live page in headless Chromium (issue 13 item 3): records dropped into the watched folder by
the demo feed appear without reloading, an alarm appears in the list and in the navbar's count on
every page, and Acknowledge records who and when and takes it off the count.

Run with `pytest tests/test_browser_live.py --headless`. The app analyses with the shipped model on
worker threads (the embedded default), on a temp SQLite history and a temp watched folder.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from dash.testing.wait import until
from selenium.common.exceptions import StaleElementReferenceException
from selenium.webdriver.common.by import By

from app import create_app
from app.jobs import JOBS_KEY
from app.settings import Settings
from components import ids
from services.feed import Feed, write_record
from services.labels import EQUIPMENT_NAMES, LABELS
from tests.test_browser_a11y import WIDTHS, axe_violations, describe, serious, set_viewport

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parents[1]
ARTIFACTS = Path(os.environ.get("GEM_ARTIFACTS_DIR") or ROOT / "artifacts")
TIMEOUT = 30
#: a power-transformer ABG fault (critical) and a capacitor switching (a transient, not alarmed on)
FAULT_CLASS = LABELS.index("internal_power_transformer_internal_faults_Class4")
TRANSIENT_CLASS = LABELS.index("transient_capacitor_switching")


@pytest.fixture
def live_app(tmp_path):
    if not (ARTIFACTS / "best_model.pth").is_file():
        pytest.fail(f"no trained model in {ARTIFACTS}: the shipped artifacts are part of the repository")
    settings = Settings(artifacts_dir=ARTIFACTS, database_url=f"sqlite:///{tmp_path / 'history.db'}",
                        instance_dir=tmp_path / "instance", watch_dir=tmp_path / "drop", watch_poll_s=0.2,
                        watch_stable_s=0.2, job_threads=1)
    app = create_app(url_base_pathname="/grid/", settings=settings)
    yield app, settings.watch_dir
    jobs = app.server.extensions[JOBS_KEY]
    jobs.stop(close_engine=True)


def _text(dash_duo, selector: str) -> str | None:
    try:
        found = dash_duo.find_elements(selector)
        return found[0].text if found else None
    except StaleElementReferenceException:
        return None


def _rows(dash_duo) -> list[str]:
    try:
        return [row.text for row in dash_duo.find_elements("#live-events tr.live-row")]
    except StaleElementReferenceException:
        return []


def test_live001_feed_records_appear_alarm_is_counted_and_acknowledged(dash_duo, live_app):
    app, drop = live_app
    alarms = app.server.extensions[JOBS_KEY].jobs.alarms
    dash_duo.start_server(app, navigate=False)
    base = dash_duo.server.url.rstrip("/") + "/grid"
    dash_duo.driver.get(base + "/live")
    dash_duo.wait_for_text_to_equal(f"#{ids.LIVE_EMPTY}", "Waiting for records: nothing has arrived yet.",
                                    timeout=TIMEOUT)
    dash_duo.wait_for_text_to_equal(f"#{ids.NAV_ALARM_COUNT}", "0", timeout=TIMEOUT)
    dash_duo.driver.execute_script("window.liveMarker = 'not reloaded';")

    # a transient first (an event, no alarm), then a fault (an event and an alarm)
    transient = Feed(seed=11, classes=[TRANSIENT_CLASS]).next_record()
    write_record(drop, transient)
    until(lambda: any(transient.stem in row for row in _rows(dash_duo)), timeout=TIMEOUT,
          msg=f"the transient never showed: {_rows(dash_duo)}")
    fault = Feed(seed=12, classes=[FAULT_CLASS]).next_record()
    write_record(drop, fault)

    def fault_first_and_analysed() -> bool:
        rows = _rows(dash_duo)  # one reading: the table may be redrawn between two
        return len(rows) == 2 and fault.stem in rows[0] and "Analysing" not in rows[0] and "Queued" not in rows[0]

    until(fault_first_and_analysed, timeout=TIMEOUT, msg=f"the fault never showed first, analysed: {_rows(dash_duo)}")
    assert dash_duo.driver.execute_script("return window.liveMarker;") == "not reloaded"

    # the newest row links to its analysis under the app's prefix, with its unit and transfer
    newest = dash_duo.find_elements("#live-events tr.live-row")[0]
    link = newest.find_element(By.CSS_SELECTOR, "a").get_attribute("href")
    fault_alarm = next(alarm for alarm in alarms.recent() if fault.stem in (alarm["sample_name"] or ""))
    assert link.endswith(f"/grid/analysis/{fault_alarm['analysis_id']}")
    assert EQUIPMENT_NAMES[fault_alarm["equipment"]] in newest.text
    assert fault_alarm["severity"].capitalize() in newest.text and "Prosumer" in newest.text

    # the alarm is listed and counted (the transient may have raised none; the store says how many)
    open_count = alarms.unacknowledged_count()
    assert open_count >= 1
    item = f'#live-alarms li[id*="\\"alarm\\":{fault_alarm["id"]}"]'
    dash_duo.wait_for_element(item, timeout=TIMEOUT)
    dash_duo.wait_for_text_to_equal(f"#{ids.NAV_ALARM_COUNT}", str(open_count), timeout=TIMEOUT)

    # the count is in the navbar of every page
    dash_duo.find_element(f"#{ids.NAV_LINK_PREFIX}history").click()
    dash_duo.wait_for_element(f"#{ids.HISTORY_PAGE}", timeout=TIMEOUT)
    dash_duo.wait_for_text_to_equal(f"#{ids.NAV_ALARM_COUNT}", str(open_count), timeout=TIMEOUT)
    dash_duo.find_element(f"#{ids.NAV_ALARMS}").click()
    dash_duo.wait_for_element(item, timeout=TIMEOUT)

    # acknowledge as a named operator: who and when shown, one fewer on the count
    operator = dash_duo.find_element(f"#{ids.LIVE_OPERATOR}")
    operator.clear()
    operator.send_keys("Ana Ops\n")
    dash_duo.find_element(f"{item} button").click()
    until(lambda: (_text(dash_duo, item) or "").find("Acknowledged by Ana Ops at") >= 0, timeout=TIMEOUT,
          msg=f"no acknowledgement shown: {_text(dash_duo, item)}")
    dash_duo.wait_for_text_to_equal(f"#{ids.NAV_ALARM_COUNT}", str(open_count - 1), timeout=TIMEOUT)
    stored = alarms.get(fault_alarm["id"])
    assert stored["acknowledged_by"] == "Ana Ops" and stored["acknowledged_at"] is not None
    assert stored["acknowledged_at"][:16].replace("T", " ") in _text(dash_duo, item)

    # readable by everyone: no serious axe-core violation, and no sideways scrolling on a phone
    for width, height in (WIDTHS["desktop"], WIDTHS["phone"]):
        set_viewport(dash_duo.driver, width, height)
        violations = serious(axe_violations(dash_duo.driver))
        assert not violations, describe(violations)
        assert dash_duo.driver.execute_script("return document.documentElement.scrollWidth;") <= width

    # an unreadable record is listed as rejected, with its reason
    (drop / "broken.npy").write_bytes(b"not a numpy file")
    until(lambda: any("broken.npy" in row and "Rejected" in row for row in _rows(dash_duo)), timeout=TIMEOUT,
          msg=f"the broken record never showed as rejected: {_rows(dash_duo)}")
    assert dash_duo.get_logs() == []
