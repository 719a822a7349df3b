"""Compare ("/compare?ids=1,2,3"): two to four stored analyses side by side, a permanent link.

Their waveforms overlaid per phase with time measured from each one's inception (read from the
signal by `services.analytics`; the model's estimate, then the record's start, when the signal
shows none), and their labels, confidences and key figures in one table, downloadable as CSV.
"""

from __future__ import annotations

from typing import Any

import dash_bootstrap_components as dbc
from dash import dcc, html

from app.context import analysis_context, analysis_href, href, model_status
from components import ids
from components.analytics_panels import EXPORT_CONFIG, compare_figure, compare_rows, compare_table
from components.cards import history_unavailable, model_banner, section_title
from services.analysis import Analysis
from services.analytics.cache import analytics_for
from services.history import HistoryUnavailable
from services.waveform import time_axis_ms

PAGE = {"path": "/compare", "name": "Compare", "title": "Compare - Grid Event Monitor", "order": 8, "nav": False}
MIN_COMPARED, MAX_COMPARED = 2, 4


class CompareRequestError(ValueError):
    """The ids asked for cannot be compared; the message says what to send."""


def parse_ids(text: Any) -> list[int]:
    """'3, 7,9' -> [3, 7, 9]: two to four distinct positive integers, in the order given."""
    if not isinstance(text, str) or not text.strip():
        raise CompareRequestError(f"choose {MIN_COMPARED} to {MAX_COMPARED} analyses: /compare?ids=1,2")
    chosen: list[int] = []
    for part in text.replace(" ", "").split(","):
        if not part:
            continue
        if not (part.isascii() and part.isdigit()) or len(part) > 18 or int(part) <= 0:
            raise CompareRequestError(f"analysis ids are positive integers separated by commas, not {part[:20]!r}")
        if int(part) not in chosen:
            chosen.append(int(part))
    if not MIN_COMPARED <= len(chosen) <= MAX_COMPARED:
        raise CompareRequestError(f"choose {MIN_COMPARED} to {MAX_COMPARED} different analyses, got {len(chosen)}")
    return chosen


def entry_for(analysis: Analysis) -> dict[str, Any]:
    """What the figure and the table need of one analysis, aligned on its inception."""
    analytics = analytics_for(analysis.waveform, analysis.analysis_id)
    if analytics["inception_ms"] is not None:
        shift, source = analytics["inception_ms"], "signal"
    elif analysis.inception_ms is not None:
        shift, source = float(analysis.inception_ms), "model"
    else:
        shift, source = 0.0, "record start"
    confidence = f"{analysis.confidence:.1%}"
    return {"analysis_id": analysis.analysis_id, "label": analysis.label, "confidence": analysis.confidence,
            "title": f"#{analysis.analysis_id} {analysis.pretty_label} ({confidence})",
            "title_label": analysis.pretty_label, "waveform": [list(row) for row in analysis.waveform],
            "time_ms": time_axis_ms().tolist(), "shift_ms": shift, "inception_source": source,
            "analytics": analytics}


def layout(**query: Any) -> html.Div:
    banner = model_banner(model_status())
    try:
        wanted = parse_ids(query.get("ids"))
    except CompareRequestError as exc:
        return _page([banner, _heading(), dbc.Alert(str(exc), color="info", id=ids.COMPARE_ALERT),
                      html.P(["Tick two to four rows in the ", dcc.Link("history", href=href("/history")),
                              " and press Compare, or use \u201cCompare with\u201d on an analysis page."],
                             className="small")])
    context = analysis_context()
    try:
        found = {number: context.load(number) for number in wanted}
    except HistoryUnavailable as exc:
        return _page([banner, _heading(), history_unavailable(str(exc))])
    missing = [number for number, analysis in found.items() if analysis is None]
    without_waveform = [number for number, analysis in found.items() if analysis is not None and not analysis.waveform]
    entries = [entry_for(analysis) for analysis in found.values() if analysis is not None and analysis.waveform]
    notes = []
    if missing:
        notes.append(f"no analysis with id {', '.join(f'#{n}' for n in missing)}")
    if without_waveform:
        notes.append(f"no stored waveform for {', '.join(f'#{n}' for n in without_waveform)}")
    alert = dbc.Alert("; ".join(notes).capitalize() + ".", color="warning", id=ids.COMPARE_ALERT) if notes else None
    if len(entries) < MIN_COMPARED:
        return _page([banner, _heading(), alert or None,
                      dbc.Alert(f"At least {MIN_COMPARED} analyses with a waveform are needed to compare.",
                                color="info")])
    return _page([
        banner, _heading(", ".join(f"#{entry['analysis_id']}" for entry in entries)), alert,
        dcc.Store(id=ids.COMPARE_STORE, data=compare_rows(entries)),
        dbc.Card([
            section_title("Waveforms aligned on inception"),
            dcc.Graph(id=ids.COMPARE_WAVEFORMS, figure=compare_figure(entries),
                      config={**EXPORT_CONFIG, "toImageButtonOptions": {
                          **EXPORT_CONFIG["toImageButtonOptions"], "filename": "comparison"}}),
            html.Div("Time 0 is each event's inception read from the signal (else the model's estimate, else the "
                     "record's start: the table says which).", className="text-muted small"),
        ], body=True, className="mb-3 shadow-sm"),
        dbc.Card([
            html.Div([section_title("Key figures"),
                      html.Div([dbc.Button("Table (CSV)", id=ids.COMPARE_CSV_BUTTON, size="sm", color="secondary",
                                           outline=True), dcc.Download(id=ids.COMPARE_CSV)])],
                     className="d-flex justify-content-between"),
            compare_table(entries, analysis_href),
        ], body=True, className="mb-3 shadow-sm"),
    ])


def _heading(which: str | None = None) -> html.Div:
    return html.Div([html.H1(f"Compare {which}" if which else "Compare events", className="h4 mb-1"),
                     dcc.Link("\u2190 History", href=href("/history"), className="small")], className="mb-3")


def _page(children: list) -> html.Div:
    return html.Div([child for child in children if child is not None], id=ids.COMPARE_PAGE)
