"""The answer in levels: category, faulted phases and kind, equipment, each with its own calibration.

Why levels: the waveform fixes what kind of event happened (fault or transient, which phases) far
better than where it happened. Which currents each unit's differential relay compares, and so the
signature that would tell an ISPAR exciting-unit fault from a power-transformer fault, is not
publicly documented (IEEE C37.245-2018 describes the protection schemes, not the CT placement of
any one installation), so a model trained on simulated units can be right about the fault and
wrong about the unit. The label probability is therefore factored as

    p(label) = p(kind) * p(equipment | kind)

- p(kind): softmax of the network's logits at temperature `t_kind`, summed over the labels that
  share the kind (13 fault kinds, 6 transient kinds); calibrated on plain validation windows.
- p(equipment | kind): softmax, within the labels of that kind, of the logits at temperature
  `t_equipment`; calibrated on validation windows whose relay view (how the fault current of a
  unit reaches the measured lines) is drawn from alternatives the network was not told about, so
  the unit is only reported as sure when its evidence survives a change of that unknown physics.

Category and equipment marginals are sums of p(label), so every level is consistent with the
label: p(label) <= p(kind) <= p(category). Everything here is vectorised numpy over a batch.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cache

import numpy as np

from services.labels import (
    CATEGORIES,
    EQUIPMENT_CERTAIN,
    EQUIPMENTS,
    FAULT_KINDS,
    KINDS,
    kind_words,
    label_parts,
    phase_group,
    phases_title,
)

#: candidates listed when the unit is uncertain
CANDIDATE_FLOOR = 0.05
#: below this probability the category (internal fault or transient) is reported as uncertain: the
#: same bar as the unit's (services.labels.EQUIPMENT_CERTAIN)
CATEGORY_CERTAIN = EQUIPMENT_CERTAIN
#: below this probability the faulted phases are reported as uncertain, with their candidates: the
#: same bar again, and the one "confidently wrong phases" is scored against
PHASES_CERTAIN = EQUIPMENT_CERTAIN
_CATEGORY_TITLES = {"internal_fault": "internal fault", "transient": "transient"}

#: "A-G", "A-B-C-G", ... for the kinds that name their phases (turn-to-turn and winding-to-winding do not)
_PHASE_TITLES = {kind: phases_title(kind) for kind in FAULT_KINDS.values() if kind.isupper()}
_SHORT_EQUIPMENT = {
    "power_transformer": "power transformer",
    "ispar_series": "ISPAR series unit",
    "ispar_exciting": "ISPAR exciting unit",
    "none": "none",
}


@dataclass(frozen=True)
class LevelStructure:
    """Membership matrices of a label list: label -> kind, label -> equipment, kind -> category."""

    labels: tuple[str, ...]
    kind_of_label: np.ndarray  # (n_labels,) index into KINDS
    label_kind: np.ndarray  # (n_labels, n_kinds) 0/1
    label_equipment: np.ndarray  # (n_labels, n_equipments) 0/1
    kind_category: np.ndarray  # (n_kinds, n_categories) 0/1
    by_kind: np.ndarray  # label columns sorted by kind (for per-kind reductions)
    group_starts: np.ndarray  # where each present kind's run starts in `by_kind`
    group_of_label: np.ndarray  # (n_labels,) index of the label's kind among the present kinds


@cache
def level_structure(labels: tuple[str, ...]) -> LevelStructure:
    """The level matrices of `labels` (cached: a label list is fixed per model)."""
    parts = [label_parts(label) for label in labels]
    kind_index = np.array([KINDS.index(p.kind) for p in parts])
    label_kind = np.zeros((len(labels), len(KINDS)))
    label_kind[np.arange(len(labels)), kind_index] = 1.0
    label_equipment = np.zeros((len(labels), len(EQUIPMENTS)))
    label_equipment[np.arange(len(labels)), [EQUIPMENTS.index(p.equipment) for p in parts]] = 1.0
    kind_category = np.zeros((len(KINDS), len(CATEGORIES)))
    for p in parts:
        kind_category[KINDS.index(p.kind), CATEGORIES.index(p.category)] = 1.0
    by_kind = np.argsort(kind_index, kind="stable")
    present, group_of_label = np.unique(kind_index, return_inverse=True)
    group_starts = np.searchsorted(kind_index[by_kind], present)
    return LevelStructure(tuple(labels), kind_index, label_kind, label_equipment, kind_category, by_kind,
                          group_starts, group_of_label)


def _softmax(values: np.ndarray) -> np.ndarray:
    shifted = values - values.max(axis=1, keepdims=True)
    exp = np.exp(shifted)
    return exp / exp.sum(axis=1, keepdims=True)


def label_probabilities(logits: np.ndarray, labels: tuple[str, ...], t_kind: float, t_equipment: float) -> np.ndarray:
    """p(label) = p(kind) p(equipment | kind) for (n, n_labels) logits (see the module docstring)."""
    structure = level_structure(tuple(labels))
    logits = np.asarray(logits, dtype=np.float64)
    p_kind = _softmax(logits / t_kind) @ structure.label_kind  # (n, n_kinds)
    scaled = logits / t_equipment
    # softmax within each kind group: subtract the group's max, normalise by the group's sum
    group_max = np.maximum.reduceat(scaled[:, structure.by_kind], structure.group_starts, axis=1)
    exp = np.exp(scaled - group_max[:, structure.group_of_label])
    group_sum = np.add.reduceat(exp[:, structure.by_kind], structure.group_starts, axis=1)
    conditional = exp / group_sum[:, structure.group_of_label]
    return p_kind[:, structure.kind_of_label] * conditional


def kind_probabilities(probabilities: np.ndarray, labels: tuple[str, ...]) -> np.ndarray:
    return probabilities @ level_structure(tuple(labels)).label_kind


def equipment_probabilities(probabilities: np.ndarray, labels: tuple[str, ...]) -> np.ndarray:
    return probabilities @ level_structure(tuple(labels)).label_equipment


def category_probabilities(probabilities: np.ndarray, labels: tuple[str, ...]) -> np.ndarray:
    structure = level_structure(tuple(labels))
    return probabilities @ structure.label_kind @ structure.kind_category


def marginals(probabilities: np.ndarray, labels: tuple[str, ...]) -> dict[str, np.ndarray]:
    """(n, n_labels) label probabilities -> {"category", "equipment", "kind"}: (n, n_parts) each,
    columns in the order of services.labels CATEGORIES, EQUIPMENTS and KINDS."""
    return {"category": category_probabilities(probabilities, labels),
            "equipment": equipment_probabilities(probabilities, labels),
            "kind": kind_probabilities(probabilities, labels)}


def describe_levels(label_row: list[float], labels: tuple[str, ...],
                    event_detected: bool = True) -> tuple[dict, str]:
    """The `levels` dict and the one-line headline of one window's calibrated label probabilities."""
    parts = marginals(np.asarray(label_row, dtype=np.float64)[None, :], labels)
    return levels_of(parts["category"][0], parts["kind"][0], parts["equipment"][0], event_detected)


