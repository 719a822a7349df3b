"""Callbacks of the signal-analytics card (issue 15) on the Analyze page and on `/analysis/<id>`.

Thin: each page's analysis store (the Analysis JSON the page already holds) -> the analytics
through `services.analytics.cache` -> `components.analytics_panels`. Two callbacks per page: a new
analysis resets the window slider to the event's first full cycle and fills the key figures; the
slider redraws the four figures and moves the cursor band on the waveform (a Patch of its shapes,
so the waveform's own callbacks keep owning its data). The store lives in the browser, so anything
that is not an analysis with a valid window changes nothing.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from typing import Any

import dash
from dash import Input, Output, Patch, State, dcc, no_update

from components import ids
from components.analysis_panels import waveform_for
from components.analytics_panels import (
    FIGURE_SUFFIXES,
    clamp_position,
    cursor_shape,
    key_figures_table,
    panels_at,
)
from services.analysis import Analysis
from services.analytics.cache import analytics_for
from services.analytics.export import analytics_csv, compare_csv
from services.waveform import WaveformError, waveform_from_json

log = logging.getLogger(__name__)

#: (card prefix, the page's analysis store, (component, property, path to the figure in it) of its
#: waveform, its raw/RMS radio). The Analyze page's graph exists only once there is a result, so its
#: cursor is patched through the container that always exists (a Dash Output must exist in the page)
PAGES = (
    (ids.ANALYZE_ANALYTICS, ids.ANALYZE_RESULT_STORE, (ids.WAVEFORM_CONTAINER, "children", ("props", "figure")),
     ids.WAVEFORM_VIEW),
    (ids.ANALYSIS_ANALYTICS, ids.ANALYSIS_WAVEFORM_STORE, (ids.ANALYSIS_WAVEFORM, "figure", ()),
     ids.ANALYSIS_WAVEFORM_VIEW),
)


class NotAnAnalysis(ValueError):
    """The page's store holds no usable analysis."""


def analytics_of(stored: Any) -> dict[str, Any] | None:
    """The analytics JSON of the analysis a page holds (None when it holds none or no waveform);
    NotAnAnalysis when the browser sent something else."""
    if not stored:
        return None
    if not isinstance(stored, Mapping):
        raise NotAnAnalysis("the store is not an analysis")
    if not stored.get("waveform"):
        return None
    try:
        waveform = waveform_from_json(stored["waveform"])
    except WaveformError as exc:
        raise NotAnAnalysis(str(exc)) from None
    analysis_id = stored.get("analysis_id")
    return analytics_for(waveform, analysis_id if isinstance(analysis_id, int) and analysis_id > 0 else None)


def card_update(stored: Any) -> dict[str, Any]:
    """On a new analysis: slider range and position (the event's window), key figures, visibility."""
    analytics = analytics_of(stored)
    if analytics is None:
        return {"max": 0, "value": 0, "table": key_figures_table(None), "style": {"display": "none"}}
    return {"max": len(analytics["start_ms"]) - 1, "value": int(analytics.get("event_position") or 0),
            "table": key_figures_table(analytics), "style": {}}


def window_update(stored: Any, position: Any, mode: str | None, figure_path: tuple[str, ...] = ()) -> dict[str, Any]:
    """The four figures and the caption at window `position`, and a Patch of the waveform's shapes
    with the cursor (`figure_path`: where the figure sits in the patched property)."""
    analytics = analytics_of(stored)
    panels = panels_at(analytics, position)
    if analytics is None:
        return {**panels, "waveform": no_update}
    analysis = Analysis.from_json(stored)
    shapes = list(waveform_for(analysis, mode or "raw")["layout"].get("shapes") or [])
    patch = target = Patch()
    for key in figure_path:
        target = target[key]
    target["layout"]["shapes"] = [*shapes, cursor_shape(analytics, clamp_position(analytics, position))]
    return {**panels, "waveform": patch}


def register(app: dash.Dash) -> None:
    """The card's callbacks for both pages on `app`, and the comparison's (its CSV, its links)."""
    for prefix, store, graph, view in PAGES:
        _register_page(app, prefix, store, graph, view)
    _register_compare(app)


def compare_href(analysis_ids: list[Any], base: str = "/compare") -> str | None:
    """`/compare?ids=...` for 2-4 distinct positive ids (others dropped), else None."""
    chosen: list[int] = []
    for value in analysis_ids:
        text = str(value).strip().lstrip("#")
        if text.isascii() and text.isdigit() and int(text) > 0 and len(text) <= 18 and int(text) not in chosen:
            chosen.append(int(text))
    return f"{base}?ids={','.join(map(str, chosen))}" if 2 <= len(chosen) <= 4 else None


def selected_ids(rows: Any) -> list[Any]:
    """The analysis ids of the History grid's selected rows (`analysis_id`: `id` is the link's markdown)."""
    if not isinstance(rows, list):
        return []
    return [row.get("analysis_id") for row in rows if isinstance(row, Mapping)]


#: row checkboxes in the History grid from tablet width up (a phone keeps its narrow columns; issue 15)
_SELECTABLE_ROWS = """
function (id, options) {
    if (window.innerWidth < 768) { return [window.dash_clientside.no_update, window.dash_clientside.no_update]; }
    return [Object.assign({}, options || {}, {
        rowSelection: {mode: "multiRow", checkboxes: true, headerCheckbox: false, enableClickSelection: false},
        selectionColumnDef: {width: 32, minWidth: 32, maxWidth: 32, resizable: false, suppressHeaderMenuButton: true}
    }), "responsiveSizeToFit"];
}
"""


