"""Browser-side callbacks (no server round trip): the menu toggle, the Analyze page's event tabs,
scrolling a new result into view on a narrow screen, the History grid's phone columns, and loading
Plotly early. Registered on each app by `callbacks.register_callbacks` like the others.
"""

from __future__ import annotations

import json

import dash
from dash import Input, Output, State

from components import ids
from components.tables import PHONE_COLUMNS

#: below this width (Bootstrap's lg breakpoint) the Analyze page stacks its columns, so the result is
#: far below the button and is scrolled into view when it arrives
NARROW_MAX_PX = 992

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


def register(app: dash.Dash) -> None:
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
