"""Alarms: one per live event whose severity an operator chose to be alarmed about (issue 13 item 3).

An alarm is raised when a record of the live pipeline (watched folder, `POST /api/records`) is
analysed with a severity in the chosen set (critical and major by default), in the same
transaction as its history row (`JobStore.finish` calls `AlarmStore.raise_in`), so a record never
has its analysis without its alarm, nor two alarms. An operator acknowledges it once: who and when
are kept and a second acknowledgement does not overwrite them. Rows live in the history's database
(`<prefix>alarms`), so every web worker sees the same list and the same unacknowledged count.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable, Mapping
from datetime import UTC
from typing import Any, Protocol

from sqlalchemy import (
    BigInteger,
    Column,
    Float,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    func,
    insert,
    select,
    update,
)
from sqlalchemy.engine import Connection
from sqlalchemy.exc import OperationalError

from services.history import HistoryStore
from services.history.schema import UTCDateTime, create_tables, utc_now
from services.rules import SEVERITIES

log = logging.getLogger(__name__)

DEFAULT_ALARM_SEVERITIES: tuple[str, ...] = ("critical", "major")
MAX_ALARM_PAGE = 500
MAX_WHO_CHARS = 64
#: what an alarm carries from its analysis's history row
ANALYSIS_FIELDS: tuple[str, ...] = (
    "source", "label", "headline", "category", "equipment", "kind", "confidence", "sender", "receiver",
    "transfer_kw", "transfer_status", "impact_summary", "sample_name",
)


class AlarmError(ValueError):
    """A bad alarm request (unknown severity, empty name); the message says what is expected."""


def parse_severities(value: str | Iterable[str] | None) -> tuple[str, ...]:
    """The severities to alarm on, in rank order, from "critical,major" or a list; AlarmError for an
    unknown one. None gives the default (critical and major); "" or "none" turns alarms off."""
    if value is None:
        return DEFAULT_ALARM_SEVERITIES
    items = value.split(",") if isinstance(value, str) else list(value)
    wanted = {str(item).strip().lower() for item in items if str(item).strip()}
    wanted.discard("none")
    unknown = sorted(wanted - set(SEVERITIES))
    if unknown:
        raise AlarmError(f"unknown severity {', '.join(unknown)}: choose among {', '.join(SEVERITIES)}")
    return tuple(level for level in reversed(SEVERITIES) if level in wanted)


def check_who(who: object) -> str:
    """The acknowledging operator's name: 1 to 64 printable characters."""
    if not isinstance(who, str) or not who.strip():
        raise AlarmError("say who acknowledges the alarm (a name of 1 to 64 characters)")
    name = " ".join(who.split())
    if len(name) > MAX_WHO_CHARS or not name.isprintable():
        raise AlarmError(f"the name must be 1 to {MAX_WHO_CHARS} printable characters")
    return name


def build_table(metadata: MetaData, prefix: str = "") -> Table:
    table = Table(
        f"{prefix}alarms",
        metadata,
        Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
        Column("created_at", UTCDateTime(), nullable=False),
        #: one alarm per analysis: the unique key makes raising it idempotent
        Column("analysis_id", BigInteger, nullable=False, unique=True),
        Column("job_id", String(32)),
        Column("severity", String(16), nullable=False),
        Column("source", String(16)),
        Column("label", String(96)),
        Column("headline", Text),
        Column("category", String(32)),
        Column("equipment", String(32)),
        Column("kind", String(48)),
        Column("confidence", Float),
        Column("sender", String(64)),
        Column("receiver", String(64)),
        Column("transfer_kw", Float),
        Column("transfer_status", String(32)),
        Column("impact_summary", Text),
        Column("sample_name", String(255)),
        Column("acknowledged_at", UTCDateTime()),
        Column("acknowledged_by", String(MAX_WHO_CHARS)),
    )
    Index(f"ix_{prefix}alarms_ack_created", table.c.acknowledged_at, table.c.created_at)
    Index(f"ix_{prefix}alarms_created_at", table.c.created_at)
    return table


class AlarmListener(Protocol):
    """Told of each alarm once its transaction committed (`services.notify.Notifier`)."""

    def alarm_raised(self, alarm_id: int) -> object: ...


