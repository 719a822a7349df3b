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
    above = np.concatenate([[False], np.asarray(saliency) >= _SPAN_LEVEL, [False]])
    edges = np.diff(above.astype(np.int8))
    starts = list(np.flatnonzero(edges == 1))
    ends = list(np.flatnonzero(edges == -1))
    merged: list[list[int]] = []
    for start, end in zip(starts, ends, strict=True):
        if merged and start - merged[-1][1] <= _MERGE_GAP_SAMPLES:
            merged[-1][1] = end
        else:
            merged.append([start, end])
    merged.sort(key=lambda span: -float(np.sum(saliency[span[0]:span[1]])))
    to_ms = 1000.0 / SAMPLE_RATE_HZ
    return [(round(float(start) * to_ms, 2), round(float(end) * to_ms, 2)) for start, end in merged[:_MAX_SPANS]]


def estimate_inception_ms(window: np.ndarray) -> float | None:
    """First time (ms) the differential current departs from its pre-event level; None if it never does.

    The envelope (largest |phase| at each sample) is compared with the level of the first two
    milliseconds. The first crossing of 15 % of the way to the peak marks the event; stepping back
    to where the envelope last sat at the pre-event level gives its start. 0.0 means the event is
    already under way when the window opens.
    """
    x = np.asarray(window, dtype=np.float64)
    if not np.isfinite(x).all():
        return None
    envelope = np.abs(x).max(axis=0)
    peak = float(envelope.max())
    opening = float(envelope[:20].max())
    if peak <= 0.0 or peak < 3.0 * opening:
        return 0.0 if peak > 0.0 and opening > 0.5 * peak else None
    crossing = int(np.argmax(envelope >= opening + 0.15 * (peak - opening)))
    pre_event = envelope[max(0, crossing - int(SAMPLES_PER_CYCLE)):max(crossing - 3, 1)]
    level = 1.2 * float(pre_event.max()) if pre_event.size else opening
    start = crossing
    while start > 0 and envelope[start - 1] > level:
        start -= 1
    return round(start * 1000.0 / SAMPLE_RATE_HZ, 2)