#: the category of each kind (columns of `marginals`' "kind" in KINDS order): top-down reading
_KIND_IS_FAULT = np.array([kind in FAULT_KINDS.values() for kind in KINDS])
_KIND_CATEGORY = np.where(_KIND_IS_FAULT, CATEGORIES.index("internal_fault"), CATEGORIES.index("transient"))
_UNITS = np.array([name != "none" for name in EQUIPMENTS])
#: the phase groups of the fault kinds, and each kind's group (-1 for a transient kind)
PHASE_GROUPS: tuple[str, ...] = tuple(dict.fromkeys(phase_group(kind) for kind in FAULT_KINDS.values()))
_KIND_GROUP = np.array([PHASE_GROUPS.index(phase_group(kind)) if fault else -1
                        for kind, fault in zip(KINDS, _KIND_IS_FAULT, strict=True)])
#: (n_kinds, n_groups) 0/1: kind probabilities times this are the phase groups' probabilities
_KIND_IN_GROUP = np.equal(_KIND_GROUP[:, None], np.arange(len(PHASE_GROUPS))[None, :]).astype(np.float64)


def levels_of(categories: Sequence[float], kinds: Sequence[float], equipments: Sequence[float],
              event_detected: bool = True) -> tuple[dict, str]:
    """The `levels` dict and the headline from one window's marginals (see `marginals`).

    Read top-down, as a protection engineer does: the category first (its marginal); for an
    internal fault the faulted phases next (the marginal of each phase group: AB and ABG are both
    phases A-B), then the most probable kind *within them* (whether ground is involved), then the
    most probable unit; for a transient its most probable kind. A kind picked across categories
    could contradict the category ("internal fault, CT saturation") when a single transient kind
    outweighs each fault kind but not all of them together. Below CATEGORY_CERTAIN the category is
    reported as uncertain, with the best kind of the other category beside it
    (`levels["category"]["alternative"]`); below PHASES_CERTAIN the phases are, with their
    candidates (`levels["phases"]`, None for a transient). Where the relay's compensation is not
    known, some fault currents are exactly what another phase set gives through another view (an
    AG fault with the zero sequence removed is (2, -1, -1)/3, an AB fault through a Yd-compensated
    relay (2, -1, -1)/sqrt(3)): the phases are then honestly uncertain.
    """
    categories, kinds, equipments = np.asarray(categories), np.asarray(kinds), np.asarray(equipments)
    category_index = int(categories.argmax())
    category = CATEGORIES[category_index]
    internal = category == "internal_fault"
    phases = _phases_level(kinds) if internal else None
    kind_index = _best_kind(kinds, category_index) if phases is None else _best_kind_of_phases(kinds, phases["value"])
    kind = KINDS[kind_index]
    if internal:
        unit_order = [int(i) for i in np.argsort(-np.where(_UNITS, equipments, -1.0)) if _UNITS[i]]
        equipment, equipment_p = EQUIPMENTS[unit_order[0]], float(equipments[unit_order[0]])
        candidates = [[EQUIPMENTS[i], float(equipments[i])] for i in unit_order if equipments[i] >= CANDIDATE_FLOOR]
    else:
        none = EQUIPMENTS.index("none")
        equipment, equipment_p, candidates = "none", float(equipments[none]), []
    category_p = float(categories[category_index])
    alternative = None
    if category_p < CATEGORY_CERTAIN and len(categories) > 1:
        other = 1 - category_index
        other_kind = KINDS[_best_kind(kinds, other)]
        alternative = {"category": CATEGORIES[other], "probability": float(categories[other]),
                       "kind": other_kind, "phases": _PHASE_TITLES.get(other_kind),
                       "kind_probability": float(kinds[KINDS.index(other_kind)])}
    levels = {
        "category": {"value": category, "probability": category_p, "uncertain": alternative is not None,
                     "alternative": alternative},
        "kind": {"value": kind, "phases": _PHASE_TITLES.get(kind), "probability": float(kinds[kind_index])},
        "phases": phases,
        "equipment": {"value": equipment, "probability": equipment_p,
                      "uncertain": bool(internal and equipment_p < EQUIPMENT_CERTAIN), "candidates": candidates},
    }
    return levels, headline(levels, event_detected)


