"""services.analytics against signals whose answer is known in closed form.

Tolerances: phasors, harmonics, THD and sequence components of signals made of DC and harmonics up
to the 15th are exact for the least-squares fit, so they are checked to 1e-9 (relative) and 1e-6
degrees; the true RMS over exactly one cycle from 167 samples (weight 2/3 on the last: a rectangle
rule over a non-integer period) to 1e-4 for a 60 Hz wave and 5e-4 with harmonics up to the 15th;
a DC time constant to 3 % (no event) and 5 % (inside a fault); inception to 0.5 ms and clearing
to 1 ms (the departure must exceed 10 % of its largest value, which a wave starting near a zero
crossing takes a fraction of a millisecond to reach).
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from services.analytics import FORTESCUE, compute_analytics
from services.analytics.phasors import WINDOW_SAMPLES, sliding_phasors

RATE, F = 10_000.0, 60.0
time_s = np.arange(726) / RATE
W = 2 * np.pi * F
A = np.exp(2j * np.pi / 3)


def wave(rms: float, angle_deg: float, order: int = 1, t: np.ndarray = time_s) -> np.ndarray:
    """sqrt(2) rms cos(h w t + angle): the phasor convention of the module."""
    return np.sqrt(2.0) * rms * np.cos(order * W * t + np.radians(angle_deg))


def balanced(rms: float, angle_deg: float = 0.0) -> np.ndarray:
    return np.stack([wave(rms, angle_deg), wave(rms, angle_deg - 120), wave(rms, angle_deg + 120)])


def test_pure_60_hz_wave():
    result = compute_analytics(balanced(0.9, 30.0))
    assert np.allclose(result.fundamental, 0.9, rtol=1e-9)
    assert np.allclose(result.angle_deg[0], 30.0, atol=1e-6)  # the same at every position: record-time angles
    assert np.allclose(result.angle_deg[1], -90.0, atol=1e-6)
    assert np.allclose(result.angle_deg[2], 150.0, atol=1e-6)
    assert np.abs(result.harmonics).max() < 1e-9 and np.nanmax(result.thd) < 1e-9
    assert np.abs(result.dc).max() < 1e-9
    assert np.allclose(result.rms, 0.9, rtol=1e-4)
    sequence = result.sequence_magnitudes
    assert np.allclose(sequence["i1"], 0.9, rtol=1e-9)
    assert sequence["i2_i1"].max() < 1e-9 and sequence["i0_i1"].max() < 1e-9
    assert result.inception_ms is None and result.clearing_ms is None  # steady: no event
    assert result.tau_ms == (None, None, None)
    figures = result.key_figures()
    assert figures["peak_ka"] == pytest.approx(0.9 * np.sqrt(2), rel=1e-4)


def test_known_harmonic_mix():
    mix = {1: (1.0, 10.0), 2: (0.2, 40.0), 3: (0.05, 0.0), 5: (0.35, -70.0), 7: (0.1, 5.0), 15: (0.04, 90.0)}
    signal = sum(wave(rms, angle, order) for order, (rms, angle) in mix.items()) + 0.3  # plus a steady DC
    result = compute_analytics(np.stack([signal, signal, signal]))
    for order, (rms, angle) in mix.items():
        assert np.allclose(np.abs(result.phasors[0, :, order - 1]), rms, rtol=1e-9), order
        assert np.allclose(np.degrees(np.angle(result.phasors[0, :, order - 1])), angle, atol=1e-6), order
    assert np.allclose(result.harmonic_ratio(2), 0.2, rtol=1e-9)
    assert np.allclose(result.harmonic_ratio(5), 0.35, rtol=1e-9)
    assert np.allclose(result.ratios[0, :, 2], 0.0, atol=1e-9)  # 4th (index order - 2): absent
    thd = np.sqrt(sum(rms ** 2 for order, (rms, _) in mix.items() if order > 1))
    assert np.allclose(result.thd, thd, rtol=1e-9)
    assert np.allclose(result.dc, 0.3, rtol=1e-9)
    assert np.allclose(result.rms, np.sqrt(0.3 ** 2 + sum(rms ** 2 for rms, _ in mix.values())), rtol=5e-4)
    assert result.tau_ms == (None, None, None)  # a standing DC does not decay


def test_known_unbalance_gives_its_sequence_components():
    i0, i1, i2 = 0.2 * np.exp(-1j * np.pi / 6), 1.0, 0.3 * np.exp(1j * np.pi / 4)
    phases = [i0 + i1 + i2, i0 + A ** 2 * i1 + A * i2, i0 + A * i1 + A ** 2 * i2]  # Fortescue, synthesis
    x = np.stack([wave(abs(p), np.degrees(np.angle(p))) for p in phases])
    result = compute_analytics(x)
    assert np.allclose(result.sequence[0], i0, atol=1e-9)
    assert np.allclose(result.sequence[1], i1, atol=1e-9)
    assert np.allclose(result.sequence[2], i2, atol=1e-9)
    sequence = result.sequence_magnitudes
    assert np.allclose(sequence["i2_i1"], 0.3, rtol=1e-9) and np.allclose(sequence["i0_i1"], 0.2, rtol=1e-9)
    assert np.allclose(FORTESCUE @ np.array([1, A ** 2, A]), [0, 1, 0])  # a positive-sequence set is pure I1


def test_exponential_dc_time_constant():
    tau = 30.0e-3
    signal = wave(1.0, -60.0) + 0.8 * np.exp(-time_s / tau)
    result = compute_analytics(np.stack([signal, wave(0.5, 180), wave(0.5, 60)]))
    assert result.tau_ms[0] == pytest.approx(30.0, rel=0.03)
    assert result.tau_ms[1] is None and result.tau_ms[2] is None  # no DC there
    # the DC at a window's centre, and the fundamental barely disturbed by the decay (the ramp term)
    centre = (result.start_ms + WINDOW_SAMPLES / RATE * 500.0) / 1000.0
    assert np.allclose(result.dc[0], 0.8 * np.exp(-centre / tau), rtol=0.03)
    assert np.allclose(result.fundamental[0], 1.0, rtol=0.01)


def test_fault_with_dc_offset_inception_and_clearing():
    standing = balanced(0.05)
    inception, clearing, tau = 12.0e-3, 60.0e-3, 25.0e-3
    on = (time_s >= inception) & (time_s < clearing)
    fault = np.where(on, wave(1.2, 20.0) - wave(1.2, 20.0, t=np.full_like(time_s, inception))
                     * np.exp(-(time_s - inception) / tau), 0.0)  # fully offset: starts from zero current
    x = standing + np.stack([fault, -fault, np.zeros_like(time_s)])
    result = compute_analytics(x)
    assert result.inception_ms == pytest.approx(12.0, abs=0.5)
    assert result.clearing_ms == pytest.approx(60.0, abs=1.0)
    assert result.tau_ms[0] == pytest.approx(25.0, rel=0.05)
    k = result.event_position
    assert result.start_ms[k] >= result.inception_ms
    assert result.fundamental[0, k] == pytest.approx(np.abs(1.2 * np.exp(0.35j) + 0.05), rel=0.02)
    figures = result.key_figures()
    assert figures["inception_ms"] == result.inception_ms and figures["clearing_ms"] == result.clearing_ms
    assert figures["dc_phase"] in ("A", "B")


@pytest.mark.parametrize("start_ms", [20.0, 33.3])
def test_step_onset_without_clearing(start_ms):
    x = balanced(0.1)
    x[0] += np.where(time_s >= start_ms / 1000.0, wave(1.0, 75.0), 0.0)
    result = compute_analytics(x)
    assert result.inception_ms == pytest.approx(start_ms, abs=0.5)
    assert result.clearing_ms is None  # still on at the end of the record


def test_step_onset_and_clearing():
    x = balanced(0.1)
    x[1] += np.where((time_s >= 5e-3) & (time_s < 50e-3), wave(0.8, 0.0), 0.0)
    result = compute_analytics(x)
    assert result.inception_ms == pytest.approx(5.0, abs=0.5)
    assert result.clearing_ms == pytest.approx(50.0, abs=1.0)
    # the phase-B fault shows as negative and zero sequence at the event's cycle
    assert result.sequence_magnitudes["i2_i1"][result.event_position] > 0.3


def test_sliding_windows_cover_the_record():
    series = sliding_phasors(balanced(1.0))
    assert series.start[0] == 0 and series.start[-1] + WINDOW_SAMPLES <= 726
    assert series.phasors.shape == (3, len(series.start), 15)


def test_to_dict_is_plain_json_with_nulls_for_missing_ratios():
    result = compute_analytics(np.zeros((3, 726)))
    data = result.to_dict()
    text = json.dumps(data, allow_nan=False)  # raises on NaN
    assert data["phases"]["A"]["harmonic_ratios"][0][0] is None  # no fundamental, no ratio
    assert data["key_figures"]["second_harmonic_ratio"] is None
    assert len(data["phases"]["B"]["harmonics_rms"][0]) == 14 and "least-squares" in data["method"]
    full = compute_analytics(balanced(1.0)).to_dict()
    assert full["phases"]["A"]["fundamental_rms"][0] == pytest.approx(1.0)
    assert json.loads(text) == data


@pytest.mark.parametrize("bad", [np.zeros((2, 726)), np.zeros((3, 100)), np.full((3, 726), np.nan)])
def test_bad_input_is_refused(bad):
    with pytest.raises(ValueError):
        compute_analytics(bad)
