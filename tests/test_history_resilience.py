"""The history when its database is frozen, stopped or busy, retried requests, retention, CSV cells.

A frozen PostgreSQL is played by a TCP proxy (tests/freezable_proxy.py) between the app and the
real server at 127.0.0.1:5432: frozen, it keeps every socket open and forwards nothing, which is
what a paused (SIGSTOP) server looks like from the client (the kernel still ACKs). No mocks.
"""

from __future__ import annotations

import csv
import fcntl
import io
import os
import sqlite3
import threading
import time
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import create_engine, inspect, text

from app import create_app
from app.__main__ import main as app_main
from app.__main__ import parse_args, parse_command_line
from app.settings import Settings
from callbacks.analyze import AnalyzeRequest, analyze_page_update
from callbacks.history import history_rows
from components import ids
from services.analysis import EXTENSION_KEY
from services.history import DatabaseTimeouts, HistoryStore, HistoryUnavailable
from services.history.store import _csv_cell
from tests.freezable_proxy import FreezableProxy
from tests.test_history import POSTGRES_URL, _record, store_url  # noqa: F401 (store_url is a fixture)

GOOD = {"sender_peer": "prosumer-a", "receiver_peer": "consumer-home"}
#: short deadlines keep the suite quick; the bound below is what "no hang" means for them
FAST = {"db_connect_timeout_s": 2.0, "db_statement_timeout_s": 2.0, "db_pool_timeout_s": 2.0}
#: a request may wait for one connect or one statement deadline, plus scheduling slack
BOUND_S = 4.0
INTERNALS = ("psycopg", "sqlalchemy", "Traceback", "/tmp", "127.0.0.1", "OperationalError", "sqlite3")


# -- fixtures ------------------------------------------------------------------------------------
@pytest.fixture
def pg_schema():
    """A fresh PostgreSQL schema (parallel runs never share a table), dropped afterwards."""
    schema = f"gem_res_{uuid.uuid4().hex[:10]}"
    admin = create_engine(POSTGRES_URL)
    with admin.begin() as connection:
        connection.execute(text(f"CREATE SCHEMA {schema}"))
    yield schema
    with admin.begin() as connection:
        connection.execute(text(f"DROP SCHEMA {schema} CASCADE"))
    admin.dispose()


@pytest.fixture
def proxy():
    proxy = FreezableProxy(("127.0.0.1", 5432))
    yield proxy
    proxy.close()


def _scoped(port: int, schema: str) -> str:
    return f"postgresql+psycopg://postgres@127.0.0.1:{port}/test?options=-csearch_path%3D{schema}"


@pytest.fixture
def proxied_app(artifacts_copy, tmp_path, proxy, pg_schema):
    """The whole app on PostgreSQL through the proxy, with 2 s database deadlines."""
    settings = Settings(artifacts_dir=artifacts_copy, instance_dir=tmp_path,
                        database_url=_scoped(proxy.port, pg_schema), **FAST)
    app = create_app(settings=settings)
    yield app
    proxy.resume()
    app.server.extensions[EXTENSION_KEY].store.dispose()


def _sample(client) -> str:
    return client.get("/api/samples").get_json()["samples"][0]["filename"]


def _timed(call):
    started = time.monotonic()
    answer = call()
    return answer, time.monotonic() - started


def _grid_callback(app, client):
    """The History grid's Dash callback, through Dash's own endpoint."""
    callback_id = next(key for key in app.callback_map if f"{ids.HISTORY_GRID}.getRowsResponse" in key)
    body = {"output": callback_id,
            "outputs": [{"id": ids.HISTORY_GRID, "property": "getRowsResponse"},
                        {"id": ids.HISTORY_TOTAL, "property": "children"},
                        {"id": ids.HISTORY_CSV_LINK, "property": "href"},
                        {"id": ids.HISTORY_NOTICE, "property": "children"}],
            "inputs": [{"id": ids.HISTORY_GRID, "property": "getRowsRequest", "value": {"startRow": 0, "endRow": 10}}],
            "changedPropIds": [f"{ids.HISTORY_GRID}.getRowsRequest"], "state": []}
    return client.post("/_dash-update-component", json=body)


