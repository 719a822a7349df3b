"""Batch analysis without a browser (services/batch.py): archives and allowed folders read safely
(traversal, absolute names, links, devices, bombs refused), records grouped as the watched folder
groups them, one job per record under one batch id, a summary and a CSV that match what was sent,
and Cancel that stops the queued records."""

from __future__ import annotations

import csv
import io
import os
import tarfile
import zipfile
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import select

from services.analysis import get_model
from services.batch import (
    BatchError,
    BatchLimits,
    batch_results,
    batch_summary,
    create_batch,
    iter_batch_csv,
    read_archive,
    read_folder,
    run_batch_here,
    submit_batch,
)
from services.feed import Feed
from services.history import HistoryStore
from services.jobs import JobStore, RecordPipeline, analyse_record
from services.jobs.store import CANCELLED, DONE, FAILED, QUEUED


@pytest.fixture(scope="module")
def records():
    feed = Feed(seed=5)
    return [feed.next_record() for _ in range(4)]


@pytest.fixture()
def jobs(tmp_path) -> JobStore:
    store = JobStore(HistoryStore(f"sqlite:///{tmp_path / 'history.db'}"))
    yield store
    store.history.dispose()


def npy_bytes(seed: int) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, np.random.default_rng(seed).normal(size=(3, 726)).astype(np.float32))
    return buffer.getvalue()


def make_zip(members: dict[str, bytes], links: dict[str, str] | None = None) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
        for name, target in (links or {}).items():
            info = zipfile.ZipInfo(name)
            info.external_attr = (0o120777 << 16)
            archive.writestr(info, target)
    return buffer.getvalue()


def make_tar(members: dict[str, bytes], mode: str = "w:gz", specials: list[tarfile.TarInfo] | None = None) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode=mode) as archive:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
        for info in specials or []:
            archive.addfile(info)
    return buffer.getvalue()


def comtrade_members(records, folder: str = "") -> dict[str, bytes]:
    return {f"{folder}{name}": data for record in records for name, data in record.files}


def test_bat001_a_zip_and_a_tar_gz_give_the_same_records_grouped_like_the_watched_folder(records):
    members = {**comtrade_members(records[:2], "station/"), "w1.npy": npy_bytes(1), "sub/w2.csv": b"1,2,3,4\n" * 726,
               "half.cfg": records[2].files[0][1], "notes.docx": b"x", ".hidden.npy": npy_bytes(3),
               "w3.npy.part": b"partial"}
    for data in (make_zip(members), make_tar(members), make_tar(members, "w")):
        contents = read_archive(data, "upload.zip")
        names = sorted(record.name for record in contents.records)
        assert names == sorted([f"station/{records[0].stem}.cfg", f"station/{records[1].stem}.cfg", "sub/w2.csv",
                                "w1.npy"])
        pair = next(record for record in contents.records if record.name.endswith(f"{records[0].stem}.cfg"))
        assert [name for name, _ in pair.files] == [f"{records[0].stem}.cfg", f"{records[0].stem}.dat"]
        assert (pair.sender, pair.receiver) == (records[0].sender, records[0].receiver)  # from the name
        reasons = {item.name: item.reason for item in contents.rejected}
        assert set(reasons) == {"half.cfg", "notes.docx"}  # hidden and temporary files are not records
        assert "no .dat" in reasons["half.cfg"] and "not a record" in reasons["notes.docx"]


