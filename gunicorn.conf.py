"""gunicorn settings: `gunicorn -c gunicorn.conf.py` serves the dashboard and the API.

Every value comes from `app.settings.Settings` (GEM_BIND, GEM_WORKERS, GEM_WORKER_CLASS,
GEM_WORKER_THREADS, GEM_WARMUP, GEM_ACCESS_LOG, GEM_LOG_LEVEL, GEM_CONTROL_SOCKET and the app's own;
the README's configuration table lists them all).

Why sync workers, one per core: every request is CPU work (the network, the checks, the history
write), so a worker can only ever use one core, and threads inside it only queue for the GIL.
With sync workers each request is accepted by whichever worker is free, so load spreads evenly;
gthread workers keep a keep-alive connection on the worker that accepted it, and 16 client
connections often land 11/5, leaving one core idle while the other queues (measured with
benchmarks/bench_api_load.py: sync 610-660 requests/s with p99 32-35 ms; gthread 400-590 requests/s
with p99 55-72 ms). Sync workers expect a buffering proxy (nginx) in front for slow clients, as
gunicorn's documentation says; the README's deployment section does so. Under a threaded server
(gthread, the development server) concurrent predictions share network calls instead
(services/inference/batching.py).

The app is NOT preloaded: torch must be imported after fork (a forked torch thread pool deadlocks),
and each worker loads the model once. Each worker runs torch/ONNX Runtime on one thread, so the
workers do not fight over the cores; scale with workers, not intra-op threads.
"""

from __future__ import annotations

import logging
import os

# Before any worker imports numpy/torch: one math thread per worker process (GEM_THREADS is the
# inference service's thread count).
for _variable in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "GEM_THREADS"):
    os.environ.setdefault(_variable, "1")

from app.settings import Settings  # noqa: E402  (after the thread variables above)

WORKER_CLASSES = {"sync": "app.gunicorn_workers.SyncWorker", "gthread": "app.gunicorn_workers.ThreadWorker"}
_settings = Settings.from_env()
wsgi_app = "app:create_server()"
bind = _settings.bind_address
workers = _settings.workers
# gunicorn's own workers with bounded request reads, JSON error answers and no Server header
worker_class = WORKER_CLASSES[_settings.worker_class]
threads = _settings.worker_threads if _settings.worker_class == "gthread" else 1
logger_class = "app.gunicorn_workers.EscapingLogger"  # control characters escaped in every log line
preload_app = False
timeout = 60
graceful_timeout = 20
keepalive = 5
backlog = 2048
accesslog = _settings.access_log
errorlog = "-"
# gunicorn's control socket has one default path per user: two servers (tests, benchmarks) would clash
control_socket_disable = not _settings.control_socket
loglevel = _settings.log_level


def on_starting(server) -> None:
    """Create the history schema once in the master, before workers race to do it."""
    from services.history import HistoryStore

    store = HistoryStore(_settings.resolved_database_url, timeouts=_settings.database_timeouts())
    store.dispose()


def post_fork(server, worker) -> None:
    """Pin this worker's math libraries to one thread (torch is first imported here, after fork)."""
    try:
        import torch

        torch.set_num_threads(1)
        torch.set_num_interop_threads(1)
    except (ImportError, RuntimeError) as exc:  # interop threads can only be set once per process
        logging.getLogger("gunicorn.error").info("torch thread setup: %s", exc)


def post_worker_init(worker) -> None:
    """Load the model and run one prediction before taking traffic (GEM_WARMUP=0 skips it)."""
    if not _settings.warmup:
        return
    from services.analysis import EXTENSION_KEY, warm_up

    context = worker.wsgi.extensions[EXTENSION_KEY]
    status = warm_up(context.artifacts_dir, context.inference)
    logging.getLogger("gunicorn.error").info("worker %s: %s", worker.pid, status.message)
