"""The dashboard's pages. Each module has `PAGE` (its `dash.register_page` arguments) and `layout()`.

`register_pages()` puts them in Dash's page registry; `app.create_app` calls it after building the
Dash app (the registry is process-wide, so every app of the process gets the same pages; what
differs per app, the history and the URL prefix, is read from the serving app by `app.context`).
A page's callbacks are registered on each app by its module in `callbacks/`.
"""

from __future__ import annotations

import dash

from app.context import analysis_context
from app.pages import (
    analysis_detail,
    analyze,
    batch,
    compare,
    history,
    live,
    model_card,
    network,
    not_found_404,
)
from services.analysis import AnalysisContext
from services.history import HistoryUnavailable

#: in navbar order; `not_found_404` is what Dash shows for a path without a page
PAGE_MODULES = (analyze, history, live, batch, model_card, network, analysis_detail, compare, not_found_404)


def register_pages() -> None:
    """Register every page with Dash (idempotent: registering again replaces the entries)."""
    for module in PAGE_MODULES:
        dash.register_page(module.__name__, layout=module.layout, **module.PAGE)


def page_status(path: str, context: AnalysisContext | None = None) -> int:
    """HTTP status for the page at `path` (relative to the app's prefix): 200, or 404 when no page
    answers it or it names an analysis that does not exist."""
    stripped = path.strip("/")
    for module in PAGE_MODULES:
        if module.PAGE.get("path") is not None and module is not not_found_404 and \
                stripped == module.PAGE["path"].strip("/"):
            return 200
    first, _, rest = stripped.partition("/")
    if first == "analysis" and rest and "/" not in rest:
        try:
            return 200 if (context or analysis_context()).exists(rest) else 404
        except HistoryUnavailable:  # the page itself says so (analysis_detail.layout)
            return 503
    return 404
