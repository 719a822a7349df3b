"""Model ("/model"): the model card: test metrics, recall per label, confusion, calibration, data."""

from __future__ import annotations

from collections.abc import Mapping

import dash_bootstrap_components as dbc
from dash import dcc, html

from app.context import analysis_context, model_status
from components import ids
from components.cards import GRAPH_CONFIG, model_banner, section_title, stat_tile
from components.figures import (
    calibration_summary_figure,
    confusion_figure,
    recall_figure,
    reliability_figure,
    training_curve_figure,
)
from components.tables import key_value_table, levels_report_table, simple_table, stated_connection_table
from services.inference.connections import RELAY_CONNECTIONS
from services.model_card import load_card, safe_card_view

PAGE = {"path": "/model", "name": "Model", "title": "Model - Grid Event Monitor", "order": 2}

#: metrics that are fractions, shown as percentages (the expected calibration error is one too)
PERCENT_METRICS = ("accuracy", "f1", "recall", "precision", "top", "ece", "rate")


def _metric_text(name: str, value: float) -> str:
    if any(word in name.lower().split("_") or name.lower().startswith(word) for word in PERCENT_METRICS) \
            and 0 <= value <= 1:
        return f"{value:.2%}"
    return f"{value:,.4g}"


ACRONYMS = {"ece": "ECE", "nll": "NLL", "f1": "F1", "s": "(s)", "dc": "DC"}


def _title(name: str) -> str:
    """'macro_f1' -> 'Macro F1', 'ece_after_calibration' -> 'ECE after calibration'."""
    words = [ACRONYMS.get(word, word) for word in name.split("_")]
    text = " ".join(words)
    return text[:1].upper() + text[1:]


def _short(value: object) -> str:
    """Numbers to 4 significant digits, lists of numbers likewise."""
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, list):
        return "[" + ", ".join(_short(v) for v in value) + "]"
    return str(value)


def _facts(value: object) -> list[tuple[str, object]]:
    """Flatten a JSON object one level into (key, text) rows."""
    if isinstance(value, Mapping):
        rows = []
        for key, item in value.items():
            if isinstance(item, Mapping):
                item = "; ".join(f"{k}: {_short(v)}" for k, v in item.items())
            elif isinstance(item, list):
                item = ", ".join(f"{v:.4g}" if isinstance(v, float) else str(v) for v in item[:20]) + (
                    " ..." if len(item) > 20 else "")
            rows.append((_title(str(key)), item))
        return rows
    return [("Description", value)] if value else []


def _unknown_facts(unknown: Mapping) -> list[tuple[str, object]]:
    """The unknown detector's figures, rates as percentages."""
    rows = []
    for key, value in unknown.items():
        if isinstance(value, float) and "rate" in key:
            value = f"{value:.1%}"
        elif isinstance(value, float):
            value = f"{value:.4g}"
        rows.append((_title(key), value))
    return rows


def _calibration_view(view: Mapping) -> list:
    """The reliability diagram and which windows it shows; for an older card, a note and the ECE/NLL bars."""
    if view["reliability"]:
        return [dcc.Graph(id=ids.MODEL_CALIBRATION, figure=reliability_figure(view["reliability"]),
                          config=GRAPH_CONFIG),
                html.Div(view["reliability_source"], id=ids.MODEL_CALIBRATION_NOTE, className="text-muted small")]
    note = ["No reliability diagram: this model card has no per-bin calibration data (it predates them), so only "
            "ECE and NLL are shown. ", html.Code("python -m services.training.evaluate --update-card"),
            " adds the bins without retraining."]
    return [html.Div(note, id=ids.MODEL_CALIBRATION_NOTE, className="text-muted small"),
            dcc.Graph(id=ids.MODEL_CALIBRATION, figure=calibration_summary_figure(view["calibration_facts"]),
                      config=GRAPH_CONFIG)]


def _robustness_view(view: Mapping) -> list:
    """Accuracy on the fresh set as simulated and under each physically plausible departure."""
    figures = view["robustness"]
    if not figures:
        return [html.Div(["No robustness figures in this model card: ",
                          html.Code("python -m services.training.evaluate --update-card"), " adds them."],
                         className="text-muted small")]
    rows = [(name, f"{row['accuracy']:.2%}", f"{row['category_accuracy']:.2%}") for name, row in figures.items()]
    return [html.Div("Fresh simulated set, changed the way real recordings differ from it; a rotated "
                     "recording is scored against the rotated label (an AG fault becomes BG).",
                     className="text-muted small mb-2"),
            simple_table(("Recording", "Accuracy", "Category accuracy"), rows, component_id=ids.MODEL_ROBUSTNESS)]


