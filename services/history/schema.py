"""The history table: one row per analysis, with the indexes the history queries need."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Float,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    SmallInteger,
    String,
    Table,
    Text,
)
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError, OperationalError, ProgrammingError
from sqlalchemy.types import TypeDecorator

log = logging.getLogger(__name__)

SOURCES: tuple[str, ...] = ("sample", "upload", "simulated", "api", "watch", "api-records", "batch")
#: longest Idempotency-Key kept (the API checks the length and the characters before it gets here)
IDEMPOTENCY_KEY_MAX = 128


def create_tables(engine: Engine, metadata: MetaData, *, attempts: int = 1, what: str = "schema",
                  then: Callable[[], None] | None = None) -> None:
    """`create_all`, plus `then` (e.g. adding missing columns), retried with a short back-off: another
    process creating the same tables at the same moment makes PostgreSQL's catalog raise once."""
    for attempt in range(attempts):
        try:
            metadata.create_all(engine, checkfirst=True)
            if then is not None:
                then()
            return
        except (OperationalError, ProgrammingError, IntegrityError) as exc:
            if attempt == attempts - 1:
                raise
            log.info("%s creation raced (%s); retrying", what, type(exc).__name__)
            time.sleep(0.05 * (attempt + 1))


class UTCDateTime(TypeDecorator):
    """Timestamps stored in UTC and always read back timezone-aware.

    SQLite has no time zones: store naive UTC there and attach UTC on the way out, so a query
    with an aware `since` compares like with like on both databases.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value, dialect):
        if value is None:
            return None
        if value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value, dialect):
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


def utc_now() -> datetime:
    return datetime.now(UTC)


def build_table(metadata: MetaData, prefix: str = "") -> Table:
    """The analyses table; `prefix` lets parallel test runs share one database without colliding."""
    name = f"{prefix}analyses"
    table = Table(
        name,
        metadata,
        Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
        Column("created_at", UTCDateTime(), nullable=False),
        Column("source", String(16), nullable=False),
        Column("sample_name", String(255)),
        Column("sender", String(64), nullable=False),
        Column("receiver", String(64), nullable=False),
        Column("transfer_kw", Float, nullable=False),
        Column("label", String(96), nullable=False),
        Column("label_id", SmallInteger, nullable=False),
        Column("confidence", Float, nullable=False),
        Column("category", String(32), nullable=False),
        Column("equipment", String(32), nullable=False),
        Column("kind", String(48), nullable=False),
        Column("unknown", Boolean, nullable=False, default=False),
        Column("unknown_reason", Text),
        Column("true_label", String(96)),
        Column("severity", String(16)),
        Column("transfer_status", String(32)),
        Column("impact_summary", Text),
        #: the verdict in one line, and whether the faulted unit is uncertain (NULL in older rows)
        Column("headline", Text),
        Column("equipment_uncertain", Boolean),
        Column("impact", JSON),
        #: the model's answer beyond the label (top-5, marginals, explanation spans, inception)
        Column("prediction", JSON),
        Column("model_fingerprint", String(80)),
        #: where an uploaded window came from: for a COMTRADE record its station, device, channels,
        #: rate and the window read (`ComtradeWindow.to_dict()`); NULL for samples and raw windows
        Column("recording", JSON),
        #: zlib-compressed float32 bytes of the (3, 726) waveform, phases A, B, C in order
        Column("waveform", LargeBinary),
        #: the client's Idempotency-Key (unique: a retried request finds the first row) and the
        #: digest of the request it came with (the same key with another request is refused)
        Column("idempotency_key", String(IDEMPOTENCY_KEY_MAX)),
        Column("request_digest", String(64)),
        #: who asked for the analysis (issue 14): the logged-in user or token owner; NULL without login
        Column("user", String(64)),
    )
    # newest-first listings filtered by one column: (column, created_at) serves both the filter
    # and the order; created_at and confidence alone serve the unfiltered sorts
    for column in ("label", "category", "sender", "receiver", "severity", "user"):
        Index(f"ix_{name}_{column}_created_at", table.c[column], table.c.created_at)
    for column in ("created_at", "confidence"):
        Index(f"ix_{name}_{column}", table.c[column])
    # NULLs (requests without a key) never collide, on SQLite and PostgreSQL alike
    Index(f"ux_{name}_idempotency_key", table.c.idempotency_key, unique=True)
    return table
