"""The History page's AG Grid in headless Chromium: sorting and filtering from the column headers
reach `HistoryStore.query` (infinite row model) and the rows shown change accordingly.

Run with `pytest tests/test_browser_history.py --headless`. Each test builds its own app on a temp
SQLite database seeded directly through the store (no inference needed) and the shipped artifacts.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from dash.testing.wait import until
from selenium.common.exceptions import StaleElementReferenceException
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys

from app import create_app
from app.settings import Settings
from components import ids
from services.labels import LABELS, label_parts

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parents[1]
ARTIFACTS = Path(os.environ.get("GEM_ARTIFACTS_DIR") or ROOT / "artifacts")
TIMEOUT = 20
GRID = f"#{ids.HISTORY_GRID}"

#: (label id, confidence) of the seeded analyses, oldest first: ids 1..6, one minute apart
SEED = ((26, 0.91), (42, 0.55), (39, 0.99), (13, 0.72), (44, 0.63), (0, 0.85))
START = datetime(2026, 1, 5, 8, 0, tzinfo=UTC)


def _record(number: int, label_id: int, confidence: float) -> dict:
    label = LABELS[label_id]
    parts = label_parts(label)
    return {"source": "api", "sender": "prosumer-a", "receiver": "consumer-home", "transfer_kw": 5.0,
            "label": label, "label_id": label_id, "confidence": confidence, "category": parts.category,
            "equipment": parts.equipment, "kind": parts.kind, "severity": "minor", "transfer_status": "continues",
            "created_at": START + timedelta(minutes=number)}


def _ids_ordered_by(key, where=lambda item: True) -> list[str]:
    """The '#id' texts of the seeded analyses kept by where(...) and ordered by key(...), both
    called with (label, confidence, id)."""
    numbered = [(LABELS[label_id], confidence, number + 1) for number, (label_id, confidence) in enumerate(SEED)]
    return [f"#{number}" for *_, number in sorted(filter(where, numbered), key=key)]


@pytest.fixture
def history_app(tmp_path):
    """The app on a fresh database holding the SEED analyses."""
    if not (ARTIFACTS / "best_model.pth").is_file():
        pytest.fail(f"no trained model in {ARTIFACTS}: the shipped artifacts are part of the repository")
    settings = Settings(artifacts_dir=ARTIFACTS, database_url=f"sqlite:///{tmp_path / 'history.db'}",
                        instance_dir=tmp_path / "instance")
    app = create_app(settings=settings)
    store = app.server.extensions["grid_event_monitor"].store
    for number, (label_id, confidence) in enumerate(SEED):
        store.add(_record(number, label_id, confidence))
    return app


def _column(dash_duo, col_id: str) -> list[str] | None:
    """Texts of one column in the order the grid shows its rows (None while the grid re-renders)."""
    try:
        rows = dash_duo.find_elements(f"{GRID} .ag-center-cols-container .ag-row")
        rows.sort(key=lambda row: int(row.get_attribute("row-index")))
        return [row.find_element(By.CSS_SELECTOR, f'[col-id="{col_id}"]').text for row in rows]
    except (StaleElementReferenceException, TypeError, ValueError):
        return None


def _wait_rows(dash_duo, expected_ids: list[str]) -> None:
    """Wait until the grid shows exactly these analyses in this order."""
    until(lambda: _column(dash_duo, "id") == expected_ids, timeout=TIMEOUT,
          msg=f"grid rows {_column(dash_duo, 'id')} never became {expected_ids}")


def _open_history(dash_duo, app) -> None:
    dash_duo.start_server(app, navigate=False)
    dash_duo.driver.get(dash_duo.server.url.rstrip("/") + "/history")
    dash_duo.wait_for_contains_text(f"#{ids.HISTORY_TOTAL}", f"{len(SEED)} analyses", timeout=TIMEOUT)
    _wait_rows(dash_duo, _ids_ordered_by(lambda item: -item[2]))  # newest first by default


def _click_header(dash_duo, col_id: str) -> None:
    dash_duo.find_element(f'{GRID} .ag-header-cell[col-id="{col_id}"] .ag-header-cell-label').click()


def _text_filter(dash_duo, col_id: str, text: str) -> None:
    """Open the column's filter from its header, type into it (Contains, applied as one types), close it."""
    dash_duo.find_element(f'{GRID} .ag-header-cell[col-id="{col_id}"] .ag-header-cell-filter-button').click()
    field = dash_duo.wait_for_element(".ag-filter input.ag-text-field-input", timeout=TIMEOUT)
    field.send_keys(Keys.CONTROL, "a")
    field.send_keys(Keys.DELETE)
    if text:
        field.send_keys(text)
    field.send_keys(Keys.ESCAPE)
    until(lambda: not dash_duo.find_elements(".ag-filter"), timeout=TIMEOUT, msg="filter popup stayed open")


def test_hist001_header_clicks_sort_the_rows_on_the_server(dash_duo, history_app):
    _open_history(dash_duo, history_app)
    by_confidence = _ids_ordered_by(lambda item: item[1])

    _click_header(dash_duo, "confidence")
    _wait_rows(dash_duo, by_confidence)
    confidences = _column(dash_duo, "confidence")
    assert confidences == [f"{value:.1%}" for value in sorted(c for _, c in SEED)]

    _click_header(dash_duo, "confidence")
    _wait_rows(dash_duo, by_confidence[::-1])

    # the Event column sorts on the stored label string, not on the readable text it shows
    _click_header(dash_duo, "label")
    _wait_rows(dash_duo, _ids_ordered_by(lambda item: item[0]))
    assert dash_duo.get_logs() == []


def test_hist002_header_filter_narrows_the_rows_and_keeps_the_sort(dash_duo, history_app):
    _open_history(dash_duo, history_app)
    _click_header(dash_duo, "confidence")
    _wait_rows(dash_duo, _ids_ordered_by(lambda item: item[1]))

    _text_filter(dash_duo, "label", "inrush")
    _wait_rows(dash_duo, _ids_ordered_by(lambda item: item[1], where=lambda item: "inrush" in item[0]))
    assert _column(dash_duo, "label") == ["Magnetising inrush", "Sympathetic inrush"]
    dash_duo.wait_for_contains_text(f"#{ids.HISTORY_TOTAL}", "2 analyses", timeout=TIMEOUT)

    # clearing the filter brings every analysis back, still sorted by confidence
    _text_filter(dash_duo, "label", "")
    _wait_rows(dash_duo, _ids_ordered_by(lambda item: item[1]))
    dash_duo.wait_for_contains_text(f"#{ids.HISTORY_TOTAL}", f"{len(SEED)} analyses", timeout=TIMEOUT)
    assert dash_duo.get_logs() == []
