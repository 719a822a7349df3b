"""Alarms of live events (issue 13 item 3): raised with the history row for the chosen severities,
once per analysis, acknowledged once (who and when kept), counted for the navbar; and the API."""

from __future__ import annotations

import time

import numpy as np
import pytest

from app import create_app
from app.jobs import JOBS_KEY
from app.settings import Settings, SettingsError
from services.alarms import AlarmError, AlarmStore, check_who, parse_severities
from services.analysis import EXTENSION_KEY
from services.feed import Feed
from services.history import HistoryStore
from services.jobs import JobStore
from services.jobs.store import AlreadyFinished


def history_row(severity: str, **extra) -> dict:
    return {"source": "watch", "sender": "prosumer-a", "receiver": "ev-hub", "transfer_kw": 5.0,
            "label": "internal_power_transformer_internal_faults_Class4", "label_id": 29, "confidence": 0.97,
            "category": "internal fault", "equipment": "power transformer", "kind": "ABG", "severity": severity,
            "transfer_status": "interrupted", "impact_summary": f"{severity.upper()}: test", "headline": "ABG fault",
            "waveform": np.zeros((3, 726), np.float32), **extra}


@pytest.fixture()
def jobs(tmp_path):
    history = HistoryStore(f"sqlite:///{tmp_path / 'history.db'}")
    store = JobStore(history, AlarmStore(history))
    yield store
    history.dispose()


def finish(jobs: JobStore, severity: str) -> int:
    job_id = jobs.create(source="watch", name="r.cfg", files=[("r.npy", b"x")], sender="prosumer-a",
                         receiver="ev-hub")
    jobs.claim(job_id)
    return jobs.finish(job_id, jobs.history._row(history_row(severity)))


def test_ala001_severities_parse_in_rank_order_and_unknown_ones_are_refused():
    assert parse_severities(None) == ("critical", "major")
    assert parse_severities("minor, CRITICAL") == ("critical", "minor")
    assert parse_severities("none") == () and parse_severities("") == ()
    with pytest.raises(AlarmError, match="unknown severity severe"):
        parse_severities("critical,severe")
    with pytest.raises(SettingsError, match="GEM_ALARM_SEVERITIES"):
        Settings(alarm_severities="loud")
    assert check_who("  Ana   Ops ") == "Ana Ops"
    for bad in ("", "   ", None, "x" * 65, "nul\x00byte", 42):
        with pytest.raises(AlarmError):
            check_who(bad)


def test_ala002_an_alarm_comes_with_the_analysis_for_the_chosen_severities_only(jobs):
    critical = finish(jobs, "critical")
    finish(jobs, "minor")
    major = finish(jobs, "major")
    finish(jobs, "info")
    alarms = jobs.alarms.recent()
    assert [alarm["analysis_id"] for alarm in alarms] == [major, critical]  # newest first
    assert alarms[1]["severity"] == "critical" and alarms[1]["equipment"] == "power transformer"
    assert (alarms[1]["sender"], alarms[1]["receiver"], alarms[1]["transfer_status"]) == (
        "prosumer-a", "ev-hub", "interrupted")
    assert jobs.alarms.unacknowledged_count() == 2


def test_ala003_a_second_delivery_raises_no_second_alarm(jobs):
    job_id = jobs.create(source="watch", name="r.cfg", files=[("r.npy", b"x")], sender="prosumer-a",
                         receiver="ev-hub")
    jobs.claim(job_id)
    jobs.finish(job_id, jobs.history._row(history_row("critical")))
    with pytest.raises(AlreadyFinished):
        jobs.finish(job_id, jobs.history._row(history_row("critical")))
    assert len(jobs.alarms.recent()) == 1 and jobs.history.count() == 1


def test_ala004_acknowledged_once_who_and_when_stay(jobs):
    first = finish(jobs, "critical")
    finish(jobs, "major")
    alarm_id = next(alarm["id"] for alarm in jobs.alarms.recent() if alarm["analysis_id"] == first)
    acknowledged = jobs.alarms.acknowledge(alarm_id, "Ana")
    assert acknowledged["acknowledged"] and acknowledged["acknowledged_by"] == "Ana"
    again = jobs.alarms.acknowledge(alarm_id, "Bob")
    assert again["acknowledged_by"] == "Ana" and again["acknowledged_at"] == acknowledged["acknowledged_at"]
    assert jobs.alarms.unacknowledged_count() == 1
    assert [alarm["analysis_id"] for alarm in jobs.alarms.recent(unacknowledged=True)] != [first]
    assert jobs.alarms.acknowledge(10_000, "Ana") is None


