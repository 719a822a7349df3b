"""Bootstrap cards of the dashboard: the Analyze controls and the bodies that show one analysis.

Pure layout: every function takes plain data (dicts from `Prediction.to_dict()` and
`ImpactReport.to_dict()`, lists of options) and returns components. No I/O, no callbacks.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence

import dash_bootstrap_components as dbc
from dash import dcc, html
from dash.development.base_component import Component

from components import ids
from components.microgrid import normalise_severity
from services.inference.connections import RELAY_CONNECTIONS
from services.labels import display_label, kind_words, phases_title

#: dcc.Graph config: figures carry their own height, so no "responsive" (it would stretch them). No mode
#: bar: it covered titles and legends on narrow cards; dragging still zooms and a double click resets
GRAPH_CONFIG = {"displaylogo": False, "displayModeBar": False}



def section_title(text: str, icon: str = "") -> html.H2:
    """A card's title: a level-2 heading (below the page's h1) set small and upper-case."""
    return html.H2([html.Span(icon, className="me-2", **{"aria-hidden": "true"}) if icon else None, text],
                   className="card-title text-uppercase text-muted small fw-bold mb-3")


# --- Analyze page controls ---------------------------------------------------------------------

def waveform_header(view_toggle_id: str) -> html.Div:
    """Title of a waveform card with its instantaneous / RMS view toggle."""
    return html.Div(
        [section_title("Differential currents"),
         dbc.RadioItems(id=view_toggle_id, value="raw", inline=True, className="small",
                        options=[{"label": "Instantaneous", "value": "raw"},
                                 {"label": "RMS (1 cycle)", "value": "rms"}])],
        className="d-flex justify-content-between align-items-start",
    )


def transfer_card(
    senders: Sequence[tuple[str, str]],
    receivers: Sequence[tuple[str, str]],
    *,
    sender: str | None,
    receiver: str | None,
    transfer_kw: float,
    max_kw: float = 1000.0,
) -> dbc.Card:
    """The P2P transfer: sender, receiver and kW; options are (id, display name) pairs."""
    return dbc.Card(
        [
            section_title("P2P energy transfer"),
            dbc.Label("Sender (seller)", html_for=ids.SENDER, className="small mb-1"),
            dbc.Select(
                id=ids.SENDER, options=[{"label": name, "value": peer} for peer, name in senders],
                value=sender, className="mb-2",
            ),
            dbc.Label("Receiver (buyer)", html_for=ids.RECEIVER, className="small mb-1"),
            dbc.Select(
                id=ids.RECEIVER, options=[{"label": name, "value": peer} for peer, name in receivers],
                value=receiver, className="mb-2",
            ),
            dbc.Label("Power (kW)", html_for=ids.TRANSFER_KW, className="small mb-1"),
            dbc.Input(id=ids.TRANSFER_KW, type="number", min=0.1, max=max_kw, step=0.1, value=transfer_kw),
        ],
        body=True,
        className="mb-3 shadow-sm",
    )


def grouped_sample_options(samples: Mapping[str, str], groups: Mapping[str, Sequence[str]]) -> list[dict]:
    """Options of a native select grouped by category: a disabled header option before each group.

    `samples` maps file name -> display label; `groups` maps group title -> file names.
    """
    options: list[dict] = []
    for group, filenames in groups.items():
        if not filenames:
            continue
        options.append({"label": f"\u2014 {group} \u2014", "value": f"__group__{group}", "disabled": True})
        options.extend({"label": samples[filename], "value": filename} for filename in filenames)
    return options


def label_options(labels: Sequence[str]) -> list[dict]:
    """Options of the simulate-an-event label dropdown, grouped internal faults / transients."""
    groups: dict[str, list[str]] = {"Internal faults": [], "Transients": []}
    for label in labels:
        groups["Transients" if label.startswith("transient_") else "Internal faults"].append(label)
    return grouped_sample_options({label: display_label(label) for label in labels}, groups)


def dom_id(component_id: str | Mapping) -> str:
    """The id a component gets in the page: pattern-matching (dict) ids as the Dash renderer writes them
    (keys sorted, JSON values), so that a <label for=...> can point at them."""
    if not isinstance(component_id, Mapping):
        return str(component_id)
    return "{" + ",".join(f"{json.dumps(str(key))}:{json.dumps(component_id[key])}"
                          for key in sorted(component_id)) + "}"


def sim_param_inputs(specs: Sequence[Mapping]) -> list:
    """One numeric input per physical parameter of the chosen label (pattern-matching ids)."""
    if not specs:
        return [html.Div("This event has no adjustable parameters.", className="text-muted small")]
    rows = []
    for spec in specs:
        unit = f" ({spec['unit']})" if spec.get("unit") else ""
        input_id = {"type": ids.SIM_PARAM_TYPE, "name": str(spec["name"])}
        rows.append(
            dbc.Row(
                [
                    dbc.Col(dbc.Label(f"{spec.get('title') or spec['name']}{unit}", html_for=dom_id(input_id),
                                      className="small mb-0"), width=7),
                    dbc.Col(
                        dbc.Input(
                            id=input_id, type="number", size="sm", value=spec.get("default"),
                            min=spec.get("min"), max=spec.get("max"), step=spec.get("step") or "any",
                        ),
                        width=5,
                    ),
                ],
                className="g-2 mb-1 align-items-center",
            )
        )
    return rows


def event_tabs(panes: Sequence[tuple[str, str, list]], active: str) -> html.Div:
    """Tabs that a keyboard reaches: a role="tablist" of buttons (TAB to each, ENTER or SPACE opens it),
    one role="tabpanel" per tab, and a store holding the open tab (`ids.EVENT_SOURCE`).

    `panes` are (tab id, title, children). Switching is a clientside callback
    (`callbacks.clientside`): the hidden panels stay in the page, so their
    inputs keep their values.
    """
    buttons, panels = [], []
    for tab_id, title, children in panes:
        selected = tab_id == active
        buttons.append(html.Button(
            title, id=tab_id, n_clicks=0, type="button", role="tab",
            className="nav-link active" if selected else "nav-link",
            **{"aria-selected": "true" if selected else "false",
               "aria-controls": tab_id + ids.EVENT_SOURCE_PANE_SUFFIX},
        ))
        panels.append(html.Div(children, id=tab_id + ids.EVENT_SOURCE_PANE_SUFFIX, role="tabpanel",
                               hidden=not selected, **{"aria-labelledby": tab_id}))
    return html.Div([
        dcc.Store(id=ids.EVENT_SOURCE, data=active),
        html.Div(buttons, id=ids.EVENT_SOURCE_TABS, role="tablist", className="nav nav-tabs",
                 **{"aria-label": "Event source"}),
        html.Div(panels, className="tab-content"),
    ])


def event_card(
    sample_options: list[dict],
    sample: str | None,
    simulate_options: list[dict],
    simulate_label: str | None,
    simulate_params: list,
) -> dbc.Card:
    """The grid event: a bundled sample, a simulated event or an uploaded recording."""
    seed_id = ids.SIM_SEED
    sample_pane = [
        dbc.Label("Recorded event", html_for=ids.SAMPLE, className="small mb-1 mt-2"),
        dbc.Select(id=ids.SAMPLE, options=sample_options, value=sample),
        html.Div("Bundled recordings of the 45 event classes, grouped by category.", className="form-text"),
    ]
    simulate_pane = [
        dbc.Label("Event to simulate", html_for=ids.SIM_LABEL, className="small mb-1 mt-2"),
        dbc.Select(id=ids.SIM_LABEL, options=simulate_options, value=simulate_label, className="mb-2"),
        html.Div(simulate_params, id=ids.SIM_PARAMS),
        dbc.Row(
            [
                dbc.Col(dbc.Label("Random seed", html_for=seed_id, className="small mb-0"), width=7),
                dbc.Col(dbc.Input(id=seed_id, type="number", size="sm", value=7, min=0, step=1), width=5),
            ],
            className="g-2 mt-1 align-items-center",
        ),
    ]
    upload_pane = [
        # the label around the drop zone names its file input (which takes the keyboard focus: ENTER
        # opens the file chooser) and opens the chooser on a click, so the zone's own click is off
        html.Label(dcc.Upload(
            id=ids.UPLOAD,
            children=html.Div(["Drop a recording here or ", html.Span("choose files", className="link-primary")]),
            className="upload-zone",
            accept=".npy,.csv,.txt,.dat,.tsv,.cfg,.cff,.hdr,.inf",
            multiple=True,
            disable_click=True,
        ), className="d-block mt-2 mb-0"),
        html.Div(
            "A .npy array (3 x 726), a CSV with columns time, Ia, Ib, Ic (10 kHz, 726 rows), or a "
            "60 Hz COMTRADE record: its .cfg and .dat together, or one .cff. A good file is analysed at once.",
            className="form-text",
        ),
        dbc.Label("COMTRADE channels (optional)", html_for=ids.UPLOAD_CHANNELS, className="small mb-0 mt-2"),
        dbc.Input(id=ids.UPLOAD_CHANNELS, type="text", size="sm", debounce=True,
                  placeholder="automatic, or e.g. IdA, IdB, IdC"),
        html.Div("Phases A, B, C: channel names or analog channel numbers of the .cfg. "
                 "Press Analyze to read the record again with them.", className="form-text"),
        *rated_current_inputs(),
        html.Div(id=ids.UPLOAD_STATUS, className="small mt-1", role="status"),
    ]
    return dbc.Card(
        [
            section_title("Grid event"),
            event_tabs([(ids.SOURCE_SAMPLE, "Sample", sample_pane), (ids.SOURCE_SIMULATE, "Simulate", simulate_pane),
                        (ids.SOURCE_UPLOAD, "Upload", upload_pane)], ids.SOURCE_SAMPLE),
            relay_connection_input(),
        ],
        body=True,
        className="mb-3 shadow-sm",
    )


def relay_connection_input(component_id: str = ids.RELAY_CONNECTION) -> html.Div:
    """How the differential relay compares the currents, when the operator knows it (any event source)."""
    return html.Div([
        dbc.Label("Relay connection (optional)", html_for=component_id, className="small mb-0 mt-3"),
        dbc.Select(id=component_id, size="sm", value="not_stated",  # "" would show an empty box
                   options=[{"label": "Not known: weigh every connection", "value": "not_stated"}]
                   + [{"label": title, "value": key} for key, title in RELAY_CONNECTIONS.items()]),
        html.Div("Stated, it tells apart phase patterns that look alike through different connections "
                 "(an A-G fault with the zero sequence removed looks like an A-B fault through a Yd compensation).",
                 className="form-text"),
    ])


def rated_current_inputs() -> list:
    """The Upload tab's unit of the values and the rated current of the protected unit (both optional)."""
    return [
        dbc.Label("Values in", html_for=ids.UPLOAD_UNIT, className="small mb-0 mt-2"),
        dbc.Select(id=ids.UPLOAD_UNIT, size="sm", value="window",
                   options=[{"label": "window units (kA, 500 MVA base)", "value": "window"},
                            {"label": "A", "value": "A"}, {"label": "kA", "value": "kA"},
                            {"label": "per unit", "value": "pu"}]),
        dbc.Label("Rated current of the protected unit (A)", html_for=ids.UPLOAD_RATED_CURRENT,
                  className="small mb-0 mt-2"),
        dbc.Input(id=ids.UPLOAD_RATED_CURRENT, type="number", size="sm", min=0, debounce=True,
                  placeholder="optional"),
        html.Div("Optional. The window is converted to the data set's units: kA on a 500 MVA, 230 kV "
                 "reference (rated 1.2551 kA). A COMTRADE record's own channel unit wins.",
                 id=ids.UPLOAD_RATED_CURRENT + "-help", className="form-text"),
    ]


