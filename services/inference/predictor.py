"""The inference service: one Predictor per process and artifacts folder, loaded lazily.

`get_predictor()` is what callers use; it caches the loaded Predictor per folder under a lock
(immutable once built) and reloads only if the folder's files change.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import asdict, dataclass, field
from functools import lru_cache
from pathlib import Path

import numpy as np

from services.inference.artifacts import (
    Artifacts,
    ModelUnavailable,
    folder_stamp,
    load_artifacts,
    resolve_artifacts_dir,
)
from services.inference.backends import make_backend, serving_net
from services.inference.batching import MicroBatcher
from services.inference.connections import ConnectionHead, check_relay_connection
from services.inference.explain import driving_spans_batch, estimate_inceptions_ms, saliency_maps
from services.inference.levels import label_probabilities, levels_of, marginals
from services.inference.options import InferenceOptions
from services.inference.presence import no_event
from services.inference.unknown import signal_checks
from services.labels import CATEGORIES, EQUIPMENTS, KINDS, label_parts
from services.waveform import N_PHASES, N_SAMPLES, WaveformError

log = logging.getLogger(__name__)

#: largest batch sent to the backend at once (bounds the memory of one call)
_CHUNK = 512
NO_EVENT_REASON = "no event in the window: only a standing differential current and noise"


@dataclass(frozen=True)
class Prediction:
    """One window's answer. `confidence` and every probability are calibrated per level
    (`services.inference.levels`): p(label) = p(kind) p(equipment | kind).

    `levels` holds the answer level by level (category, phases and kind, equipment with an
    `uncertain` flag and its candidates), `headline` says it in one line, and `event_detected` is
    False for a window holding only a standing differential current and noise (then `unknown`).
    """

    label: str
    label_id: int
    confidence: float
    top5: list[tuple[str, float]]
    category: dict[str, float]
    equipment: dict[str, float]
    kind: dict[str, float]
    unknown: bool
    unknown_reason: str | None
    explanation: list[tuple[float, float]] = field(default_factory=list)
    saliency: list[float] = field(default_factory=list)
    inception_ms: float | None = None
    levels: dict = field(default_factory=dict)
    headline: str = ""
    event_detected: bool = True
    #: the relay connection the user stated (services.inference.connections), None when not stated
    relay_connection: str | None = None

    def to_dict(self) -> dict:
        """Plain JSON types: tuples become lists."""
        data = asdict(self)
        data["top5"] = [[label, probability] for label, probability in self.top5]
        data["explanation"] = [[start, end] for start, end in self.explanation]
        return data


class Predictor:
    """Classifier over one artifacts folder: probabilities, unknown flag, explanation."""

    def __init__(self, artifacts_dir: str | Path | None = None, backend: str | None = None,
                 options: InferenceOptions | None = None) -> None:
        options = options or InferenceOptions()
        folder = resolve_artifacts_dir(artifacts_dir)
        artifacts: Artifacts = load_artifacts(folder)
        self.artifacts_dir = folder
        self.labels: tuple[str, ...] = artifacts.labels
        self.fingerprint: str = artifacts.fingerprint
        self.model_card: dict | None = artifacts.model_card
        self.temperature: float = artifacts.temperature
        self.temperature_kind: float = artifacts.temperature_kind
        self.temperature_equipment: float = artifacts.temperature_equipment
        self._descriptions = artifacts.descriptions
        self._detector = artifacts.detector
        self.dc_evidence = artifacts.dc_evidence
        self.logit_offsets = artifacts.logit_offsets
        self.connection_heads = artifacts.connection_heads
        net = serving_net(artifacts.model, artifacts.mean, artifacts.std, artifacts.input_scaling)
        self._backend = make_backend(net, artifacts.model_fingerprint, backend, options)
        self.backend: str = self._backend.name
        parts = [label_parts(label) for label in self.labels]
        self._is_internal = [p.category == "internal_fault" for p in parts]
        self._batcher: MicroBatcher[Prediction] = MicroBatcher(
            lambda batch: self._predict_chunk(batch, explain=True), max_batch=options.resolved_max_batch
        )

    # --- public API -------------------------------------------------------------------------
    def predict(self, x: object, relay_connection: str | None = None) -> Prediction:
        """Classify one (3, 726) window. Wrong shape or type raises WaveformError.

        Thread-safe; windows of concurrent calls in this process share one network call
        (`services.inference.batching`), which is what makes a threaded web worker fast.
        `relay_connection` (services.inference.connections; None or "not_stated": not known) reads
        the window through that connection's head: ValueError for an unknown one, or one this model
        has no head for.
        """
        array = _as_array(x, f"a waveform of shape ({N_PHASES}, {N_SAMPLES})")
        if array.shape != (N_PHASES, N_SAMPLES):
            raise WaveformError(
                f"expected a waveform of shape ({N_PHASES}, {N_SAMPLES}) (phases A, B, C x samples), got {array.shape}"
            )
        head = self.connection_head(relay_connection)
        if head is None:
            return self._batcher.submit(array)
        return self._predict_chunk(array[None], explain=True, head=head)[0]

    def connection_head(self, relay_connection: object) -> ConnectionHead | None:
        """The head of a stated connection, None when it is not stated; ValueError for an unknown
        connection or one this model has no head for."""
        stated = check_relay_connection(relay_connection)
        if stated is None:
            return None
        head = self.connection_heads.heads.get(stated) if self.connection_heads else None
        if head is None:
            raise ValueError(f"this model has no head for the relay connection {stated!r}: fit them with "
                             "python -m services.training.connection_heads, or leave the connection unstated")
        return head

    def hidden(self, X: np.ndarray) -> np.ndarray:
        """The network's hidden vectors (n, 256) of finite (n, 3, 726) windows: what every head reads."""
        return self._network(X, 1)

    def _network(self, X: np.ndarray, output: int) -> np.ndarray:
        """One of the network's outputs (0 logits, 1 hidden) for finite windows, in bounded chunks."""
        batch = np.asarray(X, dtype=np.float32)
        return np.concatenate([self._backend.run(batch[i:i + _CHUNK])[output] for i in range(0, len(batch), _CHUNK)])

    def predict_batch(self, X: object, explain: bool = True, relay_connection: str | None = None) -> list[Prediction]:
        """Classify (n, 3, 726) windows; `explain=False` skips saliency and spans (faster)."""
        batch = _as_array(X, f"a batch of shape (n, {N_PHASES}, {N_SAMPLES})")
        if batch.ndim != 3 or batch.shape[1:] != (N_PHASES, N_SAMPLES):
            raise WaveformError(
                f"expected a batch of shape (n, {N_PHASES}, {N_SAMPLES}) (windows x phases x samples), got {batch.shape}"
            )
        head = self.connection_head(relay_connection)
        predictions: list[Prediction] = []
        for start in range(0, batch.shape[0], _CHUNK):
            predictions.extend(self._predict_chunk(batch[start:start + _CHUNK], explain, head))
        return predictions

    def logits(self, X: np.ndarray) -> np.ndarray:
        """Logits (n, n_labels) of finite (n, 3, 726) windows, before any temperature: the network's,
        plus the training prior's correction where calibration.json has one (`logit_offsets`)."""
        return self._with_offsets(self._network(X, 0))

    def _with_offsets(self, logits: np.ndarray) -> np.ndarray:
        return logits if self.logit_offsets is None else logits + self.logit_offsets[None, :]

    def probabilities(self, X: np.ndarray) -> np.ndarray:
        """Calibrated label probabilities (n, n_labels) of finite (n, 3, 726) windows, with the DC
        evidence applied as in `predict_batch`."""
        batch = np.asarray(X, dtype=np.float32)
        return self.calibrated_probabilities(self.logits(batch), batch)

    def _calibrated_without_evidence(self, logits: np.ndarray) -> np.ndarray:
        return label_probabilities(logits, self.labels, self.temperature_kind, self.temperature_equipment)

    def calibrated_probabilities(self, logits: np.ndarray, windows: np.ndarray,
                                 head: ConnectionHead | None = None) -> np.ndarray:
        """`probabilities` from logits already computed for these windows: per-level calibrated (at a
        stated connection's head's temperatures when `head` made them), the transient kinds weighed
        by the windows' DC evidence."""
        probabilities = (self._calibrated_without_evidence(logits) if head is None else
                         label_probabilities(logits, self.labels, head.temperature_kind, head.temperature_equipment))
        if self.dc_evidence is None:
            return probabilities
        return self.dc_evidence.reweight(probabilities, self.labels, windows)

    def describe(self, label: str) -> dict:
        """{"description", "causes"} for a label (DEFAULT for an unknown one)."""
        entry = self._descriptions.get(label) or self._descriptions["DEFAULT"]
        return {"description": entry["description"], "causes": list(entry["causes"])}

    # --- internals ----------------------------------------------------------------------------
    def _predict_chunk(self, raw: np.ndarray, explain: bool,
                       head: ConnectionHead | None = None) -> list[Prediction]:
        finite = np.where(np.isfinite(raw), raw, 0.0).astype(np.float32)
        finite = np.clip(finite, -1e30, 1e30)
        logits, hidden, contribution = self._backend.run(finite)
        # a stated connection's head reads the same hidden vector; it was fitted on windows of equal
        # label counts, so the training prior's offsets do not apply to it
        logits = self._with_offsets(logits) if head is None else head.logits(hidden)
        with _single_threaded_blas():
            return self._answers(raw, finite, logits, hidden, contribution, explain, head)

    def _answers(self, raw: np.ndarray, finite: np.ndarray, logits: np.ndarray, hidden: np.ndarray,
                 contribution: np.ndarray, explain: bool,
                 head: ConnectionHead | None = None) -> list[Prediction]:
        """Probabilities, checks and explanation of a chunk the network has answered."""
        probabilities = self.calibrated_probabilities(logits, finite, head)
        predicted = probabilities.argmax(axis=1)
        reasons = signal_checks(raw)
        if self._detector is not None:
            feature_reasons = self._detector.reasons(finite, hidden, predicted)
            reasons = [own or other for own, other in zip(reasons, feature_reasons, strict=True)]
        internal = np.array([self._is_internal[i] for i in predicted.tolist()], dtype=bool)
        present = (~no_event(finite, internal)).tolist()
        reasons = [reason if event or reason is not None else NO_EVENT_REASON
                   for reason, event in zip(reasons, present, strict=True)]
        saliency = saliency_maps(contribution) if explain else None
        parts = {name: values.tolist() for name, values in marginals(probabilities, self.labels).items()}
        top = np.argsort(-probabilities, axis=1)[:, :5].tolist()
        inceptions = estimate_inceptions_ms(raw)
        # plain Python numbers once for the whole batch: indexing numpy scalars per field costs more
        rows = probabilities.tolist()
        if saliency is not None:
            spans = driving_spans_batch(saliency)
            saliency_rows = np.round(saliency, 4).tolist()
        else:
            spans, saliency_rows = [[] for _ in rows], [[] for _ in rows]
        labels = self.labels
        results = []
        for i, label_id in enumerate(predicted.tolist()):
            row = rows[i]
            levels, headline = levels_of(parts["category"][i], parts["kind"][i], parts["equipment"][i], present[i])
            results.append(
                Prediction(
                    label=labels[label_id],
                    label_id=label_id,
                    confidence=row[label_id],
                    top5=[(labels[j], row[j]) for j in top[i]],
                    category=dict(zip(CATEGORIES, parts["category"][i], strict=True)),
                    equipment=dict(zip(EQUIPMENTS, parts["equipment"][i], strict=True)),
                    kind=dict(zip(KINDS, parts["kind"][i], strict=True)),
                    unknown=reasons[i] is not None,
                    unknown_reason=reasons[i],
                    explanation=spans[i],
                    saliency=saliency_rows[i],
                    inception_ms=inceptions[i],
                    levels=levels,
                    headline=headline,
                    event_detected=present[i],
                    relay_connection=None if head is None else head.name,
                )
            )
        return results


