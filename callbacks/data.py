"""Read-only access to this app's services from inside a request: context, samples, peers, grid.

Everything per app lives on the Flask app (`current_app.extensions[EXTENSION_KEY]`, set by
`app.create_app`), so nothing here holds state; the few caches are immutable data keyed by
their inputs.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from functools import lru_cache
from typing import Any

import dash
from flask import current_app, has_app_context

from services.analysis import EXTENSION_KEY, AnalysisContext
from services.grid import PEERS, RECEIVERS, SENDERS, graph_elements, microgrid
from services.labels import LABELS, label_parts, pretty_label

log = logging.getLogger(__name__)

DEFAULT_SENDER = "prosumer-a"
DEFAULT_RECEIVER = "consumer-home"
LATEST_ROWS = 8

#: the sample dropdown's groups, in the order an operator reads them
SAMPLE_GROUPS: tuple[tuple[str, str, str], ...] = (
    ("Power transformer internal faults", "internal_fault", "power_transformer"),
    ("ISPAR series unit internal faults", "internal_fault", "ispar_series"),
    ("ISPAR exciting unit internal faults", "internal_fault", "ispar_exciting"),
    ("Transients (no internal fault)", "transient", "none"),
)


class ContextMissing(RuntimeError):
    """The callback ran outside an app built by `app.create_app` (no analysis context)."""


def context() -> AnalysisContext:
    """This app's AnalysisContext (artifacts folder, history store, settings)."""
    if not has_app_context():
        raise ContextMissing("no Flask app context: the dashboard must be built by app.create_app")
    found = current_app.extensions.get(EXTENSION_KEY)
    if found is None:
        raise ContextMissing("the Flask app has no Grid Event Monitor context: build it with app.create_app")
    return found


def href(path: str) -> str:
    """A link inside the app that keeps the URL prefix (`/grid/...` when mounted under /grid/)."""
    return dash.get_relative_path(path)


def analysis_href(analysis_id: int) -> str:
    return href(f"/analysis/{int(analysis_id)}")


def model_status(ctx: AnalysisContext | None = None) -> dict[str, Any]:
    """{"loaded": bool, "message": str, ...} from services.analysis.model_status (never raises)."""
    ctx = ctx or context()
    try:
        return ctx.model_status().to_dict()
    except Exception as exc:  # the banner must render whatever went wrong
        log.exception("model status failed")
        return {"loaded": False, "message": f"model status unavailable: {type(exc).__name__}"}


# --- peers and the grid ---------------------------------------------------------------------------

@lru_cache(maxsize=1)
def grid_data() -> Mapping[str, list[dict]]:
    """Plain nodes and edges of the default microgrid (immutable, built once per process)."""
    return graph_elements(microgrid())


def node_names() -> dict[str, str]:
    """Display name of every node of the microgrid (peers and equipment)."""
    return {node["id"]: node["name"] for node in grid_data()["nodes"]}


def peer_names() -> dict[str, str]:
    return {node["id"]: node["name"] for node in grid_data()["nodes"] if node["id"] in PEERS}


def peer_options() -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    """(senders, receivers) as (id, display name) pairs, in the original interface's order."""
    names = peer_names()
    return ([(peer, names.get(peer, peer)) for peer in SENDERS],
            [(peer, names.get(peer, peer)) for peer in RECEIVERS])


# --- samples ------------------------------------------------------------------------------------------

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


def latest_rows(ctx: AnalysisContext | None = None, limit: int = LATEST_ROWS) -> list[dict]:
    ctx = ctx or context()
    rows, _ = ctx.store.query(limit=limit, offset=0)
    return rows