def upload_status(name: str, details: Mapping | None = None, summary: str | None = None) -> html.Div:
    """What an upload gave: the file name, and for a COMTRADE record which channels and window."""
    lines: list = [html.Div(f"Loaded {name}", className="text-success")]
    if details:
        origin = " / ".join(part for part in (details.get("station"), details.get("device")) if part)
        record = f"COMTRADE {details.get('revision')} {details.get('data_format')}"
        lines.append(html.Div(f"{origin} ({record})" if origin else record, className="text-muted"))
        if summary:
            lines.append(html.Div(summary, className="text-muted"))
        if details.get("window_start_time"):
            lines.append(html.Div(f"Window starts {details['window_start_time']}", className="text-muted"))
        lines.extend(html.Div(f"Note: {note}", className="text-muted fst-italic") for note in details.get("notes") or [])
    return html.Div(lines)


def analyze_button() -> html.Div:
    return html.Div(
        [
            dbc.Button("Analyze", id=ids.ANALYZE_BUTTON, color="primary", size="lg", className="w-100",
                       n_clicks=0),
            html.Div(id=ids.ANALYZE_ALERT, className="mt-3", **{"aria-live": "assertive"}),
        ],
        className="mb-3",
    )


# --- one analysis: confidence, description, impact ----------------------------------------------

