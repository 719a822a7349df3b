"""Whole-cycle DC evidence: which transient a window can be, from its current's mean over whole cycles.

Why: an inrush current, of an energised transformer or a sympathetic one, is unipolar. The core
flux carries a DC offset that the saturated core rectifies, so the current's mean over whole
cycles is a large share of its peak: the DC component is one of the classic inrush signatures
(Blackburn & Domin, "Protective Relaying", ch. 9; Horowitz & Phadke, "Power System Relaying",
section 8.4; IEEE C37.91-2021, annex on inrush). A periodic steady state has no mean over whole
periods:
- ferroresonance, fundamental or subharmonic, symmetrical or not, because its series capacitance
  passes no DC (Hayashi, "Nonlinear Oscillations in Physical Systems", 1964);
- a rectifier's line current, which is half-wave symmetric (Mohan, Undeland, Robbins, "Power
  Electronics", ch. 6);
- a capacitor bank's current once its ringing has died.

The network sees this only implicitly: its receptive field is about 3 ms. On windows written apart
from our simulator (`services.shiftset`) it read ferroresonance as sympathetic or magnetising
inrush, some at p > 0.9, although those windows' DC share was about 0.001, against 0.13 to 0.28
for inrush.

The feature: over the last 2, 3 and 4 cycles of the window (so that 60, 30 and 20 Hz states all
fit in whole periods), the largest phase's |mean| divided by the window's peak; the smallest of
the three is kept. The end of the window is used because an event that starts inside the window
is there.

How it is used: naive Bayes within the transient kinds,
p(kind | window, d) ~ p(kind | window) * p(d | kind). Here p(d | kind) is a histogram over
log10 bins with add-one smoothing, fitted on the training windows of each transient kind
(`fit_dc_evidence`). The total probability of the transient category is left as the network
gave it, so the category and every fault label's probability do not change: the evidence only
decides how that probability splits among the six transients (so a transient kind may overtake a
fault kind as the single most likely kind). It is stored in calibration.json under
`dc_evidence`; a folder without it is served without it.

Limit: a recorder's own DC offset adds to the mean. On the independent transients (1,800 windows,
seed 7373), which transient is read 82.7 % without the evidence and 85.5 % with it; with a
constant offset per phase of up to 1 % of the window's peak, 82.6 % and 84.7 %; up to 2 %, 82.4 %
and 82.9 %, the gain nearly gone (the same offsets added to the same windows, same weights).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache

import numpy as np

from services.labels import label_parts
from services.waveform import SAMPLES_PER_CYCLE

#: whole cycles at the end of the window over which the mean is taken
CYCLE_COUNTS = (2, 3, 4)
_LENGTHS = np.array([int(round(cycles * SAMPLES_PER_CYCLE)) for cycles in CYCLE_COUNTS])
#: histogram bin edges of log10(DC share + FLOOR); the share lies in [0, 1]
LOG10_EDGES = (-6.0, -4.0, -3.5, -3.0, -2.5, -2.0, -1.7, -1.4, -1.15, -1.0, -0.82, -0.7, -0.52, 0.01)
FLOOR = 1e-6
#: Laplace (add-alpha) smoothing of each kind's histogram counts
SMOOTHING = 1.0
CALIBRATION_KEY = "dc_evidence"


def whole_cycle_dc_share(windows: np.ndarray) -> np.ndarray:
    """(n,) the DC share of each (3, N) window: min over CYCLE_COUNTS of max_phase |mean| / peak."""
    batch = np.asarray(windows, dtype=np.float64)
    peak = np.abs(batch).max(axis=(1, 2))
    # sums over the last `length` samples for every length at once: one cumulative sum from the end
    from_end = batch[:, :, : -_LENGTHS[-1] - 1: -1].cumsum(axis=2)
    means = from_end[:, :, _LENGTHS - 1] / _LENGTHS  # (n, 3 phases, len(CYCLE_COUNTS))
    shares = np.abs(means).max(axis=1).min(axis=1)
    return np.where(peak > 0.0, shares / np.maximum(peak, 1e-300), 0.0)


def _bins(share: np.ndarray) -> np.ndarray:
    edges = np.asarray(LOG10_EDGES)
    index = np.digitize(np.log10(np.clip(share, 0.0, 1.0) + FLOOR), edges) - 1
    return np.clip(index, 0, len(edges) - 2)


@cache
def _transient_columns(labels: tuple[str, ...], kinds: tuple[str, ...]) -> tuple[np.ndarray, np.ndarray]:
    """(label columns, rows of `kinds`) of the transient labels whose kind has a likelihood row."""
    pairs = [(column, kinds.index(label_parts(label).kind)) for column, label in enumerate(labels)
             if label_parts(label).category == "transient" and label_parts(label).kind in kinds]
    return np.array([c for c, _ in pairs], dtype=int), np.array([r for _, r in pairs], dtype=int)


@dataclass(frozen=True)
class DcEvidence:
    """p(DC share bin | transient kind), one row per kind in `kinds`."""

    kinds: tuple[str, ...]
    likelihood: np.ndarray  # (len(kinds), len(LOG10_EDGES) - 1), rows sum to 1
    windows: int  # how many windows it was fitted on

    def reweight(self, probabilities: np.ndarray, labels: Sequence[str], windows: np.ndarray) -> np.ndarray:
        """The label probabilities with the transient kinds' shares moved by the windows' DC evidence."""
        label_columns, rows = _transient_columns(tuple(labels), self.kinds)
        if not len(label_columns) or len(probabilities) == 0:
            return probabilities
        likelihood = self.likelihood[rows][:, _bins(whole_cycle_dc_share(windows))].T  # (n, transients)
        transient = probabilities[:, label_columns]
        mass = transient.sum(axis=1, keepdims=True)
        weighted = transient * likelihood
        total = weighted.sum(axis=1, keepdims=True)
        out = probabilities.copy()
        out[:, label_columns] = np.where(total > 0.0, weighted / np.where(total > 0.0, total, 1.0) * mass,
                                         transient)
        return out

    def to_dict(self) -> dict:
        return {
            "feature": "min over the last 2, 3, 4 cycles of max over phases |mean| / window peak",
            "log10_edges": list(LOG10_EDGES),
            "floor": FLOOR,
            "kinds": list(self.kinds),
            "likelihood": np.round(self.likelihood, 6).tolist(),
            "windows": self.windows,
        }

    @classmethod
    def from_dict(cls, raw: object) -> DcEvidence:
        """Parse calibration.json's `dc_evidence`; ValueError on anything malformed."""
        if not isinstance(raw, dict):
            raise ValueError("must be an object")
        if [float(e) for e in raw.get("log10_edges", [])] != list(LOG10_EDGES):
            raise ValueError("its bin edges are not this version's")
        kinds = raw.get("kinds")
        if not isinstance(kinds, list) or not kinds or not all(isinstance(k, str) for k in kinds):
            raise ValueError("'kinds' must be a list of transient kinds")
        likelihood = np.asarray(raw.get("likelihood"), dtype=np.float64)
        if likelihood.shape != (len(kinds), len(LOG10_EDGES) - 1):
            raise ValueError(f"'likelihood' must have shape ({len(kinds)}, {len(LOG10_EDGES) - 1})")
        if not np.isfinite(likelihood).all() or (likelihood <= 0.0).any():
            raise ValueError("'likelihood' must hold positive numbers")
        return cls(tuple(kinds), likelihood / likelihood.sum(axis=1, keepdims=True), int(raw.get("windows", 0)))


def fit_dc_evidence(windows: np.ndarray, labels: Sequence[str]) -> DcEvidence | None:
    """The evidence fitted on labelled windows (one label per window); None without transients."""
    kinds = [label_parts(label).kind if label_parts(label).category == "transient" else None for label in labels]
    present = tuple(sorted({kind for kind in kinds if kind is not None}))
    if not present:
        return None
    chosen = np.array([kind is not None for kind in kinds])
    bins = _bins(whole_cycle_dc_share(np.asarray(windows)[chosen]))
    chosen_kinds = np.array([kind for kind in kinds if kind is not None])
    counts = np.stack([np.bincount(bins[chosen_kinds == kind], minlength=len(LOG10_EDGES) - 1)
                       for kind in present]).astype(np.float64) + SMOOTHING
    return DcEvidence(present, counts / counts.sum(axis=1, keepdims=True), int(chosen.sum()))
