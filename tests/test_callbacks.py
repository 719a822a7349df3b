"""The pure functions behind the dashboard's callbacks, without a browser.

Each test builds the app on a temp SQLite history and the shipped artifacts (GEM_ARTIFACTS_DIR
overrides the folder) and calls the callback logic inside a request context, as Dash would.
"""

from __future__ import annotations

import base64
import io
import json
import os
from pathlib import Path

import numpy as np
import pytest

from app import create_app
from app.pages.analyze import default_sample, sample_groups
from app.settings import Settings
from callbacks.analyze import (
    OUTPUT_KEYS,
    RESULT_KEYS,
    AnalyzeRequest,
    InputProblem,
    analyze_page_update,
    decode_uploads,
)
from callbacks.history import csv_href, history_rows
from callbacks.network import network_update
from components import ids
from services.analysis import EXTENSION_KEY, parse_analysis_id
from services.labels import LABELS, label_parts
from services.model_card import card_view, safe_card_view
from tests.layout import find_by_id

ROOT = Path(__file__).resolve().parents[1]
ARTIFACTS = Path(os.environ.get("GEM_ARTIFACTS_DIR") or ROOT / "artifacts")
PEERS = {"sender": "prosumer-a", "receiver": "consumer-home", "transfer_kw": 5.0}


def analysis_href(analysis_id: int) -> str:
    return f"/analysis/{analysis_id}"


def _app(tmp_path: Path, artifacts: Path = ARTIFACTS):
    settings = Settings(artifacts_dir=artifacts, database_url=f"sqlite:///{tmp_path / 'history.db'}",
                        instance_dir=tmp_path / "instance")
    return create_app(settings=settings)


@pytest.fixture
def context(tmp_path):
    """The AnalysisContext of a fresh app, inside a request (as in a callback)."""
    if not (ARTIFACTS / "best_model.pth").is_file():
        pytest.fail(f"no trained model in {ARTIFACTS}: the shipped artifacts are part of the repository")
    app = _app(tmp_path)
    with app.server.test_request_context("/"):
        yield app.server.extensions[EXTENSION_KEY]


