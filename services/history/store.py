"""HistoryStore: every analysis kept in SQLite (default) or PostgreSQL through SQLAlchemy Core.

One store per process and database URL. It holds an engine (a connection pool) and nothing that
changes at runtime, so several gunicorn workers writing to the same database behave as one.
"""

from __future__ import annotations

import csv
import errno
import fcntl
import io
import logging
import math
import os
import threading
import time
import zlib
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import orjson
from sqlalchemy import (
    Boolean,
    DateTime,
    Float,
    Integer,
    MetaData,
    SmallInteger,
    and_,
    case,
    create_engine,
    delete,
    event,
    func,
    insert,
    inspect,
    or_,
    select,
    text,
)
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.exc import (
    DisconnectionError,
    IntegrityError,
    OperationalError,
    ProgrammingError,
    SQLAlchemyError,
)
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.pool import StaticPool

from services.history.deadline import Watchdog
from services.history.filters import (
    LIST_COLUMNS,
    RANGE_OPS,
    RANKED_COLUMNS,
    SORTABLE_COLUMNS,
    TEXT_OPS,
    ColumnFilter,
    FilterGroup,
    HistoryQueryError,
    as_bool,
    as_number,
    escape_like,
    parse_sort,
    parse_time,
)
from services.history.schema import IDEMPOTENCY_KEY_MAX, SOURCES, build_table, utc_now
from services.waveform import N_PHASES, N_SAMPLES

log = logging.getLogger(__name__)

REQUIRED_FIELDS: tuple[str, ...] = (
    "source", "sender", "receiver", "transfer_kw", "label", "label_id", "confidence",
    "category", "equipment", "kind",
)
MAX_PAGE_SIZE = 10_000
CSV_BATCH = 2_000
#: SQLite: seconds from a write to the background WAL checkpoint that copies it back (see
#: _WalCheckpointer); small copies often stall writers less than big ones seldom
CHECKPOINT_INTERVAL_S = 0.05
#: SQLite: WAL pages at which a committing request copies the WAL back itself; a safety net only,
#: the background checkpointer keeps the WAL far below it (16,000 pages = 64 MB)
WAL_AUTOCHECKPOINT_PAGES = 16_000
#: rows deleted per statement when pruning, so a prune never holds the write lock for long
PRUNE_BATCH = 5_000


class HistoryUnavailable(RuntimeError):
    """The history database cannot be used now (down, frozen, locked, full). The message is for
    people and names no server path or library internals; the details go to the server log."""


class IdempotencyKeyTaken(RuntimeError):
    """Another analysis already holds this Idempotency-Key (a retry, or two requests racing)."""


@dataclass(frozen=True)
class DatabaseTimeouts:
    """How long any request may wait on the history database, in seconds.

    `statement_s` bounds one whole store operation (pool checkout, connection check, queries), on
    the client, so a frozen server cannot hold a request (see services.history.deadline);
    `connect_s` bounds opening a connection (PostgreSQL rounds it up to whole seconds, at least 2);
    `pool_s` bounds the wait for a free pooled connection.
    """

    connect_s: float = 3.0
    statement_s: float = 5.0
    pool_s: float = 3.0

    def __post_init__(self) -> None:
        for name in ("connect_s", "statement_s", "pool_s"):
            value = getattr(self, name)
            if not (isinstance(value, int | float) and math.isfinite(value) and value > 0):
                raise ValueError(f"database timeout {name} must be a positive number of seconds, got {value!r}")


@dataclass(frozen=True)
class PruneResult:
    """What a retention run removed (or, with dry_run, would remove) and what stays."""

    deleted: int
    remaining: int
    by_age: int
    by_count: int
    dry_run: bool

def compress_waveform(waveform: np.ndarray) -> bytes:
    """zlib of the float32 bytes: exact, and about 8 kB or less per analysis."""
    array = np.ascontiguousarray(waveform, dtype=np.float32)
    if array.shape != (N_PHASES, N_SAMPLES):
        raise HistoryQueryError(f"waveform must have shape ({N_PHASES}, {N_SAMPLES}), got {array.shape}")
    return _compress(array.tobytes())


@lru_cache(maxsize=256)
def _compress(raw: bytes) -> bytes:
    """Sample waveforms are analysed again and again: compress each distinct one once per process."""
    return zlib.compress(raw, 1)


def decompress_waveform(blob: bytes) -> np.ndarray:
    return np.frombuffer(zlib.decompress(blob), dtype=np.float32).reshape(N_PHASES, N_SAMPLES).copy()


