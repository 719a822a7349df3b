"""One stored analysis ("/analysis/<analysis_id>"): the permanent link from History and Analyze."""

from __future__ import annotations

import dash_bootstrap_components as dbc
from dash import dcc, html

from app.context import analysis_context, href, model_status
from components import analysis_panels as panels
from components import ids
from components.analytics_panels import analytics_card, compare_with_form, with_cursor
from components.cards import (
    GRAPH_CONFIG,
    history_unavailable,
    model_banner,
    result_card,
    section_title,
    waveform_header,
)
from components.microgrid import microgrid_graph
from components.tables import format_time, severity_badge
from services.analysis import Analysis
from services.analytics.cache import analytics_for
from services.grid import default_graph, display_names, transfer_path_edges
from services.history import HistoryUnavailable
from services.labels import pretty_label

PAGE = {"path_template": "/analysis/<analysis_id>", "name": "Analysis", "title": "Analysis - Grid Event Monitor",
        "order": 9}


def _header(analysis: Analysis, names: dict[str, str]) -> html.Div:
    source = f"source: {analysis.source}" + (f" ({analysis.sample_name})" if analysis.sample_name else "")
    facts = [
        f"{format_time(analysis.created_at)} UTC",
        source,
        f"transfer {names.get(analysis.sender, analysis.sender)} \u2192 "
        f"{names.get(analysis.receiver, analysis.receiver)}, {analysis.transfer_kw:g} kW",
    ]
    if analysis.true_label:
        facts.append(f"true label: {_title(analysis.true_label)}")
    origin = panels.recording_text(analysis) or panels.simulation_text(analysis)
    units = (analysis.units or {}).get("summary")
    return html.Div(
        [
            html.Div(
                [html.H1([f"Analysis #{analysis.analysis_id}: ", analysis.pretty_label], className="h4 mb-1 me-3"),
                 severity_badge(analysis.severity)],
                className="d-flex align-items-center",
            ),
            html.Div(" \u00b7 ".join(facts), className="text-muted small"),
            html.Div(origin, id=ids.ANALYSIS_RECORDING, className="text-muted small") if origin else None,
            html.Div(f"units: {units}", className="text-muted small") if units else None,
            dcc.Link("\u2190 History", href=href("/history"), className="small"),
        ],
        id=ids.ANALYSIS_HEADER, className="mb-3",
    )


def _title(label: str) -> str:
    try:
        return pretty_label(label)
    except ValueError:
        return label


def not_found(analysis_id: object) -> html.Div:
    """What the page says for an id without an analysis (the server answers 404 too)."""
    return html.Div(
        dbc.Alert(
            [html.H1("Analysis not found", className="h4 alert-heading"),
             f"There is no analysis with id {analysis_id!s:.30}. ",
             dcc.Link("Browse the history", href=href("/history"))],
            color="warning",
        ),
        id=ids.ANALYSIS_NOT_FOUND,
    )


def layout(analysis_id: str | None = None, **_query) -> html.Div:
    try:
        analysis = analysis_context().load(analysis_id)
    except HistoryUnavailable as exc:
        return html.Div([model_banner(model_status()), history_unavailable(str(exc))])
    if analysis is None:
        return not_found(analysis_id)
    names = display_names()
    analytics = analytics_for(analysis.waveform, analysis.analysis_id) if analysis.waveform else None
    waveform_card = dbc.Card(
        [
            waveform_header(ids.ANALYSIS_WAVEFORM_VIEW),
            dcc.Graph(id=ids.ANALYSIS_WAVEFORM, figure=with_cursor(panels.waveform_for(analysis), analytics),
                      config=GRAPH_CONFIG)
            if analysis.waveform else html.Div("The waveform of this analysis was not stored.",
                                               className="text-muted small py-3"),
            html.Hr(className="my-2"),
            html.Div(panels.headline_for(analysis, names)),
        ],
        body=True, className="mb-3 shadow-sm h-100",
    )
    graph = panels.graph_for(default_graph(), analysis, path_edges=transfer_path_edges(analysis.sender, analysis.receiver))
    graph_card = dbc.Card(
        [section_title("P2P microgrid"), microgrid_graph(ids.ANALYSIS_MICROGRID, graph),
         html.Div(panels.graph_caption(analysis, names), id=ids.ANALYSIS_MICROGRID_CAPTION, className="small mt-1")],
        body=True, className="mb-3 shadow-sm h-100",
    )
    return html.Div(
        [
            model_banner(model_status()),
            dcc.Store(id=ids.ANALYSIS_WAVEFORM_STORE, data=analysis.to_json(saliency=False)),
            _header(analysis, names),
            dbc.Row([dbc.Col(waveform_card, xl=7), dbc.Col(graph_card, xl=5)], className="g-3 mb-3"),
            analytics_card(ids.ANALYSIS_ANALYTICS, analytics),  # signal analytics (issue 15)
            compare_with_form(analysis.analysis_id, href("/compare")),
            dbc.Row(
                [
                    dbc.Col(result_card("Model confidence", ids.ANALYSIS_CONFIDENCE, panels.confidence_for(analysis)),
                            xl=4),
                    dbc.Col(result_card("Impact on the P2P network", ids.ANALYSIS_IMPACT,
                                        panels.impact_for(analysis, names)), xl=5),
                    dbc.Col(result_card("What happened", ids.ANALYSIS_DESCRIPTION, panels.description_for(analysis)), xl=3),
                ],
                className="g-3",
            ),
        ],
        id=ids.ANALYSIS_PAGE,
    )
