"""What each kind of event means on the microgrid: location, protection, restoration, actions.

One rule per internal-fault location (three units) and per transient kind (six). The decisions for
the ambiguous classes, from the physics of the recordings:

- external fault with CT saturation: a real short circuit, but outside the transformer's
  differential zone, downstream of it (only a fault fed through the transformer carries enough
  through-current to saturate its CTs). The 87T relay must restrain; the feeder protection clears
  the faulted feeder. It IS a fault condition (a short circuit is on the system), NOT an internal
  fault. The differential currents cannot tell which feeder: the cautious reading assumes the
  feeders on the transfer's path.
- ferroresonance: a lightly loaded transformer whose magnetising reactance resonates with a
  capacitance (capacitor bank, cable, open phase). Sustained over-voltage and distorted current,
  no short circuit: not a fault condition, but major (it does not clear by itself and damages
  arresters, insulation and inverters).
- non-linear load switching: harmonic-rich current from drives/rectifiers; a power-quality event,
  not a fault condition, minor.
- magnetising inrush, sympathetic inrush, capacitor switching: switching transients, not faults;
  2nd-harmonic restraint blocks the differential trip.
"""

from __future__ import annotations

from dataclasses import dataclass

from services.grid import (
    CAPACITOR_BANK,
    CB_CAPACITOR,
    CB_ISPAR_LOAD,
    CB_ISPAR_SOURCE,
    CB_PT_HV,
    CB_PT_LV,
    ISPAR_BYPASS,
    ISPAR_EXCITING,
    ISPAR_SERIES,
    NONLINEAR_LOAD,
    PARALLEL_TRANSFORMER,
    POWER_TRANSFORMER,
)

SEVERITIES: tuple[str, ...] = ("info", "minor", "major", "critical")

#: equipment marginal (services.labels.EQUIPMENTS key) -> node ids of that unit
UNIT_NODES: dict[str, tuple[str, ...]] = {
    "power_transformer": (POWER_TRANSFORMER,),
    "ispar_series": (ISPAR_SERIES,),
    "ispar_exciting": (ISPAR_EXCITING,),
}


@dataclass(frozen=True)
class EventRule:
    """The consequences of one reading of the event, before the grid state is evaluated."""

    key: str
    title: str
    is_fault_condition: bool
    severity: str
    located: tuple[str, ...]  # node ids where the event is
    observed_at: tuple[str, ...]  # node ids whose differential relay recorded it
    isolated: tuple[str, ...]  # node ids the protection takes out of service
    breakers: tuple[str, ...]  # edge ids that open
    relay: str
    protection: str
    protection_short: str  # a few words for the one-line summary
    restoration_h: float
    restoration_reason: str
    actions: tuple[str, ...]
    feeder_fault: bool = False  # location: one of the microgrid feeders (resolved against the transfer)


_ISLAND_ACTION = (
    "Island the microgrid: the community battery forms the island (grid-forming); dispatch the "
    "co-generation and the prosumer batteries to hold the island's balance."
)


def _fault_kind_action(kind: str) -> str:
    if kind == "turn-to-turn":
        return ("Turn-to-turn faults start small and grow: check the Buchholz / sudden-pressure relay and take an "
                "oil sample (DGA) before any re-energisation.")
    if kind == "winding-to-winding":
        return ("Winding-to-winding fault: expect major winding damage; plan for replacement (mobile unit) rather "
                "than a quick repair.")
    phases = kind.rstrip("G")
    if kind.endswith("G"):
        return (f"Ground fault involving phase(s) {phases}: check the winding and bushing insulation of those "
                f"phases and the neutral/earthing connection.")
    return f"Phase-to-phase fault between phases {phases}: check winding and lead insulation between them."


