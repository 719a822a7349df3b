"""Event inception and clearing read from the signal: the superimposed current.

A record in steady state is periodic: DC and harmonics fitted to a steady stretch
(`phasors.steady_state_model`) predict every other sample. The departure from that prediction, the
superimposed or incremental current (Phadke & Thorp, "Computer Relaying for Power Systems", 2nd
ed., ch. 9; the delta quantities of incremental-quantity relays), is zero while nothing happens and
appears when an event starts. The data set's events start ~1-16 ms into the window and are removed
after 50 ms, the current returning to its standing level (Bera, Isik, Kumar, IEEE DataPort 2020;
docs/physics.md), so the record's tail is tried first as the steady reference: the longest steady
stretch at the end (one cycle with harmonics 1-15, else 14 down to 6 ms with harmonics 1-3, which
a shorter stretch cannot separate). The event is where the record departs from it: inception its
first sample, clearing the sample after its last. When the record does not start steady with
respect to its tail (the event is still under way at the end), the head is the reference and there
is no clearing inside the window; when neither is steady (an event under way from the start and at
the end, e.g. an inrush that started before the window) neither time is reported.

A stretch is steady when the periodic model leaves less than 5 % of its RMS (or 0.2 % of the
record's peak: a small standing current is as noisy as it is large) unexplained. The
departure counts above max(10 % of its largest value, 2 % of the record's peak, 6 x the
reference's residual RMS); the record starts steady when its first 0.8 ms stay below that.
Limitation: an event that starts inside the first 0.8 ms reads as under way from the start.
"""

from __future__ import annotations

import numpy as np

from services.analytics.phasors import MAX_HARMONIC, WINDOW_SAMPLES, steady_state_fit, steady_state_model

#: a record starts steady when its first samples (0.8 ms) agree with the reference
QUIET_START = 8
STEADY_RESIDUAL = 0.05
#: ... or less than 0.2 % of the record's peak: a small standing current carries noise of its own size
NOISE_FLOOR = 0.002
#: (samples, harmonics) of the reference stretches tried, longest first
REFERENCE_STRETCHES = ((WINDOW_SAMPLES, MAX_HARMONIC), (140, 3), (120, 3), (100, 3), (80, 3), (60, 3))


def event_samples(x: np.ndarray) -> tuple[int | None, int | None]:
    """(inception sample, clearing sample) of a (phases, samples) record; None where the signal does
    not show one (no event, an event under way from the start, or not cleared inside the record)."""
    data = np.asarray(x, dtype=np.float64)
    samples = data.shape[1]
    peak = float(np.abs(data).max()) if data.size else 0.0
    if peak <= 0.0 or samples < 2 * WINDOW_SAMPLES:
        return None, None
    for at_end in (True, False):
        found = _reference(data, at_end)
        if found is None:
            continue
        start, length, model, residual = found
        departure = np.abs(data - model).max(axis=0)
        floor = max(0.02 * peak, 6.0 * float(np.sqrt((residual ** 2).mean(axis=1)).max()))
        if departure.max() < floor:
            return None, None  # steady throughout: no event
        above = np.nonzero(departure > max(floor, 0.1 * float(departure.max())))[0]
        if at_end:
            if above[0] < QUIET_START:
                continue  # not steady at the start with respect to the end: try the head
            clearing = int(above[-1]) + 1
            return int(above[0]), clearing if clearing < start else None
        if above[0] < length:
            return None, None  # departs inside its own reference: not a steady head
        return int(above[0]), None
    return None, None


def _reference(data: np.ndarray, at_end: bool) -> tuple[int, int, np.ndarray, np.ndarray] | None:
    """(start, length, model, residual) of the longest steady stretch at the record's end (or start)."""
    peak = float(np.abs(data).max())
    for length, harmonics in REFERENCE_STRETCHES:
        start = data.shape[1] - length if at_end else 0
        coefficients, residual = steady_state_fit(data, start, length, harmonics=harmonics)
        segment = data[:, start:start + length]
        rms = np.sqrt((segment ** 2).mean(axis=1))
        left = np.sqrt((residual ** 2).mean(axis=1))
        if (left <= np.maximum(STEADY_RESIDUAL * rms, NOISE_FLOOR * peak)).all():
            model = steady_state_model(coefficients, data.shape[1], start, harmonics=harmonics)
            return start, length, model, residual
    return None
