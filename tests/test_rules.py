"""Impact rules: table-driven over the 45 labels and every sender/receiver pair, plus the edge paths."""

from __future__ import annotations

import json
import math

import pytest

from services.grid import (
    CB_FEEDER_1,
    CB_ISPAR_LOAD,
    CB_ISPAR_SOURCE,
    CB_PT_HV,
    CB_PT_LV,
    COMMUNITY_BATTERY,
    CONSUMER_HOME,
    CONSUMER_LOAD,
    EV_HUB,
    FEEDER_1,
    ISPAR_BYPASS,
    ISPAR_SERIES,
    LOCAL_BUSINESS,
    MICRO_INDUSTRY,
    MICROGRID_HUB,
    POWER_TRANSFORMER,
    PROSUMER_A,
    PROSUMER_B,
    RECEIVERS,
    SENDERS,
    Tariffs,
    graph_elements,
    microgrid,
)
from services.labels import LABELS, label_parts
from services.rules import SEVERITIES, ImpactInputError, assess_impact

PAIRS = [(s, r) for s in SENDERS for r in RECEIVERS if s != r]
NODE_IDS = {n["id"] for n in graph_elements()["nodes"]}
EDGE_IDS = {e["id"] for e in graph_elements()["edges"]}
NOT_FAULTS = {"transient_magnetising_inrush", "transient_sympathetic_inrush", "transient_capacitor_switching"}
PT_FAULT = "internal_power_transformer_internal_faults_Class1"
INRUSH = "transient_magnetising_inrush"


def sure(label: str, confidence: float = 0.97) -> dict:
    """A confident prediction as Prediction.to_dict() gives it (marginals consistent with the label)."""
    parts = label_parts(label)
    rest = 1 - confidence
    return {
        "label": label, "label_id": LABELS.index(label), "confidence": confidence,
        "category": {parts.category: confidence, ("transient" if parts.category == "internal_fault"
                                                   else "internal_fault"): rest},
        "equipment": {parts.equipment: confidence, **{e: rest / 3 for e in
                      ("power_transformer", "ispar_series", "ispar_exciting", "none") if e != parts.equipment}},
        "kind": {parts.kind: confidence},
        "unknown": False, "unknown_reason": None, "top5": [[label, confidence]], "saliency": [0.0] * 726,
    }


@pytest.mark.parametrize(("sender", "receiver"), PAIRS)
@pytest.mark.parametrize("label", LABELS)
def test_rul001_every_label_and_pair_gives_a_complete_consistent_report(label, sender, receiver):
    report = assess_impact(sure(label), sender, receiver)
    data = report.to_dict()
    json.dumps(data)
    details = report.p2p_impact_details()
    assert set(details) == {"event_type", "highlight_keys", "is_fault_condition", "p2p_disruption_message"}
    assert details["event_type"] and details["p2p_disruption_message"] and report.summary
    assert details["highlight_keys"] and set(details["highlight_keys"]) <= NODE_IDS
    assert set(data["deenergised_nodes"]) <= NODE_IDS and set(data["islanded_nodes"]) <= NODE_IDS
    assert set(data["affected_edges"]) <= EDGE_IDS
    assert set(data["protection_action"]["breakers_opened"]) <= EDGE_IDS
    assert {item["id"] for item in data["located_equipment"]} <= NODE_IDS and data["located_equipment"]
    assert report.severity in SEVERITIES and data["actions"]
    assert report.transfer_status in ("continues", "curtailed", "disrupted")
    assert data["transfer"]["path_nodes"][0] == sender and data["transfer"]["path_nodes"][-1] == receiver
    for side in ("before", "after"):
        assert data["power_flow"][side]["converged"]
    # internal faults are fault conditions; inrush, sympathetic inrush, capacitor switching are not
    if label_parts(label).category == "internal_fault":
        assert report.is_fault_condition and data["protection_action"]["trips"]
    if label in NOT_FAULTS:
        assert not report.is_fault_condition and not data["protection_action"]["trips"]
    # a transfer whose path crosses de-energised equipment is not reported as continuing
    dead = set(data["deenergised_nodes"])
    if dead & set(data["transfer"]["path_nodes"]):
        assert report.transfer_status == "disrupted" and data["transfer"]["delivered_kw"] == 0
    if report.transfer_status == "continues":
        assert data["transfer"]["delivered_kw"] == data["transfer"]["requested_kw"]
        assert data["energy"]["transfer_not_delivered_kwh"] == 0


