"""The Batch page's parts: the upload and folder controls, the progress bar, and the result of a
batch (summary cards, counts by category, unit and severity, the results grid, the rejected list).

Pure layout: values in, components out. Links are built by the caller (`href_for`, `csv_href`)
so the app's URL prefix is applied in one place.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import dash_ag_grid as dag
import dash_bootstrap_components as dbc
from dash import dcc, html

from components import ids
from components.cards import relay_connection_input, section_title
from services.labels import pretty_label

ARCHIVE_ACCEPT = ".zip,.tar,.tgz,.gz,application/zip,application/gzip,application/x-tar"
#: the results grid's columns: the record, its state, then the verdict (as the History grid names them)
RESULT_COLUMNS: tuple[dict, ...] = (
    {"field": "link", "headerName": "#", "cellRenderer": "markdown", "linkTarget": "_self", "minWidth": 64,
     "maxWidth": 90, "filter": False},
    {"field": "record", "headerName": "Record", "minWidth": 180, "tooltipField": "record", "filter": True},
    {"field": "state", "headerName": "State", "minWidth": 90, "maxWidth": 110, "filter": True},
    {"field": "event", "headerName": "Event", "minWidth": 220, "tooltipField": "headline", "filter": True},
    {"field": "confidence", "headerName": "Confidence", "minWidth": 100, "maxWidth": 120,
     "valueFormatter": {"function": "params.value == null ? '' : d3.format('.1%')(params.value)"}},
    {"field": "equipment", "headerName": "Unit", "minWidth": 130, "filter": True},
    {"field": "severity", "headerName": "Severity", "minWidth": 92, "maxWidth": 110, "filter": True,
     "cellClassRules": {"sev-cell-critical": "params.value == 'critical'", "sev-cell-major": "params.value == 'major'",
                        "sev-cell-minor": "params.value == 'minor'"}},
    {"field": "transfer_status", "headerName": "Transfer", "minWidth": 88, "maxWidth": 110, "filter": True},
    {"field": "error", "headerName": "Reason", "minWidth": 160, "tooltipField": "error", "filter": True},
)


def batch_controls(folders: Sequence[str], upload_mb: float, batch_mb: float) -> dbc.Card:
    """Upload an archive (up to `upload_mb`, the dashboard's upload limit), or pick an allowed server
    folder (up to `batch_mb`, as `POST /api/batches`); each starts a batch at once."""
    folder_part: list[Any] = [
        dbc.Label("Or a server folder", html_for=ids.BATCH_FOLDER, className="small mb-1 mt-3"),
        html.Div([
            html.Div(dbc.Select(id=ids.BATCH_FOLDER, options=[{"label": f, "value": f} for f in folders],
                                placeholder="a folder the administrator allowed" if folders else
                                "no server folder is allowed (GEM_BATCH_ROOTS)", disabled=not folders),
                     className="flex-grow-1 me-2"),
            dbc.Button("Analyse folder", id=ids.BATCH_FOLDER_START, color="primary", disabled=not folders),
        ], className="d-flex align-items-center"),
    ]
    return dbc.Card([
        section_title("Records to analyse"),
        html.Label(dcc.Upload(
            id=ids.BATCH_UPLOAD,
            children=html.Div(["Drop an archive here or ", html.Span("choose a file", className="link-primary")]),
            className="upload-zone",
            accept=ARCHIVE_ACCEPT,
            multiple=False,
            max_size=int(upload_mb * 2**20),
        ), className="d-block mb-0"),
        html.Div(f"A zip, tar or tar.gz of records: COMTRADE (.cfg + .dat, .cff), .npy or CSV windows; up to "
                 f"{upload_mb:g} MB here (a folder, or POST /api/batches, takes up to {batch_mb:g} MB). "
                 "A name ending __<sender>__<receiver> sets the transfer.",
                 className="text-muted small mt-1"),
        *folder_part,
        relay_connection_input(ids.BATCH_RELAY_CONNECTION),  # every record of the batch is read through it
    ], body=True, className="shadow-sm mb-3")


def progress_panel() -> dbc.Card:
    """The running batch: a progress bar, its figures and Cancel."""
    return dbc.Card([
        section_title("Progress"),
        html.Progress(id=ids.BATCH_PROGRESS, value=0, max=1, className="w-100 mb-2", style={"height": "1.25rem"},
                      **{"aria-label": "Records analysed"}),
        html.Div([
            html.Div("No batch running.", id=ids.BATCH_PROGRESS_TEXT, className="small", role="status"),
            dbc.Button("Cancel", id=ids.BATCH_CANCEL, color="outline-danger", size="sm", disabled=True),
        ], className="d-flex justify-content-between align-items-center"),
    ], body=True, className="shadow-sm mb-3")


def progress_text(progress: Mapping[str, Any]) -> str:
    """'120 of 300 records · 45.2 records/s · about 4 s left' from `BatchProgress.to_dict()`."""
    finished, total = int(progress.get("finished") or 0), int(progress.get("total") or 0)
    parts = [f"{finished:,} of {total:,} records"]
    rate = progress.get("rate")
    parts.append(f"{rate:,.1f} records/s" if rate else "starting")
    eta = progress.get("eta_s")
    if eta is not None and finished < total:
        parts.append(f"about {_duration(eta)} left")
    return " · ".join(parts)


def _duration(seconds: float) -> str:
    seconds = max(0, round(float(seconds)))
    if seconds < 90:
        return f"{seconds} s"
    minutes, seconds = divmod(seconds, 60)
    if minutes < 90:
        return f"{minutes} min {seconds:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"


def batch_result(summary: Mapping[str, Any] | None, rows: Sequence[Mapping[str, Any]],
                 href_for: Callable[[int], str], csv_href: str, *, note: str | None = None) -> html.Div:
    """The finished (or cancelled) batch: cards with the counts, the breakdowns, the grid and the
    rejected records, with the CSV link."""
    if summary is None:
        return html.Div(dbc.Alert("This batch no longer exists.", color="warning"))
    counts = summary["counts"]
    cards = dbc.Row([
        dbc.Col(_figure_card("Records", summary["total"]), xs=6, md=3),
        dbc.Col(_figure_card("Analysed", counts.get("done", 0)), xs=6, md=3),
        dbc.Col(_figure_card("Rejected", counts.get("failed", 0)), xs=6, md=3),
        dbc.Col(_figure_card("Cancelled", counts.get("cancelled", 0)), xs=6, md=3),
    ], className="g-2 mb-3")
    breakdowns = dbc.Row([
        dbc.Col(_count_table("By category", summary["by_category"], "category"), md=4),
        dbc.Col(_count_table("By unit", summary["by_equipment"], "equipment"), md=4),
        dbc.Col(_count_table("By severity", summary["by_severity"], "severity"), md=4),
    ], className="g-2 mb-3")
    header = html.Div([
        html.Div([html.Div(summary.get("name") or "Batch", className="fw-bold"),
                  html.Div(f"batch {summary['batch_id']}", className="text-muted small")]),
        dbc.Button("Download CSV", id=ids.BATCH_CSV_LINK, href=csv_href, external_link=True, color="outline-primary",
                   size="sm"),
    ], className="d-flex justify-content-between align-items-end mb-2")
    rejected = summary.get("rejected") or []
    rejected_part = html.Div([
        section_title(f"Rejected records ({summary.get('rejected_count', len(rejected)):,})"),
        html.Ul([html.Li([html.Span(item["record"], className="fw-semibold"), ": ", item["reason"]])
                 for item in rejected], className="small mb-0") if rejected else
        html.Div("None.", className="text-muted small"),
    ], id=ids.BATCH_REJECTED, className="mt-3")
    return html.Div([
        dbc.Alert(note, color="warning", className="py-2") if note else None,
        header,
        html.Div([cards, breakdowns], id=ids.BATCH_SUMMARY),
        results_grid(rows, href_for),
        rejected_part,
    ])


def _figure_card(title: str, value: int) -> dbc.Card:
    return dbc.Card([html.Div(title, className="text-muted small"), html.Div(f"{int(value):,}", className="h4 mb-0",
                                                                              **{"data-count": title.lower()})],
                    body=True, className="text-center")


def _count_table(title: str, counts: Mapping[str, int], kind: str) -> dbc.Card:
    shown = {"equipment": lambda key: key.replace("_", " "), "category": lambda key: key.replace("_", " ")}
    name = shown.get(kind, lambda key: key)
    rows = [html.Tr([html.Td(name(key)), html.Td(f"{value:,}", className="text-end")]) for key, value in counts.items()]
    body = dbc.Table(html.Tbody(rows), size="sm", className="mb-0") if rows else html.Div("Nothing analysed.",
                                                                                           className="text-muted small")
    return html.Div(dbc.Card([section_title(title), body], body=True, className="h-100"), className="h-100",
                    **{"data-breakdown": kind})


def result_row(row: Mapping[str, Any], href_for: Callable[[int], str]) -> dict[str, Any]:
    """One grid row from `services.batch.batch_results`: JSON-safe, with the analysis's link."""
    analysis_id = row.get("analysis_id")
    return {
        "link": f"[#{int(analysis_id)}]({href_for(int(analysis_id))})" if analysis_id is not None else "",
        "record": row.get("record"), "state": row.get("state"),
        "event": pretty_label(row["label"]) if row.get("label") else "",
        "headline": row.get("headline") or "", "confidence": row.get("confidence"),
        "equipment": (row.get("equipment") or "").replace("_", " "), "severity": row.get("severity") or "",
        "transfer_status": row.get("transfer_status") or "", "error": row.get("error") or "",
    }


def results_grid(rows: Sequence[Mapping[str, Any]], href_for: Callable[[int], str]) -> dag.AgGrid:
    """Every record of the batch in a client-side grid (sort, filter, pages of 100)."""
    return dag.AgGrid(
        id=ids.BATCH_GRID,
        rowData=[result_row(row, href_for) for row in rows],
        columnDefs=list(RESULT_COLUMNS),
        columnSize="responsiveSizeToFit",
        defaultColDef={"resizable": True, "sortable": True, "wrapHeaderText": True, "autoHeaderHeight": True},
        dashGridOptions={"pagination": True, "paginationPageSize": 100, "paginationPageSizeSelector": False,
                         "tooltipShowDelay": 300, "animateRows": False},
        style={"height": "520px", "width": "100%"},
        className="ag-theme-quartz",
    )
