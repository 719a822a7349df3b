"""History page callbacks: AG Grid's infinite row model served page by page by HistoryStore.query.

`history_rows` is the pure function behind the callback: an AG Grid `getRowsRequest` in, a
`getRowsResponse` out. Sorting and filtering happen in SQL, so 100,000 rows cost one indexed page.
The CSV export link carries the grid's own filter model, which the export route reads with the same
`services.history.filters_from_ag_grid`: the file always holds the rows the grid shows.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import urlencode

import dash
from dash import Input, Output, State, html, no_update

from components import ids
from components.cards import history_unavailable
from components.tables import history_row
from services.analysis import AnalysisContext
from services.history import HistoryQueryError, HistoryStore, HistoryUnavailable, filters_from_ag_grid

log = logging.getLogger(__name__)

MAX_BLOCK = 1000
#: how history_rows' status starts when the history database cannot be used
UNAVAILABLE = "History unavailable: "
MAX_ROW_NUMBER = 2**53  # row offsets beyond any history, still exact in a JSON number


def history_rows(request: Mapping[str, Any] | None, store: HistoryStore,
                 href_for: Callable[[int], str]) -> tuple[dict[str, Any], str]:
    """(getRowsResponse, status text) for one block of the grid; bad filters give an empty block."""
    request = request or {}
    try:
        start, limit = grid_block(request)
        filters = filters_from_ag_grid(request.get("filterModel") or {})
        rows, total = store.query(limit=limit, offset=start, sort=request.get("sortModel") or None, filters=filters)
    except HistoryQueryError as exc:
        return {"rowData": [], "rowCount": 0}, f"Filter not applied: {exc}"
    except HistoryUnavailable as exc:  # the database is down or frozen: an empty block, the reason shown
        return {"rowData": [], "rowCount": 0}, f"{UNAVAILABLE}{exc}"
    rows_out = [history_row(row, href_for) for row in rows]
    noun = "analysis" if total == 1 else "analyses"
    return {"rowData": rows_out, "rowCount": total}, f"{total:,} {noun}"


def grid_block(request: Any) -> tuple[int, int]:
    """(first row, row count) of an AG Grid getRowsRequest; HistoryQueryError when the request is not
    the shape the grid sends (a browser-held value: `startRow: "abc"` is refused, not a 500)."""
    if not isinstance(request, Mapping):
        raise HistoryQueryError("the grid's row request must be an object")
    start = _row_number(request.get("startRow"), 0, "startRow")
    end = _row_number(request.get("endRow"), start + 100, "endRow")
    return start, max(1, min(MAX_BLOCK, end - start))


def _row_number(value: Any, default: int, name: str) -> int:
    if value is None or value == "":
        return default
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise HistoryQueryError(f"{name} must be a row number")
    try:
        number = int(value) if not isinstance(value, str) or len(value) <= 18 else -1
    except (ValueError, OverflowError):  # "abc", NaN, infinity
        raise HistoryQueryError(f"{name} must be a row number") from None
    if not 0 <= number <= MAX_ROW_NUMBER:
        raise HistoryQueryError(f"{name} must be a row number from 0 to {MAX_ROW_NUMBER:,}")
    return number


def csv_href(filter_model: Mapping[str, Any] | None, base: str) -> str:
    """Link to the CSV export of the rows the grid shows: its filter model, as JSON in `filter`."""
    if not filter_model:
        return base
    return f"{base}?{urlencode({'filter': json.dumps(filter_model, separators=(',', ':'), sort_keys=True)})}"


def mine_filter(user: str | None) -> dict[str, str]:
    """The grid's filter on the User column for `user`'s analyses (none named: rows without a user)."""
    if user:
        return {"filterType": "text", "type": "equals", "filter": user}
    return {"filterType": "text", "type": "blank"}


def toggle_mine(model: Any, user: str | None) -> dict[str, Any]:
    """The grid's filter model with the "mine" filter added, or removed when it is already there."""
    model = dict(model) if isinstance(model, Mapping) else {}
    mine = mine_filter(user)
    if model.get("user") == mine:
        model.pop("user")
    else:
        model["user"] = mine
    return model


def register(app: dash.Dash, context: AnalysisContext, href_for: Callable[[int], str],
             current_user: Callable[[], str | None] = lambda: None) -> None:
    """The History page's callbacks on `app`, with `app`'s history and permanent links."""

    @app.callback(Output(ids.HISTORY_GRID, "filterModel"), Input(ids.HISTORY_MINE, "n_clicks"),
                  State(ids.HISTORY_GRID, "filterModel"), prevent_initial_call=True)
    def on_mine(_clicks, model):
        """Mine: only the signed-in user's analyses (the grid asks for its rows again); again: everyone's."""
        return toggle_mine(model, current_user())

    @app.callback(
        Output(ids.HISTORY_GRID, "getRowsResponse"),
        Output(ids.HISTORY_TOTAL, "children"),
        Output(ids.HISTORY_CSV_LINK, "href"),
        Output(ids.HISTORY_NOTICE, "children"),
        Input(ids.HISTORY_GRID, "getRowsRequest"),
    )
    def on_rows_request(request):
        """Serve one block of rows; the grid asks again when it scrolls, sorts or filters."""
        if not request:
            return no_update, no_update, no_update, no_update
        response, status = history_rows(request, context.store, href_for)
        notice = history_unavailable(status.removeprefix(UNAVAILABLE)) if status.startswith(UNAVAILABLE) else None
        status = "no analyses shown" if notice is not None else status
        filter_model = request.get("filterModel") if isinstance(request, Mapping) else None
        return response, html.Span(status), csv_href(filter_model if isinstance(filter_model, Mapping) else None,
                                                     app.get_relative_path("/api/history.csv")), notice
