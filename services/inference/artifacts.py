"""Reading and checking an artifacts folder (docs/contracts.md, "Artifacts"), ours or the original application's.

Required: `best_model.pth` (ConvNet state_dict), `labels.json`, `normalization_stats.npz`.
Optional extras that the original application ignores: `fault_descriptions.json`,
`calibration.json` (temperatures, DC evidence), `model_card.json`, `unknown_detector.npz`,
`connection_heads.npz` (services.inference.connections). A folder without them works: temperature 1, our own descriptions, signal checks only for the unknown flag.
"""

from __future__ import annotations

import hashlib
import json
import pickle
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from services.inference.connections import CONNECTION_HEADS_FILE, ConnectionHeads
from services.inference.dc_evidence import CALIBRATION_KEY as DC_EVIDENCE_KEY
from services.inference.dc_evidence import DcEvidence
from services.inference.descriptions import fault_descriptions
from services.inference.errors import ModelUnavailable
from services.inference.levels import LOGIT_OFFSETS_KEY
from services.inference.unknown import DETECTOR_FILE, FeatureDetector
from services.labels import LABEL_TO_ID
from services.model import INPUT_SCALINGS, ConvNet, n_classes_of, strip_wrapper_prefix

MODEL_FILE = "best_model.pth"
LABELS_FILE = "labels.json"
NORMALIZATION_FILE = "normalization_stats.npz"
DESCRIPTIONS_FILE = "fault_descriptions.json"
CALIBRATION_FILE = "calibration.json"
MODEL_CARD_FILE = "model_card.json"
REQUIRED_FILES = (MODEL_FILE, LABELS_FILE, NORMALIZATION_FILE)
OPTIONAL_FILES = (DESCRIPTIONS_FILE, CALIBRATION_FILE, MODEL_CARD_FILE, DETECTOR_FILE, CONNECTION_HEADS_FILE)
#: the setting that chooses the folder in the web app (named in messages, never read here)
ARTIFACTS_SETTING = "GEM_ARTIFACTS_DIR"
REPO_ARTIFACTS_DIR = Path(__file__).resolve().parents[2] / "artifacts"


@dataclass(frozen=True)
class Artifacts:
    """Everything read from one artifacts folder, checked for consistency."""

    folder: Path
    model: ConvNet  # eval mode, CPU, float32
    labels: tuple[str, ...]
    mean: np.ndarray  # (1, 3, 1) float32
    std: np.ndarray  # (1, 3, 1) float32
    temperature: float
    input_scaling: str  # "none" (the original application's) or "window_peak" (ours)
    #: per-level temperatures (services.inference.levels); a folder without them uses `temperature`
    temperature_kind: float
    temperature_equipment: float
    descriptions: dict[str, dict]
    model_card: dict | None
    detector: FeatureDetector | None
    #: p(DC share | transient kind) (services.inference.dc_evidence); None: not applied
    dc_evidence: DcEvidence | None
    #: per-label offsets added to the logits (services.inference.levels.prior_correction); None: none
    logit_offsets: np.ndarray | None
    #: one head per stated relay connection (services.inference.connections); None: none fitted
    connection_heads: ConnectionHeads | None
    fingerprint: str  # over every artifact file present
    model_fingerprint: str  # over what fixes the network's numbers (weights, normalisation)


def resolve_artifacts_dir(artifacts_dir: str | Path | None = None) -> Path:
    """The folder to use: the argument, else `<repo>/artifacts`."""
    if artifacts_dir is None or str(artifacts_dir) == "":
        artifacts_dir = REPO_ARTIFACTS_DIR
    return Path(artifacts_dir).expanduser().resolve()


def folder_stamp(folder: Path) -> tuple:
    """Cheap change detector: (name, size, mtime) of the artifact files present."""
    stamp = []
    for name in REQUIRED_FILES + OPTIONAL_FILES:
        try:
            stat = (folder / name).stat()
        except OSError:
            continue
        stamp.append((name, stat.st_size, stat.st_mtime_ns))
    return tuple(stamp)


