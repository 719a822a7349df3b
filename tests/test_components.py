"""Pure layout builders: figures, the cytoscape microgrid, cards and tables (no app, no browser)."""

from __future__ import annotations

import numpy as np
import pytest

from components import ids
from components.cards import (
    confidence_body,
    dom_id,
    event_tabs,
    grouped_sample_options,
    headline_body,
    impact_body,
    label_options,
    levels_block,
    model_banner,
    relay_connection_input,
    restoration_text,
    sim_param_inputs,
)
from components.figures import (
    calibration_summary_figure,
    confusion_figure,
    marginals_figure,
    recall_figure,
    rolling_rms,
    top5_figure,
    training_curve_figure,
    waveform_figure,
)
from components.microgrid import (
    ROW_SPREAD,
    SEVERITY_COLOURS,
    microgrid_elements,
    microgrid_stylesheet,
    normalise_severity,
)
from components.tables import history_row, latest_table
from services.grid import graph_elements, transfer_path_edges
from services.labels import LABELS, display_label
from services.rules import SEVERITIES, assess_impact
from services.simulation import parameter_specs
from services.waveform import N_SAMPLES, SAMPLE_RATE_HZ


def _find(component, predicate):
    """Every component in a layout tree that satisfies predicate, in document order."""
    if isinstance(component, list | tuple):
        return [found for item in component for found in _find(item, predicate)]
    if component is None or isinstance(component, str | int | float):
        return []
    found = [component] if predicate(component) else []
    children = getattr(component, "children", None)
    return found + (_find(children, predicate) if children is not None else [])


def _by_id(component, component_id):
    return _find(component, lambda item: getattr(item, "id", None) == component_id)


def _text(component) -> str:
    parts = []
    stack = [component]
    while stack:
        item = stack.pop(0)
        if isinstance(item, list | tuple):
            stack[:0] = list(item)
        elif isinstance(item, str | int | float):
            parts.append(str(item))
        elif item is not None and getattr(item, "children", None) is not None:
            stack.insert(0, item.children)
    return " ".join(parts)


# --- figures -------------------------------------------------------------------------------------

def test_waveform_figure_draws_three_phases_in_ms_with_inception_and_spans():
    wave = np.zeros((3, N_SAMPLES), dtype=np.float32)
    wave[1, 300:] = 2.0
    fig = waveform_figure(wave, inception_ms=30.0, explanation=[(28.0, 40.0), (50.0, 55.0)])
    assert [trace["name"] for trace in fig["data"]] == ["Phase A", "Phase B", "Phase C"]
    assert fig["data"][0]["x"][-1] == pytest.approx((N_SAMPLES - 1) / SAMPLE_RATE_HZ * 1000, abs=0.01)
    assert fig["data"][1]["y"][400] == 2.0
    assert fig["layout"]["hovermode"] == "x unified"
    assert fig["layout"]["xaxis"]["title"]["text"] == "time (ms)"
    rects = [shape for shape in fig["layout"]["shapes"] if shape["type"] == "rect"]
    lines = [shape for shape in fig["layout"]["shapes"] if shape["type"] == "line"]
    assert [(r["x0"], r["x1"]) for r in rects] == [(28.0, 40.0), (50.0, 55.0)]
    assert [line["x0"] for line in lines] == [30.0]


def test_waveform_figure_without_inception_has_no_line():
    fig = waveform_figure(np.zeros((3, N_SAMPLES)))
    assert fig["layout"]["shapes"] == []


def test_rms_view_of_a_unit_sine_settles_at_one_over_root_two():
    t = np.arange(N_SAMPLES) / SAMPLE_RATE_HZ
    wave = np.stack([np.sin(2 * np.pi * 60 * t)] * 3)
    rms = rolling_rms(wave)
    assert rms.shape == (3, N_SAMPLES)
    assert rms[0, 400] == pytest.approx(1 / np.sqrt(2), rel=0.01)
    fig = waveform_figure(wave, view="rms")
    assert fig["data"][0]["y"][400] == pytest.approx(1 / np.sqrt(2), rel=0.01)
    assert "RMS" in fig["layout"]["yaxis"]["title"]["text"]


