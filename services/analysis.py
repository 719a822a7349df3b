"""The one analysis path (validate -> predict -> assess impact -> keep a history row) and the one
shape of its result, `Analysis`.

The JSON API (`POST /predict`) and the dashboard's callbacks both call `analyze`, so an analysis
means the same thing wherever it starts; the store keeps it (`Analysis.to_record`), the pages draw
it (`components.analysis_panels`) and the API renders it (`api_view`, `legacy_view`). This module also owns the safe lookup of sample files
(the original application joined a user-supplied name to a path and read any `.npy` on disk) and
the model status the health check and the dashboard banner show.

No Flask or Dash here: the web layers hand in the predictor and the store.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import lru_cache
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import unquote

import numpy as np

from services.grid import DEFAULT_TRANSFER_KW, MAX_TRANSFER_KW, RECEIVERS, SENDERS, Microgrid, microgrid
from services.history import SOURCES, HistoryStore, HistoryUnavailable, IdempotencyKeyTaken, parse_time
from services.inference.connections import check_relay_connection
from services.labels import label_parts, pretty_label
from services.rules import ImpactInputError, assess_impact
from services.waveform import WaveformError, validate_waveform

log = logging.getLogger(__name__)

#: key of the per-app AnalysisContext in `flask.current_app.extensions` (callbacks read it there)
EXTENSION_KEY = "grid_event_monitor"
SAMPLE_SUFFIX = ".npy"
_FORBIDDEN_NAME_CHARS = ("/", "\\", "\x00", ":")


class AnalysisError(ValueError):
    """Bad input to an analysis; `status_code` is the HTTP status an API should answer with."""

    status_code = 400


class SampleNotFound(AnalysisError):
    """The sample name is well formed but not a file of the sample folder."""

    status_code = 404


class IdempotencyConflict(AnalysisError):
    """An Idempotency-Key already used for a different request: nothing analysed, nothing written."""

    status_code = 422


class Predictor(Protocol):
    """What `analyze` needs from `services.inference.Predictor`."""

    fingerprint: str

    def predict(self, x: np.ndarray, relay_connection: str | None = None) -> Any: ...

    def describe(self, label: str) -> Mapping[str, Any]: ...


# -- samples ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class SampleEntry:
    name: str
    true_label: str | None
    true_label_id: int | None


@dataclass(frozen=True)
class SampleCatalog:
    """The `.npy` files of the sample folder (real files inside it only) and their true labels."""

    folder: Path
    entries: Mapping[str, SampleEntry] = field(default_factory=dict)

    def names(self) -> list[str]:
        return sorted(self.entries)


def sample_catalog(artifacts_dir: str | Path) -> SampleCatalog:
    """The current catalog; re-read only when the folder or samples_info.json changes (mtime)."""
    artifacts = Path(artifacts_dir)
    folder = artifacts / "sample_data"
    info_path = artifacts / "samples_info.json"
    return _catalog(str(folder), str(info_path), _mtime(folder), _mtime(info_path))


def _mtime(path: Path) -> int:
    try:
        return os.stat(path).st_mtime_ns
    except OSError:
        return -1


@lru_cache(maxsize=16)
def _catalog(folder: str, info_path: str, _folder_mtime: int, _info_mtime: int) -> SampleCatalog:
    real_folder = os.path.realpath(folder)
    info: dict[str, Any] = {}
    try:
        with open(info_path, encoding="utf-8") as handle:
            loaded = json.load(handle)
        if isinstance(loaded, dict):
            info = loaded
    except FileNotFoundError:
        pass
    except (OSError, ValueError) as exc:
        log.warning("cannot read %s: %s; true labels shown as N/A", info_path, exc)
    entries: dict[str, SampleEntry] = {}
    try:
        scanned = list(os.scandir(folder))
    except OSError:
        scanned = []
    for entry in scanned:
        if not entry.name.endswith(SAMPLE_SUFFIX) or entry.name.startswith("."):
            continue
        if not _inside(os.path.realpath(entry.path), real_folder) or not os.path.isfile(entry.path):
            log.warning("ignoring sample %s: it is not a regular file inside %s", entry.name, folder)
            continue
        meta = info.get(entry.name) if isinstance(info.get(entry.name), dict) else {}
        label = meta.get("true_label_str")
        label_id = meta.get("true_label_id")
        entries[entry.name] = SampleEntry(
            entry.name,
            label if isinstance(label, str) else None,
            label_id if isinstance(label_id, int) and not isinstance(label_id, bool) else None,
        )
    return SampleCatalog(Path(folder), entries)


def _inside(real_path: str, real_folder: str) -> bool:
    return os.path.commonpath([real_path, real_folder]) == real_folder and real_path != real_folder


def check_sample_name(name: object) -> str:
    """The name if it is a plain `.npy` file name; AnalysisError (400) for anything path-like."""
    if not isinstance(name, str):
        raise AnalysisError("sample_filename must be a string")
    if not name or len(name) > 255:
        raise AnalysisError("sample_filename must be a file name of 1 to 255 characters")
    decoded = unquote(name)
    if any(char in text for text in (name, decoded) for char in _FORBIDDEN_NAME_CHARS) or ".." in decoded:
        raise AnalysisError("sample_filename must be a plain file name from /api/samples, not a path")
    if decoded != name:
        raise AnalysisError("sample_filename must not be URL-encoded")
    if not name.endswith(SAMPLE_SUFFIX):
        raise AnalysisError(f"sample_filename must name a {SAMPLE_SUFFIX} file from /api/samples")
    return name


def resolve_sample(name: object, artifacts_dir: str | Path) -> tuple[Path, SampleEntry]:
    """The path of a sample in the sample folder, never outside it.

    Only names in the folder listing are accepted; the real path is checked again before use, so
    a symlink that points outside the folder (or is swapped in later) is refused.
    """
    checked = check_sample_name(name)
    catalog = sample_catalog(artifacts_dir)
    entry = catalog.entries.get(checked)
    if entry is None:
        raise SampleNotFound(f"unknown sample {checked!r}: see /api/samples for the available files")
    path = catalog.folder / checked
    if not _inside(os.path.realpath(path), os.path.realpath(catalog.folder)) or not path.is_file():
        raise SampleNotFound(f"unknown sample {checked!r}: see /api/samples for the available files")
    return path, entry


def load_sample(name: object, artifacts_dir: str | Path) -> tuple[np.ndarray, SampleEntry]:
    """The sample's waveform (float32 (3, 726), read-only) and its catalog entry."""
    path, entry = resolve_sample(name, artifacts_dir)
    stat = os.stat(path)
    return _load_array(str(path), stat.st_mtime_ns, stat.st_size), entry


