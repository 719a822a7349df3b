"""`POST /api/predict-file`: recordings uploaded as files (window files and COMTRADE records)."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest

from app import create_app
from app.settings import Settings
from services.analysis import EXTENSION_KEY
from tests.layout import find_by_id
from tests.test_comtrade_ingest import (
    MARGIN,
    PHASE_CHANNELS,
    _record_10khz,
    _source,
    _trigger_for_window_at,
    _winding_record,
    write_comtrade,
)

ROOT = Path(__file__).resolve().parents[1]
ARTIFACTS = ROOT / "artifacts"
PEERS = {"sender_peer": "prosumer-a", "receiver_peer": "consumer-home"}
ORIGINAL_FIELDS = {
    "selected_sample", "sender_peer", "receiver_peer", "predicted_label", "confidence", "true_label",
    "description", "causes", "p2p_impact_details", "waveform_data",
}


@pytest.fixture
def app(artifacts_copy, tmp_path):
    return create_app(settings=Settings(artifacts_dir=artifacts_copy, instance_dir=tmp_path / "instance"))


@pytest.fixture
def client(app):
    return app.server.test_client()


def _store(app):
    return app.server.extensions[EXTENSION_KEY].store


def _post(client, files: list[tuple[str, bytes]], **fields):
    data = {**PEERS, **fields}
    data["file"] = [(io.BytesIO(content), name) for name, content in files]
    return client.post("/api/predict-file", data=data, content_type="multipart/form-data")


def _npy(window: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, window.astype(np.float32))
    return buffer.getvalue()


def _fault_record() -> tuple[bytes, bytes, np.ndarray]:
    window = _source()
    cfg, dat, _ = write_comtrade(_record_10khz(window, 30.0), PHASE_CHANNELS, fmt="BINARY",
                                 trigger_ms=_trigger_for_window_at(MARGIN))
    return cfg, dat, window


def test_api_file001_npy_window_is_answered_like_predict_and_recorded(app, client, artifacts_copy):
    name = sorted(p.name for p in (artifacts_copy / "sample_data").glob("*.npy"))[0]
    window = np.load(artifacts_copy / "sample_data" / name)
    by_file = _post(client, [("relay-7.npy", _npy(window))], transfer_kw="12.5")
    assert by_file.status_code == 200, by_file.get_data(as_text=True)
    body = by_file.get_json()
    assert set(body) >= ORIGINAL_FIELDS
    assert body["source"] == "upload" and body["selected_sample"] == "relay-7.npy" and body["transfer_kw"] == 12.5
    assert body["recording"] is None and body["true_label"] == "N/A"
    by_sample = client.post("/predict", json={**PEERS, "sample_filename": name}).get_json()
    assert body["predicted_label"] == by_sample["predicted_label"]
    assert body["waveform_data"] == by_sample["waveform_data"]
    row = _store(app).get(body["analysis_id"])
    assert row["source"] == "upload" and row["sample_name"] == "relay-7.npy"


def test_api_file002_comtrade_pair_in_any_order_says_what_was_read(app, client):
    cfg, dat, window = _fault_record()
    response = _post(client, [("fault.dat", dat), ("fault.cfg", cfg)])
    assert response.status_code == 200, response.get_data(as_text=True)
    body = response.get_json()
    assert body["selected_sample"] == "fault.cfg"
    assert body["recording"]["channels"] == ["IdA", "IdB", "IdC"] and body["recording"]["placement"] == "trigger"
    stored = _store(app).get(body["analysis_id"])
    assert stored["recording"] == body["recording"]  # the history keeps where the window came from
    recovered = np.asarray(body["waveform_data"])
    factor = body["units"]["factor"]  # the record's amperes in window units (services.units)
    assert body["units"]["unit"] == "A" and body["units"]["source"] == "COMTRADE .cfg"
    assert np.abs(recovered - factor * window).max() < 1e-3 * np.abs(factor * window).max()
    assert _store(app).count() == 1


def test_api_file003_winding_record_needs_channels_and_then_works(app, client):
    cfg, dat, _ = _winding_record()
    refused = _post(client, [("w.cfg", cfg), ("w.dat", dat)])
    assert refused.status_code == 400 and "IA_HV" in refused.get_json()["error"]
    assert _store(app).count() == 0
    named = _post(client, [("w.cfg", cfg), ("w.dat", dat)], channels="4, 5, 6")
    assert named.status_code == 200, named.get_data(as_text=True)
    assert named.get_json()["recording"]["channels"] == ["IA_HV", "IB_HV", "IC_HV"]


BAD_UPLOADS = [
    ("no_file", [], {}, 400, "missing field file"),
    ("dat_without_cfg", [("fault.dat", b"1,0,1,2,3\n")], {}, 400, ".cfg"),
    ("wrong_shape_npy", [("x.npy", None)], {}, 400, "726"),
    ("unknown_suffix", [("notes.docx", b"hello")], {}, 400, ""),
    ("unknown_sender", [("x.npy", b"")], {"sender_peer": "mallory"}, 400, "unknown sender_peer"),
    ("same_peers", [("x.npy", b"")], {"sender_peer": "community-battery", "receiver_peer": "community-battery"}, 400,
     "different"),
    ("transfer_not_a_number", [("x.npy", b"")], {"transfer_kw": "five"}, 400, "transfer_kw"),
    ("transfer_infinite", [("x.npy", b"")], {"transfer_kw": "inf"}, 400, "transfer_kw"),
]


@pytest.mark.parametrize(("files", "fields", "status", "reason"), [case[1:] for case in BAD_UPLOADS],
                         ids=[case[0] for case in BAD_UPLOADS])
def test_api_file004_bad_uploads_answer_json_errors_and_write_nothing(app, client, files, fields, status, reason):
    files = [(name, _npy(np.zeros((2, 726))) if content is None else content) for name, content in files]
    response = _post(client, files, **fields)
    assert response.status_code == status, response.get_data(as_text=True)
    payload = response.get_json()
    assert set(payload) == {"error"} and reason in payload["error"]
    assert _store(app).count() == 0


def test_api_file005_json_body_is_refused_with_415(app, client):
    response = client.post("/api/predict-file", json={**PEERS, "waveform": [[0.0] * 726] * 3})
    assert response.status_code == 415 and "multipart/form-data" in response.get_json()["error"]


def test_api_file006_a_record_may_exceed_the_json_limit_but_not_the_record_limit(app, client):
    cfg, dat, _ = _fault_record()
    padded = dat + b"\0" * (2 * 1024 * 1024)  # 2 MB: over the 1 MB JSON limit, under the 10 MB record limit
    response = _post(client, [("fault.cfg", cfg), ("fault.dat", padded)])
    assert response.status_code == 400, "read, then refused for its content, not for its size"
    assert "too large" not in response.get_json()["error"]
    huge = _post(client, [("big.npy", b"\0" * (11 * 1024 * 1024))])
    assert huge.status_code == 413 and "too large" in huge.get_json()["error"]
    assert _store(app).count() == 0


def test_api_file007_path_like_file_names_are_only_names(app, client, artifacts_copy):
    name = sorted(p.name for p in (artifacts_copy / "sample_data").glob("*.npy"))[0]
    window = np.load(artifacts_copy / "sample_data" / name)
    response = _post(client, [("../../etc/evil.npy", _npy(window))])
    assert response.status_code == 200
    assert response.get_json()["selected_sample"] == "evil.npy"


def test_api_file008_the_permanent_page_says_which_record_and_window_were_analysed(app, client, artifacts_copy):
    from app.pages import analysis_detail as analysis_page
    from components import ids

    cfg, dat, _ = _fault_record()
    from_record = _post(client, [("fault.cfg", cfg), ("fault.dat", dat)]).get_json()["analysis_id"]
    name = sorted(p.name for p in (artifacts_copy / "sample_data").glob("*.npy"))[0]
    from_sample = client.post("/predict", json={**PEERS, "sample_filename": name}).get_json()["analysis_id"]
    with app.server.test_request_context(f"/analysis/{from_record}"):
        line = find_by_id(analysis_page.layout(analysis_id=str(from_record)), ids.ANALYSIS_RECORDING)
    assert line is not None
    assert line.children.startswith("COMTRADE record from Substation Nord / T1 87T relay: IdA, IdB, IdC")
    assert "placed by the trigger" in line.children
    with app.server.test_request_context(f"/analysis/{from_sample}"):
        assert find_by_id(analysis_page.layout(analysis_id=str(from_sample)), ids.ANALYSIS_RECORDING) is None


def test_api_file009_unit_and_rated_current_form_fields_convert_a_window(app, client, artifacts_copy):
    name = sorted(p.name for p in (artifacts_copy / "sample_data").glob("*.npy"))[0]
    window = np.load(artifacts_copy / "sample_data" / name).astype(np.float64)
    per_unit = window / 1.2551  # the same event in per unit of the recorded unit's rating
    body = _post(client, [("pu.npy", _npy(per_unit))], unit="pu").get_json()
    assert body["units"]["unit"] == "pu"
    np.testing.assert_allclose(np.asarray(body["waveform_data"]), window, rtol=1e-4, atol=1e-5)
    kiloamperes = per_unit * 2.0  # a 2 kA unit
    body = _post(client, [("ka.npy", _npy(kiloamperes))], unit="kA", rated_current_a="2000").get_json()
    assert body["units"]["rated_current_a"] == 2000.0
    np.testing.assert_allclose(np.asarray(body["waveform_data"]), window, rtol=1e-4, atol=1e-5)
    refused = _post(client, [("ka.npy", _npy(kiloamperes))], unit="kA", rated_current_a="lots")
    assert refused.status_code == 400 and "rated current" in refused.get_json()["error"]


def test_api_file009b_a_relay_connection_form_field_is_read_or_refused(app, client, artifacts_copy):
    name = sorted(p.name for p in (artifacts_copy / "sample_data").glob("*.npy"))[0]
    window = np.load(artifacts_copy / "sample_data" / name)
    body = _post(client, [("w.npy", _npy(window))], relay_connection="zero_sequence_removed").get_json()
    assert body["relay_connection"] == "zero_sequence_removed"
    assert _store(app).get(body["analysis_id"])["prediction"]["relay_connection"] == "zero_sequence_removed"
    refused = _post(client, [("w.npy", _npy(window))], relay_connection="star")
    assert refused.status_code == 400 and "unknown relay_connection 'star'" in refused.get_json()["error"]
    assert _store(app).count() == 1


def test_api_file010_upload_file_names_are_stored_without_control_or_format_characters(app, client):
    window = np.zeros((3, 726), dtype=np.float32)
    window[0, 100:200] = 1.0
    response = _post(client, [("\tev\u202e=HYPERLINK(1)\x7f.npy", _npy(window))])
    assert response.status_code == 200, response.get_data(as_text=True)
    rows, _ = _store(app).query(limit=1)
    assert rows[0]["sample_name"] == "ev=HYPERLINK(1).npy"


def test_api_file011_body_limits_admit_an_upload_of_the_limit_on_each_route():
    from app.limits import body_limit

    settings = Settings(max_upload_bytes=10 * 1024 * 1024, max_body_bytes=1024 * 1024)
    base64_upload = 4 * (10 * 1024 * 1024 // 3 + 1) + len("data:application/octet-stream;base64,")
    assert body_limit("_dash-update-component", "application/json", settings) > base64_upload + 1024 * 1024
    assert body_limit("api/predict-file", "multipart/form-data; boundary=x", settings) > 10 * 1024 * 1024
    assert body_limit("predict", "application/json", settings) == 1024 * 1024
    assert body_limit("analysis/1", None, settings) == 1024 * 1024


def test_api_file012_a_declared_upload_over_the_limit_is_refused_unread(app, client):
    limit = app.server.config["GEM_SETTINGS"].max_upload_bytes
    response = client.post("/api/predict-file", data=b"", content_type="multipart/form-data; boundary=x",
                           environ_overrides={"CONTENT_LENGTH": str(limit * 2)})
    assert response.status_code == 413 and response.mimetype == "application/json"
    assert "too large" in response.get_json()["error"] and _store(app).count() == 0


def test_api_file013_body_limits_apply_under_the_prefix_only(artifacts_copy, tmp_path):
    from flask import Flask, request

    portal = Flask("portal")
    portal.add_url_rule("/upload", "upload", lambda: str(len(request.get_data())), methods=["POST"])
    create_app(server=portal, url_base_pathname="/grid/",
               settings=Settings(artifacts_dir=artifacts_copy, instance_dir=tmp_path / "instance"))
    client = portal.test_client()
    body = b"x" * (3 * 1024 * 1024)
    assert client.post("/upload", data=body).get_data() == str(len(body)).encode()  # the portal's own rules
    refused = client.post("/grid/predict", data=body, content_type="application/json")
    assert refused.status_code == 413 and "too large" in refused.get_json()["error"]
    refused = client.post("/grid/_dash-update-component", data=b"x", content_type="application/json",
                          environ_overrides={"CONTENT_LENGTH": str(105 * 1024 * 1024)})
    assert refused.status_code == 413 and refused.mimetype == "application/json"
