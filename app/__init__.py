"""The Dash app factory: standalone (`python -m app`, gunicorn) or embedded in a Flask portal.

`create_app()` builds one Dash app with its pages, the original JSON API and the history store,
all under one URL prefix. Nothing here loads the model: it loads lazily in each worker on first
use (or in gunicorn's post-fork warm-up), because torch and a pre-fork import deadlock.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import dash
from flask import Flask, Response, redirect, request

from app.api import build_api_blueprint
from app.auth import current_user, install_auth, recorded_user, signed_in_name
from app.context import PREFIX_KEY
from app.jobs import JOBS_KEY, job_service
from app.limits import limit_requests
from app.security import install_security
from app.settings import Settings
from services.analysis import EXTENSION_KEY, AnalysisContext
from services.grid import microgrid
from services.history import HistoryStore

__all__ = ["Settings", "create_app", "create_server"]

APP_DIR = Path(__file__).resolve().parent
ASSETS_DIR = APP_DIR / "assets"
TITLE = "Grid Event Monitor"

log = logging.getLogger(__name__)


def create_app(
    server: Flask | None = None,
    url_base_pathname: str = "/",
    settings: Settings | None = None,
    auth: Callable[[], Any] | None = None,
) -> dash.Dash:
    """Build the dashboard and its API under `url_base_pathname` on `server` (a new Flask if None).

    Embedded in a portal (`create_app(server=portal, url_base_pathname="/grid/")`) the pages, the
    Dash endpoints, `/grid/predict` and `/grid/api/...` live under the prefix; the portal's own
    routes are untouched (the body limits of app/limits.py apply under the prefix only).

    Registration is explicit: the pages go into Dash's page registry (`app.pages.register_pages`,
    the same pages for every app of the process) and every callback is registered on this app with
    `app.callback` (`callbacks.register_callbacks`), so several apps in one process each hold their
    own callbacks, history store and settings.

    `auth` (portal mode): a callable returning the portal's current user as `(name, role)` (role
    viewer, operator or admin) or None; the pages and the API then use the portal's login and show
    nothing to an anonymous visitor. Without it GEM_AUTH decides (app/auth.py).
    """
    from app.pages import page_status, register_pages
    from callbacks import register_callbacks
    from callbacks.batch import background_callback_manager
    from components.shell import INDEX_STRING, app_shell

    settings = settings or Settings.from_env()
    prefix = normalise_prefix(url_base_pathname)
    own_server = server is None
    if server is None:
        server = Flask(__name__, instance_path=str(settings.instance_dir))
    settings.instance_dir.mkdir(parents=True, exist_ok=True)

    store = HistoryStore(settings.resolved_database_url, timeouts=settings.database_timeouts())
    context = AnalysisContext(artifacts_dir=settings.artifacts_dir, store=store, settings=settings,
                              grid=microgrid().with_tariffs(settings.tariffs()),
                              inference=settings.inference_options())
    server.extensions[EXTENSION_KEY] = context
    server.extensions[JOBS_KEY] = job_service(settings, context)  # records in the background (issue 13)
    server.config["GEM_SETTINGS"] = settings
    server.config[PREFIX_KEY] = prefix
    server.register_blueprint(build_api_blueprint(prefix), url_prefix=prefix.rstrip("/") or None)

    app = dash.Dash(
        __name__,
        server=server,
        url_base_pathname=prefix,
        use_pages=True,
        pages_folder="",  # pages are registered explicitly below, not discovered in a folder
        assets_folder=str(ASSETS_DIR),
        external_stylesheets=[],
        external_scripts=[],
        serve_locally=True,
        suppress_callback_exceptions=True,
        title=TITLE,
        update_title=None,
        index_string=INDEX_STRING,  # <html lang="en">
        # batch analysis runs as a background callback: on Celery with GEM_BROKER_URL, else a disk cache
        background_callback_manager=background_callback_manager(settings),
    )
    # the dev tools' upgrade check would call plotly's server from the browser: keep it off
    app.enable_dev_tools(debug=False, dev_tools_disable_version_check=True)
    register_pages()
    def layout() -> Any:  # this app's links, and the signed-in user's name (none in the open modes)
        user = current_user()
        return app_shell(app.get_relative_path, signed_in=signed_in_name(server),
                         read_only=user is not None and not user.can("operator"))

    app.layout = layout
    register_callbacks(app, context, current_user=recorded_user)
    install_security(app, settings, prefix)  # Origin and body-type checks, security headers
    limit_requests(app, settings, prefix)  # body limits (413 JSON), callback requests checked (400 JSON)
    install_auth(app, settings, prefix, portal_auth=auth, own_server=own_server)  # who may do what (issue 14)

    # Dash answers 200 for every path under the prefix; say 404 where there is no page
    page_endpoints = {prefix, f"{prefix}<path:path>"}

    def set_page_status(response: Response) -> Response:
        if request.endpoint in page_endpoints and response.status_code == 200:
            response.status_code = page_status(request.path[len(prefix):], context)
        return response

    server.after_request(set_page_status)
    # browsers ask for <prefix>favicon.ico on their own: Dash's icon, not the not-found page
    server.add_url_rule(f"{prefix}favicon.ico", endpoint=f"{prefix}favicon.ico",
                        view_func=lambda: redirect(app.get_relative_path("/_favicon.ico")))
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
