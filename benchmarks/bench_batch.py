"""Records per second of a batch as the Batch page runs it without a broker: the archive read and
grouped (`read_archive`), one job per record (`create_batch`), then the records analysed in one
process with its own model (`run_batch_here`, what the disk-cache background callback does), each
through the record pipeline's task (read, convert, classify, impact, history row, job done).

    python benchmarks/bench_batch.py --records 300 --kind comtrade --threads 2
    python benchmarks/bench_batch.py --records 300 --kind npy --threads 2

Prints the staging time (read + jobs) and the run's records/s, with the history in a temporary
SQLite file. The model load and the first analyses of a process (the power-flow stack's import and
build, which a batch process forked from a warm web worker inherits) are timed apart.
"""

from __future__ import annotations

import argparse
import io
import os
import sys
import tempfile
import time
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
for _variable in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "GEM_THREADS"):
    os.environ.setdefault(_variable, "1")


def make_archive(count: int, kind: str, seed: int) -> bytes:
    import numpy as np

    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        if kind == "comtrade":
            from services.feed import Feed

            feed = Feed(seed=seed)
            for _ in range(count):
                for name, data in feed.next_record().files:
                    archive.writestr(name, data)
        else:
            from services.simulation import generate_dataset

            windows, _y, _params = generate_dataset(per_class=count // 45 + 1, seed=seed)
            for number, window in enumerate(windows[:count]):
                out = io.BytesIO()
                np.save(out, window.astype(np.float32))
                archive.writestr(f"w{number:05d}.npy", out.getvalue())
    return buffer.getvalue()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--records", type=int, default=300)
    parser.add_argument("--kind", choices=("comtrade", "npy"), default="comtrade")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()

    from app.settings import Settings
    from services.batch import create_batch, read_archive, run_batch_here
    from services.grid import microgrid
    from services.history import HistoryStore
    from services.inference import Predictor
    from services.jobs import JobStore, RecordPipeline

    data = make_archive(args.records, args.kind, args.seed)
    settings = Settings()
    with tempfile.TemporaryDirectory() as folder:
        jobs = JobStore(HistoryStore(f"sqlite:///{Path(folder) / 'history.db'}"))
        started = time.perf_counter()
        contents = read_archive(data, "bench.zip", settings.batch_limits())
        batch_id = create_batch(jobs, contents)
        staged = time.perf_counter() - started
        started = time.perf_counter()
        predictor = Predictor(settings.artifacts_dir, options=settings.inference_options())
        loaded = time.perf_counter() - started
        pipeline = RecordPipeline(jobs=jobs, predictor=lambda: predictor, grid=microgrid())
        started = time.perf_counter()  # the first analyses of a process import and build the power flow
        run_batch_here(create_batch(jobs, read_archive(make_archive(3, args.kind, args.seed + 1), "warm.zip")),
                       pipeline, threads=1)
        warm = time.perf_counter() - started
        started = time.perf_counter()
        final = run_batch_here(batch_id, pipeline, threads=args.threads)
        elapsed = time.perf_counter() - started
        jobs.history.dispose()
    print(f"archive: {len(data) / 1e6:.1f} MB, {len(contents.records)} {args.kind} records; staged (read + jobs) "
          f"in {staged:.2f} s; model loaded in {loaded:.2f} s; warm-up (3 records) {warm:.2f} s")
    print(f"batch: {final.counts['done']} done, {final.counts['failed']} failed in {elapsed:.2f} s: "
          f"{final.counts['done'] / elapsed:.1f} records/s with {args.threads} threads")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
