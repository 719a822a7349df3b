"""Dispatch from label to physics, parameter specs for the dashboard form, batch generation.

Randomness: every class draws from its own generator seeded with SeedSequence([seed, label_id]),
so a class's windows depend only on (seed, label, per_class), not on which other classes are
generated or in which order, and the same arguments give byte-identical output.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np

from services.labels import LABELS, label_parts, resolve_label
from services.simulation.common import STANDING_SPECS, Draws, ParameterSpec, to_float32
from services.simulation.faults import LOOP_X_OVER_R, RELAY_VIEWS, fault_specs, simulate_faults
from services.simulation.transients import TRANSIENT_SIMULATORS, TRANSIENT_SPECS

__all__ = ["LOOP_X_OVER_R", "RELAY_VIEWS", "all_parameter_specs", "class_generator", "generate_dataset",
           "parameter_specs", "resolve_classes", "simulate_event"]

#: the standing-current and measurement parameters every label accepts as overrides
_COMMON_SPECS: tuple[ParameterSpec, ...] = tuple(STANDING_SPECS.values())


def all_parameter_specs(label: str | int) -> list[ParameterSpec]:
    """Every overridable parameter of a label (form ones first): the one table of ranges that the
    physics draws from and that validation and the dashboard form read."""
    parts = label_parts(LABELS[resolve_label(label)])
    if parts.category == "transient":
        specs = list(TRANSIENT_SPECS[parts.kind])
    else:
        specs = fault_specs(parts.equipment, parts.kind)
    return specs + list(_COMMON_SPECS)


def parameter_specs(label: str | int) -> list[dict]:
    """Main physical parameters of a label's physics for the form: name, title, unit, min, max,
    default, step (the form subset of `all_parameter_specs`)."""
    return [spec.form_dict() for spec in all_parameter_specs(label) if spec.form]


def _validate_overrides(label: str, overrides: Mapping[str, Any]) -> dict[str, float]:
    specs = {spec.name: spec for spec in all_parameter_specs(label)}
    clean: dict[str, float] = {}
    for name, value in overrides.items():
        if name not in specs:
            raise ValueError(
                f"unknown parameter {name!r} for {label}: expected one of {', '.join(specs)}"
            )
        try:
            if isinstance(value, bool):
                raise TypeError
            number = float(value)
        except (TypeError, ValueError):
            raise ValueError(f"parameter {name!r} must be a number, got {value!r}") from None
        specs[name].check(number)
        clean[name] = number
    return clean


def _check_relay_view(relay_view: str | None) -> None:
    if relay_view is not None and relay_view not in RELAY_VIEWS:
        raise ValueError(f"relay_view must be one of {', '.join(RELAY_VIEWS)}, got {relay_view!r}")


def _simulate_batch(
    label_id: int, rng: np.random.Generator, n: int, overrides: Mapping[str, float],
    relay_view: str | None = None, pooled_units: bool = False,
) -> tuple[np.ndarray, list[dict]]:
    label = LABELS[label_id]
    parts = label_parts(label)
    draws = Draws(rng, n, overrides, relay_view, pooled_units)
    if parts.category == "transient":
        wave, columns = TRANSIENT_SIMULATORS[parts.kind](draws)
    else:
        wave, columns = simulate_faults(parts.equipment, parts.kind, draws)
    header = {"label": label, "label_id": label_id, "category": parts.category,
              "equipment": parts.equipment, "kind": parts.kind}
    return to_float32(wave), _rows(header, columns, n)


def _plain(value: Any) -> Any:
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float):
        return None if math.isnan(value) else round(value, 6)
    return value


def _rows(header: dict, columns: Mapping[str, np.ndarray], n: int) -> list[dict]:
    lists = {name: np.asarray(column).tolist() for name, column in columns.items()}
    rows = []
    for i in range(n):
        row = dict(header)
        for name, values in lists.items():
            row[name] = _plain(values[i])
        rows.append(row)
    return rows


def class_generator(seed: int, label_id: int) -> np.random.Generator:
    """Independent generator per (seed, class): classes do not depend on each other."""
    return np.random.default_rng(np.random.SeedSequence([int(seed), int(label_id)]))


def simulate_event(label: str | int, seed: int | None = None, *, relay_view: str | None = None,
                   **params: Any) -> tuple[np.ndarray, dict]:
    """One window (float32 (3, 726), kA) of `label` and the parameters actually used.

    Keyword parameters (names from `all_parameter_specs(label)`, the form shows
    `parameter_specs(label)`) replace the random draws; an unknown name or an out-of-range value
    raises ValueError naming the parameter. `relay_view` (one of RELAY_VIEWS) forces the relay view
    of the event (internal fault or transient; the standing current is balanced and not affected).
    """
    label_id = resolve_label(label)
    overrides = _validate_overrides(LABELS[label_id], params)
    _check_relay_view(relay_view)
    rng = np.random.default_rng() if seed is None else class_generator(seed, label_id)
    wave, rows = _simulate_batch(label_id, rng, 1, overrides, relay_view)
    return wave[0], rows[0]


def resolve_classes(classes: Iterable[str | int] | None) -> list[int]:
    """Label ids for `classes` (names or ids), in label-id order, without duplicates."""
    if classes is None:
        return list(range(len(LABELS)))
    return sorted({resolve_label(value) for value in classes})


def generate_dataset(
    per_class: int, seed: int, classes: Sequence[str | int] | None = None, progress: bool = False,
    relay_view: str | None = None, pooled_units: bool = False,
) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """`per_class` windows of each class: X float32 (n, 3, 726) in kA, y int64 (n,), params (JSON).

    `relay_view` (one of RELAY_VIEWS) forces that relay view for every window, internal faults AND
    transients (the relay's compensation acts on every current in its zone; a validation set with
    the views swapped); None draws the mixture. All other draws are the same whatever `relay_view`
    is (the view's random numbers are drawn either way). `pooled_units` draws every fault window's
    unit-specific physics as a random unit's (calibration of the unit level; labels unchanged).
    """
    if isinstance(per_class, bool) or not isinstance(per_class, (int, np.integer)) or per_class < 1:
        raise ValueError(f"per_class must be a whole number >= 1, got {per_class!r}")
    _check_relay_view(relay_view)
    ids = resolve_classes(classes)
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=len(ids) * per_class, unit="window", desc="simulating")
    waves, labels, params = [], [], []
    try:
        for label_id in ids:
            wave, rows = _simulate_batch(label_id, class_generator(seed, label_id), int(per_class), {},
                                         relay_view, pooled_units)
            waves.append(wave)
            labels.append(np.full(per_class, label_id, dtype=np.int64))
            params.extend(json.dumps(row, sort_keys=True) for row in rows)
            if bar is not None:
                bar.update(per_class)
    finally:
        if bar is not None:
            bar.close()
    return np.concatenate(waves), np.concatenate(labels), params