def _phases_level(kinds: np.ndarray) -> dict:
    """The faulted phases of an internal fault: the most probable phase group, its probability
    (the sum over its kinds), whether it is below PHASES_CERTAIN, and the groups above
    CANDIDATE_FLOOR, most probable first."""
    groups = np.asarray(kinds, dtype=np.float64) @ _KIND_IN_GROUP
    order = np.argsort(-groups, kind="stable")
    best = int(order[0])
    return {"value": PHASE_GROUPS[best], "probability": float(groups[best]),
            "uncertain": bool(groups[best] < PHASES_CERTAIN),
            "candidates": [[PHASE_GROUPS[i], float(groups[i])] for i in order if groups[i] >= CANDIDATE_FLOOR]}


def named_fault_kind(kinds: Mapping[str, float]) -> str | None:
    """The fault kind an answer may name, from kind probabilities by name (KINDS): the most probable
    kind within the most probable phase group, or None when those phases are below PHASES_CERTAIN
    (then no phases are named). The impact report names the same fault as the levels."""
    values = np.array([float(kinds.get(kind, 0.0)) for kind in KINDS])
    phases = _phases_level(values)
    if phases["uncertain"]:
        return None
    return KINDS[_best_kind_of_phases(values, phases["value"])]


def _best_kind_of_phases(kinds: np.ndarray, group: str) -> int:
    """Index (in KINDS) of the most probable kind of one phase group (AB or ABG for 'AB')."""
    return int(np.argmax(np.where(np.equal(_KIND_GROUP, PHASE_GROUPS.index(group)), kinds, -1.0)))


def _best_kind(kinds: np.ndarray, category_index: int) -> int:
    """Index (in KINDS) of the most probable kind of one category."""
    return int(np.argmax(np.where(np.equal(_KIND_CATEGORY, category_index), kinds, -1.0)))


def _reading(category: str, kind: str, phases: str | None) -> str:
    """'phases A-G' for a fault with named phases, else the kind in words."""
    if category == "internal_fault" and phases:
        return f"phases {phases}"
    return kind_words(kind)


