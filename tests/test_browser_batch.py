"""The Batch page in headless Chromium: an archive of a few hundred records runs as a Dash background
callback (the disk-cache manager: a process of its own, its model loaded once) with the progress
shown, and ends with a summary whose counts are those submitted; Cancel on a folder batch stops it,
queued records included.

Run with `pytest tests/test_browser_batch.py --headless`.
"""

from __future__ import annotations

import io
import os
import time
import zipfile
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from dash.testing.wait import until
from selenium.webdriver.support.select import Select

from app import create_app
from app.jobs import JOBS_KEY
from app.settings import Settings
from components import ids
from services.simulation import generate_dataset
from tests.celery_workers import start_worker, stop_worker

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parents[1]
ARTIFACTS = Path(os.environ.get("GEM_ARTIFACTS_DIR") or ROOT / "artifacts")
TIMEOUT = 20


def npy(window: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, window.astype(np.float32))
    return buffer.getvalue()


@pytest.fixture(scope="module")
def windows() -> np.ndarray:
    X, _y, _params = generate_dataset(per_class=7, seed=21)  # 315 windows, every class
    return X[:300]


@pytest.fixture
def batch_app(tmp_path):
    if not (ARTIFACTS / "best_model.pth").is_file():
        pytest.fail(f"no trained model in {ARTIFACTS}: the shipped artifacts are part of the repository")
    roots = tmp_path / "records"
    roots.mkdir()
    settings = Settings(artifacts_dir=ARTIFACTS, database_url=f"sqlite:///{tmp_path / 'history.db'}",
                        instance_dir=tmp_path / "instance", batch_roots=str(roots))
    return create_app(settings=settings), roots


def _count(dash_duo, title: str) -> int:
    return int(dash_duo.find_element(f'#{ids.BATCH_SUMMARY} [data-count="{title}"]').text.replace(",", ""))


def _breakdown(dash_duo, kind: str) -> dict[str, int]:
    cells = dash_duo.find_elements(f'#{ids.BATCH_SUMMARY} [data-breakdown="{kind}"] tr')
    return {row.find_elements("css selector", "td")[0].text: int(row.find_elements("css selector", "td")[1].text)
            for row in cells}


def test_bat101_an_archive_of_300_records_runs_with_progress_and_a_matching_summary(dash_duo, batch_app, windows,
                                                                                     tmp_path):
    app, _roots = batch_app
    archive = tmp_path / "station-2024.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zipped:
        for number, window in enumerate(windows):
            zipped.writestr(f"records/w{number:03d}.npy", npy(window))
        zipped.writestr("records/broken.npy", b"not a numpy file")
        zipped.writestr("records/half.cfg", b"station,1999\n")
        zipped.writestr("../escape.npy", npy(windows[0]))
    _upload_on_batch_page(dash_duo, app, archive, "301 records to analyse, 2 rejected")
    # the progress bar moves while the background process works: records/s and time left shown
    until(lambda: "records/s" in dash_duo.find_element(f"#{ids.BATCH_PROGRESS_TEXT}").text, timeout=60,
          msg="no progress figures shown")
    assert dash_duo.find_element(f"#{ids.BATCH_CANCEL}").is_enabled()
    dash_duo.wait_for_element(f"#{ids.BATCH_SUMMARY}", timeout=120)
    assert (_count(dash_duo, "records"), _count(dash_duo, "analysed"), _count(dash_duo, "rejected"),
            _count(dash_duo, "cancelled")) == (303, 300, 3, 0)
    history = app.server.extensions["grid_event_monitor"].store
    rows, total = history.query(limit=1000, source="batch")
    assert total == 300
    categories = Counter(row["category"].replace("_", " ") for row in rows)
    assert _breakdown(dash_duo, "category") == dict(categories)
    assert sum(_breakdown(dash_duo, "equipment").values()) == 300 == sum(_breakdown(dash_duo, "severity").values())
    rejected = dash_duo.find_element(f"#{ids.BATCH_REJECTED}").text
    assert "broken.npy" in rejected and "half.cfg" in rejected and "escape.npy" in rejected
    link = dash_duo.find_element(f"#{ids.BATCH_GRID} a[href*='/analysis/']").get_attribute("href")
    assert int(link.rsplit("/", 1)[1]) in {row["id"] for row in rows}
    csv_href = dash_duo.find_element(f"#{ids.BATCH_CSV_LINK}").get_attribute("href")
    text = app.server.test_client().get(csv_href.replace(dash_duo.server.url.rstrip("/"), "")).get_data(as_text=True)
    assert len(text.strip().splitlines()) == 1 + 303
    assert not dash_duo.find_element(f"#{ids.BATCH_CANCEL}").is_enabled()
    assert dash_duo.get_logs() == []


