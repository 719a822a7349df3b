"""History filters and sort orders: parsed and checked before any SQL is built.

The History grid (AG Grid's filter and sort models), the API's query string and the CSV export
all go through these, so one malformed request is one clear `HistoryQueryError` (a 400), never a
500 from deep inside the database layer.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from services.labels import LABELS, pretty_label
from services.rules.events import SEVERITIES

#: the columns a history listing shows, in order (everything but the bulky JSON and waveform)
LIST_COLUMNS: tuple[str, ...] = (
    "id", "created_at", "source", "sample_name", "sender", "receiver", "transfer_kw", "label",
    "label_id", "confidence", "category", "equipment", "kind", "unknown", "unknown_reason",
    "true_label", "severity", "transfer_status", "impact_summary", "headline", "equipment_uncertain",
    "model_fingerprint", "user",
)
SORTABLE_COLUMNS: frozenset[str] = frozenset(LIST_COLUMNS)
TEXT_OPS = ("equals", "notEqual", "contains", "notContains", "startsWith", "endsWith", "blank", "notBlank")
#: columns whose sort follows a rank, not the alphabet (severity: info < minor < major < critical)
RANKED_COLUMNS: dict[str, tuple[str, ...]] = {"severity": SEVERITIES}
#: columns shown as another text than the one stored: their text filters match what is shown
DISPLAYED_AS = {"label": pretty_label}
_TEXT_MATCH = {
    "equals": lambda shown, wanted: shown == wanted,
    "notEqual": lambda shown, wanted: shown != wanted,
    "contains": lambda shown, wanted: wanted in shown,
    "notContains": lambda shown, wanted: wanted not in shown,
    "startsWith": lambda shown, wanted: shown.startswith(wanted),
    "endsWith": lambda shown, wanted: shown.endswith(wanted),
}
RANGE_OPS = (
    "equals", "notEqual", "lessThan", "lessThanOrEqual", "greaterThan", "greaterThanOrEqual",
    "inRange", "blank", "notBlank",
)
#: the filter types a client may send (the store's internal "in" is not one of them)
_AG_OPS = tuple(dict.fromkeys(TEXT_OPS + RANGE_OPS))
MAX_FILTERED_COLUMNS = 64
MAX_CONDITIONS = 16
MAX_FILTER_TEXT = 1000


class HistoryQueryError(ValueError):
    """A history query or record is malformed (unknown column, bad value); the message says which."""


@dataclass(frozen=True)
class ColumnFilter:
    """One condition on one column, in the vocabulary of AG Grid's simple filters."""

    column: str
    op: str = "equals"
    value: Any = None
    value_to: Any = None  # upper bound for "inRange"


@dataclass(frozen=True)
class FilterGroup:
    """Conditions on one column joined by AND or OR (AG Grid's two-condition filters)."""

    operator: str  # "and" | "or"
    filters: tuple[ColumnFilter, ...]


def filters_from_ag_grid(filter_model: Mapping[str, Any] | None) -> list[ColumnFilter | FilterGroup]:
    """Translate dash-ag-grid's `filterModel` (text, number, date, combined) into store filters.

    Anything that is not the shape AG Grid sends (a list for the model, a number for a condition,
    an unknown filter type, text with NUL characters) is a HistoryQueryError naming the column."""
    if not filter_model:
        return []
    if not isinstance(filter_model, Mapping):
        raise HistoryQueryError("the filter model must be an object of column: filter")
    if len(filter_model) > MAX_FILTERED_COLUMNS:
        raise HistoryQueryError(f"the filter model names {len(filter_model)} columns; at most {MAX_FILTERED_COLUMNS}")
    result: list[ColumnFilter | FilterGroup] = []
    for column, model in filter_model.items():
        if not isinstance(column, str) or column not in SORTABLE_COLUMNS:
            raise HistoryQueryError(f"cannot filter on {str(column)[:40]!r}: columns are {', '.join(LIST_COLUMNS)}")
        if not isinstance(model, Mapping):
            raise HistoryQueryError(f"filter for {column!r} must be an object")
        if "conditions" in model or "operator" in model:
            parts = model.get("conditions") or ()
            if not isinstance(parts, list | tuple) or len(parts) > MAX_CONDITIONS:
                raise HistoryQueryError(f"conditions of the filter for {column!r} must be a list of at most "
                                        f"{MAX_CONDITIONS} filters")
            conditions = tuple(_ag_condition(column, part) for part in parts)
            operator = model.get("operator", "AND")
            if not isinstance(operator, str) or operator.lower() not in {"and", "or"}:
                raise HistoryQueryError(f"filter operator for {column!r} must be AND or OR")
            operator = operator.lower()
            if conditions:
                result.append(FilterGroup(operator, conditions))
        else:
            result.append(_ag_condition(column, model))
    return result


