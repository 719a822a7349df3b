"""What a page layout needs from the app that serves the request: its AnalysisContext and its links.

Dash calls page layouts inside a Flask request. Several apps can live in one process (the tests, a
portal that mounts two dashboards), and Dash's page registry is process-global, so what belongs to
one app is read from the Flask app serving the request, where `app.create_app` put it. Callbacks do
not need this module: each app registers its own callbacks with its context (`callbacks.register`).
"""

from __future__ import annotations

import logging
from typing import Any

from flask import current_app

from services.analysis import EXTENSION_KEY, AnalysisContext

PREFIX_KEY = "GEM_URL_PREFIX"

log = logging.getLogger(__name__)


def analysis_context() -> AnalysisContext:
    """The AnalysisContext of the app serving this request (artifacts folder, history store, settings)."""
    return current_app.extensions[EXTENSION_KEY]


def href(path: str) -> str:
    """A link inside this app: `path` under the app's URL prefix ('/history' -> '/grid/history')."""
    return join_prefix(current_app.config.get(PREFIX_KEY, "/"), path)


def join_prefix(prefix: str, path: str) -> str:
    """'/grid/' + '/history' -> '/grid/history'; '/' + '/' -> '/'."""
    if not path.startswith("/"):
        raise ValueError(f"in-app paths start with '/', got {path!r}")
    return prefix.rstrip("/") + path if path != "/" else prefix


def analysis_href(analysis_id: int) -> str:
    """The permanent page of one analysis."""
    return href(f"/analysis/{int(analysis_id)}")


def model_status() -> dict[str, Any]:
    """{"loaded": bool, "message": str, "fingerprint", "backend"} of this app's model, for the
    banner and the Model page; never raises, and never shows the server's folders."""
    try:
        status = analysis_context().model_status().to_dict()
    except Exception as exc:  # the banner must render whatever went wrong
        log.exception("model status failed")
        return {"loaded": False, "message": f"model status unavailable: {type(exc).__name__}"}
    status.pop("artifacts_dir", None)
    return status