def test_top5_figure_puts_the_winner_on_top_in_the_accent_colour():
    top5 = [(LABELS[41], 0.9), (LABELS[42], 0.05), (LABELS[0], 0.03), (LABELS[1], 0.01), (LABELS[2], 0.01)]
    bar = top5_figure(top5)["data"][0]
    assert bar["x"][-1] == 0.9  # horizontal bars are drawn bottom-up
    assert bar["customdata"][-1] == LABELS[41]
    assert bar["marker"]["color"][-1] != bar["marker"]["color"][0]


def test_marginals_figure_has_one_trace_per_part_ranked():
    fig = marginals_figure({"category": {"internal_fault": 0.2, "transient": 0.8},
                            "equipment": {"none": 0.8, "power_transformer": 0.2}, "kind": {}})
    assert [trace["name"] for trace in fig["data"]] == ["category", "equipment"]
    assert fig["data"][0]["x"] == [0.8, 0.2]


def test_confusion_figure_is_row_normalised():
    fig = confusion_figure([[8, 2], [0, 5]], ["a", "b"])
    assert fig["data"][0]["z"] == [[0.8, 0.2], [0.0, 1.0]]


def test_recall_figure_lists_worst_label_first():
    fig = recall_figure({LABELS[0]: 0.99, LABELS[1]: 0.5})
    assert fig["data"][0]["x"] == [0.5, 0.99]


def test_calibration_summary_figure_shows_before_and_after():
    summary = calibration_summary_figure({"ece_before_calibration": 0.05, "ece_after_calibration": 0.01,
                                          "nll_before_calibration": 0.3, "nll_after_calibration": 0.2})
    assert [trace["y"] for trace in summary["data"]] == [[0.05, 0.01], [0.3, 0.2]]
    assert [trace["yaxis"] for trace in summary["data"]] == ["y", "y2"]
    assert summary["layout"]["xaxis"]["title"]["text"] == "Expected calibration error"
    assert calibration_summary_figure({})["data"] == []  # empty figure with a message


def test_training_curve_figure_plots_accuracy_and_loss_per_epoch():
    history = [{"epoch": 1, "train_accuracy": 0.3, "validation_accuracy": 0.4, "train_loss": 2.0,
                "validation_loss": 1.8}, {"epoch": 2, "train_accuracy": 0.6, "validation_accuracy": 0.7,
                                          "train_loss": 1.0, "validation_loss": 0.9}]
    fig = training_curve_figure(history)
    by_name = {trace["name"]: trace for trace in fig["data"]}
    assert by_name["validation accuracy"]["y"] == [0.4, 0.7] and by_name["validation accuracy"]["yaxis"] == "y"
    assert by_name["training loss"]["yaxis"] == "y2" and by_name["training loss"]["x"] == [1, 2]
    assert training_curve_figure([])["data"] == []


# --- microgrid -------------------------------------------------------------------------------------

GRID = graph_elements()


def _element(elements, element_id):
    return next(e for e in elements if e["data"]["id"] == element_id)


def test_transfer_path_follows_the_feeder_and_skips_the_open_bypass():
    assert transfer_path_edges("prosumer-a", "consumer-home") == ("line-f1-2",)
    path = transfer_path_edges("prosumer-b", "ev-hub")
    assert path[0] == "line-f1-3" and path[-1] == "line-f2-3"
    assert "ispar-bypass" not in transfer_path_edges("utility-grid", "mv-bus")
    assert transfer_path_edges("prosumer-a", None) == () and transfer_path_edges("nobody", "ev-hub") == ()