@lru_cache(maxsize=512)
def _load_array(path: str, _mtime: int, _size: int) -> np.ndarray:
    try:
        array = np.load(path, allow_pickle=False)
        waveform = validate_waveform(array)
    except (OSError, ValueError) as exc:
        raise AnalysisError(f"sample {Path(path).name!r} is not a valid (3, 726) waveform: {exc}") from None
    waveform.setflags(write=False)
    return waveform


def list_samples(artifacts_dir: str | Path) -> list[dict[str, Any]]:
    """The samples the API and the dashboard offer, sorted by name."""
    catalog = sample_catalog(artifacts_dir)
    return [
        {"filename": entry.name, "true_label": entry.true_label, "true_label_id": entry.true_label_id}
        for entry in (catalog.entries[name] for name in catalog.names())
    ]


# -- validation ---------------------------------------------------------------------------------
def check_peers(sender: object, receiver: object) -> tuple[str, str]:
    """Sender and receiver ids of the microgrid (docs/contracts.md, "Microgrid ids"), distinct."""
    if not isinstance(sender, str) or not sender:
        raise AnalysisError("sender_peer must be a non-empty string")
    if not isinstance(receiver, str) or not receiver:
        raise AnalysisError("receiver_peer must be a non-empty string")
    if sender not in SENDERS:
        raise AnalysisError(f"unknown sender_peer {_quoted(sender)}: expected one of {', '.join(SENDERS)}")
    if receiver not in RECEIVERS:
        raise AnalysisError(f"unknown receiver_peer {_quoted(receiver)}: expected one of {', '.join(RECEIVERS)}")
    if sender == receiver:
        raise AnalysisError("sender_peer and receiver_peer must be different peers")
    return sender, receiver


