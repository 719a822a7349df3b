"""The JSON API against the real model, rules and history (docs/contracts.md, "JSON API", issue 3 items 2-3)."""

from __future__ import annotations

import csv
import io
import json
import logging
import os
import re
import shutil
import socket
import uuid
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import create_engine, text

from app import create_app
from app.settings import Settings
from services.analysis import EXTENSION_KEY
from services.history import HistoryStore
from services.inference import get_predictor
from services.rules import DEFAULT_TRANSFER_KW, assess_impact

ROOT = Path(__file__).resolve().parents[1]
ARTIFACTS = ROOT / "artifacts"
ORIGINAL_FIELDS = {
    "selected_sample", "sender_peer", "receiver_peer", "predicted_label", "confidence", "true_label",
    "description", "causes", "p2p_impact_details", "waveform_data",
}
IMPACT_FIELDS = {"event_type", "highlight_keys", "is_fault_condition", "p2p_disruption_message"}


def _samples_info() -> dict:
    return json.loads((ARTIFACTS / "samples_info.json").read_text())


@pytest.fixture
def app(artifacts_copy, tmp_path):
    settings = Settings(artifacts_dir=artifacts_copy, instance_dir=tmp_path / "instance")
    return create_app(settings=settings)


@pytest.fixture
def client(app):
    return app.server.test_client()


def _store(app) -> HistoryStore:
    return app.server.extensions[EXTENSION_KEY].store


def _first_sample(client) -> dict:
    samples = client.get("/api/samples").get_json()["samples"]
    assert samples, "the shipped artifacts must hold sample waveforms"
    return samples[0]


def test_predict_original_request_returns_every_original_field(app, client, artifacts_copy):
    sample = _first_sample(client)
    request = {"sample_filename": sample["filename"], "sender_peer": "prosumer-a", "receiver_peer": "consumer-home"}
    response = client.post("/predict", json=request)
    assert response.status_code == 200, response.get_data(as_text=True)
    body = response.get_json()
    assert set(body) >= ORIGINAL_FIELDS
    assert body["selected_sample"] == sample["filename"]
    assert body["sender_peer"] == "prosumer-a" and body["receiver_peer"] == "consumer-home"
    assert re.fullmatch(r"\d{1,3}\.\d{2}%", body["confidence"])
    assert body["true_label"] == _samples_info()[sample["filename"]]["true_label_str"]
    predictor = get_predictor(artifacts_copy)
    assert body["description"] == predictor.describe(body["predicted_label"])["description"]
    assert body["causes"] == list(predictor.describe(body["predicted_label"])["causes"])
    assert set(body["p2p_impact_details"]) >= IMPACT_FIELDS
    assert isinstance(body["p2p_impact_details"]["highlight_keys"], list)
    assert isinstance(body["p2p_impact_details"]["is_fault_condition"], bool)
    waveform = np.load(artifacts_copy / "sample_data" / sample["filename"])
    assert np.asarray(body["waveform_data"]).shape == (3, 726)
    np.testing.assert_allclose(np.asarray(body["waveform_data"], dtype=np.float32), waveform)


def test_predict_answer_matches_the_model_and_the_rules_service(client, artifacts_copy):
    sample = _first_sample(client)
    body = client.post(
        "/predict",
        json={"sample_filename": sample["filename"], "sender_peer": "prosumer-b", "receiver_peer": "ev-hub"},
    ).get_json()
    predictor = get_predictor(artifacts_copy)
    prediction = predictor.predict(np.load(artifacts_copy / "sample_data" / sample["filename"]))
    assert body["predicted_label"] == prediction.label
    assert body["confidence"] == f"{prediction.confidence * 100:.2f}%"
    report = assess_impact(prediction.to_dict(), "prosumer-b", "ev-hub", DEFAULT_TRANSFER_KW)
    assert body["p2p_impact_details"] == json.loads(json.dumps(report.p2p_impact_details()))
    assert body["impact"] == json.loads(json.dumps(report.to_dict()))


