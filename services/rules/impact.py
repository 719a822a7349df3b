"""Impact of a classified grid event on the P2P microgrid.

`assess_impact` reads an inference result, decides which readings of the event to act on (the
label's own when the model is sure where the event is; every material candidate when it is not),
applies the protection's action to the microgrid, evaluates what stays energised, whether islands
balance, what happens to the selected transfer, and runs the power flow before and after.
The grid evaluation is memoised per process (it depends only on discrete inputs), so a report for a
case seen before costs well under a millisecond.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from types import MappingProxyType

from services.grid import (
    DEFAULT_TRANSFER_KW,
    FEEDERS,
    Microgrid,
    Transfer,
    TransferError,
    microgrid,
    run_power_flow,
    validate_transfer,
)
from services.grid import clear_caches as clear_grid_caches
from services.inference.levels import named_fault_kind
from services.labels import (
    CATEGORIES,
    EQUIPMENT_CERTAIN,
    EQUIPMENT_NAMES,
    EQUIPMENTS,
    KINDS,
    LABELS,
    label_parts,
    pretty_label,
    resolve_label,
)
from services.rules.events import (
    NO_EVENT_RULE,
    EventRule,
    internal_fault_rule,
    transient_rule,
    worst_severity,
)

#: below this equipment marginal the model is not sure where an internal fault is (the level at
#: which the prediction itself reports the unit as uncertain)
LOCATION_CONFIDENCE_THRESHOLD = EQUIPMENT_CERTAIN
#: below this probability of its kind a transient is acted on in the cautious reading
TRANSIENT_CONFIDENCE_THRESHOLD = 0.6
#: a reading with at least this probability is acted upon in the cautious reading
MATERIAL_PROBABILITY = 0.2
FAULT_UNITS: tuple[str, ...] = ("power_transformer", "ispar_series", "ispar_exciting")


class ImpactInputError(ValueError):
    """Bad input to the impact rules: unknown peer or label, wrong role, absurd transfer, bad numbers."""


@dataclass(frozen=True)
class EventReading:
    """A validated prediction: label, calibrated confidence, marginals, unknown flag."""

    label: str
    confidence: float
    category: tuple[tuple[str, float], ...]
    equipment: tuple[tuple[str, float], ...]
    kind: tuple[tuple[str, float], ...]
    unknown: bool
    unknown_reason: str | None
    marginals_derived: bool
    event_detected: bool = True
    kind_derived: bool = False  # no kind marginals given: the label's own kind stands

    def prob(self, part: str, key: str) -> float:
        return dict(getattr(self, part)).get(key, 0.0)


@dataclass(frozen=True)
class ImpactReport:
    """Everything an operator needs about one event and one transfer. JSON via `to_dict()`."""

    event_type: str
    label: str
    confidence: float
    severity: str
    is_fault_condition: bool
    summary: str
    p2p_disruption_message: str
    highlight_keys: tuple[str, ...]
    reading: Mapping
    located_equipment: tuple[Mapping, ...]
    protection_action: Mapping
    deenergised_nodes: tuple[str, ...]
    islanded_nodes: tuple[str, ...]
    affected_edges: tuple[str, ...]
    islands: tuple[Mapping, ...]
    transfer: Mapping
    restoration: Mapping
    energy: Mapping
    actions: tuple[str, ...]
    power_flow_before: Mapping
    power_flow_after: Mapping

    @property
    def transfer_status(self) -> str:
        return self.transfer["status"]

    def p2p_impact_details(self) -> dict:
        """Exactly the four fields of the original application's API."""
        return {
            "event_type": self.event_type,
            "highlight_keys": list(self.highlight_keys),
            "is_fault_condition": self.is_fault_condition,
            "p2p_disruption_message": self.p2p_disruption_message,
        }

    def to_dict(self) -> dict:
        return {
            "event_type": self.event_type,
            "label": self.label,
            "pretty_label": pretty_label(self.label),
            "confidence": round(self.confidence, 4),
            "severity": self.severity,
            "is_fault_condition": self.is_fault_condition,
            "summary": self.summary,
            "p2p_disruption_message": self.p2p_disruption_message,
            "highlight_keys": list(self.highlight_keys),
            "reading": _plain(self.reading),
            "located_equipment": [_plain(item) for item in self.located_equipment],
            "protection_action": _plain(self.protection_action),
            "deenergised_nodes": list(self.deenergised_nodes),
            "islanded_nodes": list(self.islanded_nodes),
            "affected_edges": list(self.affected_edges),
            "islands": [_plain(island) for island in self.islands],
            "transfer": _plain(self.transfer),
            "transfer_status": self.transfer_status,
            "restoration": _plain(self.restoration),
            "energy": _plain(self.energy),
            "actions": list(self.actions),
            "power_flow": {"before": _plain(self.power_flow_before), "after": _plain(self.power_flow_after)},
            "p2p_impact_details": self.p2p_impact_details(),
        }