class HistoryStore:
    """The analyses history: add, get, query with filters/sort/paging, CSV export, ping, prune.

    Every operation runs under the deadline of `timeouts` and raises `HistoryUnavailable` (a
    clear reason, nothing internal) when the database is down, frozen or locked past it; bad
    queries raise `HistoryQueryError`. Nothing is cached about the database's health: the next
    operation tries again, so the history recovers on its own when the database comes back.
    """

    def __init__(
        self,
        url: str | None = None,
        *,
        table_prefix: str = "",
        echo: bool = False,
        checkpoint_interval_s: float = CHECKPOINT_INTERVAL_S,
        timeouts: DatabaseTimeouts | None = None,
    ) -> None:
        self.url = url or "sqlite:///instance/history.db"
        self.timeouts = timeouts or DatabaseTimeouts()
        parsed = make_url(self.url)
        self.dialect = parsed.get_backend_name()
        kwargs: dict[str, Any] = {
            "echo": echo,
            "json_serializer": lambda value: orjson.dumps(value, option=orjson.OPT_SERIALIZE_NUMPY).decode(),
            "json_deserializer": orjson.loads,
        }
        in_memory = False
        if self.dialect == "sqlite":
            database = parsed.database or ""
            in_memory = database in {"", ":memory:"} or database.startswith("file::memory:")
            kwargs["connect_args"] = {"timeout": self._server_timeout_ms / 1000, "check_same_thread": False}
            if in_memory:
                kwargs["poolclass"] = StaticPool
            else:
                Path(database).expanduser().parent.mkdir(parents=True, exist_ok=True)
                kwargs["pool_timeout"] = self.timeouts.pool_s
        else:
            # the connection check is ours (see _on_checkout), under the operation's deadline
            kwargs["pool_pre_ping"] = False
            kwargs["pool_size"] = 5
            kwargs["max_overflow"] = 10
            kwargs["pool_timeout"] = self.timeouts.pool_s
            if self.dialect == "postgresql":
                # connect_args replace the URL's own parameters: keep its `options` (search_path...)
                # and a connect_timeout it sets
                options = " ".join(part for part in (
                    str(parsed.query.get("options") or ""),
                    # a live but slow server stops the statement itself (the watchdog covers a frozen one)
                    f"-c statement_timeout={self._server_timeout_ms}") if part)
                kwargs["connect_args"] = {
                    "connect_timeout": parsed.query.get("connect_timeout") or max(2, math.ceil(self.timeouts.connect_s)),
                    "options": options,
                }
        self.engine: Engine = create_engine(self.url, **kwargs)
        self._watchdog = Watchdog()
        event.listen(self.engine, "connect", _mark_fresh)
        event.listen(self.engine, "checkout", self._on_checkout)
        event.listen(self.engine, "checkin", lambda _connection, record: self._watchdog.detach(record))
        #: SQLite only: writers queue on a lock file instead of SQLite's sleep-and-retry busy handler
        self._writer_queue: _WriterQueue | None = None
        self._checkpointer: _WalCheckpointer | None = None
        if self.dialect == "sqlite":
            event.listen(self.engine, "connect", _sqlite_pragmas(self._server_timeout_ms))
            if not in_memory:
                self._writer_queue = _WriterQueue(Path(database).expanduser().with_suffix(".writelock"))
                self._checkpointer = _WalCheckpointer(self.engine, checkpoint_interval_s)
        self.metadata = MetaData()
        self.table = build_table(self.metadata, table_prefix)
        #: who a new row is by when the record does not say (the web app reads its request's user)
        self.author: Callable[[], str | None] | None = None
        self._schema_lock = threading.Lock()
        self._schema_ready = False  # set once per process, when the schema is known to exist
        try:
            self._create_schema(attempts=6)
        except HistoryUnavailable as exc:
            # the server may be down while the app starts: start anyway, /api/health reports it,
            # and the schema is created on the first use that reaches the database
            log.error("history database unusable at start (%s); will retry on first use", exc)

    # -- deadlines ------------------------------------------------------------------------------
    def _on_checkout(self, dbapi_connection, record, _proxy) -> None:
        """A pooled connection goes to this thread's operation: put it under the operation's
        deadline, then check that a reused PostgreSQL connection still works (what pool_pre_ping
        did, but breakable by the watchdog); a dead one is replaced by a fresh connection."""
        operation = self._watchdog.attach(record, dbapi_connection)
        if operation is not None and operation.expired:  # e.g. the pool wait used it up: start nothing
            raise HistoryUnavailable(self._timeout_message())
        if self.dialect == "sqlite" or record.info.pop("fresh", False):
            return
        try:
            self.engine.dialect.do_ping(dbapi_connection)
        except Exception as exc:
            if operation is not None and operation.expired:
                raise HistoryUnavailable(self._timeout_message()) from None
            raise DisconnectionError(f"stale pooled connection: {type(exc).__name__}") from None

    @property
    def _server_timeout_ms(self) -> int:
        """The database's own limit (PostgreSQL statement_timeout, SQLite busy_timeout): a little
        inside the operation's deadline, so a live database reports its own, clearer reason
        ("busy", "canceling statement") before the watchdog breaks the connection."""
        return max(1, int(self.timeouts.statement_s * 900))

    @contextmanager
    def _operation(self, what: str) -> Iterator[None]:
        """One store operation under the statement deadline; database failures become
        HistoryUnavailable (IntegrityError passes: the caller decides what a duplicate means)."""
        with self._watchdog.operation(self.timeouts.statement_s) as operation:
            try:
                yield
            except (HistoryUnavailable, HistoryQueryError, IntegrityError):
                raise
            except SQLAlchemyError as exc:
                expired = operation is not None and operation.expired
                log.warning("history %s failed%s: %s", what, " (deadline passed)" if expired else "", _reason(exc))
                raise HistoryUnavailable(self._timeout_message() if expired else self._failure_message(exc)) from None

    def _timeout_message(self) -> str:
        return f"the history database did not answer within {self.timeouts.statement_s:g} s"

    def _failure_message(self, exc: SQLAlchemyError) -> str:
        if isinstance(exc, PoolTimeout):
            return f"the history database is busy (no free connection within {self.timeouts.pool_s:g} s); try again"
        original = getattr(exc, "orig", None)
        text_ = str(original or exc).lower()
        if "locked" in text_ or "busy" in text_ or "statement timeout" in text_:
            return "the history database is busy; try again"
        if "timeout" in text_ or "timed out" in text_:
            return f"the history database did not answer within {self.timeouts.connect_s:g} s"
        if isinstance(exc, OperationalError | DisconnectionError) or getattr(exc, "connection_invalidated", False):
            return "the history database is unreachable"
        return "the history database failed; see the server log"

    # -- schema ---------------------------------------------------------------------------------
    def _create_schema(self, attempts: int = 1) -> None:
        """Create the table and indexes if missing; tolerate another worker doing it at the same time.

        Retries (for such races) stop after `attempts` or one statement deadline, whichever comes
        first, so a dead database delays the start by seconds, not minutes."""
        with self._schema_lock:
            if self._schema_ready:
                return
            give_up = time.monotonic() + self.timeouts.statement_s
            for attempt in range(attempts):
                try:
                    with self._operation("schema check"):
                        try:
                            self.metadata.create_all(self.engine, checkfirst=True)
                            self._add_missing_columns()
                        except IntegrityError as exc:  # raced another worker (PostgreSQL's catalog)
                            raise ProgrammingError("create_all", None, exc.orig) from None
                    self._schema_ready = True
                    return
                except HistoryUnavailable:
                    if attempt == attempts - 1 or time.monotonic() > give_up:
                        raise
                    log.info("schema creation failed or raced; retrying")
                    time.sleep(0.05 * (attempt + 1))

    def _add_missing_columns(self) -> None:
        """Add the columns (and their indexes) a newer release defines to a table an older one created.

        Every column added after the first release is nullable, so `ALTER TABLE ... ADD COLUMN`
        is the whole migration and old rows read as NULL there. Another worker adding the same
        column at the same moment makes this fail; the caller's retry then finds it present.
        """
        inspector = inspect(self.engine)
        present = {column["name"] for column in inspector.get_columns(self.table.name)}
        missing = [column for column in self.table.columns if column.name not in present]
        indexes = {index["name"] for index in inspector.get_indexes(self.table.name)}
        missing_indexes = [index for index in self.table.indexes if index.name not in indexes]
        if not missing and not missing_indexes:
            return
        quote = self.engine.dialect.identifier_preparer.quote
        with self.engine.begin() as connection:
            for column in missing:
                column_type = column.type.compile(dialect=self.engine.dialect)
                connection.exec_driver_sql(
                    f"ALTER TABLE {quote(self.table.name)} ADD COLUMN {quote(column.name)} {column_type}"
                )
                log.info("history table %s: added column %s", self.table.name, column.name)
            for index in missing_indexes:
                index.create(connection, checkfirst=True)
                log.info("history table %s: added index %s", self.table.name, index.name)

    def _ready(self) -> None:
        if not self._schema_ready:
            self._create_schema()

    def drop(self) -> None:
        """Drop the table (tests and tooling only)."""
        self.metadata.drop_all(self.engine, checkfirst=True)

    def dispose(self) -> None:
        """Stop this process's checkpointer and close pooled connections (after fork or at shutdown)."""
        if self._checkpointer is not None:
            self._checkpointer.stop()
        self.engine.dispose()

    @property
    def backend(self) -> str:
        return self.dialect

    def ping(self) -> bool:
        """True when the database answers a trivial query within the deadline."""
        return self.check() is None

    def check(self) -> str | None:
        """None when the database answers a trivial query (and the table is there), else the
        reason for people (no paths, no internals)."""
        try:
            with self._operation("ping"), self.engine.connect() as connection:
                connection.execute(text("SELECT 1"))
            self._ready()
        except HistoryUnavailable as exc:
            return str(exc)
        return None

    # -- writing --------------------------------------------------------------------------------
    def add(self, record: Mapping[str, Any]) -> int:
        """Insert one analysis and return its id. `waveform` may be a (3, 726) array or the bytes.

        A record with an `idempotency_key` that another row already holds raises
        IdempotencyKeyTaken (look that row up with `find_by_idempotency_key`)."""
        row = self._row(record)
        with self._operation("write"):
            self._ready()
            deadline = time.monotonic() + self.timeouts.statement_s
            try:
                with self._writer_slot(deadline), self.engine.begin() as connection:
                    result = connection.execute(insert(self.table), row)
                    analysis_id = int(result.inserted_primary_key[0])
            except IntegrityError as exc:
                if row.get("idempotency_key") is not None and self._key_holder(row["idempotency_key"]) is not None:
                    raise IdempotencyKeyTaken(row["idempotency_key"]) from None
                log.warning("history write refused: %s", _reason(exc))
                raise HistoryUnavailable("the history database refused the row; see the server log") from None
        if self._checkpointer is not None:
            self._checkpointer.wrote()
        return analysis_id

    def _writer_slot(self, deadline: float):
        return self._writer_queue.slot(deadline) if self._writer_queue is not None else nullcontext()

    def find_by_idempotency_key(self, key: str) -> dict[str, Any] | None:
        """{"id", "request_digest", "created_at"} of the analysis written with this key, or None."""
        with self._operation("idempotency lookup"):
            self._ready()
            return self._key_holder(key)

    def _key_holder(self, key: str) -> dict[str, Any] | None:
        c = self.table.c
        with self.engine.connect() as connection:
            row = connection.execute(
                select(c.id, c.request_digest, c.created_at).where(c.idempotency_key == str(key))
            ).mappings().first()
        return _public(dict(row)) if row is not None else None

    def _row(self, record: Mapping[str, Any]) -> dict[str, Any]:
        missing = [name for name in REQUIRED_FIELDS if record.get(name) is None]
        if missing:
            raise HistoryQueryError(f"history record misses {', '.join(missing)}")
        if record["source"] not in SOURCES:
            raise HistoryQueryError(f"source must be one of {', '.join(SOURCES)}, got {record['source']!r}")
        key = record.get("idempotency_key")
        if key is not None and (not isinstance(key, str) or not 0 < len(key) <= IDEMPOTENCY_KEY_MAX):
            raise HistoryQueryError(f"idempotency_key must be a string of 1 to {IDEMPOTENCY_KEY_MAX} characters")
        names = [column.name for column in self.table.columns]
        row = {name: record[name] for name in names if name in record and name != "id"}
        if row.get("user") is None and self.author is not None:
            row["user"] = self.author()
        row.setdefault("created_at", utc_now())
        row["created_at"] = parse_time(row["created_at"], "created_at")
        row["unknown"] = bool(record.get("unknown", False))
        waveform = record.get("waveform")
        if waveform is not None and not isinstance(waveform, bytes | bytearray | memoryview):
            row["waveform"] = compress_waveform(np.asarray(waveform))
        return row

    # -- retention ------------------------------------------------------------------------------
    def prune(self, *, days: float | None = None, max_rows: int | None = None, dry_run: bool = False,
              now: datetime | None = None) -> PruneResult:
        """Delete analyses older than `days` and then the oldest beyond the newest `max_rows`
        (None: no limit of that kind). Deletes run in batches of PRUNE_BATCH rows, each its own
        transaction, so writers keep going meanwhile. `dry_run` counts and deletes nothing."""
        if days is not None and not (math.isfinite(days) and days >= 0):
            raise HistoryQueryError("days must be 0 or more")
        if max_rows is not None and int(max_rows) < 0:
            raise HistoryQueryError("max_rows must be 0 or more")
        c = self.table.c
        cutoff = (now or utc_now()) - timedelta(days=days) if days is not None else None
        with self._operation("prune"):
            self._ready()
            with self.engine.connect() as connection:
                total = int(connection.execute(select(func.count()).select_from(self.table)).scalar_one())
                old = 0 if cutoff is None else int(connection.execute(
                    select(func.count()).select_from(self.table).where(c.created_at < cutoff)).scalar_one())
                # the id of the oldest row to keep by count (ids grow with time)
                boundary = None
                if max_rows is not None and total - old > int(max_rows):
                    kept = select(c.id).order_by(c.id.desc()).offset(int(max_rows)).limit(1)
                    if cutoff is not None:
                        kept = kept.where(c.created_at >= cutoff)
                    boundary = connection.execute(kept).scalar()
        by_count = max(0, total - old - int(max_rows)) if max_rows is not None else 0
        if dry_run or old + by_count == 0:
            return PruneResult(old + by_count, total - old - by_count, old, by_count, dry_run)
        conditions = ([c.created_at < cutoff] if cutoff is not None else []) + \
                     ([c.id <= boundary] if boundary is not None else [])
        deleted = 0
        for condition in conditions:
            while True:
                batch = select(c.id).where(condition).order_by(c.id).limit(PRUNE_BATCH).scalar_subquery()
                deadline = time.monotonic() + self.timeouts.statement_s
                with self._operation("prune"), self._writer_slot(deadline), self.engine.begin() as connection:
                    count = connection.execute(delete(self.table).where(c.id.in_(batch))).rowcount
                deleted += count
                if count < PRUNE_BATCH:
                    break
        return PruneResult(deleted, self.count(), old, by_count, False)

    # -- reading --------------------------------------------------------------------------------
    def get(self, analysis_id: int, *, include_waveform: bool = True) -> dict[str, Any] | None:
        """One analysis with its impact report, model answer and (by default) the waveform as 3 lists."""
        with self._operation("read"):
            self._ready()
            with self.engine.connect() as connection:
                row = connection.execute(
                    select(self.table).where(self.table.c.id == int(analysis_id))).mappings().first()
        if row is None:
            return None
        item = dict(row)
        blob = item.pop("waveform", None)
        for private in ("idempotency_key", "request_digest"):  # the client's retry bookkeeping, not the analysis
            item.pop(private, None)
        if include_waveform:
            item["waveform"] = decompress_waveform(blob).tolist() if blob is not None else None
        return _public(item)

    def get_waveform(self, analysis_id: int) -> np.ndarray | None:
        """The stored waveform as a float32 (3, 726) array, or None."""
        with self._operation("read"):
            self._ready()
            with self.engine.connect() as connection:
                blob = connection.execute(
                    select(self.table.c.waveform).where(self.table.c.id == int(analysis_id))
                ).scalar()
        return decompress_waveform(blob) if blob is not None else None

    def count(self) -> int:
        with self._operation("count"):
            self._ready()
            with self.engine.connect() as connection:
                return int(connection.execute(select(func.count()).select_from(self.table)).scalar_one())

    def query(
        self,
        limit: int = 50,
        offset: int = 0,
        label: str | None = None,
        category: str | None = None,
        peer: str | None = None,
        since: datetime | str | None = None,
        until: datetime | str | None = None,
        sort: Any = None,
        filters: Sequence[ColumnFilter | FilterGroup] | None = None,
        source: str | None = None,
    ) -> tuple[list[dict[str, Any]], int]:
        """A page of analyses (newest first unless `sort` says otherwise) and the total that match.

        `peer` matches sender or receiver; `since` is inclusive, `until` exclusive; `filters` are
        per-column conditions (see `filters_from_ag_grid`). Rows hold LIST_COLUMNS only.
        """
        limit, offset = int(limit), int(offset)
        if not 1 <= limit <= MAX_PAGE_SIZE:
            raise HistoryQueryError(f"limit must be between 1 and {MAX_PAGE_SIZE}")
        if offset < 0:
            raise HistoryQueryError("offset must be 0 or more")
        where = self._where(label, category, peer, since, until, filters, source)
        order = []
        for name, descending in parse_sort(sort):
            key = self.table.c[name]
            if name in RANKED_COLUMNS:
                key = case({value: rank for rank, value in enumerate(RANKED_COLUMNS[name])}, value=key, else_=-1)
            order.append(key.desc() if descending else key.asc())
        order.append(self.table.c.id.desc())
        columns = [self.table.c[name] for name in LIST_COLUMNS]
        page = select(*columns).where(*where).order_by(*order).limit(limit).offset(offset)
        total = select(func.count()).select_from(self.table).where(*where)
        with self._operation("query"):
            self._ready()
            with self.engine.connect() as connection:
                rows = [_public(dict(row)) for row in connection.execute(page).mappings()]
                count = int(connection.execute(total).scalar_one())
        return rows, count

    def iter_csv(
        self,
        label: str | None = None,
        category: str | None = None,
        peer: str | None = None,
        since: datetime | str | None = None,
        until: datetime | str | None = None,
        filters: Sequence[ColumnFilter | FilterGroup] | None = None,
        source: str | None = None,
    ) -> Iterator[str]:
        """CSV text in chunks, newest first, for streaming: the header with the first batch of
        rows, then further batches.

        The first batch is read before anything is yielded, so a database that is unavailable
        raises HistoryUnavailable while the caller can still answer 503 instead of cutting a
        stream. Batches are read by id (keyset), so memory stays flat however large the history is.
        """
        where = self._where(label, category, peer, since, until, filters, source)
        columns = [self.table.c[name] for name in LIST_COLUMNS]
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow(LIST_COLUMNS)
        last_id: int | None = None
        while True:
            condition = list(where)
            if last_id is not None:
                condition.append(self.table.c.id < last_id)
            statement = select(*columns).where(*condition).order_by(self.table.c.id.desc()).limit(CSV_BATCH)
            with self._operation("CSV export"):
                self._ready()
                with self.engine.connect() as connection:
                    rows = connection.execute(statement).all()
            for row in rows:
                writer.writerow([_csv_cell(value) for value in row])
            if rows or last_id is None:
                yield _drain(buffer)
            if len(rows) < CSV_BATCH:
                return
            last_id = rows[-1][0]

    # -- filters --------------------------------------------------------------------------------
    def _where(self, label, category, peer, since, until, filters, source) -> list:
        c = self.table.c
        where = []
        if label:
            where.append(c.label == str(label))
        if category:
            where.append(c.category == str(category))
        if source:
            where.append(c.source == str(source))
        if peer:
            where.append(or_(c.sender == str(peer), c.receiver == str(peer)))
        since_time, until_time = parse_time(since, "since"), parse_time(until, "until")
        if since_time is not None:
            where.append(c.created_at >= since_time)
        if until_time is not None:
            where.append(c.created_at < until_time)
        for item in filters or ():
            if isinstance(item, FilterGroup):
                parts = [self._condition(part) for part in item.filters]
                if item.operator not in {"and", "or"}:
                    raise HistoryQueryError(f"filter operator must be AND or OR, got {item.operator!r}")
                where.append(and_(*parts) if item.operator == "and" else or_(*parts))
            elif isinstance(item, ColumnFilter):
                where.append(self._condition(item))
            else:
                raise HistoryQueryError(f"cannot read filter {item!r}")
        return where

    def _condition(self, spec: ColumnFilter):
        if spec.column not in SORTABLE_COLUMNS:
            raise HistoryQueryError(f"cannot filter on {spec.column!r}: columns are {', '.join(LIST_COLUMNS)}")
        column = self.table.c[spec.column]
        if spec.op == "blank":
            return column.is_(None)
        if spec.op == "notBlank":
            return column.is_not(None)
        if spec.op == "in":
            return column.in_([str(value) for value in spec.value or ()])
        column_type = column.type
        if isinstance(column_type, Boolean):
            return self._compare(column, spec, as_bool(spec.value, spec.column), None, ("equals", "notEqual"))
        if isinstance(column_type, Integer | SmallInteger | Float):
            low = as_number(spec.value, spec.column)
            high = as_number(spec.value_to, spec.column) if spec.op == "inRange" else None
            return self._compare(column, spec, low, high, RANGE_OPS)
        if isinstance(getattr(column_type, "impl", None), DateTime) or isinstance(column_type, DateTime):
            low = parse_time(spec.value, spec.column)
            high = parse_time(spec.value_to, spec.column) if spec.op == "inRange" else None
            if low is None:
                raise HistoryQueryError(f"filter on {spec.column} needs a time")
            return self._compare(column, spec, low, high, RANGE_OPS)
        value = "" if spec.value is None else str(spec.value)
        pattern = escape_like(value)
        ops = {
            "equals": lambda: column == value,
            "notEqual": lambda: or_(column != value, column.is_(None)),
            "contains": lambda: column.ilike(f"%{pattern}%", escape="\\"),
            "notContains": lambda: or_(~column.ilike(f"%{pattern}%", escape="\\"), column.is_(None)),
            "startsWith": lambda: column.ilike(f"{pattern}%", escape="\\"),
            "endsWith": lambda: column.ilike(f"%{pattern}", escape="\\"),
        }
        if spec.op not in ops:
            raise HistoryQueryError(f"text filter type must be one of {', '.join(TEXT_OPS)}, got {spec.op!r}")
        return ops[spec.op]()

    @staticmethod
    def _compare(column, spec: ColumnFilter, low, high, allowed: Sequence[str]):
        if spec.op not in allowed:
            raise HistoryQueryError(f"filter type for {spec.column} must be one of {', '.join(allowed)}")
        if spec.op == "equals":
            return column == low
        if spec.op == "notEqual":
            return column != low
        if spec.op == "lessThan":
            return column < low
        if spec.op == "lessThanOrEqual":
            return column <= low
        if spec.op == "greaterThan":
            return column > low
        if spec.op == "greaterThanOrEqual":
            return column >= low
        if high is None:
            raise HistoryQueryError(f"inRange filter on {spec.column} needs an upper bound")
        return and_(column >= low, column <= high)