def placeholder(text: str) -> html.Div:
    return html.Div(text, className="text-muted small py-3 text-center")


def confidence_body(prediction: Mapping | None) -> list:
    """Calibrated confidence, top-5 bars, category/equipment/kind bars and the unknown warning."""
    if not prediction:
        return [placeholder("Run an analysis to see the model's verdict.")]
    confidence = float(prediction.get("confidence", 0.0))
    label = str(prediction.get("label", ""))
    colour = "success" if confidence >= 0.9 else "warning" if confidence >= 0.6 else "danger"
    children: list = []
    if prediction.get("unknown"):
        children.append(
            dbc.Alert(
                [html.Strong("Unfamiliar event. "),
                 str(prediction.get("unknown_reason") or "The waveform is unlike the training data; "
                     "treat the label as a hint and inspect the recording.")],
                color="warning", id=ids.UNKNOWN_WARNING, className="py-2 small",
            )
        )
    children += [
        html.Div(
            [
                html.Div(display_label(label), id=ids.CONFIDENCE_LABEL, className="fw-semibold"),
                html.Div(label, className="text-muted font-monospace small text-break"),
            ],
            className="mb-2",
        ),
        html.Div(
            [
                html.Span(f"{confidence:.1%}", id=ids.CONFIDENCE_VALUE,
                          className=f"display-6 {TEXT_COLOURS[colour]} me-2"),
                html.Span("calibrated confidence", className="text-muted small"),
            ],
            className="mb-1",
        ),
        html.Div(html.Div(className=f"progress-bar bg-{colour}", style={"width": f"{confidence * 100:.1f}%"}),
                 className="progress mb-3", style={"height": "6px"}, **{"aria-hidden": "true"}),  # the value is above
        html.H3("Top 5 labels", className="h6 small text-muted mb-1"),
        probability_bars([(display_label(item[0]), float(item[1])) for item in prediction.get("top5") or []],
                         component_id=ids.TOP5_GRAPH, label="Top 5 labels"),
        html.H3("Category, equipment and kind", className="h6 small text-muted mt-3 mb-1"),
        html.Div([
            probability_bars([(f"{name}: {key.replace('_', ' ')}", float(p)) for key, p in
                              sorted((prediction.get(name) or {}).items(), key=lambda item: -float(item[1]))[:4]],
                             label=name, colour=MARGINAL_COLOURS[name])
            for name in ("category", "equipment", "kind") if prediction.get(name)
        ], id=ids.MARGINALS_GRAPH),
    ]
    return children


