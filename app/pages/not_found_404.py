"""What Dash shows for a path without a page (and for an analysis that does not exist): a way back.

Dash's router uses the layout of the registered page whose module is named `not_found_404`; the
server answers such paths with HTTP 404 (`app.pages.page_status`).
"""

from __future__ import annotations

import dash_bootstrap_components as dbc
from dash import dcc, html

from app.context import href
from components import ids

PAGE = {"path": "/404", "name": "Not found", "title": "Not found - Grid Event Monitor", "nav": False}


def layout(**_query) -> html.Div:
    return html.Div(
        dbc.Alert(
            [html.H1("Page not found", className="h4 alert-heading"),
             html.P("There is no page at this address."),
             html.Div([dcc.Link("Analyze an event", href=href("/")), " \u00b7 ",
                       dcc.Link("Browse the history", href=href("/history"))])],
            color="warning",
        ),
        id=ids.NOT_FOUND_PAGE,
    )
