"""What each of the 45 events is, how it shows in the differential currents, and its likely causes.

Written for this project in our own words (protection-engineering knowledge, not copied text).
`fault_descriptions()` builds the `fault_descriptions.json` of the artifact contract; the
predictor falls back to it when an artifacts folder (e.g. the original application's) has none.
"""

from __future__ import annotations

from functools import lru_cache

from services.labels import LABELS, label_parts

DEFAULT_DESCRIPTION = {
    "description": (
        "An event the classifier could not tie to a described case. Check the three differential "
        "currents: a sustained 60 Hz differential current in one or more phases points to an internal "
        "fault, a distorted or decaying one with little fundamental points to a switching transient."
    ),
    "causes": [
        "Check the relay's event record and the breaker operations around the time stamp",
        "Compare with the CT ratio and vector-group compensation settings of the differential zone",
        "Look for switching operations (energisation, capacitor banks, large loads) at the same time",
    ],
}

_EQUIPMENT = {
    "power_transformer": (
        "the main power transformer",
        "Each winding sits on its own core limb, so after ratio and vector-group compensation the "
        "differential current appears in the faulted phase(s) while healthy phases stay near their "
        "small pre-fault level.",
        "Loss of cooling (pumps, fans, blocked radiators) overheating the winding insulation",
    ),
    "ispar_series": (
        "the series unit of the indirect symmetrical phase angle regulator (ISPAR)",
        "Its differential relay sees the faulted winding's current as its CTs and compensation "
        "present it: through a delta or a Yd-compensated relay the current also shows in a second "
        "phase. Which currents this relay compares is not publicly documented, so the waveform alone "
        "cannot tell this unit from the exciting unit or the power transformer: confirm the unit "
        "from the relay that tripped.",
        "Overvoltage across the series winding during a line fault or line switching",
    ),
    "ispar_exciting": (
        "the exciting (regulating) unit of the indirect symmetrical phase angle regulator (ISPAR)",
        "It carries the on-load tap changer, and its magnetising current, part of the standing "
        "differential current before and after the fault, grows with the phase shift. Which currents "
        "its differential relay compares is not publicly documented, so the waveform alone cannot "
        "tell this unit from the series unit or the power transformer: confirm the unit from the "
        "relay that tripped.",
        "Tap-changer failure (diverter arcing, contact wear, selector fault) on the regulating winding",
    ),
}

_FAULTS = {
    "AG": ("single phase-to-ground fault on phase A", "a 60 Hz differential current led by phase A, "
           "with a decaying DC offset set by the inception angle"),
    "BG": ("single phase-to-ground fault on phase B", "a 60 Hz differential current led by phase B, "
           "with a decaying DC offset set by the inception angle"),
    "CG": ("single phase-to-ground fault on phase C", "a 60 Hz differential current led by phase C, "
           "with a decaying DC offset set by the inception angle"),
    "ABG": ("double phase-to-ground fault on phases A and B", "large 60 Hz differential currents in "
            "phases A and B with a zero-sequence (ground) component, phase C much smaller"),
    "ACG": ("double phase-to-ground fault on phases A and C", "large 60 Hz differential currents in "
            "phases A and C with a zero-sequence (ground) component, phase B much smaller"),
    "BCG": ("double phase-to-ground fault on phases B and C", "large 60 Hz differential currents in "
            "phases B and C with a zero-sequence (ground) component, phase A much smaller"),
    "ABCG": ("three-phase-to-ground fault", "large 60 Hz differential currents in all three phases, "
             "roughly 120 degrees apart, each with its own DC offset"),
    "AB": ("phase-to-phase fault between phases A and B (no ground)", "differential currents in "
           "phases A and B of about equal size and opposite sign, phase C near zero, no zero sequence"),
    "AC": ("phase-to-phase fault between phases A and C (no ground)", "differential currents in "
           "phases A and C of about equal size and opposite sign, phase B near zero, no zero sequence"),
    "BC": ("phase-to-phase fault between phases B and C (no ground)", "differential currents in "
           "phases B and C of about equal size and opposite sign, phase A near zero, no zero sequence"),
    "ABC": ("balanced three-phase fault (no ground)", "three differential currents of similar size "
            "120 degrees apart that sum to about zero"),
    "turn-to-turn": ("turn-to-turn fault: a short between turns of the same winding", "only a small "
                     "differential current (the shorted turns carry a large circulating current but "
                     "the terminal currents change little), easily hidden by load and CT mismatch"),
    "winding-to-winding": ("winding-to-winding fault: insulation breakdown between two windings",
                           "a 60 Hz differential current in the phases of the windings involved, its "
                           "size set by the voltage between them and the fault resistance"),
}

_FAULT_CAUSES = {
    "ground": [
        "Ageing, overheating or moisture in the winding-to-core or winding-to-tank insulation",
        "Insulation puncture by a lightning or switching surge",
        "Winding displacement from earlier through-fault forces damaging the insulation",
        "Contaminated or low insulating oil",
    ],
    "phase": [
        "Breakdown of the insulation barrier between phase windings or their leads",
        "Winding deformation after through-faults reducing inter-phase clearances",
        "Flashover between phase leads or bushings inside the protected zone",
        "Degraded insulating oil (moisture, particles, gas bubbles)",
    ],
    "turn-to-turn": [
        "Inter-turn insulation weakened by hot spots and sustained overloading",
        "Steep-fronted switching or lightning surges stressing the first turns of a winding",
        "Partial discharge gradually eroding the conductor paper insulation",
        "Loose winding clamping letting turns vibrate and abrade",
    ],
    "winding-to-winding": [
        "Breakdown of the pressboard barrier between windings",
        "Moisture or ageing of the inter-winding insulation",
        "Transferred surges between windings",
        "Radial or axial winding movement under short-circuit forces",
    ],
}

