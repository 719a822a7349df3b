"""Bootstrap cards of the dashboard: the Analyze controls and the bodies that show one analysis.

Pure layout: every function takes plain data (dicts from `Prediction.to_dict()` and
`ImpactReport.to_dict()`, lists of options) and returns components. No I/O, no callbacks.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import dash_bootstrap_components as dbc
from dash import dcc, html

from components import ids
from components.figures import marginals_figure, top5_figure
from components.microgrid import normalise_severity
from services.labels import pretty_label

#: dcc.Graph config: figures carry their own height, so no "responsive" (it would stretch them)
GRAPH_CONFIG = {"displaylogo": False, "displayModeBar": "hover", "modeBarButtonsToRemove": ["lasso2d", "select2d"]}
#: small charts inside cards: no mode bar over the bars
SMALL_GRAPH_CONFIG = {"displayModeBar": False}


def _title(label: object) -> str:
    """Readable title for a label string; passes through anything that is not one of the 45."""
    try:
        return pretty_label(str(label))
    except ValueError:
        return str(label)


def section_title(text: str, icon: str = "") -> html.H6:
    return html.H6([html.Span(icon, className="me-2") if icon else None, text],
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
            dcc.Dropdown(
                id=ids.SENDER, options=[{"label": name, "value": peer} for peer, name in senders],
                value=sender, clearable=False, className="mb-2",
            ),
            dbc.Label("Receiver (buyer)", html_for=ids.RECEIVER, className="small mb-1"),
            dcc.Dropdown(
                id=ids.RECEIVER, options=[{"label": name, "value": peer} for peer, name in receivers],
                value=receiver, clearable=False, className="mb-2",
            ),
            dbc.Label("Power (kW)", html_for=ids.TRANSFER_KW, className="small mb-1"),
            dbc.Input(id=ids.TRANSFER_KW, type="number", min=0.1, max=max_kw, step=0.1, value=transfer_kw),
        ],
        body=True,
        className="mb-3 shadow-sm",
    )


def grouped_sample_options(samples: Mapping[str, str], groups: Mapping[str, Sequence[str]]) -> list[dict]:
    """Dropdown options grouped by category: a disabled header option before each group.

    `samples` maps file name -> display label; `groups` maps group title -> file names.
    """
    options: list[dict] = []
    for group, filenames in groups.items():
        if not filenames:
            continue
        options.append({
            "label": html.Span(group, className="dropdown-group-header"),
            "value": f"__group__{group}", "disabled": True, "search": "",
        })
        for filename in filenames:
            options.append({"label": samples[filename], "value": filename, "search": f"{group} {samples[filename]}"})
    return options


def label_options(labels: Sequence[str]) -> list[dict]:
    """Options of the simulate-an-event label dropdown, grouped internal faults / transients."""
    groups: dict[str, list[str]] = {"Internal faults": [], "Transients": []}
    for label in labels:
        groups["Transients" if label.startswith("transient_") else "Internal faults"].append(label)
    return grouped_sample_options({label: _title(label) for label in labels}, groups)


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
                    dbc.Col(dbc.Label(f"{spec.get('title') or spec['name']}{unit}", className="small mb-0"), width=7),
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


def event_card(
    sample_options: list[dict],
    sample: str | None,
    simulate_options: list[dict],
    simulate_label: str | None,
    simulate_params: list,
) -> dbc.Card:
    """The grid event: a bundled sample, a simulated event or an uploaded recording."""
    sample_tab = dbc.Tab(
        [
            dbc.Label("Recorded event", html_for=ids.SAMPLE, className="small mb-1 mt-2"),
            dcc.Dropdown(id=ids.SAMPLE, options=sample_options, value=sample, clearable=False,
                         optionHeight=30, maxHeight=360),
            html.Div("Bundled recordings of the 45 event classes, grouped by category.",
                     className="form-text"),
        ],
        label="Sample", tab_id=ids.SOURCE_SAMPLE,
    )
    simulate_tab = dbc.Tab(
        [
            dbc.Label("Event to simulate", html_for=ids.SIM_LABEL, className="small mb-1 mt-2"),
            dcc.Dropdown(id=ids.SIM_LABEL, options=simulate_options, value=simulate_label, clearable=False,
                         optionHeight=30, maxHeight=360, className="mb-2"),
            html.Div(simulate_params, id=ids.SIM_PARAMS),
            dbc.Row(
                [
                    dbc.Col(dbc.Label("Random seed", className="small mb-0"), width=7),
                    dbc.Col(dbc.Input(id=ids.SIM_SEED, type="number", size="sm", value=7, min=0, step=1), width=5),
                ],
                className="g-2 mt-1 align-items-center",
            ),
        ],
        label="Simulate", tab_id=ids.SOURCE_SIMULATE,
    )
    upload_tab = dbc.Tab(
        [
            dcc.Upload(
                id=ids.UPLOAD,
                children=html.Div(["Drop a recording here or ", html.Span("choose files", className="link-primary")]),
                className="upload-zone mt-2",
                accept=".npy,.csv,.txt,.dat,.tsv,.cfg,.cff,.hdr,.inf",
                multiple=True,
            ),
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
            dbc.Row(
                [
                    dbc.Col([dbc.Label("Values in", html_for=ids.UPLOAD_UNIT, className="small mb-0"),
                             dbc.Select(id=ids.UPLOAD_UNIT, size="sm", value="window",
                                        options=[{"label": "window (kA, 500 MVA base)", "value": "window"},
                                                 {"label": "A", "value": "A"}, {"label": "kA", "value": "kA"},
                                                 {"label": "per unit", "value": "pu"}])], width=6),
                    dbc.Col([dbc.Label("Rated current (A)", html_for=ids.UPLOAD_RATED_CURRENT, className="small mb-0"),
                             dbc.Input(id=ids.UPLOAD_RATED_CURRENT, type="number", size="sm", min=0, debounce=True,
                                       placeholder="optional")], width=6),
                ],
                className="g-2 mt-1",
            ),
            html.Div("For A or kA, the rated current of the unit recorded; a COMTRADE record's own unit wins.",
                     className="form-text"),
            html.Div(id=ids.UPLOAD_STATUS, className="small mt-1"),
        ],
        label="Upload", tab_id=ids.SOURCE_UPLOAD,
    )
    return dbc.Card(
        [
            section_title("Grid event"),
            dbc.Tabs([sample_tab, simulate_tab, upload_tab], id=ids.EVENT_SOURCE_TABS,
                     active_tab=ids.SOURCE_SAMPLE),
        ],
        body=True,
        className="mb-3 shadow-sm",
    )


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
            html.Div(id=ids.ANALYZE_ALERT, className="mt-3"),
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
                html.Div(_title(label), id=ids.CONFIDENCE_LABEL, className="fw-semibold"),
                html.Div(label, className="text-muted font-monospace small text-break"),
            ],
            className="mb-2",
        ),
        html.Div(
            [
                html.Span(f"{confidence:.1%}", id=ids.CONFIDENCE_VALUE, className=f"display-6 text-{colour} me-2"),
                html.Span("calibrated confidence", className="text-muted small"),
            ],
            className="mb-1",
        ),
        dbc.Progress(value=confidence * 100, color=colour, className="mb-3", style={"height": "6px"}),
        html.Div("Top 5 labels", className="small text-muted"),
        dcc.Graph(id=ids.TOP5_GRAPH, figure=top5_figure(prediction.get("top5") or []), config=SMALL_GRAPH_CONFIG),
        html.Div("Category, equipment and kind", className="small text-muted mt-2"),
        dcc.Graph(
            id=ids.MARGINALS_GRAPH,
            figure=marginals_figure({
                "category": prediction.get("category") or {},
                "equipment": prediction.get("equipment") or {},
                "kind": prediction.get("kind") or {},
            }),
            config=SMALL_GRAPH_CONFIG,
        ),
    ]
    return children


def description_body(label: str | None, description: Mapping | None) -> list:
    """What the event is and what typically causes it (from fault_descriptions.json)."""
    if not label:
        return [placeholder("The description of the detected event appears here.")]
    description = description or {}
    causes = [str(cause) for cause in description.get("causes") or []]
    return [
        html.H6(_title(label), className="fw-semibold"),
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


def headline_body(prediction: Mapping | None, impact: Mapping | None, names: Mapping[str, str] | None = None,
                  permalink: tuple[str, str] | None = None) -> list:
    """The at-a-glance verdict under the waveform: what, how sure, where, what it does to the trade.

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
    tiles = [
        ("Event", _title(prediction.get("label")), ""),
        ("Confidence", f"{confidence:.1%}" + (" (unfamiliar)" if prediction.get("unknown") else ""), ""),
        ("Where", ", ".join(dict.fromkeys(located)) or "outside the protected zone", ""),
        ("P2P transfer", f"{status}", f"{names.get(transfer.get('sender'), transfer.get('sender') or '')} \u2192 "
                                      f"{names.get(transfer.get('receiver'), transfer.get('receiver') or '')}"),
    ]
    return [
        html.Div(
            [html.Span(str(impact.get("severity") or level).upper(), className=f"badge severity-badge sev-bg-{level} me-2"),
             html.Span(str(impact.get("event_type") or ""), className="fw-semibold me-auto"),
             dcc.Link(permalink[0], href=permalink[1], className="small ms-2", id=ids.RESULT_PERMALINK)
             if permalink else None],
            className="mb-2 d-flex align-items-center",
        ),
        dbc.Row([dbc.Col([html.Div(title, className="small text-muted"), html.Div(value, className="fw-semibold"),
                          html.Div(hint, className="small text-muted") if hint else None], md=3, xs=6)
                 for title, value, hint in tiles], className="g-2"),
    ]


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
        _fact("Restoration", f"{float(hours):g} h" if isinstance(hours, int | float) and hours else "none needed"),
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
