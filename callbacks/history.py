"""History page callbacks: AG Grid's infinite row model served page by page by HistoryStore.query.

`history_rows` is the pure function behind the callback: an AG Grid `getRowsRequest` in, a
`getRowsResponse` out. Sorting and filtering happen in SQL, so 100,000 rows cost one indexed page.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import urlencode

from dash import Input, Output, callback, html

from callbacks import data
from components import ids
from components.tables import history_row
from services.history import HistoryQueryError, HistoryStore, filters_from_ag_grid

log = logging.getLogger(__name__)

MAX_BLOCK = 1000
#: grid filters that the CSV export route understands (it takes simple equality/time filters)
CSV_EQUALS = {"label": "label", "category": "category", "source": "source", "sender": "peer", "receiver": "peer"}


def history_rows(request: Mapping[str, Any] | None, store: HistoryStore,
                 href_for: Callable[[int], str]) -> tuple[dict[str, Any], str]:
    """(getRowsResponse, status text) for one block of the grid; bad filters give an empty block."""
    request = request or {}
    start = max(0, int(request.get("startRow") or 0))
    end = int(request.get("endRow") or start + 100)
    limit = max(1, min(MAX_BLOCK, end - start))
    try:
        filters = filters_from_ag_grid(request.get("filterModel") or {})
        rows, total = store.query(limit=limit, offset=start, sort=request.get("sortModel") or None, filters=filters)
    except HistoryQueryError as exc:
        return {"rowData": [], "rowCount": 0}, f"Filter not applied: {exc}"
    rows_out = [history_row(row, href_for) for row in rows]
    noun = "analysis" if total == 1 else "analyses"
    return {"rowData": rows_out, "rowCount": total}, f"{total:,} {noun}"


def csv_href(filter_model: Mapping[str, Any] | None, base: str) -> str:
    """Link to the CSV export with the grid filters the export route understands."""
    args: dict[str, str] = {}
    for column, model in (filter_model or {}).items():
        if not isinstance(model, Mapping):
            continue
        if column in CSV_EQUALS and model.get("type") == "equals" and model.get("filter"):
            args[CSV_EQUALS[column]] = str(model["filter"])
        elif column == "created_at" and model.get("filterType") == "date":
            kind, low, high = model.get("type"), model.get("dateFrom"), model.get("dateTo")
            if kind in ("greaterThan", "inRange") and low:
                args["since"] = str(low)
            if kind == "lessThan" and low:
                args["until"] = str(low)
            if kind == "inRange" and high:
                args["until"] = str(high)
    return f"{base}?{urlencode(args)}" if args else base


@callback(
    Output(ids.HISTORY_GRID, "getRowsResponse"),
    Output(ids.HISTORY_TOTAL, "children"),
    Output(ids.HISTORY_CSV_LINK, "href"),
    Input(ids.HISTORY_GRID, "getRowsRequest"),
)
def on_rows_request(request):
    """Serve one block of rows; the grid asks again when it scrolls, sorts or filters."""
    if not request:
        from dash import no_update

        return no_update, no_update, no_update
    response, status = history_rows(request, data.context().store, data.analysis_href)
    return response, html.Span(status), csv_href(request.get("filterModel"), data.href("/api/history.csv"))
