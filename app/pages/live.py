"""Live monitoring ("/live", issue 13): records analysed as they arrive, newest first, and the alarms
of the chosen severities with Acknowledge. The page polls the job and alarm stores (callbacks/live.py)."""

from __future__ import annotations

from dash import html
from flask import current_app

from app.jobs import JOBS_KEY
from components.live import live_page

PAGE = {"path": "/live", "name": "Live", "title": "Live - Grid Event Monitor", "order": 1}


def layout(**_query) -> html.Div:
    jobs = current_app.extensions[JOBS_KEY]
    alarms = jobs.jobs.alarms
    engine = "Celery workers" if jobs.engine.name == "celery" else "worker threads of the web server"
    return live_page(alarms.severities if alarms is not None else (), watching=jobs.watcher is not None, engine=engine)
