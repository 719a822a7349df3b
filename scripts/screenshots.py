"""Take the README screenshots of every page from headless Chromium.

    python scripts/screenshots.py [--artifacts artifacts] [--out docs/screenshots]

Serves the app on a temporary SQLite history, records a handful of analyses of the bundled samples
(so History and Network show data), runs one analysis through the Analyze page's button as a user
would, and writes analyze.png, history.png, model.png and network.png at desktop width (1440 px),
and analyze-phone.png: the Analyze page on a 390 px phone once the result has scrolled into view.
Chromium runs with the same flags as the browser tests (tests/conftest.py); the viewport is set
exactly with the DevTools protocol (a window size would include the browser's frame).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from selenium import webdriver  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.support import expected_conditions  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402
from werkzeug.serving import make_server  # noqa: E402

from app import create_app  # noqa: E402
from app.settings import Settings  # noqa: E402
from components import ids  # noqa: E402
from tests.conftest import pytest_setup_options  # noqa: E402

WIDTH = 1440
PHONE = (390, 844)
#: (sample true-label prefix, sender, receiver, kW) of the analyses recorded before the screenshots
SEED_ANALYSES = (
    ("transient_magnetising_inrush", "prosumer-b", "ev-hub", 6.0),
    ("internal_ispar_series_transformer_internal_faults_Class4", "micro-industry", "local-business", 20.0),
    ("transient_capacitor_switching", "community-battery", "consumer-home", 8.0),
    ("internal_ispar_exciting_transformer_internal_faults_tt", "prosumer-a", "ev-hub", 4.0),
    ("transient_external_fault_with_CT_saturation", "prosumer-b", "local-business", 10.0),
)


def start_server(settings: Settings, port: int):
    """The app on a background werkzeug server; returns (app, server)."""
    app = create_app(settings=settings)
    server = make_server("127.0.0.1", port, app.server, threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return app, server


def seed_history(app) -> None:
    """Record a few analyses so History has rows and Network a current transfer."""
    context = app.server.extensions["grid_event_monitor"]
    samples = context.samples()
    for prefix, sender, receiver, kw in SEED_ANALYSES:
        match = next((s for s in samples if str(s.get("true_label") or "").startswith(prefix)), None)
        if match:
            context.analyze_sample(match["filename"], sender=sender, receiver=receiver, transfer_kw=kw)


def set_viewport(driver, width: int, height: int) -> None:
    driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride",
                           {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": width < 600})


def browser() -> webdriver.Chrome:
    options = pytest_setup_options()
    options.add_argument("--headless=new")
    options.add_argument("--hide-scrollbars")
    driver = webdriver.Chrome(options=options)
    set_viewport(driver, WIDTH, 1000)
    return driver


def wait_for(driver, selector: str, timeout: float = 30.0):
    return WebDriverWait(driver, timeout).until(
        expected_conditions.visibility_of_element_located((By.CSS_SELECTOR, selector)))


def full_page_shot(driver, path: Path, settle_s: float = 1.0) -> None:
    """Resize the window to the page's height, let charts re-lay out, then save a PNG."""
    height = driver.execute_script("return document.documentElement.scrollHeight")
    set_viewport(driver, WIDTH, min(max(900, int(height)), 3000))
    time.sleep(settle_s)
    driver.execute_script("window.scrollTo(0, 0)")
    driver.save_screenshot(str(path))
    set_viewport(driver, WIDTH, 1000)


def phone_shot(driver, base: str, path: Path) -> None:
    """The Analyze page on a phone: collapsed menu, one tap on Analyze, the result scrolled into view."""
    set_viewport(driver, *PHONE)
    driver.get(base + "/")
    button = wait_for(driver, f"#{ids.ANALYZE_BUTTON}")
    time.sleep(1.0)
    driver.execute_script("arguments[0].scrollIntoView({block: 'center', behavior: 'instant'});", button)
    button.click()
    wait_for(driver, f"#{ids.CONFIDENCE_VALUE}")
    time.sleep(2.0)  # the smooth scroll to the result
    driver.save_screenshot(str(path))
    set_viewport(driver, WIDTH, 1000)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--artifacts", type=Path, default=ROOT / "artifacts")
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "screenshots")
    parser.add_argument("--port", type=int, default=8765)
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(artifacts_dir=args.artifacts, database_url=f"sqlite:///{tmp}/history.db",
                            instance_dir=Path(tmp) / "instance")
        app, server = start_server(settings, args.port)
        seed_history(app)
        driver = browser()
        base = f"http://127.0.0.1:{args.port}"
        try:
            driver.get(base + "/")
            button = wait_for(driver, f"#{ids.ANALYZE_BUTTON}")
            time.sleep(1.0)
            button.click()
            wait_for(driver, f"#{ids.CONFIDENCE_VALUE}")
            full_page_shot(driver, args.out / "analyze.png", settle_s=2.0)

            driver.get(base + "/history")
            wait_for(driver, f"#{ids.HISTORY_GRID} .ag-row")
            full_page_shot(driver, args.out / "history.png")

            driver.get(base + "/model")
            wait_for(driver, f"#{ids.MODEL_CONFUSION} .main-svg")
            full_page_shot(driver, args.out / "model.png")

            driver.get(base + "/network")
            wait_for(driver, f"#{ids.NETWORK_GRAPH} canvas")
            full_page_shot(driver, args.out / "network.png", settle_s=2.0)

            phone_shot(driver, base, args.out / "analyze-phone.png")
        finally:
            driver.quit()
            server.shutdown()
    for name in ("analyze", "history", "model", "network", "analyze-phone"):
        print(f"wrote {args.out / (name + '.png')}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