#: text colours that keep 4.5:1 on white (Bootstrap's text-warning yellow has 1.6:1)
TEXT_COLOURS = {"success": "text-success", "warning": "text-warning-emphasis", "danger": "text-danger"}
MARGINAL_COLOURS = {"category": "#198754", "equipment": "#0d6efd", "kind": "#6f42c1"}


def probability_bars(items: Sequence[tuple[str, float]], *, component_id: str | None = None, label: str = "",
                     colour: str = "#0d6efd") -> html.Ol:
    """Horizontal probability bars as HTML, most likely first: a name, a bar, the percentage.

    Plain elements, not a Plotly chart: a screen reader reads them as a list, and they draw in the
    same frame as the rest of the result (three Plotly charts per analysis cost the Analyze click
    about 100 ms of rendering).
    """
    rows = []
    for index, (name, probability) in enumerate(items):
        share = min(max(float(probability), 0.0), 1.0)
        rows.append(html.Li(
            [html.Span(name, className="prob-name"),
             html.Span(html.Span(className="prob-fill", style={"width": f"{share * 100:.1f}%",
                                                                "backgroundColor": colour if index == 0 else "#adb5bd"}),
                       className="prob-track", **{"aria-hidden": "true"}),
             html.Span(f"{share:.1%}", className="prob-value")],
            className="prob-row",
        ))
    attributes = {"aria-label": label, **({"id": component_id} if component_id else {})}
    return html.Ol(rows, className="prob-bars list-unstyled mb-1", **attributes)