def test_bat102_cancel_stops_a_folder_batch_and_its_queued_records(dash_duo, batch_app, windows):
    app, roots = batch_app
    folder = roots / "archive-2023"
    folder.mkdir()
    for number in range(2000):  # long enough to be cancelled halfway
        (folder / f"w{number:04d}.npy").write_bytes(npy(windows[number % len(windows)]))
    dash_duo.start_server(app, navigate=False)
    dash_duo.driver.get(dash_duo.server.url.rstrip("/") + "/batch")
    dash_duo.wait_for_element(f"#{ids.BATCH_FOLDER}", timeout=TIMEOUT)
    Select(dash_duo.find_element(f"#{ids.BATCH_FOLDER}")).select_by_value(str(folder))
    dash_duo.find_element(f"#{ids.BATCH_FOLDER_START}").click()
    dash_duo.wait_for_contains_text(f"#{ids.BATCH_MESSAGE}", "2,000 records to analyse", timeout=TIMEOUT)
    until(lambda: "records/s" in dash_duo.find_element(f"#{ids.BATCH_PROGRESS_TEXT}").text, timeout=60,
          msg="no progress figures shown")
    dash_duo.find_element(f"#{ids.BATCH_CANCEL}").click()
    dash_duo.wait_for_contains_text(f"#{ids.BATCH_RESULT}", "records were not analysed", timeout=TIMEOUT)
    jobs = app.server.extensions[JOBS_KEY].jobs
    history = app.server.extensions["grid_event_monitor"].store
    counts = jobs.counts(source="batch")
    assert counts["queued"] == counts["running"] == 0 and counts["cancelled"] > 0
    assert counts["done"] + counts["cancelled"] == 2000
    analysed = history.query(limit=1, source="batch")[1]
    time.sleep(2)  # nothing of the batch runs after Cancel
    assert history.query(limit=1, source="batch")[1] == analysed == counts["done"]
    assert _count(dash_duo, "cancelled") == counts["cancelled"] and _count(dash_duo, "analysed") == counts["done"]
    until(lambda: dash_duo.find_element(f"#{ids.BATCH_UPLOAD}") is not None, timeout=TIMEOUT)
    assert dash_duo.get_logs() == []


# -- on Celery: GEM_BROKER_URL set, Redis on 127.0.0.1:6379, the history in PostgreSQL -------------
REDIS_URL = "redis://127.0.0.1:6379/0"
POSTGRES_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


@pytest.fixture(scope="module")
def celery_stack(tmp_path_factory, artifacts_copy):
    """Settings on this run's own queue and PostgreSQL schema, with the two workers running: the
    record worker (`app.worker`) and the background-callback worker (`app.batch_worker`)."""
    import uuid

    import redis
    from sqlalchemy import create_engine, text

    folder = tmp_path_factory.mktemp("batch-celery")
    schema, queue = f"gem_batch_{uuid.uuid4().hex[:10]}", f"gem-batch-{uuid.uuid4().hex[:10]}"
    admin = create_engine(POSTGRES_URL)
    with admin.begin() as connection:
        connection.execute(text(f"CREATE SCHEMA {schema}"))
    settings = Settings(artifacts_dir=artifacts_copy, instance_dir=folder / "instance", broker_url=REDIS_URL,
                        job_queue=queue, database_url=f"{POSTGRES_URL}?options=-csearch_path%3D{schema}")
    logs = {"records": folder / "records.log", "callbacks": folder / "callbacks.log"}
    workers = [start_worker(module, settings, logs[log], f"{module}.{queue}@%h")
               for module, log in (("app.worker", "records"), ("app.batch_worker", "callbacks"))]
    try:
        yield settings, logs
    finally:
        for process in workers:
            stop_worker(process)
        with admin.begin() as connection:
            connection.execute(text(f"DROP SCHEMA {schema} CASCADE"))
        admin.dispose()
        client = redis.Redis.from_url(REDIS_URL)
        keys = list(client.scan_iter(f"{queue}*"))
        if keys:
            client.delete(*keys)
        client.close()


def _upload_on_batch_page(dash_duo, app, archive: Path, expected: str) -> None:
    """Serve the app, open the Batch page, upload the archive and wait for its count message."""
    dash_duo.start_server(app, navigate=False)
    dash_duo.driver.get(dash_duo.server.url.rstrip("/") + "/batch")
    dash_duo.wait_for_element(f"#{ids.BATCH_UPLOAD} input[type=file]", timeout=TIMEOUT).send_keys(str(archive))
    dash_duo.wait_for_contains_text(f"#{ids.BATCH_MESSAGE}", expected, timeout=TIMEOUT)


def _worker_logs(logs: dict[str, Path]) -> str:
    return "\n".join(f"{name} worker log:\n{path.read_text()[-3000:]}" for name, path in logs.items())


@pytest.fixture
def celery_app(celery_stack):
    settings, logs = celery_stack
    app = create_app(settings=settings)
    yield app, logs
    app.server.extensions[JOBS_KEY].stop()
    app.server.extensions["grid_event_monitor"].store.dispose()


