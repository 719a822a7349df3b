"""Network page callbacks: the AC power flow with the chosen P2P transfer, drawn on the graph.

`network_update` is the pure function behind the callback (transfer in, components out).
"""

from __future__ import annotations

import logging
import math
from typing import Any

import dash
import dash_bootstrap_components as dbc
from dash import Input, Output, html, no_update

from components import ids
from components.cards import stat_tile
from components.figures import bar_figure
from components.microgrid import microgrid_elements
from components.tables import simple_table
from services.grid import (
    MAX_TRANSFER_KW,
    PEERS,
    RECEIVERS,
    SENDERS,
    Microgrid,
    Transfer,
    TransferError,
    default_graph,
    display_names,
    microgrid,
    run_power_flow,
    transfer_path_edges,
)

log = logging.getLogger(__name__)

#: what `network_update` returns, key by key, and where on the page each goes
OUTPUTS: dict[str, tuple[str, str]] = {
    "graph": (ids.NETWORK_GRAPH, "elements"), "summary": (ids.NETWORK_SUMMARY, "children"),
    "buses": (ids.NETWORK_BUSES, "figure"), "lines": (ids.NETWORK_LINES, "figure"),
    "peers": (ids.NETWORK_PEERS, "children"), "alert": (ids.NETWORK_ALERT, "children"),
}
VOLTAGE_BAND = (0.95, 1.05)


def _fmt(value: Any, pattern: str, fallback: str = "n/a") -> str:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return fallback
    return fallback if not math.isfinite(number) else format(number, pattern)


def peers_table(transfer: Transfer | None, grid: Microgrid) -> Any:
    """Peers with their role, technology, ratings, operating point and part in the transfer."""
    rows, classes = [], []
    for peer in PEERS:
        node = grid.node(peer)
        roles = [role for role, members in (("sender", SENDERS), ("receiver", RECEIVERS)) if peer in members]
        in_transfer = ""
        if transfer and peer == transfer.sender:
            in_transfer = f"sends {transfer.kw:g} kW"
        elif transfer and peer == transfer.receiver:
            in_transfer = f"receives {transfer.kw:g} kW"
        ratings = []
        if node.rated_generation_kw:
            ratings.append(f"gen {node.rated_generation_kw:g} kW")
        if node.rated_storage_kw:
            ratings.append(f"storage {node.rated_storage_kw:g} kW / {node.storage_kwh:g} kWh")
        if node.rated_load_kw:
            ratings.append(f"load {node.rated_load_kw:g} kW")
        now = f"gen {node.generation_kw:g} / load {node.load_kw:g} kW"
        if node.storage_kwh:
            now += f", SoC {node.state_of_charge:.0%}"
        rows.append([node.name, " / ".join(roles) or "-", node.technology, ", ".join(ratings), now,
                     html.Strong(in_transfer) if in_transfer else ""])
        classes.append("table-primary" if in_transfer else "")
    return simple_table(["Peer", "Role", "Technology", "Ratings", "Operating point", "Transfer"], rows,
                        row_classes=classes)


def _transfer_kw(value: Any) -> float:
    """The transfer field as kW: a number (or its text); anything else is the operator's typo."""
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise TransferError(f"enter the transfer power: a number of kW above 0, at most {MAX_TRANSFER_KW:g}")
    try:
        return float(value)
    except ValueError:
        raise TransferError(f"transfer power must be a number of kW, got {str(value)[:20]!r}") from None


