"""Network ("/network"): the microgrid's power-flow state, the peers and the current P2P transfer."""

from __future__ import annotations

import dash_bootstrap_components as dbc
from dash import dcc, html

from app.context import analysis_context, model_status
from callbacks.network import network_update
from components import ids
from components.cards import GRAPH_CONFIG, model_banner, section_title
from components.figures import empty_figure
from components.microgrid import microgrid_graph
from services.grid import DEFAULT_RECEIVER, DEFAULT_SENDER, DEFAULT_TRANSFER_KW, MAX_TRANSFER_KW, peer_choices
from services.history import HistoryUnavailable

PAGE = {"path": "/network", "name": "Network", "title": "Network - Grid Event Monitor", "order": 3}


def _current_transfer() -> tuple[str, str, float]:
    """The transfer of the latest analysis (what the operator last looked at), else the default."""
    try:
        rows, _ = analysis_context().store.query(limit=1)
    except HistoryUnavailable:  # the page works without the history
        rows = []
    if rows:
        row = rows[0]
        return row["sender"], row["receiver"], float(row.get("transfer_kw") or DEFAULT_TRANSFER_KW)
    return DEFAULT_SENDER, DEFAULT_RECEIVER, float(DEFAULT_TRANSFER_KW)


def layout(**_query) -> html.Div:
    sender, receiver, kw = _current_transfer()
    senders, receivers = peer_choices()
    state = network_update(sender, receiver, kw, analysis_context().grid)
    controls = dbc.Card(
        [
            section_title("Current P2P transfer"),
            dbc.Row(
                [
                    dbc.Col([dbc.Label("Sender", html_for=ids.NETWORK_SENDER, className="small mb-1"),
                             dbc.Select(id=ids.NETWORK_SENDER, value=sender,
                                        options=[{"label": n, "value": p} for p, n in senders])], md=4),
                    dbc.Col([dbc.Label("Receiver", html_for=ids.NETWORK_RECEIVER, className="small mb-1"),
                             dbc.Select(id=ids.NETWORK_RECEIVER, value=receiver,
                                        options=[{"label": n, "value": p} for p, n in receivers])], md=4),
                    dbc.Col([dbc.Label("Power (kW)", html_for=ids.NETWORK_KW, className="small mb-1"),
                             dbc.Input(id=ids.NETWORK_KW, type="number", value=kw, min=0.1, max=MAX_TRANSFER_KW,
                                       step=0.1, debounce=True)], md=4),
                ],
                className="g-2",
            ),
            html.Div(state.get("alert"), id=ids.NETWORK_ALERT, className="mt-2"),
        ],
        body=True, className="mb-3 shadow-sm",
    )
    graph = dbc.Card(
        [section_title("Power flow on the microgrid"),
         microgrid_graph(ids.NETWORK_GRAPH, state.get("graph", []), height="760px"),
         html.Div("Node captions: rating and bus voltage (pu); line captions: loading in % of the line's rating. "
                  "Red outline: voltage outside 0.95-1.05 pu; dashed red: overloaded line; dotted: normally open "
                  "breaker.",
                  className="small text-muted")],
        body=True, className="shadow-sm h-100",
    )
    charts = dbc.Card(
        [dcc.Graph(id=ids.NETWORK_BUSES, figure=state.get("buses", empty_figure("No power flow")), config=GRAPH_CONFIG),
         dcc.Graph(id=ids.NETWORK_LINES, figure=state.get("lines", empty_figure("No power flow")), config=GRAPH_CONFIG)],
        body=True, className="shadow-sm h-100",
    )
    return html.Div(
        [
            html.H1("Network: power flow and P2P transfer", className="visually-hidden"),
            model_banner(model_status()),
            controls,
            html.Div(state.get("summary"), id=ids.NETWORK_SUMMARY, className="mb-3"),
            dbc.Row([dbc.Col(graph, xl=6), dbc.Col(charts, xl=6)], className="g-3 mb-3"),
            dbc.Card([section_title("Peers"), html.Div(state.get("peers"), id=ids.NETWORK_PEERS)],
                     body=True, className="shadow-sm"),
        ],
        id=ids.NETWORK_PAGE,
    )
