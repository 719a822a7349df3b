"""The Model page: the reliability diagram from the model card's per-bin calibration data, the
note for an older card without bins, and the lean confusion heatmap (no browser)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest

from app import create_app
from app.settings import Settings
from components import ids
from components.figures import confusion_figure, reliability_figure
from services.labels import LABELS
from services.model_card import card_view
from services.training.metrics import calibration_report
from tests.layout import find_by_id, text_of

ROOT = Path(__file__).resolve().parents[1]
ARTIFACTS = Path(os.environ.get("GEM_ARTIFACTS_DIR") or ROOT / "artifacts")


def _reliability(temperature: float = 2.0) -> dict:
    """calibration_report of an overconfident toy model: 300 windows, some bins left empty."""
    rng = np.random.default_rng(0)
    targets = rng.integers(0, 5, 300)
    predicted = np.where(rng.random(300) < 0.7, targets, (targets + 1) % 5)
    logits = rng.normal(0, 0.5, (300, 5))
    logits[np.arange(300), predicted] += rng.uniform(2.0, 8.0, 300)
    return calibration_report(logits, targets, temperature)


def _old_card() -> dict:
    """A model card written before the reliability bins existed."""
    return {"model": "ConvNet", "labels": 45, "temperature": 1.2,
            "test": {"windows": 90, "accuracy": 0.95, "ece_before_calibration": 0.05, "ece_after_calibration": 0.01,
                     "nll_before_calibration": 0.3, "nll_after_calibration": 0.2,
                     "confusion_matrix": np.eye(45, dtype=int).tolist()}}


# --- reliability diagram -----------------------------------------------------------------------

def test_reliability_figure_draws_both_curves_the_diagonal_and_the_bin_counts():
    reliability = _reliability()
    fig = reliability_figure(reliability)
    traces = fig["data"]
    assert traces[0]["name"] == "perfectly calibrated" and traces[0]["x"] == [0, 1] and traces[0]["y"] == [0, 1]
    by_kind = {(trace["legendgroup"], trace["type"]): trace for trace in traces[1:]}
    assert set(by_kind) == {("before", "scatter"), ("before", "bar"), ("after", "scatter"), ("after", "bar")}
    for key in ("before", "after"):
        curve = reliability[key]
        filled = [i for i, n in enumerate(curve["count"]) if n]
        points, bars = by_kind[(key, "scatter")], by_kind[(key, "bar")]
        assert points["y"] == [round(curve["accuracy"][i], 5) for i in filled]  # empty bins left out
        assert points["x"] == [round(curve["confidence"][i], 5) for i in filled]
        assert bars["y"] == [curve["count"][i] for i in filled] and sum(bars["y"]) == 300
        assert [row[2] for row in points["customdata"]] == bars["y"]  # count in the hover
        assert "windows" in points["hovertemplate"] and bars["yaxis"] == "y2"
    assert "T = 2" in by_kind[("after", "scatter")]["name"]
    assert f"ECE {reliability['before']['ece']:.4f}" in by_kind[("before", "scatter")]["name"]
    assert fig["layout"]["yaxis2"]["type"] == "log"
    assert reliability["before"]["ece"] > reliability["after"]["ece"]  # the toy model is overconfident


@pytest.mark.parametrize("broken", [{}, {"edges": [0.0, 0.5, 1.0]},
                                    {"edges": [0.0, 0.5, 1.0], "before": {"count": [1], "confidence": [0.4],
                                                                          "accuracy": [1.0]}}])
def test_reliability_figure_without_usable_bins_says_so(broken):
    fig = reliability_figure(broken)
    assert fig["data"] == []
    assert "No per-bin calibration data" in fig["layout"]["annotations"][0]["text"]


# --- card data ---------------------------------------------------------------------------------

def test_card_view_prefers_the_fresh_evaluation_bins_over_the_test_split():
    evaluation, test = _reliability(2.0), _reliability(1.5)
    card = {**_old_card(), "test_seed": 7, "evaluation": {"seed": 4242, "reliability": evaluation}}
    card["test"] = {**card["test"], "reliability": test}
    view = card_view(card)
    assert view["reliability"] == evaluation
    assert "fresh evaluation set" in view["reliability_source"] and "seed 4242" in view["reliability_source"]
    assert "300 windows" in view["reliability_source"]

    del card["evaluation"]
    view = card_view(card)
    assert view["reliability"] == test and "test split" in view["reliability_source"]
    assert "seed 7" in view["reliability_source"]


def test_card_view_of_an_old_or_malformed_card_has_no_reliability():
    assert card_view(_old_card())["reliability"] is None
    malformed = _reliability()
    malformed["after"]["count"] = malformed["after"]["count"][:-1]
    card = {**_old_card(), "evaluation": {"reliability": malformed}}
    view = card_view(card)
    assert view["reliability"] is None and view["metrics"]["accuracy"] == 0.95  # the rest still reads


def test_the_shipped_model_card_holds_reliability_bins_for_the_model_page():
    card = json.loads((ARTIFACTS / "model_card.json").read_text())
    view = card_view(card)
    assert view["reliability"] is not None
    for key in ("before", "after"):
        assert sum(view["reliability"][key]["count"]) == view["reliability"]["windows"] > 0
    assert len([t for t in reliability_figure(view["reliability"])["data"] if t["type"] == "bar"]) == 2


def test_card_view_lists_the_level_temperatures_and_the_dc_evidence_with_the_calibration():
    card = {**_old_card(), "level_temperatures": {"kind": 1.18, "equipment": 2.46, "calibration_set": "x"},
            "dc_evidence": {"fitted_on": "6000 transient windows of the training split"},
            "logit_offsets": {"labels_corrected": 6, "smallest": -1.0986, "method": "x"}}
    facts = card_view(card)["calibration_facts"]
    assert facts["temperature_kind"] == 1.18 and facts["temperature_equipment"] == 2.46
    assert "6000 transient windows" in facts["dc_evidence"]
    assert facts["prior_correction"].startswith("6 labels trained on more windows get -1.10")
    broken = {**_old_card(), "level_temperatures": {"kind": "hot"}, "dc_evidence": ["not", "a", "mapping"],
              "logit_offsets": {"labels_corrected": True, "smallest": "low"}}
    facts = card_view(broken)["calibration_facts"]
    assert "temperature_kind" not in facts and "dc_evidence" not in facts and "prior_correction" not in facts
    shipped = card_view(json.loads((ARTIFACTS / "model_card.json").read_text()))["calibration_facts"]
    assert {"temperature_kind", "temperature_equipment", "dc_evidence", "prior_correction"} <= set(shipped)


# --- the page ----------------------------------------------------------------------------------

def _model_page(tmp_path, card: dict):
    """The Model page's layout over a folder holding only this card (no model: the page reads the file)."""
    folder = tmp_path / "card-only"
    folder.mkdir()
    (folder / "model_card.json").write_text(json.dumps(card))
    app = create_app(settings=Settings(artifacts_dir=folder, database_url=f"sqlite:///{tmp_path / 'h.db'}",
                                       instance_dir=tmp_path / "instance"))
    from app.pages import model_card as model_page

    with app.server.test_request_context("/model"):
        return model_page.layout()


