"""Why the model decided: per-sample saliency, the time spans behind it, and the event inception.

Saliency is an exact contribution analysis of the classifier head. With the hidden ReLU pattern
of the window fixed, the evidence for the predicted class c against the average class,
z_c - mean_k z_k, is linear in the last conv block's features F (128 channels x 90 steps):

    evidence = sum_{ch,t} G[ch,t] * F[ch,t] + const,  G = W1^T ((w2_c - mean_k w2_k) * relu'(h))

so sum_ch G*F at step t is how much that part of the window pushed the decision. The serving
graph (`services.model.ServingNet`) computes these 90 values alongside the logits, so the
explanation costs one extra (256 x 11,520) product inside ONNX Runtime. Each step summarises
8 input samples (three max-pools); here they are spread back to 726 samples and scaled to 0-1.
"""

from __future__ import annotations

import numpy as np

from services.model import FEATURE_STEPS
from services.waveform import N_SAMPLES, SAMPLE_RATE_HZ, SAMPLES_PER_CYCLE

_STEP = N_SAMPLES / FEATURE_STEPS  # input samples per feature step (about 8)
# linear interpolation from the 90 step centres to the 726 samples, precomputed
_POSITION = np.clip((np.arange(N_SAMPLES) + 0.5) / _STEP - 0.5, 0.0, FEATURE_STEPS - 1.0)
_NEAREST_STEP = np.floor(_POSITION).astype(np.int64)
_NEXT_STEP = np.minimum(_NEAREST_STEP + 1, FEATURE_STEPS - 1)
_FRACTION = _POSITION - _NEAREST_STEP
_SPAN_LEVEL = 0.5  # saliency above this marks a driving span
_MERGE_GAP_SAMPLES = 10  # 1 ms
_MAX_SPANS = 3


def saliency_maps(contribution: np.ndarray) -> np.ndarray:
    """(n, 726) saliency in 0-1 from the (n, 90) per-step contributions of the serving graph.

    Negative contributions (evidence against the predicted class) are dropped; each step's value
    is placed at the centre of the 8 input samples it summarises and interpolated between.
    """
    positive = np.maximum(np.asarray(contribution, dtype=np.float64), 0.0)
    upsampled = positive[:, _NEAREST_STEP] * (1.0 - _FRACTION) + positive[:, _NEXT_STEP] * _FRACTION
    top = upsampled.max(axis=1, keepdims=True)
    return np.divide(upsampled, top, out=np.zeros_like(upsampled), where=top > 0)


def driving_spans(saliency: np.ndarray) -> list[tuple[float, float]]:
    """Up to three (start_ms, end_ms) spans where saliency >= 0.5, strongest first."""
    return driving_spans_batch(np.asarray(saliency, dtype=np.float64)[None])[0]


def driving_spans_batch(saliency: np.ndarray) -> list[list[tuple[float, float]]]:
    """`driving_spans` of every row of a (n, 726) saliency batch, in one vectorised pass.

    Runs above 0.5 are found from the edges of the thresholded rows; runs of one row less than
    1 ms apart are merged; each merged span is weighed by the saliency it covers, and the three
    heaviest of each row are kept, heaviest first.
    """
    values = np.asarray(saliency, dtype=np.float64)
    n, length = values.shape
    padded = np.zeros((n, length + 2), dtype=np.int8)
    padded[:, 1:-1] = values >= _SPAN_LEVEL
    edges = np.diff(padded, axis=1)
    rows, starts = np.nonzero(edges == 1)  # row-major order: runs of a row come in time order
    _, ends = np.nonzero(edges == -1)
    spans: list[list[tuple[float, float]]] = [[] for _ in range(n)]
    if rows.size == 0:
        return spans
    # a run opens a new span unless it follows a run of the same row within the merge gap
    opens = np.ones(rows.size, dtype=bool)
    opens[1:] = (rows[1:] != rows[:-1]) | (starts[1:] - ends[:-1] > _MERGE_GAP_SAMPLES)
    first = np.flatnonzero(opens)
    last = np.append(first[1:], rows.size) - 1
    span_rows, span_starts, span_ends = rows[first], starts[first], ends[last]
    cumulative = np.zeros((n, length + 1))
    np.cumsum(values, axis=1, out=cumulative[:, 1:])
    weight = cumulative[span_rows, span_ends] - cumulative[span_rows, span_starts]
    order = np.lexsort((-weight, span_rows))  # by row, heaviest first (stable among equals)
    to_ms = 1000.0 / SAMPLE_RATE_HZ
    for row, start, end in zip(span_rows[order].tolist(), span_starts[order].tolist(),
                               span_ends[order].tolist(), strict=True):
        if len(spans[row]) < _MAX_SPANS:
            spans[row].append((round(start * to_ms, 2), round(end * to_ms, 2)))
    return spans


def estimate_inception_ms(window: np.ndarray) -> float | None:
    """First time (ms) the differential current departs from its pre-event level; None if it never does.

    The envelope (largest |phase| at each sample) is compared with the level of the first two
    milliseconds. The first crossing of 15 % of the way to the peak marks the event; stepping back
    to where the envelope last sat at the pre-event level gives its start. 0.0 means the event is
    already under way when the window opens.
    """
    return estimate_inceptions_ms(np.asarray(window)[None])[0]


def estimate_inceptions_ms(batch: np.ndarray) -> list[float | None]:
    """`estimate_inception_ms` for every window of a (n, 3, 726) batch at once."""
    x = np.asarray(batch, dtype=np.float64)
    finite = np.isfinite(x).all(axis=(1, 2))
    envelope = np.abs(np.where(np.isfinite(x), x, 0.0)).max(axis=1)  # (n, 726)
    peak = envelope.max(axis=1)
    opening = envelope[:, :20].max(axis=1)
    distinct = (peak > 0.0) & (peak >= 3.0 * opening)
    samples = np.arange(envelope.shape[1])[None, :]
    crossing = np.argmax(envelope >= (opening + 0.15 * (peak - opening))[:, None], axis=1)
    # pre-event level: the cycle before the crossing (up to 3 samples before it)
    in_cycle = (samples >= (crossing - int(SAMPLES_PER_CYCLE))[:, None]) & (samples < np.maximum(crossing - 3, 1)[:, None])
    level = 1.2 * np.where(in_cycle, envelope, 0.0).max(axis=1)
    level = np.where(in_cycle.any(axis=1), level, opening)
    quiet_before = (envelope <= level[:, None]) & (samples < crossing[:, None])
    start = np.where(quiet_before.any(axis=1), envelope.shape[1] - 1 - np.argmax(quiet_before[:, ::-1], axis=1) + 1, 0)
    start = np.minimum(start, crossing)
    result: list[float | None] = []
    for i in range(len(x)):
        if not finite[i]:
            result.append(None)
        elif distinct[i]:
            result.append(round(float(start[i]) * 1000.0 / SAMPLE_RATE_HZ, 2))
        else:
            result.append(0.0 if peak[i] > 0.0 and opening[i] > 0.5 * peak[i] else None)
    return result