def _quoted(text: str, limit: int = 40) -> str:
    """A client's text echoed in an error: quoted, and cut so a 1 MB field is not sent back whole."""
    return repr(text[:limit]) + ("..." if len(text) > limit else "")


def check_transfer_kw(value: object) -> float:
    """The P2P transfer in kW: a finite number, 0 to MAX_TRANSFER_KW; None means the default."""
    if value is None:
        return float(DEFAULT_TRANSFER_KW)
    if isinstance(value, bool) or not isinstance(value, int | float | np.integer | np.floating):
        raise AnalysisError("transfer_kw must be a number (kW)")
    number = float(value)
    if not math.isfinite(number):
        raise AnalysisError("transfer_kw must be a finite number")
    if not 0.0 <= number <= MAX_TRANSFER_KW:
        raise AnalysisError(f"transfer_kw must be between 0 and {MAX_TRANSFER_KW:g} kW")
    return number


# -- the analysis ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class Analysis:
    """One analysis, the only shape there is: made by `analyze`, kept by the history store
    (`to_record` / `from_record`), drawn by the pages and rendered by the API (`api_view`, with the
    original `/predict` fields in `legacy_view`).

    Values are kept as what they are (confidence a float, no label "N/A"); views format them. A new
    field is one line here plus the views that show it (`to_json` / `from_json` follow the fields).
    """

    # what was analysed
    source: str
    sender: str
    receiver: str
    transfer_kw: float
    waveform: tuple[tuple[float, ...], ...]  # (3, 726) in the window unit, phases A, B, C
    sample_name: str | None = None
    true_label: str | None = None
    #: where an uploaded window came from (`ComtradeWindow.to_dict()`), else None
    recording: Mapping[str, Any] | None = None
    #: how an upload's values became window values (`UnitConversion.to_dict()`), else None
    units: Mapping[str, Any] | None = None
    #: a simulated event's label, seed and parameters (what `simulate_event` used), else None
    simulation: Mapping[str, Any] | None = None
    #: the relay connection the user stated (services.inference.connections), None when not stated
    relay_connection: str | None = None
    # what the model answered (services.inference.Prediction)
    label: str = ""
    label_id: int = 0
    confidence: float = 0.0
    top5: tuple[tuple[str, float], ...] = ()
    #: probability of each category, equipment and kind (sums of the softmax over their labels)
    marginals: Mapping[str, Mapping[str, float]] = field(default_factory=dict)
    unknown: bool = False
    unknown_reason: str | None = None
    explanation: tuple[tuple[float, float], ...] = ()
    inception_ms: float | None = None
    saliency: tuple[float, ...] = ()
    levels: Mapping[str, Any] = field(default_factory=dict)
    headline: str = ""
    event_detected: bool = True
    # what it means (fault_descriptions.json) and what it does (services.rules.ImpactReport.to_dict())
    description: str = ""
    causes: tuple[str, ...] = ()
    impact: Mapping[str, Any] = field(default_factory=dict)
    # bookkeeping
    analysis_id: int | None = None
    created_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    model_fingerprint: str | None = None
    #: whether the history holds this analysis; when it could not be written, `save_error` says
    #: why (the analysis itself is complete and shown all the same)
    saved: bool = False
    save_error: str | None = None

    # -- derived ----------------------------------------------------------------------------------
    @property
    def parts(self) -> Any:
        """The label's category, equipment and kind (`services.labels.label_parts`)."""
        return label_parts(self.label)

    @property
    def pretty_label(self) -> str:
        return pretty_label(self.label)

    @property
    def equipment_uncertain(self) -> bool:
        return bool((self.levels.get("equipment") or {}).get("uncertain", False))

    @property
    def severity(self) -> str | None:
        return self.impact.get("severity")

    @property
    def transfer_status(self) -> str | None:
        return self.impact.get("transfer_status")

    @property
    def impact_summary(self) -> str | None:
        return self.impact.get("summary")

    def with_id(self, analysis_id: int | None) -> Analysis:
        return dataclasses.replace(self, analysis_id=analysis_id)

    # -- JSON (the browser's dcc.Store, the history's JSON column) --------------------------------
    def to_json(self, *, waveform: bool = True, saliency: bool = True) -> dict[str, Any]:
        """Every field as plain JSON (tuples as lists, the time as ISO 8601 UTC)."""
        data = {item.name: getattr(self, item.name) for item in dataclasses.fields(self)}
        data["created_at"] = _iso(self.created_at)
        if not waveform:
            data.pop("waveform")
        if not saliency:
            data.pop("saliency")
        return _plain_json(data)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Analysis:
        """The analysis `to_json` wrote (unknown keys ignored, missing ones at their defaults)."""
        known = {item.name for item in dataclasses.fields(cls)}
        values = {key: value for key, value in data.items() if key in known}
        values["waveform"] = _rows(values.get("waveform") or ())
        values["top5"] = tuple((str(name), float(p)) for name, p in values.get("top5") or ())
        values["explanation"] = tuple((float(a), float(b)) for a, b in values.get("explanation") or ())
        values["saliency"] = tuple(float(v) for v in values.get("saliency") or ())
        values["causes"] = tuple(str(cause) for cause in values.get("causes") or ())
        values["confidence"] = float(values.get("confidence") or 0.0)
        values["transfer_kw"] = float(values.get("transfer_kw") or 0.0)
        if values.get("created_at") is not None:
            values["created_at"] = parse_time(values["created_at"], "created_at")
        else:
            values.pop("created_at", None)
        return cls(**values)

    # -- the history row --------------------------------------------------------------------------
    def to_record(self) -> dict[str, Any]:
        """The history row: the columns the history lists, sorts and filters on, plus the rest of
        the analysis in the `prediction` JSON column (description and saliency are not kept)."""
        parts = self.parts
        columns = {
            "created_at": self.created_at, "source": self.source, "sample_name": self.sample_name,
            "sender": self.sender, "receiver": self.receiver, "transfer_kw": self.transfer_kw,
            "label": self.label, "label_id": self.label_id, "confidence": self.confidence,
            "category": parts.category, "equipment": parts.equipment, "kind": parts.kind,
            "unknown": self.unknown, "unknown_reason": self.unknown_reason, "true_label": self.true_label,
            "severity": self.severity, "transfer_status": self.transfer_status,
            "impact_summary": self.impact_summary, "headline": self.headline,
            "equipment_uncertain": self.equipment_uncertain, "impact": self.impact,
            "model_fingerprint": self.model_fingerprint, "recording": self.recording,
            "waveform": np.asarray(self.waveform, dtype=np.float32),
        }
        skipped = {*columns, "analysis_id", "description", "causes", "saliency", "saved", "save_error"}
        rest = {item.name: getattr(self, item.name) for item in dataclasses.fields(self) if item.name not in skipped}
        return {**columns, "prediction": _plain_json(rest)}

    @classmethod
    def from_record(cls, record: Mapping[str, Any], description: Mapping[str, Any] | None = None) -> Analysis:
        """The analysis of a stored row (`HistoryStore.get`), with the label's description.

        Rows written before this type kept the marginals as `category`/`equipment`/`kind` dicts in
        the JSON column: read them as marginals."""
        rest = dict(record.get("prediction") or {})
        if "marginals" not in rest:
            rest["marginals"] = {key: rest[key] for key in ("category", "equipment", "kind")
                                 if isinstance(rest.get(key), Mapping)}
        columns = {key: record.get(key) for key in (
            "created_at", "source", "sample_name", "sender", "receiver", "transfer_kw", "label", "label_id",
            "confidence", "unknown_reason", "true_label", "impact", "model_fingerprint", "recording", "waveform")}
        columns["unknown"] = bool(record.get("unknown"))
        columns["headline"] = record.get("headline") or rest.get("headline") or ""
        columns["impact"] = dict(columns["impact"] or {})
        description = description or {}
        return cls.from_json({**rest, **columns, "analysis_id": record.get("id"), "saved": True, "save_error": None,
                              "description": description.get("description", ""),
                              "causes": description.get("causes") or ()})


