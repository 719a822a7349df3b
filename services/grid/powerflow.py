"""AC power flow of the microgrid with pandapower, memoised per process.

The pandapower network is built once per microgrid definition (building is the slow part) and
copied for every case; results are cached by (grid, opened edges, dead nodes, transfer) so that
repeated reports cost a dictionary lookup. The caches hold immutable results only.
"""

from __future__ import annotations

import copy
import math
import warnings
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import lru_cache
from types import MappingProxyType

from services.grid.microgrid import (
    MAX_TRANSFER_KW,
    RECEIVERS,
    SENDERS,
    Energisation,
    Microgrid,
    Node,
    Transfer,
    microgrid,
)

#: transfers are cached to this resolution (kW)
TRANSFER_RESOLUTION_KW = 0.1


class TransferError(ValueError):
    """A P2P transfer that the microgrid cannot represent (unknown peer, wrong role, absurd size)."""


@dataclass(frozen=True, eq=False)
class PowerFlowResult:
    """Outcome of one AC power flow. Mappings are read-only; powers in kW."""

    converged: bool
    bus_voltage_pu: Mapping[str, float]  # node id -> voltage (lv side for transformers); energised nodes only
    line_loading_percent: Mapping[str, float]  # line edge id -> loading
    transformer_loading_percent: Mapping[str, float]  # transformer node id -> loading
    losses_kw: float
    grid_import_kw: float  # from the utility (negative: export)
    grid_former_output_kw: Mapping[str, float]  # island grid-former -> its output
    energisation: Energisation
    transfer: Transfer | None

    @property
    def min_voltage_pu(self) -> float:
        return min(self.bus_voltage_pu.values(), default=math.nan)

    @property
    def max_voltage_pu(self) -> float:
        return max(self.bus_voltage_pu.values(), default=math.nan)

    @property
    def max_line_loading_percent(self) -> float:
        return max(self.line_loading_percent.values(), default=0.0)

    @property
    def most_loaded_line(self) -> str | None:
        if not self.line_loading_percent:
            return None
        return max(self.line_loading_percent, key=self.line_loading_percent.__getitem__)

    def summary(self) -> dict:
        """Headline figures, JSON-able."""
        return {
            "converged": self.converged,
            "min_voltage_pu": _round(self.min_voltage_pu, 4),
            "max_voltage_pu": _round(self.max_voltage_pu, 4),
            "max_line_loading_percent": _round(self.max_line_loading_percent, 2),
            "most_loaded_line": self.most_loaded_line,
            "max_transformer_loading_percent": _round(max(self.transformer_loading_percent.values(), default=0.0), 2),
            "losses_kw": _round(self.losses_kw, 3),
            "grid_import_kw": _round(self.grid_import_kw, 2),
            "grid_former_output_kw": {k: _round(v, 2) for k, v in self.grid_former_output_kw.items()},
        }

    def to_dict(self) -> dict:
        """Everything, JSON-able: summary plus per-node voltages and per-edge loadings."""
        return {
            **self.summary(),
            "bus_voltage_pu": {k: _round(v, 4) for k, v in self.bus_voltage_pu.items()},
            "line_loading_percent": {k: _round(v, 2) for k, v in self.line_loading_percent.items()},
            "transformer_loading_percent": {k: _round(v, 2) for k, v in self.transformer_loading_percent.items()},
            "deenergised": sorted(self.energisation.deenergised),
            "islanded": sorted(self.energisation.islanded),
        }


def _round(value: float, digits: int) -> float | None:
    return None if value is None or not math.isfinite(value) else round(float(value), digits)