def test_microgrid_elements_draw_every_node_and_edge_normal_before_an_event():
    elements = microgrid_elements(GRID["nodes"], GRID["edges"], sender="prosumer-a", receiver="consumer-home",
                                  path_edges=transfer_path_edges("prosumer-a", "consumer-home"))
    assert len(elements) == len(GRID["nodes"]) + len(GRID["edges"])
    assert "sender" in _element(elements, "prosumer-a")["classes"]
    assert "receiver" in _element(elements, "consumer-home")["classes"]
    assert "path" in _element(elements, "line-f1-2")["classes"].split()
    assert not any("sev-" in e["classes"] for e in elements)
    given = GRID["nodes"][[n["id"] for n in GRID["nodes"]].index("prosumer-a")]["position"]
    assert _element(elements, "prosumer-a")["position"] == {"x": given["x"], "y": given["y"] * ROW_SPREAD}


def test_microgrid_elements_colour_affected_parts_by_severity():
    elements = microgrid_elements(
        GRID["nodes"], GRID["edges"], sender="prosumer-a", receiver="consumer-home", severity="critical",
        affected_nodes=["power-transformer"], affected_edges=["cb-pt-hv"], deenergised=["microgrid-hub"],
        located=["power-transformer"], transfer_blocked=True, path_edges=["line-f1-2"],
    )
    assert {"affected", "located", "sev-critical"} <= set(_element(elements, "power-transformer")["classes"].split())
    assert "sev-critical" in _element(elements, "cb-pt-hv")["classes"]
    assert "deenergised" in _element(elements, "microgrid-hub")["classes"]
    assert "path-blocked" in _element(elements, "line-f1-2")["classes"]
    assert "sev-" not in _element(elements, "ev-hub")["classes"]


def test_power_flow_values_appear_on_the_graph():
    elements = microgrid_elements(GRID["nodes"], GRID["edges"], voltages_pu={"mv-bus": 0.93},
                                  loadings_percent={"line-f1-1": 120.0}, show_ratings=True)
    bus = _element(elements, "mv-bus")
    assert "0.930 pu" in bus["data"]["label"] and "voltage-violation" in bus["classes"]
    line = _element(elements, "line-f1-1")
    assert line["data"]["label"] == "120%" and "overloaded" in line["classes"]
    assert "630 kVA" in _element(elements, "power-transformer")["data"]["label"]


def test_every_rules_severity_has_its_own_colour_in_the_stylesheet():
    selectors = {rule["selector"] for rule in microgrid_stylesheet()}
    for severity in SEVERITIES:
        level = normalise_severity(severity)
        assert level == severity and level in SEVERITY_COLOURS
        assert f"node.sev-{level}" in selectors and f"edge.sev-{level}" in selectors
    assert normalise_severity(None) == "normal"
    assert normalise_severity("HIGH") == "major"


# --- cards and tables ---------------------------------------------------------------------------------

def test_grouped_sample_options_put_a_disabled_header_before_each_group():
    options = grouped_sample_options({"a.npy": "A", "b.npy": "B"}, {"Faults": ["a.npy"], "Transients": ["b.npy"],
                                                                     "Empty": []})
    assert [o["value"] for o in options] == ["__group__Faults", "a.npy", "__group__Transients", "b.npy"]
    assert [o.get("disabled", False) for o in options] == [True, False, True, False]
    assert len([o for o in label_options(LABELS) if not o.get("disabled")]) == 45


def test_sim_param_inputs_follow_the_parameter_specs():
    specs = parameter_specs("transient_magnetising_inrush")
    inputs = _find(sim_param_inputs(specs), lambda c: isinstance(getattr(c, "id", None), dict))
    assert [c.id["name"] for c in inputs] == [spec["name"] for spec in specs]
    assert all(c.id["type"] == ids.SIM_PARAM_TYPE for c in inputs)
    assert [(c.min, c.max, c.value) for c in inputs] == [(s["min"], s["max"], s["default"]) for s in specs]


PREDICTION = {"label": "transient_magnetising_inrush", "confidence": 0.97,
              "top5": [["transient_magnetising_inrush", 0.97], ["transient_sympathetic_inrush", 0.02]],
              "category": {"internal_fault": 0.01, "transient": 0.99},
              "equipment": {"none": 0.99, "power_transformer": 0.01, "ispar_series": 0.0, "ispar_exciting": 0.0},
              "kind": {"magnetising_inrush": 0.97}, "unknown": False}


