"""Inputs that are NOT credible 60 Hz grid events, to measure the unknown flag.

Each family is a way a wrong file or a broken recorder reaches the classifier: flat lines, NaN,
clipped traces, a 50 Hz system, the wrong sample rate, DC only, broadband noise, a random walk,
a lone high-frequency tone. Some families start from real (simulated) events so that only the
defect differs. Used by the training command (figures in the model card) and the tests.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from services.waveform import N_PHASES, N_SAMPLES, SAMPLE_RATE_HZ

_T = np.arange(N_SAMPLES) / SAMPLE_RATE_HZ
_PHASE_SHIFTS = np.array([0.0, -2.0 * np.pi / 3.0, 2.0 * np.pi / 3.0])[:, None]

FAMILIES = (
    "flat_zero",
    "flat_constant",
    "nan_or_inf",
    "clipped_event",
    "sine_50hz",
    "event_on_50hz_system",
    "event_sampled_at_5khz",
    "dc_only",
    "white_noise",
    "random_walk",
    "high_frequency_tone",
)
#: our own extra out-of-distribution probes, beyond the kinds of garbage the issue names
EXTRA_PROBES = ("random_walk", "high_frequency_tone")
#: the kinds of garbage the issue names (flat, clipped, NaN/Inf, wrong frequency, DC only, white noise)
ISSUE_FAMILIES = tuple(family for family in FAMILIES if family not in EXTRA_PROBES)


def flag_rates(flagged: np.ndarray, families: Sequence[str]) -> dict:
    """Share of garbage windows flagged unknown: overall, over the issue's kinds, and per family."""
    families_arr = np.asarray(families)
    return {
        "garbage_windows": int(len(families_arr)),
        "garbage_flag_rate": float(flagged.mean()),
        "garbage_flag_rate_issue_families": float(flagged[np.isin(families_arr, ISSUE_FAMILIES)].mean()),
        "garbage_flag_rate_by_family": {f: float(flagged[families_arr == f].mean()) for f in FAMILIES},
    }


def _log_uniform(rng: np.random.Generator, low: float, high: float) -> float:
    return float(np.exp(rng.uniform(np.log(low), np.log(high))))


def _resample(event: np.ndarray, speed: float) -> np.ndarray:
    """Read `event` at `speed` samples per output sample (periodic extension past the end)."""
    position = np.arange(N_SAMPLES) * speed
    position = np.where(position > N_SAMPLES - 1, position - 167.0 * np.ceil((position - N_SAMPLES + 1) / 167.0), position)
    return np.stack([np.interp(position, np.arange(N_SAMPLES), phase) for phase in event])


def make_garbage(family: str, rng: np.random.Generator, events: np.ndarray) -> np.ndarray:
    """One (3, 726) window of `family`; `events` (m, 3, 726) are valid events to corrupt."""
    event = events[rng.integers(len(events))].astype(np.float64)
    peak = float(np.abs(event).max())
    if family == "flat_zero":
        return np.zeros((N_PHASES, N_SAMPLES))
    if family == "flat_constant":
        return np.full((N_PHASES, N_SAMPLES), rng.uniform(-20, 20))
    if family == "nan_or_inf":
        window = event.copy()
        bad = rng.integers(0, N_SAMPLES, rng.integers(1, 50))
        window[rng.integers(0, N_PHASES), bad] = rng.choice([np.nan, np.inf, -np.inf])
        return window
    if family == "clipped_event":
        level = rng.uniform(0.3, 0.8) * peak
        return np.clip(event, -level, level)
    if family == "sine_50hz":
        amplitude = _log_uniform(rng, 0.05, 50.0)
        wave = amplitude * np.sin(2 * np.pi * 50.0 * _T[None, :] + rng.uniform(0, 2 * np.pi) + _PHASE_SHIFTS)
        return wave + rng.normal(0, 0.002, wave.shape)
    if family == "event_on_50hz_system":
        return _resample(event, 50.0 / 60.0)
    if family == "event_sampled_at_5khz":
        return _resample(event, 2.0)
    if family == "dc_only":
        levels = rng.uniform(-10, 10, (N_PHASES, 1))
        decay = np.exp(-_T[None, :] / rng.uniform(0.005, 0.5)) if rng.random() < 0.5 else 1.0
        return levels * decay + rng.normal(0, 0.001, (N_PHASES, N_SAMPLES))
    if family == "white_noise":
        return rng.normal(0, _log_uniform(rng, 0.01, 20.0), (N_PHASES, N_SAMPLES))
    if family == "random_walk":
        steps = rng.normal(0, _log_uniform(rng, 0.001, 0.5), (N_PHASES, N_SAMPLES))
        return np.cumsum(steps, axis=1)
    if family == "high_frequency_tone":
        frequency = rng.uniform(300.0, 3000.0)
        amplitude = _log_uniform(rng, 0.05, 20.0)
        return amplitude * np.sin(2 * np.pi * frequency * _T[None, :] + rng.uniform(0, 2 * np.pi) + _PHASE_SHIFTS)
    raise ValueError(f"unknown garbage family {family!r}; expected one of {', '.join(FAMILIES)}")


def garbage_suite(events: np.ndarray, per_family: int, seed: int) -> tuple[np.ndarray, list[str]]:
    """`per_family` windows of every family: X float64 (n, 3, 726) (may hold NaN/Inf) and family names."""
    rng = np.random.default_rng(seed)
    windows, families = [], []
    for family in FAMILIES:
        for _ in range(per_family):
            windows.append(make_garbage(family, rng, events))
            families.append(family)
    return np.stack(windows), families