def _ag_condition(column: str, model: Any) -> ColumnFilter:
    if not isinstance(model, Mapping):
        raise HistoryQueryError(f"each condition of the filter for {column!r} must be an object")
    op = model.get("type", "equals")
    if not isinstance(op, str) or op not in _AG_OPS:
        raise HistoryQueryError(f"filter type for {column!r} must be one of {', '.join(_AG_OPS)}")
    if model.get("filterType") == "date":
        return ColumnFilter(column, op, _scalar(model.get("dateFrom"), column), _scalar(model.get("dateTo"), column))
    if column in DISPLAYED_AS and op in _TEXT_MATCH:
        return displayed_text_filter(column, op, _scalar(model.get("filter"), column))
    return ColumnFilter(column, op, _scalar(model.get("filter"), column), _scalar(model.get("filterTo"), column))


def _scalar(value: Any, column: str) -> Any:
    """A filter value as AG Grid sends it: text (no NUL, bounded), a number, a boolean or null."""
    if value is None or isinstance(value, bool | int | float):
        return value
    if not isinstance(value, str):
        raise HistoryQueryError(f"the filter value for {column!r} must be text or a number")
    check_text(value, f"the filter value for {column!r}")
    return value


def check_text(value: str, name: str) -> str:
    """`value` if it can be compared in SQL (no NUL character, at most MAX_FILTER_TEXT characters)."""
    if len(value) > MAX_FILTER_TEXT:
        raise HistoryQueryError(f"{name} is longer than {MAX_FILTER_TEXT} characters")
    if "\x00" in value:
        raise HistoryQueryError(f"{name} holds a NUL character")
    return value


def displayed_text_filter(column: str, op: str, text: Any) -> ColumnFilter:
    """A text filter on what the grid shows for `column` (e.g. 'Capacitor switching' for the label
    'transient_capacitor_switching'), as the set of stored values that show a match (case-insensitive)."""
    wanted = str(text or "").strip().lower()
    show = DISPLAYED_AS[column]
    matching = tuple(value for value in LABELS if _TEXT_MATCH[op](show(value).lower(), wanted))
    return ColumnFilter(column, "in", matching)


def parse_sort(sort: Any) -> list[tuple[str, bool]]:
    """(column, descending) pairs from "-created_at", "confidence desc,label", [(col, "asc")] or
    AG Grid's sortModel [{"colId": ..., "sort": "asc"}]."""
    if sort is None or sort == "" or sort == []:
        return [("created_at", True)]
    items: list[tuple[str, bool]] = []
    if isinstance(sort, str):
        for part in sort.split(","):
            part = part.strip()
            if not part:
                continue
            pieces = part.split()
            name, descending = pieces[0], False
            if name.startswith("-"):
                name, descending = name[1:], True
            elif name.startswith("+"):
                name = name[1:]
            if len(pieces) > 1:
                descending = _direction(pieces[1])
            items.append((name, descending))
    elif isinstance(sort, Sequence):
        for entry in sort:
            if isinstance(entry, Mapping):
                items.append((str(entry.get("colId", "")), _direction(entry.get("sort", "asc"))))
            elif isinstance(entry, Sequence) and not isinstance(entry, str) and len(entry) == 2:
                items.append((str(entry[0]), _direction(entry[1])))
            else:
                raise HistoryQueryError(f"cannot read sort entry {entry!r}")
    else:
        raise HistoryQueryError(f"cannot read sort {sort!r}")
    for name, _ in items:
        if name not in SORTABLE_COLUMNS:
            raise HistoryQueryError(f"cannot sort by {name!r}: sortable columns are {', '.join(LIST_COLUMNS)}")
    return items or [("created_at", True)]


def _direction(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    lowered = str(value).strip().lower()
    if lowered in {"desc", "descending"}:
        return True
    if lowered in {"asc", "ascending"}:
        return False
    raise HistoryQueryError(f"sort direction must be asc or desc, got {value!r}")


def parse_time(value: datetime | str | None, name: str) -> datetime | None:
    """A timezone-aware UTC datetime from a datetime or an ISO 8601 string (naive means UTC)."""
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        parsed = value
    else:
        text = str(value).strip()
        try:
            if len(text) > 64:
                raise ValueError(text)
            parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
        except ValueError:
            raise HistoryQueryError(f"{name} must be an ISO 8601 time such as 2026-01-31T12:00:00Z") from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    try:
        return parsed.astimezone(UTC)
    except OverflowError:  # e.g. 0001-01-01T00:00+01:00 is before the first representable instant
        raise HistoryQueryError(f"{name} is outside the years 1 to 9999 in UTC") from None


def escape_like(value: str) -> str:
    return value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def as_number(value: Any, column: str) -> float:
    if isinstance(value, bool) or value is None:
        raise HistoryQueryError(f"filter on {column} needs a number")
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise HistoryQueryError(f"filter on {column} needs a number, got {value!r}") from None
    if number != number or number in (float("inf"), float("-inf")):
        raise HistoryQueryError(f"filter on {column} needs a finite number")
    return number


def as_bool(value: Any, column: str) -> bool:
    if isinstance(value, bool):
        return value
    lowered = str(value).strip().lower()
    if lowered in {"1", "true", "yes"}:
        return True
    if lowered in {"0", "false", "no"}:
        return False
    raise HistoryQueryError(f"filter on {column} needs true or false")
