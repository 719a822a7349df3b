"""The 45 event labels and their decomposition into category, equipment and kind.

One place for the exact label strings (they are part of the artifact contract with the
original application) and for the reading of each label as physics: which equipment,
which fault type or transient.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

FAULT_SUFFIXES: tuple[str, ...] = (
    "Class1", "Class2", "Class3", "Class4", "Class5", "Class6", "Class7",
    "Class8", "Class9", "class10", "class11", "tt", "ww",
)

#: fault suffix -> short fault kind used across the product
FAULT_KINDS: dict[str, str] = {
    "Class1": "AG", "Class2": "BG", "Class3": "CG", "Class4": "ABG", "Class5": "ACG",
    "Class6": "BCG", "Class7": "ABCG", "Class8": "AB", "Class9": "AC", "class10": "BC",
    "class11": "ABC", "tt": "turn-to-turn", "ww": "winding-to-winding",
}

EQUIPMENT_PREFIXES: tuple[tuple[str, str], ...] = (
    ("internal_ispar_exciting_transformer_internal_faults_", "ispar_exciting"),
    ("internal_ispar_series_transformer_internal_faults_", "ispar_series"),
    ("internal_power_transformer_internal_faults_", "power_transformer"),
)

TRANSIENT_LABELS: tuple[str, ...] = (
    "transient_capacitor_switching",
    "transient_external_fault_with_CT_saturation",
    "transient_ferroresonance",
    "transient_magnetising_inrush",
    "transient_non-linear_load_switching",
    "transient_sympathetic_inrush",
)

#: transient label -> short kind
TRANSIENT_KINDS: dict[str, str] = {
    "transient_capacitor_switching": "capacitor_switching",
    "transient_external_fault_with_CT_saturation": "external_fault_ct_saturation",
    "transient_ferroresonance": "ferroresonance",
    "transient_magnetising_inrush": "magnetising_inrush",
    "transient_non-linear_load_switching": "non_linear_load_switching",
    "transient_sympathetic_inrush": "sympathetic_inrush",
}

LABELS: tuple[str, ...] = tuple(
    prefix + suffix for prefix, _ in EQUIPMENT_PREFIXES for suffix in FAULT_SUFFIXES
) + TRANSIENT_LABELS
assert len(LABELS) == 45

LABEL_TO_ID: dict[str, int] = {label: i for i, label in enumerate(LABELS)}

CATEGORIES: tuple[str, ...] = ("internal_fault", "transient")
EQUIPMENTS: tuple[str, ...] = ("power_transformer", "ispar_series", "ispar_exciting", "none")
KINDS: tuple[str, ...] = tuple(FAULT_KINDS.values()) + tuple(TRANSIENT_KINDS.values())

#: below this probability the unit of an internal fault is reported as uncertain: the dashboard,
#: the API and the impact report (which then isolates every plausible unit) use the same level,
#: and the model card scores "confidently wrong" against it
EQUIPMENT_CERTAIN = 0.8

EQUIPMENT_NAMES: dict[str, str] = {
    "power_transformer": "Power transformer",
    "ispar_series": "ISPAR series unit",
    "ispar_exciting": "ISPAR exciting unit",
    "none": "No equipment (system transient)",
}


@dataclass(frozen=True)
class LabelParts:
    """A label read as physics."""

    label: str
    category: str  # one of CATEGORIES
    equipment: str  # one of EQUIPMENTS
    kind: str  # one of KINDS
    fault_suffix: str | None  # "Class1".."tt"/"ww" for internal faults, else None


@cache
def label_parts(label: str) -> LabelParts:
    """Split a label into category, equipment and kind; ValueError for an unknown label."""
    for prefix, equipment in EQUIPMENT_PREFIXES:
        if label.startswith(prefix):
            suffix = label[len(prefix):]
            if suffix in FAULT_KINDS:
                return LabelParts(label, "internal_fault", equipment, FAULT_KINDS[suffix], suffix)
    if label in TRANSIENT_KINDS:
        return LabelParts(label, "transient", "none", TRANSIENT_KINDS[label], None)
    raise ValueError(f"unknown label {label!r}: expected one of the 45 labels of docs/contracts.md (Labels)")


def resolve_label(value: str | int) -> int:
    """Label id from a label string or an id (int or digit string); ValueError if unknown."""
    if isinstance(value, bool):
        raise ValueError(f"unknown label {value!r}")
    if isinstance(value, int):
        if 0 <= value < len(LABELS):
            return value
        raise ValueError(f"unknown label id {value}: expected 0 to {len(LABELS) - 1}")
    text = str(value).strip()
    if text.isdigit():
        return resolve_label(int(text))
    if text in LABEL_TO_ID:
        return LABEL_TO_ID[text]
    raise ValueError(f"unknown label {text!r}: expected one of the 45 labels or an id 0-44")


#: transient kind -> its name in words
TRANSIENT_TITLES: dict[str, str] = {
    "capacitor_switching": "Capacitor switching",
    "external_fault_ct_saturation": "External fault with CT saturation",
    "ferroresonance": "Ferroresonance",
    "magnetising_inrush": "Magnetising inrush",
    "non_linear_load_switching": "Non-linear load switching",
    "sympathetic_inrush": "Sympathetic inrush",
}


def kind_words(kind: str) -> str:
    """A kind as it reads inside a sentence: 'external fault with CT saturation', 'AG', 'turn-to-turn'."""
    if kind in TRANSIENT_TITLES:
        title = TRANSIENT_TITLES[kind]
        return title[0].lower() + title[1:]
    return kind.replace("_", " ")


def phase_group(kind: str) -> str:
    """The phases a fault kind involves, ground aside: 'ABG' and 'AB' -> 'AB', 'AG' -> 'A'.

    Turn-to-turn and winding-to-winding stay themselves: their labels do not name the phases.
    Ground involvement is a level below the phases because a relay view that removes the zero
    sequence (delta CTs, numerical zero-sequence elimination) makes a three-phase fault to ground
    without ground current exactly a three-phase fault.
    """
    if kind in ("turn-to-turn", "winding-to-winding"):
        return kind
    return kind[:-1] if kind.endswith("G") and len(kind) > 1 else kind


def phases_title(group: str) -> str:
    """'AB' -> 'A-B', 'A' -> 'A'; turn-to-turn and winding-to-winding as words."""
    return "-".join(group) if group.isalpha() and group.isupper() else kind_words(group)


def pretty_label(label: str) -> str:
    """Human title of a label, e.g. 'Power transformer - AG fault'."""
    parts = label_parts(label)
    if parts.category == "transient":
        return TRANSIENT_TITLES[parts.kind]
    kind = parts.kind if "-" in parts.kind else f"{parts.kind} fault"
    return f"{EQUIPMENT_NAMES[parts.equipment]} - {kind}"


def display_label(label: object) -> str:
    """`pretty_label` for one of the 45 labels; anything else (an unknown string, None) passes
    through as text, so a page can show whatever a stored record holds."""
    try:
        return pretty_label(str(label))
    except ValueError:
        return str(label or "")