def _page_layout(client, pathname: str):
    """Dash's pages callback: the layout the browser loads for `pathname` after the page shell."""
    body = {"output": ".._pages_content.children..._pages_store.data..",
            "outputs": [{"id": "_pages_content", "property": "children"}, {"id": "_pages_store", "property": "data"}],
            "inputs": [{"id": "_pages_location", "property": "pathname", "value": pathname},
                       {"id": "_pages_location", "property": "search", "value": ""}],
            "changedPropIds": ["_pages_location.pathname"], "state": []}
    return client.post("/_dash-update-component", json=body)


def _assert_public(body: str) -> None:
    for word in INTERNALS:
        assert word not in body, f"{word!r} in a public answer: {body[:300]}"


# -- a frozen or stopped PostgreSQL, route by route ------------------------------------------------
@pytest.mark.postgres
def test_frozen_postgres_every_route_answers_within_the_deadline_then_recovers(proxied_app, proxy):
    client = proxied_app.server.test_client()
    sample = _sample(client)
    first = client.post("/predict", json={**GOOD, "sample_filename": sample}).get_json()
    assert first["saved"] is True and first["save_error"] is None and first["analysis_id"] > 0

    proxy.freeze()
    answers = {
        "predict": _timed(lambda: client.post("/predict", json={**GOOD, "sample_filename": sample})),
        "predict_with_key": _timed(lambda: client.post("/predict", json={**GOOD, "sample_filename": sample},
                                                       headers={"Idempotency-Key": "frozen-1"})),
        "health": _timed(lambda: client.get("/api/health")),
        "history": _timed(lambda: client.get("/api/history")),
        "history_item": _timed(lambda: client.get(f"/api/history/{first['analysis_id']}")),
        "csv": _timed(lambda: client.get("/api/history.csv")),
        "grid": _timed(lambda: _grid_callback(proxied_app, client)),
    }
    for route, (_, seconds) in answers.items():
        assert seconds < BOUND_S, f"{route} took {seconds:.1f} s with the database frozen"

    predicted = answers["predict"][0]
    assert predicted.status_code == 200  # the analysis is not lost
    body = predicted.get_json()
    assert body["saved"] is False and body["analysis_id"] is None
    assert body["save_error"] == "the history database did not answer within 2 s"
    assert body["predicted_label"] == first["predicted_label"] and len(body["waveform_data"]) == 3
    assert body["p2p_impact_details"] == first["p2p_impact_details"]
    keyed = answers["predict_with_key"][0]
    assert keyed.status_code == 200 and keyed.get_json()["saved"] is False

    health = answers["health"][0]
    assert health.status_code == 503
    assert health.get_json()["database"]["reachable"] is False
    assert health.get_json()["database"]["message"].startswith("history unavailable: the history database did not")
    for route in ("history", "history_item", "csv"):
        response = answers[route][0]
        assert response.status_code == 503 and response.mimetype == "application/json", route
        assert response.get_json()["error"].startswith("history unavailable: the history database did not answer")
    grid = answers["grid"][0]
    assert grid.status_code == 200
    outputs = grid.get_json()["response"]
    assert outputs[ids.HISTORY_GRID]["getRowsResponse"] == {"rowData": [], "rowCount": 0}
    notice = str(outputs[ids.HISTORY_NOTICE]["children"])
    assert "The history is unavailable" in notice and "did not answer within 2 s" in notice
    for response, _ in answers.values():
        _assert_public(response.get_data(as_text=True))

    proxy.resume()  # recovery without a restart
    again = client.post("/predict", json={**GOOD, "sample_filename": sample}).get_json()
    assert again["saved"] is True and again["analysis_id"] > first["analysis_id"]
    assert client.get("/api/health").status_code == 200
    listed = client.get("/api/history").get_json()
    assert listed["total"] == 2  # the analyses answered while frozen were not written
    assert client.get("/api/history.csv").get_data(as_text=True).count("\n") == 3
    # the retry of the keyed request, now that the history is back, is written once
    retried = [client.post("/predict", json={**GOOD, "sample_filename": sample},
                           headers={"Idempotency-Key": "frozen-1"}).get_json() for _ in range(2)]
    assert retried[0]["saved"] and retried[0]["analysis_id"] == retried[1]["analysis_id"]
    assert client.get("/api/history").get_json()["total"] == 3


