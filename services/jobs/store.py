"""JobStore: the record jobs and the watcher's lock, in the history's database (SQLAlchemy Core).

Every record that arrives (posted to `/api/records`, dropped in the watched folder) is one row of
`<prefix>jobs`, with its files until it is finished. The row is what makes the pipeline safe with
several web workers, several machines and an engine that may deliver a task twice:

- `dedupe_key` is unique: the watcher inserts `watch:<sha256 of the record>`, so a record is taken
  once whoever sees it first, across restarts and machines;
- `finish` records the history row and marks the job done in ONE transaction, and only while the
  job has no analysis yet: a second delivery of the same job rolls back instead of doubling it;
- `<prefix>job_locks` holds leases (one folder watcher scans at a time).

Nothing here changes at runtime in the process: the state lives in the database.
"""

from __future__ import annotations

import logging
import threading
import uuid
import zlib
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
from sqlalchemy import (
    JSON,
    BigInteger,
    Column,
    Float,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    and_,
    delete,
    func,
    insert,
    inspect,
    or_,
    select,
    update,
)
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import IntegrityError, OperationalError

from services.alarms import AlarmStore
from services.history import HistoryStore
from services.history.schema import UTCDateTime, create_tables, utc_now

log = logging.getLogger(__name__)

QUEUED, RUNNING, DONE, FAILED = "queued", "running", "done", "failed"
#: a job of a batch stopped with Cancel before it finished (never analysed)
CANCELLED = "cancelled"
STATES: tuple[str, ...] = (QUEUED, RUNNING, DONE, FAILED, CANCELLED)
FINISHED: tuple[str, ...] = (DONE, FAILED, CANCELLED)
#: the source of a batch's jobs (an archive or a server folder analysed at once): no alarms, they are past records
BATCH_SOURCE = "batch"
MAX_JOB_PAGE = 500
#: the columns a job listing carries (never the files)
JOB_COLUMNS: tuple[str, ...] = (
    "id", "created_at", "started_at", "finished_at", "source", "name", "state", "attempts", "sender",
    "receiver", "transfer_kw", "content_hash", "analysis_id", "error", "batch_id",
)


#: the history columns `recent(with_analysis=True)` adds to a done job (what a live list shows)
ANALYSIS_SUMMARY: tuple[str, ...] = (
    "label", "confidence", "category", "equipment", "kind", "severity", "headline", "transfer_status",
    "impact_summary", "unknown",
)


class JobNotFound(LookupError):
    """No job with that id."""


class AlreadyFinished(RuntimeError):
    """The job was finished by another delivery while this one ran; its result stands."""


def new_job_id() -> str:
    return uuid.uuid4().hex


def is_job_id(value: object) -> bool:
    """True for the 32 lower-case hex digits `new_job_id` makes."""
    return isinstance(value, str) and len(value) == 32 and all(char in "0123456789abcdef" for char in value)


def pack_files(files: Sequence[tuple[str, bytes]]) -> bytes:
    """The record's (name, bytes) pairs as one compressed blob (names in JSON, then the bytes)."""
    header = orjson.dumps([[name, len(data)] for name, data in files])
    return zlib.compress(len(header).to_bytes(4, "big") + header + b"".join(bytes(d) for _, d in files), 1)


def unpack_files(blob: bytes) -> list[tuple[str, bytes]]:
    raw = zlib.decompress(blob)
    size = int.from_bytes(raw[:4], "big")
    header = orjson.loads(raw[4:4 + size])
    files, position = [], 4 + size
    for name, length in header:
        files.append((str(name), raw[position:position + int(length)]))
        position += int(length)
    return files