def _plain(value):
    kind = type(value)
    if kind is str or kind is int or kind is bool or value is None:  # most values: no ABC checks
        return value
    if kind is float:
        return value if math.isfinite(value) else None
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple | frozenset | set):
        items = sorted(value) if isinstance(value, frozenset | set) else value
        return [_plain(v) for v in items]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


# --- reading the prediction ------------------------------------------------------------------------
def _probability(value: object, what: str) -> float:
    if isinstance(value, bool):
        raise ImpactInputError(f"{what} must be a number between 0 and 1, got {value!r}")
    if isinstance(value, str):
        text = value.strip()
        try:
            number = float(text[:-1]) / 100 if text.endswith("%") else float(text)
        except ValueError:
            raise ImpactInputError(f"{what} must be a number between 0 and 1, got {value!r}") from None
    elif isinstance(value, int | float):
        number = float(value)
    else:
        raise ImpactInputError(f"{what} must be a number between 0 and 1, got {value!r}")
    if not math.isfinite(number) or not -1e-6 <= number <= 1 + 1e-6:
        raise ImpactInputError(f"{what} must be between 0 and 1, got {value!r}")
    return min(1.0, max(0.0, number))


def _marginal(prediction: Mapping, part: str, allowed: tuple[str, ...], derived: dict[str, float]):
    raw = prediction.get(part)
    if raw is None or (isinstance(raw, Mapping) and not raw):
        return tuple(sorted(derived.items())), True
    if not isinstance(raw, Mapping):
        raise ImpactInputError(f"prediction {part!r} must be a mapping of {part} -> probability")
    values = {}
    for key, value in raw.items():
        if key not in allowed:
            raise ImpactInputError(f"unknown {part} {key!r} in the prediction: expected one of {', '.join(allowed)}")
        values[key] = _probability(value, f"{part} probability of {key!r}")
    return tuple(sorted(values.items())), False


def read_prediction(prediction: Mapping) -> EventReading:
    """Validate a prediction mapping; derive missing marginals from the label and its confidence."""
    if not isinstance(prediction, Mapping):
        raise ImpactInputError("prediction must be a mapping with at least 'label' and 'confidence'")
    if "label" not in prediction:
        raise ImpactInputError("prediction has no 'label'")
    try:
        label = LABELS[resolve_label(prediction["label"])]
    except (ValueError, TypeError) as error:
        raise ImpactInputError(str(error)) from None
    if "confidence" not in prediction:
        raise ImpactInputError("prediction has no 'confidence'")
    confidence = _probability(prediction["confidence"], "confidence")
    parts = label_parts(label)
    rest = 1.0 - confidence
    derived_category = {c: (confidence if c == parts.category else rest) for c in CATEGORIES}
    others = [e for e in EQUIPMENTS if e != parts.equipment]
    derived_equipment = {parts.equipment: confidence, **{e: rest / len(others) for e in others}}
    category, c_derived = _marginal(prediction, "category", CATEGORIES, derived_category)
    equipment, e_derived = _marginal(prediction, "equipment", EQUIPMENTS, derived_equipment)
    kind, k_derived = _marginal(prediction, "kind", KINDS, {parts.kind: confidence})
    unknown = prediction.get("unknown", False)
    if not isinstance(unknown, bool | int) or unknown not in (0, 1, True, False):
        raise ImpactInputError(f"prediction 'unknown' must be true or false, got {unknown!r}")
    reason = prediction.get("unknown_reason")
    event_detected = prediction.get("event_detected", True)
    if not isinstance(event_detected, bool):
        raise ImpactInputError(f"prediction 'event_detected' must be true or false, got {event_detected!r}")
    return EventReading(
        label=label, confidence=confidence, category=category, equipment=equipment, kind=kind,
        unknown=bool(unknown), unknown_reason=str(reason) if reason else None,
        marginals_derived=c_derived or e_derived or k_derived, event_detected=event_detected, kind_derived=k_derived,
    )


