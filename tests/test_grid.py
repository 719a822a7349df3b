"""The microgrid model: one data definition, a real AC power flow, islands and tariffs."""

from __future__ import annotations

import json
import math

import pytest

from services.grid import (
    CB_ISPAR_LOAD,
    CB_ISPAR_SOURCE,
    CB_PT_HV,
    CB_PT_LV,
    COMMUNITY_BATTERY,
    CONSUMER_HOME,
    CONSUMER_LOAD,
    EV_HUB,
    ISPAR_EXCITING,
    ISPAR_SERIES,
    MICRO_INDUSTRY,
    MICROGRID_HUB,
    PEERS,
    POWER_TRANSFORMER,
    PROSUMER_A,
    PROSUMER_B,
    RECEIVERS,
    SENDERS,
    UTILITY_GRID,
    Tariffs,
    Transfer,
    TransferError,
    graph_elements,
    microgrid,
    run_power_flow,
    validate_transfer,
)

ORIGINAL_IDS = {
    "prosumer-a", "prosumer-b", "community-battery", "micro-industry", "consumer-home", "ev-hub",
    "local-business", "consumer-load", "microgrid-hub",
}
PT_TRIP = {"opened": {CB_PT_HV, CB_PT_LV}, "dead": {POWER_TRANSFORMER}}


def test_grid001_original_interface_ids_and_roles():
    grid = microgrid()
    assert set(grid.node_by_id) >= ORIGINAL_IDS
    assert set(PEERS) | {MICROGRID_HUB} == ORIGINAL_IDS
    assert SENDERS == ("prosumer-a", "prosumer-b", "community-battery", "micro-industry")
    assert RECEIVERS == ("consumer-home", "ev-hub", "local-business", "community-battery")
    kinds = {n.id: n.technology.lower() for n in grid.nodes}
    assert "pv" in kinds[PROSUMER_A] and "battery" in kinds[PROSUMER_A]
    assert "wind" in kinds[PROSUMER_B]
    assert "co-generation" in kinds[MICRO_INDUSTRY]


def test_grid002_graph_elements_are_plain_data_of_the_same_graph():
    elements = graph_elements()
    json.dumps(elements)  # plain data only
    grid = microgrid()
    node_ids = [n["id"] for n in elements["nodes"]]
    assert node_ids == [n.id for n in grid.nodes]
    assert [e["id"] for e in elements["edges"]] == [e.id for e in grid.edges]
    for node in elements["nodes"]:
        assert {"x", "y"} <= set(node["position"]) and node["name"] and node["kind"]
    for edge in elements["edges"]:
        assert edge["source"] in node_ids and edge["target"] in node_ids
        assert edge["kind"] in ("line", "transformer", "breaker-switch", "connection")
        if edge["kind"] == "line":
            assert edge["rating_kva"] > 100  # NAYY 4x150 at 0.4 kV: about 187 kVA
    equipment = {"utility-grid", "power-transformer", "ispar-series", "ispar-exciting", "capacitor-bank",
                 "parallel-transformer", "nonlinear-load", "feeder-1"}
    assert equipment <= set(node_ids)


def test_grid003_every_node_reaches_the_utility_in_normal_state():
    grid = microgrid()
    state = grid.energisation()
    assert state.deenergised == frozenset() and state.islands == ()
    assert state.grid_connected == frozenset(grid.node_by_id)


def test_grid004_default_operating_point_is_physical():
    result = run_power_flow()
    assert result.converged
    assert 0.9 <= result.min_voltage_pu <= result.max_voltage_pu <= 1.1
    assert result.losses_kw > 0
    assert 0 < result.max_line_loading_percent < 100


def test_grid005_power_balance_import_equals_load_minus_generation_plus_losses():
    grid = microgrid()
    result = run_power_flow()
    load = sum(n.load_kw for n in grid.nodes)
    generation = sum(n.generation_kw + n.storage_kw for n in grid.nodes)
    assert result.grid_import_kw == pytest.approx(load - generation + result.losses_kw, abs=0.2)


def test_grid006_transfer_changes_loadings_along_its_path_only():
    grid = microgrid()
    _, path_edges = grid.path(PROSUMER_A, EV_HUB)
    assert {"line-f1-1", "cb-feeder-1", "cb-feeder-2", "line-f2-1", "line-f2-2", "line-f2-3"} == set(path_edges)
    base = run_power_flow()
    moved = run_power_flow(Transfer(PROSUMER_A, EV_HUB, 20.0))
    for line in ("line-f1-1", "line-f2-1", "line-f2-2", "line-f2-3"):
        assert abs(moved.line_loading_percent[line] - base.line_loading_percent[line]) > 3, line
    for line in ("line-f3-1", "line-f3-2", "line-f1-3"):
        assert abs(moved.line_loading_percent[line] - base.line_loading_percent[line]) < 0.5, line
    # the receiver's voltage drops as it draws more
    assert moved.bus_voltage_pu[EV_HUB] < base.bus_voltage_pu[EV_HUB]


def test_grid007_power_flow_results_are_memoised():
    first = run_power_flow(Transfer(PROSUMER_B, CONSUMER_HOME, 3.0))
    again = run_power_flow(Transfer(PROSUMER_B, CONSUMER_HOME, 3.0))
    assert first is again
    with pytest.raises(TypeError):
        first.bus_voltage_pu["prosumer-b"] = 2.0  # read-only: cached results cannot be corrupted