def description_body(label: str | None, description: Mapping | None) -> list:
    """What the event is and what typically causes it (from fault_descriptions.json)."""
    if not label:
        return [placeholder("The description of the detected event appears here.")]
    description = description or {}
    causes = [str(cause) for cause in description.get("causes") or []]
    return [
        html.H3(display_label(label), className="h6 fw-semibold"),
        html.P(str(description.get("description") or "No description available."), className="small"),
        html.Div("Typical causes", className="small text-muted") if causes else None,
        html.Ul([html.Li(cause) for cause in causes], className="small mb-0") if causes else None,
    ]


def _fact(title: str, value, component_id: str | None = None, *, long: bool = False) -> html.Div:
    """A titled value; `long` values (sentences) are set in normal weight and small type."""
    style = "small" if long else "fw-semibold"
    body = html.Div(value, id=component_id, className=style) if component_id else html.Div(value, className=style)
    return html.Div([html.Div(title, className="small text-muted"), body], className="mb-2")


def _money(value: object, currency: str = "") -> str:
    try:
        return f"{float(value):,.2f} {currency}".strip()
    except (TypeError, ValueError):
        return "n/a"


TRANSFER_STATUS_COLOURS = {"continues": "success", "curtailed": "warning", "disrupted": "danger"}


EQUIPMENT_NAMES = {"power_transformer": "power transformer", "ispar_series": "ISPAR series unit",
                   "ispar_exciting": "ISPAR exciting unit", "none": "none (no unit faulted)"}
CATEGORY_NAMES = {"internal_fault": "Internal fault", "transient": "Transient", "no_event": "No event"}


def _percent(value: object) -> str:
    try:
        return f"{float(value):.0%}"
    except (TypeError, ValueError):
        return ""


def _level_row(title: str, value: object, probability: object, extra: list | None = None) -> html.Div:
    return html.Div(
        [html.Span(title, className="level-title text-muted"),
         html.Span([html.Span(value if isinstance(value, Component) else str(value), className="fw-semibold me-1"),
                    html.Span(_percent(probability), className="text-muted me-1") if probability is not None
                    else None, *(extra or [])], className="level-value")],
        className="level-row",
    )