# --- deciding what to act on -----------------------------------------------------------------------
@dataclass(frozen=True)
class _Decision:
    mode: str  # "certain", "uncertain_location", "unknown", "no_event"
    location_certain: bool
    rules: tuple[EventRule, ...]
    probabilities: tuple[float, ...]  # of each rule's reading
    caution: str | None


def _decide(reading: EventReading) -> _Decision:
    if not reading.event_detected:
        return _Decision("no_event", True, (NO_EVENT_RULE,), (1.0,), None)
    parts = label_parts(reading.label)
    p_internal = reading.prob("category", "internal_fault")
    label_location_p = reading.prob("equipment", parts.equipment)
    threshold = LOCATION_CONFIDENCE_THRESHOLD
    if parts.category == "transient":
        label_location_p = min(label_location_p, reading.prob("kind", parts.kind))
        threshold = TRANSIENT_CONFIDENCE_THRESHOLD
    certain = not reading.unknown and label_location_p >= threshold
    fault_kind = _named_fault_kind(reading)
    if certain:
        rule = (internal_fault_rule(parts.equipment, fault_kind) if parts.category == "internal_fault"
                else transient_rule(parts.kind))
        caution = None
        if parts.category == "transient" and p_internal >= MATERIAL_PROBABILITY:
            caution = (f"The model still gives {p_internal:.0%} to an internal fault: check the relay record before "
                       f"re-energising anything that tripped.")
        return _Decision("certain", True, (rule,), (label_location_p,), caution)

    rules: list[EventRule] = []
    probabilities: list[float] = []
    if parts.category == "internal_fault" or p_internal >= MATERIAL_PROBABILITY:
        units = [u for u in FAULT_UNITS if reading.prob("equipment", u) >= MATERIAL_PROBABILITY]
        if parts.category == "internal_fault" and parts.equipment not in units:
            units.insert(0, parts.equipment)
        if not units:
            units = list(FAULT_UNITS)
        units.sort(key=lambda u: -reading.prob("equipment", u))
        kind = fault_kind if parts.category == "internal_fault" else None
        for unit in units:
            rules.append(internal_fault_rule(unit, kind))
            probabilities.append(reading.prob("equipment", unit))
    transient_kinds = [k for k, p in reading.kind if p >= MATERIAL_PROBABILITY and _is_transient_kind(k)]
    if parts.category == "transient" and parts.kind not in transient_kinds:
        transient_kinds.insert(0, parts.kind)
    for kind in sorted(transient_kinds, key=lambda k: -reading.prob("kind", k)):
        rules.append(transient_rule(kind))
        probabilities.append(reading.prob("kind", kind))

    where = ", ".join(f"{EQUIPMENT_NAMES[e]} {p:.0%}" for e, p in sorted(reading.equipment, key=lambda x: -x[1])
                      if p >= 0.05)
    if reading.unknown:
        mode = "unknown"
        caution = (f"The model does not recognise this recording ({reading.unknown_reason or 'flagged unknown'}); "
                   f"its closest class is {pretty_label(reading.label)}. Acting on the cautious reading; confirm "
                   f"with the relay records.")
    else:
        mode = "uncertain_location"
        caution = (f"The model is not sure where the event is ({where}); acting on every reading with at least "
                   f"{MATERIAL_PROBABILITY:.0%} probability. Confirm with the relay records.")
    if any(r.is_fault_condition for r in rules) and p_internal >= MATERIAL_PROBABILITY:
        caution += f" Internal-fault probability {p_internal:.0%}: treated as a fault until ruled out."
    return _Decision(mode, False, tuple(rules), tuple(probabilities), caution)


def _named_fault_kind(reading: EventReading) -> str | None:
    """The fault kind the report names: the label's own where the caller gave no kind marginals,
    else the levels' reading (services.inference.levels.named_fault_kind), None where the phases
    are uncertain, so no check is pointed at phases the model is not sure of."""
    parts = label_parts(reading.label)
    if parts.category != "internal_fault" or reading.kind_derived:
        return parts.kind if parts.category == "internal_fault" else None
    return named_fault_kind(dict(reading.kind))


_TRANSIENT_KINDS = frozenset(label_parts(label).kind for label in LABELS if label_parts(label).category == "transient")


