"""The answer in levels (services.inference.levels) and the no-event check (services.inference.presence)."""

from __future__ import annotations

import numpy as np
import pytest

from services.inference.levels import (
    describe_levels,
    equipment_probabilities,
    fit_equipment_temperature,
    fit_kind_temperature,
    kind_probabilities,
    label_probabilities,
)
from services.inference.presence import events_present
from services.labels import EQUIPMENT_CERTAIN, LABEL_TO_ID, LABELS
from services.rules import assess_impact

PT_AG = LABEL_TO_ID["internal_power_transformer_internal_faults_Class1"]
EX_AG = LABEL_TO_ID["internal_ispar_exciting_transformer_internal_faults_Class1"]
SE_AG = LABEL_TO_ID["internal_ispar_series_transformer_internal_faults_Class1"]
INRUSH = LABEL_TO_ID["transient_magnetising_inrush"]


def _logits(**values: float) -> np.ndarray:
    row = np.full((1, len(LABELS)), -10.0)
    for label_id, value in values.items():
        row[0, int(label_id.lstrip("_"))] = value
    return row


def test_lev001_levels_are_consistent_with_the_label_distribution():
    rng = np.random.default_rng(1)
    logits = rng.normal(0, 3, (50, len(LABELS)))
    p = label_probabilities(logits, LABELS, t_kind=0.8, t_equipment=3.0)
    assert np.allclose(p.sum(axis=1), 1.0)
    kinds = kind_probabilities(p, LABELS)
    # p(kind) is the plain softmax at t_kind summed over the kind's labels: t_equipment cannot change it
    other = kind_probabilities(label_probabilities(logits, LABELS, t_kind=0.8, t_equipment=0.3), LABELS)
    assert np.allclose(kinds, other)
    assert (p.max(axis=1) <= kinds.max(axis=1) + 1e-12).all()


def test_lev002_a_hot_equipment_temperature_spreads_the_unit_not_the_kind():
    logits = _logits(**{f"_{EX_AG}": 6.0, f"_{PT_AG}": 4.0, f"_{SE_AG}": 3.0})
    sharp = label_probabilities(logits, LABELS, 1.0, 1.0)
    honest = label_probabilities(logits, LABELS, 1.0, 8.0)
    assert kind_probabilities(sharp, LABELS).max() == pytest.approx(kind_probabilities(honest, LABELS).max())
    assert equipment_probabilities(sharp, LABELS).max() > EQUIPMENT_CERTAIN
    assert equipment_probabilities(honest, LABELS).max() < 0.5


def test_lev003_headline_names_phases_and_says_when_the_unit_is_uncertain():
    logits = _logits(**{f"_{EX_AG}": 6.0, f"_{PT_AG}": 5.8, f"_{SE_AG}": 3.0})
    row = label_probabilities(logits, LABELS, 1.0, 1.0)[0].tolist()
    levels, line = describe_levels(row, LABELS)
    assert levels["category"]["value"] == "internal_fault"
    assert levels["kind"] == {"value": "AG", "phases": "A-G", "probability": pytest.approx(1.0, abs=1e-4)}
    assert levels["equipment"]["uncertain"] is True
    assert [name for name, _ in levels["equipment"]["candidates"][:2]] == ["ispar_exciting", "power_transformer"]
    assert line.startswith("Internal fault, phases A-G, unit uncertain: ISPAR exciting unit 5")
    assert "power transformer 4" in line


def test_lev004_a_sure_unit_and_a_transient_read_plainly():
    row = label_probabilities(_logits(**{f"_{PT_AG}": 12.0}), LABELS, 1.0, 1.0)[0].tolist()
    levels, line = describe_levels(row, LABELS)
    assert not levels["equipment"]["uncertain"]
    assert line == "Internal fault, phases A-G, in the power transformer (100 %)"
    row = label_probabilities(_logits(**{f"_{INRUSH}": 12.0}), LABELS, 1.0, 1.0)[0].tolist()
    levels, line = describe_levels(row, LABELS)
    assert levels["equipment"] == {"value": "none", "probability": pytest.approx(1.0, abs=1e-4), "uncertain": False,
                                   "candidates": []}
    assert line == "Transient: magnetising inrush"
    assert describe_levels(row, LABELS, event_detected=False)[1].startswith("No event")