def load_artifacts(folder: Path) -> Artifacts:
    """Read and check the folder; ModelUnavailable with the reason if anything required is wrong."""
    if not folder.is_dir():
        raise ModelUnavailable(
            f"artifacts folder {folder} does not exist; train a model (python -m services.training) "
            f"or set {ARTIFACTS_SETTING} to a folder holding {', '.join(REQUIRED_FILES)}"
        )
    missing = [name for name in REQUIRED_FILES if not (folder / name).is_file()]
    if missing:
        raise ModelUnavailable(f"artifacts folder {folder} lacks {', '.join(missing)}")
    labels = _read_labels(folder / LABELS_FILE)
    mean, std = _read_normalization(folder / NORMALIZATION_FILE)
    model = _read_model(folder / MODEL_FILE, len(labels))
    descriptions = fault_descriptions()
    if (folder / DESCRIPTIONS_FILE).is_file():
        descriptions.update(_read_descriptions(folder / DESCRIPTIONS_FILE))
    temperature = _read_temperature(folder / CALIBRATION_FILE)
    temperature_kind = _read_temperature(folder / CALIBRATION_FILE, "temperature_kind", temperature)
    temperature_equipment = _read_temperature(folder / CALIBRATION_FILE, "temperature_equipment", temperature)
    input_scaling = _read_input_scaling(folder / CALIBRATION_FILE)
    dc_evidence = _read_dc_evidence(folder / CALIBRATION_FILE)
    logit_offsets = _read_logit_offsets(folder / CALIBRATION_FILE, len(labels))
    model_card = _read_json(folder / MODEL_CARD_FILE) if (folder / MODEL_CARD_FILE).is_file() else None
    detector = None
    if (folder / DETECTOR_FILE).is_file():
        try:
            detector = FeatureDetector.load(folder / DETECTOR_FILE)
        except (OSError, ValueError, KeyError, IndexError, zipfile.BadZipFile) as exc:
            raise ModelUnavailable(f"{folder / DETECTOR_FILE} is corrupt: {exc}") from None
        if detector.centres.shape[1] != model.cls[0].out_features:
            raise ModelUnavailable(f"{folder / DETECTOR_FILE} does not match the model's hidden size")
    connection_heads = None
    if (folder / CONNECTION_HEADS_FILE).is_file():
        try:
            connection_heads = ConnectionHeads.load(folder / CONNECTION_HEADS_FILE, len(labels), model.cls[0].out_features)
        except ValueError as exc:
            raise ModelUnavailable(f"{folder / CONNECTION_HEADS_FILE} is corrupt: {exc}") from None
    return Artifacts(
        folder=folder,
        model=model,
        labels=labels,
        mean=mean,
        std=std,
        temperature=temperature,
        input_scaling=input_scaling,
        temperature_kind=temperature_kind,
        temperature_equipment=temperature_equipment,
        descriptions=descriptions,
        model_card=model_card if isinstance(model_card, dict) else None,
        detector=detector,
        dc_evidence=dc_evidence,
        logit_offsets=logit_offsets,
        connection_heads=connection_heads,
        fingerprint=_hash_files(folder, REQUIRED_FILES + OPTIONAL_FILES),
        model_fingerprint=_hash_files(folder, (MODEL_FILE, NORMALIZATION_FILE)) + f"-{input_scaling}",
    )