class AlarmStore:
    """Alarms in the history's database (same engine and table prefix as `history`).

    `notifier`, when set, hears of each new alarm after its transaction committed (`raised`)."""

    def __init__(self, history: HistoryStore, severities: Iterable[str] | str | None = None,
                 notifier: AlarmListener | None = None) -> None:
        self.history = history
        self.notifier = notifier
        self.engine = history.engine
        self.severities = parse_severities(severities)
        self.metadata = MetaData()
        self.table = build_table(self.metadata, history.table.name.removesuffix("analyses"))
        self._schema_lock = threading.Lock()
        self._schema_ready = False
        try:
            self._ready(attempts=6)
        except OperationalError as exc:  # the database may be down at start: retried on first use
            log.error("alarm table not created at start (%s); will retry on first use", type(exc).__name__)

    def _ready(self, attempts: int = 1) -> None:
        if self._schema_ready:
            return
        with self._schema_lock:
            if not self._schema_ready:
                create_tables(self.engine, self.metadata, attempts=attempts, what="alarm schema")
                self._schema_ready = True

    def drop(self) -> None:
        self.metadata.drop_all(self.engine, checkfirst=True)

    # -- raising ----------------------------------------------------------------------------------
    def wants(self, severity: str | None) -> bool:
        return severity in self.severities

    def raise_in(self, connection: Connection, analysis_id: int, record: Mapping[str, Any],
                 job_id: str | None = None) -> int | None:
        """Inside the caller's transaction: the alarm of analysis `analysis_id` (its history row
        `record`) when its severity is alarmed on; its id, or None when it is not."""
        if not self.wants(record.get("severity")):
            return None
        self._ready()
        row = {name: record.get(name) for name in ANALYSIS_FIELDS}
        row.update(created_at=utc_now(), analysis_id=int(analysis_id), job_id=job_id, severity=record["severity"])
        return int(connection.execute(insert(self.table), row).inserted_primary_key[0])

    def raised(self, alarm_id: int | None) -> None:
        """After the transaction that raised `alarm_id` committed: tell the notifier (its work goes
        to an engine; a failure here is logged, never the analysis's problem)."""
        if alarm_id is None or self.notifier is None:
            return
        try:
            self.notifier.alarm_raised(int(alarm_id))
        except Exception:
            log.exception("alarm %s: notifications not queued", alarm_id)

    # -- reading ----------------------------------------------------------------------------------
    def recent(self, limit: int = 50, *, unacknowledged: bool = False,
               after_id: int | None = None) -> list[dict[str, Any]]:
        """Alarms newest first; only those not yet acknowledged with `unacknowledged`; only those
        newer than `after_id` (what a page polling for new ones asks)."""
        if not 1 <= int(limit) <= MAX_ALARM_PAGE:
            raise AlarmError(f"limit must be between 1 and {MAX_ALARM_PAGE}")
        self._ready()
        query = select(self.table)
        if unacknowledged:
            query = query.where(self.table.c.acknowledged_at.is_(None))
        if after_id is not None:
            query = query.where(self.table.c.id > int(after_id))
        query = query.order_by(self.table.c.id.desc()).limit(int(limit))
        with self.engine.connect() as connection:
            return [_public(dict(row)) for row in connection.execute(query).mappings()]

    def get(self, alarm_id: int) -> dict[str, Any] | None:
        self._ready()
        with self.engine.connect() as connection:
            row = connection.execute(select(self.table).where(self.table.c.id == int(alarm_id))).mappings().first()
        return _public(dict(row)) if row is not None else None

    def unacknowledged_count(self) -> int:
        """How many alarms wait for an operator (the navbar's badge)."""
        self._ready()
        query = select(func.count()).select_from(self.table).where(self.table.c.acknowledged_at.is_(None))
        with self.engine.connect() as connection:
            return int(connection.execute(query).scalar_one())

    # -- acknowledging ----------------------------------------------------------------------------
    def acknowledge(self, alarm_id: int, who: str) -> dict[str, Any] | None:
        """Acknowledge one alarm as `who`; the alarm (with the first acknowledgement if it had one
        already: who and when are never overwritten), or None when there is no such alarm."""
        name = check_who(who)
        self._ready()
        with self.engine.begin() as connection:
            connection.execute(
                update(self.table)
                .where(self.table.c.id == int(alarm_id), self.table.c.acknowledged_at.is_(None))
                .values(acknowledged_at=utc_now(), acknowledged_by=name)
            )
        return self.get(alarm_id)

    def acknowledge_all(self, who: str, up_to_id: int) -> int:
        """Acknowledge every open alarm up to `up_to_id` (those the operator saw); how many."""
        name = check_who(who)
        self._ready()
        with self.engine.begin() as connection:
            return int(connection.execute(
                update(self.table)
                .where(self.table.c.id <= int(up_to_id), self.table.c.acknowledged_at.is_(None))
                .values(acknowledged_at=utc_now(), acknowledged_by=name)
            ).rowcount)


def _public(item: dict[str, Any]) -> dict[str, Any]:
    for key in ("created_at", "acknowledged_at"):
        if item.get(key) is not None:
            item[key] = item[key].astimezone(UTC).isoformat().replace("+00:00", "Z")
    item["acknowledged"] = item.get("acknowledged_at") is not None
    return item
