"""COMTRADE uploads on the Analyze page in headless Chromium (dash_duo): a dropped .cfg + .dat pair
is analysed at once and the page says which channels and window it used; a record with only winding
currents is refused until the user names the channels.

Run with `python -m pytest --headless tests/test_browser_comtrade.py`. The records are written by
the small COMTRADE writer of tests/test_comtrade_ingest.py from simulator windows.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from app import create_app
from app.settings import Settings
from components import ids
from tests.test_comtrade_ingest import (
    MARGIN,
    PHASE_CHANNELS,
    _record_10khz,
    _source,
    _trigger_for_window_at,
    _winding_record,
    write_comtrade,
)

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parents[1]
ARTIFACTS = Path(os.environ.get("GEM_ARTIFACTS_DIR") or ROOT / "artifacts")
TIMEOUT = 20


@pytest.fixture
def settings(tmp_path):
    if not (ARTIFACTS / "best_model.pth").is_file():
        pytest.fail(f"no trained model in {ARTIFACTS}: the shipped artifacts are part of the repository")
    return Settings(artifacts_dir=ARTIFACTS, database_url=f"sqlite:///{tmp_path / 'history.db'}",
                    instance_dir=tmp_path / "instance")


def _click(dash_duo, selector: str) -> None:
    element = dash_duo.wait_for_element(selector, timeout=TIMEOUT)
    dash_duo.driver.execute_script("arguments[0].scrollIntoView({block: 'center', behavior: 'instant'});", element)
    element.click()


def _open_upload_tab(dash_duo) -> None:
    dash_duo.wait_for_element(f"#{ids.EVENT_SOURCE_TABS} .nav-link", timeout=TIMEOUT)
    tab = next(t for t in dash_duo.find_elements(f"#{ids.EVENT_SOURCE_TABS} .nav-link") if t.text == "Upload")
    dash_duo.driver.execute_script("arguments[0].scrollIntoView({block: 'center', behavior: 'instant'});", tab)
    tab.click()


def _drop(dash_duo, *paths: Path) -> None:
    """Choose several files at once in the upload zone's file input (multiple=True)."""
    file_input = dash_duo.find_element(f"#{ids.UPLOAD} input[type=file]")
    file_input.send_keys("\n".join(str(path) for path in paths))


def _wait_prediction(dash_duo, rows: int) -> None:
    dash_duo.wait_for_element(f"#{ids.CONFIDENCE_VALUE}", timeout=TIMEOUT)
    dash_duo.wait_for_text_to_equal(f"#{ids.LATEST_TABLE} tbody tr:first-child td:first-child", f"#{rows}",
                                    timeout=TIMEOUT)


def _write_pair(folder: Path, cfg: bytes, dat: bytes) -> tuple[Path, Path]:
    cfg_path, dat_path = folder / "fault.cfg", folder / "fault.dat"
    cfg_path.write_bytes(cfg)
    dat_path.write_bytes(dat)
    return cfg_path, dat_path


def _drop_on_a_fresh_page(dash_duo, settings, cfg_path, dat_path):
    """Start the app, open the Upload tab and drop the record's two files; returns the app."""
    app = create_app(settings=settings)
    dash_duo.start_server(app)
    dash_duo.wait_for_element(f"#{ids.ANALYZE_PAGE}", timeout=TIMEOUT)
    _open_upload_tab(dash_duo)
    _drop(dash_duo, cfg_path, dat_path)
    return app


def test_cmtr001_dropped_cfg_and_dat_pair_is_analysed_and_described(dash_duo, settings, tmp_path):
    record = _record_10khz(_source(), 30.0)
    cfg, dat, _ = write_comtrade(record, PHASE_CHANNELS, fmt="BINARY", trigger_ms=_trigger_for_window_at(MARGIN))
    _drop_on_a_fresh_page(dash_duo, settings, *_write_pair(tmp_path, cfg, dat))
    _wait_prediction(dash_duo, rows=1)
    dash_duo.wait_for_contains_text(f"#{ids.UPLOAD_STATUS}", "Loaded fault.cfg + fault.dat", timeout=TIMEOUT)
    status = dash_duo.find_element(f"#{ids.UPLOAD_STATUS}").text
    assert "IdA, IdB, IdC (A primary)" in status and "placed by the trigger at 25.0 ms" in status
    assert "Substation Nord / T1 87T relay" in status
    assert dash_duo.find_element(f"#{ids.CONFIDENCE_VALUE}").text.endswith("%")
    assert len(dash_duo.find_elements(f"#{ids.WAVEFORM} .scatterlayer .trace")) == 3
    assert dash_duo.find_element(f"#{ids.LATEST_TABLE} tbody tr td:last-child").text == "fault.cfg"
    assert dash_duo.find_elements(f"#{ids.ANALYZE_ALERT} .alert") == []
    assert dash_duo.get_logs() == []


def test_cmtr002_winding_record_is_refused_until_the_channels_are_named(dash_duo, settings, tmp_path):
    cfg, dat, _ = _winding_record()
    app = _drop_on_a_fresh_page(dash_duo, settings, *_write_pair(tmp_path, cfg, dat))
    dash_duo.wait_for_contains_text(f"#{ids.ANALYZE_ALERT}", "no differential-current channels", timeout=TIMEOUT)
    assert "IA_HV (#4)" in dash_duo.find_element(f"#{ids.ANALYZE_ALERT}").text
    assert dash_duo.find_elements(f"#{ids.CONFIDENCE_VALUE}") == []
    assert app.server.extensions["grid_event_monitor"].store.count() == 0
    channels = dash_duo.find_element(f"#{ids.UPLOAD_CHANNELS}")
    channels.send_keys("4, 5, 6\n")
    _click(dash_duo, f"#{ids.ANALYZE_BUTTON}")
    _wait_prediction(dash_duo, rows=1)
    dash_duo.wait_for_contains_text(f"#{ids.UPLOAD_STATUS}", "IA_HV, IB_HV, IC_HV", timeout=TIMEOUT)
    assert dash_duo.find_elements(f"#{ids.ANALYZE_ALERT} .alert") == []
    assert dash_duo.get_logs() == []
