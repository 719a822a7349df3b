"""`python -m services.feed --out DIR --rate 1/s` (or `--url http://host/api/records`): the demo feed.

Writes (or posts) COMTRADE records of simulated events of every class, with random P2P peers, at
the chosen rate until stopped (Ctrl-C) or `--count` records were sent.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from services.feed import Feed, parse_rate, post_record, write_record


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m services.feed", description=__doc__.splitlines()[0])
    target = parser.add_mutually_exclusive_group(required=True)
    target.add_argument("--out", type=Path, help="folder to drop the records into (the app's GEM_WATCH_DIR)")
    target.add_argument("--url", help="POST each record there, e.g. http://127.0.0.1:8050/api/records")
    parser.add_argument("--rate", default="1/s", help="records per s, min or h: 1/s (default), 30/min, 5")
    parser.add_argument("--count", type=int, default=None, help="stop after this many records (default: never)")
    parser.add_argument("--seed", type=int, default=None, help="random seed (default: a new feed each run)")
    args = parser.parse_args(argv)
    try:
        rate = parse_rate(args.rate)
    except ValueError as exc:
        parser.error(str(exc))
    if args.count is not None and args.count < 1:
        parser.error("--count must be 1 or more")

    feed = Feed(seed=args.seed)
    period = 1.0 / rate
    next_at = time.monotonic()
    sent = 0
    try:
        while args.count is None or sent < args.count:
            record = feed.next_record()
            try:
                if args.out is not None:
                    write_record(args.out, record)
                    where = f"{args.out}/{record.stem}.cfg"
                else:
                    answer = post_record(args.url, record)
                    where = f"job {answer.get('job_id')}"
            except OSError as exc:  # a folder that cannot be written, a server that does not answer
                print(f"cannot send {record.stem}: {exc}", file=sys.stderr)
                return 1
            sent += 1
            print(f"{sent:6d} {record.label} {record.sender} -> {record.receiver}: {where}", flush=True)
            next_at += period
            time.sleep(max(0.0, next_at - time.monotonic()))
    except KeyboardInterrupt:
        pass
    print(f"{sent} record(s) sent", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