def build_tables(metadata: MetaData, prefix: str = "") -> tuple[Table, Table]:
    """The jobs table and the locks table; `prefix` is the history's (parallel test runs)."""
    jobs = Table(
        f"{prefix}jobs",
        metadata,
        Column("id", String(32), primary_key=True),
        Column("created_at", UTCDateTime(), nullable=False),
        Column("updated_at", UTCDateTime(), nullable=False),
        Column("started_at", UTCDateTime()),
        Column("finished_at", UTCDateTime()),
        Column("source", String(16), nullable=False),
        Column("name", String(255), nullable=False),
        Column("state", String(12), nullable=False),
        Column("attempts", Integer, nullable=False, default=0),
        Column("sender", String(64), nullable=False),
        Column("receiver", String(64), nullable=False),
        Column("transfer_kw", Float),
        #: channels, unit, rated_current_a as given with the record
        Column("options", JSON),
        Column("content_hash", String(64)),
        #: unique: "watch:<sha256>" for a dropped record, NULL for posted ones (each post is a job)
        Column("dedupe_key", String(80), unique=True),
        #: the record's files (`pack_files`) until the job is finished
        Column("files", LargeBinary),
        Column("analysis_id", BigInteger),
        Column("error", Text),
        #: the batch a job belongs to (a whole archive analysed at once), else NULL; columns added
        #: after this one must be nullable too (`JobStore._add_missing_columns` is the migration)
        Column("batch_id", String(32)),
    )
    Index(f"ix_{prefix}jobs_created_at", jobs.c.created_at)
    Index(f"ix_{prefix}jobs_batch_id", jobs.c.batch_id)
    Index(f"ix_{prefix}jobs_state_created_at", jobs.c.state, jobs.c.created_at)
    locks = Table(
        f"{prefix}job_locks",
        metadata,
        Column("name", String(200), primary_key=True),
        Column("owner", String(64), nullable=False),
        Column("expires_at", UTCDateTime(), nullable=False),
    )
    return jobs, locks