@pytest.mark.postgres
def test_stopped_postgres_answers_at_once_and_the_analyze_page_keeps_the_result(proxied_app, proxy):
    client = proxied_app.server.test_client()
    sample = _sample(client)
    context = proxied_app.server.extensions[EXTENSION_KEY]
    # the process's first analysis loads the model and the power-flow stack: not what is timed here
    assert client.post("/predict", json={**GOOD, "sample_filename": sample}).get_json()["saved"] is True
    proxy.stop()
    response, seconds = _timed(lambda: client.post("/predict", json={**GOOD, "sample_filename": sample}))
    assert seconds < BOUND_S
    assert response.status_code == 200
    assert response.get_json()["saved"] is False
    assert response.get_json()["save_error"] == "the history database is unreachable"
    health = client.get("/api/health")
    assert health.status_code == 503 and health.get_json()["database"]["message"] == \
        "history unavailable: the history database is unreachable"
    assert client.get("/api/history.csv").status_code == 503

    with proxied_app.server.test_request_context():
        outputs = analyze_page_update(
            AnalyzeRequest(trigger=ids.ANALYZE_BUTTON, source_tab=ids.SOURCE_SAMPLE, sample=sample,
                           sender="prosumer-a", receiver="consumer-home", transfer_kw=5.0), context)
    assert outputs["result"]["label"] and outputs["result"]["saved"] is False  # every panel is filled
    assert outputs["waveform"] is not None and outputs["impact"] is not None
    alert = outputs["alert"]
    assert alert.color == "warning"
    assert "Not saved to the history" in str(alert) and "the history database is unreachable" in str(alert)
    assert "The history is unavailable" in str(outputs["latest"])
    assert client.get("/history").status_code == 200  # the page itself renders; its grid says why
    assert client.get("/analysis/1").status_code == 503  # neither 404 nor 500: unknown for now
    for pathname, says_unavailable in (("/", True), ("/analysis/1", True), ("/network", False), ("/history", False)):
        layout = _page_layout(client, pathname)
        assert layout.status_code == 200, pathname
        assert ("The history is unavailable" in layout.get_data(as_text=True)) is says_unavailable, pathname

    proxy.resume()
    assert client.post("/predict", json={**GOOD, "sample_filename": sample}).get_json()["saved"] is True
    rows, _ = history_rows({"startRow": 0, "endRow": 10}, context.store, lambda i: f"/analysis/{i}")
    assert rows["rowCount"] == 2  # the one before the stop and the one after; none from meanwhile


@pytest.mark.postgres
def test_store_operations_on_a_frozen_postgres_raise_history_unavailable_in_time(proxy, pg_schema):
    store = HistoryStore(_scoped(proxy.port, pg_schema), timeouts=DatabaseTimeouts(2, 1.5, 1))
    try:
        store.add(_record(1))
        proxy.freeze()
        for name, operation in (("add", lambda: store.add(_record(2))), ("get", lambda: store.get(1)),
                                ("query", lambda: store.query(limit=5)), ("count", store.count),
                                ("csv", lambda: next(store.iter_csv()))):
            started = time.monotonic()
            with pytest.raises(HistoryUnavailable, match="did not answer within"):
                operation()
            assert time.monotonic() - started < 3.0, name
        assert store.check().startswith("the history database did not answer")
        proxy.resume()
        assert store.count() == 1 and store.check() is None
        # the deadline is the client's: it also holds with many threads waiting at once
        proxy.freeze()
        failures: list[float] = []

        def one() -> None:
            started = time.monotonic()
            try:
                store.query(limit=1)
            except HistoryUnavailable:
                failures.append(time.monotonic() - started)

        threads = [threading.Thread(target=one) for _ in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=30)
        assert len(failures) == 8 and max(failures) < 4.0, failures
    finally:
        proxy.resume()
        store.dispose()