class _WriterQueue:
    """One SQLite writer at a time across threads and processes, served in arrival order.

    SQLite lets one writer in at a time; the others get SQLITE_BUSY and its busy handler retries
    after sleeps of up to 100 ms, so under load (several gunicorn workers and threads) an unlucky
    request can wait for seconds. Waiting on an OS file lock (flock) instead wakes the next writer
    as soon as the current one commits. The file is opened per process (flock locks belong to an
    open file, so a descriptor inherited across fork would not exclude the parent).
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._thread_lock = threading.Lock()
        self._descriptor: tuple[int, int] | None = None  # (pid, fd), opened lazily after fork

    def _fd(self) -> int:
        pid = os.getpid()
        if self._descriptor is None or self._descriptor[0] != pid:
            self._descriptor = (pid, os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644))
        return self._descriptor[1]

    @contextmanager
    def slot(self, deadline: float) -> Iterator[None]:
        """Hold the writer lock; HistoryUnavailable when it is not free by `deadline` (monotonic),
        e.g. a writer process frozen while holding it.

        The lock is tried without blocking (the common case: free) and then polled, briefly at
        first: a blocking flock cannot be given a timeout."""
        if not self._thread_lock.acquire(timeout=max(0.0, deadline - time.monotonic())):
            raise HistoryUnavailable("the history database is busy (another writer holds it); try again")
        try:
            fd = self._fd()
            pause = 0.0002
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except OSError as exc:
                    if exc.errno not in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                        raise
                if time.monotonic() >= deadline:
                    raise HistoryUnavailable("the history database is busy (another writer holds it); try again")
                time.sleep(pause)
                pause = min(pause * 1.5, 0.001)
            try:
                yield
            finally:
                fcntl.flock(fd, fcntl.LOCK_UN)
        finally:
            self._thread_lock.release()


class _WalCheckpointer:
    """Copies the SQLite WAL back into the database file shortly after writes, on its own thread.

    Left to itself, SQLite makes the commit that takes the WAL past 1,000 pages copy it back:
    at 600 analyses/s that is a 4 MB copy and two fsyncs inside a request, with the write lock
    held, twice a second, and every other worker's write queues behind it. Measured with
    benchmarks/bench_api_load.py (2 workers, 16 connections): in-request checkpoints ~605
    requests/s with p99 35-39 ms; a checkpoint thread every second ~645 with p99 46-52 (big
    copies); every 0.05 s after a write ~630 with p99 29-31. PASSIVE checkpoints never wait for
    readers or writers (the sqlite3 module releases the GIL meanwhile). An idle server does not
    wake it. One thread per process, started on the first write and again in a forked child;
    `WAL_AUTOCHECKPOINT_PAGES` still bounds the WAL if the thread cannot keep up.
    """

    def __init__(self, engine: Engine, interval_s: float) -> None:
        self._engine = engine
        self._interval_s = interval_s
        self._lock = threading.Lock()
        self._owner_pid: int | None = None
        self._stop = threading.Event()
        self._written = threading.Event()
        self._thread: threading.Thread | None = None

    def wrote(self) -> None:
        """Note a write (starting the thread in this process if needed)."""
        self.ensure_running()
        self._written.set()

    def ensure_running(self) -> None:
        if self._owner_pid == os.getpid():
            return
        with self._lock:
            if self._owner_pid == os.getpid():
                return
            self._stop = threading.Event()
            self._thread = threading.Thread(
                target=self._run, args=(self._stop,), name="sqlite-wal-checkpoint", daemon=True
            )
            self._thread.start()
            self._owner_pid = os.getpid()

    def stop(self) -> None:
        with self._lock:
            if self._thread is not None and self._owner_pid == os.getpid():
                self._stop.set()
                self._written.set()  # wake it now rather than at its next idle timeout
                self._thread.join(timeout=5)
            self._thread = None
            self._owner_pid = None

    def _run(self, stop: threading.Event) -> None:
        while not stop.is_set():
            if not self._written.wait(timeout=1.0):
                continue
            if stop.wait(self._interval_s):  # let a few writes gather; quit promptly when asked
                return
            self._written.clear()
            try:
                with self._engine.connect() as connection:
                    connection.exec_driver_sql("PRAGMA wal_checkpoint(PASSIVE)")
            except SQLAlchemyError as exc:  # a busy or vanished database: try again next time
                log.debug("WAL checkpoint skipped: %s", _reason(exc))


def _sqlite_pragmas(busy_timeout_ms: int):
    """WAL lets readers work while a worker writes; busy_timeout (the statement deadline) makes
    writers queue, not fail; checkpoints run in the background (_WalCheckpointer), not in a
    request's commit."""

    def on_connect(dbapi_connection, _record) -> None:
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA busy_timeout={int(busy_timeout_ms)}")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute(f"PRAGMA wal_autocheckpoint={WAL_AUTOCHECKPOINT_PAGES}")
        cursor.close()

    return on_connect