def legacy_view(analysis: Analysis) -> dict[str, Any]:
    """The original `/predict` response, field for field (docs/contracts.md, "The JSON API")."""
    return {
        "selected_sample": analysis.sample_name,
        "sender_peer": analysis.sender,
        "receiver_peer": analysis.receiver,
        "predicted_label": analysis.label,
        "confidence": format_confidence(analysis.confidence),
        "true_label": analysis.true_label or "N/A",
        "description": analysis.description,
        "causes": list(analysis.causes),
        "p2p_impact_details": dict(analysis.impact.get("p2p_impact_details") or {}),
        "waveform_data": [list(row) for row in analysis.waveform],
    }


def api_view(analysis: Analysis) -> dict[str, Any]:
    """What `/predict` and `/api/predict-file` answer: the original fields, then the extensions."""
    parts = analysis.parts
    return {
        **legacy_view(analysis),
        "analysis_id": analysis.analysis_id,
        "created_at": _iso(analysis.created_at),
        "source": analysis.source,
        "transfer_kw": analysis.transfer_kw,
        "label_id": analysis.label_id,
        "pretty_label": analysis.pretty_label,
        "confidence_value": analysis.confidence,
        "category": parts.category,
        "equipment": parts.equipment,
        "kind": parts.kind,
        "top5": [list(item) for item in analysis.top5],
        "marginals": dict(analysis.marginals),
        "levels": dict(analysis.levels),
        "headline": analysis.headline,
        "equipment_uncertain": analysis.equipment_uncertain,
        "event_detected": analysis.event_detected,
        "unknown": analysis.unknown,
        "unknown_reason": analysis.unknown_reason,
        "explanation": [list(span) for span in analysis.explanation],
        "inception_ms": analysis.inception_ms,
        "saliency": list(analysis.saliency),
        "severity": analysis.severity,
        "transfer_status": analysis.transfer_status,
        "impact_summary": analysis.impact_summary,
        "impact": dict(analysis.impact),
        "model_fingerprint": analysis.model_fingerprint,
        "recording": analysis.recording,
        "units": analysis.units,
        "simulation": analysis.simulation,
        "relay_connection": analysis.relay_connection,
        "saved": analysis.saved,
        "save_error": analysis.save_error,
    }