def levels_block(levels: Mapping | None) -> html.Div | None:
    """The answer in three small rows: category / phases and kind / equipment, each with its probability.

    `levels` is `Prediction.levels` (services.inference): {"category": {"value", "probability",
    "uncertain", "alternative"},
    "kind": {"value", "phases", "probability"}, "phases": {"value", "probability", "uncertain",
    "candidates": [[phase group, probability], ...]} or None, "equipment": {"value", "probability",
    "uncertain", "candidates": [[equipment, probability], ...]}}. When the unit is uncertain the
    equipment row says so with a badge and lists the candidate units with their probabilities; the
    phases and the category likewise. None without levels.
    """
    if not isinstance(levels, Mapping) or not levels:
        return None
    category = levels.get("category") or {}
    kind = levels.get("kind") or {}
    equipment = levels.get("equipment") or {}
    rows = []
    alternative = category.get("alternative") if category.get("uncertain") else None
    if isinstance(alternative, Mapping):
        sides = [f"{CATEGORY_NAMES.get(str(name), str(name))} {_percent(p)}"
                 for name, p in ((category.get("value"), category.get("probability")),
                                 (alternative.get("category"), alternative.get("probability")))]
        rows.append(_level_row("Category", html.Span("fault or transient uncertain", className="badge text-bg-warning"),
                               None, [html.Span(", ".join(sides), className="text-muted")]))
    elif category:
        rows.append(_level_row("Category", CATEGORY_NAMES.get(str(category.get("value")),
                                                           str(category.get("value") or "n/a").replace("_", " ")),
                               category.get("probability")))
    phase_level = levels.get("phases")
    if isinstance(phase_level, Mapping) and phase_level.get("uncertain"):
        candidates = [f"{phases_title(str(group))} {_percent(p)}" for group, p in phase_level.get("candidates") or []]
        rows.append(_level_row("Phases & kind", html.Span("phases uncertain", className="badge text-bg-warning"), None,
                               [html.Span(", ".join(candidates), className="text-muted")] if candidates else []))
    elif kind:
        kind_value = kind_words(str(kind.get("value") or "n/a"))
        phases = kind.get("phases")
        shown = f"phases {phases} ({kind_value})" if phases else kind_value
        rows.append(_level_row("Phases & kind" if phases else "Kind", shown, kind.get("probability")))
    if equipment:
        value = str(equipment.get("value") or "none")
        extra: list = []
        if equipment.get("uncertain"):
            candidates = [f"{EQUIPMENT_NAMES.get(str(name), str(name))} {_percent(p)}"
                          for name, p in equipment.get("candidates") or []]
            extra = [html.Span(", ".join(candidates), className="text-muted")] if candidates else []
            rows.append(_level_row("Equipment", html.Span("unit uncertain", className="badge text-bg-warning"), None,
                                   extra))
        else:
            rows.append(_level_row("Equipment", EQUIPMENT_NAMES.get(value, value.replace("_", " ")),
                                   equipment.get("probability")))
    return html.Div(rows, id=ids.RESULT_LEVELS, className="levels small")


