"""The one analysis path: validate -> predict -> assess impact -> keep a history row.

The JSON API (`POST /predict`) and the dashboard's callbacks both call `analyze`, so an analysis
means the same thing wherever it starts. This module also owns the safe lookup of sample files
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

from services.grid import DEFAULT_TRANSFER_KW, MAX_TRANSFER_KW, RECEIVERS, SENDERS
from services.history import SOURCES, HistoryStore
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


class Predictor(Protocol):
    """What `analyze` needs from `services.inference.Predictor`."""

    fingerprint: str

    def predict(self, x: np.ndarray) -> Any: ...

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
    """Sender and receiver ids of the microgrid (DESIGN.md section 7), distinct."""
    if not isinstance(sender, str) or not sender:
        raise AnalysisError("sender_peer must be a non-empty string")
    if not isinstance(receiver, str) or not receiver:
        raise AnalysisError("receiver_peer must be a non-empty string")
    if sender not in SENDERS:
        raise AnalysisError(f"unknown sender_peer {sender!r}: expected one of {', '.join(SENDERS)}")
    if receiver not in RECEIVERS:
        raise AnalysisError(f"unknown receiver_peer {receiver!r}: expected one of {', '.join(RECEIVERS)}")
    if sender == receiver:
        raise AnalysisError("sender_peer and receiver_peer must be different peers")
    return sender, receiver


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


def prediction_fields(prediction: Any) -> dict[str, Any]:
    """The prediction's fields as a dict, without copying them.

    `Prediction.to_dict()` deep-copies every field (dataclasses.asdict), about 1 ms a call for the
    726-value saliency, on the hot path of every request; the fields are immutable, so a shallow
    view is enough (tuples inside are written as JSON arrays by every encoder we use).
    """
    if dataclasses.is_dataclass(prediction) and not isinstance(prediction, type):
        return {item.name: getattr(prediction, item.name) for item in dataclasses.fields(prediction)}
    return dict(prediction.to_dict())


def format_confidence(confidence: float) -> str:
    """The original API's confidence string, e.g. 0.99994 -> "99.99%"."""
    return f"{confidence * 100:.2f}%"


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
    predictor: Predictor,
    store: HistoryStore | None,
) -> dict[str, Any]:
    """Classify one window, assess its impact on the P2P transfer and record it.

    Raises AnalysisError (bad input; nothing recorded). Returns a JSON-able dict holding every
    field of the original `/predict` response plus the extensions (analysis id, top-5, marginals,
    unknown flag, explanation, inception, saliency, the full impact report). `recording` says
    where an uploaded window came from (a COMTRADE record's `ComtradeWindow.to_dict()`); it is
    kept with the history row and echoed. `store=None` skips the history row (analysis_id is
    then None).
    """
    if source not in SOURCES:
        raise AnalysisError(f"source must be one of {', '.join(SOURCES)}")
    sender, receiver = check_peers(sender, receiver)
    kw = check_transfer_kw(transfer_kw)
    try:
        x = validate_waveform(waveform)
    except WaveformError as exc:
        raise AnalysisError(str(exc)) from None

    prediction = predictor.predict(x)
    predicted = prediction_fields(prediction)
    label = predicted["label"]
    try:
        report = assess_impact(predicted, sender, receiver, kw)
    except ImpactInputError as exc:
        raise AnalysisError(str(exc)) from None
    description = predictor.describe(label)
    parts = label_parts(label)
    impact = report.to_dict()
    confidence = float(predicted["confidence"])
    fingerprint = getattr(predictor, "fingerprint", None)
    recorded_from = dict(recording) if recording else None

    analysis_id: int | None = None
    created = datetime.now(UTC)
    if store is not None:
        record = {
            "created_at": created,
            "source": source,
            "sample_name": sample_name,
            "sender": sender,
            "receiver": receiver,
            "transfer_kw": kw,
            "label": label,
            "label_id": int(predicted["label_id"]),
            "confidence": confidence,
            "category": parts.category,
            "equipment": parts.equipment,
            "kind": parts.kind,
            "unknown": bool(predicted.get("unknown", False)),
            "unknown_reason": predicted.get("unknown_reason"),
            "true_label": true_label,
            "severity": str(report.severity),
            "transfer_status": str(report.transfer_status),
            "impact_summary": report.summary,
            "impact": impact,
            "prediction": {key: value for key, value in predicted.items() if key != "saliency"},
            "model_fingerprint": fingerprint,
            "recording": recorded_from,
            "waveform": x,
        }
        analysis_id = store.add(record)

    return {
        # the original response, field for field (DESIGN.md section 6)
        "selected_sample": sample_name,
        "sender_peer": sender,
        "receiver_peer": receiver,
        "predicted_label": label,
        "confidence": format_confidence(confidence),
        "true_label": true_label or "N/A",
        "description": description.get("description", ""),
        "causes": list(description.get("causes", [])),
        "p2p_impact_details": report.p2p_impact_details(),
        "waveform_data": x.tolist(),
        # extensions
        "analysis_id": analysis_id,
        "created_at": created.isoformat().replace("+00:00", "Z"),
        "source": source,
        "transfer_kw": kw,
        "label_id": int(predicted["label_id"]),
        "pretty_label": pretty_label(label),
        "confidence_value": confidence,
        "category": parts.category,
        "equipment": parts.equipment,
        "kind": parts.kind,
        "top5": predicted.get("top5"),
        "marginals": {
            "category": predicted.get("category"),
            "equipment": predicted.get("equipment"),
            "kind": predicted.get("kind"),
        },
        "unknown": bool(predicted.get("unknown", False)),
        "unknown_reason": predicted.get("unknown_reason"),
        "explanation": predicted.get("explanation"),
        "inception_ms": predicted.get("inception_ms"),
        "saliency": predicted.get("saliency"),
        "severity": str(report.severity),
        "transfer_status": str(report.transfer_status),
        "impact_summary": report.summary,
        "impact": impact,
        "model_fingerprint": fingerprint,
        "recording": recorded_from,
    }