@pytest.fixture
def no_model_context(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    app = _app(tmp_path, empty)
    with app.server.test_request_context("/"):
        yield app.server.extensions[EXTENSION_KEY]


def _upload(name: str, payload: bytes) -> str:
    return "data:application/octet-stream;base64," + base64.b64encode(payload).decode()


def _npy_bytes(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array)
    return buffer.getvalue()


def _first_sample(context) -> str:
    return context.samples()[0]["filename"]


# --- Analyze -------------------------------------------------------------------------------------

def test_analyze_button_updates_every_panel_and_adds_one_history_row(context):
    sample = _first_sample(context)
    request = AnalyzeRequest(trigger=ids.ANALYZE_BUTTON, source_tab=ids.SOURCE_SAMPLE, sample=sample, **PEERS)
    outputs = analyze_page_update(request, context)
    assert {"graph", "caption", "headline", "waveform", "confidence", "description", "impact", "latest",
            "result"} <= set(outputs) <= set(OUTPUT_KEYS)
    assert outputs["alert"] is None
    view = outputs["result"]
    stored = context.store.get(view["analysis_id"])
    assert context.store.count() == 1
    assert stored["sample_name"] == sample and stored["source"] == "sample"
    assert view["label"] == stored["label"]
    assert outputs["waveform"].id == ids.WAVEFORM and len(outputs["waveform"].figure["data"]) == 3
    assert view["impact"]["severity"] == stored["severity"]
    assert any(f"sev-{view['impact']['severity']}" in e["classes"] for e in outputs["graph"])
    assert stored["severity"].upper() in outputs["caption"]


def test_a_stated_relay_connection_is_read_shown_and_kept_and_a_bad_one_changes_nothing(context):
    request = AnalyzeRequest(trigger=ids.ANALYZE_BUTTON, sample=_first_sample(context),
                             relay_connection="yd_ia_minus_ic", **PEERS)
    outputs = analyze_page_update(request, context)
    assert outputs["result"]["relay_connection"] == "yd_ia_minus_ic"
    assert context.store.get(outputs["result"]["analysis_id"])["prediction"]["relay_connection"] == "yd_ia_minus_ic"
    assert "Read through the stated relay connection: Yd compensation I_A - I_C" in str(outputs["headline"])
    unstated = analyze_page_update(AnalyzeRequest(trigger=ids.ANALYZE_BUTTON, sample=_first_sample(context),
                                                  relay_connection="not_stated", **PEERS), context)
    assert unstated["result"]["relay_connection"] is None and "stated relay connection" not in str(unstated["headline"])
    refused = analyze_page_update(AnalyzeRequest(trigger=ids.ANALYZE_BUTTON, sample=_first_sample(context),
                                                 relay_connection="delta", **PEERS), context)
    assert "result" not in refused and "unknown relay_connection" in str(refused["alert"])
    assert context.store.count() == 2


def test_view_toggle_redraws_only_the_waveform(context):
    request = AnalyzeRequest(trigger=ids.ANALYZE_BUTTON, sample=_first_sample(context), **PEERS)
    view = analyze_page_update(request, context)["result"]
    toggled = analyze_page_update(AnalyzeRequest(trigger=ids.WAVEFORM_VIEW, view_mode="rms", result=view), context)
    assert set(toggled) == {"waveform"}
    assert "RMS" in toggled["waveform"].figure["layout"]["yaxis"]["title"]["text"]
    assert context.store.count() == 1


def test_peer_change_draws_the_new_path_and_clears_the_old_result(context):
    shown = analyze_page_update(AnalyzeRequest(trigger=ids.ANALYZE_BUTTON, sample=_first_sample(context), **PEERS),
                                context)
    assert shown["result"] is not None
    outputs = analyze_page_update(AnalyzeRequest(trigger=ids.RECEIVER, sender="prosumer-b", receiver="ev-hub",
                                                 result=shown["result"]), context)
    assert set(outputs) == {"graph", "caption", "alert", *RESULT_KEYS}
    path = {e["data"]["id"] for e in outputs["graph"] if "path" in e["classes"].split()}
    assert {"line-f1-3", "line-f1-2", "line-f1-1", "cb-feeder-1", "cb-feeder-2", "line-f2-3"} <= path
    assert "line-f3-1" not in path
    assert not any("sev-" in e["classes"] for e in outputs["graph"])
    # nothing on the page still speaks of the old transfer's analysis
    assert outputs["result"] is None
    for key in ("headline", "confidence", "impact", "description"):
        assert "Run an analysis" in str(outputs[key]) or "appear" in str(outputs[key]), key
    assert "no event analysed yet" in outputs["caption"] and "Prosumer Beta" in outputs["caption"]
    assert context.store.count() == 1


def test_simulated_event_is_analysed_with_its_true_label(context):
    label = "transient_capacitor_switching"
    request = AnalyzeRequest(trigger=ids.ANALYZE_BUTTON, source_tab=ids.SOURCE_SIMULATE, sim_label=label,
                             sim_seed=3, sim_params={"resonant_frequency_hz": 600, "inception_ms": None}, **PEERS)
    view = analyze_page_update(request, context)["result"]
    stored = context.store.get(view["analysis_id"])
    assert stored["source"] == "simulated" and stored["true_label"] == label
    # the history keeps what was simulated, not only the seed
    reopened = context.load(view["analysis_id"])
    assert reopened.simulation["seed"] == 3 and reopened.simulation["parameters"] == {"resonant_frequency_hz": 600}
    assert reopened.simulation["used"]["label"] == label
    assert "resonant_frequency_hz 600" in stored["sample_name"] and "seed 3" in stored["sample_name"]


def test_simulation_parameter_out_of_range_shows_an_alert_and_records_nothing(context):
    request = AnalyzeRequest(trigger=ids.ANALYZE_BUTTON, source_tab=ids.SOURCE_SIMULATE,
                             sim_label="transient_capacitor_switching", sim_params={"resonant_frequency_hz": 1e6},
                             **PEERS)
    outputs = analyze_page_update(request, context)
    assert set(outputs) == {"alert"}
    assert "resonant_frequency_hz" in str(outputs["alert"])
    assert context.store.count() == 0


def test_ferroresonance_mode_out_of_range_is_refused_with_its_range(context):
    request = AnalyzeRequest(trigger=ids.ANALYZE_BUTTON, source_tab=ids.SOURCE_SIMULATE,
                             sim_label="transient_ferroresonance", sim_seed=7, sim_params={"mode_index": 999999},
                             **PEERS)
    outputs = analyze_page_update(request, context)
    assert set(outputs) == {"alert"}
    message = str(outputs["alert"])
    assert "mode_index" in message and "between 0 and 3" in message and "999999" in message
    assert context.store.count() == 0


def test_good_csv_upload_is_analysed_and_kept_for_the_next_click(context):
    wave = np.load(ARTIFACTS / "sample_data" / _first_sample(context))
    time = np.arange(wave.shape[1]) / 10_000.0
    csv = "time,Ia,Ib,Ic\n" + "\n".join(f"{t:.6f},{a},{b},{c}" for t, a, b, c in zip(time, *wave, strict=True))
    request = AnalyzeRequest(trigger=ids.UPLOAD, upload_contents=_upload("r.csv", csv.encode()),
                             upload_filename="r.csv", **PEERS)
    outputs = analyze_page_update(request, context)
    assert outputs["alert"] is None
    assert np.allclose(outputs["upload_store"]["waveform"], wave, atol=1e-5)
    again = analyze_page_update(AnalyzeRequest(trigger=ids.ANALYZE_BUTTON, source_tab=ids.SOURCE_UPLOAD,
                                               upload_store=outputs["upload_store"], **PEERS), context)
    assert again["result"]["label"] == outputs["result"]["label"]
    rows, total = context.store.query(limit=5)
    assert total == 2 and {row["source"] for row in rows} == {"upload"}


@pytest.mark.parametrize(
    ("filename", "payload", "message"),
    [
        ("short.csv", b"time,Ia,Ib,Ic\n0,1,2,3\n", "726"),
        ("wrong.npy", None, "shape"),
        ("notes.docx", b"hello", "expected a .npy"),
        ("nan.npy", "nan", "NaN"),
    ],
)
def test_bad_upload_shows_its_message_and_changes_nothing(context, filename, payload, message):
    if payload is None:
        payload = _npy_bytes(np.zeros((2, 726), dtype=np.float32))
    elif payload == "nan":
        array = np.zeros((3, 726), dtype=np.float32)
        array[0, 5] = np.nan
        payload = _npy_bytes(array)
    request = AnalyzeRequest(trigger=ids.UPLOAD, upload_contents=_upload(filename, payload), upload_filename=filename,
                             **PEERS)
    outputs = analyze_page_update(request, context)
    assert set(outputs) == {"alert", "upload_status"}
    assert message in str(outputs["alert"]) and filename in str(outputs["alert"])
    assert context.store.count() == 0


def test_decode_upload_rejects_garbage_encoding_and_too_large_uploads():
    with pytest.raises(InputProblem, match="could not be read"):
        decode_uploads("data:x;base64,@@@not-base64@@@", "x.npy", max_bytes=1000)
    with pytest.raises(InputProblem, match="no file"):
        decode_uploads(None, "x.npy", max_bytes=1000)
    with pytest.raises(InputProblem, match="too large"):
        decode_uploads(_upload("x.npy", b"0" * 2000), "x.npy", max_bytes=1000)


def test_upload_in_amperes_is_converted_with_the_rated_current_and_kept(context):
    wave = np.load(ARTIFACTS / "sample_data" / _first_sample(context)).astype(np.float64)
    amperes = wave * 1000.0  # kA of the 1255.1 A reference -> A of the same unit
    request = AnalyzeRequest(trigger=ids.UPLOAD, upload_contents=_upload("r.npy", _npy_bytes(amperes)),
                             upload_filename="r.npy", upload_unit="A", upload_rated_current_a=1255.1, **PEERS)
    outputs = analyze_page_update(request, context)
    assert outputs["alert"] is None
    assert np.allclose(outputs["upload_store"]["waveform"], wave, rtol=1e-4, atol=1e-4)
    analysis = context.load(outputs["result"]["analysis_id"])
    assert analysis.units["unit"] == "A" and analysis.units["rated_current_a"] == pytest.approx(1255.1)


def test_analyze_with_the_upload_tab_but_no_upload_asks_for_one(context):
    outputs = analyze_page_update(AnalyzeRequest(trigger=ids.ANALYZE_BUTTON, source_tab=ids.SOURCE_UPLOAD, **PEERS),
                                  context)
    assert set(outputs) == {"alert"} and "upload" in str(outputs["alert"]).lower()


def test_same_sender_and_receiver_is_refused(context):
    request = AnalyzeRequest(trigger=ids.ANALYZE_BUTTON, sample=_first_sample(context), sender="community-battery",
                             receiver="community-battery", transfer_kw=5)
    outputs = analyze_page_update(request, context)
    assert set(outputs) == {"alert"} and "different" in str(outputs["alert"])


def test_empty_transfer_power_is_asked_for_not_defaulted(context):
    request = AnalyzeRequest(trigger=ids.ANALYZE_BUTTON, sample=_first_sample(context), sender="prosumer-a",
                             receiver="consumer-home", transfer_kw=None)
    outputs = analyze_page_update(request, context)
    assert set(outputs) == {"alert"} and "kW" in str(outputs["alert"])
    assert "at most 500" in str(outputs["alert"])  # the real limit, not only "above 0"
    assert context.store.count() == 0


def test_missing_model_gives_a_clear_alert_not_a_traceback(no_model_context):
    request = AnalyzeRequest(trigger=ids.ANALYZE_BUTTON, source_tab=ids.SOURCE_SIMULATE,
                             sim_label="transient_magnetising_inrush", sim_seed=1, **PEERS)
    outputs = analyze_page_update(request, no_model_context)
    assert set(outputs) == {"alert"}
    assert "Model unavailable" in str(outputs["alert"]) and "best_model.pth" in str(outputs["alert"])
    assert no_model_context.model_status().loaded is False


# --- History and the permanent page ------------------------------------------------------------------

def _record(index: int) -> dict:
    label = LABELS[index % len(LABELS)]
    parts = label_parts(label)
    return {"source": "api", "sender": "prosumer-a" if index % 2 else "prosumer-b", "receiver": "ev-hub",
            "transfer_kw": 5.0, "label": label, "label_id": index % len(LABELS), "confidence": (index % 10) / 10,
            "category": parts.category, "equipment": parts.equipment, "kind": parts.kind, "severity": "info",
            "transfer_status": "continues"}


def test_history_rows_page_sort_and_filter_on_the_server(no_model_context):
    store = no_model_context.store
    for index in range(60):
        store.add(_record(index))
    response, status = history_rows({"startRow": 0, "endRow": 25}, store, analysis_href)
    assert response["rowCount"] == 60 and len(response["rowData"]) == 25 and status == "60 analyses"
    assert response["rowData"][0]["analysis_id"] == 60  # newest first
    assert response["rowData"][0]["id"] == "[#60](/analysis/60)"
    page = history_rows({"startRow": 50, "endRow": 75}, store, analysis_href)[0]
    assert [row["analysis_id"] for row in page["rowData"]] == list(range(10, 0, -1))
    by_confidence = history_rows({"startRow": 0, "endRow": 5, "sortModel": [{"colId": "confidence", "sort": "desc"}]},
                                 store, analysis_href)[0]
    assert [row["confidence"] for row in by_confidence["rowData"]] == [0.9] * 5
    filtered = history_rows(
        {"startRow": 0, "endRow": 100,
         "filterModel": {"category": {"filterType": "text", "type": "equals", "filter": "transient"},
                         "sender": {"filterType": "text", "type": "equals", "filter": "prosumer-a"}}},
        store, analysis_href)[0]
    assert filtered["rowCount"] == len(filtered["rowData"]) > 0
    assert all(row["category"] == "transient" and row["sender"] == "prosumer-a" for row in filtered["rowData"])


def test_history_rows_with_a_bad_filter_says_why(no_model_context):
    response, status = history_rows(
        {"startRow": 0, "endRow": 10, "filterModel": {"confidence": {"filterType": "number", "type": "equals",
                                                                     "filter": "abc"}}},
        no_model_context.store, analysis_href)
    assert response == {"rowData": [], "rowCount": 0}
    assert status.startswith("Filter not applied") and "number" in status


def test_csv_export_holds_exactly_the_rows_the_grid_shows(no_model_context):
    """Event "contains capacitor" filters on the text shown (the pretty label), in the grid and the CSV alike."""
    store = no_model_context.store
    for index in range(len(LABELS) * 2):
        store.add(_record(index))
    model = {"label": {"filterType": "text", "type": "contains", "filter": "Capacitor"},
             "kind": {"filterType": "text", "type": "notContains", "filter": "inrush"},
             "created_at": {"filterType": "date", "type": "inRange", "dateFrom": "2000-01-01 00:00:00",
                            "dateTo": "2100-02-01 00:00:00"}}
    grid, _ = history_rows({"startRow": 0, "endRow": 500, "filterModel": model}, store, analysis_href)
    grid_ids = {row["analysis_id"] for row in grid["rowData"]}
    assert grid_ids and all("Capacitor" in row["event"] for row in grid["rowData"])
    href = csv_href(model, "/api/history.csv")
    assert href.startswith("/api/history.csv?filter=")
    client = no_model_context_client(no_model_context)
    lines = client.get(href).get_data(as_text=True).strip().splitlines()
    assert {int(line.split(",")[0]) for line in lines[1:]} == grid_ids
    # the displayed text, not the stored one: "power transformer" is in no label string with a space
    shown = history_rows({"startRow": 0, "endRow": 500, "filterModel": {
        "label": {"filterType": "text", "type": "startsWith", "filter": "power transformer - ab"}}}, store,
        analysis_href)[0]
    assert shown["rowCount"] > 0 and all(row["event"].startswith("Power transformer - AB") for row in shown["rowData"])
    assert csv_href({}, "/api/history.csv") == "/api/history.csv"


def no_model_context_client(context):
    from flask import current_app

    return current_app.test_client()


def test_severity_sorts_by_rank_not_alphabetically(no_model_context):
    store = no_model_context.store
    for index, severity in enumerate(("major", "info", "critical", "minor")):
        store.add({**_record(index), "severity": severity})
    rows = history_rows({"startRow": 0, "endRow": 10, "sortModel": [{"colId": "severity", "sort": "desc"}]},
                        store, analysis_href)[0]["rowData"]
    assert [row["severity"] for row in rows] == ["critical", "major", "minor", "info"]


def test_permanent_page_reloads_the_stored_analysis(context):
    request = AnalyzeRequest(trigger=ids.ANALYZE_BUTTON, sample=_first_sample(context), **PEERS)
    shown = analyze_page_update(request, context)["result"]
    reopened = context.load(str(shown["analysis_id"]))
    assert reopened.label == shown["label"]
    assert reopened.confidence == pytest.approx(shown["confidence"])
    assert [list(item) for item in reopened.top5] == [list(item) for item in shown["top5"]]
    assert np.allclose(reopened.waveform, shown["waveform"])
    assert reopened.impact == shown["impact"]
    assert reopened.description == shown["description"]
    assert reopened.headline == shown["headline"] and reopened.levels == shown["levels"]
    assert context.load("999") is None
    for bad in ("abc", "-1", "0", "1e3", "", None, "9" * 30):
        assert parse_analysis_id(bad) is None


# --- Network and Model ----------------------------------------------------------------------------------

def test_network_update_draws_the_power_flow_and_the_transfer():
    outputs = network_update("prosumer-a", "ev-hub", 10.0)
    assert outputs["alert"] is None
    hub = next(e for e in outputs["graph"] if e["data"]["id"] == "microgrid-hub")
    assert " pu" in hub["data"]["label"]
    assert any("path" in e["classes"].split() for e in outputs["graph"])
    assert outputs["buses"]["data"][0]["y"] and outputs["lines"]["data"][0]["y"]
    assert "sends 10 kW" in str(outputs["peers"])


@pytest.mark.parametrize(("sender", "receiver", "kw"), [("prosumer-a", "prosumer-a", 5.0), ("prosumer-a", "ev-hub", 1e6),
                                                       ("nobody", "ev-hub", 5.0), ("prosumer-a", "ev-hub", None),
                                                       ("prosumer-a", "ev-hub", True), ("prosumer-a", "ev-hub", [1]),
                                                       ("prosumer-a", "ev-hub", "abc")])
def test_network_update_with_a_bad_transfer_only_alerts(sender, receiver, kw, caplog):
    outputs = network_update(sender, receiver, kw)
    assert set(outputs) == {"alert"}
    assert outputs["alert"].color == "warning"  # the operator's input, not a logged failure
    assert not caplog.records


def test_card_view_reads_the_training_pipelines_model_card():
    card = {"model": "ConvNet", "seed": 1, "labels": 45, "training_data": "10 windows per class",
            "test": {"windows": 90, "accuracy": 0.95, "macro_f1": 0.94, "ece_before_calibration": 0.08,
                     "ece_after_calibration": 0.02, "per_label_recall": {LABELS[0]: 0.9},
                     "confusion_matrix": [[1, 0], [0, 1]]},
            "temperature": 1.7}
    view = card_view(card)
    assert list(view["metrics"])[:2] == ["accuracy", "macro_f1"]
    assert view["recall"] == {LABELS[0]: 0.9}
    assert view["confusion"] == [[1, 0], [0, 1]]
    assert view["calibration_facts"]["temperature"] == 1.7
    assert view["calibration_facts"]["ece_after_calibration"] == 0.02
    assert view["training"] == "10 windows per class"
    assert card_view(None)["metrics"] == {}
    view, problem = safe_card_view({"test": {"per_label_recall": [{"label": "x", "recall": "not a number"}]}})
    assert view["recall"] == {} and "could not be read" in problem


def test_samples_are_grouped_by_equipment_and_category():
    samples = [{"filename": f"s_{LABELS[i]}.npy", "true_label": LABELS[i], "true_label_id": i} for i in (0, 13, 26, 41)]
    samples.append({"filename": "mystery.npy", "true_label": None, "true_label_id": None})
    display, groups = sample_groups(samples)
    assert groups["Power transformer internal faults"] == [f"s_{LABELS[26]}.npy"]
    assert groups["ISPAR series unit internal faults"] == [f"s_{LABELS[13]}.npy"]
    assert groups["Transients (no internal fault)"] == [f"s_{LABELS[41]}.npy"]
    assert groups["Other recordings"] == ["mystery.npy"]
    assert display[f"s_{LABELS[26]}.npy"] == "AG fault \u00b7 s"
    assert default_sample(samples) == f"s_{LABELS[26]}.npy"


def test_model_page_shows_ece_as_a_percentage_the_levels_and_no_server_path(tmp_path):
    from app.pages import model_card as model_page

    folder = tmp_path / "card-only"
    folder.mkdir()
    figures = {"windows": 4500, "seed": 11, "source": "simulator", "category_accuracy": 0.999, "kind_accuracy": 0.98,
               "equipment_accuracy": 0.61, "exact_accuracy": 0.6, "confidently_wrong_equipment": 0.02,
               "confidently_wrong_label": 0.01, "unknown_rate": 0.003, "equipment_uncertain_rate": 0.35}
    card = {"test": {"accuracy": 0.99, "ece_after_calibration": 0.0005303, "windows": 900},
            "levels_report": {"simulator": figures, "shift": {**figures, "equipment_accuracy": None},
                              "independent_transients": figures, "notes": ["which ISPAR unit is not knowable"]}}
    (folder / "model_card.json").write_text(json.dumps(card))
    app = _app(tmp_path, folder)
    with app.server.test_request_context("/model"):
        page = model_page.layout()
    text = str(page)
    assert "0.05%" in text and "0.0005303" not in text  # ECE 0.0005303 shown as a percentage
    assert str(folder) not in text and str(tmp_path) not in text  # no server paths
    levels = str(find_by_id(page, ids.MODEL_LEVELS_REPORT))
    assert "61.0%" in levels and "n/a" in levels and "4,500" in levels
    assert "which ISPAR unit is not knowable" in text


def test_impact_text_names_the_equipment_instead_of_raw_ids():
    from components.analysis_panels import named, named_impact
    from services.grid import display_names

    names = display_names()
    text = named("prosumer-b -> ev-hub disrupted: cb-feeder-1 opens (ev-hub-2 stays)", names)
    assert text.startswith(f"{names['prosumer-b']} -> {names['ev-hub']} disrupted: {names['cb-feeder-1']} opens")
    assert "ev-hub-2" in text  # only whole ids are replaced
    shown = named_impact({"summary": "trip of cb-feeder-1", "actions": ["inspect power-transformer"],
                          "p2p_disruption_message": "prosumer-a cannot reach consumer-home"}, names)
    assert "cb-feeder-1" not in shown["summary"] and names["power-transformer"] in shown["actions"][0]
    assert names["consumer-home"] in shown["p2p_disruption_message"]


def test_history_rows_carry_the_headline_and_the_uncertain_unit(context):
    request = AnalyzeRequest(trigger=ids.ANALYZE_BUTTON, sample=_first_sample(context), **PEERS)
    shown = analyze_page_update(request, context)["result"]
    row = history_rows({"startRow": 0, "endRow": 5}, context.store, analysis_href)[0]["rowData"][0]
    assert row["headline"] == shown["headline"] and row["headline"]
    assert row["equipment_uncertain"] is bool(shown["levels"].get("equipment", {}).get("uncertain", False))
    stored = context.store.get(shown["analysis_id"])
    assert stored["headline"] == shown["headline"] and "headline" not in (stored["prediction"] or {})