def test_predict_extensions_and_one_history_row(app, client):
    sample = _first_sample(client)
    body = client.post(
        "/predict",
        json={"sample_filename": sample["filename"], "sender_peer": "prosumer-a", "receiver_peer": "ev-hub",
              "transfer_kw": 12.5},
    ).get_json()
    for field in ("analysis_id", "top5", "marginals", "unknown", "unknown_reason", "explanation",
                  "inception_ms", "impact"):
        assert field in body
    assert len(body["top5"]) == 5
    assert set(body["marginals"]) == {"category", "equipment", "kind"}
    assert abs(sum(body["marginals"]["category"].values()) - 1.0) < 1e-3
    assert body["transfer_kw"] == 12.5
    row = _store(app).get(body["analysis_id"])
    assert row["source"] == "sample" and row["sample_name"] == sample["filename"]
    assert row["label"] == body["predicted_label"] and row["transfer_kw"] == 12.5
    assert row["true_label"] == sample["true_label"]
    assert _store(app).count() == 1


def test_predict_reads_through_a_stated_relay_connection_and_the_history_keeps_it(app, client, artifacts_copy):
    sample = _first_sample(client)
    request = {"sample_filename": sample["filename"], "sender_peer": "prosumer-a", "receiver_peer": "ev-hub"}
    unstated = client.post("/predict", json=request).get_json()
    stated = client.post("/predict", json={**request, "relay_connection": "yd_ia_minus_ib"}).get_json()
    assert unstated["relay_connection"] is None and stated["relay_connection"] == "yd_ia_minus_ib"
    assert stated["top5"] != unstated["top5"]  # read through another head
    for field in ("predicted_label", "confidence", "p2p_impact_details"):  # the original fields stay
        assert field in stated
    kept = client.get(f"/api/history/{stated['analysis_id']}").get_json()
    assert kept["prediction"]["relay_connection"] == "yd_ia_minus_ib"
    assert client.post("/predict", json={**request, "relay_connection": ""}).get_json()["relay_connection"] is None


def test_predict_accepts_a_raw_waveform(app, client, artifacts_copy):
    sample = _first_sample(client)
    waveform = np.load(artifacts_copy / "sample_data" / sample["filename"]).tolist()
    body = client.post(
        "/predict", json={"waveform": waveform, "sender_peer": "micro-industry", "receiver_peer": "local-business"}
    ).get_json()
    assert body["true_label"] == "N/A" and body["selected_sample"] is None
    assert body["source"] == "api"
    assert _store(app).get(body["analysis_id"])["source"] == "api"


def test_predict_raw_waveform_in_amperes_is_converted_with_the_rated_current(app, client, artifacts_copy):
    sample = _first_sample(client)
    window = np.load(artifacts_copy / "sample_data" / sample["filename"]).astype(np.float64)
    in_window = client.post("/predict", json={"waveform": window.tolist(), "sender_peer": "prosumer-a",
                                              "receiver_peer": "ev-hub"}).get_json()
    assert in_window["units"] is None
    rated = 800.0  # the same event recorded in amperes on a unit rated 800 A: 1 pu = 800 A
    amperes = window / 1.2551 * rated
    body = client.post("/predict", json={"waveform": amperes.tolist(), "unit": "A", "rated_current_a": rated,
                                         "sender_peer": "prosumer-a", "receiver_peer": "ev-hub"}).get_json()
    assert body["units"]["unit"] == "A" and body["units"]["rated_current_a"] == rated
    np.testing.assert_allclose(np.asarray(body["waveform_data"]), window, rtol=1e-4, atol=1e-5)
    assert body["predicted_label"] == in_window["predicted_label"]
    assert _store(app).get(body["analysis_id"])["prediction"]["units"]["unit"] == "A"
    for bad in ({"unit": "furlong"}, {"unit": "A", "rated_current_a": -5}):
        refused = client.post("/predict", json={"waveform": amperes.tolist(), "sender_peer": "prosumer-a",
                                                "receiver_peer": "ev-hub", **bad})
        assert refused.status_code == 400 and "error" in refused.get_json(), bad
    refused = client.post("/predict", json={"sample_filename": sample["filename"], "unit": "A",
                                            "sender_peer": "prosumer-a", "receiver_peer": "ev-hub"})
    assert refused.status_code == 400 and "raw waveform" in refused.get_json()["error"]