def analyze_sample(
    name: object,
    *,
    artifacts_dir: str | Path,
    sender: str,
    receiver: str,
    transfer_kw: float | None = None,
    predictor: Predictor,
    store: HistoryStore | None,
) -> dict[str, Any]:
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
    )


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


def get_model(artifacts_dir: str | Path | None) -> Predictor:
    """The process's predictor for that folder, loaded on first use (never at import, never before
    fork); raises `services.inference.ModelUnavailable` with the reason."""
    from services.inference import ModelUnavailable, get_predictor  # torch is imported here, in the worker

    try:
        return get_predictor(artifacts_dir)
    except ModelUnavailable:
        raise
    except Exception as exc:  # a corrupt checkpoint fails in many ways (pickle, index, key errors)
        log.warning("model failed to load from %s: %s: %s", artifacts_dir, type(exc).__name__, exc)
        raise ModelUnavailable(f"cannot load the model from {artifacts_dir}: {type(exc).__name__}: {exc}") from None


def model_status(artifacts_dir: str | Path | None = None) -> ModelStatus:
    """Load the model if needed and say whether it is usable; never raises for a missing model."""
    from services.inference import ModelUnavailable

    folder = str(artifacts_dir) if artifacts_dir is not None else None
    try:
        predictor = get_model(artifacts_dir)
    except ModelUnavailable as exc:
        return ModelStatus(False, f"model unavailable: {exc}", artifacts_dir=folder)
    return ModelStatus(
        True,
        "model loaded",
        fingerprint=getattr(predictor, "fingerprint", None),
        backend=getattr(predictor, "backend", None),
        artifacts_dir=folder,
    )


def warm_up(artifacts_dir: str | Path) -> ModelStatus:
    """Load the model and run one whole analysis (nothing recorded) before taking traffic.

    The first analysis of a process imports the power-flow stack and builds the network (seconds);
    done here, right after fork, it is not paid by the first requests, which would otherwise
    queue behind it.
    """
    status = model_status(artifacts_dir)
    if status.loaded:
        try:
            analyze(
                np.zeros((3, 726), dtype=np.float32),
                source="api",
                sender=SENDERS[0],
                receiver=next(peer for peer in RECEIVERS if peer != SENDERS[0]),
                predictor=get_model(artifacts_dir),
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

    def predictor(self) -> Predictor:
        """The loaded predictor, or `services.inference.ModelUnavailable`."""
        return get_model(self.artifacts_dir)

    def model_status(self) -> ModelStatus:
        return model_status(self.artifacts_dir)

    def samples(self) -> list[dict[str, Any]]:
        return list_samples(self.artifacts_dir)

    def load_sample(self, name: object) -> tuple[np.ndarray, SampleEntry]:
        return load_sample(name, self.artifacts_dir)

    def analyze(self, waveform: Any, **kwargs: Any) -> dict[str, Any]:
        """`analyze` with this app's predictor and store filled in."""
        return analyze(waveform, predictor=self.predictor(), store=self.store, **kwargs)

    def analyze_sample(self, name: object, **kwargs: Any) -> dict[str, Any]:
        return analyze_sample(
            name, artifacts_dir=self.artifacts_dir, predictor=self.predictor(), store=self.store, **kwargs
        )
