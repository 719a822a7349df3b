"""Analyze ("/"): pick a P2P transfer and a grid event, one click shows what it is and what it does."""

from __future__ import annotations

import dash
import dash_bootstrap_components as dbc
from dash import dcc, html

import callbacks.analyze  # noqa: F401  (registers this page's callbacks)
from callbacks import data
from callbacks.analyze import sim_params_for
from callbacks.views import graph_caption, graph_for, waveform_panel
from components import ids
from components.cards import (
    analyze_button,
    confidence_body,
    description_body,
    event_card,
    grouped_sample_options,
    headline_body,
    impact_body,
    label_options,
    model_banner,
    result_card,
    section_title,
    transfer_card,
    waveform_header,
)
from components.microgrid import microgrid_graph, severity_legend
from components.tables import latest_table
from services.grid import DEFAULT_TRANSFER_KW, MAX_TRANSFER_KW
from services.labels import LABELS

dash.register_page(__name__, path="/", name="Analyze", title="Analyze - Grid Event Monitor", order=0)

DEFAULT_SIM_LABEL = "transient_magnetising_inrush"


def _legend() -> html.Div:
    items = [html.Span([html.Span(className="legend-dot", style={"backgroundColor": colour}), level],
                       className="me-3") for level, colour in severity_legend()]
    items.append(html.Span([html.Span(className="legend-line"), "transfer path"], className="me-3"))
    return html.Div(items, className="small text-muted mt-1")


def layout(**_query) -> html.Div:
    """The page, with the transfer and a sample preselected so that one click analyses."""
    context = data.context()
    status = data.model_status(context)
    senders, receivers = data.peer_options()
    samples = context.samples()
    display, groups = data.sample_groups(samples)
    sample = data.default_sample(samples)
    grid = data.grid_data()

    controls = dbc.Col(
        [
            transfer_card(senders, receivers, sender=data.DEFAULT_SENDER, receiver=data.DEFAULT_RECEIVER,
                          transfer_kw=DEFAULT_TRANSFER_KW, max_kw=MAX_TRANSFER_KW),
            event_card(grouped_sample_options(display, groups), sample, label_options(LABELS), DEFAULT_SIM_LABEL,
                       sim_params_for(DEFAULT_SIM_LABEL)),
            analyze_button(),
        ],
        lg=3, md=12,
    )
    graph_card = dbc.Card(
        [section_title("P2P microgrid"),
         dcc.Loading(microgrid_graph(ids.MICROGRID, graph_for(grid, None, sender=data.DEFAULT_SENDER,
                                                              receiver=data.DEFAULT_RECEIVER)),
                     type="dot", delay_show=300),
         html.Div(graph_caption(None, data.node_names(), sender=data.DEFAULT_SENDER, receiver=data.DEFAULT_RECEIVER),
                  id=ids.MICROGRID_CAPTION, className="small mt-1"),
         _legend()],
        body=True, className="mb-3 shadow-sm h-100",
    )
    waveform_card = dbc.Card(
        [
            waveform_header(ids.WAVEFORM_VIEW),
            dcc.Loading(html.Div(waveform_panel(None, "raw", ids.WAVEFORM), id=ids.WAVEFORM_CONTAINER),
                        type="dot", delay_show=300),
            html.Hr(className="my-2"),
            html.Div(headline_body(None, None), id=ids.RESULT_HEADLINE),
        ],
        body=True, className="mb-3 shadow-sm h-100",
    )
    results = dbc.Col(
        [
            dbc.Row([dbc.Col(graph_card, xl=5, className="mb-3"), dbc.Col(waveform_card, xl=7, className="mb-3")],
                    className="g-3"),
            dbc.Row(
                [
                    dbc.Col(result_card("Model confidence", ids.CONFIDENCE, confidence_body(None)), xl=4),
                    dbc.Col(result_card("Impact on the P2P network", ids.IMPACT, impact_body(None)), xl=5),
                    dbc.Col(result_card("What happened", ids.DESCRIPTION, description_body(None, None)), xl=3),
                ],
                className="g-3",
            ),
            dbc.Card(
                [
                    html.Div([section_title("Latest analyses"),
                              dcc.Link("All history \u2192", href=data.href("/history"), className="small")],
                             className="d-flex justify-content-between"),
                    html.Div(latest_table(data.latest_rows(context), data.analysis_href), id=ids.LATEST_TABLE),
                ],
                body=True, className="shadow-sm",
            ),
        ],
        lg=9, md=12,
    )
    return html.Div(
        [
            model_banner(status, component_id=ids.ANALYZE_MODEL_BANNER),
            dcc.Store(id=ids.ANALYZE_RESULT_STORE, storage_type="memory"),
            dcc.Store(id=ids.UPLOAD_STORE, storage_type="memory"),
            dbc.Row([controls, results], className="g-3"),
        ],
        id=ids.ANALYZE_PAGE,
    )