def headline(levels: dict, event_detected: bool = True) -> str:
    """One line an operator reads first, e.g. 'Internal fault, phases A-G, unit uncertain: ...'."""
    if not event_detected:
        return "No event: standing differential current and noise only"
    category, kind = levels["category"], levels["kind"]
    alternative = category.get("alternative")
    if alternative:
        chosen = (f"{_CATEGORY_TITLES[category['value']]} {100 * category['probability']:.0f} % "
                  f"({_reading(category['value'], kind['value'], kind['phases'])})")
        other = (f"{_CATEGORY_TITLES[alternative['category']]} {100 * alternative['probability']:.0f} % "
                 f"({_reading(alternative['category'], alternative['kind'], alternative['phases'])})")
        return f"Fault or transient uncertain: {chosen} or {other}"
    if category["value"] == "transient":
        return f"Transient: {_reading('transient', kind['value'], None)}"
    what = _reading("internal_fault", kind["value"], kind["phases"])
    phases = levels.get("phases")
    if phases and phases.get("uncertain"):
        shown = ", ".join(f"{phases_title(group)} {100 * p:.0f} %" for group, p in phases["candidates"][:3])
        what = f"phases uncertain ({shown})"
    equipment = levels["equipment"]
    if equipment["uncertain"]:
        shown = ", ".join(f"{_SHORT_EQUIPMENT[name]} {100 * p:.0f} %" for name, p in equipment["candidates"][:3])
        return f"Internal fault, {what}, unit uncertain: {shown}"
    return f"Internal fault, {what}, in the {_SHORT_EQUIPMENT[equipment['value']]} ({100 * equipment['probability']:.0f} %)"


# -- calibration -----------------------------------------------------------------------------------
#: calibration.json key of the per-label logit offsets (the training prior's correction), and every
#: key that goes with it (written together, removed together)
LOGIT_OFFSETS_KEY = "logit_offsets"
LOGIT_OFFSETS_NOTE_KEY = "logit_offsets_note"
LOGIT_OFFSET_KEYS = (LOGIT_OFFSETS_KEY, LOGIT_OFFSETS_NOTE_KEY)


def prior_correction(counts: np.ndarray) -> np.ndarray:
    """Per-label logit offsets that undo an unequal number of training windows per label.

    A network trained on n_y windows of label y learns p_train(y | x) proportional to p(x | y) n_y;
    adding log(n_min / n_y) to its logits gives the posterior under equal label priors (post-hoc
    logit adjustment: Menon et al., "Long-tail learning via logit adjustment", ICLR 2021). Training
    with three times the windows per transient label (more variety per kind) would otherwise tilt
    every ambiguous window towards a transient. Labels without windows get 0.
    """
    counts = np.asarray(counts, dtype=np.float64)
    present = counts > 0
    if not present.any():
        return np.zeros_like(counts)
    return np.where(present, np.log(counts[present].min()) - np.log(np.where(present, counts, 1.0)), 0.0)


def fit_kind_temperature(logits: np.ndarray, y: np.ndarray, labels: tuple[str, ...]) -> float:
    """Temperature minimising the kind-level negative log-likelihood on validation windows."""
    structure = level_structure(tuple(labels))
    true_kind = structure.kind_of_label[np.asarray(y)]

    def nll(t: float) -> float:
        p = _softmax(np.asarray(logits, dtype=np.float64) / t) @ structure.label_kind
        return float(-np.log(np.clip(p[np.arange(len(y)), true_kind], 1e-12, 1.0)).mean())

    return _golden_minimum(nll)


def fit_equipment_temperature(logits: np.ndarray, y: np.ndarray, labels: tuple[str, ...]) -> float:
    """Temperature minimising -log p(true equipment | true kind) over internal-fault windows."""
    structure = level_structure(tuple(labels))
    y = np.asarray(y)
    internal = np.array([label_parts(labels[i]).category == "internal_fault" for i in y])
    logits, y = np.asarray(logits, dtype=np.float64)[internal], y[internal]
    kinds = structure.kind_of_label[y]
    same_kind = structure.kind_of_label[None, :] == kinds[:, None]  # (n, n_labels)

    def nll(t: float) -> float:
        scaled = np.where(same_kind, logits / t, -np.inf)
        scaled -= scaled.max(axis=1, keepdims=True)
        log_norm = np.log(np.exp(scaled).sum(axis=1))
        return float(-(scaled[np.arange(len(y)), y] - log_norm).mean())

    return _golden_minimum(nll, high=50.0)


def _golden_minimum(function, low: float = 0.05, high: float = 20.0, steps: int = 60) -> float:
    """Minimum of a unimodal function of the temperature, searched on a log scale."""
    a, b = np.log(low), np.log(high)
    ratio = (np.sqrt(5.0) - 1.0) / 2.0
    c, d = b - ratio * (b - a), a + ratio * (b - a)
    fc, fd = function(float(np.exp(c))), function(float(np.exp(d)))
    for _ in range(steps):
        if fc < fd:
            b, d, fd = d, c, fc
            c = b - ratio * (b - a)
            fc = function(float(np.exp(c)))
        else:
            a, c, fc = c, d, fd
            d = a + ratio * (b - a)
            fd = function(float(np.exp(d)))
    return float(np.exp((a + b) / 2.0))
