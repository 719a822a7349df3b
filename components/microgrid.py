"""The cytoscape microgrid: elements built from the grid's plain data, the stylesheet apart.

Input is plain data (lists of dicts as produced by `callbacks.data.grid_data`), so the same builder
draws the Analyze page, a stored analysis and the power-flow state of the Network page.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

import dash_cytoscape as cyto

#: severity levels of services.rules (info < minor < major < critical) plus "normal" for untouched parts
SEVERITY_COLOURS: dict[str, str] = {
    "normal": "#198754",
    "info": "#0aa2c0",
    "minor": "#e0a800",
    "major": "#fd7e14",
    "critical": "#dc3545",
}
#: other words older records or other tools may use, mapped onto the levels above
SEVERITY_ALIASES: dict[str, str] = {
    "none": "normal", "ok": "normal", "low": "info", "medium": "minor", "moderate": "minor",
    "warning": "minor", "high": "major", "severe": "critical",
}
#: node kinds of services.grid -> cytoscape shape
KIND_SHAPES: dict[str, str] = {
    "utility": "diamond", "transformer": "round-rectangle", "bus": "rectangle", "hub": "hexagon",
    "feeder": "round-triangle", "capacitor": "round-tag", "prosumer": "ellipse", "storage": "barrel",
    "generation": "star", "load": "ellipse",
}


def normalise_severity(severity: object) -> str:
    """One of SEVERITY_COLOURS' keys for whatever severity word we are given."""
    word = str(severity or "normal").strip().lower()
    word = SEVERITY_ALIASES.get(word, word)
    return word if word in SEVERITY_COLOURS else "major"


RATING_UNITS = {"transformer": "kVA", "capacitor": "kvar", "utility": ""}


#: rows of the grid data are drawn this much further apart than given, so that two-line captions at
#: a readable size (>= 12 px at desktop width) fit between a node and the one below it
ROW_SPREAD = 1.2
#: where the power-flow view has loading captions on lines, the rows below the first line are
#: spread by this factor so that each caption fits between the node captions above and below it
LOADING_ROW_SPREAD = 1.7
#: the power-flow view (voltages or loadings given) has two-line captions with figures: its columns
#: are drawn this much further apart so that the captions can be wider (`caption-wide`)
POWER_FLOW_COLUMN_SPREAD = 1.3


def _node_caption(node: Mapping, voltage_pu: float | None, show_ratings: bool) -> str:
    """The node's name, then its rating and bus voltage on one line (kept short: the graph is small)."""
    name = str(node.get("name") or node["id"])
    rating = node.get("rating_kw")
    unit = RATING_UNITS.get(str(node.get("kind")), "kW")
    facts = []
    if show_ratings and rating and unit:
        facts.append(f"{float(rating):g} {unit}")
    if voltage_pu is not None:
        facts.append(f"{voltage_pu:.3f} pu")
    return "\n".join([name, " \u00b7 ".join(facts)] if facts else [name])


def _spread_rows(nodes: Sequence[Mapping], edges: Sequence[Mapping], labelled: set[str]) -> float | None:
    """The y from which rows are spread (the highest end of a labelled edge), or None when none is labelled."""
    heights = {str(node["id"]): float(node["position"]["y"]) for node in nodes
               if isinstance(node.get("position"), Mapping) and "y" in node["position"]}
    ends = [heights[str(edge[end])] for edge in edges if str(edge["id"]) in labelled
            for end in ("source", "target") if str(edge[end]) in heights]
    return min(ends) if ends else None