def test_confidence_body_shows_value_and_warns_only_when_unknown():
    body = confidence_body(PREDICTION)
    assert _text(_by_id(body, ids.CONFIDENCE_VALUE)) == "97.0%"
    assert _by_id(body, ids.UNKNOWN_WARNING) == []
    flagged = confidence_body({**PREDICTION, "unknown": True, "unknown_reason": "far from training data"})
    assert "far from training data" in _text(_by_id(flagged, ids.UNKNOWN_WARNING))


def test_impact_body_shows_the_rules_report():
    report = assess_impact({**PREDICTION, "label": LABELS[26], "confidence": 0.99,
                            "category": {"internal_fault": 0.99, "transient": 0.01},
                            "equipment": {"power_transformer": 0.99, "none": 0.01},
                            "kind": {"AG": 0.99}}, "prosumer-a", "consumer-home", 5.0).to_dict()
    body = impact_body(report, {"microgrid-hub": "Microgrid hub"})
    assert _text(_by_id(body, ids.IMPACT_SEVERITY)) == report["severity"].upper()
    assert report["transfer_status"].capitalize() in _text(_by_id(body, ids.IMPACT_TRANSFER_STATUS))
    energy = report["energy"]["transfer_not_delivered_kwh"]
    assert f"{energy:,.2f} kWh" in _text(_by_id(body, ids.IMPACT_ENERGY))
    actions = _by_id(body, ids.IMPACT_ACTIONS)[0].children
    assert [li.children for li in actions] == report["actions"]
    headline = _text(headline_body(PREDICTION, report))
    assert report["severity"].upper() in headline and "97.0%" in headline


def test_latest_table_links_each_row_to_its_permanent_page():
    rows = [{"id": 7, "created_at": "2026-01-02T03:04:05Z", "label": LABELS[41], "confidence": 0.5,
             "severity": "info", "transfer_status": "continues", "sample_name": "x.npy"}]
    table = latest_table(rows, lambda i: f"/grid/analysis/{i}")
    links = _find(table, lambda c: getattr(c, "href", None) is not None)
    assert [link.href for link in links] == ["/grid/analysis/7"]
    assert "2026-01-02 03:04:05" in _text(table)
    assert "No analyses yet" in _text(latest_table([], str))


def test_history_row_has_markdown_link_and_readable_event():
    row = history_row({"id": 3, "label": "transient_magnetising_inrush", "confidence": 0.25, "created_at": "2026-01-02T03:04:05Z"},
                      lambda i: f"/analysis/{i}")
    assert row["id"] == "[#3](/analysis/3)"
    assert row["analysis_id"] == 3 and row["event"] == "Magnetising inrush"
    assert row["created_at"] == "2026-01-02 03:04:05"


def test_model_banner_only_when_the_model_is_not_loaded():
    assert _find(model_banner({"loaded": True, "message": "model loaded"}),
                 lambda c: "model-status-banner" in (getattr(c, "className", "") or "")) == []
    banner = model_banner({"loaded": False, "message": "model unavailable: best_model.pth is missing"})
    assert "best_model.pth is missing" in _text(banner)
    assert _text(banner).count("navailable") == 1


LEVELS_UNCERTAIN = {
    "category": {"value": "internal_fault", "probability": 0.97},
    "kind": {"value": "AG", "phases": "A-G", "probability": 0.93},
    "equipment": {"value": "ispar_exciting", "probability": 0.48, "uncertain": True,
                  "candidates": [["ispar_exciting", 0.48], ["power_transformer", 0.41], ["ispar_series", 0.08]]},
}


