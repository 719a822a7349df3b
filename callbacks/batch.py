"""Batch page callbacks: take an archive or an allowed folder (a normal callback: read, check, one
job per record under a new batch id), run it in a Dash background callback with progress and
Cancel, and show its summary.

Where the records run:
- without GEM_BROKER_URL the background callback runs in a process of its own (Dash's
  `DiskcacheManager`, cache under the instance folder) and analyses the records there, each through
  the record pipeline's one task (`analyse_record`), with the model loaded once for the whole batch;
- with GEM_BROKER_URL it runs on a Celery worker (`dash.CeleryManager`, the same Redis), and the
  records go to the record queue as jobs (`JobService.engine`), analysed by any number of
  `celery -A app.worker worker` processes; the callback only follows the counts.

Cancel does two things: Dash stops the background callback, and `cancel_batch` marks the batch's
unfinished jobs cancelled in the database, so records already queued on Celery are skipped too.
"""

from __future__ import annotations

import base64
import binascii
import logging
import threading
import time
from collections.abc import Callable
from typing import Any

import dash
from dash import Input, Output, State, html, no_update
from sqlalchemy.exc import SQLAlchemyError

from components import ids
from components.batch import batch_result, progress_text
from services.analysis import AnalysisContext
from services.batch import (
    BatchError,
    BatchProgress,
    KeepAlive,
    ProgressTracker,
    batch_results,
    batch_summary,
    create_batch,
    read_archive,
    read_folder,
    run_batch_here,
    submit_batch,
)
from services.history import HistoryUnavailable
from services.inference.connections import check_relay_connection
from services.jobs import JobStore, RecordPipeline, find_job_service, is_job_id

log = logging.getLogger(__name__)

#: seconds between two progress reports (the page polls at the same pace)
PROGRESS_EVERY_S = 0.5
BACKGROUND_FOLDER = "background-callbacks"


def background_callback_manager(settings) -> Any:
    """Dash's background callback manager: Celery's on the job broker when GEM_BROKER_URL is set,
    else a disk cache in the instance folder (shared by the web workers of one machine)."""
    if settings.broker_url:
        from celery import Celery

        queue = f"{settings.job_queue}.callbacks"
        celery_app = Celery("grid_event_monitor_callbacks", broker=settings.broker_url, backend=settings.broker_url,
                            set_as_current=False)
        celery_app.conf.update(task_default_queue=queue, result_expires=3600,
                               broker_transport_options={"global_keyprefix": f"{queue}:"},
                               result_backend_transport_options={"global_keyprefix": f"{queue}:"},
                               broker_connection_retry_on_startup=True, worker_hijack_root_logger=False)
        manager = dash.CeleryManager(celery_app)
    else:
        import diskcache

        folder = settings.instance_dir / BACKGROUND_FOLDER
        folder.mkdir(parents=True, exist_ok=True)
        manager = dash.DiskcacheManager(diskcache.Cache(str(folder)), expire=3600)
    # Dash hands every background function to every manager of the process, keyed by the callback's
    # ids and source, which are the same for each app: the last app built would run every app's
    # batches. This app's manager takes only this app's functions (`pin_background`).
    _all_managers().remove(manager)
    return manager


def _all_managers() -> list:
    from dash.background_callback.managers import BaseBackgroundCallbackManager

    return BaseBackgroundCallbackManager.managers


def pin_background(app: dash.Dash, function: Callable) -> None:
    """Bind the background callback just registered (`function`, as given to `app.callback`) to
    this app's manager, whatever other apps of the process register later."""
    from dash.background_callback.managers import BaseBackgroundCallbackManager

    manager = app._background_manager
    key, registered, progress = BaseBackgroundCallbackManager.functions[-1]
    if registered is not function:
        raise RuntimeError("the background callback to pin is not the last one Dash registered")
    manager.register(key, registered, progress)


# -- plain functions (called by the callbacks and by the tests) ---------------------------------
def decode_upload(contents: object) -> bytes:
    """The bytes of a dcc.Upload data URL; BatchError when it is not one (the browser sends what it
    likes: a list, a number or true are refused like an empty upload)."""
    if not isinstance(contents, str) or "," not in contents:
        raise BatchError("the upload is empty")
    try:
        return base64.b64decode(contents.split(",", 1)[1], validate=False)
    except (binascii.Error, ValueError):
        raise BatchError("the upload could not be decoded") from None


