"""Tables: the latest analyses on the Analyze page, the History grid, peers and power-flow tables.

Rows are plain dicts (history records as `HistoryStore` returns them). Links are built by the caller
through `href_for` so that a URL prefix (`dash.get_relative_path`) is applied in one place.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import datetime

import dash_ag_grid as dag
import dash_bootstrap_components as dbc
from dash import dcc, html
from dash.development.base_component import Component

from components import ids
from components.microgrid import normalise_severity
from services.labels import display_label
from services.model_card import STATED_CONNECTION_FIGURES


def format_time(value: object) -> str:
    """Short UTC timestamp for tables; strings pass through trimmed."""
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M:%S")
    text = str(value or "")
    return text.replace("T", " ")[:19]


def severity_badge(severity: object) -> html.Span:
    """Severity as a coloured badge (colours from components/microgrid.py via dashboard.css)."""
    level = normalise_severity(severity)
    return html.Span(str(severity or level).capitalize(), className=f"badge severity-badge sev-bg-{level}")


def latest_table(rows: Sequence[Mapping], href_for: Callable[[int], str]) -> html.Div:
    """The latest analyses, newest first, each with its permanent link."""
    if not rows:
        return html.Div("No analyses yet: run one and it appears here.", className="text-muted small py-2")
    header = html.Thead(html.Tr([html.Th(title) for title in
                                 ("#", "Time (UTC)", "Event", "Confidence", "Severity", "Transfer", "Source")]))
    body = []
    for row in rows:
        analysis_id = int(row["id"])
        body.append(
            html.Tr(
                [
                    html.Td(dcc.Link(f"#{analysis_id}", href=href_for(analysis_id))),
                    html.Td(format_time(row.get("created_at")), className="text-nowrap"),
                    html.Td(display_label(row.get("label")), title=str(row.get("label") or "")),
                    html.Td(f"{float(row.get('confidence') or 0):.1%}"),
                    html.Td(severity_badge(row.get("severity"))),
                    html.Td(str(row.get("transfer_status") or "").replace("_", " ")),
                    html.Td(str(row.get("sample_name") or row.get("source") or ""), className="text-truncate",
                            style={"maxWidth": "14rem"}),
                ],
                className=ids.LATEST_ROW_CLASS,
                id={"type": ids.LATEST_ROW_CLASS, "id": analysis_id},
            )
        )
    return scroll_region(dbc.Table([header, html.Tbody(body)], hover=True, size="sm", className="mb-0 small"),
                         "Latest analyses")


#: History grid columns; every filter and sort is applied server-side by HistoryStore.query
_TEXT_FILTER = {"filter": "agTextColumnFilter",
                "filterParams": {"filterOptions": ["contains", "equals", "notEqual", "startsWith"],
                                 "maxNumConditions": 1, "buttons": ["reset"]}}
_NUMBER_FILTER = {"filter": "agNumberColumnFilter",
                  "filterParams": {"filterOptions": ["greaterThan", "lessThan", "inRange", "equals"],
                                   "maxNumConditions": 1, "buttons": ["reset"]}}
#: The columns fit a 1440 px window (`responsiveSizeToFit` shares the width out above each minWidth);
#: category and kind are hidden by default (the Event text says both), and so is the source (the
#: Sample / file column names it). On a phone the grid scrolls
#: sideways inside its card, never the page. The Event column shows the readable label and its text
#: filter matches that text (services.history.filters.DISPLAYED_AS); its tooltip is the verdict's headline.
HISTORY_COLUMNS: tuple[dict, ...] = (
    {"field": "id", "headerName": "#", "cellRenderer": "markdown", "linkTarget": "_self", "minWidth": 56,
     "maxWidth": 80, "filter": False},
    {"field": "created_at", "headerName": "Time (UTC)", "minWidth": 158, "maxWidth": 180, "filter": "agDateColumnFilter",
     "filterParams": {"filterOptions": ["greaterThan", "lessThan", "inRange"], "maxNumConditions": 1,
                      "buttons": ["reset"]}},
    {"field": "label", "headerName": "Event", "width": 320, "minWidth": 180,
     "headerTooltip": "The event as shown; the filter matches this text, e.g. 'inrush', 'Power transformer' or 'AG'",
     "tooltipValueGetter": {"function": "params.data ? (params.data.headline || params.data.event) : ''"},
     "valueFormatter": {"function": "params.data ? params.data.event : params.value"},
     **_TEXT_FILTER},
    {"field": "confidence", "headerName": "Confidence", "minWidth": 104, "maxWidth": 120, **_NUMBER_FILTER,
     "valueFormatter": {"function": "params.value == null ? '' : d3.format('.1%')(params.value)"}},
    {"field": "category", "headerName": "Category", "minWidth": 110, "hide": True, **_TEXT_FILTER},
    {"field": "equipment", "headerName": "Equipment", "width": 230, "minWidth": 130, **_TEXT_FILTER,
     "cellClassRules": {"unit-uncertain": "params.data && params.data.equipment_uncertain"},
     "tooltipValueGetter": {"function": "params.data && params.data.equipment_uncertain ? "
                                        "'unit uncertain: ' + (params.data.headline || '') : params.value"}},
    {"field": "kind", "headerName": "Kind", "minWidth": 90, "hide": True, **_TEXT_FILTER},
    {"field": "severity", "headerName": "Severity", "minWidth": 92, "maxWidth": 110, **_TEXT_FILTER,
     "cellClassRules": {"sev-cell-critical": "params.value == 'critical'",
                        "sev-cell-major": "params.value == 'major'",
                        "sev-cell-minor": "params.value == 'minor'"}},
    {"field": "transfer_status", "headerName": "Transfer", "minWidth": 88, "maxWidth": 110, **_TEXT_FILTER},
    {"field": "sender", "headerName": "Sender", "minWidth": 110, "maxWidth": 150, "tooltipField": "sender", **_TEXT_FILTER},
    {"field": "receiver", "headerName": "Receiver", "minWidth": 110, "maxWidth": 150, "tooltipField": "receiver", **_TEXT_FILTER},
    {"field": "transfer_kw", "headerName": "kW", "minWidth": 56, "maxWidth": 80, **_NUMBER_FILTER},
    {"field": "source", "headerName": "Source", "minWidth": 85, "hide": True, **_TEXT_FILTER},
    {"field": "sample_name", "headerName": "Sample / file", "width": 200, "minWidth": 120, "tooltipField": "sample_name",
     **_TEXT_FILTER},
    {"field": "true_label", "headerName": "True label", "width": 200, "minWidth": 120, "tooltipField": "true_label",
     **_TEXT_FILTER},
    #: shown when someone is signed in (history_grid(show_user=True)); the Mine button filters on it either way
    {"field": "user", "headerName": "User", "minWidth": 64, "maxWidth": 120, "hide": True, "tooltipField": "user",
     **_TEXT_FILTER},
)


#: the columns a phone shows and their narrower widths; time and event wrap onto two lines there
#: (components.shell applies this below PHONE_MAX_PX of window width)
PHONE_COLUMNS: dict[str, int] = {"id": 48, "created_at": 96, "label": 118, "severity": 80}  # field -> minWidth


def history_grid(page_size: int = 100, show_user: bool = False) -> dag.AgGrid:
    """The History grid in infinite row model: rows come page by page from the server; `show_user`
    shows who asked for each analysis (when users sign in)."""
    columns = [{**column, "hide": False} if show_user and column["field"] == "user" else column
               for column in HISTORY_COLUMNS]
    return dag.AgGrid(
        id=ids.HISTORY_GRID,
        rowModelType="infinite",
        columnDefs=columns,
        columnSize="responsiveSizeToFit",
        defaultColDef={"resizable": True, "sortable": True, "wrapHeaderText": True, "autoHeaderHeight": True},
        dashGridOptions={
            "rowBuffer": 0,
            "cacheBlockSize": page_size,
            "maxBlocksInCache": 20,
            "infiniteInitialRowCount": 1,
            "pagination": True,
            "paginationPageSize": page_size,
            "paginationPageSizeSelector": False,
            "tooltipShowDelay": 300,
            "animateRows": False,
        },
        style={"height": "640px", "width": "100%"},
        className="ag-theme-quartz",
    )


def history_row(record: Mapping, href_for: Callable[[int], str]) -> dict:
    """One grid row: JSON-safe scalars only, with the permanent link as markdown.

    `headline` and `equipment_uncertain` are used when the record has them (the verdict of an
    analysis stored with the prediction levels): the Event tooltip and the Equipment marker.
    """
    analysis_id = int(record["id"])
    row = {column["field"]: record.get(column["field"]) for column in HISTORY_COLUMNS}
    row["id"] = f"[#{analysis_id}]({href_for(analysis_id)})"
    row["event"] = display_label(record.get("label"))
    row["analysis_id"] = analysis_id
    row["created_at"] = format_time(record.get("created_at"))
    confidence = record.get("confidence")
    row["confidence"] = float(confidence) if confidence is not None else None
    prediction = record.get("prediction") if isinstance(record.get("prediction"), Mapping) else {}
    row["headline"] = str(record.get("headline") or prediction.get("headline") or "") or None
    row["equipment_uncertain"] = bool(record.get("equipment_uncertain") or prediction.get("equipment_uncertain"))
    return row


def key_value_table(rows: Sequence[tuple[str, object]], *, component_id: str | None = None) -> dbc.Table:
    """Two-column facts table (model card, training data)."""
    body = html.Tbody([html.Tr([html.Th(key, className="text-muted fw-normal"),
                                html.Td(value if isinstance(value, Component) else str(value))])
                       for key, value in rows])
    table = dbc.Table(body, size="sm", className="mb-0 small kv-table", borderless=True)
    if component_id:
        table.id = component_id
    return table


def scroll_region(table: Component, label: str) -> html.Div:
    """A table that scrolls sideways inside its card on a narrow screen; the region takes the keyboard
    focus so that it can be scrolled without a mouse (axe: scrollable-region-focusable)."""
    return html.Div(table, className="table-responsive", tabIndex="0", role="region", **{"aria-label": label})


def simple_table(headers: Sequence[str], rows: Sequence[Sequence[object]], *,
                 component_id: str | None = None, row_classes: Sequence[str] | None = None,
                 label: str | None = None) -> html.Div:
    """A compact table of plain values (peers, buses, lines)."""
    body = []
    for index, row in enumerate(rows):
        body.append(html.Tr([html.Td(cell) for cell in row],
                            className=row_classes[index] if row_classes else None))
    table = dbc.Table([html.Thead(html.Tr([html.Th(h) for h in headers])), html.Tbody(body)],
                      size="sm", hover=True, className="mb-0 small")
    if component_id:
        table.id = component_id
    return scroll_region(table, label or ", ".join(str(h) for h in headers[:3]))


#: the three test sets of model_card.json["levels_report"], in the order the Model page shows them
LEVELS_REPORT_SETS: tuple[tuple[str, str], ...] = (
    ("simulator", "our simulator"), ("shift", "shift set"), ("independent_transients", "independent transients"))
#: the figures of each set (fractions 0-1 unless marked count); rows that no set has are left out
LEVELS_REPORT_ROWS: tuple[tuple[str, str, bool], ...] = (
    ("category_accuracy", "Category (fault / transient)", False),
    ("phases_accuracy", "Faulted phases (A, B, C involved)", False),
    ("phases_sure_share", "Phases named as sure (p \u2265 0.8)", False),
    ("phases_sure_accuracy", "Faulted phases where named as sure", False),
    ("confidently_wrong_phases_all", "Confidently wrong phases (every fault)", False),
    ("phases_ece", "Phases calibration error (ECE, every fault)", False),
    ("fault_kind_accuracy", "Fault kind (phases and ground)", False),
    ("phases_readable_share", "Faults whose phases the relay view shows", False),
    ("transient_kind_accuracy", "Which transient", False),
    ("kind_accuracy", "Kind", False),  # cards written before phases and transient kind were scored apart
    ("equipment_accuracy", "Equipment (faulted unit)", False),
    ("exact_accuracy", "Exact label", False),
    ("confidently_wrong_equipment", "Confidently wrong unit", False),
    ("confidently_wrong_label", "Confidently wrong label", False),
    ("unknown_rate", "Marked unfamiliar", False),
    ("equipment_uncertain_rate", "Unit reported uncertain", False),
    ("windows", "Windows", True),
    ("internal_fault_windows", "of them internal faults", True),
)


_SET_TITLES = dict(LEVELS_REPORT_SETS)


def stated_connection_table(rows: Sequence[Mapping] | None, titles: Mapping[str, str]) -> html.Div | None:
    """What stating the relay connection changes: per connection and test set, each figure read
    without and with the connection's head ("89.0% → 96.4%"). `rows` as services.model_card
    gives them; `titles` names the connections. None without rows."""
    if not rows:
        return None

    def change(pair: object) -> str:
        before, after = pair if isinstance(pair, tuple | list) and len(pair) == 2 else (None, None)
        return f"{_report_cell(before, False)} → {_report_cell(after, False)}"

    body = [(titles.get(row["connection"], row["connection"]), _SET_TITLES.get(row["set"], row["set"]),
             *(change(row.get(field)) for field, _ in STATED_CONNECTION_FIGURES)) for row in rows]
    return html.Div([
        html.P("The same windows, all seen through one relay connection, read with the connection not stated "
               "(every connection weighed) → stated (its own head). Our simulator's windows and the "
               "shift set's windows of the same connection.", className="small text-muted mb-2"),
        simple_table(("Relay connection", "Test set", *(title for _, title in STATED_CONNECTION_FIGURES)), body,
                     component_id=ids.MODEL_STATED_CONNECTION, label="What stating the relay connection changes"),
    ])


def _report_cell(value: object, count: bool) -> str:
    """A count with thousands separators, a fraction as a percentage (two decimals below 1 %)."""
    if value is None:
        return "n/a"
    if isinstance(value, bool) or not isinstance(value, int | float):
        return str(value)
    if count:
        return f"{value:,}"
    return f"{float(value):.2%}" if 0 < float(value) < 0.01 else f"{float(value):.1%}"


def levels_report_table(report: Mapping | None) -> html.Div | None:
    """model_card.json["levels_report"] as one table, the three test sets side by side (our simulator,
    shift set, independent transients), then its notes (what the model cannot know).

    `report` is {"simulator": R, "shift": R, "independent_transients": R, "notes": [str]} with R the
    per-level figures (services.training.levels_report); a figure a set cannot have (equipment on a
    transients-only set) is None and shows "n/a". None for a card without a report: nothing is drawn.
    """
    if not isinstance(report, Mapping):
        return None
    sets = report.get("sets") if isinstance(report.get("sets"), Mapping) else report  # or services.model_card's view
    columns = [(key, title) for key, title in LEVELS_REPORT_SETS if isinstance(sets.get(key), Mapping)]
    if not columns:
        return None
    rows = [(title, *(_report_cell(sets[key].get(field), count) for key, _ in columns))
            for field, title, count in LEVELS_REPORT_ROWS if any(field in sets[key] for key, _ in columns)]
    notes = [str(note) for note in report.get("notes") or [] if note]
    return html.Div([
        simple_table(("", *(title for _, title in columns)), rows, component_id=ids.MODEL_LEVELS_REPORT,
                     label="The answer level by level on three test sets"),
        html.H3("What the model cannot know", className="h6 small text-muted mt-3 mb-1") if notes else None,
        html.Ul([html.Li(note) for note in notes], className="small mb-0") if notes else None,
    ])
