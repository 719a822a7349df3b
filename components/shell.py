"""The page shell: skip link, header with the navigation bar, the main landmark with the pages.
Its browser-side behaviours (menu toggle, event tabs, scroll to result) are callbacks/clientside.py.

Landmarks: every page renders inside one `<main>` below a `<header>` holding the `<nav>`, and each
page gives itself one `<h1>` (`page_heading`). The html element says `lang="en"` (`INDEX_STRING`).
"""

from __future__ import annotations

from collections.abc import Callable

import dash
import dash_bootstrap_components as dbc
from dash import html

from components import ids
from components.live import nav_alarm_badge

#: Dash's default index page with the document language set (WCAG 3.1.1, axe rule html-has-lang)
INDEX_STRING = """<!DOCTYPE html>
<html lang="en">
    <head>
        {%metas%}
        <title>{%title%}</title>
        {%favicon%}
        {%css%}
    </head>
    <body>
        <!--[if IE]><script>
        alert("Dash v2.7+ does not support Internet Explorer. Please use a newer browser.");
        </script><![endif]-->
        {%app_entry%}
        <footer>
            {%config%}
            {%scripts%}
            {%renderer%}
        </footer>
    </body>
</html>"""

MAIN_ID = "main-content"


def nav_pages() -> list[dict]:
    """Registered pages shown in the navbar, in their `order` (templated pages are left out)."""
    pages = [page for page in dash.page_registry.values()
             if not page.get("path_template") and page.get("nav", True) is not False
             and page.get("path") not in (None, "/404") and not page["module"].endswith("not_found_404")]
    return sorted(pages, key=lambda page: (page.get("order") if page.get("order") is not None else 99,
                                           page["name"]))


def navbar(href: Callable[[str], str] = dash.get_relative_path, signed_in: str | None = None) -> dbc.Navbar:
    """Dark navbar; every link is made by `href` (the app's `get_relative_path`) so the app works under
    its URL prefix, whatever other apps the process holds.

    Below Bootstrap's md breakpoint the links fold behind a toggler button (`callbacks.clientside`
    opens and closes them) so that the bar takes one line of a phone's screen.
    """
    links = [
        dbc.NavItem(
            dbc.NavLink(
                page["name"], href=href(page["path"]), active="exact",
                id=f"{ids.NAV_LINK_PREFIX}{page['module'].rsplit('.', 1)[-1]}",
            )
        )
        for page in nav_pages()
    ]
    if signed_in:  # a full page load: the sign-out page is served by Flask, not a Dash page
        links.append(dbc.NavItem(dbc.NavLink(f"{signed_in} \u00b7 Sign out", href=href("/logout"), external_link=True,
                                             id=ids.NAV_SIGN_OUT)))
    brand = html.A(
        [html.Span("\u26a1", className="brand-mark me-1", **{"aria-hidden": "true"}),
         html.Span("Grid Event Monitor", className="navbar-brand mb-0")],
        href=href("/"), className="d-flex align-items-center text-decoration-none",
    )
    return dbc.Navbar(
        dbc.Container(
            [
                brand,
                nav_alarm_badge(href("/live")),  # unacknowledged alarms, on every page (issue 13)
                html.Button(html.Span(className="navbar-toggler-icon"), id=ids.NAVBAR_TOGGLER, n_clicks=0,
                            type="button", className="navbar-toggler",
                            **{"aria-label": "Menu", "aria-controls": ids.NAVBAR_COLLAPSE, "aria-expanded": "false"}),
                dbc.Collapse(dbc.Nav(links, navbar=True, className="ms-auto"), id=ids.NAVBAR_COLLAPSE,
                             is_open=False, navbar=True),
            ],
            fluid=True,
        ),
        color="dark", dark=True, expand="md", id=ids.NAVBAR, className="mb-0 shadow-sm py-1",
    )


def page_heading(text: str, *, visible: bool = True, extra_class: str = "") -> html.H1:
    """The page's one level-1 heading, set at the size of a card heading (or for screen readers only)."""
    return html.H1(text, id=ids.PAGE_HEADING,
                   className=("h4 mb-3 " + extra_class).strip() if visible else "visually-hidden")


def app_shell(href: Callable[[str], str] = dash.get_relative_path, signed_in: str | None = None,
              read_only: bool = False) -> html.Div:
    """Skip link, header with the navbar, then the page container inside `<main>`; `href` makes the
    navbar's links (`app.create_app` passes its app's `get_relative_path`); `signed_in` names the
    logged-in user, who gets a sign-out link; `read_only` (a viewer) hides the controls that write
    (app/assets/dashboard.css `.read-only`; the server refuses them anyway)."""
    return html.Div([
        html.A("Skip to content", href=f"#{MAIN_ID}", className="visually-hidden-focusable skip-link"),
        html.Header(navbar(href, signed_in), className="sticky-top"),
        html.Main(dbc.Container(dash.page_container, fluid=True, className="py-3 px-2 px-md-4"), id=MAIN_ID,
                  tabIndex="-1"),
    ], className="read-only" if read_only else None)
