"""History ("/history"): every analysis, paged, sorted and filtered on the server, with CSV export."""

from __future__ import annotations

import dash
import dash_bootstrap_components as dbc
from dash import html

import callbacks.history  # noqa: F401  (registers this page's callbacks)
from callbacks import data
from components import ids
from components.cards import model_banner, section_title
from components.tables import history_grid

dash.register_page(__name__, path="/history", name="History", title="History - Grid Event Monitor", order=1)


def layout(**_query) -> html.Div:
    context = data.context()
    header = html.Div(
        [
            html.Div([html.H4("Analysis history", className="mb-0"),
                      html.Div(["Sort and filter from the column headers; ", html.Span(id=ids.HISTORY_TOTAL),
                                " in total. The # link reopens an analysis."], className="text-muted small")]),
            html.Div(
                [dbc.Button("Export CSV", id=ids.HISTORY_CSV_LINK, href=data.href("/api/history.csv"),
                            external_link=True, color="outline-primary", size="sm"),
                 html.Div("label, category, source, peer and time filters apply", className="text-muted small")],
                className="text-end",
            ),
        ],
        className="d-flex justify-content-between align-items-end mb-3",
    )
    return html.Div(
        [
            model_banner(data.model_status(context)),
            header,
            dbc.Card([section_title("All analyses"), history_grid()], body=True, className="shadow-sm"),
        ],
        id=ids.HISTORY_PAGE,
    )
