"""The page shell: skip link, header with the navigation bar, the main landmark with the pages,
and the few browser-side behaviours that need no server (menu toggle, event tabs, scroll to result).

Landmarks: every page renders inside one `<main>` below a `<header>` holding the `<nav>`, and each
page gives itself one `<h1>` (`page_heading`). The html element says `lang="en"` (`INDEX_STRING`).
"""

from __future__ import annotations

import json

import dash
import dash_bootstrap_components as dbc
from dash import Input, Output, State, html

from components import ids
from components.tables import PHONE_COLUMNS

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
#: below this width (Bootstrap's lg breakpoint) the Analyze page stacks its columns, so the result is
#: far below the button and is scrolled into view when it arrives
NARROW_MAX_PX = 992


def nav_pages() -> list[dict]:
    """Registered pages shown in the navbar, in their `order` (templated pages are left out)."""
    pages = [page for page in dash.page_registry.values()
             if not page.get("path_template") and page.get("nav", True) is not False
             and page.get("path") not in (None, "/404") and not page["module"].endswith("not_found_404")]
    return sorted(pages, key=lambda page: (page.get("order") if page.get("order") is not None else 99,
                                           page["name"]))


def navbar() -> dbc.Navbar:
    """Dark navbar; every href is relative (`relative_path`) so the app works under a URL prefix.

    Below Bootstrap's md breakpoint the links fold behind a toggler button (`register_shell_callbacks`
    opens and closes them) so that the bar takes one line of a phone's screen.
    """
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
        [html.Span("\u26a1", className="brand-mark me-1", **{"aria-hidden": "true"}),
         html.Span("Grid Event Monitor", className="navbar-brand mb-0")],
        href=dash.get_relative_path("/"), className="d-flex align-items-center text-decoration-none",
    )
    return dbc.Navbar(
        dbc.Container(
            [
                brand,
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


def app_shell() -> html.Div:
    """Skip link, header with the navbar, then the page container inside `<main>`."""
    return html.Div([
        html.A("Skip to content", href=f"#{MAIN_ID}", className="visually-hidden-focusable skip-link"),
        html.Header(navbar(), className="sticky-top"),
        html.Main(dbc.Container(dash.page_container, fluid=True, className="py-3 px-2 px-md-4"), id=MAIN_ID,
                  tabIndex="-1"),
    ])


# --- browser-side behaviour ------------------------------------------------------------------------

SOURCES = (ids.SOURCE_SAMPLE, ids.SOURCE_SIMULATE, ids.SOURCE_UPLOAD)

_TOGGLE_NAVBAR = """
function (clicks, pathname, isOpen) {
    const trigger = (window.dash_clientside.callback_context.triggered_id || "");
    const open = trigger === "TOGGLER" ? !isOpen : false;
    return [open, open ? "true" : "false"];
}
""".replace("TOGGLER", ids.NAVBAR_TOGGLER)

_SELECT_TAB = """
function () {
    const tabs = TABS;
    const chosen = window.dash_clientside.callback_context.triggered_id;
    if (!tabs.includes(chosen)) { return window.dash_clientside.no_update; }
    const classes = tabs.map(t => t === chosen ? "nav-link active" : "nav-link");
    const selected = tabs.map(t => t === chosen ? "true" : "false");
    const hidden = tabs.map(t => t !== chosen);
    return [chosen].concat(classes, selected, hidden);
}
""".replace("TABS", json.dumps(list(SOURCES)))

_SCROLL_TO_RESULT = """
function (result) {
    if (!result || window.innerWidth >= NARROW) { return; }
    const target = document.getElementById("TARGET");
    if (target) { target.scrollIntoView({block: "start", behavior: "smooth"}); }
}
""".replace("NARROW", str(NARROW_MAX_PX)).replace("TARGET", ids.RESULT_HEADLINE)


#: on a phone the History grid shows only PHONE_COLUMNS (narrower), the rest is a tap on the # link away
PHONE_MAX_PX = 768
_PHONE_COLUMNS = """
function (id, columns) {
    if (!columns || window.innerWidth >= PHONE) { return window.dash_clientside.no_update; }
    const keep = KEEP;
    return columns.map(c => (c.field in keep)
        ? Object.assign({}, c, {hide: false, minWidth: keep[c.field], width: keep[c.field], maxWidth: null,
                                wrapText: true, cellStyle: {lineHeight: "1.3", whiteSpace: "normal"}})
        : Object.assign({}, c, {hide: true}));
}
""".replace("PHONE", str(PHONE_MAX_PX)).replace("KEEP", json.dumps(PHONE_COLUMNS))

#: a tiny static chart put into the hidden PLOTLY_PRELOAD box once the Analyze page is drawn: the page
#: renders without waiting for Plotly, and Plotly loads while the user chooses, not after the click
_PRELOAD_PLOTLY = """
function (id) {
    return {namespace: "dash_core_components", type: "Graph",
            props: {figure: {data: [], layout: {width: 10, height: 10}}, config: {staticPlot: true}}};
}
"""


def register_shell_callbacks(app: dash.Dash) -> None:
    """The clientside callbacks of the shell and the Analyze page's tabs (no server round trip).

    - the navbar toggler opens and closes the menu; following a link closes it;
    - the Sample / Simulate / Upload tabs (see `components.cards.event_tabs`) show their panel and
      write the open tab into the `EVENT_SOURCE` store that the Analyze callback reads;
    - a new result on a narrow screen is scrolled into view;
    - on a phone the History grid keeps its five main columns;
    - once the Analyze page is drawn, a hidden chart makes the browser load Plotly, so that the first
      result's waveform does not wait for it.
    """
    app.clientside_callback(
        _TOGGLE_NAVBAR,
        Output(ids.NAVBAR_COLLAPSE, "is_open"), Output(ids.NAVBAR_TOGGLER, "aria-expanded"),
        Input(ids.NAVBAR_TOGGLER, "n_clicks"), Input("_pages_location", "pathname"),
        State(ids.NAVBAR_COLLAPSE, "is_open"),
        prevent_initial_call=True,
    )
    app.clientside_callback(
        _SELECT_TAB,
        Output(ids.EVENT_SOURCE, "data"),
        *[Output(source, "className") for source in SOURCES],
        *[Output(source, "aria-selected") for source in SOURCES],
        *[Output(source + ids.EVENT_SOURCE_PANE_SUFFIX, "hidden") for source in SOURCES],
        *[Input(source, "n_clicks") for source in SOURCES],
        prevent_initial_call=True,
    )
    app.clientside_callback(_SCROLL_TO_RESULT, Input(ids.ANALYZE_RESULT_STORE, "data"), prevent_initial_call=True)
    app.clientside_callback(_PHONE_COLUMNS, Output(ids.HISTORY_GRID, "columnDefs"), Input(ids.HISTORY_GRID, "id"),
                            State(ids.HISTORY_GRID, "columnDefs"))
    app.clientside_callback(_PRELOAD_PLOTLY, Output(ids.PLOTLY_PRELOAD, "children"), Input(ids.PLOTLY_PRELOAD, "id"))
