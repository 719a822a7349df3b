"""Sliding one-cycle phasor estimation with exact-frequency kernels (no resampling).

At 10 kHz and 60 Hz one cycle is 166.67 samples, not an integer, so a plain N-point DFT either
spans 166 or 167 samples (a 0.2-0.4 % frequency error that leaks the fundamental into every
harmonic bin) or needs the record resampled. Here each window of `WINDOW_SAMPLES` = 167 samples
(one cycle rounded up) is fitted by least squares with the exact-frequency model

    x(t) = d0 + d1 (t - t_c) + sum_{h=1..15} [a_h cos(h w t) + b_h sin(h w t)],  w = 2 pi 60 rad/s,

i.e. a DFT whose kernels are cos/sin at exactly h x 60 Hz, made orthogonal over the non-integer
window by the least-squares projection (the pseudo-inverse is computed once for all windows).
The ramp term d1 absorbs most of a decaying DC offset inside one cycle, which would otherwise leak
into the fundamental (the problem the mimic filter of Benmouyal 1995 addresses for plain DFTs);
d0 is the DC component at the window's centre t_c. For a signal made of DC and harmonics up to
the 15th the fit is exact. Phasor estimation by one-cycle DFT: Phadke & Thorp, "Computer Relaying
for Power Systems", 2nd ed., Wiley 2009, ch. 4; magnitudes are RMS and angles refer to t = 0 of the
window, x(t) = sqrt(2) |X| cos(h w t + angle), as in IEEE C37.118.1-2011, 4.2.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from services.waveform import SAMPLE_RATE_HZ, SYSTEM_FREQUENCY_HZ

MAX_HARMONIC = 15
#: one cycle (166.67 samples) rounded up: the fit's window
WINDOW_SAMPLES = int(np.ceil(SAMPLE_RATE_HZ / SYSTEM_FREQUENCY_HZ))
#: estimates every 10 samples (1 ms): 56 positions over a 726-sample record
STEP_SAMPLES = 10


@dataclass(frozen=True)
class PhasorSeries:
    """Sliding estimates for every phase: arrays of shape (phases, positions[, harmonics])."""

    start: np.ndarray  # first sample of each window (positions,)
    phasors: np.ndarray  # complex RMS phasors, (phases, positions, MAX_HARMONIC); [..., 0] is the fundamental
    dc: np.ndarray  # DC component at each window's centre, (phases, positions)
    rms: np.ndarray  # true RMS over exactly one cycle, (phases, positions)


@lru_cache(maxsize=4)
def _projection(window: int, rate_hz: float, frequency_hz: float, harmonics: int, ramp: bool = True) -> np.ndarray:
    """(2 + 2H, window) least-squares projection of the exact-frequency model (read-only); without
    `ramp` the second row is zero (a steady record has no ramp)."""
    t = np.arange(window) / rate_hz
    omega = 2.0 * np.pi * frequency_hz
    columns = [np.ones(window), t - t.mean()]
    for h in range(1, harmonics + 1):
        columns += [np.cos(h * omega * t), np.sin(h * omega * t)]
    design = np.stack(columns, axis=1)
    if not ramp:
        design[:, 1] = 0.0
    projection = np.linalg.pinv(design)
    projection.setflags(write=False)
    return projection


@lru_cache(maxsize=4)
def _rms_weights(window: int, rate_hz: float, frequency_hz: float) -> np.ndarray:
    """Weights that average x^2 over exactly one period: 1 per whole sample, the fraction on the last."""
    period = rate_hz / frequency_hz
    weights = np.ones(window)
    weights[-1] = period - (window - 1)
    weights /= period
    weights.setflags(write=False)
    return weights


def sliding_phasors(x: np.ndarray, *, rate_hz: float = SAMPLE_RATE_HZ, frequency_hz: float = SYSTEM_FREQUENCY_HZ,
                    step: int = STEP_SAMPLES, harmonics: int = MAX_HARMONIC) -> PhasorSeries:
    """Phasors of harmonics 1..`harmonics`, DC and RMS of each one-cycle window, every `step` samples.

    `x` is (phases, samples) with at least one cycle of samples. Angles refer to the record's first
    sample (a steady 60 Hz wave keeps a constant phasor from window to window)."""
    data = np.asarray(x, dtype=np.float64)
    window = int(np.ceil(rate_hz / frequency_hz))
    if data.ndim != 2 or data.shape[1] < window:
        raise ValueError(f"need (phases, samples) with at least {window} samples, got {data.shape}")
    starts = np.arange(0, data.shape[1] - window + 1, step)
    windows = np.lib.stride_tricks.sliding_window_view(data, window, axis=1)[:, starts, :]  # (P, K, W)
    coefficients = windows @ _projection(window, rate_hz, frequency_hz, harmonics).T  # (P, K, 2 + 2H)
    cosine, sine = coefficients[..., 2::2], coefficients[..., 3::2]
    # a cos(hwt) + b sin(hwt) = Re{(a - jb) e^{jhwt}}; RMS phasor = (a - jb) / sqrt 2, local time
    local = (cosine - 1j * sine) / np.sqrt(2.0)
    orders = np.arange(1, harmonics + 1)
    rotation = np.exp(-1j * 2.0 * np.pi * frequency_hz / rate_hz * np.outer(starts, orders))  # to record time
    phasors = local * rotation[None, :, :]
    rms = np.sqrt(np.maximum((windows ** 2) @ _rms_weights(window, rate_hz, frequency_hz), 0.0))
    return PhasorSeries(start=starts, phasors=phasors, dc=coefficients[..., 0], rms=rms)


@lru_cache(maxsize=64)
def _basis(samples: int, start: int, rate_hz: float, frequency_hz: float, harmonics: int) -> np.ndarray:
    """(2 + 2H, samples) the model's columns (DC, no ramp, cos/sin of each harmonic) over a record
    whose time origin is sample `start` (read-only)."""
    t = (np.arange(samples) - start) / rate_hz
    omega = 2.0 * np.pi * frequency_hz
    rows = [np.ones(samples), np.zeros(samples)]
    for h in range(1, harmonics + 1):
        rows += [np.cos(h * omega * t), np.sin(h * omega * t)]
    basis = np.stack(rows)
    basis.setflags(write=False)
    return basis


def steady_state_fit(x: np.ndarray, start: int, window: int, *, harmonics: int = MAX_HARMONIC,
                     rate_hz: float = SAMPLE_RATE_HZ, frequency_hz: float = SYSTEM_FREQUENCY_HZ
                     ) -> tuple[np.ndarray, np.ndarray]:
    """(coefficients, fit residual inside the stretch) of the periodic part (DC and harmonics
    1..`harmonics`, no ramp) fitted to the `window` samples of `x` at `start`."""
    segment = np.asarray(x, dtype=np.float64)[:, start:start + window]
    coefficients = segment @ _projection(window, rate_hz, frequency_hz, harmonics, False).T
    return coefficients, segment - coefficients @ _basis(window, 0, rate_hz, frequency_hz, harmonics)


def steady_state_model(coefficients: np.ndarray, samples: int, start: int, *, harmonics: int = MAX_HARMONIC,
                       rate_hz: float = SAMPLE_RATE_HZ, frequency_hz: float = SYSTEM_FREQUENCY_HZ) -> np.ndarray:
    """The fitted periodic part extended over every sample of a `samples`-long record.

    The departure of a record from it is its superimposed (incremental) current (Phadke & Thorp,
    ch. 9), which marks when an event starts and when it is over."""
    return coefficients @ _basis(samples, start, rate_hz, frequency_hz, harmonics)