def _fields(prediction: Any) -> dict[str, Any]:
    """A Prediction's fields as a mapping for the impact rules, without copying them (its `to_dict`
    deep-copies the 726-value saliency, about 1 ms, on every request)."""
    return {item.name: getattr(prediction, item.name) for item in dataclasses.fields(prediction)}


def format_confidence(confidence: float) -> str:
    """The original API's confidence string, e.g. 0.99994 -> "99.99%"."""
    return f"{confidence * 100:.2f}%"


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _rows(waveform: Any) -> tuple[tuple[float, ...], ...]:
    """The window as tuples of Python floats (`tolist` makes them already; no per-value call)."""
    return tuple(map(tuple, np.asarray(waveform, dtype=np.float64).tolist())) if len(waveform) else ()


def _plain_json(value: Any) -> Any:
    """Tuples and numpy values as JSON types, mappings as dicts (recursively)."""
    kind = type(value)
    if kind is str or kind is float or kind is int or kind is bool or value is None:  # no ABC checks
        return value
    if isinstance(value, Mapping):
        return {str(key): _plain_json(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_plain_json(item) for item in value]
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    return value


# -- the path -----------------------------------------------------------------------------------
def analyze(
    waveform: Any,
    *,
    source: str,
    sender: str,
    receiver: str,
    transfer_kw: float | None = None,
    sample_name: str | None = None,
    true_label: str | None = None,
    recording: Mapping[str, Any] | None = None,
    units: Mapping[str, Any] | None = None,
    simulation: Mapping[str, Any] | None = None,
    predictor: Predictor,
    store: HistoryStore | None,
    grid: Microgrid | None = None,
    idempotency_key: str | None = None,
    request_digest: str | None = None,
    relay_connection: str | None = None,
) -> Analysis:
    """Classify one window, assess its impact on the P2P transfer and record it.

    Raises AnalysisError (bad input; nothing recorded). `recording`, `units` and `simulation` say
    where the window came from (a COMTRADE record, the unit conversion of an upload, a simulated
    event's parameters) and are kept with it. `store=None` skips the history row (then
    `analysis_id` is None); `grid` is the microgrid with the configured tariffs (default: built-in).

    The analysis is never lost to the history: when the row cannot be written the result comes
    back all the same, with `saved=False` and the reason in `save_error`.

    `idempotency_key` (with `request_digest`, a hash of the request it came with) makes a retry
    safe: when a row already holds the key, the same request gets that analysis back (its id and
    time, nothing written) and a different request raises IdempotencyConflict.

    `relay_connection` (one of services.inference.connections.RELAY_CONNECTIONS, or None / empty
    when not known) reads the window through the head fitted for that connection.
    """
    if source not in SOURCES:
        raise AnalysisError(f"source must be one of {', '.join(SOURCES)}")
    sender, receiver = check_peers(sender, receiver)
    kw = check_transfer_kw(transfer_kw)
    try:
        x = validate_waveform(waveform)
        connection = check_relay_connection(relay_connection)
    except (WaveformError, ValueError) as exc:
        raise AnalysisError(str(exc)) from None
    try:
        first = _first_with_key(store, idempotency_key, request_digest)
        lookup_error = None
    except HistoryUnavailable as exc:  # checked before inference; reported after it
        first, lookup_error = None, str(exc)

    try:
        prediction = predictor.predict(x) if connection is None else predictor.predict(x, relay_connection=connection)
    except ValueError as exc:  # a model without a head for the stated connection
        raise AnalysisError(str(exc)) from None
    try:
        report = assess_impact(_fields(prediction), sender, receiver, kw, grid=grid)
    except ImpactInputError as exc:
        raise AnalysisError(str(exc)) from None
    description = predictor.describe(prediction.label)
    analysis = Analysis(
        source=source, sender=sender, receiver=receiver, transfer_kw=kw, waveform=_rows(x),
        sample_name=sample_name, true_label=true_label,
        recording=dict(recording) if recording else None, units=dict(units) if units else None,
        simulation=_plain_json(dict(simulation)) if simulation else None, relay_connection=connection,
        label=prediction.label, label_id=int(prediction.label_id), confidence=float(prediction.confidence),
        top5=tuple((str(name), float(p)) for name, p in prediction.top5),
        marginals={"category": prediction.category, "equipment": prediction.equipment, "kind": prediction.kind},
        unknown=bool(prediction.unknown), unknown_reason=prediction.unknown_reason,
        explanation=tuple((float(a), float(b)) for a, b in prediction.explanation),
        inception_ms=prediction.inception_ms,
        saliency=tuple(np.asarray(prediction.saliency, dtype=np.float64).tolist()),
        levels=prediction.levels, headline=prediction.headline, event_detected=bool(prediction.event_detected),
        description=str(description.get("description", "")), causes=tuple(description.get("causes", ())),
        impact=report.to_dict(), model_fingerprint=getattr(predictor, "fingerprint", None),
    )
    if store is None:
        return analysis
    if first is not None:
        return _replayed(analysis, first)
    if lookup_error is not None:  # the history just failed: do not wait for it a second time
        log.warning("analysis not saved to the history: %s", lookup_error)
        return dataclasses.replace(analysis, saved=False, save_error=lookup_error)
    record = analysis.to_record()
    if idempotency_key is not None:
        record.update(idempotency_key=idempotency_key, request_digest=request_digest)
    try:
        analysis_id = store.add(record)
    except IdempotencyKeyTaken:  # a request with the same key wrote first, just now
        try:
            first = _first_with_key(store, idempotency_key, request_digest)
        except HistoryUnavailable as exc:
            return dataclasses.replace(analysis, saved=False, save_error=str(exc))
        if first is not None:
            return _replayed(analysis, first)
        return dataclasses.replace(analysis, saved=False, save_error="the history lost the first request's row")
    except HistoryUnavailable as exc:
        log.warning("analysis not saved to the history: %s", exc)
        return dataclasses.replace(analysis, saved=False, save_error=str(exc))
    return dataclasses.replace(analysis, analysis_id=analysis_id, saved=True)


def _first_with_key(store: HistoryStore | None, key: str | None, digest: str | None) -> dict[str, Any] | None:
    """The row already written with this Idempotency-Key ({"id", "created_at", ...}), or None;
    IdempotencyConflict when it came with another request, HistoryUnavailable when the history
    cannot tell."""
    if store is None or key is None:
        return None
    first = store.find_by_idempotency_key(key)
    if first is not None and first.get("request_digest") != digest:
        raise IdempotencyConflict("this Idempotency-Key was already used for a different request; "
                                  "use a new key for a new request")
    return first


def _replayed(analysis: Analysis, first: Mapping[str, Any]) -> Analysis:
    """The retried request's answer: this (identical) analysis under the first one's id and time."""
    return dataclasses.replace(analysis, analysis_id=int(first["id"]),
                               created_at=parse_time(first["created_at"], "created_at"), saved=True)


def analyze_sample(
    name: object,
    *,
    artifacts_dir: str | Path,
    sender: str,
    receiver: str,
    transfer_kw: float | None = None,
    predictor: Predictor,
    store: HistoryStore | None,
    grid: Microgrid | None = None,
) -> Analysis:
    """`analyze` on a file of the sample folder, with its true label from samples_info.json."""
    check_peers(sender, receiver)
    check_transfer_kw(transfer_kw)
    waveform, entry = load_sample(name, artifacts_dir)
    return analyze(
        waveform,
        source="sample",
        sender=sender,
        receiver=receiver,
        transfer_kw=transfer_kw,
        sample_name=entry.name,
        true_label=entry.true_label,
        predictor=predictor,
        store=store,
        grid=grid,
    )


def parse_analysis_id(value: object) -> int | None:
    """A positive integer id from a URL or a request, or None for anything else."""
    text = str(value if value is not None else "").strip()
    if not text.isdigit() or len(text) > 18:
        return None
    number = int(text)
    return number if number > 0 else None


# -- model status -------------------------------------------------------------------------------
@dataclass(frozen=True)
class ModelStatus:
    """Whether the model can answer, and if not why (shown by /api/health and the dashboard banner)."""

    loaded: bool
    message: str
    fingerprint: str | None = None
    backend: str | None = None
    artifacts_dir: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "loaded": self.loaded,
            "message": self.message,
            "fingerprint": self.fingerprint,
            "backend": self.backend,
            "artifacts_dir": self.artifacts_dir,
        }