def test_bat002_names_that_climb_out_absolute_names_links_and_devices_are_refused(records):
    zipped = make_zip({"../evil.npy": npy_bytes(1), "/etc/abs.npy": npy_bytes(2), "a/../../b.npy": npy_bytes(3),
                       "C:/win.npy": npy_bytes(4), "ok.npy": npy_bytes(5)}, links={"link.npy": "/etc/passwd"})
    contents = read_archive(zipped, "x.zip")
    assert [record.name for record in contents.records] == ["ok.npy"]
    reasons = sorted(item.reason for item in contents.rejected)
    assert len(reasons) == 5
    assert sum("absolute" in reason for reason in reasons) == 2 and sum("'..'" in reason for reason in reasons) == 2
    assert sum("link" in reason for reason in reasons) == 1
    specials = []
    for name, kind in (("sym.npy", tarfile.SYMTYPE), ("hard.npy", tarfile.LNKTYPE), ("dev.npy", tarfile.CHRTYPE),
                       ("fifo.npy", tarfile.FIFOTYPE)):
        info = tarfile.TarInfo(name)
        info.type = kind
        info.linkname = "/etc/passwd" if kind in (tarfile.SYMTYPE, tarfile.LNKTYPE) else ""
        specials.append(info)
    tarred = make_tar({"../up.npy": npy_bytes(1), "ok.npy": npy_bytes(2)}, specials=specials)
    contents = read_archive(tarred, "x.tar.gz")
    assert [record.name for record in contents.records] == ["ok.npy"]
    assert sorted(item.name for item in contents.rejected) == ["dev.npy", "fifo.npy", "hard.npy", "sym.npy", "up.npy"]


