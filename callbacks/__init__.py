"""The dashboard's callbacks, one module per page, each registered on an app by its `register`.

`app.create_app` calls `register_callbacks(app, context)` once per app it builds: every callback is
an `app.callback` of that app and closes over that app's AnalysisContext (its history store and
artifacts folder), so several apps in one process never share or lose callbacks. The modules keep
the logic in plain functions (inputs in, outputs out) that the tests call without a browser.
"""

from __future__ import annotations

from collections.abc import Callable

import dash

from callbacks import analysis_detail, analytics, analyze, batch, clientside, history, live, network
from services.analysis import AnalysisContext
from services.jobs import find_job_service


def register_callbacks(app: dash.Dash, context: AnalysisContext,
                       current_user: Callable[[], str | None] = lambda: None) -> None:
    """Register every page's callbacks on `app`; `current_user` names who the request acts for (None
    when nobody is signed in), so what a callback writes records its user."""

    def analysis_href(analysis_id: int) -> str:
        """The permanent page of an analysis, under this app's URL prefix."""
        return app.get_relative_path(f"/analysis/{int(analysis_id)}")

    analyze.register(app, context, analysis_href)
    history.register(app, context, analysis_href, current_user)
    analysis_detail.register(app)
    analytics.register(app)
    network.register(app, context.grid)
    clientside.register(app)
    batch.register(app, context, analysis_href)  # the Batch page's background callback (issue 13)
    # the record pipeline `app.create_app` put on the server before registering callbacks (issue 13)
    live.register(app, find_job_service(app.server.extensions), analysis_href, current_user)
