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
from services.simulation.common import WINDOW_MS, Draws, to_float32
from services.simulation.faults import LOOP_X_OVER_R, simulate_faults
from services.simulation.transients import TRANSIENT_SIMULATORS

_INCEPTION = {"name": "inception_ms", "title": "Event inception", "unit": "ms",
              "min": 0.0, "max": round(0.6 * WINDOW_MS, 2), "default": 10.0, "step": 0.1}


def _spec(name: str, title: str, unit: str, low: float, high: float, default: float, step: float) -> dict:
    return {"name": name, "title": title, "unit": unit, "min": low, "max": high,
            "default": default, "step": step}


_RESISTANCE = _spec("fault_resistance_ohm", "Fault resistance", "ohm", 0.01, 100.0, 1.0, 0.01)
_WINDING = _spec("winding_percent", "Winding involved", "%", 5.0, 100.0, 50.0, 1.0)
_TURNS = _spec("shorted_turns_percent", "Shorted turns", "%", 1.0, 20.0, 5.0, 0.5)
_TAP = _spec("tap_position", "Regulator tap position", "step", -16.0, 16.0, 8.0, 1.0)
_LOADING = _spec("loading_percent", "Transformer loading", "%", 20.0, 110.0, 80.0, 1.0)

_TRANSIENT_SPECS: dict[str, list[dict]] = {
    "magnetising_inrush": [
        _spec("switching_angle_deg", "Voltage angle at energisation", "deg", 0.0, 360.0, 0.0, 1.0),
        _spec("remanence_percent", "Core remanence", "% of rated flux", 0.0, 80.0, 50.0, 1.0),
        _spec("saturation_flux_pu", "Saturation (knee) flux", "pu", 1.05, 1.4, 1.2, 0.01),
        _spec("decay_time_constant_ms", "Inrush decay time constant", "ms", 40.0, 300.0, 150.0, 5.0),
        _INCEPTION,
    ],
    "sympathetic_inrush": [
        _spec("dc_flux_offset_pu", "DC flux offset reached", "pu", 0.35, 0.9, 0.6, 0.01),
        _spec("build_up_time_ms", "Build-up time constant", "ms", 15.0, 50.0, 25.0, 0.5),
        _spec("saturation_flux_pu", "Saturation (knee) flux", "pu", 1.0, 1.2, 1.1, 0.01),
        _spec("switching_angle_deg", "Neighbour's energisation angle", "deg", 0.0, 360.0, 0.0, 1.0),
        _INCEPTION,
    ],
    "capacitor_switching": [
        _spec("resonant_frequency_hz", "Resonant frequency 1/(2 pi sqrt(LC))", "Hz", 250.0, 1200.0, 500.0, 5.0),
        _spec("damping_time_constant_ms", "Damping time constant", "ms", 2.0, 15.0, 6.0, 0.5),
        _spec("steady_current", "Bank steady-state current", "", 0.1, 1.5, 0.5, 0.01),
        _spec("switching_angle_deg", "Voltage angle at closing", "deg", 0.0, 360.0, 90.0, 1.0),
        _INCEPTION,
    ],
    "external_fault_ct_saturation": [
        _spec("fault_current", "Through-fault current", "", 15.0, 60.0, 30.0, 0.5),
        _spec("x_over_r", "System X/R (DC offset decay)", "", 10.0, 40.0, 25.0, 0.5),
        _spec("saturation_factor", "CT knee / symmetrical flux", "", 1.2, 40.0, 4.0, 0.1),
        _spec("remanence_percent", "CT remanence", "% of knee", -80.0, 80.0, 0.0, 1.0),
        _INCEPTION,
    ],
    "ferroresonance": [
        _spec("mode_index", "Mode (0 fundamental, 1 30 Hz, 2 20 Hz, 3 chaotic)", "", 0.0, 3.0, 2.0, 1.0),
        _spec("flux_peak_pu", "Peak core flux", "pu", 1.05, 1.5, 1.3, 0.01),
        _spec("peak_current", "Peak current", "", 0.8, 12.0, 4.0, 0.1),
        _INCEPTION,
    ],
    "non_linear_load_switching": [
        _spec("load_current", "Rectifier load current (fundamental)", "", 0.2, 3.0, 1.0, 0.05),
        _spec("commutation_overlap_deg", "Commutation overlap", "deg", 5.0, 30.0, 15.0, 0.5),
        _spec("rise_time_ms", "Current rise time constant", "ms", 0.5, 5.0, 2.0, 0.1),
        _INCEPTION,
    ],
}
_INTEGER_PARAMS = {"tap_position", "mode_index"}