def stage_batch(jobs: JobStore, settings, *, contents: str | None = None, filename: str | None = None,
                folder: str | None = None, relay_connection: str | None = None) -> tuple[dict[str, Any] | None, str]:
    """Read an uploaded archive or an allowed folder and create its batch (jobs queued, nothing
    running yet): ({"batch_id", "name", "total", "records", "rejected"} or None, message).
    `relay_connection` is the connection every record is read through (services.inference.connections)."""
    try:
        connection = check_relay_connection(relay_connection)
    except ValueError as exc:
        return None, f"Not taken: {exc}"
    try:
        if folder is not None:
            found = read_folder(folder, settings.batch_root_paths(), settings.batch_limits())
        else:
            found = read_archive(decode_upload(contents), filename or "archive", settings.batch_limits())
    except BatchError as exc:
        return None, f"Not taken: {exc}"
    if not found.records and not found.rejected:
        return None, f"Not taken: {found.source_name} holds no records."
    try:
        batch_id = create_batch(jobs, found, relay_connection=connection)
    except HistoryUnavailable as exc:
        return None, f"Not taken: the history is unavailable ({exc})."
    except SQLAlchemyError as exc:  # the jobs table could not take the batch: nothing was created
        log.error("batch not created: %s: %s", type(exc).__name__, exc)
        return None, "Not taken: the history database did not answer; try again."
    count = len(found.records)
    message = f"{found.source_name}: {count:,} record{'' if count == 1 else 's'} to analyse"
    if found.rejected:
        message += f", {len(found.rejected):,} rejected (listed at the end)"
    return ({"batch_id": batch_id, "name": found.source_name, "total": found.total,
             "records": len(found.records), "rejected": len(found.rejected)}, message + ".")


def progress_outputs(progress: BatchProgress) -> tuple[int, int, str]:
    """(bar value, bar maximum, text) of one progress report."""
    return progress.finished, max(1, progress.total), progress_text(progress.to_dict())


def follow_batch(jobs: JobStore, batch_id: str, report: Callable[[BatchProgress], None], *,
                 every_s: float = PROGRESS_EVERY_S, timeout_s: float | None = None) -> BatchProgress:
    """Report a batch's progress until none of its jobs is queued or running (the Celery engine runs them)."""
    tracker = ProgressTracker(jobs, batch_id)
    keep_alive = KeepAlive(jobs, batch_id)
    deadline = None if timeout_s is None else time.monotonic() + timeout_s
    while True:
        keep_alive()
        progress = tracker.read()
        report(progress)
        if progress.complete or (deadline is not None and time.monotonic() > deadline):
            return progress
        time.sleep(every_s)


def local_pipeline(settings, grid) -> RecordPipeline:
    """The pipeline of the background process that runs a batch: its own database connections
    and its own model, loaded once on first use (the process is forked from a web worker, whose
    model and connection pool must not be shared with it)."""
    from services.history import HistoryStore
    from services.inference import Predictor

    store = HistoryStore(settings.resolved_database_url, timeouts=settings.database_timeouts())
    lock = threading.Lock()
    loaded: list[Predictor] = []

    def predictor() -> Predictor:
        with lock:
            if not loaded:  # a fresh Predictor, not the one the web worker may hold from before the fork
                loaded.append(Predictor(settings.artifacts_dir, options=settings.inference_options()))
            return loaded[0]

    return RecordPipeline(jobs=JobStore(store), predictor=predictor, grid=grid, max_bytes=settings.max_upload_bytes)


def _batch_id(batch: Any) -> Any:
    """The batch id held in the page's store; the store is the browser's, so anything else is None."""
    return batch.get("batch_id") if isinstance(batch, dict) else None