def test_history_csv_export_takes_the_grids_filter_model(app, client):
    sample = _first_sample(client)
    answer = client.post("/predict", json={"sample_filename": sample["filename"], "sender_peer": "prosumer-a",
                                           "receiver_peer": "ev-hub"}).get_json()
    shown = answer["pretty_label"]
    model = json.dumps({"label": {"filterType": "text", "type": "equals", "filter": shown.upper()}})
    rows = list(csv.reader(io.StringIO(client.get("/api/history.csv", query_string={"filter": model}).get_data(
        as_text=True))))
    assert [int(row[0]) for row in rows[1:]] == [answer["analysis_id"]]
    assert client.get("/api/history.csv", query_string={"filter": "{not json"}).status_code == 400
    assert client.get("/api/history.csv", query_string={"filter": "[1, 2]"}).status_code == 400


GOOD = {"sender_peer": "prosumer-a", "receiver_peer": "consumer-home"}
WAVE = [[0.0] * 726] * 3
BAD_BODIES = [
    ("malformed_json", b'{"sample_filename": "x.npy", ', 400, "not valid JSON"),
    ("empty_body", b"", 400, "JSON object"),
    ("json_array", b"[1, 2, 3]", 400, "JSON object"),
    ("nan_token", b'{"waveform": [[NaN]], "sender_peer": "prosumer-a", "receiver_peer": "ev-hub"}', 400, "JSON"),
    ("missing_sender", {"sample_filename": "x.npy", "receiver_peer": "ev-hub"}, 400, "sender_peer"),
    ("missing_sample_and_waveform", GOOD, 400, "sample_filename"),
    ("sender_not_string", {**GOOD, "sender_peer": 7, "waveform": WAVE}, 400, "sender_peer must be a string"),
    ("unknown_sender", {**GOOD, "sender_peer": "mallory", "waveform": WAVE}, 400, "unknown sender_peer"),
    ("unknown_receiver", {**GOOD, "receiver_peer": "the-moon", "waveform": WAVE}, 400, "unknown receiver_peer"),
    ("sender_is_receiver", {"sender_peer": "community-battery", "receiver_peer": "community-battery",
                            "waveform": WAVE}, 400, "different"),
    ("sample_not_string", {**GOOD, "sample_filename": 12}, 400, "must be a string"),
    ("both_sample_and_waveform", {**GOOD, "sample_filename": "a.npy", "waveform": WAVE}, 400, "not both"),
    ("waveform_not_list", {**GOOD, "waveform": "1,2,3"}, 400, "waveform"),
    ("waveform_wrong_shape", {**GOOD, "waveform": [[0.0] * 726] * 2}, 400, "shape"),
    ("waveform_transposed", {**GOOD, "waveform": [[0.0] * 3] * 726}, 400, "shape"),
    ("waveform_ragged", {**GOOD, "waveform": [[0.0] * 726, [0.0] * 725, [0.0] * 726]}, 400, "waveform"),
    ("waveform_strings", {**GOOD, "waveform": [["a"] * 726] * 3}, 400, "waveform"),
    ("waveform_overflow_is_inf", b'{"waveform": [[1e999' + b", 0" * 725 + b"]" + (b", [0" + b", 0" * 725 + b"]") * 2
     + b'], "sender_peer": "prosumer-a", "receiver_peer": "ev-hub"}', 400, ""),
    ("transfer_kw_string", {**GOOD, "waveform": WAVE, "transfer_kw": "5"}, 400, "transfer_kw"),
    ("transfer_kw_bool", {**GOOD, "waveform": WAVE, "transfer_kw": True}, 400, "transfer_kw"),
    ("transfer_kw_negative", {**GOOD, "waveform": WAVE, "transfer_kw": -3}, 400, "transfer_kw"),
    ("unknown_sample", {**GOOD, "sample_filename": "no_such_sample.npy"}, 404, "unknown sample"),
    ("dot_dot_slash", {**GOOD, "sample_filename": "../samples_info.npy"}, 400, "not a path"),
    ("deep_traversal", {**GOOD, "sample_filename": "../../../../etc/passwd"}, 400, "not a path"),
    ("absolute_path", {**GOOD, "sample_filename": "/etc/hosts.npy"}, 400, "not a path"),
    ("encoded_traversal", {**GOOD, "sample_filename": "%2e%2e%2f%2e%2e%2fsecret.npy"}, 400, "not a path"),
    ("encoded_slash", {**GOOD, "sample_filename": "sub%2Fsample.npy"}, 400, "not a path"),
    ("double_encoded", {**GOOD, "sample_filename": "%252e%252e%252fx.npy"}, 400, "URL-encoded"),
    ("backslash", {**GOOD, "sample_filename": "..\\..\\secret.npy"}, 400, "not a path"),
    ("nul_byte", {**GOOD, "sample_filename": "sample.npy\u0000.txt"}, 400, "not a path"),
    ("windows_drive", {**GOOD, "sample_filename": "C:secret.npy"}, 400, "not a path"),
    ("not_npy", {**GOOD, "sample_filename": "samples_info.json"}, 400, ".npy"),
    ("unknown_relay_connection", {**GOOD, "waveform": WAVE, "relay_connection": "delta"}, 400, "unknown relay_connection"),
    ("relay_connection_number", {**GOOD, "waveform": WAVE, "relay_connection": 2}, 400, "relay_connection must be a string"),
]