@pytest.mark.postgres
def test_a_url_with_options_keeps_them_beside_the_statement_timeout(pg_schema):
    store = HistoryStore(_scoped(5432, pg_schema), timeouts=DatabaseTimeouts(2, 4, 2))
    try:
        assert store.table.name in inspect(store.engine).get_table_names(schema=pg_schema)
        with store.engine.connect() as connection:
            assert connection.execute(text("SHOW statement_timeout")).scalar() == "3600ms"  # inside the 4 s deadline
            assert connection.execute(text("SHOW search_path")).scalar() == pg_schema
    finally:
        store.dispose()


# -- SQLite: a writer that never lets go -----------------------------------------------------------
def test_sqlite_frozen_writer_lock_is_waited_for_a_bounded_time(tmp_path):
    store = HistoryStore(f"sqlite:///{tmp_path / 'h.db'}", timeouts=DatabaseTimeouts(1, 1, 1))
    store.add(_record(0))
    # another process frozen while it holds the writer queue (flock belongs to the open file)
    holder = os.open(tmp_path / "h.writelock", os.O_RDWR)
    fcntl.flock(holder, fcntl.LOCK_EX)
    try:
        started = time.monotonic()
        with pytest.raises(HistoryUnavailable, match="busy"):
            store.add(_record(1))
        assert time.monotonic() - started < 2.0
        assert store.count() == 1  # readers are not held (WAL)
    finally:
        fcntl.flock(holder, fcntl.LOCK_UN)
        os.close(holder)
    store.add(_record(2))
    assert store.count() == 2
    store.dispose()


def test_sqlite_locked_database_file_is_busy_within_the_deadline(tmp_path):
    path = tmp_path / "h.db"
    store = HistoryStore(f"sqlite:///{path}", timeouts=DatabaseTimeouts(1, 1, 1))
    store.add(_record(0))
    other = sqlite3.connect(path, timeout=0)  # e.g. a tool with a write transaction left open
    other.execute("BEGIN IMMEDIATE")
    try:
        started = time.monotonic()
        with pytest.raises(HistoryUnavailable, match="busy"):
            store.add(_record(1))
        assert time.monotonic() - started < 2.5
    finally:
        other.rollback()
        other.close()
    assert store.add(_record(1)) > 0
    store.dispose()


def test_sqlite_statement_past_the_deadline_is_interrupted(tmp_path):
    store = HistoryStore(f"sqlite:///{tmp_path / 'h.db'}", timeouts=DatabaseTimeouts(1, 0.5, 1))
    endless = text("WITH RECURSIVE n(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM n) SELECT count(*) FROM n")
    started = time.monotonic()
    with pytest.raises(HistoryUnavailable, match=r"did not answer within 0.5 s"), \
            store._operation("test"), store.engine.connect() as connection:
        connection.execute(endless)
    assert time.monotonic() - started < 2.0
    assert store.count() == 0  # the store works on
    store.dispose()


def test_sqlite_busy_predict_keeps_the_analysis_and_history_reads_go_on(artifacts_copy, tmp_path):
    app = create_app(settings=Settings(artifacts_dir=artifacts_copy, instance_dir=tmp_path,
                                       db_statement_timeout_s=1.0))
    client = app.server.test_client()
    sample = _sample(client)
    assert client.post("/predict", json={**GOOD, "sample_filename": sample}).get_json()["saved"] is True
    holder = os.open(tmp_path / "history.writelock", os.O_RDWR)
    fcntl.flock(holder, fcntl.LOCK_EX)
    try:
        response = client.post("/predict", json={**GOOD, "sample_filename": sample})
        assert response.status_code == 200
        assert response.get_json()["saved"] is False
        assert response.get_json()["save_error"].startswith("the history database is busy")
        assert client.get("/api/history").get_json()["total"] == 1
    finally:
        fcntl.flock(holder, fcntl.LOCK_UN)
        os.close(holder)
    app.server.extensions[EXTENSION_KEY].store.dispose()


