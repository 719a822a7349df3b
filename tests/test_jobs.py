"""The record pipeline in-process: `analyse_record` (once per job, whatever the deliveries), and
`POST /api/records` answering 202 with a job that `GET /api/jobs/<id>` follows to its result."""

from __future__ import annotations

import io
import time

import numpy as np
import pytest

from app import create_app
from app.jobs import JOBS_KEY
from app.settings import Settings
from services.analysis import EXTENSION_KEY, get_model
from services.feed import Feed, write_record
from services.history import HistoryStore
from services.jobs import JobStore, RecordPipeline, analyse_record
from services.jobs.store import AlreadyFinished, pack_files, unpack_files


@pytest.fixture(scope="module")
def records():
    feed = Feed(seed=11)
    return [feed.next_record() for _ in range(6)]


@pytest.fixture()
def pipeline(tmp_path, artifacts_copy):
    jobs = JobStore(HistoryStore(f"sqlite:///{tmp_path / 'history.db'}"))
    yield RecordPipeline(jobs=jobs, predictor=lambda: get_model(artifacts_copy))
    jobs.history.dispose()


def queue(pipeline: RecordPipeline, record, **kwargs) -> str:
    return pipeline.jobs.create(source="api-records", name=record.files[0][0], files=list(record.files),
                                sender=record.sender, receiver=record.receiver, **kwargs)


def test_job001_a_record_is_analysed_into_the_history_once(pipeline, records):
    record = records[0]
    job_id = queue(pipeline, record)
    analysis_id = analyse_record(job_id, pipeline)
    stored = pipeline.jobs.history.get(analysis_id)
    assert stored["source"] == "api-records" and stored["sample_name"] == f"{record.stem}.cfg"
    assert (stored["sender"], stored["receiver"]) == (record.sender, record.receiver)
    assert stored["recording"]["channels"] == ["IdA", "IdB", "IdC"]
    job = pipeline.jobs.get(job_id)
    assert job["state"] == "done" and job["analysis_id"] == analysis_id and job["attempts"] == 1
    assert analyse_record(job_id, pipeline) == analysis_id  # delivered again: nothing redone
    assert pipeline.jobs.history.count() == 1 and pipeline.jobs.get(job_id)["attempts"] == 1


def test_job002_two_deliveries_running_at_once_leave_one_analysis(pipeline, records):
    job_id = queue(pipeline, records[1])
    first = pipeline.jobs.claim(job_id)
    second = pipeline.jobs.claim(job_id)  # a redelivery while the first worker still runs
    assert first is not None and second is not None and second["attempts"] == 2
    row = {"source": "api-records", "sender": "prosumer-a", "receiver": "ev-hub", "transfer_kw": 5.0,
           "label": "transient_ferroresonance", "label_id": 41, "confidence": 0.9, "category": "transient",
           "equipment": "none", "kind": "ferroresonance", "waveform": np.zeros((3, 726), np.float32)}
    analysis_id = pipeline.jobs.finish(job_id, pipeline.jobs.history._row(row))
    with pytest.raises(AlreadyFinished):
        pipeline.jobs.finish(job_id, pipeline.jobs.history._row(row))
    assert pipeline.jobs.history.count() == 1  # the second insert was rolled back with it
    assert pipeline.jobs.get(job_id)["analysis_id"] == analysis_id
    assert analyse_record(job_id, pipeline) == analysis_id


def test_job003_an_unreadable_record_fails_with_the_reason(pipeline, records):
    cfg_name, cfg = records[2].files[0]
    job_id = pipeline.jobs.create(source="watch", name=cfg_name, sender="prosumer-a", receiver="ev-hub",
                                  files=[(cfg_name, cfg), (cfg_name.replace(".cfg", ".dat"), b"\x00" * 10)])
    assert analyse_record(job_id, pipeline) is None
    job = pipeline.jobs.get(job_id)
    assert job["state"] == "failed" and job["error"].startswith(cfg_name) and job["analysis_id"] is None
    assert pipeline.jobs.rejected(source="watch")[0]["id"] == job_id
    assert pipeline.jobs.recent(5, with_analysis=True)[0]["analysis"] is None
    assert pipeline.jobs.history.count() == 0