@pytest.mark.parametrize(("body", "status", "reason"), [case[1:] for case in BAD_BODIES],
                         ids=[case[0] for case in BAD_BODIES])
def test_bad_input_answers_json_error_and_writes_nothing(app, client, body, status, reason):
    if isinstance(body, bytes):
        response = client.post("/predict", data=body, content_type="application/json")
    else:
        response = client.post("/predict", json=body)
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.mimetype == "application/json"
    payload = response.get_json()
    assert set(payload) == {"error"} and reason in payload["error"]
    assert "Traceback" not in response.get_data(as_text=True)
    assert _store(app).count() == 0


def test_an_unknown_peer_is_not_echoed_back_whole(client):
    response = client.post("/predict", json={**GOOD, "sender_peer": "m" * 500_000, "waveform": WAVE})
    assert response.status_code == 400
    message = response.get_json()["error"]
    assert message.startswith("unknown sender_peer 'mmm") and "..." in message and len(message) < 300


def test_body_over_one_megabyte_is_refused_with_413(app, client):
    padding = "x" * (1024 * 1024 + 10)
    response = client.post("/predict", data=json.dumps({**GOOD, "pad": padding}), content_type="application/json")
    assert response.status_code == 413
    assert "too large" in response.get_json()["error"]
    assert _store(app).count() == 0


def test_symlink_out_of_the_sample_folder_is_never_read(app, client, artifacts_copy, tmp_path):
    outside = tmp_path / "outside.npy"
    np.save(outside, np.ones((3, 726), dtype=np.float32))
    link = artifacts_copy / "sample_data" / "zz_escape.npy"
    os.symlink(outside, link)
    try:
        response = client.post("/predict", json={**GOOD, "sample_filename": "zz_escape.npy"})
        assert response.status_code == 404
        assert "unknown sample" in response.get_json()["error"]
        names = [item["filename"] for item in client.get("/api/samples").get_json()["samples"]]
        assert "zz_escape.npy" not in names
    finally:
        link.unlink()
    assert _store(app).count() == 0


def test_a_new_sample_file_is_seen_without_restart(client, artifacts_copy):
    sample = _first_sample(client)
    copy = artifacts_copy / "sample_data" / "zz_new_sample.npy"
    shutil.copy(artifacts_copy / "sample_data" / sample["filename"], copy)
    try:
        response = client.post("/predict", json={**GOOD, "sample_filename": copy.name})
        assert response.status_code == 200
        assert response.get_json()["true_label"] == "N/A"  # not in samples_info.json
    finally:
        copy.unlink()