def headline_body(prediction: Mapping | None, impact: Mapping | None, names: Mapping[str, str] | None = None,
                  permalink: tuple[str, str] | None = None) -> list:
    """The at-a-glance verdict under the waveform: the headline, the three levels of the answer, how
    sure, where, and what it does to the trade.

    `permalink` is (text, href) of the analysis's permanent page, shown at the right.
    """
    if not prediction:
        return [placeholder("One click on Analyze: the event, the model's confidence, where it is and what it "
                            "does to the P2P transfer appear here.")]
    impact = impact or {}
    names = names or {}
    level = normalise_severity(impact.get("severity"))
    located = [str(item.get("name") or item.get("id")) for item in impact.get("located_equipment") or []
               if isinstance(item, Mapping)]
    status = str(impact.get("transfer_status") or "n/a")
    transfer = impact.get("transfer") or {}
    confidence = float(prediction.get("confidence") or 0.0)
    headline = str(prediction.get("headline") or impact.get("event_type") or display_label(prediction.get("label")))
    tiles = [
        ("Confidence", f"{confidence:.1%}" + (" (unfamiliar)" if prediction.get("unknown") else ""), ""),
        ("Where", ", ".join(dict.fromkeys(located)) or "outside the protected zone", ""),
        ("P2P transfer", f"{status}", f"{names.get(transfer.get('sender'), transfer.get('sender') or '')} \u2192 "
                                      f"{names.get(transfer.get('receiver'), transfer.get('receiver') or '')}"),
    ]
    levels = levels_block(prediction.get("levels"))
    connection = RELAY_CONNECTIONS.get(str(prediction.get("relay_connection")))
    return [
        html.Div(
            [html.Span(str(impact.get("severity") or level).upper(),
                       className=f"badge severity-badge sev-bg-{level} me-2 flex-shrink-0"),
             html.Div(headline, className="fw-semibold me-auto result-headline-text"),
             dcc.Link(permalink[0], href=permalink[1], className="small ms-2 flex-shrink-0", id=ids.RESULT_PERMALINK)
             if permalink else None],
            className="mb-2 d-flex align-items-start flex-wrap gap-1",
        ),
        levels,
        html.Div(f"Read through the stated relay connection: {connection}", id=ids.RESULT_CONNECTION,
                 className="small text-muted") if connection else None,
        dbc.Row([dbc.Col([html.Div(title, className="small text-muted"), html.Div(value, className="fw-semibold"),
                          html.Div(hint, className="small text-muted") if hint else None], sm=4, xs=6)
                 for title, value, hint in tiles], className="g-2 mt-1"),
    ]


def restoration_text(hours: object) -> str:
    """A restoration time as an operator reads it: '5 s', '12 min', '3.5 h', '2.0 days'."""
    if isinstance(hours, bool) or not isinstance(hours, int | float) or not hours > 0:
        return "none needed"
    seconds = float(hours) * 3600.0
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 90 * 60:
        return f"{seconds / 60:.0f} min"
    if hours < 48:
        return f"{float(hours):.1f} h"
    return f"{float(hours) / 24:.1f} days"