def network_update(sender: str | None, receiver: str | None, kw: float | None,
                   grid: Microgrid | None = None) -> dict[str, Any]:
    """Outputs of the Network page for one transfer on `grid` (the app's microgrid with its tariffs;
    default: built-in); a bad transfer gives only an alert."""
    grid = grid or microgrid()
    try:
        if not sender or not receiver:
            raise TransferError("choose a sender and a receiver")
        if kw is None or kw == "":
            raise TransferError(f"enter the transfer power: a number of kW above 0, at most {MAX_TRANSFER_KW:g}")
        transfer = Transfer(str(sender), str(receiver), _transfer_kw(kw))
        result = run_power_flow(transfer, grid=grid)
    except (TransferError, ValueError) as exc:
        return {"alert": dbc.Alert(str(exc), color="warning", className="py-2 small")}
    except Exception:
        log.exception("power flow failed")
        return {"alert": dbc.Alert("The power flow failed; the error has been logged.", color="danger",
                                   className="py-2 small")}
    graph = default_graph()
    names = edge_names = display_names()
    elements = microgrid_elements(
        graph["nodes"], graph["edges"], sender=transfer.sender, receiver=transfer.receiver,
        path_edges=transfer_path_edges(transfer.sender, transfer.receiver),
        voltages_pu=dict(result.bus_voltage_pu), loadings_percent=dict(result.line_loading_percent),
        deenergised=sorted(result.energisation.deenergised), show_ratings=True,
    )
    tariffs = grid.tariffs
    summary = result.summary()
    tiles = dbc.Row(
        [
            dbc.Col(stat_tile("Power flow", "converged" if result.converged else "did not converge",
                              hint=f"losses {_fmt(result.losses_kw, '.2f')} kW"), md=3),
            dbc.Col(stat_tile("Bus voltages", f"{_fmt(summary['min_voltage_pu'], '.3f')} - "
                                              f"{_fmt(summary['max_voltage_pu'], '.3f')} pu",
                              hint="limits 0.95 - 1.05 pu"), md=3),
            dbc.Col(stat_tile("Most loaded line", f"{_fmt(summary['max_line_loading_percent'], '.1f')} %",
                              hint=edge_names.get(summary.get("most_loaded_line") or "", "")), md=3),
            dbc.Col(stat_tile("P2P price", f"{tariffs.p2p_price_per_kwh:.3f} {tariffs.currency}/kWh",
                              hint=f"feed-in {tariffs.feed_in_per_kwh:.3f}, retail {tariffs.retail_per_kwh:.3f}; "
                                   f"this trade {tariffs.value(transfer.kw):.2f} {tariffs.currency}/h",
                              component_id=ids.NETWORK_PRICE), md=3),
        ],
        className="g-3",
    )
    voltages = sorted(result.bus_voltage_pu.items(), key=lambda item: item[0])
    loadings = sorted(result.line_loading_percent.items(), key=lambda item: item[0])
    return {
        "graph": elements,
        "summary": tiles,
        "buses": bar_figure([names.get(k, k) for k, _ in voltages], [v for _, v in voltages],
                            title="Bus voltages", unit="pu", warn_above=VOLTAGE_BAND[1], warn_below=VOLTAGE_BAND[0],
                            y_range=(min(0.9, min((v for _, v in voltages), default=1.0) - 0.02),
                                     max(1.1, max((v for _, v in voltages), default=1.0) + 0.02)),
                            height=300),
        "lines": bar_figure([edge_names.get(k, k).replace("Feeder ", "F").replace(" cable, section ", "/")
                             for k, _ in loadings], [v for _, v in loadings],
                            title="Line loadings", unit="%", limit=100.0, warn_above=100.0, height=300),
        "peers": peers_table(transfer, grid),
        "alert": None,
    }


def register(app: dash.Dash, grid: Microgrid) -> None:
    """The Network page's callback on `app`, on `grid` (the app's microgrid with its tariffs)."""

    @app.callback(
        output={key: Output(*target) for key, target in OUTPUTS.items()},
        inputs={"sender": Input(ids.NETWORK_SENDER, "value"), "receiver": Input(ids.NETWORK_RECEIVER, "value"),
                "kw": Input(ids.NETWORK_KW, "value")},
        prevent_initial_call=True,
    )
    def on_transfer(sender, receiver, kw):
        """Re-run the power flow when the transfer changes."""
        outputs = network_update(sender, receiver, kw, grid)
        return {key: outputs.get(key, no_update) for key in OUTPUTS}