def test_unexpected_error_is_500_without_traceback_and_logged(app, client, caplog, monkeypatch):
    import app.api as api_module

    def broken_view(_analysis):
        raise KeyError("a bug")

    monkeypatch.setattr(api_module, "api_view", broken_view)
    sample = _first_sample(client)
    with caplog.at_level(logging.ERROR):
        response = client.post("/predict", json={**GOOD, "sample_filename": sample["filename"]})
    assert response.status_code == 500
    assert response.get_json() == {"error": "internal error"}
    assert any("unexpected error" in record.getMessage() for record in caplog.records)


def test_database_down_app_starts_health_says_503_and_predict_keeps_the_analysis(artifacts_copy, tmp_path):
    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))
    port = closed.getsockname()[1]  # bound but not listening: connections are refused
    try:
        url = f"postgresql+psycopg://postgres@127.0.0.1:{port}/test?connect_timeout=2"
        app = create_app(settings=Settings(artifacts_dir=artifacts_copy, instance_dir=tmp_path, database_url=url))
        client = app.server.test_client()
        health = client.get("/api/health")
        assert health.status_code == 503
        assert health.get_json()["database"]["reachable"] is False
        assert health.get_json()["model"]["loaded"] is True
        sample = _first_sample(client)
        response = client.post("/predict", json={**GOOD, "sample_filename": sample["filename"]})
        assert response.status_code == 200  # the analysis is not lost to the history
        body = response.get_json()
        assert body["saved"] is False and body["analysis_id"] is None
        assert body["save_error"] == "the history database is unreachable"
        assert body["predicted_label"] and len(body["waveform_data"]) == 3
        history = client.get("/api/history")
        assert history.status_code == 503
        assert history.get_json() == {"error": "history unavailable: the history database is unreachable"}
    finally:
        closed.close()


def test_health_reports_model_fingerprint_and_database(client, artifacts_copy):
    response = client.get("/api/health")
    assert response.status_code == 200
    body = response.get_json()
    assert body["status"] == "ok"
    assert body["model"]["loaded"] is True
    assert body["model"]["fingerprint"] == get_predictor(artifacts_copy).fingerprint
    assert body["database"] == {"reachable": True, "backend": "sqlite", "message": "database reachable"}


@pytest.mark.parametrize("damage", ["missing", "corrupt"])
def test_model_missing_or_corrupt_app_starts_health_and_predict_say_503(tmp_path, damage):
    artifacts = tmp_path / "artifacts"
    shutil.copytree(ARTIFACTS, artifacts, ignore=shutil.ignore_patterns("*.onnx", "*.onnx.data", "best_model.pth"))
    if damage == "corrupt":
        (artifacts / "best_model.pth").write_bytes(b"this is not a torch checkpoint")
    app = create_app(settings=Settings(artifacts_dir=artifacts, instance_dir=tmp_path / "instance"))
    client = app.server.test_client()
    health = client.get("/api/health")
    assert health.status_code == 503
    assert health.get_json()["model"]["loaded"] is False
    assert "model unavailable" in health.get_json()["model"]["message"]
    sample = _first_sample(client)
    response = client.post("/predict", json={**GOOD, "sample_filename": sample["filename"]})
    assert response.status_code == 503
    assert "model unavailable" in response.get_json()["error"]
    assert _store(app).count() == 0
    assert client.get("/").status_code == 200  # the dashboard still serves (it shows a banner)