def _register_compare(app: dash.Dash) -> None:
    base = app.get_relative_path("/compare")
    app.clientside_callback(_SELECTABLE_ROWS, Output(ids.HISTORY_GRID, "dashGridOptions"),
                            Output(ids.HISTORY_GRID, "columnSize"),  # fit again with the checkbox column
                            Input(ids.HISTORY_GRID, "id"), State(ids.HISTORY_GRID, "dashGridOptions"))

    @app.callback(
        Output(ids.HISTORY_COMPARE, "href"), Output(ids.HISTORY_COMPARE, "disabled"),
        Output(ids.HISTORY_COMPARE, "children"),
        Input(ids.HISTORY_GRID, "selectedRows"),
        prevent_initial_call=True,
    )
    def on_history_selection(rows):
        """Ticked History rows -> the comparison's link (2 to 4 rows)."""
        chosen = selected_ids(rows)
        link = compare_href(chosen, base)
        label = f"Compare {len(chosen)} selected" if chosen else "Compare selected"
        return link or base, link is None, label

    @app.callback(
        Output(ids.ANALYSIS_COMPARE_LINK, "href"),
        Input(ids.ANALYSIS_COMPARE_WITH, "value"), State(ids.ANALYSIS_WAVEFORM_STORE, "data"),
        prevent_initial_call=True,
    )
    def on_compare_with(text, stored):
        """'Compare with' ids typed on an analysis page -> the comparison's link (this analysis first)."""
        own = stored.get("analysis_id") if isinstance(stored, Mapping) else None
        typed = str(text or "").replace(";", ",").replace(" ", ",").split(",")
        return compare_href([own, *typed], base) or no_update

    @app.callback(
        Output(ids.COMPARE_CSV, "data"),
        Input(ids.COMPARE_CSV_BUTTON, "n_clicks"), State(ids.COMPARE_STORE, "data"),
        prevent_initial_call=True,
    )
    def on_compare_csv(_clicks, rows):
        """The comparison table as a CSV download."""
        if not isinstance(rows, list) or not all(isinstance(row, Mapping) for row in rows):
            return no_update
        return dcc.send_string(compare_csv(rows), "comparison.csv")


#: "Figures (PNG)": Plotly's own export (the modebar's camera) of each figure of the card
_DOWNLOAD_PNGS = """
function (clicks) {
    if (!clicks || !window.Plotly) { return window.dash_clientside.no_update; }
    GRAPHS.forEach(function (id) {
        const gd = document.querySelector('#' + id + ' .js-plotly-plot');
        if (gd) { window.Plotly.downloadImage(gd, {format: 'png', scale: 2, filename: id}); }
    });
    return clicks;
}
"""


def _register_page(app: dash.Dash, prefix: str, store: str, waveform: tuple[str, str, tuple[str, ...]],
                   view: str) -> None:
    graph, prop, figure_path = waveform
    part = lambda suffix: ids.analytics_id(prefix, suffix)  # noqa: E731

    app.clientside_callback(
        _DOWNLOAD_PNGS.replace("GRAPHS", json.dumps([part(suffix) for suffix in FIGURE_SUFFIXES])),
        Output(part(ids.ANALYTICS_PNG_DONE), "data"), Input(part(ids.ANALYTICS_PNG_BUTTON), "n_clicks"),
        prevent_initial_call=True,
    )

    @app.callback(
        Output(part(ids.ANALYTICS_SLIDER), "max"), Output(part(ids.ANALYTICS_SLIDER), "value"), Output(part(ids.ANALYTICS_TABLE), "children"),
        Output(prefix, "style"),
        Input(store, "data"),
        prevent_initial_call=True,
    )
    def on_analysis(stored):
        """A new analysis on the page: the card at its event's window."""
        try:
            update = card_update(stored)
        except NotAnAnalysis:
            log.warning("analytics card: the page's store is not an analysis; nothing changed")
            return (no_update,) * 4
        return update["max"], update["value"], update["table"], update["style"]

    @app.callback(
        Output(part(ids.ANALYTICS_SPECTRUM), "figure"), Output(part(ids.ANALYTICS_PHASORS), "figure"),
        Output(part(ids.ANALYTICS_SEQUENCE), "figure"), Output(part(ids.ANALYTICS_RMS), "figure"),
        Output(part(ids.ANALYTICS_CYCLE_TEXT), "children"), Output(graph, prop, allow_duplicate=True),
        Input(part(ids.ANALYTICS_SLIDER), "value"), Input(store, "data"),
        State(view, "value"),
        prevent_initial_call=True,
    )
    def on_window(position, stored, mode):
        """The slider (or a new analysis): figures at that window, cursor on the waveform."""
        try:
            update = window_update(stored, position, mode, figure_path)
        except (NotAnAnalysis, TypeError, ValueError, KeyError):
            log.warning("analytics card: the page's store is not an analysis; nothing redrawn")
            return (no_update,) * 6
        return (update["spectrum"], update["phasors"], update["sequence"], update["rms"], update["text"],
                update["waveform"])

    @app.callback(
        Output(part(ids.ANALYTICS_CSV), "data"),
        Input(part(ids.ANALYTICS_CSV_BUTTON), "n_clicks"), State(store, "data"),
        prevent_initial_call=True,
    )
    def on_csv(_clicks, stored):
        """The numbers of every window and phase as a CSV download."""
        try:
            analytics = analytics_of(stored)
        except NotAnAnalysis:
            return no_update
        if analytics is None:
            return no_update
        analysis_id = stored.get("analysis_id")
        name = f"analysis-{analysis_id}-analytics.csv" if isinstance(analysis_id, int) else "analytics.csv"
        return dcc.send_string(analytics_csv(analytics), name)
