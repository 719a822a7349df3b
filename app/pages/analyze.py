"""Analyze ("/"): pick a P2P transfer and a grid event, one click shows what it is and what it does."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import dash_bootstrap_components as dbc
from dash import dcc, html

from app.context import analysis_context, analysis_href, href, model_status
from callbacks.analyze import latest_panel, result_panels, sim_params_for
from components import ids
from components.analytics_panels import analytics_card
from components.cards import (
    analyze_button,
    event_card,
    grouped_sample_options,
    label_options,
    model_banner,
    result_card,
    section_title,
    transfer_card,
    waveform_header,
)
from components.microgrid import microgrid_graph, severity_legend
from services.grid import DEFAULT_RECEIVER, DEFAULT_SENDER, DEFAULT_TRANSFER_KW, MAX_TRANSFER_KW, peer_choices
from services.labels import LABELS, label_parts, pretty_label

PAGE = {"path": "/", "name": "Analyze", "title": "Analyze - Grid Event Monitor", "order": 0}

DEFAULT_SIM_LABEL = "transient_magnetising_inrush"
#: the sample dropdown's groups, in the order an operator reads them
SAMPLE_GROUPS: tuple[tuple[str, str, str], ...] = (
    ("Power transformer internal faults", "internal_fault", "power_transformer"),
    ("ISPAR series unit internal faults", "internal_fault", "ispar_series"),
    ("ISPAR exciting unit internal faults", "internal_fault", "ispar_exciting"),
    ("Transients (no internal fault)", "transient", "none"),
)


def sample_groups(samples: list[Mapping[str, Any]]) -> tuple[dict[str, str], dict[str, list[str]]]:
    """(file -> display text, group title -> files) for the grouped sample dropdown.

    Samples whose true label is unknown go in a last "Other recordings" group.
    """
    display: dict[str, str] = {}
    groups: dict[str, list[str]] = {title: [] for title, _, _ in SAMPLE_GROUPS}
    groups["Other recordings"] = []
    ordered = sorted(samples, key=lambda s: (s.get("true_label_id") if s.get("true_label_id") is not None
                                             else 999, s["filename"]))
    for sample in ordered:
        filename, label = sample["filename"], sample.get("true_label")
        group = "Other recordings"
        if label in LABELS:
            parts = label_parts(label)
            group = next(title for title, category, equipment in SAMPLE_GROUPS
                         if parts.category == category and parts.equipment == equipment)
            text = pretty_label(label)
            if parts.category == "internal_fault":  # the group already names the equipment
                text = parts.kind if "-" in parts.kind else f"{parts.kind} fault"
            text = f"{text} \u00b7 {short_sample_name(filename, label)}"
        else:
            text = filename
        display[filename] = text
        groups[group].append(filename)
    return display, groups


def short_sample_name(filename: str, label: str | None) -> str:
    """'sample_01_<label>.npy' -> 'sample_01': the label is already in the option's text."""
    stem = filename[:-4] if filename.endswith(".npy") else filename
    if label and label in stem:
        stem = stem.replace(label, "").strip("_- ") or stem
    return stem


def default_sample(samples: list[Mapping[str, Any]]) -> str | None:
    """A sample that makes a telling first analysis: a power-transformer fault if there is one."""
    preferred = [s for s in samples if s.get("true_label") and str(s["true_label"]).startswith(
        "internal_power_transformer")]
    chosen = preferred or list(samples)
    return sorted(chosen, key=lambda s: (s.get("true_label_id") or 0, s["filename"]))[0]["filename"] if chosen \
        else None


def _legend() -> html.Div:
    items = [html.Span([html.Span(className="legend-dot", style={"backgroundColor": colour}), level],
                       className="me-3") for level, colour in severity_legend()]
    items.append(html.Span([html.Span(className="legend-line"), "transfer path"], className="me-3"))
    return html.Div(items, className="small text-muted mt-1")


def layout(**_query) -> html.Div:
    """The page, with the transfer and a sample preselected so that one click analyses."""
    context = analysis_context()
    status = model_status()
    senders, receivers = peer_choices()
    samples = context.samples()
    display, groups = sample_groups(samples)
    sample = default_sample(samples)
    empty = result_panels(None, sender=DEFAULT_SENDER, receiver=DEFAULT_RECEIVER)

    controls = dbc.Col(
        [
            transfer_card(senders, receivers, sender=DEFAULT_SENDER, receiver=DEFAULT_RECEIVER,
                          transfer_kw=DEFAULT_TRANSFER_KW, max_kw=MAX_TRANSFER_KW),
            event_card(grouped_sample_options(display, groups), sample, label_options(LABELS), DEFAULT_SIM_LABEL,
                       sim_params_for(DEFAULT_SIM_LABEL)),
            analyze_button(),
        ],
        lg=3, md=12,
    )
    graph_card = dbc.Card(
        [section_title("P2P microgrid"),
         dcc.Loading(microgrid_graph(ids.MICROGRID, empty["graph"]), type="dot", delay_show=300),
         html.Div(empty["caption"], id=ids.MICROGRID_CAPTION, className="small mt-1"),
         _legend()],
        body=True, className="mb-3 shadow-sm h-100",
    )
    waveform_card = dbc.Card(
        [
            waveform_header(ids.WAVEFORM_VIEW),
            dcc.Loading(html.Div(empty["waveform"], id=ids.WAVEFORM_CONTAINER), type="dot", delay_show=300),
            html.Hr(className="my-2"),
            html.Div(empty["headline"], id=ids.RESULT_HEADLINE, **{"aria-live": "polite"}),  # read out when it changes
        ],
        body=True, className="mb-3 shadow-sm h-100",
    )
    results = dbc.Col(
        [
            dbc.Row([dbc.Col(graph_card, xl=5, className="mb-3"), dbc.Col(waveform_card, xl=7, className="mb-3")],
                    className="g-3"),
            analytics_card(ids.ANALYZE_ANALYTICS, modebar=False),  # signal analytics (issue 15), once there is a result
            dbc.Row(
                [
                    dbc.Col(result_card("Model confidence", ids.CONFIDENCE, empty["confidence"]), xl=4),
                    dbc.Col(result_card("Impact on the P2P network", ids.IMPACT, empty["impact"]), xl=5),
                    dbc.Col(result_card("What happened", ids.DESCRIPTION, empty["description"]), xl=3),
                ],
                className="g-3",
            ),
            dbc.Card(
                [
                    html.Div([section_title("Latest analyses"),
                              dcc.Link("All history \u2192", href=href("/history"), className="small")],
                             className="d-flex justify-content-between"),
                    html.Div(latest_panel(context.store, analysis_href), id=ids.LATEST_TABLE),
                ],
                body=True, className="shadow-sm",
            ),
        ],
        lg=9, md=12,
    )
    return html.Div(
        [
            html.H1("Analyze a grid event", className="visually-hidden"),
            model_banner(status, component_id=ids.ANALYZE_MODEL_BANNER),
            dcc.Store(id=ids.ANALYZE_RESULT_STORE, storage_type="memory"),
            dcc.Store(id=ids.UPLOAD_STORE, storage_type="memory"),
            html.Div(id=ids.PLOTLY_PRELOAD, hidden=True),
            dbc.Row([controls, results], className="g-3"),
        ],
        id=ids.ANALYZE_PAGE,
    )
