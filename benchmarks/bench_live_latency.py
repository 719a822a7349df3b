"""Drop-to-screen latency of the Live page (issue 13 item 3: "appearing within 2 s of the record landing").

The app runs with the embedded default (worker threads, SQLite, the shipped model) and a temp
watched folder; headless Chromium shows `/live`. The demo feed's records are written into the
folder one at a time (atomically, as `services.feed.write_record` does); a MutationObserver in
the page notes `Date.now()` when each record's row first shows its verdict. Per record it prints:

- drop -> analysed: from the last file's rename to the job's `finished_at` (folder scan,
  `GEM_WATCH_STABLE_S`, read, classify, impact, history row, alarm);
- analysed -> row: from there to the row drawn (the page's poll, `LIVE_POLL_MS`, and the drawing);
- drop -> row: the whole, what an operator sees.

    python benchmarks/bench_live_latency.py --records 20 --gap 2.5
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import threading
import time
from datetime import datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from app import create_app  # noqa: E402
from app.jobs import JOBS_KEY  # noqa: E402
from app.settings import Settings  # noqa: E402
from benchmarks.bench_dashboard import _driver, load_average, percentile  # noqa: E402
from components import ids  # noqa: E402
from components.live import LIVE_POLL_MS  # noqa: E402
from services.feed import Feed, write_record  # noqa: E402

#: notes Date.now() the first time a row naming a record shows a verdict (a link to its analysis)
_OBSERVE = """
window.rowSeenAt = {};
const note = () => {
  for (const row of document.querySelectorAll('#EVENTS tr.live-row')) {
    if (!row.querySelector('a')) { continue; }
    const cells = row.querySelectorAll('td');
    const name = cells[cells.length - 1].textContent.trim();
    if (!(name in window.rowSeenAt)) { window.rowSeenAt[name] = Date.now(); }
  }
};
new MutationObserver(note).observe(document.body, {childList: true, subtree: true, characterData: true});
note();
""".replace("EVENTS", ids.LIVE_EVENTS)


def line(name: str, ms: list[float]) -> str:
    return (f"{name:<22} n={len(ms):<3} p50 {statistics.median(ms):7.0f} ms  p95 {percentile(ms, 95):7.0f} ms  "
            f"max {max(ms):7.0f} ms")


def wait_seen(driver, name: str, timeout_s: float = 60.0) -> float:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        seen = driver.execute_script("return window.rowSeenAt[arguments[0]] || null;", name)
        if seen is not None:
            return float(seen)
        time.sleep(0.05)
    raise TimeoutError(f"{name} never appeared on the Live page")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--artifacts", type=Path, default=ROOT / "artifacts")
    parser.add_argument("--records", type=int, default=20)
    parser.add_argument("--gap", type=float, default=2.5, help="seconds between two drops")
    parser.add_argument("--port", type=int, default=8767)
    parser.add_argument("--stable-s", type=float, default=None, help="GEM_WATCH_STABLE_S (default: the shipped one)")
    parser.add_argument("--poll-s", type=float, default=None, help="GEM_WATCH_POLL_S (default: the shipped one)")
    args = parser.parse_args(argv)

    from werkzeug.serving import WSGIRequestHandler, make_server

    class QuietHandler(WSGIRequestHandler):
        def log_request(self, *args, **kwargs) -> None:
            pass

    with tempfile.TemporaryDirectory() as folder:
        drop = Path(folder) / "drop"
        settings = Settings(artifacts_dir=args.artifacts, instance_dir=Path(folder) / "instance", watch_dir=drop)
        settings = settings.with_overrides(watch_stable_s=args.stable_s, watch_poll_s=args.poll_s)
        app = create_app(settings=settings)
        jobs = app.server.extensions[JOBS_KEY]
        server = make_server("127.0.0.1", args.port, app.server, threaded=True, request_handler=QuietHandler)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        driver = _driver(1440, 900)
        try:
            driver.get(f"http://127.0.0.1:{args.port}/live")
            deadline = time.monotonic() + 60
            while not driver.find_elements("css selector", f"#{ids.LIVE_EMPTY}") and time.monotonic() < deadline:
                time.sleep(0.1)
            driver.execute_script(_OBSERVE)
            feed = Feed(seed=1)
            warm = feed.next_record()  # the first one loads the model: not counted
            write_record(drop, warm)
            wait_seen(driver, f"{warm.stem}.cfg", 120)
            print(f"GEM_WATCH_STABLE_S={settings.watch_stable_s:g} GEM_WATCH_POLL_S={settings.watch_poll_s:g}, "
                  f"page poll {LIVE_POLL_MS} ms; {load_average()} before")
            to_done, to_row, whole = [], [], []
            for _ in range(args.records):
                record = feed.next_record()
                write_record(drop, record)
                dropped_ms = time.time() * 1000
                name = f"{record.stem}.cfg"
                seen_ms = wait_seen(driver, name)
                job = next(job for job in jobs.recent(50) if job["name"] == name)
                done_ms = datetime.fromisoformat(job["finished_at"].replace("Z", "+00:00")).timestamp() * 1000
                to_done.append(done_ms - dropped_ms)
                to_row.append(seen_ms - done_ms)
                whole.append(seen_ms - dropped_ms)
                time.sleep(max(0.0, args.gap - (time.time() * 1000 - dropped_ms) / 1000))
            print(line("drop -> analysed", to_done))
            print(line("analysed -> row", to_row))
            print(line("drop -> row on page", whole))
            print(f"{load_average()} after")
        finally:
            driver.quit()
            server.shutdown()
            jobs.stop(close_engine=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