def test_lev005_temperatures_fitted_from_data_recover_the_generating_spread():
    rng = np.random.default_rng(3)
    n = 3000
    kinds = np.array([EX_AG, PT_AG, SE_AG])
    y = kinds[rng.integers(0, 3, n)]
    logits = np.full((n, len(LABELS)), -8.0)
    # the network is sure of the kind; its unit logits say the truth only weakly (margin 1 in 3 cases of 4)
    noise = rng.normal(0.0, 4.0, (n, 3))
    logits[:, kinds] = noise
    logits[np.arange(n), y] += 4.0
    t_equipment = fit_equipment_temperature(logits, y, LABELS)
    t_kind = fit_kind_temperature(logits, y, LABELS)
    assert t_equipment > 2.0  # overconfident unit logits are cooled down
    p = label_probabilities(logits, LABELS, t_kind, t_equipment)
    top = p.max(axis=1)
    confident = top >= EQUIPMENT_CERTAIN
    wrong = p.argmax(axis=1) != y
    assert (confident & wrong).mean() < 0.05


def _standing(n: int, rng: np.random.Generator, frequency: float = 60.0) -> np.ndarray:
    t = np.arange(726) / 1e4
    amplitude = np.exp(rng.uniform(np.log(5e-4), np.log(0.15), n))
    noise = np.exp(rng.uniform(np.log(2e-4), np.log(4e-3), n))
    shift = np.array([0.0, -2 * np.pi / 3, 2 * np.pi / 3])
    theta = 2 * np.pi * frequency * t[None, None, :] + rng.uniform(0, 6.3, n)[:, None, None] + shift[None, :, None]
    third = rng.uniform(0.0, 0.3, n)[:, None, None]
    wave = amplitude[:, None, None] * (np.cos(theta) + third * np.cos(3 * theta))
    return wave + noise[:, None, None] * rng.standard_normal((n, 3, 726))


def test_lev006_standing_current_alone_is_no_event_and_a_weak_fault_is_one():
    rng = np.random.default_rng(5)
    standing = _standing(400, rng)
    assert not events_present(standing).any()
    assert not events_present(_standing(200, rng, frequency=59.95)).any()
    t = np.arange(726) / 1e4
    fault = standing.copy()
    on = (t > 0.005) & (t < 0.055)
    fault[:, 0, :] += 0.03 * np.sin(2 * np.pi * 60 * t) * on
    assert events_present(fault).all()


def test_lev007_no_event_is_not_a_fault_in_the_impact_report():
    prediction = {"label": LABELS[PT_AG], "confidence": 0.9, "unknown": True,
                  "unknown_reason": "no event in the window", "event_detected": False}
    report = assess_impact(prediction, "prosumer-a", "consumer-home").to_dict()
    details = report["p2p_impact_details"]
    assert details["is_fault_condition"] is False
    assert details["event_type"] == "No event detected"
    assert report["severity"] == "info"


def test_lev008_an_internal_fault_below_the_unit_threshold_isolates_every_plausible_unit():
    prediction = {"label": LABELS[PT_AG], "confidence": 0.7,
                  "category": {"internal_fault": 1.0, "transient": 0.0},
                  "equipment": {"power_transformer": 0.7, "ispar_series": 0.0, "ispar_exciting": 0.3, "none": 0.0},
                  "kind": {"AG": 1.0}}
    report = assess_impact(prediction, "prosumer-a", "consumer-home").to_dict()
    assert report["reading"]["location_certain"] is False
    located = {item["id"] for item in report["located_equipment"]}
    assert {"power-transformer", "ispar-exciting"} <= located


def test_lev009_an_unchanging_window_is_no_event_unless_a_distorted_sustained_transient_is_read():
    from services.inference.presence import harmonic_distortion, no_event

    plain = 0.05 * np.cos(2 * np.pi * 60 * np.arange(726) / 1e4 + np.array([0, -2.1, 2.1])[None, :, None])
    plain = np.repeat(plain, 4, axis=0)
    square = np.sign(plain) * 0.05  # a rectifier-like steady current: strongly distorted
    assert (harmonic_distortion(plain) < 0.01).all() and (harmonic_distortion(square) > 0.3).all()
    internal, transient = np.ones(4, dtype=bool), np.zeros(4, dtype=bool)
    assert no_event(plain, internal).all() and no_event(plain, transient).all()
    assert no_event(square, internal).all()
    assert not no_event(square, transient).any()  # a steady rectifier current keeps its reading
    assert not no_event(20 * square, internal).any()  # 1 kA: above LARGE_KA, too large for a standing current