def test_grid008_transformer_trip_islands_microgrid_around_the_community_battery():
    result = run_power_flow(**PT_TRIP)
    state = result.energisation
    assert MICROGRID_HUB in state.islanded and CONSUMER_HOME in state.islanded
    assert POWER_TRANSFORMER in state.deenergised
    assert CONSUMER_LOAD in state.grid_connected  # fed by the parallel transformer
    island = state.island_of(MICROGRID_HUB)
    assert island.grid_former == COMMUNITY_BATTERY and island.balanced
    assert result.converged and result.min_voltage_pu >= 0.9 and result.max_voltage_pu <= 1.1
    # the battery now carries what the microgrid imported before (its load minus its generation)
    grid = microgrid()
    deficit = sum(grid.node(n).load_kw - grid.node(n).generation_kw for n in island.nodes)
    assert result.grid_former_output_kw[COMMUNITY_BATTERY] == pytest.approx(deficit, abs=5.0)


def test_grid009_ispar_trip_opens_the_pcc_and_kills_unsupplied_loads():
    result = run_power_flow(opened={CB_ISPAR_SOURCE, CB_ISPAR_LOAD}, dead={ISPAR_SERIES, ISPAR_EXCITING})
    state = result.energisation
    assert CB_PT_LV in state.opened_edges  # loss of mains: the microgrid islands at its PCC
    assert CONSUMER_LOAD in state.deenergised and POWER_TRANSFORMER in state.deenergised
    assert MICROGRID_HUB in state.islanded
    assert CONSUMER_LOAD not in result.bus_voltage_pu


def test_grid010_island_without_grid_forming_unit_is_deenergised():
    grid = (microgrid().with_node(COMMUNITY_BATTERY, grid_forming=False)
            .with_node(MICRO_INDUSTRY, grid_forming=False))
    state = grid.energisation(**PT_TRIP)
    assert MICROGRID_HUB in state.deenergised and state.islanded == frozenset()


def test_grid011_tariffs_price_between_feed_in_and_retail():
    tariffs = Tariffs(feed_in_per_kwh=0.05, retail_per_kwh=0.25)
    assert tariffs.p2p_price_per_kwh == pytest.approx(0.15)
    assert Tariffs(0.05, 0.25, p2p_share=0.25).p2p_price_per_kwh == pytest.approx(0.10)
    assert Transfer(PROSUMER_A, CONSUMER_HOME, 5).value(2.0, tariffs) == pytest.approx(1.5)
    with pytest.raises(ValueError):
        Tariffs(feed_in_per_kwh=0.3, retail_per_kwh=0.2)
    with pytest.raises(ValueError):
        Tariffs(p2p_share=1.5)


def test_grid012_microgrid_variants_compare_by_content():
    base = microgrid()
    changed = base.with_node(PROSUMER_A, rated_storage_kw=0.0)
    assert changed != base and hash(changed) != hash(base)
    assert base.with_node(PROSUMER_A, rated_storage_kw=20.0) == base
    with pytest.raises(KeyError):
        base.with_node("nowhere", load_kw=1.0)


@pytest.mark.parametrize(
    ("sender", "receiver", "kw", "message"),
    [
        ("prosumer-z", CONSUMER_HOME, 5, "unknown sender"),
        (PROSUMER_A, "house-9", 5, "unknown receiver"),
        (CONSUMER_HOME, EV_HUB, 5, "cannot be a sender"),
        (PROSUMER_A, PROSUMER_B, 5, "cannot be a receiver"),
        (COMMUNITY_BATTERY, COMMUNITY_BATTERY, 5, "same peer"),
        (PROSUMER_A, CONSUMER_HOME, -1, "positive"),
        (PROSUMER_A, CONSUMER_HOME, 0, "positive"),
        (PROSUMER_A, CONSUMER_HOME, math.nan, "finite"),
        (PROSUMER_A, CONSUMER_HOME, 1e6, "cap"),
        (PROSUMER_B, EV_HUB, 35, "sender prosumer-b's rating"),
        (MICRO_INDUSTRY, CONSUMER_HOME, 40, "receiver consumer-home's rating"),
    ],
)
def test_grid013_bad_transfers_raise_clear_errors(sender, receiver, kw, message):
    with pytest.raises(TransferError, match=message):
        validate_transfer(Transfer(sender, receiver, kw))


def test_grid014_unknown_outage_element_raises():
    with pytest.raises(TransferError, match="unknown grid element"):
        run_power_flow(opened={"cb-nowhere"})
    assert UTILITY_GRID in microgrid().utility_nodes()


def test_grid015_outage_cases_leave_the_cached_network_untouched():
    from services.grid import clear_caches

    normal = run_power_flow().to_dict()
    run_power_flow(Transfer(PROSUMER_A, EV_HUB, 12.0), **PT_TRIP)
    run_power_flow(opened={CB_ISPAR_SOURCE, CB_ISPAR_LOAD}, dead={ISPAR_SERIES, ISPAR_EXCITING})
    clear_caches(networks=False)  # recompute from the same cached pandapower network
    assert run_power_flow().to_dict() == normal
