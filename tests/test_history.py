"""The history store against SQLite and the real PostgreSQL at 127.0.0.1:5432 (no mocks)."""

from __future__ import annotations

import csv
import io
import threading
import uuid
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
from sqlalchemy import inspect, text

import services.history.store as store_module
from services.history import (
    LIST_COLUMNS,
    ColumnFilter,
    FilterGroup,
    HistoryQueryError,
    HistoryStore,
    filters_from_ag_grid,
)
from services.labels import LABELS, label_parts

POSTGRES_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


def _record(label_id: int = 0, **overrides) -> dict:
    label = LABELS[label_id]
    parts = label_parts(label)
    record = {
        "source": "api",
        "sample_name": None,
        "sender": "prosumer-a",
        "receiver": "consumer-home",
        "transfer_kw": 5.0,
        "label": label,
        "label_id": label_id,
        "confidence": 0.9,
        "category": parts.category,
        "equipment": parts.equipment,
        "kind": parts.kind,
        "unknown": False,
        "severity": "high",
        "transfer_status": "interrupted",
        "impact_summary": f"{label} hits the transfer",
        "impact": {"severity": "high", "highlight_keys": ["prosumer-a"]},
        "prediction": {"top5": [[label, 0.9]]},
        "model_fingerprint": "abc123",
        "waveform": np.random.default_rng(label_id).normal(size=(3, 726)).astype(np.float32),
    }
    record.update(overrides)
    return record


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def store_url(request, tmp_path):
    """(url, table_prefix) of an empty history on each backend; PostgreSQL tables are dropped after."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'history.db'}", ""
        return
    prefix = f"t{uuid.uuid4().hex[:10]}_"
    yield POSTGRES_URL, prefix
    HistoryStore(POSTGRES_URL, table_prefix=prefix).drop()


@pytest.fixture
def store(store_url):
    url, prefix = store_url
    history = HistoryStore(url, table_prefix=prefix)
    yield history
    history.dispose()


def test_add_then_get_returns_the_record_and_the_exact_waveform(store):
    record = _record(39, sample_name="sample_01.npy", true_label=LABELS[39], source="sample")
    analysis_id = store.add(record)
    item = store.get(analysis_id)
    assert item["id"] == analysis_id
    assert item["label"] == LABELS[39] and item["category"] == "transient" and item["equipment"] == "none"
    assert item["sample_name"] == "sample_01.npy" and item["true_label"] == LABELS[39]
    assert item["impact"] == {"severity": "high", "highlight_keys": ["prosumer-a"]}
    assert item["unknown"] is False
    np.testing.assert_array_equal(np.asarray(item["waveform"], dtype=np.float32), record["waveform"])
    np.testing.assert_array_equal(store.get_waveform(analysis_id), record["waveform"])
    assert store.get(analysis_id + 1000) is None


def test_created_at_is_utc_and_iso(store):
    before = datetime.now(UTC)
    analysis_id = store.add(_record())
    created = datetime.fromisoformat(store.get(analysis_id)["created_at"].replace("Z", "+00:00"))
    assert created.tzinfo is not None
    assert before - timedelta(seconds=5) <= created <= datetime.now(UTC) + timedelta(seconds=5)


def test_query_is_newest_first_with_total_and_paging(store):
    start = datetime(2026, 1, 1, tzinfo=UTC)
    ids = [store.add(_record(i, created_at=start + timedelta(minutes=i))) for i in range(7)]
    rows, total = store.query(limit=3, offset=0)
    assert total == 7
    assert [row["id"] for row in rows] == ids[::-1][:3]
    rows, total = store.query(limit=3, offset=6)
    assert total == 7 and [row["id"] for row in rows] == [ids[0]]
    assert set(rows[0]) == set(LIST_COLUMNS)


def test_query_filters_by_label_category_peer_and_time(store):
    start = datetime(2026, 3, 1, 12, tzinfo=UTC)
    store.add(_record(0, created_at=start, sender="prosumer-b", receiver="ev-hub"))
    store.add(_record(40, created_at=start + timedelta(hours=1)))
    store.add(_record(40, created_at=start + timedelta(hours=2), sender="micro-industry", receiver="ev-hub"))
    assert store.query(label=LABELS[40])[1] == 2
    assert store.query(category="internal_fault")[1] == 1
    rows, total = store.query(peer="ev-hub")
    assert total == 2 and {row["receiver"] for row in rows} == {"ev-hub"}
    assert store.query(peer="prosumer-b")[1] == 1
    assert store.query(since=start + timedelta(hours=1))[1] == 2  # inclusive
    assert store.query(until=start + timedelta(hours=1))[1] == 1  # exclusive
    assert store.query(since="2026-03-01T12:30:00Z", until="2026-03-01T14:00:01+00:00")[1] == 2
    assert store.query(since="2026-03-01T13:00:00+01:00")[1] == 3  # offsets are honoured (12:00 UTC)
    assert store.query(label=LABELS[40], peer="ev-hub")[1] == 1


def test_query_sorts_by_any_list_column_both_ways(store):
    for confidence, sender in ((0.5, "prosumer-b"), (0.9, "prosumer-a"), (0.7, "micro-industry")):
        store.add(_record(confidence=confidence, sender=sender))
    ascending = [row["confidence"] for row in store.query(sort="confidence")[0]]
    assert ascending == [0.5, 0.7, 0.9]
    descending = [row["confidence"] for row in store.query(sort=[("confidence", "desc")])[0]]
    assert descending == [0.9, 0.7, 0.5]
    by_sender = [row["sender"] for row in store.query(sort=[{"colId": "sender", "sort": "asc"}])[0]]
    assert by_sender == ["micro-industry", "prosumer-a", "prosumer-b"]
    for column in LIST_COLUMNS:
        store.query(sort=f"-{column}", limit=2)  # every listed column is sortable


def test_ag_grid_filter_model_text_number_and_combined(store):
    store.add(_record(0, confidence=0.3, sample_name="a_100%.npy"))
    store.add(_record(26, confidence=0.8))
    store.add(_record(42, confidence=0.95, unknown=True, unknown_reason="out of distribution"))
    number = filters_from_ag_grid({"confidence": {"filterType": "number", "type": "greaterThan", "filter": 0.5}})
    assert store.query(filters=number)[1] == 2
    in_range = filters_from_ag_grid(
        {"confidence": {"filterType": "number", "type": "inRange", "filter": 0.2, "filterTo": 0.85}}
    )
    assert store.query(filters=in_range)[1] == 2
    # the Event column filters on the text it shows ("Power transformer - AG fault"), not the label string
    text_filter = filters_from_ag_grid({"label": {"filterType": "text", "type": "contains", "filter": "POWER transformer"}})
    rows, total = store.query(filters=text_filter)
    assert total == 1 and rows[0]["label_id"] == 26
    internal = filters_from_ag_grid({"label": {"filterType": "text", "type": "contains", "filter": "power_transformer"}})
    assert store.query(filters=internal)[1] == 0
    literal_percent = [ColumnFilter("sample_name", "contains", "100%")]
    assert store.query(filters=literal_percent)[1] == 1
    assert store.query(filters=[ColumnFilter("sample_name", "contains", "10_")])[1] == 0  # _ is literal
    combined = filters_from_ag_grid(
        {"kind": {"filterType": "text", "operator": "OR", "conditions": [
            {"filterType": "text", "type": "equals", "filter": "AG"},
            {"filterType": "text", "type": "startsWith", "filter": "magnet"},
        ]}}
    )
    assert isinstance(combined[0], FilterGroup) and store.query(filters=combined)[1] == 3
    assert store.query(filters=[ColumnFilter("unknown", "equals", True)])[1] == 1
    assert store.query(filters=[ColumnFilter("sample_name", "blank")])[1] == 2


def test_bad_queries_raise_history_query_error(store):
    with pytest.raises(HistoryQueryError, match="cannot sort by"):
        store.query(sort="waveform")
    with pytest.raises(HistoryQueryError, match="cannot filter on"):
        store.query(filters=[ColumnFilter("waveform", "equals", "x")])
    with pytest.raises(HistoryQueryError, match="needs a number"):
        store.query(filters=[ColumnFilter("confidence", "greaterThan", "high")])
    with pytest.raises(HistoryQueryError, match="ISO 8601"):
        store.query(since="yesterday")
    with pytest.raises(HistoryQueryError, match="limit"):
        store.query(limit=0)
    with pytest.raises(HistoryQueryError, match="misses"):
        store.add({"source": "api"})
    with pytest.raises(HistoryQueryError, match="source must be"):
        store.add(_record(source="telepathy"))
    assert store.count() == 0


def test_history_survives_a_restart(store_url):
    url, prefix = store_url
    first = HistoryStore(url, table_prefix=prefix)
    analysis_id = first.add(_record(12))
    first.dispose()
    second = HistoryStore(url, table_prefix=prefix)
    assert second.get(analysis_id)["label"] == LABELS[12]
    assert second.count() == 1
    second.dispose()


def test_csv_export_streams_every_matching_row_newest_first(store, monkeypatch):
    monkeypatch.setattr(store_module, "CSV_BATCH", 3)
    ids = [store.add(_record(i % 45)) for i in range(8)]
    store.add(_record(41, impact_summary="=HYPERLINK(\"x\")", sender="prosumer-b"))
    chunks = list(store.iter_csv(peer="prosumer-a"))
    # the header comes with the first batch (read before any byte goes out), then the 2 others:
    # streamed, not built in one piece
    assert len(chunks) == 3
    rows = list(csv.reader(io.StringIO("".join(chunks))))
    assert rows[0] == list(LIST_COLUMNS)
    assert [int(row[0]) for row in rows[1:]] == ids[::-1]
    formula = list(csv.reader(io.StringIO("".join(store.iter_csv(peer="prosumer-b")))))[1]
    assert formula[LIST_COLUMNS.index("impact_summary")].startswith("'=")


def test_concurrent_writers_each_get_one_row(store):
    errors: list[Exception] = []

    def write(n: int) -> None:
        try:
            for _ in range(n):
                store.add(_record())
        except Exception as exc:  # noqa: BLE001 - collected and asserted below
            errors.append(exc)

    threads = [threading.Thread(target=write, args=(15,)) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert store.count() == 90
    assert len({row["id"] for row in store.query(limit=1000)[0]}) == 90


def test_schema_has_indexes_for_the_history_queries(store):
    indexed = {
        column
        for index in inspect(store.engine).get_indexes(store.table.name)
        for column in index["column_names"]
    }
    assert {"created_at", "label", "category", "sender", "receiver"} <= indexed


def test_sqlite_history_uses_wal_and_a_busy_timeout(tmp_path):
    history = HistoryStore(f"sqlite:///{tmp_path / 'nested' / 'h.db'}")
    assert (tmp_path / "nested" / "h.db").exists()
    with history.engine.connect() as connection:
        assert connection.execute(text("PRAGMA journal_mode")).scalar() == "wal"
        # writers wait for each other, but inside the operation's deadline (GEM_DB_STATEMENT_TIMEOUT_S)
        busy_ms = connection.execute(text("PRAGMA busy_timeout")).scalar()
        assert 1000 <= busy_ms <= history.timeouts.statement_s * 1000
    history.dispose()


def _rows_in_main_file(path) -> int:
    """Rows the SQLite database file itself holds, ignoring the WAL (immutable read)."""
    import sqlite3

    connection = sqlite3.connect(f"file:{path}?immutable=1", uri=True)
    try:
        return connection.execute("SELECT count(*) FROM analyses").fetchone()[0]
    except sqlite3.OperationalError:  # not even the table has been copied back yet
        return 0
    finally:
        connection.close()


def test_sqlite_wal_is_copied_back_in_the_background_not_by_requests(tmp_path):
    """Writes land in the WAL; the checkpointer thread, not the writing request, copies them back."""
    import time

    path = tmp_path / "h.db"
    history = HistoryStore(f"sqlite:///{path}", checkpoint_interval_s=3600)  # the thread waits an hour
    with history.engine.connect() as connection:
        assert connection.execute(text("PRAGMA wal_autocheckpoint")).scalar() == store_module.WAL_AUTOCHECKPOINT_PAGES
    for label_id in range(40):  # ~40 x 9 kB: far below the 16,000-page safety net
        history.add(_record(label_id % len(LABELS)))
    assert history.count() == 40
    assert _rows_in_main_file(path) == 0  # nothing copied back inside the 40 commits
    history.dispose()

    fast = HistoryStore(f"sqlite:///{tmp_path / 'f.db'}", checkpoint_interval_s=0.05)
    for label_id in range(40):
        fast.add(_record(label_id % len(LABELS)))
    deadline = time.monotonic() + 10
    while _rows_in_main_file(tmp_path / "f.db") < 40 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert _rows_in_main_file(tmp_path / "f.db") == 40
    thread = fast._checkpointer._thread
    assert thread is not None and thread.is_alive() and thread.name == "sqlite-wal-checkpoint"
    fast.dispose()
    assert not thread.is_alive(), "dispose stops it"


def test_a_table_from_an_older_release_gains_the_new_columns_and_keeps_its_rows(store_url):
    """`recording` came after the first release: opening an old table adds it (NULL in old rows)."""
    url, prefix = store_url
    parts = label_parts(LABELS[0])
    old = HistoryStore(url, table_prefix=prefix)
    with old.engine.begin() as connection:  # make it the older release's table
        connection.execute(text(f"ALTER TABLE {old.table.name} DROP COLUMN recording"))
        connection.execute(
            text(f"INSERT INTO {old.table.name} (created_at, source, sender, receiver, transfer_kw, label, label_id, "
                 "confidence, category, equipment, kind, unknown) VALUES (:at, 'api', 'prosumer-a', "
                 "'consumer-home', 5.0, :label, 0, 0.9, :category, :equipment, :kind, false)"),
            {"at": datetime(2026, 1, 2, tzinfo=UTC), "label": LABELS[0], "category": parts.category,
             "equipment": parts.equipment, "kind": parts.kind},
        )
    old.dispose()
    assert "recording" not in {c["name"] for c in inspect(old.engine).get_columns(old.table.name)}

    upgraded = HistoryStore(url, table_prefix=prefix)
    assert "recording" in {c["name"] for c in inspect(upgraded.engine).get_columns(upgraded.table.name)}
    rows, total = upgraded.query(limit=10)
    assert total == 1 and upgraded.get(rows[0]["id"])["recording"] is None
    new_id = upgraded.add(_record(3, recording={"source": "fault.cfg", "channels": ["IdA", "IdB", "IdC"]}))
    assert upgraded.get(new_id)["recording"] == {"source": "fault.cfg", "channels": ["IdA", "IdB", "IdC"]}
    upgraded.dispose()


def test_an_older_table_gains_the_idempotency_columns_and_their_unique_index(store_url):
    """The Idempotency-Key columns came later: opening an old table adds them and the unique index."""
    url, prefix = store_url
    old = HistoryStore(url, table_prefix=prefix)
    old_id = old.add(_record(5))
    with old.engine.begin() as connection:  # make it the older release's table
        connection.execute(text(f"DROP INDEX ux_{old.table.name}_idempotency_key"))
        for column in ("idempotency_key", "request_digest"):
            connection.execute(text(f"ALTER TABLE {old.table.name} DROP COLUMN {column}"))
    old.dispose()

    upgraded = HistoryStore(url, table_prefix=prefix)
    columns = {c["name"] for c in inspect(upgraded.engine).get_columns(upgraded.table.name)}
    assert {"idempotency_key", "request_digest"} <= columns
    unique = [index for index in inspect(upgraded.engine).get_indexes(upgraded.table.name)
              if index["column_names"] == ["idempotency_key"]]
    assert unique and unique[0]["unique"]
    assert "idempotency_key" not in upgraded.get(old_id)  # bookkeeping, not part of the analysis
    first = upgraded.add(_record(6, idempotency_key="k-1", request_digest="d" * 64))
    assert upgraded.find_by_idempotency_key("k-1")["id"] == first
    with pytest.raises(store_module.IdempotencyKeyTaken):
        upgraded.add(_record(6, idempotency_key="k-1", request_digest="e" * 64))
    upgraded.add(_record(7))  # rows without a key never collide
    upgraded.add(_record(7))
    assert upgraded.count() == 4
    upgraded.dispose()