def _mark_fresh(_dbapi_connection, record) -> None:
    """A connection just opened needs no liveness check at its first checkout."""
    record.info["fresh"] = True


def _reason(exc: BaseException) -> str:
    """The first line of a database error, without the SQL and the parameters."""
    original = getattr(exc, "orig", None) or exc
    return f"{type(original).__name__}: {str(original).strip().splitlines()[0] if str(original).strip() else ''}"


def _public(item: dict[str, Any]) -> dict[str, Any]:
    created = item.get("created_at")
    if isinstance(created, datetime):
        item["created_at"] = created.astimezone(UTC).isoformat().replace("+00:00", "Z")
    if "unknown" in item and item["unknown"] is not None:
        item["unknown"] = bool(item["unknown"])
    return item


#: a cell starting with one of these is read as a formula by spreadsheets (tab and CR too: some
#: strip them and then see the next character)
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
#: line breaks inside a cell: quoted, they are legal CSV, but many importers split rows on them
_LINE_BREAKS = str.maketrans({"\r": " ", "\n": " ", "\u2028": " ", "\u2029": " ", "\x0b": " ", "\x0c": " ",
                              "\x85": " "})


def _csv_cell(value: Any) -> Any:
    """One exported value made inert for spreadsheets: no formula start and no line break.

    Text that begins like a formula gets a leading apostrophe; every line break inside a cell
    becomes a space, so a crafted name ("x\\r=cmd|...") cannot open a row that starts with `=`.
    Numbers and booleans are written as they are (a negative number is not text)."""
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat().replace("+00:00", "Z")
    if isinstance(value, str):
        if value.startswith(FORMULA_STARTS):
            value = "'" + value
        return value.translate(_LINE_BREAKS)
    return value


def _drain(buffer: io.StringIO) -> str:
    chunk = buffer.getvalue()
    buffer.seek(0)
    buffer.truncate(0)
    return chunk
