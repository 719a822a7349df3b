"""The page shell: navigation bar and the Dash pages container."""

from __future__ import annotations

import dash
import dash_bootstrap_components as dbc
from dash import html

from components import ids


def nav_pages() -> list[dict]:
    """Registered pages shown in the navbar, in their `order` (templated pages are left out)."""
    pages = [page for page in dash.page_registry.values()
             if not page.get("path_template") and page.get("nav", True) is not False]
    return sorted(pages, key=lambda page: (page.get("order") if page.get("order") is not None else 99,
                                           page["name"]))


def navbar() -> dbc.Navbar:
    """Dark navbar; every href is relative (`relative_path`) so the app works under a URL prefix."""
    links = [
        dbc.NavItem(
            dbc.NavLink(
                page["name"], href=page["relative_path"], active="exact",
                id=f"{ids.NAV_LINK_PREFIX}{page['module'].rsplit('.', 1)[-1]}",
            )
        )
        for page in nav_pages()
    ]
    brand = html.A(
        dbc.Row(
            [
                dbc.Col(html.Span("\u26a1", className="brand-mark")),
                dbc.Col(dbc.NavbarBrand("Grid Event Monitor", className="ms-1")),
            ],
            align="center", className="g-0",
        ),
        href=dash.get_relative_path("/"),
        style={"textDecoration": "none"},
    )
    return dbc.Navbar(
        dbc.Container(
            [
                brand,
                dbc.Nav(links, navbar=True, className="ms-auto"),
            ],
            fluid=True,
        ),
        color="dark", dark=True, sticky="top", id=ids.NAVBAR, className="mb-0 shadow-sm",
    )


def app_shell() -> html.Div:
    """Navbar across pages plus the page container; links are relative so a URL prefix works."""
    return html.Div([navbar(), dbc.Container(dash.page_container, fluid=True, className="py-3 px-4")])
