"""The Celery worker of the dashboard's background callbacks (the Batch page) when GEM_BROKER_URL is set:

    celery -A app.batch_worker worker --concurrency 2      # queue <GEM_JOB_QUEUE>.callbacks

It builds the Dash app with the same GEM_* settings as the web workers, so that the app's background
callbacks are registered as tasks of its `dash.CeleryManager`, and runs them. A batch's callback only
queues the batch's records on the record queue and follows their counts: the records themselves are
analysed by the `celery -A app.worker worker` processes, as many as there are.
"""

from __future__ import annotations

import os

for _variable in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "GEM_THREADS"):
    os.environ.setdefault(_variable, "1")

from celery.signals import worker_process_init  # noqa: E402

from app import create_app  # noqa: E402  (after the thread variables above)
from app.settings import Settings  # noqa: E402
from services.analysis import EXTENSION_KEY  # noqa: E402

_settings = Settings.from_env()
if not _settings.broker_url:
    raise SystemExit("GEM_BROKER_URL is not set: the background-callback worker needs the Redis URL")
dash_app = create_app(settings=_settings)
celery = dash_app._background_manager.handle
app = celery


def _fresh_connections(**_kwargs) -> None:
    """A forked pool process must not share the parent's database connections: drop the copies."""
    dash_app.server.extensions[EXTENSION_KEY].store.engine.dispose(close=False)


worker_process_init.connect(_fresh_connections, weak=False)
