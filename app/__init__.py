"""The Dash app factory: standalone (`python -m app`, gunicorn) or embedded in a Flask portal.

`create_app()` builds one Dash app with its pages, the original JSON API and the history store,
all under one URL prefix. Nothing here loads the model: it loads lazily in each worker on first
use (or in gunicorn's post-fork warm-up), because torch and a pre-fork import deadlock.
"""

from __future__ import annotations

import copy
import logging
import threading
from pathlib import Path
from typing import Any

import dash
from dash import _callback as dash_callback_registry
from flask import Flask

from app.api import build_api_blueprint
from app.settings import Settings
from services.analysis import EXTENSION_KEY, AnalysisContext
from services.history import HistoryStore

__all__ = ["Settings", "create_app", "create_server"]

APP_DIR = Path(__file__).resolve().parent
PAGES_DIR = APP_DIR / "pages"
ASSETS_DIR = APP_DIR / "assets"
TITLE = "Grid Event Monitor"

log = logging.getLogger(__name__)

# Dash keeps `@dash.callback` registrations in process-global lists that the first app to serve a
# request empties, and it re-executes page modules for every Dash instance while other modules are
# imported once. To give every app built here the full set of callbacks, each create_app moves the
# fresh global registrations into its own app and remembers them, so a later app also receives
# callbacks from modules that will not be executed again. Written only while an app is being built
# (under the lock), never while requests are served.
_BUILD_LOCK = threading.Lock()
_KNOWN_CALLBACKS: dict[str, tuple[dict[str, Any], dict[str, Any]]] = {}
_KNOWN_INLINE_SCRIPTS: list[str] = []


def create_app(
    server: Flask | None = None,
    url_base_pathname: str = "/",
    settings: Settings | None = None,
) -> dash.Dash:
    """Build the dashboard and its API under `url_base_pathname` on `server` (a new Flask if None).

    Embedded in a portal (`create_app(server=portal, url_base_pathname="/grid/")`) the pages, the
    Dash endpoints, `/grid/predict` and `/grid/api/...` live under the prefix; the portal's own
    routes are untouched (the 1 MB body limit applies to our API routes only).
    """
    settings = settings or Settings.from_env()
    prefix = normalise_prefix(url_base_pathname)
    if server is None:
        server = Flask(__name__, instance_path=str(settings.instance_dir))
    settings.instance_dir.mkdir(parents=True, exist_ok=True)

    store = HistoryStore(settings.resolved_database_url)
    context = AnalysisContext(artifacts_dir=settings.artifacts_dir, store=store, settings=settings)
    server.extensions[EXTENSION_KEY] = context
    server.config["GEM_SETTINGS"] = settings
    server.config["GEM_URL_PREFIX"] = prefix
    server.register_blueprint(build_api_blueprint(prefix), url_prefix=prefix.rstrip("/") or None)

    from callbacks import register_callbacks
    from components.shell import app_shell

    with _BUILD_LOCK:
        app = dash.Dash(
            __name__,
            server=server,
            url_base_pathname=prefix,
            use_pages=True,
            pages_folder=str(PAGES_DIR),
            assets_folder=str(ASSETS_DIR),
            external_stylesheets=[],
            external_scripts=[],
            serve_locally=True,
            suppress_callback_exceptions=True,
            title=TITLE,
            update_title=None,
        )
        # the dev tools' upgrade check would call plotly's server from the browser: keep it off
        app._dev_tools.disable_version_check = True
        app.layout = app_shell
        register_callbacks(app)
        _adopt_global_callbacks(app)
    return app


def create_server(settings: Settings | None = None) -> Flask:
    """The WSGI app for gunicorn (`app:create_server()`)."""
    return create_app(settings=settings).server


def normalise_prefix(url_base_pathname: str) -> str:
    """'/grid', 'grid/' or '/grid/' -> '/grid/'; '' or '/' -> '/'."""
    if not isinstance(url_base_pathname, str):
        raise TypeError("url_base_pathname must be a string such as '/grid/'")
    stripped = url_base_pathname.strip().strip("/")
    if any(char in stripped for char in "?#\\ ") or "//" in stripped:
        raise ValueError(f"url_base_pathname {url_base_pathname!r} is not a plain URL path")
    return f"/{stripped}/" if stripped else "/"


def _adopt_global_callbacks(app: dash.Dash) -> None:
    """Move Dash's global `@callback` registrations into `app` (see the note at the top)."""
    fresh_map = dict(dash_callback_registry.GLOBAL_CALLBACK_MAP)
    fresh_specs = {spec["output"]: spec for spec in dash_callback_registry.GLOBAL_CALLBACK_LIST}
    for callback_id, entry in fresh_map.items():
        _KNOWN_CALLBACKS[callback_id] = (entry, fresh_specs.get(callback_id, {"output": callback_id}))
    for script in dash_callback_registry.GLOBAL_INLINE_SCRIPTS:
        if script not in _KNOWN_INLINE_SCRIPTS:
            _KNOWN_INLINE_SCRIPTS.append(script)
    dash_callback_registry.GLOBAL_CALLBACK_MAP.clear()
    dash_callback_registry.GLOBAL_CALLBACK_LIST.clear()
    dash_callback_registry.GLOBAL_INLINE_SCRIPTS.clear()

    for callback_id, (entry, spec) in _KNOWN_CALLBACKS.items():
        if callback_id in app.callback_map:
            continue  # registered on this app directly (app.callback) wins
        app.callback_map[callback_id] = copy.copy(entry)
        if isinstance(entry.get("background"), dict):
            app.callback_map[callback_id]["background"] = dict(entry["background"])
        app._callback_list.append(dict(spec))
    app._inline_scripts.extend(script for script in _KNOWN_INLINE_SCRIPTS if script not in app._inline_scripts)