def layout(**_query) -> html.Div:
    status = model_status()
    view, problem = safe_card_view(load_card(analysis_context(), loaded=bool(status.get("loaded"))))
    metrics = view["metrics"]
    tiles = [dbc.Col(stat_tile(_title(name), _metric_text(name, float(value))), lg=2, md=4, sm=6, className="mb-3")
             for name, value in list(metrics.items())[:6]]
    if not tiles:
        tiles = [dbc.Col(dbc.Alert("The model card has no test metrics.", color="secondary", className="mb-3"))]
    fingerprint = status.get("fingerprint") or "n/a (model not loaded)"
    identity = key_value_table(
        [("Artifacts fingerprint", html.Code(fingerprint, id=ids.MODEL_FINGERPRINT)),
         ("Inference backend", status.get("backend") or "n/a"),
         ("Status", status.get("message"))]
        + [(_title(k), v) for k, v in view["facts"].items()][:10]
    )
    calibration_facts = [(_title(k), _metric_text(k, v) if isinstance(v, float) else v)
                         for k, v in view["calibration_facts"].items()]
    return html.Div(
        [
            model_banner(status, component_id=ids.MODEL_BANNER),
            html.H1("Model card", className="h4 mb-3"),
            dbc.Alert(problem, color="warning") if problem else None,
            dbc.Row(tiles, id=ids.MODEL_METRICS, className="g-3"),
            dbc.Row(
                [
                    dbc.Col(dbc.Card([section_title("Identity"), identity], body=True, className="shadow-sm h-100"),
                            xl=6),
                    dbc.Col(dbc.Card([section_title("Training data"),
                                      key_value_table((_facts(view["training"]) or [("Description", "n/a")])
                                                      + _facts(view["training_details"]),
                                                      component_id=ids.MODEL_TRAINING_DATA)],
                                     body=True, className="shadow-sm h-100"), xl=6),
                ],
                className="g-3 mb-3",
            ),
            dbc.Row(
                [
                    dbc.Col(dbc.Card([section_title("Confusion matrix (test set, row-normalised)"),
                                      dcc.Graph(id=ids.MODEL_CONFUSION,
                                                figure=confusion_figure(view["confusion"] or [], view["labels"]),
                                                config=GRAPH_CONFIG)],
                                     body=True, className="shadow-sm h-100"), xl=7),
                    dbc.Col(dbc.Card([section_title("Recall per label (worst first)"),
                                      dcc.Graph(id=ids.MODEL_RECALL, figure=recall_figure(view["recall"]),
                                                config=GRAPH_CONFIG)],
                                     body=True, className="shadow-sm h-100"), xl=5),
                ],
                className="g-3 mb-3",
            ),
            dbc.Row(
                [
                    dbc.Col(dbc.Card([section_title("Training curve"),
                                      dcc.Graph(figure=training_curve_figure(view["history"]), config=GRAPH_CONFIG)],
                                     body=True, className="shadow-sm h-100"), xl=7),
                    dbc.Col(dbc.Card([section_title("Unknown-event detection"),
                                      key_value_table(_unknown_facts(view["unknown"]) or [("Detector", "n/a")])],
                                     body=True, className="shadow-sm h-100"), xl=5),
                ],
                className="g-3 mb-3",
            ),
            dbc.Card([section_title("The answer level by level"), levels], body=True, className="shadow-sm mb-3")
            if (levels := levels_report_table(view["levels_report"])) is not None else None,
            dbc.Card([section_title("When the relay connection is stated"), stated], body=True,
                     className="shadow-sm mb-3")
            if (stated := stated_connection_table(view["stated_connection"], RELAY_CONNECTIONS)) is not None else None,
            dbc.Card([section_title("Robustness to real-recording departures"), *_robustness_view(view)],
                     body=True, className="shadow-sm mb-3"),
            dbc.Card(
                [section_title("Calibration before and after temperature scaling"),
                 dbc.Row([
                     dbc.Col(_calibration_view(view), lg=8),
                     dbc.Col([html.Div("Test split of the training run", className="text-muted small mb-1"),
                              key_value_table(calibration_facts or [("Calibration", "n/a")])], lg=4),
                 ])],
                body=True, className="shadow-sm",
            ),
        ],
        id=ids.MODEL_PAGE,
    )