def _as_array(x: object, expected: str) -> np.ndarray:
    if isinstance(x, str | bytes):
        raise WaveformError(f"expected {expected} of numbers, got {type(x).__name__}")
    try:
        array = np.asarray(x)
    except (TypeError, ValueError) as exc:
        raise WaveformError(f"expected {expected} of numbers: {exc}") from None
    if array.dtype.kind not in "biuf":
        raise WaveformError(f"expected {expected} of numbers, got dtype {array.dtype}")
    return array.astype(np.float64, copy=False)


@lru_cache(maxsize=1)
def _blas_controller():
    """threadpoolctl's handle on numpy's BLAS, built once (it scans the loaded libraries)."""
    from threadpoolctl import ThreadpoolController

    return ThreadpoolController()


def _single_threaded_blas():
    """numpy's BLAS on one thread for the post-processing.

    Its matrix products are small, and OpenBLAS's extra threads keep spinning for a while after
    each one, taking the cores from ONNX Runtime's next call: `predict_batch` ran at 2,507
    windows/s with them and 3,766 without (256-window batches, 2 cores).
    """
    return _blas_controller().limit(limits=1, user_api="blas")


_LOCK = threading.Lock()
_PREDICTORS: dict[tuple[Path, str | None, InferenceOptions], tuple[tuple, Predictor]] = {}


def get_predictor(artifacts_dir: str | Path | None = None, backend: str | None = None,
                  options: InferenceOptions | None = None) -> Predictor:
    """The process's Predictor for a folder (argument, else the repository's `artifacts/`).

    Created on first use under a lock; later calls return the same object unless the folder's
    files changed. Raises ModelUnavailable (with the reason) if the artifacts are missing or corrupt.
    """
    folder = resolve_artifacts_dir(artifacts_dir)
    options = options or InferenceOptions()
    key = (folder, backend, options)
    stamp = folder_stamp(folder)
    cached = _PREDICTORS.get(key)
    if cached is not None and cached[0] == stamp:
        return cached[1]
    with _LOCK:
        cached = _PREDICTORS.get(key)
        if cached is not None and cached[0] == stamp:
            return cached[1]
        try:
            predictor = Predictor(folder, backend=backend, options=options)
        except ModelUnavailable:
            raise
        except (OSError, ValueError, RuntimeError) as exc:
            raise ModelUnavailable(f"cannot load the model from {folder}: {exc}") from None
        _PREDICTORS[key] = (stamp, predictor)
        return predictor