def test_bat003_bombs_and_oversized_batches_are_refused_before_they_are_decompressed():
    limits = BatchLimits(max_bytes=1_000_000, max_files=50, max_record_bytes=200_000)
    bomb = make_zip({"zeros.npy": b"\0" * 5_000_000})  # 5 MB of zeros, a few kB compressed
    assert len(bomb) < 50_000
    with pytest.raises(BatchError, match="once decompressed"):
        read_archive(bomb, "bomb.zip", limits)
    # a header that lies about the size: reading stops at the limit all the same
    lying = io.BytesIO()
    with zipfile.ZipFile(lying, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("big.npy", b"\0" * 3_000_000)
    raw = bytearray(lying.getvalue())
    info = zipfile.ZipFile(io.BytesIO(bytes(raw))).infolist()[0]
    central = raw.rfind(b"PK\x01\x02")
    raw[central + 24:central + 28] = (100).to_bytes(4, "little")  # declared uncompressed size: 100 bytes
    contents = read_archive(bytes(raw), "lying.zip", limits)
    assert contents.records == [] and info.file_size == 3_000_000
    assert "more than the" in contents.rejected[0].reason or "cannot be read" in contents.rejected[0].reason
    tar_bomb = make_tar({"huge.npy": b"\0" * 2_000_000})
    with pytest.raises(BatchError, match="once decompressed"):
        read_archive(tar_bomb, "bomb.tgz", limits)
    with pytest.raises(BatchError, match="more than 50 files"):
        read_archive(make_zip({f"f{i}.npy": b"x" for i in range(51)}), "many.zip", limits)
    with pytest.raises(BatchError, match="more than 50 files"):
        read_archive(make_tar({f"f{i}.npy": b"x" for i in range(51)}), "many.tgz", limits)
    with pytest.raises(BatchError, match="MB accepted"):
        read_archive(b"x" * 1_000_001, "big.zip", limits)
    with pytest.raises(BatchError, match="not a zip, tar or tar.gz"):
        read_archive(b"just some text", "notes.zip", limits)
    small = read_archive(make_zip({"a.npy": b"\0" * 300_000, "b.npy": npy_bytes(1)}), "x.zip", limits)
    assert [record.name for record in small.records] == ["b.npy"] and "a record may have" in small.rejected[0].reason


def test_bat004_a_server_folder_is_read_only_under_an_allowed_root_and_links_are_not_followed(tmp_path, records):
    root, outside = tmp_path / "archive", tmp_path / "private"
    (root / "2024").mkdir(parents=True)
    outside.mkdir()
    (outside / "secret.npy").write_bytes(npy_bytes(9))
    for name, data in records[0].files:
        (root / "2024" / name).write_bytes(data)
    (root / "w.npy").write_bytes(npy_bytes(1))
    (root / "2024" / "escape.npy").symlink_to(outside / "secret.npy")
    (root / "2024" / "outdir").symlink_to(outside, target_is_directory=True)
    os.mkfifo(root / "pipe.npy")
    contents = read_folder(root, [root])
    assert sorted(record.name for record in contents.records) == [f"2024/{records[0].stem}.cfg", "w.npy"]
    reasons = {item.name: item.reason for item in contents.rejected}
    assert reasons["2024/escape.npy"].startswith("a link") and reasons["pipe.npy"].startswith("a special file")
    assert not any("secret" in item.name for item in contents.rejected)  # the linked folder is not entered
    assert [record.name for record in read_folder(root / "2024", [root]).records] == [f"{records[0].stem}.cfg"]
    (tmp_path / "shortcut").symlink_to(outside, target_is_directory=True)
    for refused in (outside, tmp_path / "shortcut", root / ".." / "private", root / "2024" / "outdir"):
        with pytest.raises(BatchError, match="not under a folder allowed"):
            read_folder(refused, [root])
    with pytest.raises(BatchError, match="GEM_BATCH_ROOTS is not set"):
        read_folder(root, [])
    with pytest.raises(BatchError, match="no such folder"):
        read_folder(root / "missing", [root])


def test_bat005_a_batch_is_one_job_per_record_and_its_summary_and_csv_match(jobs, records, artifacts_copy):
    members = {**comtrade_members(records), "w1.npy": npy_bytes(1), "bad.npy": b"not numpy", "lone.dat": b"1,2"}
    contents = read_archive(make_zip(members), "station-2024.zip")
    batch_id = create_batch(jobs, contents)
    assert jobs.counts(batch_id=batch_id) == {"queued": 6, "running": 0, "done": 0, "failed": 1, "cancelled": 0}
    pipeline = RecordPipeline(jobs=jobs, predictor=lambda: get_model(artifacts_copy))
    seen = []
    final = run_batch_here(batch_id, pipeline, threads=2, on_progress=seen.append, progress_every_s=0)
    assert final.complete and final.counts[DONE] == 5 and final.counts[FAILED] == 2 and final.rate > 0
    assert seen[-1] == final and all(a.finished <= b.finished for a, b in zip(seen, seen[1:], strict=False))
    summary = batch_summary(jobs, batch_id)
    assert summary["name"] == "station-2024.zip" and summary["total"] == 7 and summary["complete"]
    assert summary["counts"] == {"queued": 0, "running": 0, "done": 5, "failed": 2, "cancelled": 0}
    for part in ("by_category", "by_equipment", "by_severity", "by_label"):
        assert sum(summary[part].values()) == 5
    history_rows, total = jobs.history.query(limit=50, source="batch")
    assert total == 5
    assert summary["by_category"] == dict(sorted(
        {c: sum(r["category"] == c for r in history_rows) for c in {r["category"] for r in history_rows}}.items(),
        key=lambda item: (-item[1], item[0])))
    assert sorted(item["record"] for item in summary["rejected"]) == ["bad.npy", "lone.dat"]
    assert all(item["reason"] for item in summary["rejected"])
    rows = batch_results(jobs, batch_id)
    assert {row["analysis_id"] for row in rows if row["state"] == DONE} == {row["id"] for row in history_rows}
    table = list(csv.DictReader(io.StringIO("".join(iter_batch_csv(jobs, batch_id)))))
    assert len(table) == 7 and sum(row["state"] == "done" for row in table) == 5
    assert {row["label"] for row in table if row["state"] == "done"} == {row["label"] for row in history_rows}
    assert batch_summary(jobs, "0" * 32) is None


def test_bat006_cancel_stops_the_queued_records_and_a_late_finish_is_rolled_back(jobs, records, artifacts_copy):
    contents = read_archive(make_zip({f"w{i}.npy": npy_bytes(i) for i in range(6)}), "x.zip")
    batch_id = create_batch(jobs, contents)
    pipeline = RecordPipeline(jobs=jobs, predictor=lambda: get_model(artifacts_copy))
    queued = jobs.batch_job_ids(batch_id)
    assert analyse_record(queued[0], pipeline) is not None
    in_flight = jobs.claim(queued[1])  # a worker holds this one while Cancel comes
    assert in_flight is not None
    assert jobs.cancel_batch(batch_id) == 5
    assert jobs.counts(batch_id=batch_id)[CANCELLED] == 5 and jobs.batch_job_ids(batch_id, QUEUED) == []
    assert all(analyse_record(job_id, pipeline) is None for job_id in queued[1:])  # the task skips them
    submitted = []
    assert submit_batch(jobs, batch_id, submitted.append) == 0 and submitted == []
    assert jobs.history.count() == 1
    summary = batch_summary(jobs, batch_id)
    assert summary["counts"]["cancelled"] == 5 and summary["complete"] and summary["rejected_count"] == 0


def test_bat007_batch_analyses_raise_no_alarms(tmp_path, artifacts_copy):
    from services.alarms import AlarmStore

    history = HistoryStore(f"sqlite:///{tmp_path / 'h.db'}")
    alarms = AlarmStore(history, "critical,major,minor,info")
    jobs = JobStore(history, alarms)
    batch_id = create_batch(jobs, read_archive(make_zip({"w.npy": npy_bytes(1)}), "x.zip"))
    run_batch_here(batch_id, RecordPipeline(jobs=jobs, predictor=lambda: get_model(artifacts_copy)))
    assert jobs.counts(batch_id=batch_id)[DONE] == 1 and alarms.recent(10) == []
    history.dispose()


def test_bat008_the_csv_cells_are_inert_in_a_spreadsheet(jobs):
    contents = read_archive(make_zip({"=cmd|calc.npy": b"bad"}), "x.zip")
    batch_id = create_batch(jobs, contents)
    text = "".join(iter_batch_csv(jobs, batch_id))
    assert "\n=cmd" not in text and "'=cmd|calc.npy" in text


def test_bat009_submit_hands_each_queued_job_to_the_engine_once(jobs):
    batch_id = create_batch(jobs, read_archive(make_zip({f"w{i}.npy": npy_bytes(i) for i in range(3)}), "x.zip"))
    submitted: list[str] = []
    assert submit_batch(jobs, batch_id, submitted.append) == 3
    assert sorted(submitted) == sorted(jobs.batch_job_ids(batch_id)) and len(set(submitted)) == 3


def test_bat010_a_folder_given_as_text_with_dots_resolves_inside_the_root(tmp_path):
    root = tmp_path / "root"
    (root / "a").mkdir(parents=True)
    (root / "a" / "w.npy").write_bytes(npy_bytes(1))
    contents = read_folder(str(root / "a" / ".." / "a"), [Path(str(root) + "/")])
    assert [record.name for record in contents.records] == ["w.npy"]


def test_bat011_the_result_view_shows_the_summary_the_rows_and_the_rejected(jobs):
    from components.batch import batch_result, progress_text

    batch_id = create_batch(jobs, read_archive(make_zip({"w.npy": npy_bytes(1), "x.doc": b"x"}), "x.zip"))
    view = batch_result(batch_summary(jobs, batch_id), batch_results(jobs, batch_id), lambda i: f"/analysis/{i}",
                        f"/api/batches/{batch_id}.csv", note="Cancelled.")
    text = str(view.to_plotly_json())
    assert "x.doc" in text and f"/api/batches/{batch_id}.csv" in text and "Cancelled." in text
    assert progress_text({"finished": 120, "total": 300, "rate": 40.0, "eta_s": 4.5}) == \
        "120 of 300 records · 40.0 records/s · about 4 s left"
    assert progress_text({"finished": 0, "total": 300, "rate": None, "eta_s": None}) == "0 of 300 records · starting"


def test_bat012_the_batch_routes_answer_the_summary_and_the_csv(tmp_path, artifacts_copy):
    from app import create_app
    from app.jobs import JOBS_KEY
    from app.settings import Settings

    app = create_app(settings=Settings(artifacts_dir=artifacts_copy, instance_dir=tmp_path / "instance",
                                       database_url=f"sqlite:///{tmp_path / 'h.db'}"))
    jobs = app.server.extensions[JOBS_KEY].jobs
    batch_id = create_batch(jobs, read_archive(make_zip({"w.npy": npy_bytes(1), "x.doc": b"x"}), "b.zip"))
    run_batch_here(batch_id, RecordPipeline(jobs=jobs, predictor=lambda: get_model(artifacts_copy)))
    client = app.server.test_client()
    summary = client.get(f"/api/batches/{batch_id}").get_json()
    assert summary["counts"]["done"] == 1 and summary["rejected"][0]["record"] == "x.doc"
    answer = client.get(f"/api/batches/{batch_id}.csv")
    assert answer.status_code == 200 and answer.mimetype == "text/csv"
    lines = answer.get_data(as_text=True).strip().splitlines()
    assert lines[0].startswith("record,state,error,analysis_id") and len(lines) == 3
    assert client.get("/api/batches/nope").status_code == 400
    assert client.get(f"/api/batches/{'0' * 32}").status_code == 404
    assert client.get(f"/api/batches/{'0' * 32}.csv").status_code == 404


def test_bat013_two_apps_in_one_process_each_run_their_own_batches(tmp_path, artifacts_copy):
    """Dash keys background functions by ids and source, the same for every app: each app's
    manager must still hold its own app's function (its own history), not the last app's."""
    from app import create_app
    from app.settings import Settings

    def closure_functions(job_fn) -> list:
        return [cell.cell_contents for cell in job_fn.__closure__ or () if callable(cell.cell_contents)]

    apps = [create_app(settings=Settings(artifacts_dir=artifacts_copy, instance_dir=tmp_path / f"i{n}",
                                         database_url=f"sqlite:///{tmp_path / f'h{n}.db'}")) for n in range(2)]
    registries = [app._background_manager.func_registry for app in apps]
    assert set(registries[0]) == set(registries[1]) and len(registries[0]) >= 1
    for key in registries[0]:
        first, second = closure_functions(registries[0][key]), closure_functions(registries[1][key])
        assert first and second and not set(map(id, first)) & set(map(id, second))


def test_bat014_the_page_takes_an_upload_or_an_allowed_folder_and_says_why_not(jobs, tmp_path):
    import base64

    from app.settings import Settings
    from callbacks.batch import stage_batch

    root = tmp_path / "root"
    root.mkdir()
    (root / "w.npy").write_bytes(npy_bytes(1))
    settings = Settings(instance_dir=tmp_path / "i", batch_roots=str(root))
    url = "data:application/zip;base64," + base64.b64encode(make_zip({"a.npy": npy_bytes(2)})).decode()
    batch, message = stage_batch(jobs, settings, contents=url, filename="a.zip")
    assert batch["records"] == 1 and message == "a.zip: 1 record to analyse."
    assert jobs.counts(batch_id=batch["batch_id"])["queued"] == 1
    batch, message = stage_batch(jobs, settings, folder=str(root), relay_connection="delta_tied")
    assert batch["records"] == 1 and jobs.counts(batch_id=batch["batch_id"])["queued"] == 1
    with jobs.engine.connect() as connection:  # the options column is not in the public job view
        stated = {(row.options or {}).get("relay_connection") for row in connection.execute(select(jobs.jobs.c.options))}
    assert stated == {None, "delta_tied"}
    for kwargs, why in (({"folder": str(tmp_path)}, "not under a folder allowed"),
                        ({"folder": str(root), "relay_connection": "wye"}, "unknown relay_connection"),
                        ({"contents": "data:text/plain;base64,aGVsbG8=", "filename": "x.zip"}, "not a zip"),
                        ({"contents": None}, "empty"),
                        ({"contents": True}, "empty"),  # a crafted callback body: refused, not a 500
                        ({"contents": ["data:application/zip;base64,AA=="]}, "empty"),
                        ({"contents": "data:application/zip;base64," + base64.b64encode(make_zip({})).decode(),
                          "filename": "e.zip"}, "holds no records")):
        batch, message = stage_batch(jobs, settings, **kwargs)
        assert batch is None and message.startswith("Not taken") and why in message
    assert sum(jobs.counts().values()) == 2  # the refusals created nothing


def test_bat015_a_running_batch_keeps_its_jobs_from_the_recovery_pass(jobs):
    from datetime import timedelta

    from sqlalchemy import update

    from services.batch import KeepAlive
    from services.history.schema import utc_now

    batch_id = create_batch(jobs, read_archive(make_zip({f"w{i}.npy": npy_bytes(i) for i in range(3)}), "x.zip"))
    other = create_batch(jobs, read_archive(make_zip({"o.npy": npy_bytes(9)}), "o.zip"))
    with jobs.engine.begin() as connection:  # as if the runner had been quiet for five minutes
        connection.execute(update(jobs.jobs).values(updated_at=utc_now() - timedelta(minutes=5)))
    assert len(jobs.stale(120)) == 4
    keep_alive = KeepAlive(jobs, batch_id, every_s=3600)
    keep_alive()  # not yet due
    assert len(jobs.stale(120)) == 4
    keep_alive.every_s = 0
    keep_alive()
    assert jobs.stale(120) == jobs.batch_job_ids(other)  # only the batch whose runner stopped is offered again


def test_bat016_post_api_batches_queues_an_archive_on_the_job_engine(tmp_path, artifacts_copy, monkeypatch):
    import time

    from app import create_app
    from app.jobs import JOBS_KEY
    from app.settings import Settings
    from services.jobs import EngineUnavailable

    app = create_app(settings=Settings(artifacts_dir=artifacts_copy, instance_dir=tmp_path / "instance",
                                       database_url=f"sqlite:///{tmp_path / 'h.db'}", max_upload_bytes=100_000,
                                       max_batch_bytes=200_000))
    client = app.server.test_client()
    archive = make_zip({**{f"w{i}.npy": npy_bytes(i) for i in range(3)}, "notes.doc": b"x"})
    wrong = client.post("/api/batches", data={"file": (io.BytesIO(archive), "b.zip"), "relay_connection": "wye"},
                        content_type="multipart/form-data")
    assert wrong.status_code == 400 and "unknown relay_connection" in wrong.get_json()["error"]
    answer = client.post("/api/batches", data={"file": (io.BytesIO(archive), "b.zip"),
                                               "relay_connection": "zero_sequence_removed"},
                         content_type="multipart/form-data")
    assert answer.status_code == 202, answer.get_json()
    body = answer.get_json()
    assert (body["records"], body["rejected"]) == (3, 1) and answer.headers["Location"] == body["location"]
    deadline = time.monotonic() + 60
    while not (summary := client.get(body["location"]).get_json())["complete"] and time.monotonic() < deadline:
        time.sleep(0.1)
    assert summary["counts"]["done"] == 3 and summary["counts"]["failed"] == 1
    analysed = client.get("/api/history").get_json()["items"]
    assert len(analysed) == 3  # the refused request queued nothing
    assert {client.get(f"/api/history/{item['id']}").get_json()["prediction"]["relay_connection"]
            for item in analysed} == {"zero_sequence_removed"}
    assert client.post("/api/batches", json={"file": "x"}).status_code == 415
    not_archive = client.post("/api/batches", data={"file": (io.BytesIO(b"hello"), "x.zip")},
                              content_type="multipart/form-data")
    assert not_archive.status_code == 400 and "not a zip" in not_archive.get_json()["error"]
    too_big = client.post("/api/batches", data={"file": (io.BytesIO(b"\1" * 600_000), "x.zip")},
                          content_type="multipart/form-data")
    assert too_big.status_code == 413
    service = app.server.extensions[JOBS_KEY]

    def refuse(job_id: str) -> None:
        raise EngineUnavailable("the job queue is unavailable (ConnectionError)")

    monkeypatch.setattr(service.engine, "submit", refuse)
    down = client.post("/api/batches", data={"file": (io.BytesIO(archive), "b.zip")},
                       content_type="multipart/form-data")
    assert down.status_code == 503 and "cancelled" in down.get_json()["error"]
    assert service.jobs.counts(source="batch")["queued"] == 0
    service.stop(close_engine=True)