# -- Idempotency-Key -------------------------------------------------------------------------------
@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def any_app(request, artifacts_copy, tmp_path):
    if request.param == "sqlite":
        app = create_app(settings=Settings(artifacts_dir=artifacts_copy, instance_dir=tmp_path))
        yield app
        app.server.extensions[EXTENSION_KEY].store.dispose()
        return
    schema = request.getfixturevalue("pg_schema")
    app = create_app(settings=Settings(artifacts_dir=artifacts_copy, instance_dir=tmp_path,
                                       database_url=_scoped(5432, schema)))
    yield app
    app.server.extensions[EXTENSION_KEY].store.dispose()


def test_a_retried_predict_with_its_key_returns_the_first_analysis(any_app):
    client = any_app.server.test_client()
    store = any_app.server.extensions[EXTENSION_KEY].store
    body = {**GOOD, "sample_filename": _sample(client)}
    key = {"Idempotency-Key": str(uuid.uuid4())}
    first = client.post("/predict", json=body, headers=key)
    retry = client.post("/predict", json=dict(reversed(list(body.items()))), headers=key)  # same request
    assert first.status_code == retry.status_code == 200
    assert retry.get_json() == first.get_json()  # the same answer, id and time included
    assert store.count() == 1
    item = client.get(f"/api/history/{first.get_json()['analysis_id']}").get_json()
    assert "idempotency_key" not in item and "request_digest" not in item
    other = client.post("/predict", json={**body, "receiver_peer": "ev-hub"}, headers=key)
    assert other.status_code == 422 and "Idempotency-Key" in other.get_json()["error"]
    assert store.count() == 1
    unkeyed = client.post("/predict", json=body)
    assert unkeyed.get_json()["analysis_id"] != first.get_json()["analysis_id"] and store.count() == 2