def test_levels_block_shows_three_rows_and_the_candidate_units_when_uncertain():
    block = levels_block(LEVELS_UNCERTAIN)
    assert block.id == ids.RESULT_LEVELS
    rows = [_text(row) for row in block.children]
    assert len(rows) == 3
    assert "Category" in rows[0] and "Internal fault" in rows[0] and "97%" in rows[0]
    assert "phases A-G (AG)" in rows[1] and "93%" in rows[1]
    assert "unit uncertain" in rows[2]
    assert "ISPAR exciting unit 48%, power transformer 41%, ISPAR series unit 8%" in rows[2]
    certain = {**LEVELS_UNCERTAIN, "equipment": {"value": "power_transformer", "probability": 0.96, "uncertain": False,
                                                 "candidates": [["power_transformer", 0.96]]}}
    equipment_row = _text(levels_block(certain).children[2])
    assert "power transformer" in equipment_row and "96%" in equipment_row and "uncertain" not in equipment_row
    transient = {"category": {"value": "transient", "probability": 0.99},
                 "kind": {"value": "magnetising_inrush", "phases": None, "probability": 0.95},
                 "equipment": {"value": "none", "probability": 0.99, "uncertain": False, "candidates": []}}
    assert "magnetising inrush" in _text(levels_block(transient).children[1])
    assert levels_block(None) is None and levels_block({}) is None


def test_levels_block_lists_the_candidate_phases_when_they_are_uncertain():
    levels = {**LEVELS_UNCERTAIN, "phases": {"value": "A", "probability": 0.38, "uncertain": True,
                                             "candidates": [["A", 0.38], ["AB", 0.27], ["turn-to-turn", 0.2]]}}
    phases_row = _text(levels_block(levels).children[1])
    assert "phases uncertain" in phases_row and "A 38%, A-B 27%, turn-to-turn 20%" in phases_row
    sure = {**LEVELS_UNCERTAIN, "phases": {"value": "A", "probability": 0.93, "uncertain": False,
                                           "candidates": [["A", 0.93]]}}
    assert "uncertain" not in _text(levels_block(sure).children[1])


def test_levels_block_says_when_the_category_itself_is_uncertain():
    levels = {"category": {"value": "internal_fault", "probability": 0.55, "uncertain": True,
                           "alternative": {"category": "transient", "probability": 0.45,
                                           "kind": "external_fault_ct_saturation", "phases": None,
                                           "kind_probability": 0.45}},
              "kind": {"value": "ABC", "phases": "A-B-C", "probability": 0.2},
              "equipment": LEVELS_UNCERTAIN["equipment"]}
    category_row = _text(levels_block(levels).children[0])
    assert "fault or transient uncertain" in category_row
    assert "Internal fault 55%, Transient 45%" in category_row
    ct = {"category": {"value": "transient", "probability": 0.9, "uncertain": False, "alternative": None},
          "kind": {"value": "external_fault_ct_saturation", "phases": None, "probability": 0.9},
          "equipment": {"value": "none", "probability": 0.9, "uncertain": False, "candidates": []}}
    rows = [_text(row) for row in levels_block(ct).children]
    assert "Transient" in rows[0] and "90%" in rows[0] and "uncertain" not in rows[0]
    assert "external fault with CT saturation" in rows[1]


def test_headline_is_the_main_line_of_the_verdict_with_the_levels_below():
    prediction = {**PREDICTION, "headline": "Internal fault, phases A-G, unit uncertain: ISPAR exciting unit 48 %",
                  "levels": LEVELS_UNCERTAIN}
    body = headline_body(prediction, {"severity": "critical", "event_type": "Internal fault"})
    main_line = _text(body[0])
    assert "CRITICAL" in main_line and prediction["headline"] in main_line
    assert _by_id(body, ids.RESULT_LEVELS)
    old = headline_body(PREDICTION, {"severity": "info", "event_type": "Magnetising inrush"})  # no levels stored
    assert "Magnetising inrush" in _text(old[0]) and not _by_id(old, ids.RESULT_LEVELS)


