"""The Celery worker entry point: `GEM_BROKER_URL=redis://... celery -A app.worker worker`.

It reads the same GEM_* settings as the web app (database, artifacts, queue) and runs the record
pipeline's one task. One math thread per worker process, as under gunicorn: scale with
`--concurrency`, not threads.
"""

from __future__ import annotations

import os

for _variable in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "GEM_THREADS"):
    os.environ.setdefault(_variable, "1")

from app.jobs import worker_celery  # noqa: E402  (after the thread variables above)
from app.settings import Settings  # noqa: E402

celery = worker_celery(Settings.from_env())
app = celery