def _is_transient_kind(kind: str) -> bool:
    return kind in _TRANSIENT_KINDS


# --- the grid consequences (memoised: discrete inputs only) ----------------------------------------
@dataclass(frozen=True)
class _Consequences:
    located: tuple[str, ...]
    breakers: tuple[str, ...]
    isolated: tuple[str, ...]
    candidate_feeders: tuple[str, ...]
    deenergised: tuple[str, ...]
    islanded: tuple[str, ...]
    opened_edges: tuple[str, ...]
    islands: tuple[Mapping, ...]
    path_nodes: tuple[str, ...]
    path_edges: tuple[str, ...]
    blocked_at: tuple[str, ...]
    status: str
    delivered_kw: float
    load_not_served_kw: float
    before: Mapping  # power-flow summaries (read-only)
    after: Mapping


def _feeder_of(grid: Microgrid, node_id: str) -> str | None:
    return next((f for f in FEEDERS if f in grid.node_by_id and node_id in grid.downstream(f)), None)


#: the boxes of the original application's diagram (its front end colours only these ids)
ORIGINAL_DIAGRAM_IDS: tuple[str, ...] = (
    "prosumer-a", "prosumer-b", "community-battery", "micro-industry", "consumer-home", "ev-hub",
    "local-business", "consumer-load", "microgrid-hub",
)
_UPSTREAM_KINDS = frozenset({"utility", "transformer", "bus", "capacitor"})


def original_diagram_keys(grid: Microgrid, node_ids: tuple[str, ...]) -> tuple[str, ...]:
    """The original diagram's ids that stand for `node_ids`, so its front end lights the right boxes.

    Its diagram has the peers and the microgrid hub only: equipment upstream of the hub
    (utility, ISPAR units, transformers, bus, capacitor bank) is drawn as the hub; a feeder, or a
    load on a feeder that the diagram lacks (the non-linear load), as the diagram's peers on it.
    """
    keys: list[str] = []
    for node_id in node_ids:
        if node_id in ORIGINAL_DIAGRAM_IDS:
            keys.append(node_id)
        elif node_id in grid.node_by_id and grid.node(node_id).kind in _UPSTREAM_KINDS:
            keys.append("microgrid-hub")
        else:
            feeder = node_id if node_id in FEEDERS else _feeder_of(grid, node_id)
            if feeder is not None:
                keys += [n for n in grid.downstream(feeder) if n in ORIGINAL_DIAGRAM_IDS]
    return _unique(keys)


@lru_cache(maxsize=4096)
def _consequences(grid: Microgrid, rules: tuple[EventRule, ...], sender: str, receiver: str, kw: float,
                  restoration_h: float) -> _Consequences:
    path_nodes, path_edges = grid.path(sender, receiver)
    located: list[str] = []
    breakers: list[str] = []
    isolated: list[str] = []
    dead: set[str] = set()
    candidate_feeders: list[str] = []
    for rule in rules:
        located += rule.located
        breakers += rule.breakers
        isolated += rule.isolated
        dead |= set(rule.isolated)
        if rule.feeder_fault:
            feeders = [f for f in FEEDERS if f in path_nodes or any(_feeder_of(grid, n) == f for n in path_nodes)]
            for feeder in feeders or list(FEEDERS):
                candidate_feeders.append(feeder)
                located.append(feeder)
                breakers += [e for e in grid.incident_edges(feeder, "breaker-switch")
                             if grid.edge_by_id[e].target == feeder]
                dead |= grid.downstream(feeder)  # anti-islanding: DER on a faulted feeder stop
    located, breakers, isolated = _unique(located), _unique(breakers), _unique(isolated)
    energisation = grid.energisation(breakers, dead)

    blocked = tuple(n for n in path_nodes if n in energisation.deenergised) + tuple(
        e for e in path_edges if e in energisation.opened_edges and e in breakers)
    island = energisation.island_of(sender)
    if blocked or any(e in energisation.opened_edges for e in path_edges):
        status, delivered = "disrupted", 0.0
    elif island is not None and island.served_fraction < 1.0:
        status, delivered = "curtailed", round(kw * island.served_fraction, 1)
    else:
        status, delivered = "continues", kw
    if status == "curtailed" and delivered <= 0:
        status = "disrupted"

    load_not_served = 0.0 + sum(grid.node(n).load_kw for n in energisation.deenergised)
    islands = []
    for isl in energisation.islands:
        load_not_served += isl.load_kw * (1 - isl.served_fraction) if isl.energised else 0.0
        islands.append(MappingProxyType(_island_summary(grid, isl, restoration_h)))

    before = run_power_flow(Transfer(sender, receiver, kw), grid=grid)
    if not breakers and not dead:
        after = before
    else:
        after_transfer = Transfer(sender, receiver, delivered) if delivered > 0 else None
        after = run_power_flow(after_transfer, opened=breakers, dead=dead, grid=grid)
    return _Consequences(
        located=located, breakers=breakers, isolated=isolated, candidate_feeders=_unique(candidate_feeders),
        deenergised=tuple(sorted(energisation.deenergised)), islanded=tuple(sorted(energisation.islanded)),
        opened_edges=tuple(sorted(energisation.opened_edges)), islands=tuple(islands),
        path_nodes=path_nodes, path_edges=path_edges, blocked_at=blocked, status=status,
        delivered_kw=delivered, load_not_served_kw=round(load_not_served, 2),
        before=_frozen_summary(before), after=_frozen_summary(after),
    )