def _hash_files(folder: Path, names: tuple[str, ...]) -> str:
    digest = hashlib.sha256()
    for name in names:
        path = folder / name
        if path.is_file():
            digest.update(name.encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def _read_json(path: Path) -> object:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ModelUnavailable(f"{path} is not readable JSON: {exc}") from None


def _read_labels(path: Path) -> tuple[str, ...]:
    raw = _read_json(path)
    if isinstance(raw, list):
        raw = {str(i): label for i, label in enumerate(raw)}
    if not isinstance(raw, dict) or not raw:
        raise ModelUnavailable(f"{path} must map ids to labels, e.g. {{\"0\": \"{next(iter(LABEL_TO_ID))}\"}}")
    try:
        ids = sorted(int(key) for key in raw)
    except ValueError:
        raise ModelUnavailable(f"{path}: keys must be label ids 0, 1, 2, ...") from None
    if ids != list(range(len(ids))):
        raise ModelUnavailable(f"{path}: ids must run from 0 to {len(ids) - 1} without gaps")
    labels = tuple(str(raw[str(i)]) for i in ids)
    unknown = [label for label in labels if label not in LABEL_TO_ID]
    if unknown:
        raise ModelUnavailable(f"{path}: unknown label(s) {', '.join(unknown[:3])}; expected those of docs/contracts.md")
    return labels


def _read_normalization(path: Path) -> tuple[np.ndarray, np.ndarray]:
    try:
        with np.load(path, allow_pickle=False) as data:
            mean = np.asarray(data["mean"], dtype=np.float32)
            std = np.asarray(data["std"], dtype=np.float32)
    except (OSError, ValueError, KeyError, zipfile.BadZipFile) as exc:
        raise ModelUnavailable(f"{path} is corrupt or lacks 'mean'/'std': {exc}") from None
    if mean.size != 3 or std.size != 3:
        raise ModelUnavailable(f"{path}: mean and std must hold 3 values (shape (1, 3, 1)), got {mean.shape}, {std.shape}")
    mean, std = mean.reshape(1, 3, 1), std.reshape(1, 3, 1)
    if not (np.isfinite(mean).all() and np.isfinite(std).all() and (std >= 0).all()):
        raise ModelUnavailable(f"{path}: mean/std must be finite and std non-negative")
    return mean, std


def _read_model(path: Path, n_labels: int) -> ConvNet:
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except (OSError, RuntimeError, EOFError, pickle.UnpicklingError, zipfile.BadZipFile, ValueError) as exc:
        raise ModelUnavailable(
            f"{path} cannot be read as a state_dict ({str(exc).splitlines()[0] if str(exc) else type(exc).__name__}); "
            "expected torch.save(model.state_dict(), path)"
        ) from None
    if isinstance(state, dict) and "state_dict" in state and isinstance(state["state_dict"], dict):
        state = state["state_dict"]
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise ModelUnavailable(f"{path} is not a state_dict of tensors")
    state = strip_wrapper_prefix(state)
    try:
        n_classes = n_classes_of(state)
    except KeyError:
        raise ModelUnavailable(f"{path} is not a ConvNet state_dict (no 'cls.3.weight')") from None
    if n_classes != n_labels:
        raise ModelUnavailable(f"{path} has {n_classes} outputs but labels.json names {n_labels} labels")
    model = ConvNet(n_classes)
    try:
        model.load_state_dict({key: value.float() for key, value in state.items()})
    except RuntimeError as exc:
        raise ModelUnavailable(f"{path} does not fit the ConvNet of docs/contracts.md: {str(exc).splitlines()[0]}") from None
    return model.eval()


def _read_descriptions(path: Path) -> dict[str, dict]:
    raw = _read_json(path)
    if not isinstance(raw, dict):
        raise ModelUnavailable(f"{path} must map labels to {{description, causes}}")
    result = {}
    for label, entry in raw.items():
        if isinstance(entry, dict) and isinstance(entry.get("description"), str):
            causes = entry.get("causes", [])
            result[str(label)] = {
                "description": entry["description"],
                "causes": [str(c) for c in causes] if isinstance(causes, list) else [str(causes)],
            }
    return result


def _read_temperature(path: Path, key: str = "temperature", default: float = 1.0) -> float:
    """A positive temperature from calibration.json; `default` when the file or an optional key is absent."""
    if not path.is_file():
        return default
    raw = _read_json(path)
    if key != "temperature" and (not isinstance(raw, dict) or key not in raw):
        return default
    temperature = raw.get(key) if isinstance(raw, dict) else None
    if isinstance(temperature, bool) or not isinstance(temperature, int | float) or not np.isfinite(temperature) \
            or temperature <= 0:
        raise ModelUnavailable(f"{path}: {key!r} must be a positive number")
    return float(temperature)


def _read_input_scaling(path: Path) -> str:
    """How the windows are scaled after normalisation; a folder without calibration.json: none."""
    if not path.is_file():
        return "none"
    raw = _read_json(path)
    scaling = raw.get("input_scaling", "none") if isinstance(raw, dict) else "none"
    if scaling not in INPUT_SCALINGS:
        raise ModelUnavailable(f"{path}: 'input_scaling' must be one of {', '.join(INPUT_SCALINGS)}")
    return str(scaling)


def _calibration_entry(path: Path, key: str) -> object | None:
    """calibration.json's entry `key`; None when the file or the key is absent."""
    if not path.is_file():
        return None
    raw = _read_json(path)
    return raw.get(key) if isinstance(raw, dict) else None


def _read_logit_offsets(path: Path, n_labels: int) -> np.ndarray | None:
    """calibration.json's per-label logit offsets; None when the file or the key is absent."""
    entry = _calibration_entry(path, LOGIT_OFFSETS_KEY)
    if entry is None:
        return None
    try:
        offsets = np.asarray(entry, dtype=np.float64)
    except (TypeError, ValueError):
        offsets = np.empty(0)
    if offsets.shape != (n_labels,) or not np.isfinite(offsets).all():
        raise ModelUnavailable(f"{path}: {LOGIT_OFFSETS_KEY!r} must be a list of {n_labels} finite numbers, "
                               "one per label")
    return offsets


def _read_dc_evidence(path: Path) -> DcEvidence | None:
    """calibration.json's DC evidence; None when the file or the key is absent."""
    entry = _calibration_entry(path, DC_EVIDENCE_KEY)
    if entry is None:
        return None
    try:
        return DcEvidence.from_dict(entry)
    except (TypeError, ValueError) as exc:
        raise ModelUnavailable(f"{path}: {DC_EVIDENCE_KEY!r} {exc}") from None
