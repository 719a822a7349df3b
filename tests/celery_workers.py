"""Start and stop a real Celery worker for the tests that need one (Redis broker, PostgreSQL)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

from app.settings import Settings

ROOT = Path(__file__).resolve().parents[1]


def start_worker(module: str, settings: Settings, log_path: Path | None, hostname: str,
                 pool: str = "prefork") -> subprocess.Popen:
    """`celery -A module worker` on the settings' broker and queue, in its own process group, its
    output in log_path (None: discarded). Prefork runs one child (the machine has two cores);
    "solo" runs the task in the worker process itself."""
    env = {**os.environ, "GEM_BROKER_URL": settings.broker_url, "GEM_JOB_QUEUE": settings.job_queue,
           "GEM_DATABASE_URL": settings.database_url, "GEM_ARTIFACTS_DIR": str(settings.artifacts_dir),
           "GEM_INSTANCE_DIR": str(settings.instance_dir)}
    command = [sys.executable, "-m", "celery", "-A", module, "worker", "--pool", pool,
               *(["--concurrency", "1"] if pool == "prefork" else []),
               "--loglevel", "info", "--without-gossip", "--without-mingle", "--without-heartbeat",
               "--hostname", hostname]
    if log_path is None:
        return subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                start_new_session=True)
    with open(log_path, "wb") as log:
        return subprocess.Popen(command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
                                start_new_session=True)


def stop_worker(process: subprocess.Popen) -> None:
    """SIGTERM to the worker's process group (a warm shutdown), SIGKILL after 30 s."""
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)