def test_history_endpoints_list_filter_fetch_and_export(app, client):
    sample = _first_sample(client)
    first = client.post("/predict", json={**GOOD, "sample_filename": sample["filename"]}).get_json()
    second = client.post(
        "/predict", json={"sample_filename": sample["filename"], "sender_peer": "prosumer-b", "receiver_peer": "ev-hub"}
    ).get_json()
    listing = client.get("/api/history").get_json()
    assert listing["total"] == 2 and listing["limit"] == 50 and listing["offset"] == 0
    assert [item["id"] for item in listing["items"]] == [second["analysis_id"], first["analysis_id"]]
    assert "waveform" not in listing["items"][0]
    by_peer = client.get("/api/history?peer=ev-hub").get_json()
    assert [item["id"] for item in by_peer["items"]] == [second["analysis_id"]]
    by_label = client.get("/api/history", query_string={"label": first["predicted_label"], "limit": 1}).get_json()
    assert by_label["total"] == 2 and len(by_label["items"]) == 1
    assert client.get("/api/history?since=2000-01-01T00:00:00Z&until=2001-01-01T00:00:00Z").get_json()["total"] == 0
    for bad in ("limit=0", "limit=abc", "offset=-1", "since=yesterday", "sort=waveform"):
        response = client.get(f"/api/history?{bad}")
        assert response.status_code == 400 and "error" in response.get_json(), bad

    item = client.get(f"/api/history/{first['analysis_id']}").get_json()
    assert item["label"] == first["predicted_label"]
    np.testing.assert_allclose(np.asarray(item["waveform"]), np.asarray(first["waveform_data"]))
    assert client.get("/api/history/999999").status_code == 404
    assert client.get("/api/history/abc").status_code == 400

    export = client.get("/api/history.csv")
    assert export.status_code == 200 and export.mimetype == "text/csv"
    rows = list(csv.reader(io.StringIO(export.get_data(as_text=True))))
    assert rows[0][0] == "id" and [int(row[0]) for row in rows[1:]] == [second["analysis_id"], first["analysis_id"]]
    assert client.get("/api/history.csv?since=nonsense").status_code == 400


def test_samples_endpoint_lists_the_sample_folder_with_true_labels(client, artifacts_copy):
    body = client.get("/api/samples").get_json()
    on_disk = sorted(path.name for path in (artifacts_copy / "sample_data").glob("*.npy"))
    assert [item["filename"] for item in body["samples"]] == on_disk and body["count"] == len(on_disk)
    info = _samples_info()
    for item in body["samples"]:
        if item["filename"] in info:
            assert item["true_label"] == info[item["filename"]]["true_label_str"]
            assert item["true_label_id"] == info[item["filename"]]["true_label_id"]


@pytest.mark.postgres
def test_predict_records_history_in_postgresql(artifacts_copy, tmp_path):
    url = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
    schema = f"gem_api_{uuid.uuid4().hex[:10]}"  # a fresh schema keeps parallel runs apart
    admin = create_engine(url)
    with admin.begin() as connection:
        connection.execute(text(f"CREATE SCHEMA {schema}"))
    try:
        scoped = f"{url}?options=-csearch_path%3D{schema}"
        app = create_app(settings=Settings(artifacts_dir=artifacts_copy, instance_dir=tmp_path, database_url=scoped))
        client = app.server.test_client()
        sample = _first_sample(client)
        body = client.post("/predict", json={**GOOD, "sample_filename": sample["filename"]}).get_json()
        assert _store(app).backend == "postgresql"
        _store(app).dispose()
        restarted = HistoryStore(scoped)
        assert restarted.get(body["analysis_id"])["label"] == body["predicted_label"]
        assert restarted.count() == 1
        restarted.dispose()
        assert client.get("/api/health").get_json()["database"]["backend"] == "postgresql"
        _store(app).dispose()
    finally:
        with admin.begin() as connection:
            connection.execute(text(f"DROP SCHEMA {schema} CASCADE"))
        admin.dispose()


@pytest.mark.parametrize(("method", "path", "status", "allow"), [
    ("GET", "/predict", 405, "POST"),
    ("PUT", "/predict", 405, "POST"),
    ("POST", "/api/samples", 405, "GET"),
    ("DELETE", "/api/history", 405, "GET"),
    ("GET", "/api/no-such-route", 404, None),
    ("POST", "/api/history/1/extra", 404, None),
])
def test_routes_that_do_not_exist_answer_json_not_the_dashboard(client, method, path, status, allow):
    response = client.open(path, method=method)
    assert response.status_code == status
    assert response.is_json and "error" in response.get_json()
    assert response.headers.get("Allow") == allow
    assert response.headers["X-Content-Type-Options"] == "nosniff"


def test_api_answers_carry_nosniff(client):
    assert client.get("/api/samples").headers["X-Content-Type-Options"] == "nosniff"
    assert client.get("/api/health").headers["X-Content-Type-Options"] == "nosniff"