_TRANSIENTS = {
    "transient_capacitor_switching": (
        "Energisation of a shunt capacitor bank near the transformer. The capacitor inrush superimposes "
        "a high-frequency oscillation (hundreds of hertz to a few kilohertz) on the 60 Hz currents that "
        "dies out within a few milliseconds; it is a through current, so the differential current stays "
        "moderate and returns to its pre-event level. Not a fault: the differential relay must not trip.",
        [
            "Scheduled switching of a capacitor bank for voltage or reactive-power control",
            "Automatic VAR controller switching a bank in",
            "Back-to-back energisation next to an already energised bank",
            "Restrike of the capacitor breaker on opening",
        ],
    ),
    "transient_external_fault_with_CT_saturation": (
        "A fault outside the protected zone carries a large through current; the DC offset drives one "
        "current transformer into saturation, its secondary current collapses for part of each cycle and "
        "a false differential current appears a few milliseconds after inception, distorted, with flat "
        "gaps and large peaks. Not an internal fault: restraint or saturation detection should block tripping.",
        [
            "Line or bus fault close to the transformer",
            "CT with too low a knee-point voltage or too high a burden (long leads)",
            "High system X/R ratio giving a slowly decaying DC offset",
            "Remanent flux left in the CT core by an earlier fault",
        ],
    ),
    "transient_ferroresonance": (
        "Sustained non-linear resonance between the transformer's magnetising inductance and system "
        "capacitance (cables, breaker grading capacitors). The currents are heavily distorted, often "
        "peaked, and may be periodic at 60 Hz, subharmonic or chaotic, lasting as long as the circuit "
        "condition persists. Dangerous overvoltages, but not a winding fault.",
        [
            "Single-pole switching, a blown fuse or an open conductor leaving a phase floating",
            "Energising or de-energising a lightly loaded or unloaded transformer",
            "Grading capacitance of an open breaker or long cable capacitance",
            "Voltage transformers on an isolated or ungrounded section",
        ],
    ),
    "transient_magnetising_inrush": (
        "Energisation of the transformer drives its core into saturation (residual flux plus an "
        "unfavourable switching angle). The current flows only on the energised side, so it appears "
        "fully as differential current: large, unipolar, peaked half-cycles separated by near-zero gaps, "
        "rich in second harmonic, decaying over many cycles. Harmonic restraint should block tripping.",
        [
            "Energising the transformer from the network",
            "Reclosing after a fault has been cleared",
            "Voltage recovery after a nearby external fault is cleared (recovery inrush)",
            "High residual flux from the previous de-energisation",
        ],
    ),
    "transient_non-linear_load_switching": (
        "Switching of a large non-linear load (rectifiers, drives, arc furnaces) downstream. The load "
        "current is rich in 5th and 7th harmonics; being a through current it leaves only a small, "
        "harmonic-distorted differential current from CT and tap-position mismatch.",
        [
            "Start-up of variable-speed drives or large rectifier loads",
            "Arc furnace or welding load switching",
            "Converter stations or large UPS systems switching",
            "Harmonic filter switching near the transformer",
        ],
    ),
    "transient_sympathetic_inrush": (
        "Energising another transformer on the same bus: the DC component of its inrush flows through "
        "the shared source resistance and drives the transformer already in service into saturation. "
        "This one then draws inrush-like, unipolar, harmonic-rich current that grows over a few cycles, "
        "of opposite polarity to the energised unit's, and appears as differential current.",
        [
            "Energising a parallel transformer on the same bus",
            "Weak source with significant resistance shared by both transformers",
            "Series-connected transformers energised one after the other",
            "Lightly loaded in-service transformer close to saturation",
        ],
    ),
}


def _fault_causes(kind: str, equipment: str) -> list[str]:
    if kind in ("turn-to-turn", "winding-to-winding"):
        causes = list(_FAULT_CAUSES[kind][:3])
    elif kind.endswith("G"):
        causes = list(_FAULT_CAUSES["ground"][:3])
    else:
        causes = list(_FAULT_CAUSES["phase"][:3])
    causes.append(_EQUIPMENT[equipment][2])
    return causes


def describe_label(label: str) -> dict:
    """{"description", "causes"} of one label; DEFAULT_DESCRIPTION for a label we do not know."""
    try:
        parts = label_parts(label)
    except ValueError:
        return {"description": DEFAULT_DESCRIPTION["description"], "causes": list(DEFAULT_DESCRIPTION["causes"])}
    if parts.category == "transient":
        description, causes = _TRANSIENTS[label]
        return {"description": description, "causes": list(causes)}
    where, signature, _ = _EQUIPMENT[parts.equipment]
    what, shape = _FAULTS[parts.kind]
    description = (
        f"Internal {what} in {where}, inside the differential protection zone. It shows as {shape}, "
        f"from the fault inception until the breaker clears it. {signature} The differential relay "
        "should trip."
    )
    return {"description": description, "causes": _fault_causes(parts.kind, parts.equipment)}


@lru_cache(maxsize=1)
def _all_descriptions() -> tuple[tuple[str, dict], ...]:
    return tuple((label, describe_label(label)) for label in LABELS)


def fault_descriptions() -> dict[str, dict]:
    """The content of `fault_descriptions.json`: every label and "DEFAULT" (fresh copies)."""
    result = {label: {"description": d["description"], "causes": list(d["causes"])} for label, d in _all_descriptions()}
    result["DEFAULT"] = {"description": DEFAULT_DESCRIPTION["description"], "causes": list(DEFAULT_DESCRIPTION["causes"])}
    return result