def test_lev010_levels_read_top_down_so_the_kind_never_contradicts_the_category():
    """A transient kind that outweighs every single fault kind, but not all of them together, must
    not be named under an internal-fault category; the category is then reported as uncertain."""
    ct = LABEL_TO_ID["transient_external_fault_with_CT_saturation"]
    ab, bc = LABEL_TO_ID["internal_power_transformer_internal_faults_Class8"], LABEL_TO_ID[
        "internal_power_transformer_internal_faults_class10"]
    row = np.zeros(len(LABELS))
    row[[ct, PT_AG, ab, bc]] = [0.40, 0.25, 0.20, 0.15]
    levels, line = describe_levels(row.tolist(), LABELS)
    assert levels["category"]["value"] == "internal_fault"
    assert levels["category"]["probability"] == pytest.approx(0.60)
    assert levels["kind"] == {"value": "AG", "phases": "A-G", "probability": pytest.approx(0.25)}
    assert levels["equipment"]["value"] == "power_transformer"  # a unit, never "none", under a fault
    assert levels["category"]["uncertain"] is True
    assert levels["category"]["alternative"] == {
        "category": "transient", "probability": pytest.approx(0.40), "kind": "external_fault_ct_saturation",
        "phases": None, "kind_probability": pytest.approx(0.40)}
    assert line == ("Fault or transient uncertain: internal fault 60 % (phases A-G) or transient 40 % "
                    "(external fault with CT saturation)")
    # the impact report reads the same probabilities cautiously: a fault until ruled out
    prediction = {"label": LABELS[ct], "confidence": 0.40, "levels": levels,
                  "category": {"internal_fault": 0.60, "transient": 0.40},
                  "equipment": {"power_transformer": 0.60, "ispar_series": 0.0, "ispar_exciting": 0.0, "none": 0.40},
                  "kind": {"external_fault_ct_saturation": 0.40, "AG": 0.25, "AB": 0.20, "BC": 0.15}}
    report = assess_impact(prediction, "prosumer-a", "consumer-home").to_dict()
    assert report["p2p_impact_details"]["is_fault_condition"] is True
    assert "power-transformer" in {item["id"] for item in report["located_equipment"]}


def test_lev011_a_sure_category_has_no_alternative_and_transient_titles_read_as_words():
    from services.labels import pretty_label

    row = label_probabilities(_logits(**{f"_{INRUSH}": 12.0}), LABELS, 1.0, 1.0)[0].tolist()
    levels, _ = describe_levels(row, LABELS)
    assert levels["category"]["uncertain"] is False and levels["category"]["alternative"] is None
    assert pretty_label("transient_external_fault_with_CT_saturation") == "External fault with CT saturation"
    assert pretty_label("transient_non-linear_load_switching") == "Non-linear load switching"


def test_lev012_the_prior_correction_undoes_unequal_training_counts():
    """Three times the windows per transient label: their logits get log(1/3), the faults' nothing;
    a label without windows gets 0."""
    from services.inference.levels import prior_correction

    counts = np.array([1000] * 39 + [3000] * 6)
    offsets = prior_correction(counts)
    assert np.allclose(offsets[:39], 0.0) and np.allclose(offsets[39:], -np.log(3.0))
    assert prior_correction(np.array([0, 10, 20])).tolist() == pytest.approx([0.0, 0.0, -np.log(2.0)])
    assert not prior_correction(np.full(45, 7)).any()


def test_lev013_the_predictor_adds_the_folders_offsets_and_refuses_malformed_ones(artifacts_copy, tmp_path,
                                                                                monkeypatch):
    import json
    import shutil

    from services.inference.artifacts import ModelUnavailable
    from services.inference.predictor import Predictor

    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    folder = tmp_path / "offsets"
    shutil.copytree(artifacts_copy, folder, ignore=shutil.ignore_patterns("*.onnx*"))
    calibration = json.loads((folder / "calibration.json").read_text())
    window = np.random.default_rng(4).normal(0, 0.2, (1, 3, 726)).astype(np.float32)
    calibration["logit_offsets"] = [0.0] * len(LABELS)
    (folder / "calibration.json").write_text(json.dumps(calibration))
    plain = Predictor(folder, backend="torch").logits(window)
    calibration["logit_offsets"][INRUSH] = 500.0  # overwhelms any logit: every window reads inrush
    (folder / "calibration.json").write_text(json.dumps(calibration))
    pushed = Predictor(folder, backend="torch")
    np.testing.assert_allclose(pushed.logits(window)[0, INRUSH], plain[0, INRUSH] + 500.0, rtol=1e-6)
    assert pushed.predict(window[0]).label == LABELS[INRUSH]
    calibration["logit_offsets"] = [0.0] * 3
    (folder / "calibration.json").write_text(json.dumps(calibration))
    with pytest.raises(ModelUnavailable, match="logit_offsets"):
        Predictor(folder, backend="torch")