def test_job004_bad_peers_fail_the_job_and_keep_nothing(pipeline, records):
    job_id = pipeline.jobs.create(source="api-records", name="x.cfg", files=list(records[3].files),
                                  sender="ev-hub", receiver="prosumer-a")
    assert analyse_record(job_id, pipeline) is None
    assert "sender_peer" in pipeline.jobs.get(job_id)["error"] and pipeline.jobs.history.count() == 0


def test_job005_files_round_trip_through_the_job_row():
    files = [("a.cfg", b"x" * 10), ("a.dat", bytes(range(256))), ("empty.hdr", b"")]
    assert unpack_files(pack_files(files)) == files


# -- the API, in-process engine ------------------------------------------------------------------
@pytest.fixture()
def app(tmp_path, artifacts_copy):
    dash_app = create_app(settings=Settings(artifacts_dir=artifacts_copy, instance_dir=tmp_path / "instance",
                                            watch_dir=tmp_path / "drop", watch_poll_s=0.1, watch_stable_s=0.1))
    yield dash_app
    dash_app.server.extensions[JOBS_KEY].stop(close_engine=True)
    dash_app.server.extensions[EXTENSION_KEY].store.dispose()


def form(record, **extra):
    return {"sender_peer": record.sender, "receiver_peer": record.receiver,
            "file": [(io.BytesIO(data), name) for name, data in record.files], **extra}


def wait_for(client, location: str, timeout_s: float = 60.0) -> dict:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        job = client.get(location).get_json()
        if job["state"] in ("done", "failed"):
            return job
        time.sleep(0.05)
    raise AssertionError(f"{location} not finished in {timeout_s} s: {job}")


def test_job006_post_records_answers_202_and_the_job_leads_to_the_analysis(app, records):
    client = app.server.test_client()
    record = records[4]
    response = client.post("/api/records", data=form(record, transfer_kw="12.5", relay_connection="yd_ia_minus_ib"),
                           content_type="multipart/form-data")
    assert response.status_code == 202
    body = response.get_json()
    assert body["state"] == "queued" and response.headers["Location"] == f"/api/jobs/{body['job_id']}"
    job = wait_for(client, response.headers["Location"])
    assert job["state"] == "done", job
    result = job["result"]
    assert result["analysis_id"] == job["analysis_id"] and result["source"] == "api-records"
    assert result["sender_peer"] == record.sender and result["transfer_kw"] == 12.5
    assert result["relay_connection"] == "yd_ia_minus_ib"  # the record was read through the stated connection
    assert set(result) >= {"predicted_label", "confidence", "p2p_impact_details", "waveform_data"}
    assert job["links"] == {"analysis": f"/api/history/{job['analysis_id']}", "page": f"/analysis/{job['analysis_id']}"}
    assert client.get(job["links"]["analysis"]).get_json()["label"] == result["predicted_label"]


def test_job007_dropped_records_appear_newest_first_in_the_job_list(app, tmp_path, records):
    client = app.server.test_client()
    for record in records[:3]:
        write_record(tmp_path / "drop", record)
        time.sleep(0.02)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        items = client.get("/api/jobs?source=watch").get_json()["items"]
        if len(items) == 3 and all(item["state"] == "done" for item in items):
            break
        time.sleep(0.1)
    assert [item["name"] for item in items] == [f"{record.stem}.cfg" for record in reversed(records[:3])]
    assert all(item["links"]["page"] == f"/analysis/{item['analysis_id']}" for item in items)
    assert "result" not in items[0]  # the list stays light; the job itself carries the analysis
    stored = app.server.extensions[EXTENSION_KEY].store.get(items[0]["analysis_id"], include_waveform=False)
    summary = items[0]["analysis"]
    assert (summary["label"], summary["severity"], summary["equipment"], summary["transfer_status"]) == (
        stored["label"], stored["severity"], stored["equipment"], stored["transfer_status"])
    history, total = app.server.extensions[EXTENSION_KEY].store.query(source="watch")
    assert total == 3


