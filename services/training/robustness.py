"""How the classifier holds up when a recording differs from the simulator in physically plausible ways.

Real records are not our simulator's output: they carry more noise, CTs of slightly different
ratio per phase, the opposite polarity convention, the event earlier or later in the window, and
the faulted phase may be any of the three. Each perturbation below is one of those, applied to a
fresh simulated set; for a cyclic phase rotation (A->B->C, which keeps the positive sequence and
every unit's connection, so the physics is unchanged) the expected label rotates with it
(an AG fault becomes BG, AC becomes AB). A model that learned the physics keeps its accuracy;
one that learned the generator's habits does not.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from services.labels import FAULT_KINDS, LABEL_TO_ID, LABELS, label_parts
from services.waveform import SAMPLES_PER_CYCLE

#: fault kind -> the kind it becomes when the recorder's phases are rotated A->B, B->C, C->A
_ROTATED_KIND = {
    "AG": "BG", "BG": "CG", "CG": "AG", "ABG": "BCG", "ACG": "ABG", "BCG": "ACG", "ABCG": "ABCG",
    "AB": "BC", "AC": "AB", "BC": "AC", "ABC": "ABC",
}
_SUFFIX_OF_KIND = {kind: suffix for suffix, kind in FAULT_KINDS.items()}
_CYCLE = int(round(SAMPLES_PER_CYCLE))


def rotated_label_id(label_id: int) -> int:
    """The label of an event whose phases were rotated A->B->C (faults move phase; others stay)."""
    label = LABELS[label_id]
    parts = label_parts(label)
    if parts.fault_suffix is None or FAULT_KINDS[parts.fault_suffix] not in _ROTATED_KIND:
        return label_id
    stem = label[: -len(parts.fault_suffix)]
    return LABEL_TO_ID[stem + _SUFFIX_OF_KIND[_ROTATED_KIND[FAULT_KINDS[parts.fault_suffix]]]]


def rotate_phases(x: np.ndarray) -> np.ndarray:
    """Channel A holds what C held, B what A held, C what B held: a fault on A now shows on B."""
    return np.asarray(x)[:, [2, 0, 1], :]


def delay(x: np.ndarray, samples: int) -> np.ndarray:
    """The event `samples` later (negative: earlier) in the window.

    The samples uncovered at the start repeat the first cycle backwards (the pre-event state is
    periodic); those at the end repeat the last cycle forwards.
    """
    x = np.asarray(x)
    length = x.shape[-1]
    if samples == 0:
        return x.copy()
    if samples > 0:
        head = x[..., (np.arange(samples) - samples) % _CYCLE]
        return np.concatenate([head, x[..., : length - samples]], axis=-1)
    shift = -samples
    tail = x[..., length - _CYCLE + np.arange(shift) % _CYCLE]
    return np.concatenate([x[..., shift:], tail], axis=-1)


def perturbations(seed: int) -> dict[str, Callable[[np.ndarray], np.ndarray]]:
    """Name -> transform of a (n, 3, 726) batch; random parts are drawn from `seed`."""

    def noise(relative: float) -> Callable[[np.ndarray], np.ndarray]:
        def add(x: np.ndarray) -> np.ndarray:
            rng = np.random.default_rng(seed)
            peak = np.abs(x).max(axis=(1, 2), keepdims=True)
            return x + rng.normal(0.0, 1.0, x.shape) * relative * peak
        return add

    def ct_mismatch(x: np.ndarray) -> np.ndarray:
        rng = np.random.default_rng(seed + 1)
        return x * rng.uniform(0.9, 1.1, (x.shape[0], 3, 1))

    return {
        "white noise 1 % of peak": noise(0.01),
        "white noise 2 % of peak": noise(0.02),
        "polarity reversed": lambda x: -x,
        "CT ratio mismatch up to 10 % per phase": ct_mismatch,
        "event 5 ms later": lambda x: delay(x, 50),
        "event 5 ms earlier": lambda x: delay(x, -50),
        "phases rotated A->B->C": rotate_phases,
    }


def robustness_report(
    classify: Callable[[np.ndarray], np.ndarray], X: np.ndarray, y: np.ndarray, seed: int
) -> dict[str, dict[str, float]]:
    """Accuracy and category accuracy of `classify` (windows -> label ids) on X under each perturbation."""
    y = np.asarray(y)
    categories = np.array([label_parts(label).category for label in LABELS])
    rotated = np.array([rotated_label_id(int(label_id)) for label_id in range(len(LABELS))])
    report: dict[str, dict[str, float]] = {}
    for name, transform in {"as simulated": lambda x: x, **perturbations(seed)}.items():
        expected = rotated[y] if name == "phases rotated A->B->C" else y
        predicted = np.asarray(classify(transform(np.asarray(X, dtype=np.float64))))
        report[name] = {
            "accuracy": float((predicted == expected).mean()),
            "category_accuracy": float((categories[predicted] == categories[expected]).mean()),
        }
    return report