def internal_fault_rule(equipment: str, kind: str | None) -> EventRule:
    """Internal fault in one unit: its differential protection trips it."""
    kind_text = f" ({kind})" if kind else ""
    kind_actions = (_fault_kind_action(kind),) if kind else ()
    if equipment == "power_transformer":
        return EventRule(
            key="internal_fault:power_transformer",
            title=f"Internal fault{kind_text} in the power transformer",
            is_fault_condition=True,
            severity="critical",
            located=(POWER_TRANSFORMER,),
            observed_at=(POWER_TRANSFORMER,),
            isolated=(POWER_TRANSFORMER,),
            breakers=(CB_PT_HV, CB_PT_LV),
            relay="87T transformer differential",
            protection=(f"87T differential trip: breakers {CB_PT_HV} and {CB_PT_LV} open within about 3 cycles and "
                        f"isolate the power transformer; the microgrid loses its utility supply."),
            protection_short=f"87T trip opens {CB_PT_HV} and {CB_PT_LV}",
            restoration_h=8.0,
            restoration_reason="inspection and repair of the power transformer, or a mobile transformer (hours)",
            actions=(
                _ISLAND_ACTION,
                "Do not re-energise the power transformer until it is tested (DGA, winding resistance, "
                "insulation); a transformer that tripped on 87T is assumed damaged.",
                *kind_actions,
                "Arrange a mobile transformer if the repair takes longer than the island's storage lasts.",
            ),
        )
    if equipment in ("ispar_series", "ispar_exciting"):
        unit = "series" if equipment == "ispar_series" else "exciting"
        coupling = (
            "Through a delta or Yd-compensated relay a fault current also shows in a second phase: confirm "
            "the faulted phase from the relay's own record."
            if unit == "series"
            else "Inspect the exciting unit's tap changer and regulating winding (most exciting-unit faults "
                 "start there)."
        )
        return EventRule(
            key=f"internal_fault:{equipment}",
            title=f"Internal fault{kind_text} in the ISPAR {unit} unit",
            is_fault_condition=True,
            severity="critical",
            located=(ISPAR_SERIES if unit == "series" else ISPAR_EXCITING,),
            observed_at=(ISPAR_SERIES if unit == "series" else ISPAR_EXCITING,),
            isolated=(ISPAR_SERIES, ISPAR_EXCITING),
            breakers=(CB_ISPAR_SOURCE, CB_ISPAR_LOAD),
            relay=f"87 ISPAR {unit}-unit differential",
            protection=(f"ISPAR {unit}-unit differential trip: breakers {CB_ISPAR_SOURCE} and {CB_ISPAR_LOAD} open "
                        f"and take both ISPAR units out (the series unit cannot run without its exciting unit); "
                        f"the MV bus loses supply and the microgrid islands at its point of common coupling."),
            protection_short=f"ISPAR {unit}-unit differential trip opens {CB_ISPAR_SOURCE} and {CB_ISPAR_LOAD}",
            restoration_h=0.5,
            restoration_reason=(f"switching: close the ISPAR bypass breaker {ISPAR_BYPASS} to restore the utility "
                                f"supply without phase-angle control (the ISPAR repair itself takes days)"),
            actions=(
                _ISLAND_ACTION,
                f"Check that the tie flow without phase-angle control stays within limits, then close the ISPAR "
                f"bypass breaker {ISPAR_BYPASS} to restore the utility supply.",
                coupling,
                *kind_actions,
            ),
        )
    raise ValueError(f"no internal-fault rule for equipment {equipment!r}")