def microgrid_elements(
    nodes: Sequence[Mapping],
    edges: Sequence[Mapping],
    *,
    sender: str | None = None,
    receiver: str | None = None,
    severity: str | None = None,
    affected_nodes: Iterable[str] = (),
    affected_edges: Iterable[str] = (),
    deenergised: Iterable[str] = (),
    located: Iterable[str] = (),
    transfer_blocked: bool = False,
    path_edges: Iterable[str] = (),
    voltages_pu: Mapping[str, float] | None = None,
    loadings_percent: Mapping[str, float] | None = None,
    show_ratings: bool = False,
) -> list[dict]:
    """Cytoscape elements (data + classes) of the microgrid.

    Nodes carry their kind as a class; the sender, receiver and the transfer path get classes of
    their own; nodes and edges hit by an event get `affected sev-<level>`; the equipment where the
    event was located gets `located`; everything else is drawn as normal (green). `path_edges` is the
    transfer's path (`services.grid.transfer_path_edges` or the impact report's): it is not searched here.
    """
    level = normalise_severity(severity)
    affected_node_set, affected_edge_set = set(affected_nodes), set(affected_edges)
    dead, located_set = set(deenergised), set(located)
    path = set(path_edges)
    voltages_pu = voltages_pu or {}
    loadings_percent = loadings_percent or {}
    spread_from = _spread_rows(nodes, edges, set(loadings_percent))
    power_flow = bool(voltages_pu or loadings_percent)
    x_spread = POWER_FLOW_COLUMN_SPREAD if power_flow else 1.0
    elements: list[dict] = []
    for node in nodes:
        node_id = str(node["id"])
        voltage = voltages_pu.get(node_id)
        classes = ["node", f"kind-{node.get('kind', 'bus')}"]
        if node_id == sender:
            classes.append("sender")
        if node_id == receiver:
            classes.append("receiver")
        if node_id in affected_node_set:
            classes += ["affected", f"sev-{level}"]
        if node_id in dead:
            classes.append("deenergised")
        if node_id in located_set:
            classes += ["located", f"sev-{level}"]
        if voltage is not None and not 0.95 <= voltage <= 1.05:
            classes.append("voltage-violation")
        if power_flow:
            classes.append("caption-wide")
        element = {
            "data": {
                "id": node_id,
                "label": _node_caption(node, voltage, show_ratings),
                "kind": str(node.get("kind", "")),
                "name": str(node.get("name") or node_id),
            },
            "classes": " ".join(classes),
        }
        position = node.get("position")
        if isinstance(position, Mapping) and "x" in position and "y" in position:
            y = float(position["y"])
            if spread_from is not None and y > spread_from:
                y = spread_from + (y - spread_from) * LOADING_ROW_SPREAD
            element["position"] = {"x": float(position["x"]) * x_spread, "y": y * ROW_SPREAD}
        elements.append(element)
    for edge in edges:
        edge_id = str(edge["id"])
        loading = loadings_percent.get(edge_id)
        classes = ["edge", f"kind-{edge.get('kind', 'line')}"]
        if edge_id in path:
            classes.append("path-blocked" if transfer_blocked else "path")
        if edge_id in affected_edge_set:
            classes += ["affected", f"sev-{level}"]
        if loading is not None and loading > 100:
            classes.append("overloaded")
        if edge.get("normally_open"):
            classes.append("normally-open")
        elements.append(
            {
                "data": {
                    "id": edge_id, "source": str(edge["source"]), "target": str(edge["target"]),
                    "label": f"{loading:.0f}%" if loading is not None else "",
                },
                "classes": " ".join(classes),
            }
        )
    return elements


