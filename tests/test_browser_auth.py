"""Login in a real browser (issue 14): the login page, a session's callbacks carrying the CSRF token
Dash's renderer sends by itself, the analysis recorded under the user's name, and signing out."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from app import create_app
from app.auth import ACCOUNTS_KEY
from app.settings import Settings
from components import ids
from services.analysis import EXTENSION_KEY

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parents[1]
ARTIFACTS = Path(os.environ.get("GEM_ARTIFACTS_DIR") or ROOT / "artifacts")
TIMEOUT = 20
PASSWORD = "correct horse battery"


def _click(dash_duo, selector: str) -> None:
    element = dash_duo.wait_for_element(selector, timeout=TIMEOUT)
    dash_duo.driver.execute_script("arguments[0].scrollIntoView({block: 'center', behavior: 'instant'});", element)
    element.click()


def _app_with_user(tmp_path: Path, name: str, role: str):
    """A dashboard that requires login, on its own SQLite history, with one account."""
    settings = Settings(artifacts_dir=ARTIFACTS, instance_dir=tmp_path / "instance", auth="login",
                        database_url=f"sqlite:///{tmp_path / 'history.db'}")
    app = create_app(settings=settings)
    app.server.extensions[ACCOUNTS_KEY].add_user(name, role, PASSWORD)
    return app


def _sign_in(dash_duo, name: str) -> None:
    """Fill in and send the login form the browser is on."""
    dash_duo.find_element("#name").send_keys(name)
    dash_duo.find_element("#password").send_keys(PASSWORD)
    dash_duo.find_element("#login-submit").click()


def test_auth001_an_operator_signs_in_analyses_and_signs_out(dash_duo, tmp_path):
    app = _app_with_user(tmp_path, "otto", "operator")
    dash_duo.start_server(app, navigate=False)
    dash_duo.driver.get(f"{dash_duo.server.url}/history")  # anonymous: sent to the login page
    dash_duo.wait_for_element("#login-submit", timeout=TIMEOUT)
    assert "/login?next=/history" in dash_duo.driver.current_url
    _sign_in(dash_duo, "otto")
    dash_duo.wait_for_element(f"#{ids.HISTORY_TOTAL}", timeout=TIMEOUT)  # back where the visitor was going
    dash_duo.wait_for_contains_text(f"#{ids.NAV_SIGN_OUT}", "otto", timeout=TIMEOUT)

    _click(dash_duo, f"#{ids.NAV_LINK_PREFIX}analyze")
    _click(dash_duo, f"#{ids.ANALYZE_BUTTON}")  # a callback request: refused without the CSRF header
    dash_duo.wait_for_element(f"#{ids.CONFIDENCE_VALUE}", timeout=TIMEOUT)
    dash_duo.wait_for_text_to_equal(f"#{ids.LATEST_TABLE} tbody tr:first-child td:first-child", "#1", timeout=TIMEOUT)
    assert app.server.extensions[EXTENSION_KEY].store.get(1, include_waveform=False)["user"] == "otto"

    _click(dash_duo, f"#{ids.NAV_SIGN_OUT}")
    dash_duo.wait_for_element("#logout-submit", timeout=TIMEOUT).click()
    dash_duo.wait_for_element("#login-submit", timeout=TIMEOUT)
    dash_duo.driver.get(f"{dash_duo.server.url}/live")
    dash_duo.wait_for_element("#login-submit", timeout=TIMEOUT)  # the session is over
    assert dash_duo.get_logs() == []
    app.server.extensions[EXTENSION_KEY].store.dispose()


def test_auth002_a_viewer_reads_the_pages_without_the_controls_that_write(dash_duo, tmp_path):
    app = _app_with_user(tmp_path, "vera", "viewer")
    dash_duo.start_server(app, navigate=False)
    dash_duo.driver.get(f"{dash_duo.server.url}/")
    dash_duo.wait_for_element("#login-submit", timeout=TIMEOUT)
    _sign_in(dash_duo, "vera")
    dash_duo.wait_for_element(f"#{ids.ANALYZE_PAGE}", timeout=TIMEOUT)
    dash_duo.wait_for_contains_text(f"#{ids.NAV_SIGN_OUT}", "vera", timeout=TIMEOUT)
    assert not dash_duo.find_element(f"#{ids.ANALYZE_BUTTON}").is_displayed()
    _click(dash_duo, f"#{ids.NAV_LINK_PREFIX}history")
    dash_duo.wait_for_contains_text(f"#{ids.HISTORY_TOTAL}", "0 analyses", timeout=TIMEOUT)
    assert dash_duo.get_logs() == []
    app.server.extensions[EXTENSION_KEY].store.dispose()
