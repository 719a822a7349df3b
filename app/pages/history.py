"""History ("/history"): every analysis, paged, sorted and filtered on the server, with CSV export."""

from __future__ import annotations

import dash_bootstrap_components as dbc
from dash import html

from app.auth import recorded_user
from app.context import href, model_status
from components import ids
from components.cards import model_banner, section_title
from components.tables import history_grid

PAGE = {"path": "/history", "name": "History", "title": "History - Grid Event Monitor", "order": 1}


def layout(**_query) -> html.Div:
    header = html.Div(
        [
            html.Div([html.H1("Analysis history", className="h4 mb-0"),
                      html.Div(["Sort and filter from the column headers; ", html.Span(id=ids.HISTORY_TOTAL),
                                " in total. The # link reopens an analysis."], className="text-muted small")]),
            html.Div(
                [dbc.Button("Mine", id=ids.HISTORY_MINE, color="outline-primary", size="sm", className="me-2",
                            title="show only my analyses; again for everyone's"),
                 dbc.Button("Compare selected", id=ids.HISTORY_COMPARE, href=href("/compare"), disabled=True,
                            color="outline-secondary", size="sm",
                            className="me-2 d-none d-md-inline-block"),  # tick 2-4 rows (issue 15; not on phones)
                 dbc.Button("Export CSV", id=ids.HISTORY_CSV_LINK, href=href("/api/history.csv"),
                            external_link=True, color="outline-primary", size="sm"),
                 html.Div("the rows the grid shows, with its filters", className="text-muted small")],
                className="text-end",
            ),
        ],
        className="d-flex justify-content-between align-items-end mb-3",
    )
    return html.Div(
        [
            model_banner(model_status()),
            header,
            html.Div(id=ids.HISTORY_NOTICE, role="status"),
            dbc.Card([section_title("All analyses"), history_grid(show_user=recorded_user() is not None)], body=True, className="shadow-sm"),
        ],
        id=ids.HISTORY_PAGE,
    )