def microgrid_stylesheet() -> list[dict]:
    """Stylesheet: kinds by shape, normal in green, severity colours, transfer path in blue."""
    style: list[dict] = [
        {
            "selector": "node",
            "style": {
                "label": "data(label)", "text-wrap": "wrap", "text-max-width": 165, "font-size": 24,
                "text-valign": "bottom", "text-margin-y": 4, "line-height": 1.1, "background-color": SEVERITY_COLOURS["normal"], "width": 34, "height": 34,
                "border-width": 2, "border-color": "#ffffff", "color": "#212529",
                "text-background-color": "#ffffff", "text-background-opacity": 0.75,
                "text-background-padding": 2,
            },
        },
        {
            "selector": "edge",
            "style": {
                # the loading caption sits near the lower end of a line, clear of the captions of
                # the nodes at both ends (they are drawn below each node)
                "width": 3, "line-color": "#8fd19e", "curve-style": "bezier", "target-label": "data(label)",
                "target-text-offset": 30, "font-size": 20, "font-weight": "bold", "color": "#212529",
                "text-background-color": "#ffffff", "text-background-opacity": 0.9, "text-background-padding": 2,
                "text-background-shape": "round-rectangle",
            },
        },
    ]
    for kind, shape in KIND_SHAPES.items():
        style.append({"selector": f".kind-{kind}", "style": {"shape": shape}})
    style += [
        {"selector": ".kind-transformer, .kind-utility, .kind-bus",
         "style": {"background-color": "#495057", "width": 36, "height": 26}},
        {"selector": ".kind-bus", "style": {"width": 60, "height": 10}},
        {"selector": ".kind-feeder, .kind-capacitor", "style": {"background-color": "#6c757d", "width": 24,
                                                                "height": 24}},
        {"selector": ".kind-hub", "style": {"background-color": "#146c43", "width": 40, "height": 40}},
        {"selector": "edge.kind-line", "style": {"width": 4}},
        {"selector": "node.caption-wide", "style": {"text-max-width": 225}},
        {"selector": "edge.normally-open",
         "style": {"line-style": "dotted", "line-color": "#ced4da", "width": 2}},
        {"selector": ".sender", "style": {"border-color": "#0d6efd", "border-width": 5}},
        {"selector": ".receiver", "style": {"border-color": "#6f42c1", "border-width": 5}},
        {"selector": "edge.path",
         "style": {"line-color": "#0d6efd", "width": 6, "target-arrow-shape": "none", "line-style": "solid"}},
        {"selector": "edge.path-blocked",
         "style": {"line-color": "#0d6efd", "width": 5, "line-style": "dashed"}},
    ]
    # de-energised first, so a de-energised node that the event also hit keeps its severity colour
    style.append({"selector": "node.deenergised", "style": {"background-color": "#adb5bd", "opacity": 0.6}})
    for level, colour in SEVERITY_COLOURS.items():
        if level == "normal":
            continue
        style += [
            {"selector": f"node.sev-{level}", "style": {"background-color": colour}},
            {"selector": f"edge.sev-{level}", "style": {"line-color": colour, "width": 6}},
        ]
    style += [
        {"selector": "node.located",
         "style": {"border-color": "#212529", "border-width": 4, "width": 44, "height": 36, "opacity": 1}},
        {"selector": "node.voltage-violation", "style": {"border-color": "#dc3545", "border-width": 4}},
        {"selector": "edge.overloaded", "style": {"line-color": "#dc3545", "line-style": "dashed"}},
    ]
    return style


def microgrid_graph(component_id: str, elements: list[dict], *, height: str = "560px") -> cyto.Cytoscape:
    """The Cytoscape component with the preset layout (positions come from the grid data), fitted to its
    box; the caption beside it is the text alternative of the drawing."""
    has_positions = any("position" in element for element in elements if "source" not in element["data"])
    return cyto.Cytoscape(
        id=component_id,
        elements=elements,
        stylesheet=microgrid_stylesheet(),
        layout={"name": "preset", "fit": True, "padding": 25} if has_positions
        else {"name": "cose", "animate": False, "fit": True, "padding": 25},
        # on a phone the drawing is as wide as the screen: a box taller than ~1.25 widths is empty space
        style={"width": "100%", "height": f"min({height}, 125vw)"},
        # a fixed schematic that fits its card: no wheel zoom or drag-pan that would catch the page's
        # scrolling (mouse wheel on a desktop, a finger on a phone), no node dragging
        userZoomingEnabled=False,
        userPanningEnabled=False,
        boxSelectionEnabled=False,
        autoungrabify=True,
        responsive=True,
    )


def severity_legend() -> list[tuple[str, str]]:
    """(level, colour) pairs for a legend under the graph."""
    return list(SEVERITY_COLOURS.items())
