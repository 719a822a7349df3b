"""Whole-cycle DC evidence (services.inference.dc_evidence): the feature, the reweighting, the artifact."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from services.inference.dc_evidence import LOG10_EDGES, DcEvidence, fit_dc_evidence, whole_cycle_dc_share
from services.inference.levels import label_probabilities, marginals
from services.labels import KINDS, LABEL_TO_ID, LABELS

T = np.arange(726) / 1e4
SHIFT = np.array([0.0, -2 * np.pi / 3, 2 * np.pi / 3])
FERRO = LABEL_TO_ID["transient_ferroresonance"]
INRUSH = LABEL_TO_ID["transient_magnetising_inrush"]
PT_AG = LABEL_TO_ID["internal_power_transformer_internal_faults_Class1"]


def _phases(frequency: float, harmonic: float = 0.0) -> np.ndarray:
    theta = 2 * np.pi * frequency * T[None, :] + SHIFT[:, None]
    return np.cos(theta) + harmonic * np.cos(3 * theta)


def _inrush() -> np.ndarray:
    """Unipolar pulses: the flux 0.8 + sin, current only above a knee of 1.2 (Blackburn & Domin ch. 9)."""
    flux = 0.8 + np.sin(2 * np.pi * 60 * T[None, :] + SHIFT[:, None])
    return 5.0 * np.maximum(flux - 1.2, 0.0)


def test_dce001_periodic_states_have_no_whole_cycle_dc_and_inrush_has_much():
    periodic = np.stack([_phases(60.0), _phases(30.0, 0.4), _phases(20.0, 0.2), np.sign(_phases(60.0))])
    assert (whole_cycle_dc_share(periodic) < 0.01).all()
    assert whole_cycle_dc_share(_inrush()[None])[0] > 0.2
    assert whole_cycle_dc_share(np.zeros((1, 3, 726)))[0] == 0.0


def _evidence() -> DcEvidence:
    """Ferroresonance lives in the low-DC bins, inrush in the high ones; the rest flat."""
    bins = len(LOG10_EDGES) - 1
    kinds = ("ferroresonance", "magnetising_inrush", "capacitor_switching")
    rising = np.linspace(1.0, 20.0, bins)
    rows = np.stack([rising[::-1], rising, np.ones(bins)])
    return DcEvidence(kinds, rows / rows.sum(axis=1, keepdims=True), 300)


def test_dce002_reweighting_moves_mass_only_among_the_transients():
    logits = np.full((2, len(LABELS)), -5.0)
    logits[:, FERRO] = 2.0
    logits[:, INRUSH] = 2.2
    logits[:, PT_AG] = 1.0
    windows = np.stack([_phases(60.0, 0.5), _inrush()])
    before = label_probabilities(logits, LABELS, 1.0, 1.0)
    after = _evidence().reweight(before, LABELS, windows)
    category_before = marginals(before, LABELS)["category"]
    np.testing.assert_allclose(marginals(after, LABELS)["category"], category_before, atol=1e-12)
    np.testing.assert_allclose(after[:, PT_AG], before[:, PT_AG])
    np.testing.assert_allclose(after.sum(axis=1), 1.0, atol=1e-12)
    kind = marginals(after, LABELS)["kind"]
    assert KINDS[int(kind[0].argmax())] == "ferroresonance"  # a periodic window: no inrush
    assert KINDS[int(kind[1].argmax())] == "magnetising_inrush"
    assert after[0, INRUSH] < before[0, INRUSH] and after[1, FERRO] < before[1, FERRO]


def test_dce003_fitted_evidence_round_trips_and_malformed_entries_are_refused():
    windows = np.stack([_phases(60.0, 0.3)] * 5 + [_inrush()] * 5 + [_phases(60.0)] * 2)
    labels = ["transient_ferroresonance"] * 5 + ["transient_magnetising_inrush"] * 5 + [LABELS[PT_AG]] * 2
    evidence = fit_dc_evidence(windows, labels)
    assert evidence is not None and evidence.kinds == ("ferroresonance", "magnetising_inrush")
    assert evidence.windows == 10
    np.testing.assert_allclose(evidence.likelihood.sum(axis=1), 1.0)
    assert evidence.likelihood[0, 0] > evidence.likelihood[0, -1]  # ferroresonance: no DC
    assert evidence.likelihood[1, -2] > evidence.likelihood[1, 0]  # inrush: much DC
    again = DcEvidence.from_dict(json.loads(json.dumps(evidence.to_dict())))
    np.testing.assert_allclose(again.likelihood, evidence.likelihood, atol=1e-5)
    assert fit_dc_evidence(windows[-2:], labels[-2:]) is None  # faults only: nothing to fit
    good = evidence.to_dict()
    for broken in ({**good, "likelihood": [[1.0, 2.0]]}, {**good, "log10_edges": [0.0, 1.0]},
                   {**good, "likelihood": np.zeros_like(evidence.likelihood).tolist()}, {**good, "kinds": []}, []):
        with pytest.raises(ValueError):
            DcEvidence.from_dict(broken)


def test_dce004_the_predictor_applies_the_folders_evidence_and_refuses_a_corrupt_one(artifacts_copy, tmp_path,
                                                                                   monkeypatch):
    from services.inference.artifacts import ModelUnavailable
    from services.inference.predictor import Predictor

    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    predictor = Predictor(artifacts_copy, backend="torch")
    assert predictor.dc_evidence is not None
    rng = np.random.default_rng(3)
    windows = np.concatenate([0.3 * _phases(60.0, 0.4)[None], _inrush()[None],
                              0.1 * rng.standard_normal((2, 3, 726))]).astype(np.float32)
    expected = predictor.dc_evidence.reweight(predictor._calibrated_without_evidence(predictor.logits(windows)),
                                              predictor.labels, windows)
    np.testing.assert_allclose(predictor.probabilities(windows), expected, atol=1e-6)
    answers = predictor.predict_batch(windows, explain=False)
    assert [a.label_id for a in answers] == expected.argmax(axis=1).tolist()

    folder = tmp_path / "corrupt"
    shutil.copytree(artifacts_copy, folder, ignore=shutil.ignore_patterns("*.onnx*"))
    calibration = json.loads((folder / "calibration.json").read_text())
    calibration["dc_evidence"]["likelihood"] = [[1.0]]
    (folder / "calibration.json").write_text(json.dumps(calibration))
    with pytest.raises(ModelUnavailable, match="dc_evidence"):
        Predictor(folder, backend="torch")
    del calibration["dc_evidence"]
    (folder / "calibration.json").write_text(json.dumps(calibration))
    assert Predictor(folder, backend="torch").dc_evidence is None


def test_dce005_shipped_evidence_reads_independent_ferroresonance_as_ferroresonance_more_often(tmp_path,
                                                                                              monkeypatch):
    """On windows written apart from the simulator (services.shiftset), zero-mean ferroresonance
    the network alone reads as inrush is moved back; the category is untouched."""
    from services.inference.predictor import Predictor
    from services.shiftset import generate_class

    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    predictor = Predictor(backend="torch")
    windows, _ = generate_class(FERRO, 120, seed=11)
    logits = predictor.logits(windows)
    plain = predictor._calibrated_without_evidence(logits)
    weighed = predictor.probabilities(windows)
    ferro = KINDS.index("ferroresonance")
    right_plain = (marginals(plain, predictor.labels)["kind"].argmax(axis=1) == ferro).sum()
    right_weighed = (marginals(weighed, predictor.labels)["kind"].argmax(axis=1) == ferro).sum()
    assert right_weighed >= right_plain + 5
    np.testing.assert_allclose(marginals(weighed, predictor.labels)["category"],
                               marginals(plain, predictor.labels)["category"], atol=1e-9)
