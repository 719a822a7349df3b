"""The panels of one analysis (`services.analysis.Analysis`), drawn the same on the Analyze page and
on its permanent page `/analysis/<id>`: graph, caption, verdict strip, waveform, confidence, impact.

Pure builders like the rest of components/: an Analysis and plain data in, components out. Ids in
the rules' text are shown by their display names (`names`, from `services.grid.display_names`).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from dash import dcc, html

from components.cards import GRAPH_CONFIG, confidence_body, description_body, headline_body, impact_body
from components.figures import empty_figure, waveform_figure
from components.microgrid import microgrid_elements
from services.analysis import Analysis
from services.comtrade_ingest import summary_of


def prediction_facts(analysis: Analysis | None) -> dict[str, Any] | None:
    """The model's answer as the card builders read it (label, confidence, top-5, levels, ...)."""
    if analysis is None:
        return None
    return {
        "label": analysis.label, "label_id": analysis.label_id, "confidence": analysis.confidence,
        "top5": [list(item) for item in analysis.top5], "unknown": analysis.unknown,
        "unknown_reason": analysis.unknown_reason, "headline": analysis.headline, "levels": dict(analysis.levels),
        "equipment_uncertain": analysis.equipment_uncertain, "event_detected": analysis.event_detected,
        "relay_connection": analysis.relay_connection,
        **{key: dict(analysis.marginals.get(key) or {}) for key in ("category", "equipment", "kind")},
    }


def named(text: str | None, names: Mapping[str, str]) -> str | None:
    """`text` with every microgrid id in it replaced by its display name ("cb-feeder-1" -> "Feeder 1 breaker")."""
    if not text or not names:
        return text
    pattern = _id_pattern(tuple(sorted(names, key=len, reverse=True)))
    return pattern.sub(lambda match: names[match.group(0)], text)


_PATTERNS: dict[tuple[str, ...], re.Pattern] = {}


def _id_pattern(ids: tuple[str, ...]) -> re.Pattern:
    if ids not in _PATTERNS:
        _PATTERNS[ids] = re.compile(r"(?<![\w-])(?:" + "|".join(re.escape(i) for i in ids) + r")(?![\w-])")
    return _PATTERNS[ids]


def named_impact(impact: Mapping[str, Any], names: Mapping[str, str]) -> dict[str, Any]:
    """The impact report with its sentences in display names (the data keeps the ids)."""
    shown = dict(impact)
    for key in ("summary", "p2p_disruption_message"):
        shown[key] = named(impact.get(key), names)
    shown["actions"] = [named(str(action), names) for action in impact.get("actions") or ()]
    protection = impact.get("protection_action")
    if isinstance(protection, Mapping):
        shown["protection_action"] = {**protection, "description": named(protection.get("description"), names)}
    return shown


def recording_text(analysis: Analysis) -> str | None:
    """One line on the COMTRADE record an analysis came from (device, channels, window), or None."""
    details = analysis.recording
    if not isinstance(details, Mapping):
        return None
    try:
        summary = summary_of(details)
    except (KeyError, TypeError, ValueError):  # a record stored by another release: say what we can
        return f"COMTRADE record {details.get('source') or ''}".strip()
    device = " / ".join(str(part) for part in (details.get("station"), details.get("device")) if part)
    return f"COMTRADE record{' from ' + device if device else ''}: {summary}"


def simulation_text(analysis: Analysis) -> str | None:
    """'simulated ferroresonance, seed 7: mode 3, inception 12 ms' for a simulated event, else None."""
    simulation = analysis.simulation
    if not isinstance(simulation, Mapping):
        return None
    params = simulation.get("parameters") or {}
    shown = ", ".join(f"{name} {value:g}" if isinstance(value, int | float) else f"{name} {value}"
                      for name, value in params.items())
    seed = simulation.get("seed")
    return f"simulated{f' (seed {seed})' if seed is not None else ''}" + (f": {shown}" if shown else "")


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
    return {
        "severity": impact.get("severity"),
        "affected_nodes": sorted(set(_ids(impact.get("highlight_keys"))) | set(_ids(details.get("highlight_keys")))),
        "affected_edges": sorted(_ids(impact.get("affected_edges"))),
        "deenergised": sorted(_ids(impact.get("deenergised_nodes"))),
        "located": sorted(_ids(impact.get("located_equipment"))),
        "transfer_blocked": str(impact.get("transfer_status") or transfer.get("status") or "").lower()
        in {"disrupted", "curtailed"},
        "path_edges": [str(edge) for edge in transfer.get("path_edges") or ()],
    }