def validate_transfer(transfer: Transfer, grid: Microgrid | None = None) -> Transfer:
    """Check roles and size of a transfer; TransferError with a clear message otherwise."""
    grid = grid or microgrid()
    sender, receiver = transfer.sender, transfer.receiver
    for role, peer, allowed in (("sender", sender, SENDERS), ("receiver", receiver, RECEIVERS)):
        if not isinstance(peer, str) or peer not in grid.node_by_id:
            raise TransferError(f"unknown {role} peer {peer!r}: expected one of {', '.join(allowed)}")
        if peer not in allowed:
            raise TransferError(f"{peer!r} cannot be a {role}: expected one of {', '.join(allowed)}")
    if sender == receiver:
        raise TransferError(f"sender and receiver are the same peer ({sender!r})")
    kw = transfer.kw
    if isinstance(kw, bool) or not isinstance(kw, int | float) or not math.isfinite(kw):
        raise TransferError(f"transfer power must be a finite number of kW, got {kw!r}")
    if kw <= 0:
        raise TransferError(f"transfer power must be positive, got {kw:g} kW")
    if kw > MAX_TRANSFER_KW:
        raise TransferError(f"transfer of {kw:g} kW exceeds the {MAX_TRANSFER_KW:g} kW cap of a P2P trade")
    sender_node, receiver_node = grid.node(sender), grid.node(receiver)
    sender_limit = sender_node.rated_generation_kw + sender_node.rated_storage_kw
    if kw > sender_limit:
        raise TransferError(f"transfer of {kw:g} kW exceeds the sender {sender}'s rating of {sender_limit:g} kW")
    receiver_limit = receiver_node.rated_load_kw + receiver_node.rated_storage_kw
    if kw > receiver_limit:
        raise TransferError(f"transfer of {kw:g} kW exceeds the receiver {receiver}'s rating of {receiver_limit:g} kW")
    return transfer


def run_power_flow(
    transfer: Transfer | None = None,
    *,
    opened: Iterable[str] = (),
    dead: Iterable[str] = (),
    grid: Microgrid | None = None,
) -> PowerFlowResult:
    """AC power flow at the operating point plus a transfer, after opening edges / killing nodes.

    `opened`: edge ids (breakers that opened); `dead`: node ids that are isolated or faulted.
    Parts cut off from the utility run as islands around their grid-forming unit, with
    proportional load shedding when their supply capacity is short.
    """
    grid = grid or microgrid()
    opened_set, dead_set = frozenset(opened), frozenset(dead)
    unknown = (opened_set - set(grid.edge_by_id)) | (dead_set - set(grid.node_by_id))
    if unknown:
        raise TransferError(f"unknown grid element(s): {', '.join(sorted(unknown))}")
    if transfer is None:
        return _solve(grid, opened_set, dead_set, None, None, 0)
    validate_transfer(transfer, grid)
    steps = max(1, round(transfer.kw / TRANSFER_RESOLUTION_KW))
    return _solve(grid, opened_set, dead_set, transfer.sender, transfer.receiver, steps)


def clear_caches(networks: bool = True) -> None:
    """Forget cached results (and the built networks unless `networks=False`), for cold benchmarks."""
    _solve.cache_clear()
    if networks:
        _base_network.cache_clear()


def _buses(node: Node) -> tuple[str, ...]:
    return (f"{node.id}#hv", f"{node.id}#lv") if node.transformer else (node.id,)


def _main_bus(node: Node) -> str:
    return f"{node.id}#lv" if node.transformer else node.id


def _terminal(grid: Microgrid, node_id: str, port: str | None, default: str) -> str:
    node = grid.node(node_id)
    if node.transformer:
        return f"{node_id}#{port or default}"
    return node_id


def _reactive_kvar(kw: float, power_factor: float) -> float:
    if power_factor >= 1 or kw == 0:
        return 0.0
    return kw * math.tan(math.acos(power_factor))


