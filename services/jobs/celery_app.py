"""The Celery application of the record pipeline: the broker configuration and the one task.

`make_celery` is called by the web process (to send jobs) and by the worker entry point
`app.worker` (`celery -A app.worker worker`), which also hands in how to build the per-process
`RecordPipeline`. The model is loaded once per worker process, after fork: prefork children build
their pipeline on Celery's `worker_process_init` signal (torch and a pre-fork import deadlock);
a `--pool solo` worker builds it on its first task.

Reliability: `acks_late` with `task_reject_on_worker_lost` puts the message of a job whose worker
process died back on the queue, and `analyse_record` is idempotent per job (the history row and
the job's completion are one transaction), so the record ends up analysed exactly once.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from celery import Celery
from celery.signals import worker_process_init
from sqlalchemy.exc import OperationalError

from services.history.store import HistoryUnavailable
from services.jobs.tasks import TASK_NAME, RecordPipeline, RetryLater, analyse_record
from services.notify import DELIVER_TASK_NAME

log = logging.getLogger(__name__)

DEFAULT_QUEUE = "gem-records"
#: seconds before Redis hands an unacknowledged message to another worker when its whole worker
#: (not only a child process) vanished; the default hour would hold the record that long
VISIBILITY_TIMEOUT_S = 300
WORKER_START_TIMEOUT_S = 120.0


class PipelineCelery(Celery):
    """A Celery app that builds its worker's `RecordPipeline` once per process, on demand."""

    pipeline_factory: Callable[[], RecordPipeline] | None = None

    def pipeline(self) -> RecordPipeline:
        cached = self.__dict__.get("_pipeline")
        if cached is None:
            with self.__dict__.setdefault("_pipeline_lock", threading.Lock()):
                cached = self.__dict__.get("_pipeline")
                if cached is None:
                    if self.pipeline_factory is None:
                        raise RuntimeError("this Celery app only sends jobs; start workers with `celery -A app.worker`")
                    cached = self.pipeline_factory()
                    self.__dict__["_pipeline"] = cached
        return cached


def make_celery(broker_url: str, queue: str = DEFAULT_QUEUE,
                pipeline_factory: Callable[[], RecordPipeline] | None = None) -> PipelineCelery:
    """The Celery app on `broker_url` (Redis) with jobs on `queue`; Redis keys are prefixed with the
    queue name, so deployments (and parallel test runs) sharing one Redis stay apart."""
    app = PipelineCelery("grid_event_monitor", broker=broker_url, set_as_current=False)
    app.pipeline_factory = pipeline_factory
    app.conf.update(
        task_default_queue=queue,
        task_serializer="json",
        accept_content=["json"],
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        broker_connection_retry_on_startup=True,
        broker_transport_options={"global_keyprefix": f"{queue}:", "visibility_timeout": VISIBILITY_TIMEOUT_S},
        worker_hijack_root_logger=False,
        # a new pool process loads the model in worker_process_init (seconds on a busy machine);
        # Celery's 4 s default would kill it as hung, again and again
        worker_proc_alive_timeout=WORKER_START_TIMEOUT_S,
    )

    # the result lives in the jobs table, visible to every web worker: nothing for a result backend
    # (other tasks on this app, such as Dash background callbacks, may still use one)
    @app.task(name=TASK_NAME, bind=True, acks_late=True, ignore_result=True,
              autoretry_for=(OperationalError, HistoryUnavailable, RetryLater),
              retry_backoff=True, retry_backoff_max=60, max_retries=30)
    def analyse_record_task(task, job_id: str) -> int | None:
        return analyse_record(job_id, task.app.pipeline())

    # an alarm's notification (issue 13 item 4): one attempt per run, the back-off as Celery's countdown,
    # so a slow webhook holds no worker; `Notifier.attempt` counts the attempts and gives up
    @app.task(name=DELIVER_TASK_NAME, bind=True, acks_late=True, ignore_result=True, max_retries=None)
    def deliver_notification_task(task, alarm_id: int, channel: str) -> None:
        alarms = task.app.pipeline().jobs.alarms
        notifier = getattr(alarms, "notifier", None)
        if notifier is None:
            log.warning("notification %s of alarm %s: no notifier configured on this worker", channel, alarm_id)
            return
        delay = notifier.attempt(int(alarm_id), str(channel))
        if delay is not None:
            raise task.retry(countdown=delay)

    if pipeline_factory is not None:
        def _build_after_fork(**_kwargs) -> None:
            try:
                app.pipeline().predictor()
            except Exception:  # the first task reports a missing model on its job
                log.exception("worker process could not load the model")

        worker_process_init.connect(_build_after_fork, weak=False)
    return app