def graph_for(grid: Mapping[str, list[dict]], analysis: Analysis | None, *, path_edges: Iterable[str] = (),
              sender: str | None = None, receiver: str | None = None) -> list[dict]:
    """Cytoscape elements: the transfer path (`path_edges`, from services.grid.transfer_path_edges or
    the impact report), plus the event's highlights when there is an analysis."""
    if analysis is None:
        return microgrid_elements(grid["nodes"], grid["edges"], sender=sender, receiver=receiver,
                                  path_edges=list(path_edges))
    highlights = impact_highlights(analysis.impact)
    if not highlights["path_edges"]:
        highlights["path_edges"] = list(path_edges)
    return microgrid_elements(grid["nodes"], grid["edges"], sender=analysis.sender, receiver=analysis.receiver,
                              **highlights)


def graph_caption(analysis: Analysis | None, names: Mapping[str, str], *, sender: str | None = None,
                  receiver: str | None = None) -> str:
    """One line saying what the graph shows (also a text alternative to the canvas)."""
    if analysis is None:
        return (f"Transfer path {names.get(sender or '', sender)} \u2192 {names.get(receiver or '', receiver)}; "
                "no event analysed yet.")
    highlights = impact_highlights(analysis.impact)
    parts = [f"Severity {str(analysis.severity or 'n/a').upper()}"]
    if highlights["located"]:
        parts.append("event at " + ", ".join(names.get(node, node) for node in highlights["located"]))
    if highlights["deenergised"]:
        parts.append("de-energised: " + ", ".join(names.get(node, node) for node in highlights["deenergised"]))
    if analysis.transfer_status:
        parts.append(f"transfer {names.get(analysis.sender, analysis.sender)} \u2192 "
                     f"{names.get(analysis.receiver, analysis.receiver)} {analysis.transfer_status}")
    return "; ".join(parts) + "."


def waveform_for(analysis: Analysis | None, mode: str = "raw") -> Any:
    """The waveform figure of an analysis, or a figure that says why there is none."""
    if analysis is None or not analysis.waveform:
        return empty_figure("Choose an event and press Analyze", height=330)
    return waveform_figure([list(row) for row in analysis.waveform], view=mode, inception_ms=analysis.inception_ms,
                           explanation=[list(span) for span in analysis.explanation])


def waveform_panel(analysis: Analysis | None, mode: str, component_id: str) -> Any:
    """The waveform graph of an analysis, or a placeholder of the same height before any analysis.

    The Analyze page starts without a dcc.Graph so that its first render does not wait for
    plotly.js (Dash holds the whole page until every lazy component's script is loaded).
    """
    if analysis is None or not analysis.waveform:
        return html.Div("Choose an event and press Analyze: the three differential currents appear here.",
                        className="waveform-placeholder text-muted small")
    return dcc.Graph(id=component_id, figure=waveform_for(analysis, mode), config=GRAPH_CONFIG)


def confidence_for(analysis: Analysis | None) -> list:
    return confidence_body(prediction_facts(analysis))


def description_for(analysis: Analysis | None) -> list:
    if analysis is None:
        return description_body(None, None)
    return description_body(analysis.label, {"description": analysis.description, "causes": list(analysis.causes)})


def impact_for(analysis: Analysis | None, names: Mapping[str, str]) -> list:
    return impact_body(named_impact(analysis.impact, names) if analysis is not None else None, names)


def headline_for(analysis: Analysis | None, names: Mapping[str, str],
                 href_for: Callable[[int], str] | None = None) -> list:
    """The verdict strip; with `href_for`, it links to the analysis's permanent page."""
    if analysis is None:
        return headline_body(None, None, names)
    permalink = None
    if href_for and analysis.analysis_id:
        permalink = (f"Permanent link #{analysis.analysis_id}", href_for(int(analysis.analysis_id)))
    return headline_body(prediction_facts(analysis), named_impact(analysis.impact, names), names, permalink)