def _frozen_summary(result) -> Mapping:
    summary = result.summary()
    summary["grid_former_output_kw"] = MappingProxyType(summary["grid_former_output_kw"])
    return MappingProxyType(summary)


def _island_summary(grid: Microgrid, island, restoration_h: float) -> dict:
    members = [grid.node(n) for n in sorted(island.nodes)]
    generation = sum(n.rated_generation_kw if n.dispatchable else n.generation_kw for n in members)
    from_storage = max(0.0, island.load_kw - generation)
    endurance = island.stored_energy_kwh / from_storage if from_storage > 0 else math.inf
    if not island.energised:
        verdict = "cannot stand: no grid-forming unit, de-energised"
    elif island.balanced:
        verdict = "balanced"
    else:
        verdict = f"deficit: shed {island.load_kw - island.supply_capacity_kw:.1f} kW of load"
    return {
        "nodes": tuple(sorted(island.nodes)),
        "grid_former": island.grid_former,
        "energised": island.energised,
        "load_kw": round(island.load_kw, 2),
        "supply_capacity_kw": round(island.supply_capacity_kw, 2),
        "margin_kw": round(island.supply_capacity_kw - island.load_kw, 2),
        "balanced": island.balanced,
        "served_fraction": round(island.served_fraction, 4),
        "stored_energy_kwh": round(island.stored_energy_kwh, 2),
        "storage_endurance_h": None if math.isinf(endurance) else round(endurance, 2),
        "lasts_through_restoration": island.energised and (math.isinf(endurance) or endurance >= restoration_h),
        "verdict": verdict,
    }


def _unique(items) -> tuple:
    return tuple(dict.fromkeys(items))


# --- the public entry point ------------------------------------------------------------------------
def assess_impact(
    prediction: Mapping,
    sender: str,
    receiver: str,
    transfer_kw: float = DEFAULT_TRANSFER_KW,
    *,
    grid: Microgrid | None = None,
) -> ImpactReport:
    """Impact report of a predicted event on the microgrid and on the transfer sender -> receiver."""
    grid = grid or microgrid()
    reading = read_prediction(prediction)
    if isinstance(transfer_kw, str):
        try:
            transfer_kw = float(transfer_kw)
        except ValueError:
            raise ImpactInputError(f"transfer power must be a number of kW, got {transfer_kw!r}") from None
    try:
        validate_transfer(Transfer(sender, receiver, transfer_kw), grid)
    except TransferError as error:
        raise ImpactInputError(str(error)) from None
    kw = round(float(transfer_kw), 1)
    if kw <= 0:
        raise ImpactInputError(f"transfer power must be at least 0.1 kW, got {transfer_kw!r}")
    decision = _decide(reading)
    restoration_h = max(rule.restoration_h for rule in decision.rules)
    consequences = _consequences(grid, decision.rules, sender, receiver, kw, restoration_h)
    return _build_report(grid, reading, decision, consequences, sender, receiver, kw, restoration_h)


def precompute(grid: Microgrid | None = None, transfer_kw: float = DEFAULT_TRANSFER_KW) -> int:
    """Fill this process's caches for every label and sender/receiver pair (call after fork to warm a
    worker: the first reports then cost well under a millisecond). Returns the number of reports."""
    from services.grid import RECEIVERS, SENDERS

    count = 0
    for label in LABELS:
        for sender in SENDERS:
            for receiver in RECEIVERS:
                if sender != receiver:
                    assess_impact({"label": label, "confidence": 1.0}, sender, receiver, transfer_kw, grid=grid)
                    count += 1
    return count


