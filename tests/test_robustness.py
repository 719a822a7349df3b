"""Physically plausible departures from the simulator, and the report of the model under them."""

from __future__ import annotations

import numpy as np
import pytest

from services.labels import LABEL_TO_ID, LABELS, label_parts
from services.training.robustness import delay, robustness_report, rotate_phases, rotated_label_id
from services.waveform import SAMPLES_PER_CYCLE


def _label(equipment_prefix: str, suffix: str) -> int:
    return LABEL_TO_ID[next(label for label in LABELS if label.startswith(equipment_prefix) and label.endswith(suffix))]


@pytest.mark.parametrize(
    ("suffix", "rotated"),
    [("Class1", "Class2"), ("Class2", "Class3"), ("Class3", "Class1"), ("Class5", "Class4"),
     ("Class9", "Class8"), ("class10", "Class9"), ("class11", "class11"), ("Class7", "Class7"), ("tt", "tt")],
)
def test_rob001_fault_labels_rotate_with_the_phases(suffix, rotated):
    for prefix in ("internal_power_transformer", "internal_ispar_series", "internal_ispar_exciting"):
        assert rotated_label_id(_label(prefix, "_" + suffix)) == _label(prefix, "_" + rotated)


def test_rob002_three_rotations_are_the_identity_and_transients_never_move():
    for label_id in range(len(LABELS)):
        assert rotated_label_id(rotated_label_id(rotated_label_id(label_id))) == label_id
        if label_parts(LABELS[label_id]).category == "transient":
            assert rotated_label_id(label_id) == label_id
    x = np.arange(3 * 726, dtype=float).reshape(1, 3, 726)
    np.testing.assert_array_equal(rotate_phases(x)[0, 1], x[0, 0])  # what A held now shows on B


def test_rob003_delay_moves_the_event_and_fills_with_whole_cycles():
    t = np.arange(726) / 10_000.0
    pre = np.sin(2 * np.pi * 60 * t)
    x = np.stack([pre, pre, pre])[None].copy()
    x[..., 300:] += 5.0  # a step at 30 ms
    later = delay(x, 50)
    assert np.argmax(np.abs(np.diff(later[0, 0])) > 2) == 349  # the step now at 35 ms
    cycle = int(round(SAMPLES_PER_CYCLE))
    np.testing.assert_allclose(later[0, 0, :50], x[0, 0, cycle - 50:cycle])  # the periodic pre-event state
    earlier = delay(x, -50)
    assert np.argmax(np.abs(np.diff(earlier[0, 0])) > 2) == 249
    assert earlier.shape == x.shape and np.array_equal(delay(x, 0), x)


def test_rob004_report_scores_each_perturbation_against_the_right_labels():
    """A classifier that reads the faulted phase off the channel with the largest signal is exactly
    right on rotated windows only if the report expects the rotated labels."""
    ag, bg, cg = (_label("internal_power_transformer", s) for s in ("_Class1", "_Class2", "_Class3"))
    X = np.zeros((3, 3, 726))
    for phase in range(3):
        X[phase, phase] = np.sin(np.linspace(0, 20, 726)) * 10
    y = np.array([ag, bg, cg])

    def loudest_phase(windows: np.ndarray) -> np.ndarray:
        return np.array([(ag, bg, cg)[int(np.argmax(np.abs(w).max(axis=1)))] for w in windows])

    report = robustness_report(loudest_phase, X, y, seed=1)
    assert report["as simulated"]["accuracy"] == 1.0
    assert report["phases rotated A->B->C"]["accuracy"] == 1.0
    assert report["polarity reversed"]["accuracy"] == 1.0
    assert set(report) >= {"white noise 1 % of peak", "CT ratio mismatch up to 10 % per phase", "event 5 ms later"}
    always_ag = robustness_report(lambda w: np.full(len(w), ag), X, y, seed=1)
    assert always_ag["as simulated"]["accuracy"] == pytest.approx(1 / 3)
    assert always_ag["phases rotated A->B->C"]["category_accuracy"] == 1.0