class JobStore:
    """Jobs of the record pipeline, on the history store's engine and table prefix."""

    def __init__(self, history: HistoryStore, alarms: AlarmStore | None = None) -> None:
        self.history = history
        #: raises the alarm of a finished job in the same transaction as its history row
        self.alarms = alarms
        self.engine: Engine = history.engine
        #: for writes of one statement: atomic alone, without BEGIN and COMMIT round trips
        self._autocommit = self.engine.execution_options(isolation_level="AUTOCOMMIT")
        self.prefix = history.table.name.removesuffix("analyses")
        self.metadata = MetaData()
        self.jobs, self.locks = build_tables(self.metadata, self.prefix)
        self._schema_lock = threading.Lock()
        self._schema_ready = False  # set once per process, when the tables are known to exist
        try:
            self._ready(attempts=6)
        except OperationalError as exc:  # the database may be down while the app starts, as the history allows
            log.error("job tables not created at start (%s); will retry on first use", type(exc).__name__)

    def _ready(self, attempts: int = 1) -> None:
        """Create the tables if missing; another process doing it at the same moment is fine."""
        if self._schema_ready:
            return
        with self._schema_lock:
            if not self._schema_ready:
                create_tables(self.engine, self.metadata, attempts=attempts, what="job schema",
                              then=self._add_missing_columns)
                self._schema_ready = True

    def _add_missing_columns(self) -> None:
        """Add the (nullable) columns a newer release defines to tables an older one created."""
        quote = self.engine.dialect.identifier_preparer.quote
        for table in (self.jobs, self.locks):
            present = {column["name"] for column in inspect(self.engine).get_columns(table.name)}
            missing = [column for column in table.columns if column.name not in present]
            if not missing:
                continue
            with self.engine.begin() as connection:
                for column in missing:
                    kind = column.type.compile(dialect=self.engine.dialect)
                    connection.exec_driver_sql(f"ALTER TABLE {quote(table.name)} ADD COLUMN {quote(column.name)} {kind}")
                    log.info("job table %s: added column %s", table.name, column.name)

    def drop(self) -> None:
        """Drop the job tables (tests and tooling only)."""
        self.metadata.drop_all(self.engine, checkfirst=True)

    # -- creating ---------------------------------------------------------------------------------
    def create(self, *, source: str, name: str, files: Sequence[tuple[str, bytes]] | None, sender: str,
               receiver: str, transfer_kw: float | None = None, options: Mapping[str, Any] | None = None,
               content_hash: str | None = None, dedupe_key: str | None = None, error: str | None = None,
               batch_id: str | None = None) -> str | None:
        """A new job (queued, or failed with `error` for a record rejected before reading); its id, or
        None when `dedupe_key` is already taken (the record was seen before, here or elsewhere)."""
        self._ready()
        now = utc_now()
        job_id = new_job_id()
        row = {
            "id": job_id, "created_at": now, "updated_at": now, "source": source, "name": name[:255],
            "state": FAILED if error else QUEUED, "attempts": 0, "sender": sender, "receiver": receiver,
            "transfer_kw": transfer_kw, "options": self._with_author(options), "content_hash": content_hash,
            "dedupe_key": dedupe_key, "files": pack_files(files) if files and not error else None,
            "error": error, "finished_at": now if error else None, "batch_id": batch_id,
        }
        try:
            with self._autocommit.connect() as connection:
                connection.execute(insert(self.jobs), row)
        except IntegrityError:
            if dedupe_key is None:
                raise
            return None
        return job_id

    def _with_author(self, options: Mapping[str, Any] | None) -> dict[str, Any]:
        """The job's options with `user`: who submitted it (the history's author), when known."""
        options = dict(options or {})
        author = self.history.author() if self.history.author is not None else None
        if author and "user" not in options:
            options["user"] = author
        return options

    def create_many(self, items: Sequence[Mapping[str, Any]], *, source: str, batch_id: str) -> list[str]:
        """Many jobs of one batch in one transaction (an archive of thousands of records); each item
        has `name`, `files`, `sender`, `receiver` and optionally `error` (a record rejected before
        reading: created failed), `content_hash`. The job ids, in the items' order."""
        self._ready()
        now = utc_now()
        author = self._with_author(None).get("user")
        rows = []
        for item in items:
            error = item.get("error")
            files = item.get("files")
            rows.append({
                "id": new_job_id(), "created_at": now, "updated_at": now, "source": source,
                "name": str(item["name"])[:255], "state": FAILED if error else QUEUED, "attempts": 0,
                "sender": item["sender"], "receiver": item["receiver"], "transfer_kw": item.get("transfer_kw"),
                "options": {**({"user": author} if author else {}), **dict(item.get("options") or {})},
                "content_hash": item.get("content_hash"),
                "dedupe_key": None, "files": pack_files(files) if files and not error else None,
                "error": error[:2000] if error else None, "finished_at": now if error else None,
                "batch_id": batch_id,
            })
        if rows:
            with self.engine.begin() as connection:
                for start in range(0, len(rows), 500):
                    connection.execute(insert(self.jobs), rows[start:start + 500])
        return [row["id"] for row in rows]

    def batch_job_ids(self, batch_id: str, state: str = QUEUED) -> list[str]:
        """Ids of a batch's jobs in one state, oldest first (what a batch runner hands out)."""
        self._ready()
        query = (select(self.jobs.c.id).where(self.jobs.c.batch_id == batch_id, self.jobs.c.state == state)
                 .order_by(self.jobs.c.created_at, self.jobs.c.id))
        with self.engine.connect() as connection:
            return [row[0] for row in connection.execute(query)]

    def touch_batch(self, batch_id: str) -> int:
        """Mark a batch's unfinished jobs as just handled: its runner is alive, so the recovery pass
        (`JobService.recover`, which offers jobs untouched for minutes) leaves them to it; how many."""
        self._ready()
        with self._autocommit.connect() as connection:
            return int(connection.execute(
                update(self.jobs).where(self.jobs.c.batch_id == batch_id, self.jobs.c.state.in_((QUEUED, RUNNING)))
                .values(updated_at=utc_now())
            ).rowcount)

    def cancel_batch(self, batch_id: str) -> int:
        """Cancel every unfinished job of a batch (queued or running); how many. A task that meets a
        cancelled job skips it (`claim` answers None), and one finishing it meanwhile is rolled
        back (`finish` takes queued or running jobs only), so nothing of the batch is analysed after."""
        self._ready()
        now = utc_now()
        with self._autocommit.connect() as connection:
            return int(connection.execute(
                update(self.jobs)
                .where(self.jobs.c.batch_id == batch_id, self.jobs.c.state.in_((QUEUED, RUNNING)))
                .values(state=CANCELLED, finished_at=now, updated_at=now, files=None, error="cancelled")
            ).rowcount)

    # -- running ----------------------------------------------------------------------------------
    def claim(self, job_id: str, connection: Connection | None = None) -> dict[str, Any] | None:
        """Mark the job running and return it with its files; None when it is already finished.

        A job still marked running is claimed again: that is a redelivery after its worker died
        (Celery's acks_late) or a restart; `finish` keeps the result single if both complete.
        `connection`: one the caller holds for the whole job (fewer round trips to the database).
        The claim is one statement, run in autocommit (no BEGIN and COMMIT round trips).
        """
        self._ready()
        if connection is None:
            with self.engine.connect() as own:
                return self.claim(job_id, own)
        now = utc_now()
        claim = (update(self.jobs)
                 .where(self.jobs.c.id == job_id, self.jobs.c.state.in_((QUEUED, RUNNING)))
                 .values(state=RUNNING, started_at=now, updated_at=now, attempts=self.jobs.c.attempts + 1)
                 .returning(*self.jobs.c))
        connection.execution_options(isolation_level="AUTOCOMMIT")
        try:
            row = connection.execute(claim).mappings().first()
            exists = row is not None or connection.execute(
                select(self.jobs.c.id).where(self.jobs.c.id == job_id)).first() is not None
            connection.commit()  # ends SQLAlchemy's autobegun transaction; nothing to send in autocommit
        except BaseException:
            connection.rollback()
            raise
        finally:
            connection.execution_options(isolation_level=connection.default_isolation_level)
        if not exists:
            raise JobNotFound(job_id)
        if row is None:
            return None
        job = dict(row)
        job["files"] = unpack_files(job["files"]) if job["files"] is not None else []
        return job

    def finish(self, job_id: str, history_row: Mapping[str, Any], connection: Connection | None = None) -> int:
        """Insert the analysis into the history and mark the job done, atomically; the analysis id.

        Raises AlreadyFinished (and inserts nothing) when another delivery finished it first. With
        `alarms`, the analysis's alarm (if its severity is alarmed on) is part of the same transaction.
        """
        self._ready()
        now = utc_now()
        alarm_id = None
        with self._transaction(connection) as active:
            history_row = dict(history_row)
            if history_row.get("user") is None:  # who submitted the record or its batch (issue 14)
                options = active.execute(select(self.jobs.c.options).where(self.jobs.c.id == job_id)).scalar()
                history_row["user"] = (options or {}).get("user") if isinstance(options, dict) else None
            analysis_id = int(active.execute(insert(self.history.table), history_row).inserted_primary_key[0])
            updated = active.execute(
                update(self.jobs)
                .where(self.jobs.c.id == job_id, self.jobs.c.analysis_id.is_(None),
                       self.jobs.c.state.in_((QUEUED, RUNNING)))
                .values(state=DONE, analysis_id=analysis_id, finished_at=now, updated_at=now, files=None, error=None)
            ).rowcount
            if not updated:  # raised inside the transaction: the history row is rolled back
                raise AlreadyFinished(job_id)
            if self.alarms is not None and history_row.get("source") != BATCH_SOURCE:
                alarm_id = self.alarms.raise_in(active, analysis_id, history_row, job_id)
        if self.alarms is not None:  # committed: now its notifications may go (never before)
            self.alarms.raised(alarm_id)
        return analysis_id

    @contextmanager
    def _transaction(self, connection: Connection | None) -> Iterator[Connection]:
        """A transaction on the caller's connection, or on a pooled one."""
        if connection is None:
            with self.engine.begin() as pooled:
                yield pooled
        else:
            with connection.begin():
                yield connection

    def discard(self, job_id: str) -> bool:
        """Delete a job that never reached the engine (still queued); False if it had started."""
        self._ready()
        with self._autocommit.connect() as connection:
            return bool(connection.execute(
                delete(self.jobs).where(self.jobs.c.id == job_id, self.jobs.c.state == QUEUED)
            ).rowcount)

    def fail(self, job_id: str, reason: str) -> bool:
        """Mark the job failed with the reason (kept for the rejected list); False if it was finished."""
        self._ready()
        now = utc_now()
        with self._autocommit.connect() as connection:
            return bool(connection.execute(
                update(self.jobs)
                .where(self.jobs.c.id == job_id, self.jobs.c.state.in_((QUEUED, RUNNING)))
                .values(state=FAILED, error=reason[:2000], finished_at=now, updated_at=now, files=None)
            ).rowcount)

    # -- reading ----------------------------------------------------------------------------------
    def get(self, job_id: str) -> dict[str, Any] | None:
        """One job without its files, or None."""
        if not is_job_id(job_id):
            return None
        self._ready()
        columns = [self.jobs.c[name] for name in JOB_COLUMNS]
        with self.engine.connect() as connection:
            row = connection.execute(select(*columns).where(self.jobs.c.id == job_id)).mappings().first()
        return _public(dict(row)) if row is not None else None

    def recent(self, limit: int = 50, *, source: str | None = None, state: str | None = None,
               since: datetime | None = None, batch_id: str | None = None,
               with_analysis: bool = False) -> list[dict[str, Any]]:
        """Jobs newest first (what a Live page polls): optionally of one source, one state, one
        batch, or created at or after `since`. `with_analysis` adds to each done job `analysis`, the
        verdict in a few fields (ANALYSIS_SUMMARY: label, severity, unit, transfer status...) read
        with the same query."""
        self._ready()
        if not 1 <= int(limit) <= MAX_JOB_PAGE:
            raise ValueError(f"limit must be between 1 and {MAX_JOB_PAGE}")
        if state is not None and state not in STATES:
            raise ValueError(f"state must be one of {', '.join(STATES)}")
        where = []
        if source is not None:
            where.append(self.jobs.c.source == source)
        if state is not None:
            where.append(self.jobs.c.state == state)
        if since is not None:
            where.append(self.jobs.c.created_at >= since)
        if batch_id is not None:
            where.append(self.jobs.c.batch_id == batch_id)
        columns = [self.jobs.c[name] for name in JOB_COLUMNS]
        source_table = self.jobs
        if with_analysis:
            history = self.history.table
            columns += [history.c[name].label(f"analysis__{name}") for name in ANALYSIS_SUMMARY]
            source_table = self.jobs.outerjoin(history, history.c.id == self.jobs.c.analysis_id)
        query = (select(*columns).select_from(source_table).where(*where)
                 .order_by(self.jobs.c.created_at.desc(), self.jobs.c.id.desc()).limit(int(limit)))
        with self.engine.connect() as connection:
            rows = [dict(row) for row in connection.execute(query).mappings()]
        if with_analysis:
            for row in rows:
                summary = {name: row.pop(f"analysis__{name}") for name in ANALYSIS_SUMMARY}
                row["analysis"] = summary if summary["label"] is not None else None
        return [_public(row) for row in rows]

    def rejected(self, limit: int = 50, source: str | None = None) -> list[dict[str, Any]]:
        """Records that could not be analysed, with the reason, newest first."""
        return self.recent(limit, source=source, state=FAILED)

    def counts(self, source: str | None = None, batch_id: str | None = None) -> dict[str, int]:
        """How many jobs are in each state (of one source, of one batch: a progress bar's numbers)."""
        self._ready()
        query = select(self.jobs.c.state, func.count()).group_by(self.jobs.c.state)
        if source is not None:
            query = query.where(self.jobs.c.source == source)
        if batch_id is not None:
            query = query.where(self.jobs.c.batch_id == batch_id)
        with self.engine.connect() as connection:
            found = {state: int(count) for state, count in connection.execute(query)}
        return {state: found.get(state, 0) for state in STATES}

    def known(self, dedupe_keys: Iterable[str]) -> dict[str, str]:
        """{dedupe_key: state} of the keys already taken."""
        self._ready()
        keys = list(dict.fromkeys(dedupe_keys))
        found: dict[str, str] = {}
        with self.engine.connect() as connection:
            for start in range(0, len(keys), 500):
                chunk = keys[start:start + 500]
                query = select(self.jobs.c.dedupe_key, self.jobs.c.state).where(self.jobs.c.dedupe_key.in_(chunk))
                found.update({key: state for key, state in connection.execute(query)})
        return found

    def stale(self, older_than_s: float, source: str | None = None, limit: int = 500) -> list[str]:
        """Ids of unfinished jobs untouched for `older_than_s` (lost by a process that stopped)."""
        self._ready()
        cutoff = utc_now() - timedelta(seconds=older_than_s)
        query = (select(self.jobs.c.id)
                 .where(self.jobs.c.state.in_((QUEUED, RUNNING)), self.jobs.c.updated_at < cutoff)
                 .order_by(self.jobs.c.created_at).limit(limit))
        if source is not None:
            query = query.where(self.jobs.c.source == source)
        with self.engine.connect() as connection:
            return [row[0] for row in connection.execute(query)]

    def touch(self, job_ids: Sequence[str]) -> None:
        """Mark jobs as just handled (so `stale` does not offer them again at once)."""
        if not job_ids:
            return
        with self._autocommit.connect() as connection:
            connection.execute(update(self.jobs).where(self.jobs.c.id.in_(list(job_ids))).values(updated_at=utc_now()))

    # -- leases -----------------------------------------------------------------------------------
    def acquire_lock(self, name: str, owner: str, ttl_s: float) -> bool:
        """Take or renew the lease `name` for `ttl_s` seconds; False while someone else holds it."""
        self._ready()
        now = utc_now()
        expires = now + timedelta(seconds=ttl_s)
        with self._autocommit.connect() as connection:
            taken = connection.execute(
                update(self.locks)
                .where(self.locks.c.name == name, or_(self.locks.c.owner == owner, self.locks.c.expires_at < now))
                .values(owner=owner, expires_at=expires)
            ).rowcount
        if taken:
            return True
        try:
            with self._autocommit.connect() as connection:
                connection.execute(insert(self.locks), {"name": name, "owner": owner, "expires_at": expires})
            return True
        except IntegrityError:
            return False

    def release_lock(self, name: str, owner: str) -> None:
        self._ready()
        with self._autocommit.connect() as connection:
            connection.execute(
                update(self.locks).where(and_(self.locks.c.name == name, self.locks.c.owner == owner))
                .values(expires_at=datetime(1970, 1, 1, tzinfo=UTC))
            )


def _public(item: dict[str, Any]) -> dict[str, Any]:
    """Times as ISO 8601 UTC text (the API's and the pages' form)."""
    for key in ("created_at", "started_at", "finished_at"):
        if item.get(key) is not None:
            item[key] = item[key].astimezone(UTC).isoformat().replace("+00:00", "Z")
    return item