def test_rul002_power_transformer_fault_trips_87t_and_islands_the_microgrid():
    report = assess_impact(sure(PT_FAULT), PROSUMER_A, CONSUMER_HOME, 5.0)
    data = report.to_dict()
    assert data["protection_action"]["breakers_opened"] == [CB_PT_HV, CB_PT_LV]
    assert data["located_equipment"][0]["id"] == POWER_TRANSFORMER and data["reading"]["location_certain"]
    assert report.severity == "critical" and report.is_fault_condition
    assert MICROGRID_HUB in data["islanded_nodes"] and CONSUMER_LOAD not in data["deenergised_nodes"]
    assert data["islands"][0]["grid_former"] == COMMUNITY_BATTERY and data["islands"][0]["balanced"]
    assert report.transfer_status == "continues"
    assert data["restoration"]["hours"] >= 1
    assert data["power_flow"]["after"]["grid_former_output_kw"][COMMUNITY_BATTERY] > 0
    assert data["power_flow"]["after"]["grid_import_kw"] < data["power_flow"]["before"]["grid_import_kw"]
    assert any("island" in a.lower() and "community battery" in a for a in data["actions"])


def test_rul003_ispar_fault_trips_both_units_and_recommends_the_bypass():
    label = "internal_ispar_exciting_transformer_internal_faults_tt"
    data = assess_impact(sure(label), PROSUMER_B, EV_HUB, 5.0).to_dict()
    assert set(data["protection_action"]["breakers_opened"]) == {CB_ISPAR_SOURCE, CB_ISPAR_LOAD}
    assert {ISPAR_SERIES, "ispar-exciting", CONSUMER_LOAD} <= set(data["deenergised_nodes"])
    assert CB_PT_LV in data["protection_action"]["all_open_edges"]
    assert any(ISPAR_BYPASS in a for a in data["actions"])
    assert data["energy"]["load_not_served_kw"] == pytest.approx(55.0)  # the other loads, until the bypass closes


def test_rul004_inrush_blocks_the_trip_and_lasts_seconds():
    report = assess_impact(sure(INRUSH), PROSUMER_A, CONSUMER_HOME, 5.0)
    data = report.to_dict()
    assert not report.is_fault_condition and report.severity == "info"
    assert report.transfer_status == "continues" and data["deenergised_nodes"] == []
    assert data["restoration"]["seconds"] <= 60
    assert any("block the differential trip" in a.lower() for a in data["actions"])
    assert data["power_flow"]["before"] == data["power_flow"]["after"]


def test_rul005_capacitor_switching_needs_no_restoration_and_points_at_restrike():
    data = assess_impact(sure("transient_capacitor_switching"), PROSUMER_A, EV_HUB, 5.0).to_dict()
    assert data["restoration"]["hours"] == 0 and "capacitor-bank" in data["highlight_keys"]
    assert any("restrike" in a for a in data["actions"])


def test_rul006_external_fault_is_a_fault_cleared_by_the_feeder_not_the_transformer():
    data = assess_impact(sure("transient_external_fault_with_CT_saturation"), PROSUMER_A, CONSUMER_HOME, 5.0).to_dict()
    assert data["is_fault_condition"] and POWER_TRANSFORMER not in data["deenergised_nodes"]
    assert data["protection_action"]["breakers_opened"] == [CB_FEEDER_1]
    assert FEEDER_1 in data["highlight_keys"] and data["transfer_status"] == "disrupted"
    price = microgrid().tariffs.p2p_price_per_kwh
    hours = data["restoration"]["hours"]
    assert data["energy"]["transfer_not_delivered_kwh"] == pytest.approx(5.0 * hours)
    assert data["energy"]["transfer_not_delivered_cost"] == pytest.approx(5.0 * hours * price)


def test_rul007_ferroresonance_and_nonlinear_load_are_not_faults_but_need_action():
    ferro = assess_impact(sure("transient_ferroresonance"), PROSUMER_A, CONSUMER_HOME).to_dict()
    assert not ferro["is_fault_condition"] and ferro["severity"] == "major"
    assert any("de-energise the lightly loaded transformer" in a for a in ferro["actions"])
    harmonic = assess_impact(sure("transient_non-linear_load_switching"), PROSUMER_A, CONSUMER_HOME).to_dict()
    assert not harmonic["is_fault_condition"] and "nonlinear-load" in harmonic["highlight_keys"]
    assert any("filtering" in a for a in harmonic["actions"])


def test_rul008_island_balance_follows_the_ratings():
    weak = (microgrid().with_node(COMMUNITY_BATTERY, rated_storage_kw=20.0)
            .with_node(MICRO_INDUSTRY, rated_generation_kw=10.0, generation_kw=10.0))
    strong = assess_impact(sure(PT_FAULT), PROSUMER_A, CONSUMER_HOME, 5.0).to_dict()
    short = assess_impact(sure(PT_FAULT), PROSUMER_A, CONSUMER_HOME, 5.0, grid=weak).to_dict()
    assert strong["islands"][0]["verdict"] == "balanced" and strong["transfer_status"] == "continues"
    island = short["islands"][0]
    assert not island["balanced"] and island["verdict"].startswith("deficit")
    # capacity: PV 28 + wind 12 + prosumer battery 20 + community battery 20 + co-generation 10 = 90 kW
    assert island["supply_capacity_kw"] == pytest.approx(90.0)
    assert island["load_kw"] == pytest.approx(148.0)
    assert short["transfer_status"] == "curtailed"
    assert short["transfer"]["delivered_kw"] == pytest.approx(round(5.0 * 90 / 148, 1))
    assert short["energy"]["load_not_served_kw"] == pytest.approx(148 - 90)
    assert any("shed" in a for a in short["actions"])


