"""The page shell: navigation bar and the Dash pages container."""

from __future__ import annotations

import dash
import dash_bootstrap_components as dbc
from dash import html


def app_shell() -> html.Div:
    """Navbar across pages plus the page container; links are relative so a URL prefix works."""
    nav_items = [
        dbc.NavItem(dbc.NavLink(page["name"], href=page["relative_path"]))
        for page in dash.page_registry.values()
    ]
    navbar = dbc.NavbarSimple(nav_items, brand="Grid Event Monitor", color="dark", dark=True)
    return html.Div([navbar, dbc.Container(dash.page_container, fluid=True, className="py-3")])