def test_concurrent_requests_with_one_key_write_one_row(any_app):
    client_app = any_app.server
    store = client_app.extensions[EXTENSION_KEY].store
    body = {**GOOD, "sample_filename": _sample(client_app.test_client())}
    key = {"Idempotency-Key": "retry-race-" + uuid.uuid4().hex}
    answers: list[dict] = []

    def send() -> None:
        answers.append(client_app.test_client().post("/predict", json=body, headers=key).get_json())

    threads = [threading.Thread(target=send) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert len(answers) == 6 and {answer["analysis_id"] for answer in answers} == {answers[0]["analysis_id"]}
    assert all(answer["saved"] for answer in answers) and store.count() == 1


def test_predict_file_retry_with_a_new_multipart_boundary_is_the_same_request(any_app, artifacts_copy):
    client = any_app.server.test_client()
    sample = _sample(client)
    content = (artifacts_copy / "sample_data" / sample).read_bytes()
    key = {"Idempotency-Key": "file-" + uuid.uuid4().hex}

    def send(receiver: str = "consumer-home"):
        data = {"file": (io.BytesIO(content), sample), "sender_peer": "prosumer-a", "receiver_peer": receiver}
        return client.post("/api/predict-file", data=data, content_type="multipart/form-data", headers=key)

    first, retry = send(), send()
    assert first.status_code == retry.status_code == 200
    assert retry.get_json()["analysis_id"] == first.get_json()["analysis_id"]
    assert send("ev-hub").status_code == 422
    assert any_app.server.extensions[EXTENSION_KEY].store.count() == 1


@pytest.mark.parametrize("key", ["", "a" * 129, "spaces are not allowed", "é", "x\r\nSet-Cookie: a=b"])
def test_malformed_idempotency_keys_are_refused_and_nothing_is_written(artifacts_copy, tmp_path, key):
    app = create_app(settings=Settings(artifacts_dir=artifacts_copy, instance_dir=tmp_path))
    client = app.server.test_client()
    environ = {"HTTP_IDEMPOTENCY_KEY": key}  # raw, as a client could send it
    response = client.post("/predict", json={**GOOD, "sample_filename": _sample(client)}, environ_base=environ)
    assert response.status_code == 400 and "Idempotency-Key" in response.get_json()["error"]
    assert app.server.extensions[EXTENSION_KEY].store.count() == 0
    app.server.extensions[EXTENSION_KEY].store.dispose()


# -- retention -------------------------------------------------------------------------------------
def _aged_store(store_url) -> tuple[HistoryStore, datetime]:  # noqa: F811 (the fixture's value)
    url, prefix = store_url
    store = HistoryStore(url, table_prefix=prefix)
    now = datetime(2026, 6, 1, tzinfo=UTC)
    for age_days in (400, 200, 100, 40, 20, 10, 5, 1):  # oldest first: ids grow with time
        store.add(_record(age_days % 45, created_at=now - timedelta(days=age_days)))
    return store, now


def test_prune_by_age_by_count_and_dry_run(store_url):  # noqa: F811
    store, now = _aged_store(store_url)
    try:
        dry = store.prune(days=30, dry_run=True, now=now)
        assert (dry.deleted, dry.remaining, dry.by_age, dry.dry_run) == (4, 4, 4, True)
        assert store.count() == 8
        done = store.prune(days=30, max_rows=3, now=now)
        assert (done.deleted, done.by_age, done.by_count, done.remaining) == (5, 4, 1, 3)
        rows, _ = store.query(limit=10)
        ages = sorted((now - datetime.fromisoformat(row["created_at"])).days for row in rows)
        assert ages == [1, 5, 10]  # the newest three stay
        assert store.prune(max_rows=3, now=now).deleted == 0
        assert store.prune(max_rows=0, now=now).remaining == 0
    finally:
        store.dispose()


def test_prune_deletes_in_batches(store_url, monkeypatch):  # noqa: F811
    import services.history.store as store_module

    monkeypatch.setattr(store_module, "PRUNE_BATCH", 2)
    store, now = _aged_store(store_url)
    try:
        assert store.prune(max_rows=1, now=now).deleted == 7 and store.count() == 1
    finally:
        store.dispose()


def test_prune_cli_uses_the_retention_settings_and_its_flags(tmp_path, capsys, monkeypatch):
    url = f"sqlite:///{tmp_path / 'h.db'}"
    store = HistoryStore(url)
    now = datetime.now(UTC)
    for age_days in (100, 50, 2, 1):
        store.add(_record(0, created_at=now - timedelta(days=age_days)))
    store.dispose()
    monkeypatch.setenv("GEM_RETENTION_DAYS", "30")
    assert app_main(["--database-url", url, "history", "prune", "--dry-run"]) == 0
    assert "would delete 2 analyses" in capsys.readouterr().out
    assert app_main(["--database-url", url, "history", "prune", "--max-rows", "1"]) == 0
    assert "deleted 3 analyses" in capsys.readouterr().out  # 2 by age (setting), 1 by count (flag)
    assert HistoryStore(url).count() == 1
    monkeypatch.delenv("GEM_RETENTION_DAYS")
    assert app_main(["--database-url", url, "history", "prune"]) == 2  # nothing asked for
    assert "nothing to do" in capsys.readouterr().err
    assert app_main(["--database-url", url, "history", "prune", "--days", "-1"]) == 1
    with pytest.raises(SystemExit):
        app_main(["history"])  # an action is required


def test_the_command_line_without_a_command_still_serves_with_every_flag():
    settings_args, command = parse_command_line(["--port", "8100", "--debug", "--database-url", "sqlite://"])
    assert command.command is None
    assert (settings_args.port, settings_args.debug, settings_args.database_url) == (8100, True, "sqlite://")
    assert vars(parse_args(["--port", "8100"])) == vars(settings_args) | {"debug": None, "database_url": None}
    settings_args, command = parse_command_line(["--instance", "x", "history", "prune", "--days", "7"])
    assert (command.command, command.action, command.days, settings_args.instance_dir) == ("history", "prune", 7.0, "x")


def test_retention_and_timeout_settings_are_checked():
    settings = Settings.from_env({"GEM_RETENTION_DAYS": "90", "GEM_RETENTION_MAX_ROWS": "1000",
                                  "GEM_DB_STATEMENT_TIMEOUT_S": "2.5"})
    assert (settings.retention_days, settings.retention_max_rows) == (90.0, 1000)
    assert settings.database_timeouts() == DatabaseTimeouts(connect_s=3.0, statement_s=2.5, pool_s=3.0)
    for env in ({"GEM_DB_CONNECT_TIMEOUT_S": "0"}, {"GEM_DB_POOL_TIMEOUT_S": "-1"},
                {"GEM_DB_STATEMENT_TIMEOUT_S": "nan"}, {"GEM_RETENTION_DAYS": "-3"}, {"GEM_RETENTION_MAX_ROWS": "-1"}):
        with pytest.raises(ValueError):
            Settings.from_env(env)


# -- CSV export: no formula, no forged row ---------------------------------------------------------
@pytest.mark.parametrize(("value", "expected"), [
    ("=1+1", "'=1+1"), ("+1", "'+1"), ("-1", "'-1"), ("@SUM(A1)", "'@SUM(A1)"), ("\t=1", "'\t=1"),
    ("\r=1", "' =1"), ("a\r=HYPERLINK(\"x\")", "a =HYPERLINK(\"x\")"), ("a\n=1", "a =1"), ("a\r\n-1", "a  -1"),
    ("plain name.npy", "plain name.npy"), (-1.5, -1.5), (3, 3), (True, True), (None, None),
])
def test_csv_cells_are_neutralised(value, expected):
    assert _csv_cell(value) == expected


def test_a_file_name_with_a_carriage_return_cannot_start_a_csv_row(store_url):  # noqa: F811
    url, prefix = store_url
    store = HistoryStore(url, table_prefix=prefix)
    try:
        store.add(_record(3, sample_name="fault.npy\r=cmd|' /C calc'!A0", impact_summary="\t=1+1"))
        store.add(_record(4, sample_name="ok.npy"))
        exported = "".join(store.iter_csv())
        physical_lines = exported.splitlines()  # what a naive importer splits on (\r, \n, ...)
        assert len(physical_lines) == 3
        assert not any(line.startswith(("=", "+", "-", "@", "\t")) for line in physical_lines)
        rows = list(csv.reader(io.StringIO(exported)))
        assert len(rows) == 3
        for row in rows[1:]:
            assert not any(cell.startswith(("=", "+", "-", "@", "\t", "\r")) for cell in row)
    finally:
        store.dispose()


@pytest.mark.postgres
def test_an_exhausted_pool_is_waited_for_pool_timeout_only(pg_schema):
    store = HistoryStore(_scoped(5432, pg_schema), timeouts=DatabaseTimeouts(2, 5, 1))
    held = [store.engine.connect() for _ in range(15)]  # pool_size 5 + max_overflow 10, all busy
    try:
        started = time.monotonic()
        with pytest.raises(HistoryUnavailable, match=r"no free connection within 1 s"):
            store.count()
        assert time.monotonic() - started < 2.5
    finally:
        for connection in held:
            connection.close()
    assert store.count() == 0
    store.dispose()


# -- in the browser --------------------------------------------------------------------------------
@pytest.mark.browser
@pytest.mark.postgres
def test_res001_stopped_database_analysis_shown_with_not_saved_warning_history_says_unavailable(
        dash_duo, artifacts_copy, tmp_path, proxy, pg_schema):
    timeout = 20
    app = create_app(settings=Settings(artifacts_dir=artifacts_copy, instance_dir=tmp_path,
                                       database_url=_scoped(proxy.port, pg_schema), **FAST))
    dash_duo.start_server(app)
    dash_duo.wait_for_element(f"#{ids.ANALYZE_BUTTON}", timeout=timeout)
    proxy.stop()
    button = dash_duo.find_element(f"#{ids.ANALYZE_BUTTON}")
    dash_duo.driver.execute_script("arguments[0].scrollIntoView({block: 'center', behavior: 'instant'});", button)
    button.click()
    dash_duo.wait_for_element(f"#{ids.CONFIDENCE_VALUE}", timeout=timeout)  # the result is shown
    assert len(dash_duo.find_elements(f"#{ids.WAVEFORM} .scatterlayer .trace")) == 3
    dash_duo.wait_for_contains_text(f"#{ids.ANALYZE_ALERT}", "Not saved to the history", timeout=timeout)
    assert "the history database is unreachable" in dash_duo.find_element(f"#{ids.ANALYZE_ALERT}").text
    assert "The history is unavailable" in dash_duo.find_element(f"#{ids.LATEST_TABLE}").text
    assert dash_duo.find_elements(f"#{ids.RESULT_PERMALINK}") == []  # no link to a row that does not exist

    link = dash_duo.find_element(f"#{ids.NAV_LINK_PREFIX}history")
    dash_duo.driver.execute_script("arguments[0].click();", link)
    dash_duo.wait_for_contains_text(f"#{ids.HISTORY_NOTICE}", "The history is unavailable", timeout=timeout)

    proxy.resume()  # back without a restart
    link = dash_duo.find_element(f"#{ids.NAV_LINK_PREFIX}analyze")
    dash_duo.driver.execute_script("arguments[0].click();", link)
    button = dash_duo.wait_for_element(f"#{ids.ANALYZE_BUTTON}", timeout=timeout)
    dash_duo.driver.execute_script("arguments[0].scrollIntoView({block: 'center', behavior: 'instant'});", button)
    button.click()
    dash_duo.wait_for_text_to_equal(f"#{ids.LATEST_TABLE} tbody tr:first-child td:first-child", "#1",
                                    timeout=timeout)
    assert dash_duo.find_elements(f"#{ids.ANALYZE_ALERT} .alert") == []
    assert dash_duo.find_element(f"#{ids.RESULT_PERMALINK}").get_attribute("href").endswith("/analysis/1")
    assert dash_duo.get_logs() == []
    app.server.extensions[EXTENSION_KEY].store.dispose()


def test_a_database_error_that_slips_through_is_a_503_at_once(artifacts_copy, tmp_path, monkeypatch):
    """A SQLAlchemy error outside the store's wrapping answers 503 JSON without asking the database again."""
    from sqlalchemy.exc import OperationalError

    import app.api as api_module

    def failing_view(_analysis):
        raise OperationalError("SELECT secret FROM /srv/db", {}, RuntimeError("/var/lib/postgresql: gone"))

    app = create_app(settings=Settings(artifacts_dir=artifacts_copy, instance_dir=tmp_path))
    client = app.server.test_client()
    sample = _sample(client)
    store = app.server.extensions[EXTENSION_KEY].store
    monkeypatch.setattr(api_module, "api_view", failing_view)
    monkeypatch.setattr(store, "check", lambda: pytest.fail("the database must not be asked again"))
    monkeypatch.setattr(store, "ping", lambda: pytest.fail("the database must not be asked again"))
    response = client.post("/predict", json={**GOOD, "sample_filename": sample})
    assert response.status_code == 503
    assert response.get_json() == {"error": "history unavailable: the history database failed; try again later"}
    _assert_public(response.get_data(as_text=True))
    store.dispose()
