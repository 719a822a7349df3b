"""Shared building blocks of every simulated window: time base, random draws, background, switching.

Every window is the sum of
- a background that exists before and after the event: the differential current of a healthy,
  loaded transformer seen through real CTs, i.e. a small balanced positive-sequence current from CT
  ratio mismatch (proportional to loading), a small magnetising current (odd harmonics of a
  saturating core at rated flux) and white measurement noise: a few hundredths at most;
- the event itself, built by the family modules (`faults`, `transients`) and starting at the
  inception sample.

All functions work on a batch of `n` windows at once (numpy broadcasting over windows and phases);
no Python loop runs per window. Every random draw is vectorised and recorded in the window's
parameters so a window can be reproduced and explained.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from services.waveform import N_PHASES, N_SAMPLES, SAMPLE_RATE_HZ, SYSTEM_FREQUENCY_HZ

DT_S = 1.0 / SAMPLE_RATE_HZ
OMEGA = 2.0 * np.pi * SYSTEM_FREQUENCY_HZ
T_S = np.arange(N_SAMPLES, dtype=np.float64) * DT_S
T_MS = T_S * 1000.0
WINDOW_MS = N_SAMPLES * DT_S * 1000.0
CYCLE_MS = 1000.0 / SYSTEM_FREQUENCY_HZ
#: phase rotation a = 1 at 120 degrees; positive-sequence set is (1, a^2, a)
A_OP = np.exp(2j * np.pi / 3)
POSITIVE_SEQUENCE = np.array([1.0, A_OP**2, A_OP], dtype=np.complex128)
#: latest inception, as a fraction of the window (the event must be visible for a few cycles)
MAX_INCEPTION_FRACTION = 0.6


class Draws:
    """Random parameter draws for a batch, where user overrides replace the random values.

    The random numbers are always drawn (so the stream, and every other parameter, is the same
    whether or not a value is overridden); an override then replaces the whole column.
    """

    def __init__(self, rng: np.random.Generator, n: int, overrides: Mapping[str, float]):
        self.rng = rng
        self.n = n
        self.overrides = dict(overrides)

    def take(self, name: str, values: np.ndarray) -> np.ndarray:
        """`values`, or the override of `name` for every window."""
        if name in self.overrides:
            return np.full(self.n, float(self.overrides[name]))
        return values

    def uniform(self, name: str, low: float, high: float) -> np.ndarray:
        return self.take(name, self.rng.uniform(low, high, self.n))

    def log_uniform(self, name: str, low: float, high: float) -> np.ndarray:
        return self.take(name, np.exp(self.rng.uniform(np.log(low), np.log(high), self.n)))

    def integers(self, name: str, low: int, high_inclusive: int) -> np.ndarray:
        return self.take(name, self.rng.integers(low, high_inclusive + 1, self.n).astype(np.float64))

    def inception_ms(self, name: str = "inception_ms") -> np.ndarray:
        """Event start: 60 % of events in the first quarter of the window, the rest up to 60 %."""
        early = self.rng.uniform(0.0, 0.25, self.n)
        late = self.rng.uniform(0.25, MAX_INCEPTION_FRACTION, self.n)
        fraction = np.where(self.rng.random(self.n) < 0.6, early, late)
        return self.take(name, fraction * WINDOW_MS)


def step_mask(start_ms: np.ndarray) -> np.ndarray:
    """(n, T) float mask, 1 from the inception sample on."""
    return (T_MS[None, :] >= start_ms[:, None]).astype(np.float64)


def elapsed_s(start_ms: np.ndarray) -> np.ndarray:
    """(n, T) seconds since inception, 0 before it."""
    return np.maximum(T_S[None, :] - start_ms[:, None] / 1000.0, 0.0)


def clearing_envelope(clear_ms: np.ndarray, arc_tau_ms: np.ndarray) -> np.ndarray:
    """(n, T) multiplier: 1 until the breaker opens, then an exponential fall to zero.

    The breaker interrupts at the next current zeros; seen at 10 kHz the differential current then
    disappears within a few milliseconds (arc and CT secondary decay, `arc_tau_ms` 0.3-1.2 ms).
    NaN clearing time means no clearing inside the window.
    """
    clear = np.where(np.isnan(clear_ms), np.inf, clear_ms)
    after = np.maximum(T_MS[None, :] - clear[:, None], 0.0)
    return np.exp(-after / arc_tau_ms[:, None])


def background(draws: Draws) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Healthy-transformer differential current (n, 3, T) and its parameters.

    CT mismatch: balanced positive-sequence fundamental, 0.2-1.2 % of load current (load 20-110 %),
    i.e. at most about 0.013 in the units of the data. Magnetising current: balanced, with the odd
    harmonics (3rd 25 %, 5th 8 %) of a core at rated flux, about 0.001-0.005. Noise: white, 0.0005-0.004 rms.
    """
    n = draws.n
    rng = draws.rng
    loading = draws.uniform("loading_percent", 20.0, 110.0)
    mismatch = rng.uniform(0.002, 0.012, n) * loading / 100.0
    magnetising = rng.uniform(0.001, 0.005, n)
    noise_std = rng.uniform(0.0005, 0.004, n)
    angle = rng.uniform(0.0, 2.0 * np.pi, n)
    phase_shift = np.array([0.0, -2.0 * np.pi / 3.0, 2.0 * np.pi / 3.0])
    theta = OMEGA * T_S[None, None, :] + angle[:, None, None] + phase_shift[None, :, None]
    # magnetising current lags the voltage by 90 degrees, the mismatch follows the load angle
    load_angle = rng.uniform(-0.6, 0.2, n)[:, None, None]
    wave = mismatch[:, None, None] * np.cos(theta + load_angle)
    wave += magnetising[:, None, None] * (
        np.sin(theta) + 0.25 * np.sin(3.0 * theta) + 0.08 * np.sin(5.0 * theta)
    )
    wave += noise_std[:, None, None] * rng.standard_normal((n, N_PHASES, N_SAMPLES))
    params = {
        "loading_percent": loading,
        "ct_mismatch": mismatch,
        "magnetising_current": magnetising,
        "noise_std": noise_std,
    }
    return wave, params


def to_float32(wave: np.ndarray) -> np.ndarray:
    """Final cast; rejects anything non-finite (a bug in a physics module, never silently kept)."""
    out = np.ascontiguousarray(wave, dtype=np.float32)
    if not np.isfinite(out).all():
        raise FloatingPointError("simulation produced NaN or Inf")
    return out
