"""Waveform conventions of docs/contracts.md, "Waveforms" and the one validator every entry point uses."""

from __future__ import annotations

import numpy as np

N_PHASES = 3
N_SAMPLES = 726
SAMPLE_RATE_HZ = 10_000.0
SYSTEM_FREQUENCY_HZ = 60.0
SAMPLES_PER_CYCLE = SAMPLE_RATE_HZ / SYSTEM_FREQUENCY_HZ
WINDOW_MS = N_SAMPLES / SAMPLE_RATE_HZ * 1000.0
PHASES = ("A", "B", "C")
#: rated current (kA rms) of the public data set's reference system, 500 MVA at 230 kV:
#: 500e6 / (sqrt(3) * 230e3) / 1000 (Bera, Isik, Kumar, IEEE DataPort 2020, DOI 10.21227/1d1w-q940)
REFERENCE_RATED_CURRENT_KA = 1.2551


class WaveformError(ValueError):
    """The input is not a (3, 726) finite waveform; the message says what was expected."""


def validate_waveform(data: object) -> np.ndarray:
    """Return `data` as a C-contiguous float32 (3, 726) array, or raise WaveformError.

    Accepts numpy arrays and nested lists. Rejects other shapes, non-numeric values, NaN and Inf.
    """
    try:
        array = np.asarray(data, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise WaveformError(
            f"waveform must be numeric with shape ({N_PHASES}, {N_SAMPLES}): {exc}"
        ) from None
    if array.shape != (N_PHASES, N_SAMPLES):
        raise WaveformError(
            f"waveform must have shape ({N_PHASES}, {N_SAMPLES}) (phases A, B, C x samples), "
            f"got {array.shape}"
        )
    if not np.isfinite(array).all():
        raise WaveformError("waveform contains NaN or Inf values")
    if np.abs(array).max() > np.finfo(np.float32).max:
        raise WaveformError("waveform values overflow float32")
    return np.ascontiguousarray(array, dtype=np.float32)


def waveform_from_json(data: object) -> np.ndarray:
    """A waveform sent as JSON (3 arrays of 726 numbers) as a checked float32 (3, 726) array.

    Stricter than `validate_waveform`: only JSON numbers count, because numpy would silently read
    the string "1.5" and the boolean true as numbers. Raises WaveformError saying what was found."""
    expected = (f"waveform must have shape ({N_PHASES}, {N_SAMPLES}): an array of {N_PHASES} arrays of {N_SAMPLES} "
                "numbers (phases A, B, C)")
    if not isinstance(data, list) or len(data) != N_PHASES:
        found = f"{len(data)} items" if isinstance(data, list) else _json_type(data)
        raise WaveformError(f"{expected}; got {found}")
    for phase, row in zip(PHASES, data, strict=True):
        if not isinstance(row, list) or len(row) != N_SAMPLES:
            found = f"{len(row)} items" if isinstance(row, list) else _json_type(row)
            raise WaveformError(f"{expected}; phase {phase} has {found}")
        kinds = set(map(type, row))
        if not kinds <= _JSON_NUMBER_TYPES:
            odd = next(value for value in row if type(value) not in _JSON_NUMBER_TYPES)
            raise WaveformError(f"{expected}; phase {phase} holds {_json_type(odd)}")
    try:
        array = np.array(data, dtype=np.float64)
    except OverflowError:  # an integer beyond float range
        raise WaveformError("waveform values overflow float32") from None
    return validate_waveform(array)


_JSON_NUMBER_TYPES = frozenset({int, float})


def _json_type(value: object) -> str:
    """The JSON name of a decoded value's type with its article, for messages ('a string', 'null')."""
    if value is None:
        return "null"
    return {bool: "a boolean", str: "a string", list: "an array", dict: "an object", int: "a number",
            float: "a number"}.get(type(value), f"a {type(value).__name__}")


def time_axis_ms() -> np.ndarray:
    """Sample times in milliseconds from the start of the window."""
    return np.arange(N_SAMPLES, dtype=np.float64) / SAMPLE_RATE_HZ * 1000.0
