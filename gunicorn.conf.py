"""gunicorn settings: `gunicorn -c gunicorn.conf.py` serves the dashboard and the API.

Every value comes from `app.settings.Settings` (GEM_BIND, GEM_WORKERS, GEM_WORKER_CLASS,
GEM_WORKER_THREADS, GEM_READ_TIMEOUT, GEM_WARMUP, GEM_ACCESS_LOG, GEM_LOG_LEVEL, GEM_CONTROL_SOCKET
and the app's own; the README's configuration table lists them all).

Why gthread workers (8 threads each, one worker per core): a client that sends half a request and
then stalls or trickles holds whatever reads it. A sync worker is the whole worker: two such
clients stopped both sync workers until gunicorn's 60 s timeout, and every other request waited
(benchmarks/bench_slow_clients.py, 2 slow clients: sync 0 of 4 normal requests answered within
10 s; gthread every request answered, p50 11 ms, p99 27-33 ms, as without them). In a gthread
worker a slow client holds one thread, and only for `GEM_READ_TIMEOUT` (30 s) from its first
byte: app/gunicorn_workers.py bounds every read of a request and answers 408 (JSON) after it.
Threads cost nothing in throughput here: concurrent predictions of one worker share one network
call (services/inference/batching.py), so gthread served more, not less (bench_api_load.py, 16
connections, 10 s, the same loaded 2-core machine side by side, load average 5-8 from other
work: sync 109-167 requests/s at 5.5-6.1 ms of server CPU per request, gthread 4 threads
209-214 at 5.1, gthread 8 threads 217-231 at 4.3-4.5). The old reason for sync workers (a
gthread keep-alive connection stays on the worker that accepted it, so 16 connections may split
unevenly) costs less than the batching gains. A buffering proxy (nginx) in front stays good practice.

The worker classes are gunicorn's own with three changes (app/gunicorn_workers.py): bounded
request reads, gunicorn's own error answers (400, 414, 431...) as JSON instead of HTML, no
`Server` header; `EscapingLogger` escapes control characters in every log line.

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

# A gunicorn deployment is never an open door: login is required unless GEM_AUTH says otherwise
# (`off` explicitly), whatever the bind; `python -m app` on loopback stays single-user (issue 14).
os.environ.setdefault("GEM_AUTH", "login")

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
