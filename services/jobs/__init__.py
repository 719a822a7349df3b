"""The record pipeline: records that arrive by themselves (a watched folder, `POST /api/records`)
become jobs, analysed by one task function on one of two engines (threads in the web process, or
Celery workers over Redis), with the jobs kept in the history's database.

No Flask or Dash here; `app.jobs` builds a `JobService` from the settings.
"""

from services.jobs.engine import CeleryEngine, EngineUnavailable, JobEngine, ThreadEngine
from services.jobs.service import API_SOURCE, JobService, find_job_service
from services.jobs.store import DONE, FAILED, QUEUED, RUNNING, STATES, JobStore, is_job_id
from services.jobs.tasks import TASK_NAME, RecordPipeline, analyse_record
from services.jobs.watch import WATCH_SOURCE, FolderWatcher, peers_from_name, record_hash

__all__ = [
    "API_SOURCE", "DONE", "FAILED", "QUEUED", "RUNNING", "STATES", "TASK_NAME", "WATCH_SOURCE", "CeleryEngine",
    "EngineUnavailable", "FolderWatcher", "JobEngine", "JobService", "JobStore", "RecordPipeline", "ThreadEngine",
    "analyse_record", "find_job_service", "is_job_id", "peers_from_name", "record_hash",
]