_TRANSIENT_RULES: dict[str, EventRule] = {
    "magnetising_inrush": EventRule(
        key="transient:magnetising_inrush",
        title="Magnetising inrush of the power transformer",
        is_fault_condition=False,
        severity="info",
        located=(POWER_TRANSFORMER,),
        observed_at=(POWER_TRANSFORMER,),
        isolated=(),
        breakers=(),
        relay="87T transformer differential (2nd-harmonic restraint)",
        protection="No trip: the 2nd-harmonic restraint (typically above 15 % of fundamental) blocks the 87T "
                   "differential trip while the transformer's core saturates on energisation.",
        protection_short="No trip (2nd-harmonic restraint)",
        restoration_h=5 / 3600,
        restoration_reason="inrush decays within seconds",
        actions=(
            "Block the differential trip: it is magnetising inrush, not a fault.",
            "If the 87T did trip, check its 2nd-harmonic restraint setting before re-energising; the "
            "transformer is healthy.",
            "Expect a short voltage dip; no P2P action is needed.",
        ),
    ),
    "sympathetic_inrush": EventRule(
        key="transient:sympathetic_inrush",
        title="Sympathetic inrush: energising the parallel transformer disturbs the power transformer",
        is_fault_condition=False,
        severity="minor",
        located=(PARALLEL_TRANSFORMER, POWER_TRANSFORMER),
        observed_at=(POWER_TRANSFORMER,),
        isolated=(),
        breakers=(),
        relay="87T transformer differential (2nd-harmonic restraint)",
        protection="No trip: sympathetic inrush in the in-service power transformer when the parallel transformer "
                   "is energised; the 2nd-harmonic restraint must block the 87T trip.",
        protection_short="No trip (2nd-harmonic restraint)",
        restoration_h=15 / 3600,
        restoration_reason="sympathetic inrush decays over seconds, slower than ordinary inrush",
        actions=(
            "Block the differential trip: it is sympathetic inrush, not a fault.",
            "Sympathetic inrush lasts longer and carries less 2nd harmonic than ordinary inrush: check the "
            "restraint/cross-blocking settings of the 87T relay.",
            "Energise the parallel transformer at light load or with controlled (point-on-wave) switching.",
        ),
    ),
    "capacitor_switching": EventRule(
        key="transient:capacitor_switching",
        title="Capacitor bank switching transient",
        is_fault_condition=False,
        severity="info",
        located=(CAPACITOR_BANK,),
        observed_at=(POWER_TRANSFORMER,),
        isolated=(),
        breakers=(),
        relay="87T transformer differential (restrains)",
        protection="No trip: a switching transient of the capacitor bank; the differential relay restrains.",
        protection_short="No trip",
        restoration_h=0.0,
        restoration_reason="no interruption",
        actions=(
            "No protection action needed: capacitor switching transient.",
            f"If such transients repeat or escalate, inspect the capacitor bank switch ({CB_CAPACITOR}) for "
            f"restrike and check its controlled switching / pre-insertion resistors.",
            "Check that the inverters rode through the transient over-voltage.",
        ),
    ),
    "non_linear_load_switching": EventRule(
        key="transient:non_linear_load_switching",
        title="Non-linear load switching (harmonic-rich current)",
        is_fault_condition=False,
        severity="minor",
        located=(NONLINEAR_LOAD,),
        observed_at=(POWER_TRANSFORMER,),
        isolated=(),
        breakers=(),
        relay="87T transformer differential (harmonic restraint)",
        protection="No trip: harmonic-rich load current passes through the transformer; it is not a differential "
                   "current of a fault.",
        protection_short="No trip",
        restoration_h=0.0,
        restoration_reason="no interruption (a power-quality issue)",
        actions=(
            "Reduce the non-linear load or add harmonic filtering (active filter, line reactors, 12-pulse "
            "rectifiers).",
            "Check the capacitor bank for harmonic resonance with the transformer.",
            "Check the voltage distortion (THD) at the microgrid hub against the limits.",
        ),
    ),
    "ferroresonance": EventRule(
        key="transient:ferroresonance",
        title="Ferroresonance of the lightly loaded power transformer",
        is_fault_condition=False,
        severity="major",
        located=(POWER_TRANSFORMER, CAPACITOR_BANK),
        observed_at=(POWER_TRANSFORMER,),
        isolated=(),
        breakers=(),
        relay="over-voltage (59) / over-excitation (24); the 87T restrains",
        protection="No differential trip (no short circuit); over-voltage or over-excitation protection may trip "
                   "the transformer if the oscillation persists.",
        protection_short="No differential trip; over-voltage protection may act",
        restoration_h=0.25,
        restoration_reason="until the operator de-energises the transformer or adds damping load",
        actions=(
            "Investigate ferroresonance: de-energise the lightly loaded transformer or add damping (resistive) "
            "load on its secondary.",
            "Check for an open phase (blown fuse, single-pole switching) on the transformer's supply.",
            f"Switch off the capacitor bank ({CB_CAPACITOR}) that can resonate with the transformer's "
            f"magnetising reactance.",
            "Check the surge arresters and the inverters for over-voltage stress.",
        ),
    ),
    "external_fault_ct_saturation": EventRule(
        key="transient:external_fault_ct_saturation",
        title="External fault with CT saturation (feeder fault outside the transformer zone)",
        is_fault_condition=True,
        severity="major",
        located=(),  # resolved against the transfer's path: the candidate feeders
        observed_at=(POWER_TRANSFORMER,),
        isolated=(),
        breakers=(),
        relay="feeder overcurrent protection; the 87T must restrain",
        protection="The 87T differential must restrain (through-fault; the false differential current comes from "
                   "CT saturation); the feeder protection clears the faulted feeder in about 100 ms.",
        protection_short="87T restrains; feeder protection clears the fault",
        restoration_h=1.0,
        restoration_reason="locate the feeder fault, replace fuses or repair, re-energise (about an hour)",
        actions=(
            "Verify that the 87T restrained; if it tripped, review its CT-saturation detection and bias "
            "settings: the power transformer is healthy.",
            "Identify the tripped feeder from its relay, patrol it and restore supply once the fault is cleared.",
        ),
        feeder_fault=True,
    ),
}


#: the reading of a window that holds no event (only the standing differential current and noise)
NO_EVENT_RULE = EventRule(
    key="no_event",
    title="No event detected",
    is_fault_condition=False,
    severity="info",
    located=(),
    observed_at=(),
    isolated=(),
    breakers=(),
    relay="87T: no operation (the standing differential current stays below the pickup)",
    protection="No protection operates: the window holds only the standing differential current (CT ratio and "
               "tap mismatch, magnetising current) and measurement noise.",
    protection_short="no operation",
    restoration_h=0.0,
    restoration_reason="nothing to restore",
    actions=("No action on the grid. If a relay did trip, its own record holds the trigger: check that the "
             "window sent here covers the moment of the trip.",),
)


def transient_rule(kind: str) -> EventRule:
    """The rule of a transient kind (services.labels TRANSIENT_KINDS values)."""
    try:
        return _TRANSIENT_RULES[kind]
    except KeyError:
        raise ValueError(f"no transient rule for kind {kind!r}") from None


def worst_severity(severities) -> str:
    return max(severities, key=SEVERITIES.index, default="info")
