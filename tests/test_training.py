"""Training pipeline: a tiny end-to-end run, calibration, augmentation, metrics, garbage suite."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from services.inference import get_predictor
from services.inference.connections import RELAY_CONNECTIONS
from services.labels import LABEL_TO_ID, LABELS
from services.training.__main__ import main as training_main
from services.training.augment import AugmentConfig, augment_batch
from services.training.evaluate import main as evaluate_main
from services.training.garbage import FAMILIES, garbage_suite
from services.training.metrics import (
    calibration_report,
    classification_report,
    expected_calibration_error,
    fit_temperature,
    reliability_bins,
    softmax,
)
from services.training.pipeline import normalization_stats

T = np.arange(726) / 10_000.0
SHIFTS = np.array([0.0, -2.0 * np.pi / 3.0, 2.0 * np.pi / 3.0])[:, None]


def _synthetic_event(rng: np.random.Generator, phases: tuple[float, float, float]) -> np.ndarray:
    inception = rng.uniform(0.005, 0.03)
    wave = 0.01 * np.sin(2 * np.pi * 60 * T[None, :] + SHIFTS)
    wave += rng.uniform(0.5, 2.0) * np.asarray(phases)[:, None] * np.sin(
        2 * np.pi * 60 * T[None, :] + SHIFTS + rng.uniform(0, 2 * np.pi)) * (inception <= T)
    return (wave + rng.normal(0, 0.002, wave.shape)).astype(np.float32)


@pytest.fixture(scope="module")
def labelled_folder(tmp_path_factory):
    """Three labels of synthetic 60 Hz faults laid out as the original data set (folder per label)."""
    root = tmp_path_factory.mktemp("labelled")
    rng = np.random.default_rng(0)
    for label_id, phases in ((26, (1.0, 0.0, 0.0)), (27, (0.0, 1.0, 0.0)), (36, (1.0, 1.0, 1.0))):
        folder = root / LABELS[label_id]
        folder.mkdir()
        for i in range(12):
            np.save(folder / f"{i}.npy", _synthetic_event(rng, phases))
    return root


def test_train001_tiny_run_writes_loadable_artifacts(tmp_path, labelled_folder, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path / "home"))  # the ONNX cache's default folder
    out = tmp_path / "artifacts"
    code = training_main(["--data", str(labelled_folder), "--out", str(out), "--epochs", "2", "--batch-size", "8",
                          "--garbage-per-family", "2", "--no-progress", "--threads", "2",
                          "--connection-heads-per-class", "1"])
    assert code == 0
    for name in ("best_model.pth", "labels.json", "normalization_stats.npz", "fault_descriptions.json",
                 "model_card.json", "calibration.json", "unknown_detector.npz"):
        assert (out / name).is_file(), name
    state = torch.load(out / "best_model.pth", weights_only=True)
    assert all(t.device.type == "cpu" for t in state.values())
    assert state["f.0.weight"].dtype == torch.float32
    stats = np.load(out / "normalization_stats.npz")
    assert stats["mean"].shape == (1, 3, 1) and stats["std"].dtype == np.float32
    descriptions = json.loads((out / "fault_descriptions.json").read_text())
    assert set(descriptions) == set(LABELS) | {"DEFAULT"}
    card = json.loads((out / "model_card.json").read_text())
    for key in ("training_data", "seed", "epochs_run", "duration_s", "temperature", "unknown_detection"):
        assert key in card
    for key in ("accuracy", "macro_f1", "category_accuracy", "ece_before_calibration", "ece_after_calibration",
                "per_label_recall", "confusion_matrix"):
        assert key in card["test"]
    assert card["command"].startswith("python -m services.training --data")
    reliability = card["test"]["reliability"]  # the Model page's reliability diagram
    for key, ece in (("before", "ece_before_calibration"), ("after", "ece_after_calibration")):
        assert sum(reliability[key]["count"]) == card["test"]["windows"]
        assert reliability[key]["ece"] == pytest.approx(card["test"][ece])
    assert reliability["temperature"] == pytest.approx(card["temperature"])
    predictor = get_predictor(out)
    assert predictor.model_card["seed"] == card["seed"]
    assert predictor.temperature == pytest.approx(card["temperature"])
    calibration = json.loads((out / "calibration.json").read_text())
    assert calibration["temperature_kind"] > 0 and card["level_temperatures"]["equipment"] > 0
    assert predictor.temperature_kind == pytest.approx(calibration["temperature_kind"])
    assert predictor.temperature_equipment == pytest.approx(card["level_temperatures"]["equipment"])
    prediction = predictor.predict(np.load(labelled_folder / LABELS[26] / "0.npy"))
    assert prediction.label in LABELS
    assert set(prediction.levels) == {"category", "kind", "phases", "equipment"} and prediction.headline
    # one head per stated relay connection, fitted over the network just trained
    assert set(predictor.connection_heads.heads) == set(card["connection_heads"]["heads"]) == set(RELAY_CONNECTIONS)
    stated = predictor.predict(np.load(labelled_folder / LABELS[26] / "0.npy"), relay_connection="delta_tied")
    assert stated.relay_connection == "delta_tied"
    # faults only: no transient windows to fit the DC evidence on, so none is written or applied
    assert "dc_evidence" not in calibration and card["dc_evidence"] is None and predictor.dc_evidence is None


def test_train017_training_fits_the_dc_evidence_on_its_transient_windows(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    rng = np.random.default_rng(1)
    root = tmp_path / "labelled"
    inrush = "transient_magnetising_inrush"
    for label, make in ((LABELS[26], lambda: _synthetic_event(rng, (1.0, 0.0, 0.0))),
                        (inrush, lambda: np.maximum(0.8 + np.sin(2 * np.pi * 60 * T[None, :] + SHIFTS
                                                                 + rng.uniform(0, 6.3)) - 1.2, 0.0).astype(np.float32))):
        (root / label).mkdir(parents=True)
        for i in range(12):
            np.save(root / label / f"{i}.npy", make())
    out = tmp_path / "artifacts"
    out.mkdir()
    (out / "connection_heads.npz").write_bytes(b"left by an earlier run")
    assert training_main(["--data", str(root), "--out", str(out), "--epochs", "1", "--batch-size", "8",
                          "--garbage-per-family", "2", "--no-progress", "--threads", "2",
                          "--connection-heads-per-class", "0"]) == 0
    assert not (out / "connection_heads.npz").exists()  # none fitted, and no stale one kept
    calibration = json.loads((out / "calibration.json").read_text())
    assert calibration["dc_evidence"]["kinds"] == ["magnetising_inrush"]
    assert calibration["dc_evidence"]["windows"] == 8  # the 70 % training split of 12 windows
    card = json.loads((out / "model_card.json").read_text())
    assert card["dc_evidence"]["fitted_on"] == "8 transient windows of the training split"
    assert get_predictor(out).dc_evidence is not None


def test_train002_training_cli_refuses_bad_folder(tmp_path, capsys):
    assert training_main(["--data", str(tmp_path / "absent"), "--out", str(tmp_path / "out"), "--no-progress"]) == 2
    assert "not a folder" in capsys.readouterr().err
    assert not (tmp_path / "out" / "best_model.pth").exists()


def test_train003_temperature_scaling_lowers_ece_of_an_overconfident_model():
    rng = np.random.default_rng(0)
    n, classes = 4000, 10
    targets = rng.integers(0, classes, n)
    predicted = np.where(rng.random(n) < 0.8, targets, rng.integers(0, classes, n))
    logits = rng.normal(0, 0.3, (n, classes))
    logits[np.arange(n), predicted] += 12.0  # ~100 % confident, ~82 % right
    fit, held_out = slice(0, 2000), slice(2000, None)
    temperature = fit_temperature(logits[fit], targets[fit])
    before = expected_calibration_error(softmax(logits[held_out]), targets[held_out])
    after = expected_calibration_error(softmax(logits[held_out] / temperature), targets[held_out])
    assert temperature > 1.5
    assert before > 0.1 and after < 0.5 * before and after < 0.05


def test_train004_classification_report_figures():
    labels = LABELS[:3]
    targets = np.array([0, 0, 1, 1, 2, 2])
    probabilities = np.eye(3)[[0, 0, 1, 2, 2, 2]]
    report = classification_report(targets, probabilities, labels)
    assert report["accuracy"] == pytest.approx(5 / 6)
    assert report["per_label_recall"][labels[1]] == pytest.approx(0.5)
    assert report["macro_f1"] == pytest.approx((1.0 + 2 / 3 + 0.8) / 3)
    assert report["confusion_matrix"][1][2] == 1


def test_train005_augmentation_keeps_the_faulted_phase_and_the_phase_order():
    rng = np.random.default_rng(3)
    windows = np.stack([_synthetic_event(rng, (0.0, 1.0, 0.0)) for _ in range(64)])
    generator = torch.Generator().manual_seed(0)
    out = augment_batch(torch.from_numpy(windows), torch.ones(64, dtype=torch.bool), generator).numpy()
    energy = (out**2).sum(axis=2)
    assert (energy.argmax(axis=1) == 1).all()  # phase B stays the faulted phase
    assert not np.allclose(out, windows)


def test_train006_sign_flip_applies_to_all_phases_together():
    window = torch.from_numpy(np.stack([_synthetic_event(np.random.default_rng(4), (1.0, 0.5, 0.2))]))
    config = AugmentConfig(shift_probability=0.0, amplitude_range=(1.0, 1.0), gain_mismatch=0.0, max_delay=0.0,
                           noise_range=(1e-9, 1e-9), dc_offset=0.0, clearing_probability=0.0, flip_probability=1.0)
    out = augment_batch(window, torch.zeros(1, dtype=torch.bool), torch.Generator().manual_seed(0), config)
    torch.testing.assert_close(out, -window, atol=1e-6, rtol=0)


def test_train007_time_shift_moves_the_event_and_fills_from_the_quiet_cycle():
    window = torch.from_numpy(np.stack([_synthetic_event(np.random.default_rng(5), (1.0, 0.0, 0.0))] * 32))
    config = AugmentConfig(shift_probability=1.0, amplitude_range=(1.0, 1.0), gain_mismatch=0.0, max_delay=0.0,
                           noise_range=(1e-9, 1e-9), dc_offset=0.0, clearing_probability=0.0, flip_probability=0.0)
    out = augment_batch(window, torch.zeros(32, dtype=torch.bool), torch.Generator().manual_seed(1), config)
    moved = [not torch.allclose(o, window[0], atol=1e-6) for o in out]
    assert any(moved)
    assert (out.abs().amax(dim=(1, 2)) <= window.abs().amax() * 1.01).all()


def test_train008_normalisation_stats_have_the_contract_shape():
    X = np.random.default_rng(0).normal(2.0, 3.0, (50, 3, 726)).astype(np.float32)
    mean, std = normalization_stats(X)
    assert mean.shape == (1, 3, 1) and std.shape == (1, 3, 1) and mean.dtype == np.float32
    np.testing.assert_allclose(mean.ravel(), X.mean(axis=(0, 2)), rtol=1e-4)


def test_train009_garbage_suite_covers_every_family():
    events = np.stack([_synthetic_event(np.random.default_rng(i), (1.0, 0.0, 0.0)) for i in range(4)])
    X, families = garbage_suite(events, per_family=2, seed=0)
    assert X.shape == (2 * len(FAMILIES), 3, 726)
    assert set(families) == set(FAMILIES)


def test_train010_reliability_bins_use_the_ece_binning():
    probabilities = np.array([[0.62, 0.38], [0.62, 0.38], [0.95, 0.05], [0.99, 0.01]])
    targets = np.array([0, 1, 0, 0])  # the second 0.62 is wrong
    bins = reliability_bins(probabilities, targets)
    assert len(bins["count"]) == 15 and bins["count"][9] == 2 and bins["count"][14] == 2 and sum(bins["count"]) == 4
    assert bins["confidence"][9] == pytest.approx(0.62) and bins["accuracy"][9] == pytest.approx(0.5)
    assert bins["confidence"][14] == pytest.approx(0.97) and bins["accuracy"][14] == pytest.approx(1.0)
    assert bins["confidence"][0] is None and bins["accuracy"][0] is None  # empty bins have no mean
    assert bins["ece"] == pytest.approx(0.5 * 0.12 + 0.5 * 0.03)
    assert bins["ece"] == expected_calibration_error(probabilities, targets)


def test_train011_calibration_report_bins_raw_and_temperature_scaled_probabilities():
    rng = np.random.default_rng(3)
    targets = rng.integers(0, 4, 500)
    logits = rng.normal(0, 1.0, (500, 4))
    logits[np.arange(500), targets] += 2.0
    report = calibration_report(logits, targets, temperature=2.5)
    json.dumps(report)  # goes into model_card.json as it is
    assert report["bins"] == 15 and report["edges"][0] == 0.0 and report["edges"][-1] == 1.0
    assert len(report["edges"]) == 16 and report["windows"] == 500 and report["temperature"] == 2.5
    assert report["before"] == reliability_bins(softmax(logits), targets)
    assert report["after"]["ece"] == pytest.approx(expected_calibration_error(softmax(logits / 2.5), targets))
    # a higher temperature only lowers the confidences: same windows, same accuracy, lower mean confidence
    before, after = report["before"], report["after"]
    assert sum(after["count"]) == sum(before["count"]) == 500
    mean_confidence = [sum(n * c for n, c in zip(curve["count"], curve["confidence"], strict=True) if n) / 500
                       for curve in (before, after)]
    assert mean_confidence[1] < mean_confidence[0]


def test_train012_evaluate_update_card_adds_the_bins_and_changes_no_other_file(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path / "home"))  # the ONNX cache's default folder
    shipped = Path(__file__).resolve().parents[1] / "artifacts"
    folder = tmp_path / "artifacts"
    shutil.copytree(shipped, folder)
    before = {path.name: path.read_bytes() for path in folder.iterdir() if path.is_file()}
    assert evaluate_main(["--artifacts", str(folder), "--per-class", "1", "--garbage-per-family", "1",
                          "--update-card"]) == 0
    changed = sorted(name for name, data in before.items() if (folder / name).read_bytes() != data)
    assert changed == ["model_card.json"]
    card = json.loads((folder / "model_card.json").read_text())
    evaluation = card["evaluation"]
    reliability = evaluation["reliability"]
    assert reliability["windows"] == evaluation["windows"] == len(LABELS)
    assert sum(reliability["after"]["count"]) == len(LABELS)
    assert reliability["after"]["ece"] == pytest.approx(evaluation["ece"])
    assert reliability["before"]["ece"] == pytest.approx(evaluation["ece_before_calibration"])
    assert reliability["temperature"] == pytest.approx(card["temperature"])
    assert card["test"] == json.loads(before["model_card.json"])["test"]  # the training figures stay
    robustness = evaluation["robustness"]
    assert {"as simulated", "phases rotated A->B->C", "polarity reversed"} <= set(robustness)
    assert robustness["as simulated"]["accuracy"] == pytest.approx(evaluation["accuracy"])


def test_train013_levels_report_scores_each_level_and_the_confidently_wrong():
    from types import SimpleNamespace

    from services.labels import phase_group
    from services.training.levels_report import format_table, markdown_table, score_levels

    assert [phase_group(k) for k in ("ABG", "AB", "ABCG", "AG", "turn-to-turn")] == ["AB", "AB", "ABC", "A",
                                                                                    "turn-to-turn"]

    def answer(label_id: int, equipment: str, p_equipment: float, kind: str, category: str, unknown=False):
        return SimpleNamespace(label_id=label_id, confidence=p_equipment, unknown=unknown, levels={
            "category": {"value": category}, "kind": {"value": kind},
            "phases": {"value": phase_group(kind), "probability": 0.0} if category == "internal_fault" else None,
            "equipment": {"value": equipment, "probability": p_equipment}})

    y = np.array([0, 26, 13, 42])  # exciting AG, power-transformer AG, series AG, inrush
    predictions = [
        answer(26, "power_transformer", 0.95, "AG", "internal_fault"),  # unit confidently wrong
        answer(26, "power_transformer", 0.9, "AG", "internal_fault"),  # right
        answer(0, "ispar_exciting", 0.5, "AG", "internal_fault"),  # unit wrong but uncertain
        answer(41, "none", 0.99, "ferroresonance", "transient", unknown=True),  # wrong, but flagged
    ]
    report = score_levels(predictions, y)
    assert report["category_accuracy"] == 1.0 and report["phases_accuracy"] == 1.0
    assert report["fault_kind_accuracy"] == 1.0
    assert report["transient_kind_accuracy"] == 0.0 and report["equipment_accuracy"] == pytest.approx(1 / 3)
    assert report["exact_accuracy"] == 0.25
    assert report["confidently_wrong_equipment"] == pytest.approx(1 / 3)
    assert report["confidently_wrong_label"] == 0.25  # the flagged ferroresonance does not count
    assert report["equipment_uncertain_rate"] == pytest.approx(1 / 3) and report["unknown_rate"] == 0.25
    assert "33.33 %" in format_table({"simulator": report})
    table = markdown_table({"simulator": report, "independent_transients": {**report, "equipment_accuracy": None}})
    assert table.splitlines()[0] == "| Level | Our simulator | Independent transients |"
    assert "| Windows | 4 | 4 |" in table and "| Equipment (unit) | 33.33 % | - |" in table
    # a relay view that hides the faulted phases takes the window out of the phases score only
    hidden = score_levels(predictions, y, phases_identifiable=np.array([False, True, True, True]))
    assert hidden["phases_readable_share"] == pytest.approx(2 / 3) and hidden["phases_accuracy"] == 1.0
    assert hidden["equipment_accuracy"] == report["equipment_accuracy"]
    # a turn-to-turn fault in phase A read as an AG fault names the faulted phase right
    from services.training.levels_report import true_phase_set

    assert true_phase_set("turn-to-turn", {"faulted_phase": "A"}) == "A"
    assert true_phase_set("winding-to-winding", {"from_phase": "C", "to_phase": "A"}) == "AC"
    assert true_phase_set("winding-to-winding", {"from_phase": "B", "to_phase": "B"}) == "B"  # both windings of B
    tt = [answer(26, "power_transformer", 0.5, "AG", "internal_fault")]
    assert score_levels(tt, np.array([37]), true_phases=["A"])["phases_accuracy"] == 1.0
    assert score_levels(tt, np.array([37]), true_phases=["B"])["phases_accuracy"] == 0.0
    assert score_levels(tt, np.array([37]))["fault_kind_accuracy"] == 0.0


def test_train013b_levels_report_scores_the_phases_named_as_sure_apart_from_the_uncertain_ones():
    """Phases are scored from the served `phases` level: a reading below 0.8 is uncertain, not
    confidently wrong; an unreadable window (Yd-compensated) counts only in the all-windows rate."""
    from types import SimpleNamespace

    from services.training.levels_report import score_levels

    def answer(group: str | None, p_group: float, kind: str, category: str = "internal_fault", unknown=False):
        phases = None if group is None else {"value": group, "probability": p_group, "uncertain": p_group < 0.8,
                                             "candidates": [[group, p_group]]}
        return SimpleNamespace(label_id=26, confidence=0.5, unknown=unknown, levels={
            "category": {"value": category}, "kind": {"value": kind, "probability": p_group}, "phases": phases,
            "equipment": {"value": "power_transformer", "probability": 0.5}})

    ag, ab = LABEL_TO_ID["internal_power_transformer_internal_faults_Class1"], LABEL_TO_ID[
        "internal_power_transformer_internal_faults_Class8"]
    y = np.array([ag, ag, ag, ab, ab, ab])
    predictions = [
        answer("A", 0.95, "AG"),  # right and sure
        answer("AB", 0.9, "AB"),  # sure and wrong
        answer("AB", 0.4, "AB"),  # wrong, but said uncertain
        answer("AB", 0.85, "ABG"),  # right phases, wrong ground: the phases level is right
        answer("AB", 0.99, "AB", unknown=True),  # right, but flagged unknown: not named as sure
        answer("A", 0.9, "AG"),  # an unreadable window, sure and wrong
    ]
    report = score_levels(predictions, y, phases_identifiable=np.array([True] * 5 + [False]))
    assert report["phases_accuracy"] == pytest.approx(3 / 5) and report["fault_kind_accuracy"] == pytest.approx(2 / 5)
    assert report["phases_sure_share"] == pytest.approx(3 / 5)
    assert report["phases_sure_accuracy"] == pytest.approx(2 / 3)
    assert report["confidently_wrong_phases"] == pytest.approx(1 / 5)
    assert report["confidently_wrong_phases_all"] == pytest.approx(2 / 6)
    # stated 0.95, 0.9, 0.4, 0.85, 0.99, 0.9 against right, wrong, wrong, right, right, wrong: the answers
    # sharing a bin (0.95 and 0.99; both 0.9) err the same way, so the ECE is the mean of |right - stated|
    assert report["phases_ece"] == pytest.approx((0.05 + 0.9 + 0.4 + 0.15 + 0.01 + 0.9) / 6)
    # a fault read as a transient names no phases
    transient = score_levels([answer(None, 0.0, "ferroresonance", "transient")], np.array([ag]))
    assert transient["phases_accuracy"] == 0.0 and transient["phases_sure_share"] == 0.0


def test_train015_levels_report_markdown_prints_the_cards_table_or_says_what_is_missing(tmp_path, capsys):
    from services.training.levels_report import main as levels_main

    assert levels_main(["--artifacts", str(tmp_path), "--markdown"]) == 1  # no card at all
    assert "holds no levels_report" in capsys.readouterr().err
    (tmp_path / "model_card.json").write_text("{not json")
    assert levels_main(["--artifacts", str(tmp_path), "--markdown"]) == 1  # unreadable: a message, no traceback
    figures = {"windows": 1200, "category_accuracy": 0.975, "equipment_accuracy": None}
    (tmp_path / "model_card.json").write_text(json.dumps({"levels_report": {"shift": figures}}))
    assert levels_main(["--artifacts", str(tmp_path), "--markdown"]) == 0
    table = capsys.readouterr().out
    assert "| Level | Shift set |" in table and "| Windows | 1,200 |" in table
    assert "| Fault vs transient (category) | 97.50 % |" in table and "| Equipment (unit) | - |" in table


def test_train014_recalibrate_refits_the_level_temperatures_and_leaves_the_weights(artifacts_copy, monkeypatch,
                                                                                  tmp_path):
    from services.training.recalibrate import main as recalibrate_main

    monkeypatch.setenv("HOME", str(tmp_path / "home"))  # the ONNX cache's default folder
    weights = (artifacts_copy / "best_model.pth").read_bytes()
    calibration = json.loads((artifacts_copy / "calibration.json").read_text())
    calibration["temperature_kind"] = calibration["temperature_equipment"] = 50.0
    (artifacts_copy / "calibration.json").write_text(json.dumps(calibration))
    calibration.pop("dc_evidence", None)
    calibration.pop("logit_offsets", None)
    (artifacts_copy / "calibration.json").write_text(json.dumps(calibration))
    assert recalibrate_main(["--artifacts", str(artifacts_copy), "--per-class", "3", "--training-per-class", "20"]) == 0
    refitted = json.loads((artifacts_copy / "calibration.json").read_text())
    # the prior correction comes back from the card's counts (1000 per fault label, 3000 per transient)
    offsets = np.array(refitted["logit_offsets"])
    transient = np.array([label.startswith("transient_") for label in LABELS])
    assert np.allclose(offsets[~transient], 0.0) and np.allclose(offsets[transient], -np.log(3.0), atol=1e-6)
    assert 0.05 < refitted["temperature_kind"] < 20.0 and refitted["temperature_equipment"] < 50.0
    assert refitted["input_scaling"] == calibration["input_scaling"]
    assert refitted["dc_evidence"]["windows"] == 6 * 20  # the six transient labels, 20 windows each
    card = json.loads((artifacts_copy / "model_card.json").read_text())
    assert card["level_temperatures"]["kind"] == pytest.approx(refitted["temperature_kind"])
    assert "120 transient windows" in card["dc_evidence"]["fitted_on"]
    assert (artifacts_copy / "best_model.pth").read_bytes() == weights


def test_train016_recalibrate_dc_evidence_only_keeps_the_temperatures(artifacts_copy, monkeypatch, tmp_path):
    from services.training.recalibrate import main as recalibrate_main

    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    before = json.loads((artifacts_copy / "calibration.json").read_text())
    assert recalibrate_main(["--artifacts", str(artifacts_copy), "--dc-evidence-only",
                             "--training-per-class", "10"]) == 0
    after = json.loads((artifacts_copy / "calibration.json").read_text())
    assert after["temperature_kind"] == before["temperature_kind"]
    assert after["temperature_equipment"] == before["temperature_equipment"]
    assert after["dc_evidence"]["windows"] == 60
    assert after["dc_evidence"]["kinds"] == sorted(after["dc_evidence"]["kinds"]) and len(after["dc_evidence"]["kinds"]) == 6


def test_train018_transients_get_their_own_window_count_and_the_faults_stay_the_same():
    """A fault kind has three labels (one per unit), a transient kind one: the training split
    simulates `transient_per_class` windows per transient label, and the fault labels' windows do
    not depend on it (each class has its own generator)."""
    from services.training.pipeline import TrainingConfig, _training_windows, transient_windows_per_label

    assert transient_windows_per_label(TrainingConfig(per_class=5, transient_per_class=None)) == 5
    more = _training_windows(TrainingConfig(per_class=2, transient_per_class=5, progress=False))
    same = _training_windows(TrainingConfig(per_class=2, transient_per_class=2, progress=False))
    counts = np.bincount(more.y, minlength=len(LABELS))
    transient = np.array([label.startswith("transient_") for label in LABELS])
    assert (counts[transient] == 5).all() and (counts[~transient] == 2).all()
    faults_more, faults_same = ~transient[more.y], ~transient[same.y]
    assert np.array_equal(more.X[faults_more], same.X[faults_same])