@pytest.mark.parametrize(("path", "kwargs", "status", "message"), [
    ("/api/jobs/not-a-job", {}, 400, "32 hex digits"),
    ("/api/jobs/" + "0" * 32, {}, 404, "no job"),
    ("/api/jobs?state=lost", {}, 400, "state must be one of"),
])
def test_job008_bad_job_requests_answer_json_errors(app, path, kwargs, status, message):
    response = app.server.test_client().get(path, **kwargs)
    assert response.status_code == status and message in response.get_json()["error"]


def test_job009_a_bad_post_is_refused_at_once_and_queues_nothing(app, records):
    client = app.server.test_client()
    record = records[5]
    cases = [
        (client.post("/api/records", json={"sender_peer": "prosumer-a"}), 415, "multipart/form-data"),
        (client.post("/api/records", data={"sender_peer": record.sender, "receiver_peer": record.receiver},
                     content_type="multipart/form-data"), 400, "missing field file"),
        (client.post("/api/records", data=form(record, sender_peer="nobody"), content_type="multipart/form-data"),
         400, "unknown sender_peer"),
        (client.post("/api/records", data=form(record, unit="furlongs"), content_type="multipart/form-data"),
         400, "unknown unit"),
        (client.post("/api/records", data=form(record, relay_connection="wye"), content_type="multipart/form-data"),
         400, "unknown relay_connection 'wye'"),
        (client.get("/api/records"), 405, "use POST"),
    ]
    for response, status, message in cases:
        assert response.status_code == status and message in response.get_json()["error"]
    assert client.get("/api/jobs").get_json()["count"] == 0


def test_job010_batches_count_their_jobs_and_an_older_table_gains_the_batch_column(tmp_path):
    from sqlalchemy import inspect as inspect_schema
    from sqlalchemy import text

    url = f"sqlite:///{tmp_path / 'old.db'}"
    history = HistoryStore(url)
    with history.engine.begin() as connection:  # the jobs table as the first release created it
        connection.execute(text("CREATE TABLE jobs (id VARCHAR(32) PRIMARY KEY, created_at DATETIME NOT NULL, "
                                "updated_at DATETIME NOT NULL, started_at DATETIME, finished_at DATETIME, "
                                "source VARCHAR(16) NOT NULL, name VARCHAR(255) NOT NULL, state VARCHAR(12) NOT NULL, "
                                "attempts INTEGER NOT NULL, sender VARCHAR(64) NOT NULL, receiver VARCHAR(64) NOT NULL, "
                                "transfer_kw FLOAT, options JSON, content_hash VARCHAR(64), "
                                "dedupe_key VARCHAR(80) UNIQUE, files BLOB, analysis_id BIGINT, error TEXT)"))
    jobs = JobStore(history)
    assert "batch_id" in {column["name"] for column in inspect_schema(history.engine).get_columns("jobs")}
    ids = [jobs.create(source="watch", name=f"r{k}.npy", files=[("r.npy", b"x")], sender="prosumer-a",
                       receiver="ev-hub", batch_id="b1" if k < 3 else None) for k in range(4)]
    jobs.fail(ids[0], "unreadable")
    assert jobs.counts(batch_id="b1") == {"queued": 2, "running": 0, "done": 0, "failed": 1, "cancelled": 0}
    assert [job["id"] for job in jobs.recent(10, batch_id="b1")] == sorted(ids[:3], key=ids.index, reverse=True)
    assert jobs.get(ids[3])["batch_id"] is None
    history.dispose()


def test_job011_a_posted_file_name_is_stored_without_path_or_control_characters(app, records):
    client = app.server.test_client()
    record = records[0]
    (cfg_name, cfg), (dat_name, dat) = record.files
    response = client.post("/api/records", content_type="multipart/form-data", data={
        "sender_peer": record.sender, "receiver_peer": record.receiver,
        "file": [(io.BytesIO(cfg), "../../etc/evil\tname\u202e.cfg"), (io.BytesIO(dat), "../../etc/evil\tname\u202e.dat")]})
    assert response.status_code == 202, response.get_json()
    job = wait_for(client, response.headers["Location"])
    assert job["name"] == "evilname.cfg" and job["state"] == "done"  # still analysed