def test_rul009_no_grid_forming_unit_means_the_transfer_is_disrupted():
    no_former = (microgrid().with_node(COMMUNITY_BATTERY, grid_forming=False)
                 .with_node(MICRO_INDUSTRY, grid_forming=False))
    data = assess_impact(sure(PT_FAULT), PROSUMER_A, CONSUMER_HOME, 5.0, grid=no_former).to_dict()
    assert data["transfer_status"] == "disrupted" and MICROGRID_HUB in data["deenergised_nodes"]
    assert data["energy"]["transfer_not_delivered_kwh"] == pytest.approx(5.0 * data["restoration"]["hours"])


def test_rul010_unknown_prediction_says_so_and_claims_nothing_more():
    prediction = sure(INRUSH, 0.41) | {"unknown": True, "unknown_reason": "far from the training data"}
    report = assess_impact(prediction, PROSUMER_A, CONSUMER_HOME)
    data = report.to_dict()
    assert data["reading"]["mode"] == "unknown" and not data["reading"]["location_certain"]
    assert "Unrecognised" in report.event_type and "far from the training data" in data["actions"][0]
    assert "uncertain" in report.p2p_disruption_message.lower()
    transient_actions = [a for a in data["actions"][1:] if "differential trip" in a.lower()]
    assert transient_actions and all(a.startswith("If it is") for a in transient_actions)
    # 59 % internal-fault probability is material: the cautious reading is a fault condition
    assert report.is_fault_condition and data["protection_action"]["trips"]


def test_rul011_unknown_transient_with_negligible_fault_probability_is_not_a_fault():
    prediction = {"label": INRUSH, "confidence": 0.5, "unknown": True, "unknown_reason": "low confidence",
                  "category": {"transient": 0.95, "internal_fault": 0.05}, "equipment": {"none": 0.95},
                  "kind": {"magnetising_inrush": 0.5, "sympathetic_inrush": 0.45}}
    data = assess_impact(prediction, PROSUMER_A, CONSUMER_HOME).to_dict()
    assert not data["is_fault_condition"] and data["deenergised_nodes"] == []
    readings = {r["reading"] for r in data["reading"]["readings_acted_on"]}
    assert readings == {"transient:magnetising_inrush", "transient:sympathetic_inrush"}


def test_rul012_low_equipment_confidence_isolates_every_material_candidate():
    prediction = sure(PT_FAULT, 0.5) | {
        "category": {"internal_fault": 0.85, "transient": 0.15},
        "equipment": {"power_transformer": 0.45, "ispar_series": 0.4, "ispar_exciting": 0.05, "none": 0.1},
    }
    report = assess_impact(prediction, MICRO_INDUSTRY, LOCAL_BUSINESS, 10.0)
    data = report.to_dict()
    assert not data["reading"]["location_certain"] and data["reading"]["mode"] == "uncertain_location"
    assert {POWER_TRANSFORMER, ISPAR_SERIES} <= {item["id"] for item in data["located_equipment"]}
    assert all(not item["certain"] for item in data["located_equipment"])
    assert {CB_PT_HV, CB_PT_LV, CB_ISPAR_SOURCE, CB_ISPAR_LOAD} <= set(data["protection_action"]["breakers_opened"])
    assert report.is_fault_condition and "uncertain" in report.event_type
    assert "not sure where" in data["actions"][0]


def test_rul013_confident_equipment_but_material_fault_probability_is_flagged():
    prediction = sure("transient_capacitor_switching", 0.7)
    data = assess_impact(prediction, PROSUMER_A, CONSUMER_HOME).to_dict()
    assert data["reading"]["location_certain"] and not data["is_fault_condition"]
    assert "30%" in data["actions"][0]


def test_rul014_missing_marginals_are_derived_from_the_label():
    data = assess_impact({"label": PT_FAULT, "confidence": "98.5%"}, PROSUMER_A, EV_HUB).to_dict()
    assert data["reading"]["marginals_derived"] and data["reading"]["location_certain"]
    assert data["reading"]["equipment_probability"]["power_transformer"] == pytest.approx(0.985)
    by_id = assess_impact({"label": 42, "confidence": 0.9}, PROSUMER_A, EV_HUB)
    assert by_id.label == INRUSH