def impact_body(impact: Mapping | None, names: Mapping[str, str] | None = None) -> list:
    """Event type, severity, transfer status, energy not delivered, cost and recommended actions.

    `impact` is `ImpactReport.to_dict()` (services.rules); `names` maps node ids to display names.
    """
    if not impact:
        return [placeholder("The impact on the P2P microgrid appears here.")]
    level = normalise_severity(impact.get("severity"))
    energy = impact.get("energy") or {}
    transfer = impact.get("transfer") or {}
    status = str(impact.get("transfer_status") or transfer.get("status") or "unknown")
    currency = str(energy.get("currency") or transfer.get("currency") or "")
    not_delivered = energy.get("transfer_not_delivered_kwh")
    cost = energy.get("transfer_not_delivered_cost")
    located = [str(item.get("name") or item.get("id")) for item in impact.get("located_equipment") or []
               if isinstance(item, Mapping)]
    protection = impact.get("protection_action") or {}
    restoration = impact.get("restoration") or {}
    names = names or {}
    deenergised = [names.get(str(node), str(node)) for node in impact.get("deenergised_nodes") or []]
    actions = [str(action) for action in impact.get("actions") or impact.get("recommended_actions") or []]
    delivered = transfer.get("delivered_kw")
    requested = transfer.get("requested_kw")
    transfer_text = status.capitalize()
    if delivered is not None and requested is not None:
        transfer_text += f" ({float(delivered):g} of {float(requested):g} kW)"
    facts_left = [
        _fact("Event type", str(impact.get("event_type") or "n/a"), ids.IMPACT_EVENT_TYPE),
        _fact("Severity", html.Span(str(impact.get("severity") or level).upper(),
                                    className=f"badge severity-badge sev-bg-{level}"), ids.IMPACT_SEVERITY),
        _fact("Transfer status", dbc.Badge(transfer_text, color=TRANSFER_STATUS_COLOURS.get(status, "secondary"),
                                           className="fs-6 fw-normal"), ids.IMPACT_TRANSFER_STATUS),
    ]
    energy_text = f"{float(not_delivered):,.2f} kWh" if isinstance(not_delivered, int | float) else "n/a"
    if isinstance(cost, int | float):
        energy_text += f" ({_money(cost, currency)})"
    hours = restoration.get("hours")
    facts_right = [
        _fact("Energy not delivered", energy_text, ids.IMPACT_ENERGY),
        _fact("Restoration", restoration_text(hours)),
        _fact("Located at", ", ".join(dict.fromkeys(located))) if located else None,
    ]
    message = impact.get("p2p_disruption_message") or impact.get("summary")
    return [
        html.P(str(message), className="small mb-2 impact-message") if message else None,
        dbc.Row([dbc.Col(facts_left, md=6), dbc.Col(facts_right, md=6)]),
        _fact("Protection", str(protection.get("description")), long=True) if protection.get("description") else None,
        _fact("De-energised", ", ".join(deenergised), long=True) if deenergised else None,
        html.Div("Recommended actions", className="small text-muted mt-1"),
        html.Ol([html.Li(action) for action in actions] or [html.Li("No action needed.")],
                id=ids.IMPACT_ACTIONS, className="small mb-0 ps-3"),
    ]


def result_card(title: str, body_id: str, children: list, *, extra_class: str = "") -> dbc.Card:
    """A titled card whose body a callback replaces."""
    return dbc.Card([section_title(title), html.Div(children, id=body_id)], body=True,
                    className=f"mb-3 shadow-sm {extra_class}".strip())


def model_banner(status: Mapping | None, *, component_id: str | None = None) -> html.Div:
    """A clear banner when the model is missing or corrupt; empty when it is ready."""
    if not status or status.get("loaded", True):
        return html.Div(id=component_id) if component_id else html.Div()
    message = str(status.get("message") or status.get("reason") or "the model could not be loaded")
    if message.lower().startswith("model unavailable:"):
        message = message.split(":", 1)[1].strip()
    alert = dbc.Alert(
        [html.Strong("Model unavailable. "), message,
         html.Div("Analyses are disabled until valid artifacts are installed (see README: training).",
                  className="small mt-1")],
        color="danger", className=f"mb-3 {ids.MODEL_STATUS_BANNER_CLASS}", fade=False,
    )
    return html.Div(alert, id=component_id) if component_id else html.Div(alert)


def stat_tile(title: str, value: str, *, hint: str | None = None, component_id: str | None = None) -> dbc.Card:
    """A small metric tile (model metrics, network summary)."""
    return dbc.Card(
        [html.Div(title, className="small text-muted"),
         html.Div(value, className="fs-4 fw-semibold", id=component_id) if component_id
         else html.Div(value, className="fs-4 fw-semibold"),
         html.Div(hint, className="small text-muted") if hint else None],
        body=True, className="shadow-sm h-100",
    )


def history_unavailable(reason: str | None, what: str = "The history is unavailable") -> dbc.Alert:
    """A visible warning that the history database cannot be used now (the reason is the store's,
    written for people); the rest of the page works."""
    return dbc.Alert([html.Strong(f"{what}: "), reason or "the history database cannot be reached", ". ",
                      "It recovers by itself when the database is back; reload then."],
                     color="warning", className="py-2 small mb-2", id=ids.HISTORY_UNAVAILABLE)