@lru_cache(maxsize=8)
def _base_network(grid: Microgrid):
    """The pandapower network of a microgrid at its operating point (never mutated: copied per case)."""
    import pandapower as pp

    net = pp.create_empty_network(name=grid.name, f_hz=60.0)
    bus_index: dict[str, int] = {}
    for node in grid.nodes:
        voltages = (node.transformer.hv_kv, node.transformer.lv_kv) if node.transformer else (node.voltage_kv,)
        for name, kv in zip(_buses(node), voltages, strict=True):
            bus_index[name] = pp.create_bus(net, vn_kv=kv, name=name, in_service=node.in_service)
    for node in grid.nodes:
        bus = bus_index[_main_bus(node)]
        if node.transformer:
            t = node.transformer
            pp.create_transformer_from_parameters(
                net, bus_index[f"{node.id}#hv"], bus_index[f"{node.id}#lv"], sn_mva=t.rated_kva / 1000,
                vn_hv_kv=t.hv_kv, vn_lv_kv=t.lv_kv, vk_percent=t.vk_percent, vkr_percent=t.vkr_percent,
                pfe_kw=t.pfe_kw, i0_percent=t.i0_percent, shift_degree=t.shift_degree, name=node.id,
                in_service=node.in_service,
            )
        if node.kind == "utility":
            pp.create_ext_grid(net, bus, vm_pu=1.0, s_sc_max_mva=node.short_circuit_mva or 100.0,
                               name=node.id, in_service=node.in_service)
        elif node.grid_forming:
            pp.create_ext_grid(net, bus, vm_pu=1.0, name=node.id, in_service=False)
        if node.load_kw:
            pp.create_load(net, bus, p_mw=node.load_kw / 1000,
                           q_mvar=_reactive_kvar(node.load_kw, node.power_factor) / 1000, name=node.id)
        if node.rated_generation_kw:
            pp.create_sgen(net, bus, p_mw=node.generation_kw / 1000, name=f"{node.id}#gen")
        if node.rated_storage_kw:
            pp.create_sgen(net, bus, p_mw=node.storage_kw / 1000, name=f"{node.id}#storage")
        if node.rated_kvar:
            pp.create_shunt(net, bus, q_mvar=-node.rated_kvar / 1000, name=node.id, in_service=node.in_service)
    for edge in grid.edges:
        source = bus_index[_terminal(grid, edge.source, edge.source_port, "lv")]
        target = bus_index[_terminal(grid, edge.target, edge.target_port, "hv")]
        if edge.kind == "line":
            pp.create_line_from_parameters(
                net, source, target, length_km=edge.length_km, r_ohm_per_km=edge.r_ohm_per_km,
                x_ohm_per_km=edge.x_ohm_per_km, c_nf_per_km=edge.c_nf_per_km, max_i_ka=edge.max_i_ka, name=edge.id,
            )
        else:
            pp.create_switch(net, source, target, et="b", closed=not edge.normally_open, name=edge.id)
    return net, MappingProxyType(bus_index)


def _working_copy(base):
    """A copy of the cached base network that runpp and our edits may change freely.

    Deep-copies the tables that hold elements or results (runpp writes new results; we edit
    switches, buses, loads, generators); empty element tables and type libraries, which neither
    touches, are shared with the base. Three to four times faster than copy.deepcopy.
    """
    import pandas as pd

    net = copy.copy(base)
    for key, value in base.items():
        if isinstance(value, pd.DataFrame) and (len(value) or key.startswith("res_")):
            dict.__setitem__(net, key, value.copy(deep=True))
    return net


def _island_dispatch(grid: Microgrid, energisation: Energisation) -> tuple[dict[str, float], dict[str, float]]:
    """Load scaling per node and generation/storage set-points per unit for energised islands.

    Weather-bound generation stays as it is; other dispatchable units and storage take the share the
    grid-forming unit cannot carry; the grid-forming unit is the island's slack.
    """
    load_scale: dict[str, float] = {}
    setpoints: dict[str, float] = {}
    for island in energisation.islands:
        if not island.energised:
            continue
        fraction = island.served_fraction
        members = [grid.node(n) for n in sorted(island.nodes)]
        for node in members:
            load_scale[node.id] = fraction
        former = grid.node(island.grid_former)
        residual = island.load_kw * fraction - sum(
            n.generation_kw + n.storage_kw for n in members if n.id != former.id
        )
        excess = residual - former.supply_capacity_kw
        for node in members:
            if excess <= 0:
                break
            if node.id == former.id:
                continue
            headroom = (node.rated_generation_kw - node.generation_kw if node.dispatchable else 0.0) + (
                node.rated_storage_kw - node.storage_kw if node.stored_energy_kwh > 0 else 0.0
            )
            extra = min(max(headroom, 0.0), excess)
            if extra > 0:
                setpoints[node.id] = extra
                excess -= extra
    return load_scale, setpoints


