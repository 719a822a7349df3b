"""History of analyses: one row per analysis in SQLite (default) or PostgreSQL."""

from services.history.filters import (
    LIST_COLUMNS,
    SORTABLE_COLUMNS,
    ColumnFilter,
    FilterGroup,
    HistoryQueryError,
    filters_from_ag_grid,
    parse_sort,
    parse_time,
)
from services.history.schema import SOURCES
from services.history.store import (
    DatabaseTimeouts,
    HistoryStore,
    HistoryUnavailable,
    IdempotencyKeyTaken,
    PruneResult,
    compress_waveform,
    decompress_waveform,
)

__all__ = [
    "LIST_COLUMNS",
    "SORTABLE_COLUMNS",
    "SOURCES",
    "ColumnFilter",
    "DatabaseTimeouts",
    "FilterGroup",
    "HistoryQueryError",
    "HistoryStore",
    "HistoryUnavailable",
    "IdempotencyKeyTaken",
    "PruneResult",
    "compress_waveform",
    "decompress_waveform",
    "filters_from_ag_grid",
    "parse_sort",
    "parse_time",
]