def test_ala005_acknowledge_all_stops_at_what_the_operator_saw(jobs):
    for _ in range(3):
        finish(jobs, "critical")
    seen = jobs.alarms.recent()[0]["id"]
    finish(jobs, "critical")  # arrives after the operator looked
    assert jobs.alarms.acknowledge_all("Ana", seen) == 3
    assert jobs.alarms.unacknowledged_count() == 1
    assert jobs.alarms.recent(after_id=seen)[0]["acknowledged"] is False


def test_ala006_alarms_off_with_none(tmp_path):
    history = HistoryStore(f"sqlite:///{tmp_path / 'history.db'}")
    jobs = JobStore(history, AlarmStore(history, "none"))
    finish(jobs, "critical")
    assert jobs.alarms.recent() == [] and history.count() == 1
    history.dispose()


def test_ala007_the_api_lists_and_acknowledges_alarms_of_live_records(tmp_path, artifacts_copy):
    app = create_app(settings=Settings(artifacts_dir=artifacts_copy, instance_dir=tmp_path,
                                       alarm_severities="critical,major,minor"))
    client = app.server.test_client()
    service = app.server.extensions[JOBS_KEY]
    try:
        feed = Feed(seed=3)
        for _ in range(12):
            record = feed.next_record()
            service.submit_record(list(record.files), sender=record.sender, receiver=record.receiver)
        service.engine.close()  # waits for the queued jobs
        store = app.server.extensions[EXTENSION_KEY].store
        rows, total = store.query(limit=100)
        alarmed = sorted(row["id"] for row in rows if row["severity"] in ("critical", "major", "minor"))
        assert total == 12 and alarmed  # the feed's internal faults are at least minor

        body = client.get("/api/alarms").get_json()
        assert sorted(item["analysis_id"] for item in body["items"]) == alarmed
        assert body["unacknowledged"] == len(alarmed) and body["severities"] == ["critical", "major", "minor"]
        newest = body["items"][0]
        assert newest["links"]["page"] == f"/analysis/{newest['analysis_id']}"

        response = client.post(f"/api/alarms/{newest['id']}/ack", json={"by": "Ana"})
        assert response.status_code == 200 and response.get_json()["acknowledged_by"] == "Ana"
        assert client.get("/api/alarms?unacknowledged=1").get_json()["unacknowledged"] == len(alarmed) - 1
        assert client.post(f"/api/alarms/{newest['id']}/ack", json={}).status_code == 400
        assert client.post("/api/alarms/99999/ack", json={"by": "Ana"}).status_code == 404
        assert client.post("/api/alarms/x1/ack", json={"by": "Ana"}).status_code == 400
        assert client.post("/api/alarms/ack", json={"by": "Ana", "up_to_id": "all"}).status_code == 400
        done = client.post("/api/alarms/ack", json={"by": "Bob", "up_to_id": newest["id"]}).get_json()
        assert done == {"acknowledged": len(alarmed) - 1, "unacknowledged": 0}
        assert client.get(f"/api/alarms?after_id={newest['id']}").get_json()["items"] == []
    finally:
        service.stop()
        app.server.extensions[EXTENSION_KEY].store.dispose()


def test_ala008_every_web_worker_sees_the_same_alarms(tmp_path):
    url = f"sqlite:///{tmp_path / 'history.db'}"
    first, second = HistoryStore(url), HistoryStore(url)
    jobs = JobStore(first, AlarmStore(first))
    other = AlarmStore(second)
    finish(jobs, "critical")
    time.sleep(0.01)
    alarm_id = other.recent()[0]["id"]
    other.acknowledge(alarm_id, "Ana")
    assert jobs.alarms.get(alarm_id)["acknowledged_by"] == "Ana" and jobs.alarms.unacknowledged_count() == 0
    first.dispose()
    second.dispose()