@lru_cache(maxsize=4096)
def _solve(
    grid: Microgrid,
    opened: frozenset[str],
    dead: frozenset[str],
    sender: str | None,
    receiver: str | None,
    transfer_steps: int,
) -> PowerFlowResult:
    import pandapower as pp

    base, bus_index = _base_network(grid)
    net = _working_copy(base)
    energisation = grid.energisation(opened, dead)
    transfer_kw = transfer_steps * TRANSFER_RESOLUTION_KW
    transfer = Transfer(sender, receiver, round(transfer_kw, 3)) if sender and receiver else None

    switch_by_name = {name: i for i, name in net.switch["name"].items()}
    line_by_name = {name: i for i, name in net.line["name"].items()}
    for edge_id in energisation.opened_edges:
        if edge_id in switch_by_name:
            net.switch.at[switch_by_name[edge_id], "closed"] = False
        elif edge_id in line_by_name:
            net.line.at[line_by_name[edge_id], "in_service"] = False
    dead_buses = [bus_index[b] for n in energisation.deenergised for b in _buses(grid.node(n))]
    net.bus.loc[dead_buses, "in_service"] = False

    load_scale, setpoints = _island_dispatch(grid, energisation)
    for index, name in net.load["name"].items():
        if name in load_scale:
            net.load.at[index, "scaling"] = load_scale[name]
    for index, name in net.sgen["name"].items():
        node_id = name.split("#")[0]
        if node_id in setpoints and name.endswith("#gen" if grid.node(node_id).dispatchable else "#storage"):
            net.sgen.at[index, "p_mw"] += setpoints[node_id] / 1000
    formers = {island.grid_former for island in energisation.islands if island.energised}
    for index, name in net.ext_grid["name"].items():
        if name in formers:
            net.ext_grid.at[index, "in_service"] = True

    if transfer is not None and transfer_kw > 0:
        if sender not in energisation.deenergised:
            pp.create_sgen(net, bus_index[_main_bus(grid.node(sender))], p_mw=transfer_kw / 1000, name="transfer")
        if receiver not in energisation.deenergised:
            pp.create_load(net, bus_index[_main_bus(grid.node(receiver))], p_mw=transfer_kw / 1000, name="transfer")

    converged = True
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            pp.runpp(net, numba=False, calculate_voltage_angles=True, init="dc")
        except Exception:  # pandapower raises LoadflowNotConverged and, on odd inputs, numeric errors
            converged = False
    return _collect(grid, net, bus_index, energisation, transfer, formers, converged)


def _collect(grid, net, bus_index, energisation, transfer, formers, converged) -> PowerFlowResult:
    voltages: dict[str, float] = {}
    line_loading: dict[str, float] = {}
    trafo_loading: dict[str, float] = {}
    former_output: dict[str, float] = {}
    losses = grid_import = math.nan
    if converged:
        vm = net.res_bus["vm_pu"]
        for node in grid.nodes:
            value = float(vm.at[bus_index[_main_bus(node)]])
            if node.id not in energisation.deenergised and math.isfinite(value):
                voltages[node.id] = value
        for index, name in net.line["name"].items():
            value = float(net.res_line.at[index, "loading_percent"])
            line_loading[name] = value if math.isfinite(value) else 0.0
        for index, name in net.trafo["name"].items():
            value = float(net.res_trafo.at[index, "loading_percent"])
            trafo_loading[name] = value if math.isfinite(value) else 0.0
        losses = float(net.res_line["pl_mw"].fillna(0).sum() + net.res_trafo["pl_mw"].fillna(0).sum()) * 1000
        grid_import = 0.0
        for index, name in net.ext_grid["name"].items():
            power = float(net.res_ext_grid.at[index, "p_mw"]) * 1000
            if name in formers:
                former_output[name] = power
            elif math.isfinite(power):
                grid_import += power
    return PowerFlowResult(
        converged=converged,
        bus_voltage_pu=MappingProxyType(voltages),
        line_loading_percent=MappingProxyType(line_loading),
        transformer_loading_percent=MappingProxyType(trafo_loading),
        losses_kw=losses,
        grid_import_kw=grid_import,
        grid_former_output_kw=MappingProxyType(former_output),
        energisation=energisation,
        transfer=transfer,
    )
