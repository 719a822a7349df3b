"""One stored analysis ("/analysis/<analysis_id>"): the permanent link from History and Analyze."""

from __future__ import annotations

import dash
import dash_bootstrap_components as dbc
from dash import dcc, html

import callbacks.analysis  # noqa: F401  (registers this page's callbacks)
from callbacks import data
from callbacks.analysis import load_view
from callbacks.views import (
    confidence_for,
    description_for,
    graph_caption,
    graph_for,
    headline_for,
    impact_for,
    recording_text,
    waveform_for,
)
from components import ids
from components.cards import GRAPH_CONFIG, model_banner, result_card, section_title, waveform_header
from components.microgrid import microgrid_graph
from components.tables import format_time, severity_badge
from services.labels import pretty_label

dash.register_page(__name__, path_template="/analysis/<analysis_id>", name="Analysis",
                   title="Analysis - Grid Event Monitor", order=9)


def _title(label: str | None) -> str:
    try:
        return pretty_label(str(label))
    except ValueError:
        return str(label or "")


def _header(view: dict) -> html.Div:
    prediction = view["prediction"]
    peers = data.peer_names()
    facts = [
        f"{format_time(view.get('created_at'))} UTC",
        f"source: {view.get('source') or 'n/a'}" + (f" ({view['sample_name']})" if view.get("sample_name") else ""),
        f"transfer {peers.get(view.get('sender'), view.get('sender'))} \u2192 "
        f"{peers.get(view.get('receiver'), view.get('receiver'))}, {float(view.get('transfer_kw') or 0):g} kW",
    ]
    if view.get("true_label"):
        facts.append(f"true label: {_title(view['true_label'])}")
    recording = recording_text(view)
    return html.Div(
        [
            html.Div(
                [html.H4([f"Analysis #{view['analysis_id']}: ", _title(prediction.get("label"))],
                         className="mb-1 me-3"),
                 severity_badge((view.get("impact") or {}).get("severity"))],
                className="d-flex align-items-center",
            ),
            html.Div(" \u00b7 ".join(facts), className="text-muted small"),
            html.Div(recording, id=ids.ANALYSIS_RECORDING, className="text-muted small") if recording else None,
            dcc.Link("\u2190 History", href=data.href("/history"), className="small"),
        ],
        id=ids.ANALYSIS_HEADER, className="mb-3",
    )


def layout(analysis_id: str | None = None, **_query) -> html.Div:
    context = data.context()
    view = load_view(context, analysis_id)
    if view is None:
        return html.Div(
            dbc.Alert(
                [html.Strong("Analysis not found. "),
                 f"There is no analysis with id {analysis_id!s:.30}. ",
                 dcc.Link("Browse the history", href=data.href("/history"))],
                color="warning",
            ),
            id=ids.ANALYSIS_NOT_FOUND,
        )
    grid = data.grid_data()
    waveform_card = dbc.Card(
        [
            waveform_header(ids.ANALYSIS_WAVEFORM_VIEW),
            dcc.Graph(id=ids.ANALYSIS_WAVEFORM, figure=waveform_for(view), config=GRAPH_CONFIG)
            if view.get("waveform") else html.Div("The waveform of this analysis was not stored.",
                                                  className="text-muted small py-3"),
            html.Hr(className="my-2"),
            html.Div(headline_for(view, data.node_names())),
        ],
        body=True, className="mb-3 shadow-sm h-100",
    )
    graph_card = dbc.Card(
        [section_title("P2P microgrid"), microgrid_graph(ids.ANALYSIS_MICROGRID, graph_for(grid, view)),
         html.Div(graph_caption(view, data.node_names()), id=ids.ANALYSIS_MICROGRID_CAPTION, className="small mt-1")],
        body=True, className="mb-3 shadow-sm h-100",
    )
    return html.Div(
        [
            model_banner(data.model_status(context)),
            dcc.Store(id=ids.ANALYSIS_WAVEFORM_STORE, data={"waveform": view.get("waveform"),
                                                            "prediction": view["prediction"]}),
            _header(view),
            dbc.Row([dbc.Col(waveform_card, xl=7), dbc.Col(graph_card, xl=5)], className="g-3 mb-3"),
            dbc.Row(
                [
                    dbc.Col(result_card("Model confidence", ids.ANALYSIS_CONFIDENCE, confidence_for(view)), xl=4),
                    dbc.Col(result_card("Impact on the P2P network", ids.ANALYSIS_IMPACT,
                                        impact_for(view, data.node_names())), xl=5),
                    dbc.Col(result_card("What happened", ids.ANALYSIS_DESCRIPTION, description_for(view)), xl=3),
                ],
                className="g-3",
            ),
        ],
        id=ids.ANALYSIS_PAGE,
    )
