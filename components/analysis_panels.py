"""One analysis as the dashboard shows it: a plain "view" dict and the components built from it.

A view comes either from a fresh `services.analysis.analyze` result or from a stored history
record, so the Analyze page and the permanent `/analysis/<id>` page draw exactly the same thing.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

from dash import dcc, html

from components.cards import GRAPH_CONFIG, confidence_body, description_body, headline_body, impact_body
from components.figures import empty_figure, waveform_figure
from components.microgrid import microgrid_elements
from services.comtrade_ingest import summary_of

PREDICTION_KEYS = ("label", "label_id", "confidence", "top5", "category", "equipment", "kind", "unknown",
                   "unknown_reason", "explanation", "inception_ms")


def view_from_result(result: Mapping[str, Any]) -> dict[str, Any]:
    """The view of a fresh `analyze()` result (JSON-able; kept in the browser's dcc.Store)."""
    marginals = result.get("marginals") or {}
    prediction = {
        "label": result["predicted_label"],
        "label_id": result.get("label_id"),
        "confidence": float(result.get("confidence_value", 0.0)),
        "top5": result.get("top5") or [],
        "category": marginals.get("category") or {},
        "equipment": marginals.get("equipment") or {},
        "kind": marginals.get("kind") or {},
        "unknown": bool(result.get("unknown")),
        "unknown_reason": result.get("unknown_reason"),
        "explanation": result.get("explanation") or [],
        "inception_ms": result.get("inception_ms"),
    }
    return {
        "analysis_id": result.get("analysis_id"),
        "created_at": result.get("created_at"),
        "source": result.get("source"),
        "sample_name": result.get("selected_sample"),
        "true_label": None if result.get("true_label") in (None, "N/A") else result.get("true_label"),
        "sender": result.get("sender_peer"),
        "receiver": result.get("receiver_peer"),
        "transfer_kw": result.get("transfer_kw"),
        "prediction": prediction,
        "impact": dict(result.get("impact") or {}),
        "description": {"description": result.get("description", ""), "causes": list(result.get("causes") or [])},
        "waveform": result.get("waveform_data"),
        "recording": result.get("recording"),
    }


def recording_text(view: Mapping[str, Any]) -> str | None:
    """One line on the COMTRADE record an analysis came from (device, channels, window), or None."""
    details = view.get("recording")
    if not isinstance(details, Mapping):
        return None
    try:
        summary = summary_of(details)
    except (KeyError, TypeError, ValueError):  # a record stored by another release: say what we can
        return f"COMTRADE record {details.get('source') or ''}".strip()
    device = " / ".join(str(part) for part in (details.get("station"), details.get("device")) if part)
    return f"COMTRADE record{' from ' + device if device else ''}: {summary}"


def view_from_record(record: Mapping[str, Any], description: Mapping[str, Any] | None) -> dict[str, Any]:
    """The view of a stored history record (`HistoryStore.get`)."""
    stored = dict(record.get("prediction") or {})
    prediction = {key: stored.get(key) for key in PREDICTION_KEYS}
    prediction["label"] = record.get("label") or stored.get("label")
    prediction["confidence"] = float(record.get("confidence") if record.get("confidence") is not None
                                     else stored.get("confidence") or 0.0)
    prediction["unknown"] = bool(record.get("unknown", stored.get("unknown", False)))
    prediction["unknown_reason"] = record.get("unknown_reason") or stored.get("unknown_reason")
    for key in ("category", "equipment", "kind"):
        if not isinstance(prediction.get(key), Mapping):
            prediction[key] = {}
    return {
        "analysis_id": record.get("id"),
        "created_at": record.get("created_at"),
        "source": record.get("source"),
        "sample_name": record.get("sample_name"),
        "true_label": record.get("true_label"),
        "sender": record.get("sender"),
        "receiver": record.get("receiver"),
        "transfer_kw": record.get("transfer_kw"),
        "prediction": prediction,
        "impact": dict(record.get("impact") or {}),
        "description": dict(description or {}),
        "waveform": record.get("waveform"),
        "recording": record.get("recording"),
    }


def _ids(value: Any) -> list[str]:
    """Node/edge ids from a list, a single id or a list of dicts with an `id`."""
    if value is None:
        return []
    if isinstance(value, str):
        return [value]
    if isinstance(value, Mapping):
        return [str(key) for key in value]
    result = []
    for item in value if isinstance(value, Iterable) else []:
        if isinstance(item, Mapping) and "id" in item:
            result.append(str(item["id"]))
        elif isinstance(item, str):
            result.append(item)
    return result


def impact_highlights(impact: Mapping[str, Any]) -> dict[str, Any]:
    """Graph highlights read from an ImpactReport dict: affected, de-energised, located, path."""
    details = impact.get("p2p_impact_details") or {}
    transfer = impact.get("transfer") or {}
    highlights: dict[str, Any] = {
        "severity": impact.get("severity"),
        "affected_nodes": sorted(set(_ids(impact.get("highlight_keys"))) | set(_ids(details.get("highlight_keys")))),
        "affected_edges": sorted(_ids(impact.get("affected_edges"))),
        "deenergised": sorted(_ids(impact.get("deenergised_nodes"))),
        "located": sorted(_ids(impact.get("located_equipment"))),
        "transfer_blocked": str(impact.get("transfer_status") or transfer.get("status") or "").lower()
        in {"disrupted", "curtailed"},
    }
    if transfer.get("path_edges"):
        highlights["path_edges"] = [str(edge) for edge in transfer["path_edges"]]
    return highlights


def graph_for(grid: Mapping[str, list[dict]], view: Mapping[str, Any] | None, *, sender: str | None = None,
              receiver: str | None = None) -> list[dict]:
    """Cytoscape elements: the transfer path, plus the event's highlights when there is a view."""
    if not view:
        return microgrid_elements(grid["nodes"], grid["edges"], sender=sender, receiver=receiver)
    highlights = impact_highlights(view.get("impact") or {})
    return microgrid_elements(
        grid["nodes"], grid["edges"], sender=view.get("sender") or sender, receiver=view.get("receiver") or receiver,
        **highlights,
    )


def graph_caption(view: Mapping[str, Any] | None, names: Mapping[str, str], *, sender: str | None = None,
                  receiver: str | None = None) -> str:
    """One line saying what the graph shows (also a text alternative to the canvas)."""
    if not view:
        return (f"Transfer path {names.get(sender or '', sender)} \u2192 {names.get(receiver or '', receiver)}; "
                "no event analysed yet.")
    impact = view.get("impact") or {}
    highlights = impact_highlights(impact)
    parts = [f"Severity {str(impact.get('severity') or 'n/a').upper()}"]
    if highlights["located"]:
        parts.append("event at " + ", ".join(names.get(node, node) for node in highlights["located"]))
    if highlights["deenergised"]:
        parts.append("de-energised: " + ", ".join(names.get(node, node) for node in highlights["deenergised"]))
    status = impact.get("transfer_status")
    if status:
        parts.append(f"transfer {names.get(view.get('sender') or '', view.get('sender'))} \u2192 "
                     f"{names.get(view.get('receiver') or '', view.get('receiver'))} {status}")
    return "; ".join(parts) + "."


def waveform_for(view: Mapping[str, Any] | None, mode: str = "raw") -> Any:
    """The waveform figure of a view, or a figure that says why there is none."""
    if not view or not view.get("waveform"):
        return empty_figure("Choose an event and press Analyze", height=330)
    prediction = view.get("prediction") or {}
    return waveform_figure(
        view["waveform"], view=mode, inception_ms=prediction.get("inception_ms"),
        explanation=prediction.get("explanation") or (),
    )


def waveform_panel(view: Mapping[str, Any] | None, mode: str, component_id: str) -> Any:
    """The waveform graph of a view, or a placeholder of the same height before any analysis.

    The Analyze page starts without a dcc.Graph so that its first render does not wait for
    plotly.js (Dash holds the whole page until every lazy component's script is loaded).
    """
    if not view or not view.get("waveform"):
        return html.Div("Choose an event and press Analyze: the three differential currents appear here.",
                        className="waveform-placeholder text-muted small")
    return dcc.Graph(id=component_id, figure=waveform_for(view, mode), config=GRAPH_CONFIG)


def confidence_for(view: Mapping[str, Any] | None) -> list:
    return confidence_body((view or {}).get("prediction"))


def description_for(view: Mapping[str, Any] | None) -> list:
    prediction = (view or {}).get("prediction") or {}
    return description_body(prediction.get("label"), (view or {}).get("description"))


def impact_for(view: Mapping[str, Any] | None, names: Mapping[str, str] | None = None) -> list:
    return impact_body((view or {}).get("impact"), names)


def headline_for(view: Mapping[str, Any] | None, names: Mapping[str, str] | None = None,
                 href_for: Callable[[int], str] | None = None) -> list:
    """The verdict strip; with `href_for`, it links to the analysis's permanent page."""
    view = view or {}
    analysis_id = view.get("analysis_id")
    permalink = (f"Permanent link #{analysis_id}", href_for(int(analysis_id))) if href_for and analysis_id else None
    return headline_body(view.get("prediction"), view.get("impact"), names, permalink)