def register(app: dash.Dash, context: AnalysisContext, analysis_href: Callable[[int], str]) -> None:
    settings = context.settings

    def jobs_store() -> JobStore:
        return find_job_service(app.server.extensions).jobs

    def csv_href(batch_id: str) -> str:
        return app.get_relative_path(f"/api/batches/{batch_id}.csv")

    def result_view(jobs: JobStore, batch_id: str, note: str | None = None) -> html.Div:
        return batch_result(batch_summary(jobs, batch_id), batch_results(jobs, batch_id), analysis_href,
                            csv_href(batch_id), note=note)

    @app.callback(
        Output(ids.BATCH_STORE, "data"),
        Output(ids.BATCH_MESSAGE, "children"),
        Output(ids.BATCH_UPLOAD, "contents"),  # emptied, so the same archive can be sent again
        Input(ids.BATCH_UPLOAD, "contents"),
        Input(ids.BATCH_FOLDER_START, "n_clicks"),
        State(ids.BATCH_UPLOAD, "filename"),
        State(ids.BATCH_FOLDER, "value"),
        State(ids.BATCH_RELAY_CONNECTION, "value"),
        prevent_initial_call=True,
    )
    def take_batch(contents, _clicks, filename, folder, connection):
        if dash.ctx.triggered_id == ids.BATCH_FOLDER_START:
            if not folder:
                return no_update, html.Div("Choose a folder first.", className="alert alert-warning py-2"), no_update
            batch, message = stage_batch(jobs_store(), settings, folder=str(folder), relay_connection=connection)
        else:
            if not contents:
                raise dash.exceptions.PreventUpdate
            batch, message = stage_batch(jobs_store(), settings, contents=contents, filename=filename,
                                         relay_connection=connection)
        colour = "alert-info" if batch is not None else "alert-danger"
        return (batch if batch is not None else no_update), html.Div(message, className=f"alert {colour} py-2"), None

    running = [(Output(ids.BATCH_CANCEL, "disabled"), False, True),
               (Output(ids.BATCH_UPLOAD, "disabled"), True, False)]
    if settings.batch_root_paths():
        running.append((Output(ids.BATCH_FOLDER_START, "disabled"), True, False))

    @app.callback(
        Output(ids.BATCH_RESULT, "children"),
        Input(ids.BATCH_STORE, "data"),
        background=True,
        progress=[Output(ids.BATCH_PROGRESS, "value"), Output(ids.BATCH_PROGRESS, "max"),
                  Output(ids.BATCH_PROGRESS_TEXT, "children")],
        progress_default=[0, 1, "Starting..."],
        running=running,
        cancel=[Input(ids.BATCH_CANCEL, "n_clicks")],
        interval=int(PROGRESS_EVERY_S * 1000),
        prevent_initial_call=True,
    )
    def run_batch(set_progress, batch):
        batch_id = _batch_id(batch)
        if not is_job_id(batch_id):
            raise dash.exceptions.PreventUpdate

        def report(progress: BatchProgress) -> None:
            set_progress(progress_outputs(progress))

        if settings.broker_url:  # a Celery worker runs this: the records go to the record workers
            service = find_job_service(app.server.extensions)
            submit_batch(service.jobs, batch_id, service.engine.submit)
            follow_batch(service.jobs, batch_id, report)
            jobs = service.jobs
        else:  # a process of its own: analyse here, with this process's model
            pipeline = local_pipeline(settings, context.grid)
            run_batch_here(batch_id, pipeline, threads=settings.job_threads, on_progress=report,
                           progress_every_s=PROGRESS_EVERY_S)
            jobs = pipeline.jobs
        return result_view(jobs, batch_id)

    pin_background(app, getattr(run_batch, "__wrapped__", run_batch))

    @app.callback(
        Output(ids.BATCH_RESULT, "children", allow_duplicate=True),
        Output(ids.BATCH_PROGRESS_TEXT, "children", allow_duplicate=True),
        Input(ids.BATCH_CANCEL, "n_clicks"),
        State(ids.BATCH_STORE, "data"),
        prevent_initial_call=True,
    )
    def cancel_batch(_clicks, batch):
        batch_id = _batch_id(batch)
        if not is_job_id(batch_id):
            raise dash.exceptions.PreventUpdate
        jobs = jobs_store()
        stopped = jobs.cancel_batch(batch_id)
        note = f"Cancelled: {stopped:,} records were not analysed." if stopped else "Cancelled."
        return result_view(jobs, batch_id, note=note), note