@pytest.mark.parametrize("with_bins", [False, True])
def test_model_page_draws_the_diagram_or_a_note_for_an_old_card(tmp_path, with_bins):
    card = _old_card()
    if with_bins:
        card["evaluation"] = {"seed": 4242, "reliability": _reliability()}
    page = _model_page(tmp_path, card)
    graph = find_by_id(page, ids.MODEL_CALIBRATION)
    note = text_of(find_by_id(page, ids.MODEL_CALIBRATION_NOTE))
    bars = [trace for trace in graph.figure["data"] if trace["type"] == "bar"]
    if with_bins:
        assert [trace.get("legendgroup") for trace in bars] == ["before", "after"]
        assert "fresh evaluation set" in note
    else:
        assert "No reliability diagram" in note and "--update-card" in note
        assert [trace["y"] for trace in bars] == [[0.05, 0.01], [0.3, 0.2]]  # ECE and NLL before/after
    assert find_by_id(page, ids.MODEL_CONFUSION) is not None


# --- confusion heatmap -------------------------------------------------------------------------

def test_confusion_figure_hover_names_both_labels_without_a_string_per_cell():
    rng = np.random.default_rng(1)
    counts = np.diag(rng.integers(80, 100, 45)) + (rng.random((45, 45)) < 0.05) * rng.integers(1, 4, (45, 45))
    fig = confusion_figure(counts.tolist(), list(LABELS))
    heatmap = fig["data"][0]
    assert "text" not in heatmap and "hovertext" not in heatmap
    assert heatmap["customdata"] == counts.tolist()
    assert heatmap["y"][26] == "26 · Power transformer - AG fault" and heatmap["x"] == heatmap["y"]
    for part in ("true %{y}", "predicted %{x}", "%{customdata", "%{z:.1%}"):
        assert part in heatmap["hovertemplate"]
    assert fig["layout"]["xaxis"]["ticktext"][26] == "26"  # the axes stay short
    assert len(json.dumps(fig)) < 40_000  # was ~290 kB with a hover string per cell


# --- robustness --------------------------------------------------------------------------------

ROBUSTNESS = {
    "as simulated": {"accuracy": 0.9989, "category_accuracy": 0.9994},
    "phases rotated A->B->C": {"accuracy": 0.9989, "category_accuracy": 0.9994},
    "white noise 2 % of peak": {"accuracy": 0.9833, "category_accuracy": 1.0},
}


def test_card_view_reads_robustness_and_drops_malformed_rows():
    card = {**_old_card(), "evaluation": {"robustness": {**ROBUSTNESS, "broken": {"accuracy": "high"},
                                                         "flag": {"accuracy": True, "category_accuracy": 1}}}}
    assert card_view(card)["robustness"] == ROBUSTNESS
    assert card_view(_old_card())["robustness"] == {}