def test_rul015_tariffs_price_the_undelivered_energy():
    grid = microgrid().with_tariffs(Tariffs(feed_in_per_kwh=0.10, retail_per_kwh=0.30, currency="EUR"))
    label = "transient_external_fault_with_CT_saturation"
    data = assess_impact(sure(label), PROSUMER_A, CONSUMER_HOME, 4.0, grid=grid).to_dict()
    assert data["energy"]["p2p_price_per_kwh"] == pytest.approx(0.20) and data["energy"]["currency"] == "EUR"
    assert data["energy"]["transfer_not_delivered_cost"] == pytest.approx(4.0 * data["restoration"]["hours"] * 0.2)


def test_rul016_severity_orders_the_events():
    severity = {label: assess_impact(sure(label), PROSUMER_A, CONSUMER_HOME).severity for label in
                (PT_FAULT, "transient_external_fault_with_CT_saturation", "transient_sympathetic_inrush", INRUSH)}
    ranks = [SEVERITIES.index(s) for s in severity.values()]
    assert ranks == sorted(ranks, reverse=True) and ranks[0] > ranks[-1]


@pytest.mark.parametrize(
    ("prediction", "sender", "receiver", "kw", "message"),
    [
        (sure(INRUSH), "prosumer-z", CONSUMER_HOME, 5, "unknown sender"),
        (sure(INRUSH), PROSUMER_A, "nobody", 5, "unknown receiver"),
        (sure(INRUSH), COMMUNITY_BATTERY, COMMUNITY_BATTERY, 5, "same peer"),
        (sure(INRUSH), CONSUMER_HOME, EV_HUB, 5, "cannot be a sender"),
        (sure(INRUSH), PROSUMER_A, PROSUMER_B, 5, "cannot be a receiver"),
        (sure(INRUSH), PROSUMER_A, CONSUMER_HOME, -5, "positive"),
        (sure(INRUSH), PROSUMER_A, CONSUMER_HOME, 0, "positive"),
        (sure(INRUSH), PROSUMER_A, CONSUMER_HOME, 10_000, "cap"),
        (sure(INRUSH), PROSUMER_A, CONSUMER_HOME, math.inf, "finite"),
        (sure(INRUSH), PROSUMER_A, CONSUMER_HOME, "lots", "number of kW"),
        (sure(INRUSH), PROSUMER_B, EV_HUB, 31, "rating"),
        ({"label": "transient_alien_attack", "confidence": 0.9}, PROSUMER_A, CONSUMER_HOME, 5, "unknown label"),
        ({"label": 45, "confidence": 0.9}, PROSUMER_A, CONSUMER_HOME, 5, "unknown label id"),
        ({"confidence": 0.9}, PROSUMER_A, CONSUMER_HOME, 5, "no 'label'"),
        ({"label": INRUSH, "confidence": "high"}, PROSUMER_A, CONSUMER_HOME, 5, "confidence"),
        ({"label": INRUSH, "confidence": 1.7}, PROSUMER_A, CONSUMER_HOME, 5, "between 0 and 1"),
        ({"label": INRUSH, "confidence": None}, PROSUMER_A, CONSUMER_HOME, 5, "confidence"),
        ({"label": INRUSH}, PROSUMER_A, CONSUMER_HOME, 5, "no 'confidence'"),
        ({"label": INRUSH, "confidence": 0.9, "equipment": {"boiler": 0.9}}, PROSUMER_A, CONSUMER_HOME, 5,
         "unknown equipment"),
        ({"label": INRUSH, "confidence": 0.9, "unknown": "maybe"}, PROSUMER_A, CONSUMER_HOME, 5, "unknown"),
        ("not a mapping", PROSUMER_A, CONSUMER_HOME, 5, "mapping"),
    ],
)
def test_rul017_bad_input_raises_a_clear_error(prediction, sender, receiver, kw, message):
    with pytest.raises(ImpactInputError, match=message):
        assess_impact(prediction, sender, receiver, kw)


def test_rul018_repeated_reports_are_equal_and_independent():
    first = assess_impact(sure(PT_FAULT), PROSUMER_A, CONSUMER_HOME, 5.0)
    second = assess_impact(sure(PT_FAULT), PROSUMER_A, CONSUMER_HOME, 5.0)
    assert first.to_dict() == second.to_dict()
    mutated = first.to_dict()
    mutated["power_flow"]["before"]["losses_kw"] = -1
    mutated["islands"][0]["nodes"].clear()
    assert second.to_dict()["power_flow"]["before"]["losses_kw"] > 0 and second.to_dict()["islands"][0]["nodes"]


def test_rul019_precompute_covers_every_label_and_pair():
    from services.rules import precompute

    assert precompute() == len(LABELS) * len(PAIRS)