@pytest.mark.postgres
@pytest.mark.slow
def test_bat103_on_celery_the_callback_worker_queues_the_records_and_the_record_worker_analyses_them(
        dash_duo, celery_app, windows, tmp_path):
    import tarfile

    app, logs = celery_app
    archive = tmp_path / "celery-batch.tar.gz"
    with tarfile.open(archive, "w:gz") as tarred:
        for number, window in enumerate(windows[:60]):
            data = npy(window)
            info = tarfile.TarInfo(f"w{number:02d}.npy")
            info.size = len(data)
            tarred.addfile(info, io.BytesIO(data))
    _upload_on_batch_page(dash_duo, app, archive, "60 records to analyse")
    try:
        dash_duo.wait_for_element(f"#{ids.BATCH_SUMMARY}", timeout=180)
    except Exception as exc:
        raise AssertionError("no summary; " + _worker_logs(logs)) from exc
    assert (_count(dash_duo, "records"), _count(dash_duo, "analysed"), _count(dash_duo, "rejected")) == (60, 60, 0)
    history = app.server.extensions["grid_event_monitor"].store
    assert history.query(limit=1, source="batch")[1] == 60
    assert "gem.analyse_record" in logs["records"].read_text()  # the records ran on the record worker
    assert "background_callback_" in logs["callbacks"].read_text()  # the callback on its own worker
    assert dash_duo.get_logs() == []


#: as many .npy windows as the dashboard's 10 MB upload limit takes (about 8.9 kB each, zipped)
RECORDS_IN_A_LONG_BATCH = 1000


@pytest.mark.postgres
@pytest.mark.slow
def test_bat105_on_celery_cancel_stops_the_records_already_queued_for_the_record_worker(
        dash_duo, celery_app, windows, tmp_path):
    app, logs = celery_app
    archive = tmp_path / "long.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zipped:
        for number in range(RECORDS_IN_A_LONG_BATCH):
            zipped.writestr(f"w{number:04d}.npy", npy(windows[number % len(windows)]))
    assert archive.stat().st_size < app.server.config["GEM_SETTINGS"].max_upload_bytes  # the page's limit
    jobs = app.server.extensions[JOBS_KEY].jobs
    history = app.server.extensions["grid_event_monitor"].store
    before = history.query(limit=1, source="batch")[1]
    _upload_on_batch_page(dash_duo, app, archive, f"{RECORDS_IN_A_LONG_BATCH:,} records to analyse")
    try:
        until(lambda: "records/s" in dash_duo.find_element(f"#{ids.BATCH_PROGRESS_TEXT}").text, timeout=90)
    except Exception as exc:
        raise AssertionError("no progress; " + _worker_logs(logs)) from exc
    dash_duo.find_element(f"#{ids.BATCH_CANCEL}").click()
    dash_duo.wait_for_contains_text(f"#{ids.BATCH_RESULT}", "records were not analysed", timeout=TIMEOUT)
    batch_id = dash_duo.find_element(f"#{ids.BATCH_CSV_LINK}").get_attribute("href").rsplit("/", 1)[1][:32]
    counts = jobs.counts(batch_id=batch_id)
    assert counts["queued"] == counts["running"] == 0 and counts["cancelled"] > 0
    assert counts["done"] + counts["cancelled"] == RECORDS_IN_A_LONG_BATCH
    time.sleep(3)  # the worker drains the messages of the cancelled records: it skips them
    assert history.query(limit=1, source="batch")[1] - before == counts["done"] == jobs.counts(batch_id=batch_id)["done"]
    assert dash_duo.get_logs() == []


@pytest.mark.parametrize("width", ["desktop", "phone"])
def test_bat104_the_batch_page_with_a_result_passes_axe_and_fits_the_window(dash_duo, batch_app, windows, tmp_path,
                                                                             width):
    from tests.test_browser_a11y import WIDTHS, _open, axe_violations, describe, serious, set_viewport

    app, roots = batch_app
    (roots / "few").mkdir()
    for number in range(12):
        (roots / "few" / f"w{number}.npy").write_bytes(npy(windows[number]))
    (roots / "few" / "notes.txt.bak").write_bytes(b"x")
    dash_duo.start_server(app)
    set_viewport(dash_duo.driver, *WIDTHS[width])
    _open(dash_duo, "/batch", f"#{ids.BATCH_UPLOAD}")
    found = {"empty": serious(axe_violations(dash_duo.driver))}
    Select(dash_duo.find_element(f"#{ids.BATCH_FOLDER}")).select_by_value(str(roots / "few"))
    dash_duo.find_element(f"#{ids.BATCH_FOLDER_START}").click()
    dash_duo.wait_for_element(f"#{ids.BATCH_GRID} .ag-row", timeout=120)
    assert _count(dash_duo, "analysed") == 12 and _count(dash_duo, "rejected") == 1
    found["result"] = serious(axe_violations(dash_duo.driver))
    report = "\n".join(f"{name}:\n{describe(violations)}" for name, violations in found.items() if violations)
    assert not report, f"axe-core at {width} width:\n{report}"
    assert dash_duo.driver.execute_script("return document.documentElement.scrollWidth;") <= WIDTHS[width][0]
    assert dash_duo.get_logs() == []