def parameter_specs(label: str | int) -> list[dict]:
    """Main physical parameters of a label's physics: name, title, unit, min, max, default, step."""
    parts = label_parts(LABELS[resolve_label(label)])
    if parts.category == "transient":
        specs = _TRANSIENT_SPECS[parts.kind]
    else:
        size = _TURNS if parts.kind == "turn-to-turn" else _WINDING
        fourth = _LOADING if parts.equipment == "power_transformer" else _TAP
        low, high = LOOP_X_OVER_R[parts.equipment]
        x_over_r = _spec("x_over_r", "Fault-loop X/R (DC offset decay)", "", low, high,
                         round((low + high) / 2.0, 1), 0.1)
        specs = [_RESISTANCE, size, _INCEPTION, x_over_r, fourth]
    return [dict(spec) for spec in specs]


def _validate_overrides(label: str, overrides: Mapping[str, Any]) -> dict[str, float]:
    specs = {spec["name"]: spec for spec in parameter_specs(label)}
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
        spec = specs[name]
        if not math.isfinite(number) or not spec["min"] <= number <= spec["max"]:
            raise ValueError(
                f"parameter {name!r} = {value!r} is out of range [{spec['min']}, {spec['max']}]"
            )
        if name in _INTEGER_PARAMS and number != round(number):
            raise ValueError(f"parameter {name!r} must be a whole number, got {value!r}")
        clean[name] = number
    return clean


def _simulate_batch(
    label_id: int, rng: np.random.Generator, n: int, overrides: Mapping[str, float]
) -> tuple[np.ndarray, list[dict]]:
    label = LABELS[label_id]
    parts = label_parts(label)
    draws = Draws(rng, n, overrides)
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


def simulate_event(label: str | int, seed: int | None = None, **params: Any) -> tuple[np.ndarray, dict]:
    """One window (float32 (3, 726)) of `label` and the parameters actually used.

    Keyword parameters (names from `parameter_specs(label)`) replace the random draws; an unknown
    name or an out-of-range value raises ValueError naming the parameter.
    """
    label_id = resolve_label(label)
    overrides = _validate_overrides(LABELS[label_id], params)
    rng = np.random.default_rng() if seed is None else class_generator(seed, label_id)
    wave, rows = _simulate_batch(label_id, rng, 1, overrides)
    return wave[0], rows[0]


def resolve_classes(classes: Iterable[str | int] | None) -> list[int]:
    """Label ids for `classes` (names or ids), in label-id order, without duplicates."""
    if classes is None:
        return list(range(len(LABELS)))
    return sorted({resolve_label(value) for value in classes})


def generate_dataset(
    per_class: int, seed: int, classes: Sequence[str | int] | None = None, progress: bool = False
) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """`per_class` windows of each class: X float32 (n, 3, 726), y int64 (n,), params (JSON strings)."""
    if isinstance(per_class, bool) or not isinstance(per_class, (int, np.integer)) or per_class < 1:
        raise ValueError(f"per_class must be a whole number >= 1, got {per_class!r}")
    ids = resolve_classes(classes)
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=len(ids) * per_class, unit="window", desc="simulating")
    waves, labels, params = [], [], []
    try:
        for label_id in ids:
            wave, rows = _simulate_batch(label_id, class_generator(seed, label_id), int(per_class), {})
            waves.append(wave)
            labels.append(np.full(per_class, label_id, dtype=np.int64))
            params.extend(json.dumps(row, sort_keys=True) for row in rows)
            if bar is not None:
                bar.update(per_class)
    finally:
        if bar is not None:
            bar.close()
    return np.concatenate(waves), np.concatenate(labels), params
