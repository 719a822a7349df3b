"""Screenshots of the signal-analytics panels (issue 15) for the README, from headless Chromium.

    python scripts/screenshots_analytics.py [--artifacts artifacts] [--out docs/screenshots]

Records analyses of two bundled samples (a power-transformer internal fault and a magnetising
inrush) on a temporary SQLite history, opens their `/analysis/<id>` pages at desktop width and
saves the waveform with its cursor plus the analytics card: analytics-fault.png, analytics-inrush.png;
then the comparison of the two (compare.png).
Same browser and server helpers as scripts/screenshots.py.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from app.settings import Settings  # noqa: E402
from components import ids  # noqa: E402
from scripts.screenshots import WIDTH, browser, set_viewport, start_server, wait_for  # noqa: E402

#: (file name, sample true-label prefix)
SHOTS = (("analytics-fault.png", "internal_power_transformer_internal_faults_Class4"),
         ("analytics-inrush.png", "transient_magnetising_inrush"))


def shot_of_analysis(driver, base: str, analysis_id: int, path: Path) -> None:
    """The analysis page scrolled to its waveform, tall enough for the waveform and the card."""
    driver.get(f"{base}/analysis/{analysis_id}")
    wait_for(driver, f"#{ids.analytics_id(ids.ANALYSIS_ANALYTICS, ids.ANALYTICS_PHASORS)} .main-svg")
    set_viewport(driver, WIDTH, 1900)
    time.sleep(2.0)
    driver.execute_script("document.getElementById(arguments[0]).scrollIntoView({block: 'start', behavior: 'instant'});"
                          "window.scrollBy(0, -8);", ids.ANALYSIS_HEADER)
    time.sleep(0.5)
    driver.save_screenshot(str(path))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--artifacts", type=Path, default=ROOT / "artifacts")
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "screenshots")
    parser.add_argument("--port", type=int, default=8766)
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(artifacts_dir=args.artifacts, database_url=f"sqlite:///{tmp}/history.db",
                            instance_dir=Path(tmp) / "instance")
        app, server = start_server(settings, args.port)
        context = app.server.extensions["grid_event_monitor"]
        samples = context.samples()
        driver = browser()
        base = f"http://127.0.0.1:{args.port}"
        try:
            numbers = []
            for name, prefix in SHOTS:
                sample = next(s for s in samples if str(s.get("true_label") or "").startswith(prefix))
                analysis = context.analyze_sample(sample["filename"], sender="prosumer-a", receiver="consumer-home",
                                                  transfer_kw=5.0)
                numbers.append(analysis.analysis_id)
                shot_of_analysis(driver, base, analysis.analysis_id, args.out / name)
                print(f"wrote {args.out / name}")
            driver.get(f"{base}/compare?ids={','.join(map(str, numbers))}")
            wait_for(driver, f"#{ids.COMPARE_WAVEFORMS} .main-svg")
            set_viewport(driver, WIDTH, 1050)
            time.sleep(2.0)
            driver.save_screenshot(str(args.out / "compare.png"))
            print(f"wrote {args.out / 'compare.png'}")
        finally:
            driver.quit()
            server.shutdown()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