@pytest.mark.parametrize("with_figures", [False, True])
def test_model_page_shows_the_robustness_table_or_how_to_get_it(tmp_path, with_figures):
    card = _old_card()
    if with_figures:
        card["evaluation"] = {"robustness": ROBUSTNESS}
    page = _model_page(tmp_path, card)
    table = find_by_id(page, ids.MODEL_ROBUSTNESS)
    if with_figures:
        text = text_of(table)
        assert "phases rotated A->B->C" in text and "98.33%" in text and "99.89%" in text
    else:
        assert table is None
        assert "No robustness figures" in text_of(page) and "--update-card" in text_of(page)


# --- levels report -----------------------------------------------------------------------------

def _levels_set(windows: int, equipment: float | None, phases: float | None, transient: float | None) -> dict:
    return {"windows": windows, "seed": 99, "source": "test", "category_accuracy": 0.995, "phases_accuracy": phases,
            "transient_kind_accuracy": transient, "equipment_accuracy": equipment, "exact_accuracy": 0.61,
            "confidently_wrong_equipment": 0.02 if equipment is not None else None, "confidently_wrong_label": 0.031,
            "unknown_rate": 0.004, "equipment_uncertain_rate": 0.35 if equipment is not None else None}


LEVELS_REPORT = {"simulator": _levels_set(4500, 0.72, 0.998, 0.999), "shift": _levels_set(1350, 0.55, 0.93, 0.9),
                 "independent_transients": _levels_set(600, None, None, 0.87),
                 "notes": ["Which currents each unit's relay compares is not publicly documented."]}


def test_levels_report_table_puts_the_three_sets_side_by_side_with_the_notes():
    from components.tables import levels_report_table

    block = levels_report_table(LEVELS_REPORT)
    table = find_by_id(block, ids.MODEL_LEVELS_REPORT)
    header = [text_of(cell) for cell in table.children[0].children.children]
    assert header == ["", "our simulator", "shift set", "independent transients"]
    rows = {text_of(row.children[0]): [text_of(cell) for cell in row.children[1:]] for row in table.children[1].children}
    assert rows["Equipment (faulted unit)"] == ["72.0%", "55.0%", "n/a"]  # none on a transients-only set
    assert rows["Faulted phases (A, B, C involved)"] == ["99.8%", "93.0%", "n/a"]
    assert rows["Which transient"] == ["99.9%", "90.0%", "87.0%"]
    assert rows["Windows"] == ["4,500", "1,350", "600"]
    assert rows["Confidently wrong unit"] == ["2.0%", "2.0%", "n/a"] and rows["Marked unfamiliar"][0] == "0.40%"
    assert "Kind" not in rows  # only an older card has the single kind figure
    assert "not publicly documented" in text_of(block)
    assert levels_report_table(None) is None and levels_report_table({"notes": ["x"]}) is None


@pytest.mark.parametrize("with_report", [False, True])
def test_model_page_shows_the_levels_report_only_when_the_card_has_one(tmp_path, with_report):
    card = _old_card()
    if with_report:
        card["levels_report"] = LEVELS_REPORT
    page = _model_page(tmp_path, card)
    table = find_by_id(page, ids.MODEL_LEVELS_REPORT)
    if with_report:
        assert "independent transients" in text_of(table) and "55.0%" in text_of(table)
        assert "The answer level by level" in text_of(page)
    else:
        assert table is None and "The answer level by level" not in text_of(page)


def _connection_side(phases: float, sure: float) -> dict:
    return {"category_accuracy": 0.994, "phases_accuracy": phases, "phases_sure_share": sure,
            "confidently_wrong_phases_all": 0.004, "transient_kind_accuracy": 0.91, "unknown_rate": 0.01}


STATED_CONNECTION = {
    "yd_ia_minus_ib": {"simulator": {"windows": 4484, "not_stated": _connection_side(0.4328, 0.2765),
                                     "stated": _connection_side(0.9627, 0.9039)},
                       "shift": {"windows": 4500, "not_stated": _connection_side(0.2972, 0.1644),
                                 "stated": _connection_side(0.8669, 0.7423)}},
    "delta_tied": {"simulator": {"windows": 4500, "not_stated": "malformed", "stated": _connection_side(0.92, 0.8)}},
}


@pytest.mark.parametrize("with_connections", [False, True])
def test_model_page_shows_what_stating_the_relay_connection_changes_when_measured(tmp_path, with_connections):
    card = _old_card()
    card["levels_report"] = {**LEVELS_REPORT, **({"stated_connection": STATED_CONNECTION} if with_connections else {})}
    page = _model_page(tmp_path, card)
    table = find_by_id(page, ids.MODEL_STATED_CONNECTION)
    if not with_connections:
        assert table is None and "When the relay connection is stated" not in text_of(page)
        return
    rows = [[text_of(cell) for cell in row.children] for row in table.children[1].children]
    assert len(rows) == 2  # the malformed delta-tied entry is left out, not drawn half
    first = rows[0]
    assert first[0] == "Yd compensation I_A - I_B, I_B - I_C, I_C - I_A" and first[1] == "our simulator"
    assert first[2] == "43.3% \u2192 96.3%" and first[3] == "27.7% \u2192 90.4%"
    assert rows[1][1] == "shift set" and rows[1][2] == "29.7% \u2192 86.7%"