def get_model(artifacts_dir: str | Path | None, options: Any = None) -> Predictor:
    """The process's predictor for that folder, loaded on first use (never at import, never before
    fork); `options` is a `services.inference.InferenceOptions` (None: defaults). Raises
    `services.inference.ModelUnavailable` with the reason."""
    from services.inference import ModelUnavailable, get_predictor  # torch is imported here, in the worker

    try:
        return get_predictor(artifacts_dir, options=options)
    except ModelUnavailable:
        raise
    except Exception as exc:  # a corrupt checkpoint fails in many ways (pickle, index, key errors)
        log.warning("model failed to load from %s: %s: %s", artifacts_dir, type(exc).__name__, exc)
        raise ModelUnavailable(f"cannot load the model from {artifacts_dir}: {type(exc).__name__}: {exc}") from None


def model_status(artifacts_dir: str | Path | None = None, options: Any = None) -> ModelStatus:
    """Load the model if needed and say whether it is usable; never raises for a missing model."""
    from services.inference import ModelUnavailable

    folder = str(artifacts_dir) if artifacts_dir is not None else None
    try:
        predictor = get_model(artifacts_dir, options)
    except ModelUnavailable as exc:
        return ModelStatus(False, f"model unavailable: {exc}", artifacts_dir=folder)
    return ModelStatus(
        True,
        "model loaded",
        fingerprint=getattr(predictor, "fingerprint", None),
        backend=getattr(predictor, "backend", None),
        artifacts_dir=folder,
    )


