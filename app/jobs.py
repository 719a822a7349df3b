"""The record pipeline of an app, built from its settings: the JobService the API and the pages use,
and the Celery app of the workers (`app.worker`).

GEM_BROKER_URL chooses the engine: unset, worker threads in the web process (nothing to install);
set, Celery workers over Redis. GEM_WATCH_DIR turns on the folder watcher.
"""

from __future__ import annotations

import logging

from app.settings import Settings
from services.alarms import AlarmStore
from services.analysis import AnalysisContext, get_model, warm_up
from services.grid import microgrid
from services.history import HistoryStore
from services.jobs import (
    CeleryEngine,
    FolderWatcher,
    JobService,
    JobStore,
    RecordPipeline,
    ThreadEngine,
    analyse_record,
)
from services.jobs.celery_app import PipelineCelery, make_celery
from services.jobs.service import RECOVER_AFTER_S
from services.notify import DELIVER_TASK_NAME, Notifier

log = logging.getLogger(__name__)

#: key of the app's JobService in `flask.current_app.extensions`
JOBS_KEY = "grid_event_monitor_jobs"
#: with Celery, a job unfinished this long (beyond Redis's own redelivery) is offered again
CELERY_RECOVER_AFTER_S = 3600.0


def job_service(settings: Settings, context: AnalysisContext) -> JobService:
    """The app's JobService on the history's database, started (watcher loop or one recovery pass)."""
    alarms = AlarmStore(context.store, settings.alarm_severities)
    jobs = JobStore(context.store, alarms)
    if settings.broker_url:
        celery_app = make_celery(settings.broker_url, settings.job_queue)
        engine = CeleryEngine(celery_app, settings.job_queue)
        attach_notifier(settings, alarms, celery_app)
    else:
        attach_notifier(settings, alarms)
        pipeline = RecordPipeline(jobs=jobs, predictor=context.predictor, grid=context.grid,
                                  max_bytes=settings.max_upload_bytes)
        engine = ThreadEngine(lambda job_id: analyse_record(job_id, pipeline), settings.job_threads)
    watcher = None
    if settings.watch_dir is not None:
        try:
            settings.watch_dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:  # the app still serves; each scan logs that the folder cannot be read
            log.error("GEM_WATCH_DIR %s cannot be created: %s", settings.watch_dir, exc.strerror or exc)
        watcher = FolderWatcher(settings.watch_dir, jobs, engine.submit, stable_s=settings.watch_stable_s,
                                pair_timeout_s=settings.watch_pair_timeout_s, delete=settings.watch_delete,
                                max_bytes=settings.max_upload_bytes, relay_connection=settings.watch_relay_connection)
    # threads keep their queue in memory: jobs a stopped process left are offered again after
    # RECOVER_AFTER_S; Redis keeps Celery's messages, so there recovery is only a late safety net
    recover_after_s = CELERY_RECOVER_AFTER_S if settings.broker_url else RECOVER_AFTER_S
    return JobService(jobs, engine, watcher, poll_s=settings.watch_poll_s, recover_after_s=recover_after_s).start()


def attach_notifier(settings: Settings, alarms: AlarmStore, celery_app: PipelineCelery | None = None) -> Notifier | None:
    """Notify each alarm on the configured channels (GEM_WEBHOOK_URL, GEM_SMTP_HOST and GEM_SMTP_TO), delivered by
    threads of this process, or as Celery tasks on `celery_app`; then offer again the deliveries
    a stopped process left. None when no channel is configured."""
    config = settings.notify_config()
    if not config.channels:
        return None
    submit = None
    if celery_app is not None:
        def submit(alarm_id: int, channel: str) -> None:
            celery_app.send_task(DELIVER_TASK_NAME, args=[alarm_id, channel], queue=settings.job_queue)
    notifier = Notifier(alarms, config, submit)
    alarms.notifier = notifier
    try:
        notifier.redeliver_stale()
    except Exception as exc:  # the database or the broker is down: the next start tries again
        log.error("pending notifications not offered again: %s: %s", type(exc).__name__, exc)
    return notifier


def worker_celery(settings: Settings) -> PipelineCelery:
    """The Celery app of a worker: the task and, per worker process, a pipeline on the history
    database with the model loaded after fork."""
    if not settings.broker_url:
        raise SystemExit("GEM_BROKER_URL is not set: a Celery worker needs the Redis URL of the job queue")

    def build_pipeline() -> RecordPipeline:
        options = settings.inference_options()
        warm_up(settings.artifacts_dir, options)  # load the model and the power-flow stack once
        store = HistoryStore(settings.resolved_database_url)
        alarms = AlarmStore(store, settings.alarm_severities)
        attach_notifier(settings, alarms, celery_app)
        return RecordPipeline(jobs=JobStore(store, alarms), predictor=lambda: get_model(settings.artifacts_dir, options),
                              grid=microgrid().with_tariffs(settings.tariffs()), max_bytes=settings.max_upload_bytes)

    celery_app = make_celery(settings.broker_url, settings.job_queue, build_pipeline)
    return celery_app
