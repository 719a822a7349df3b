"""Physics checks of the event simulator, measured on the signal itself (DFT, RMS, onset detection)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from services.labels import LABEL_TO_ID, LABELS
from services.simulation import generate_dataset, parameter_specs, simulate_event
from services.waveform import N_SAMPLES, SAMPLE_RATE_HZ

TWO_CYCLES = int(round(2 * SAMPLE_RATE_HZ / 60.0))  # 333 samples
PT = "internal_power_transformer_internal_faults_"
SERIES = "internal_ispar_series_transformer_internal_faults_"
EXCITING = "internal_ispar_exciting_transformer_internal_faults_"


def _windows(label: str, n: int, seed: int = 1234) -> np.ndarray:
    X, y, _ = generate_dataset(n, seed, classes=[label])
    assert (y == LABEL_TO_ID[label]).all()
    return X.astype(np.float64)


def _amplitude(segment: np.ndarray, frequency: float) -> np.ndarray:
    """Single-bin DFT amplitude per phase (Goertzel-equivalent) at `frequency`."""
    t = np.arange(segment.shape[-1]) / SAMPLE_RATE_HZ
    return np.abs((segment * np.exp(-2j * np.pi * frequency * t)).sum(-1)) * 2.0 / segment.shape[-1]


def _onset(x: np.ndarray, threshold: float) -> int:
    """First sample where any phase exceeds `threshold` (the event start, seen from the signal)."""
    above = np.flatnonzero(np.abs(x).max(axis=0) > threshold)
    return int(above[0]) if above.size else 0


def _segment_after(x: np.ndarray, start: int, length: int = TWO_CYCLES) -> np.ndarray:
    start = min(start, N_SAMPLES - length)
    return x[:, start:start + length]


def test_sim001_every_label_generates_finite_float32_windows_with_params():
    X, y, params = generate_dataset(2, 7)
    assert X.shape == (90, 3, 726) and X.dtype == np.float32
    assert y.dtype == np.int64 and y.tolist() == [i for i in range(45) for _ in range(2)]
    assert np.isfinite(X).all()
    for row, label_id in zip(params, y, strict=True):
        record = json.loads(row)
        assert record["label"] == LABELS[label_id]
        assert 0.0 <= record["inception_ms"] <= 0.6 * 72.6 + 1e-6
        if record["category"] == "internal_fault":
            for key in ("fault_resistance_ohm", "inception_angle_deg", "x_over_r", "loading_percent",
                        "clearing_ms", "tap_position"):
                assert key in record
            assert ("winding_percent" in record) or ("shorted_turns_percent" in record)


def test_sim002_same_seed_gives_identical_bytes_whatever_the_class_order():
    first = generate_dataset(3, 99, classes=[5, "transient_ferroresonance", 40])
    second = generate_dataset(3, 99, classes=[40, 41, 5])
    assert first[0].tobytes() == second[0].tobytes()
    assert first[1].tolist() == second[1].tolist() and first[2] == second[2]
    other_seed = generate_dataset(3, 100, classes=[5])
    assert other_seed[0].tobytes() != first[0][:3].tobytes()
    a, pa = simulate_event("transient_magnetising_inrush", seed=3)
    b, pb = simulate_event(42, seed=3)
    assert a.tobytes() == b.tobytes() and pa == pb


def test_sim003_inrush_second_harmonic_at_least_15_percent_in_dominant_phase():
    ratios = []
    for x in _windows("transient_magnetising_inrush", 40):
        segment = _segment_after(x, _onset(x, 0.3))
        fundamental = _amplitude(segment, 60.0)
        dominant = int(np.argmax(fundamental))
        ratios.append(_amplitude(segment, 120.0)[dominant] / fundamental[dominant])
    assert min(ratios) >= 0.15, f"median {np.median(ratios):.2f}, min {min(ratios):.2f}"


def test_sim004_inrush_is_unipolar_and_gapped_in_dominant_phase():
    for x in _windows("transient_magnetising_inrush", 20, seed=5):
        phase = x[int(np.argmax(np.abs(x).max(axis=1)))]
        peak = np.abs(phase).max()
        same_sign = phase * np.sign(phase[np.argmax(np.abs(phase))])
        assert same_sign.min() > -0.35 * peak  # unipolar: the other polarity stays small
        onset = _onset(x, 0.3)
        gaps = np.abs(phase[onset:]) < 0.05 * peak
        assert gaps.mean() > 0.2  # the unsaturated part of each cycle draws (almost) nothing


def test_sim005_capacitor_switching_carries_energy_at_several_hundred_hz():
    for x in _windows("transient_capacitor_switching", 30):
        segment = x[:, _onset(x, 0.05):]
        spectrum = np.abs(np.fft.rfft(segment, axis=-1)) ** 2
        freqs = np.fft.rfftfreq(segment.shape[-1], 1.0 / SAMPLE_RATE_HZ)
        band = spectrum[:, (freqs >= 200) & (freqs <= 1500)].sum()
        assert band / spectrum.sum() > 0.15
        peak_freq = freqs[np.argmax(spectrum[:, freqs > 150].sum(axis=0)) + np.sum(freqs <= 150)]
        assert 200 <= peak_freq <= 1300


def test_sim006_non_linear_load_carries_5th_and_7th_but_no_3rd_harmonic():
    for x in _windows("transient_non-linear_load_switching", 30):
        segment = x[:, -TWO_CYCLES // 2:]  # the last cycle: the load current has risen (onset <= 60 %)
        fundamental = _amplitude(segment, 60.0)
        k = int(np.argmax(fundamental))
        fifth, seventh = _amplitude(segment, 300.0)[k], _amplitude(segment, 420.0)[k]
        third = _amplitude(segment, 180.0)[k]
        assert fifth > 0.08 * fundamental[k] and seventh > 0.04 * fundamental[k]
        assert third < 0.5 * fifth  # balanced six-pulse current: no triplen harmonics


def _rms(x: np.ndarray) -> np.ndarray:
    return np.sqrt((x**2).mean(axis=-1))


@pytest.mark.parametrize(
    ("suffix", "faulted"),
    [("Class1", "A"), ("Class2", "B"), ("Class3", "C"), ("Class4", "AB"), ("Class5", "AC"),
     ("Class6", "BC"), ("Class8", "AB"), ("Class9", "AC"), ("class10", "BC")],
)
def test_sim007_power_transformer_faulted_phases_carry_more_current(suffix, faulted):
    faulted_idx = ["ABC".index(p) for p in faulted]
    healthy_idx = [i for i in range(3) if i not in faulted_idx]
    for x in _windows(PT + suffix, 15):
        rms = _rms(x)
        assert rms[faulted_idx].min() > 3.0 * rms[healthy_idx].max()


def test_sim008_ispar_faults_show_in_other_phases_than_the_faulted_winding():
    for x in _windows(SERIES + "Class1", 15):
        rms = _rms(x[:, _onset(x, 0.02):])
        assert rms[1] > 0.4 * rms[0] and rms[2] < 0.3 * rms[1]  # A and, through the delta, B
    for seed in range(10):
        x, _ = simulate_event(EXCITING + "Class1", seed=seed, fault_resistance_ohm=0.5, winding_percent=80.0)
        rms = _rms(x.astype(np.float64)[:, _onset(x, 0.05):])
        assert min(rms[1], rms[2]) > 0.05 * rms[0]  # quadrature phases fed by A's regulating winding
        assert 0.6 < rms[1] / rms[2] < 1.6


def test_sim009_current_falls_to_near_zero_after_breaker_clearing():
    X, _, params = generate_dataset(60, 21, classes=[PT + "Class1", PT + "class11"])
    checked = 0
    for x, row in zip(X, params, strict=True):
        clear_ms = json.loads(row)["clearing_ms"]
        if clear_ms is None or clear_ms > 62.0:
            continue
        start = int(np.ceil((clear_ms + 6.0) * SAMPLE_RATE_HZ / 1000.0))
        during = np.abs(x[:, : start - 60]).max()
        assert np.abs(x[:, start:]).max() < max(0.05 * during, 0.03)
        checked += 1
    assert checked >= 10


def test_sim010_pre_event_current_is_small_and_balanced():
    for label in (PT + "Class1", SERIES + "Class7", "transient_magnetising_inrush",
                  "transient_capacitor_switching", "transient_external_fault_with_CT_saturation"):
        for seed in range(5):
            x, _ = simulate_event(label, seed=seed, inception_ms=35.0)
            pre = x[:, :330].astype(np.float64)
            rms = _rms(pre)
            assert rms.max() < 0.02
            assert rms.max() / rms.min() < 1.6


def test_sim011_turn_to_turn_fault_is_small_and_arc_distorted():
    tt_ratio, ag_ratio = [], []
    for label, store in ((PT + "tt", tt_ratio), (PT + "Class1", ag_ratio)):
        for x in _windows(label, 20):
            k = int(np.argmax(_rms(x)))
            segment = x[k:k + 1, -TWO_CYCLES:]
            store.append(_amplitude(segment, 180.0)[0] / _amplitude(segment, 60.0)[0])
    assert np.median(tt_ratio) > 0.12 and min(tt_ratio) > 3 * np.median(ag_ratio)
    tt_peak = np.abs(_windows(PT + "tt", 30)).max(axis=(1, 2))
    ag_peak = np.abs(_windows(PT + "Class1", 30)).max(axis=(1, 2))
    assert np.median(tt_peak) < 0.4 * np.median(ag_peak)


def test_sim012_external_fault_differential_appears_only_after_ct_saturation():
    for x in _windows("transient_external_fault_with_CT_saturation", 20):
        peak = np.abs(x).max()
        onset = _onset(x, 0.05 * peak)
        assert peak > 1.0
        # no differential before the core saturates, then clipped pulses with current-free gaps
        biggest = x[int(np.argmax(np.abs(x).max(axis=1)))]
        assert (np.abs(biggest[onset:]) < 0.05 * peak).mean() > 0.2


def test_sim013_ferroresonance_is_sustained_and_subharmonic_mode_has_20hz():
    for x in _windows("transient_ferroresonance", 20):
        onset = _onset(x, 0.1 * np.abs(x).max())
        tail = np.abs(x[:, -250:]).max()  # the last 25 ms: half a period of the slowest (20 Hz) mode
        assert tail > 0.3 * np.abs(x[:, onset:]).max()  # sustained to the end of the window
    x, params = simulate_event("transient_ferroresonance", seed=4, mode_index=2, inception_ms=0.0)
    assert params["mode"] == "subharmonic_20Hz"
    full = x.astype(np.float64)[:, 60:]
    assert (_amplitude(full, 20.0) > 0.5 * _amplitude(full, 60.0)).any()


def test_sim014_sympathetic_inrush_builds_up_during_the_window():
    grew = 0
    windows = _windows("transient_sympathetic_inrush", 30)
    for x in windows:
        onset = _onset(x, 0.3)
        first = np.abs(x[:, onset:onset + 170]).max()
        last = np.abs(x[:, -170:]).max()
        grew += last > first
    assert grew >= 0.8 * len(windows)


def test_sim015_parameter_specs_are_usable_by_the_form_and_validated():
    for label in LABELS:
        specs = parameter_specs(label)
        assert 3 <= len(specs) <= 5
        values = {}
        for spec in specs:
            assert set(spec) == {"name", "title", "unit", "min", "max", "default", "step"}
            assert spec["min"] <= spec["default"] <= spec["max"] and spec["step"] > 0
            values[spec["name"]] = spec["default"]
        x, params = simulate_event(label, seed=1, **values)
        assert x.shape == (3, 726) and x.dtype == np.float32 and np.isfinite(x).all()
        for name, value in values.items():
            assert params[name] == pytest.approx(value)
    with pytest.raises(ValueError, match="not_a_parameter"):
        simulate_event(PT + "Class1", not_a_parameter=1.0)
    with pytest.raises(ValueError, match="fault_resistance_ohm"):
        simulate_event(PT + "Class1", fault_resistance_ohm=1e6)
    with pytest.raises(ValueError, match="tap_position"):
        simulate_event(SERIES + "Class1", tap_position=2.5)
    with pytest.raises(ValueError, match="unknown label"):
        simulate_event("no_such_event")
    with pytest.raises(ValueError, match="per_class"):
        generate_dataset(0, 1)


def test_sim016_overrides_change_the_physics_as_expected():
    weak, _ = simulate_event(PT + "Class1", seed=2, fault_resistance_ohm=80.0, winding_percent=10.0)
    strong, _ = simulate_event(PT + "Class1", seed=2, fault_resistance_ohm=0.1, winding_percent=100.0)
    assert np.abs(strong).max() > 10 * np.abs(weak).max()
    x, _ = simulate_event("transient_capacitor_switching", seed=2, resonant_frequency_hz=600.0,
                          inception_ms=5.0, switching_angle_deg=90.0)
    segment = x.astype(np.float64)[:, 60:260]
    assert (_amplitude(segment, 600.0) > _amplitude(segment, 300.0)).all()