def test_lev014_the_phases_come_before_the_kind_and_say_when_they_are_uncertain():
    """AG 38 %, AB 27 %, AC 26 %: the (2, -1, -1) pattern an AG fault shows with the zero sequence
    removed and an AB fault through a Yd-compensated relay. The phases are reported uncertain with
    their candidates; AB and ABG together outweigh AG, so the phases are A-B and the kind is the
    better of the two; a sure reading and a transient read as before."""
    ag, ab, abg, ac = (LABEL_TO_ID[f"internal_power_transformer_internal_faults_{name}"]
                       for name in ("Class1", "Class8", "Class4", "Class9"))
    row = np.zeros(len(LABELS))
    row[[ag, ab, ac, INRUSH]] = [0.38, 0.27, 0.26, 0.09]
    levels, line = describe_levels(row.tolist(), LABELS)
    assert levels["phases"]["value"] == "A" and levels["phases"]["uncertain"] is True
    assert levels["phases"]["probability"] == pytest.approx(0.38)
    assert levels["phases"]["candidates"] == [["A", pytest.approx(0.38)], ["AB", pytest.approx(0.27)],
                                              ["AC", pytest.approx(0.26)]]
    assert line == ("Internal fault, phases uncertain (A 38 %, A-B 27 %, A-C 26 %), in the power transformer "
                    "(91 %)")
    row = np.zeros(len(LABELS))
    row[[ag, ab, abg]] = [0.4, 0.25, 0.35]
    levels, line = describe_levels(row.tolist(), LABELS)
    assert levels["phases"] == {"value": "AB", "probability": pytest.approx(0.6), "uncertain": True,
                                "candidates": [["AB", pytest.approx(0.6)], ["A", pytest.approx(0.4)]]}
    assert levels["kind"]["value"] == "ABG"  # the kind within the phases, not the single best kind (AG)
    sure = label_probabilities(_logits(**{f"_{PT_AG}": 12.0}), LABELS, 1.0, 1.0)[0].tolist()
    levels, line = describe_levels(sure, LABELS)
    assert levels["phases"]["uncertain"] is False and levels["phases"]["value"] == "A"
    assert line == "Internal fault, phases A-G, in the power transformer (100 %)"
    transient = label_probabilities(_logits(**{f"_{INRUSH}": 12.0}), LABELS, 1.0, 1.0)[0].tolist()
    assert describe_levels(transient, LABELS)[0]["phases"] is None


def test_lev015_the_impact_report_names_no_phases_the_levels_are_unsure_of():
    """The report's fault rule names the same kind as the levels: none while the phases are
    uncertain (no check pointed at phases the model is not sure of); the kind within the sure
    phases otherwise; the label's own kind when the caller sent no kind probabilities."""
    from services.inference.levels import named_fault_kind

    assert named_fault_kind({"AG": 0.38, "AB": 0.27, "AC": 0.26}) is None
    assert named_fault_kind({"AB": 0.3, "ABG": 0.55, "AG": 0.15}) == "ABG"
    label = LABELS[PT_AG]
    base = {"label": label, "confidence": 0.36, "category": {"internal_fault": 1.0, "transient": 0.0},
            "equipment": {"power_transformer": 0.95, "ispar_series": 0.03, "ispar_exciting": 0.02, "none": 0.0}}
    unsure = assess_impact({**base, "kind": {"AG": 0.38, "AB": 0.33, "AC": 0.29}}, "prosumer-a", "consumer-home")
    assert unsure.event_type == "Internal fault in the power transformer"
    assert not any("phase(s) A" in action for action in unsure.actions)
    sure = assess_impact({**base, "kind": {"AG": 0.9, "AB": 0.1}}, "prosumer-a", "consumer-home")
    assert sure.event_type == "Internal fault (AG) in the power transformer"
    assert any("Ground fault involving phase(s) A" in action for action in sure.actions)
    bare = assess_impact({"label": label, "confidence": 0.95}, "prosumer-a", "consumer-home")
    assert bare.event_type == "Internal fault (AG) in the power transformer"