def warm_up(artifacts_dir: str | Path, options: Any = None) -> ModelStatus:
    """Load the model and run one whole analysis (nothing recorded) before taking traffic.

    The first analysis of a process imports the power-flow stack and builds the network (seconds);
    done here, right after fork, it is not paid by the first requests, which would otherwise
    queue behind it.
    """
    status = model_status(artifacts_dir, options)
    if status.loaded:
        try:
            analyze(
                np.zeros((3, 726), dtype=np.float32),
                source="api",
                sender=SENDERS[0],
                receiver=next(peer for peer in RECEIVERS if peer != SENDERS[0]),
                predictor=get_model(artifacts_dir, options),
                store=None,
            )
        except Exception:
            log.exception("warm-up analysis failed")
    return status


@dataclass(frozen=True)
class AnalysisContext:
    """What a web layer needs per app: the artifacts folder and the history store.

    Stored on the Flask app at `extensions[EXTENSION_KEY]`; callbacks reach it through
    `flask.current_app.extensions[EXTENSION_KEY]` (no module-level state, one per app).
    """

    artifacts_dir: Path
    store: HistoryStore
    settings: Any = None
    #: the microgrid with the configured tariffs (`microgrid().with_tariffs(settings.tariffs())`)
    grid: Microgrid = field(default_factory=microgrid)
    #: how the model runs (`services.inference.InferenceOptions`, built from the settings); None: defaults
    inference: Any = None

    def predictor(self) -> Predictor:
        """The loaded predictor, or `services.inference.ModelUnavailable`."""
        return get_model(self.artifacts_dir, self.inference)

    def model_status(self) -> ModelStatus:
        """The model's status for people (banner, Model page, /api/health): the server's folder is
        not named, the setting that chooses it is."""
        status = model_status(self.artifacts_dir, self.inference)
        message = status.message.replace(str(self.artifacts_dir), "GEM_ARTIFACTS_DIR")
        return dataclasses.replace(status, message=message, artifacts_dir=None)

    def samples(self) -> list[dict[str, Any]]:
        return list_samples(self.artifacts_dir)

    def load_sample(self, name: object) -> tuple[np.ndarray, SampleEntry]:
        return load_sample(name, self.artifacts_dir)

    def analyze(self, waveform: Any, **kwargs: Any) -> Analysis:
        """`analyze` with this app's predictor and store filled in."""
        return analyze(waveform, predictor=self.predictor(), store=self.store, grid=self.grid, **kwargs)

    def describe(self, label: str) -> dict[str, Any]:
        """The label's description from the model's artifacts, or the built-in one without a model."""
        try:
            return dict(self.predictor().describe(label))
        except Exception:  # model missing: a stored analysis must still open
            from services.inference.descriptions import describe_label

            return dict(describe_label(label))

    def load(self, analysis_id: object) -> Analysis | None:
        """The stored analysis `analysis_id` (an int or the text of a URL), or None when the id is
        malformed or unknown."""
        number = parse_analysis_id(analysis_id)
        record = self.store.get(number) if number is not None else None
        if record is None:
            return None
        return Analysis.from_record(record, self.describe(record["label"]))

    def exists(self, analysis_id: object) -> bool:
        number = parse_analysis_id(analysis_id)
        return number is not None and self.store.get(number, include_waveform=False) is not None

    def analyze_sample(self, name: object, **kwargs: Any) -> Analysis:
        return analyze_sample(
            name, artifacts_dir=self.artifacts_dir, predictor=self.predictor(), store=self.store, grid=self.grid,
            **kwargs
        )