def test_event_tabs_are_a_tablist_of_buttons_with_one_panel_each():
    tabs = event_tabs([(ids.SOURCE_SAMPLE, "Sample", ["a"]), (ids.SOURCE_UPLOAD, "Upload", ["b"])], ids.SOURCE_UPLOAD)
    store, tablist, panels = tabs.children
    assert store.id == ids.EVENT_SOURCE and store.data == ids.SOURCE_UPLOAD
    assert tablist.role == "tablist" and [b.role for b in tablist.children] == ["tab", "tab"]
    assert [b.id for b in tablist.children] == [ids.SOURCE_SAMPLE, ids.SOURCE_UPLOAD]
    assert [getattr(b, "aria-selected") for b in tablist.children] == ["false", "true"]
    assert [p.hidden for p in panels.children] == [True, False]
    assert [getattr(p, "aria-labelledby") for p in panels.children] == [ids.SOURCE_SAMPLE, ids.SOURCE_UPLOAD]
    assert [getattr(b, "aria-controls") for b in tablist.children] == [p.id for p in panels.children]


def test_dom_id_writes_pattern_ids_as_the_dash_renderer_does():
    assert dom_id({"type": ids.SIM_PARAM_TYPE, "name": "mode"}) == '{"name":"mode","type":"analyze-sim-param"}'
    assert dom_id("plain") == "plain"


def test_probability_bars_are_a_list_with_the_winner_highlighted():
    from components.cards import probability_bars

    bars = probability_bars([("Inrush", 0.9), ("Sympathetic inrush", 0.1)], component_id=ids.TOP5_GRAPH,
                            label="Top 5 labels")
    assert bars.id == ids.TOP5_GRAPH and getattr(bars, "aria-label") == "Top 5 labels"
    assert [_text(row) for row in bars.children] == ["Inrush 90.0%", "Sympathetic inrush 10.0%"]
    fills = [row.children[1].children.style for row in bars.children]
    assert fills[0]["width"] == "90.0%" and fills[0]["backgroundColor"] != fills[1]["backgroundColor"]
    assert _by_id(confidence_body(PREDICTION), ids.MARGINALS_GRAPH)


def test_history_row_carries_the_headline_and_the_uncertain_unit_marker():
    from components.tables import HISTORY_COLUMNS

    record = {"id": 4, "label": LABELS[0], "confidence": 0.48, "equipment": "ispar_exciting",
              "headline": "Internal fault, phases A-G, unit uncertain: ISPAR exciting unit 48 %",
              "equipment_uncertain": True}
    row = history_row(record, str)
    assert row["headline"] == record["headline"] and row["equipment_uncertain"] is True
    assert history_row({"id": 5, "label": LABELS[0]}, str)["equipment_uncertain"] is False  # older rows
    equipment = next(column for column in HISTORY_COLUMNS if column["field"] == "equipment")
    assert "equipment_uncertain" in equipment["cellClassRules"]["unit-uncertain"]
    event = next(column for column in HISTORY_COLUMNS if column["field"] == "label")
    assert "headline" in event["tooltipValueGetter"]["function"] and "event" in event["valueFormatter"]["function"]


@pytest.mark.parametrize(("hours", "shown"), [(5 / 3600, "5 s"), (0.2, "12 min"), (3.5, "3.5 h"), (72, "3.0 days"),
                                              (0, "none needed"), (None, "none needed"), (True, "none needed"),
                                              (float("nan"), "none needed")])
def test_restoration_time_reads_in_the_unit_an_operator_uses(hours, shown):
    assert restoration_text(hours) == shown


def test_display_label_titles_the_45_and_passes_anything_else_through_as_text():
    assert display_label("internal_power_transformer_internal_faults_Class1") == "Power transformer - AG fault"
    assert display_label("transient_magnetising_inrush") == "Magnetising inrush"
    assert display_label("not_a_label") == "not_a_label"
    assert display_label(None) == ""


def test_the_relay_connection_select_offers_not_known_first_then_every_connection():
    from services.inference.connections import RELAY_CONNECTIONS

    select = relay_connection_input().children[1]
    assert select.id == ids.RELAY_CONNECTION and select.value == "not_stated"
    assert [option["value"] for option in select.options] == ["not_stated", *RELAY_CONNECTIONS]
    assert select.options[0]["label"].startswith("Not known")