def clear_caches(networks: bool = True) -> None:
    """Forget memoised grid consequences and power flows (for benchmarks measuring cold times)."""
    _consequences.cache_clear()
    clear_grid_caches(networks)


def _build_report(grid: Microgrid, reading: EventReading, decision: _Decision, c: _Consequences,
                  sender: str, receiver: str, kw: float, restoration_h: float) -> ImpactReport:
    rules = decision.rules
    primary = rules[0]
    is_fault = any(r.is_fault_condition for r in rules)
    severity = worst_severity(r.severity for r in rules)
    if not decision.location_certain:
        severity = worst_severity((severity, "minor"))  # an event the model cannot place is never just info
    tariffs = grid.tariffs
    price = tariffs.p2p_price_per_kwh
    not_delivered_kwh = (kw - c.delivered_kw) * restoration_h
    unserved_kwh = c.load_not_served_kw * restoration_h

    if decision.location_certain:
        event_type = primary.title
    elif decision.mode == "unknown":
        event_type = f"Unrecognised event (closest: {pretty_label(reading.label)})"
    elif is_fault:
        event_type = "Possible internal fault, location uncertain"
    else:
        event_type = f"{primary.title} (uncertain)"

    location_prob = {e: p for e, p in reading.equipment}
    located_equipment = []
    for rule, probability in zip(rules, decision.probabilities, strict=True):
        for node_id in rule.located or c.candidate_feeders:
            located_equipment.append({
                "id": node_id, "name": grid.node(node_id).name, "reading": rule.key,
                "probability": round(probability, 4), "certain": decision.location_certain,
            })

    highlight = list(c.located)
    for rule in rules:
        highlight += rule.observed_at
    highlight += c.deenergised
    highlight += [i["grid_former"] for i in c.islands if i["energised"]]
    if c.status != "continues":
        highlight += [sender, receiver]
    ours = tuple(n for n in _unique(highlight) if n in grid.node_by_id)
    # the original front end knows only its own diagram's ids: always add the ones the event touches
    highlight_keys = _unique(list(ours) + list(original_diagram_keys(grid, ours))) or ("microgrid-hub",)

    affected_edges = _unique(list(c.opened_edges) + (list(c.path_edges) if c.status != "continues" else []))

    actions: list[str] = []
    for rule in rules:
        if decision.location_certain or (rule.is_fault_condition and primary.is_fault_condition):
            actions += [a for a in rule.actions if a not in actions]  # the reading acted upon
        else:  # a reading the model is not sure of: conditional advice only
            actions += [f"If it is {_lower_first(rule.title)}: {_lower_first(a)}" for a in rule.actions[:2]]
    for island in c.islands:
        if island["energised"] and not island["balanced"]:
            actions.append(f"Island around {island['grid_former']} is short of "
                           f"{-island['margin_kw']:.1f} kW: shed flexible load (EV charging first).")
        elif island["energised"] and not island["lasts_through_restoration"]:
            actions.append(f"Even with the co-generation at full output the island's storage lasts about "
                           f"{island['storage_endurance_h']:.1f} h, less than the {restoration_h:g} h restoration: "
                           f"plan load shedding or a mobile supply.")
    if c.status == "disrupted":
        actions.append(f"Settle the P2P trade {sender} -> {receiver}: the transfer cannot be delivered until "
                       f"restoration.")
    if decision.caution:
        actions.insert(0, decision.caution)

    transfer_text = f"Transfer {sender} -> {receiver} ({kw:g} kW)"
    if c.status == "continues":
        where = " inside the islanded microgrid" if sender in c.islanded else ""
        transfer_part = f"{transfer_text} continues{where}."
    elif c.status == "curtailed":
        transfer_part = (f"{transfer_text} is curtailed to {c.delivered_kw:g} kW by load shedding in the island; "
                         f"{not_delivered_kwh:.2f} kWh ({tariffs.value(not_delivered_kwh):.2f} {tariffs.currency}) "
                         f"not delivered over {_duration(restoration_h)}.")
    else:
        transfer_part = (f"{transfer_text} is disrupted: its path crosses {', '.join(c.blocked_at)}; "
                         f"{not_delivered_kwh:.2f} kWh ({tariffs.value(not_delivered_kwh):.2f} {tariffs.currency}) "
                         f"not delivered over {_duration(restoration_h)}.")
    if c.candidate_feeders:
        transfer_part += (f" Worst case assumed: the fault is on {', '.join(c.candidate_feeders)} (the feeder relays "
                          f"tell which one tripped).")
    grid_part = ""
    if c.islanded:
        formers = sorted({i["grid_former"] for i in c.islands if i["energised"]})
        grid_part = f"The microgrid runs as an island formed by {', '.join(formers)}. "
    elif c.deenergised:
        grid_part = f"De-energised: {', '.join(c.deenergised)}. "
    message = f"{grid_part}{transfer_part}"
    if not decision.location_certain:
        message = f"Location uncertain; cautious reading. {message}"

    action_short = "; ".join(_unique(r.protection_short for r in rules))
    summary = (f"{severity.upper()}: {event_type}. {action_short}. Transfer {c.status}"
               f"{f' ({c.delivered_kw:g} of {kw:g} kW)' if c.status == 'curtailed' else ''}; "
               f"{not_delivered_kwh:.2f} kWh not delivered.")

    return ImpactReport(
        event_type=event_type,
        label=reading.label,
        confidence=reading.confidence,
        severity=severity,
        is_fault_condition=is_fault,
        summary=summary,
        p2p_disruption_message=message,
        highlight_keys=highlight_keys,
        reading={
            "mode": decision.mode,
            "location_certain": decision.location_certain,
            "unknown": reading.unknown,
            "unknown_reason": reading.unknown_reason,
            "marginals_derived": reading.marginals_derived,
            "internal_fault_probability": round(reading.prob("category", "internal_fault"), 4),
            "equipment_probability": {e: round(p, 4) for e, p in reading.equipment},
            "location_threshold": LOCATION_CONFIDENCE_THRESHOLD,
            "material_probability": MATERIAL_PROBABILITY,
            "readings_acted_on": [{"reading": r.key, "probability": round(p, 4)}
                                  for r, p in zip(rules, decision.probabilities, strict=True)],
            "caution": decision.caution,
            "equipment_marginal_of_label": round(location_prob.get(label_parts(reading.label).equipment, 0.0), 4),
        },
        located_equipment=tuple(located_equipment),
        protection_action={
            "relay": "; ".join(_unique(r.relay for r in rules)),
            "description": " ".join(_unique(r.protection for r in rules)),
            "trips": bool(c.breakers),
            "breakers_opened": list(c.breakers),
            "all_open_edges": list(c.opened_edges),
            "isolated_equipment": list(c.isolated),
        },
        deenergised_nodes=c.deenergised,
        islanded_nodes=c.islanded,
        affected_edges=affected_edges,
        islands=c.islands,
        transfer={
            "sender": sender, "receiver": receiver, "requested_kw": kw, "delivered_kw": c.delivered_kw,
            "status": c.status, "path_nodes": list(c.path_nodes), "path_edges": list(c.path_edges),
            "blocked_at": list(c.blocked_at), "price_per_kwh": round(price, 4), "currency": tariffs.currency,
            "value_per_hour": round(tariffs.value(kw), 4),
        },
        restoration={"hours": restoration_h, "seconds": round(restoration_h * 3600, 1),
                     "reason": "; ".join(_unique(r.restoration_reason for r in rules))},
        energy={
            "transfer_not_delivered_kwh": round(not_delivered_kwh, 4),
            "transfer_not_delivered_cost": round(tariffs.value(not_delivered_kwh), 4),
            "load_not_served_kw": c.load_not_served_kw,
            "load_not_served_kwh": round(unserved_kwh, 3),
            "currency": tariffs.currency,
            "p2p_price_per_kwh": round(price, 4),
        },
        actions=tuple(actions),
        power_flow_before=c.before,
        power_flow_after=c.after,
    )


def _lower_first(text: str) -> str:
    return text[:1].lower() + text[1:] if text[:2] != text[:2].upper() else text


def _duration(hours: float) -> str:
    if hours <= 0:
        return "no interruption"
    if hours < 1 / 60:
        return f"{hours * 3600:.0f} s"
    if hours < 1:
        return f"{hours * 60:.0f} min"
    return f"{hours:g} h"
