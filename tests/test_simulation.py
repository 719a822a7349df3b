"""Physics checks of the event simulator, measured on the signal itself (DFT, RMS, energy)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from services.labels import LABEL_TO_ID, LABELS
from services.simulation import RELAY_VIEWS, generate_dataset, parameter_specs, simulate_event
from services.simulation.common import FAULT_DURATION_MS, INCEPTION_STEP_MS
from services.simulation.transients import IN_PROGRESS_SHARE, IN_PROGRESS_SHARES
from services.waveform import N_SAMPLES, REFERENCE_RATED_CURRENT_KA, SAMPLE_RATE_HZ

TWO_CYCLES = int(round(2 * SAMPLE_RATE_HZ / 60.0))  # 333 samples
PT = "internal_power_transformer_internal_faults_"
SERIES = "internal_ispar_series_transformer_internal_faults_"
EXCITING = "internal_ispar_exciting_transformer_internal_faults_"
UNITS = (PT, SERIES, EXCITING)


def _batch(label: str, n: int, seed: int = 1234, **kw) -> tuple[np.ndarray, list[dict]]:
    X, y, params = generate_dataset(n, seed, classes=[label], **kw)
    assert (y == LABEL_TO_ID[label]).all()
    return X.astype(np.float64), [json.loads(p) for p in params]


def _amplitude(segment: np.ndarray, frequency: float) -> np.ndarray:
    """Single-bin DFT amplitude per phase (Goertzel-equivalent) at `frequency`."""
    return np.abs(_phasor(segment, frequency))


def _phasor(segment: np.ndarray, frequency: float) -> np.ndarray:
    t = np.arange(segment.shape[-1]) / SAMPLE_RATE_HZ
    return (segment * np.exp(-2j * np.pi * frequency * t)).sum(-1) * 2.0 / segment.shape[-1]


def _sample(ms: float) -> int:
    return int(np.ceil(ms * SAMPLE_RATE_HZ / 1000.0))


def _standing_peak_bound(p: dict) -> float:
    """Largest instantaneous standing current the parameters allow, plus 5 sigma of noise."""
    harmonics = 1.0 + p["magnetising_h3"] + p["magnetising_h5"] + p["magnetising_h7"]
    return 1.1 * (p["standing_mismatch_ka"] + p["magnetising_ka"] * harmonics) + 5.0 * p["noise_std_ka"]


def test_sim001_every_label_generates_finite_float32_windows_with_params():
    X, y, params = generate_dataset(2, 7)
    assert X.shape == (90, 3, 726) and X.dtype == np.float32
    assert y.dtype == np.int64 and y.tolist() == [i for i in range(45) for _ in range(2)]
    assert np.isfinite(X).all()
    assert abs(REFERENCE_RATED_CURRENT_KA - 500e6 / (np.sqrt(3) * 230e3) / 1000) < 1e-4
    for row, label_id in zip(params, y, strict=True):
        record = json.loads(row)
        assert record["label"] == LABELS[label_id]
        if record.get("timing") == "in_progress" and record["category"] == "transient":
            # a sustained transient begun before the window
            assert -30 * 1000 / 60 <= record["inception_ms"] < 0.0
        elif record.get("timing") == "in_progress":
            # a fault already flowing when the window opens, cleared by the 50 ms protocol inside it
            assert -2.7 * 1000 / 60 <= record["inception_ms"] < 0.0
            assert 0.0 < record["clearing_ms"] < 72.6
        else:
            assert 0.0 <= record["inception_ms"] <= 0.6 * 72.6 + 1e-6
        assert 0.0 < record["standing_current_ka"] <= 0.3  # drawn 0.0005-0.3; partial cancellation lowers it
        if record["category"] == "internal_fault":
            for key in ("fault_resistance_ohm", "inception_angle_deg", "x_over_r", "loading_percent",
                        "clearing_ms", "clearing_command_ms", "tap_position", "relay_view", "timing"):
                assert key in record
            assert record["relay_view"] in RELAY_VIEWS
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
    # forcing the relay view changes only the view, of faults and transients: every other draw stays
    forced = generate_dataset(3, 99, classes=[5, 40], relay_view="delta_tied")
    for row_forced, row_free in zip(forced[2], first[2][:6], strict=True):  # classes 5 and 40
        a_row, b_row = json.loads(row_forced), json.loads(row_free)
        assert a_row["relay_view"] == "delta_tied"
        assert a_row["inception_ms"] == b_row["inception_ms"]
        assert a_row["standing_current_ka"] == b_row["standing_current_ka"]
    with pytest.raises(ValueError, match="relay_view"):
        generate_dataset(1, 1, classes=[0], relay_view="nonsense")


def test_sim003_time_protocol_sweep_duration_and_augmentation_share():
    rows = []
    for unit in UNITS:
        rows += _batch(unit + "Class1", 200, seed=3)[1]
    protocol = [r for r in rows if r["timing"] == "protocol"]
    share = 1.0 - len(protocol) / len(rows)
    assert 0.22 < share < 0.38
    inceptions = np.array([r["inception_ms"] for r in protocol])
    assert inceptions.min() >= 0.3 and inceptions.max() <= 1.8 + 12 * INCEPTION_STEP_MS
    assert inceptions.max() - inceptions.min() > 15.0  # about one cycle swept
    durations = np.array([r["clearing_command_ms"] - r["inception_ms"] for r in protocol])
    assert np.allclose(durations, FAULT_DURATION_MS)
    cleared = [r for r in protocol if r["clearing_ms"] is not None]
    assert len(cleared) > 0.6 * len(protocol)
    assert all(r["clearing_ms"] >= r["clearing_command_ms"] - 0.1 for r in cleared)


def test_sim004_standing_current_before_the_event_matches_its_level_and_spans_the_range():
    levels = []
    for label in (PT + "Class1", SERIES + "tt", EXCITING + "Class7", "transient_magnetising_inrush",
                  "transient_capacitor_switching", "transient_external_fault_with_CT_saturation"):
        for seed in range(8):
            x, p = simulate_event(label, seed=seed, inception_ms=40.0)
            pre = x.astype(np.float64)[:, :TWO_CYCLES]
            fundamental = _amplitude(pre, 60.0)
            levels.append(p["standing_current_ka"])
            if p["standing_current_ka"] > 20 * p["noise_std_ka"]:
                # balanced and at the drawn level
                assert fundamental == pytest.approx(np.full(3, p["standing_current_ka"]), rel=0.12)
            assert np.abs(pre).max() <= _standing_peak_bound(p)
    _, _, params = generate_dataset(40, 5)
    drawn = np.array([json.loads(r)["standing_current_ka"] for r in params])
    assert drawn.min() < 0.001 and drawn.max() > 0.1
    assert (drawn > 0.05).mean() > 0.1  # larger than a weak fault in a good share of windows


def test_sim005_exciting_unit_magnetising_current_grows_with_the_tap():
    low = [simulate_event(EXCITING + "Class1", seed=s, tap_position=0)[1] for s in range(30)]
    high = [simulate_event(EXCITING + "Class1", seed=s, tap_position=16)[1] for s in range(30)]
    share = [p["magnetising_ka"] / p["standing_current_ka"] for p in low]
    share_high = [p["magnetising_ka"] / p["standing_current_ka"] for p in high]
    assert np.median(share_high) > np.median(share)
    assert all(p["uncompensated_shift_deg"] is not None and p["ratio_mismatch"] is None for p in low)
    _, pt = simulate_event(PT + "Class1", seed=1)
    assert pt["ratio_mismatch"] is not None and pt["uncompensated_shift_deg"] is None


def test_sim006_current_returns_to_the_standing_level_after_the_fault_is_removed():
    checked = 0
    for unit in UNITS:
        for suffix in ("Class1", "Class7", "class11", "tt"):
            X, rows = _batch(unit + suffix, 40, seed=21)
            for x, p in zip(X, rows, strict=True):
                if p["clearing_ms"] is None or p["clearing_ms"] > 70.0:
                    continue
                after = x[:, _sample(p["clearing_ms"]) + 2:]
                assert np.abs(after).max() <= _standing_peak_bound(p) + 0.02 * p["peak_fault_current_ka"]
                checked += 1
    assert checked > 100


@pytest.mark.parametrize("view", RELAY_VIEWS)
def test_sim007_ag_faults_carry_most_energy_in_phase_a_under_every_relay_view(view):
    """Phase A leads under every view; the Yd compensation (I_a - I_b, ...)/sqrt(3) or the lagging
    pairing shows A's current equally in A and its partner phase, the third phase nearly empty."""
    for unit in UNITS:
        X, rows = _batch(unit + "Class1", 30, seed=8, relay_view=view)
        for x, p in zip(X, rows, strict=True):
            assert p["relay_view"] == view
            if p["peak_fault_current_ka"] < 30 * p["standing_current_ka"]:
                continue
            start = max(_sample(p["inception_ms"]), 0)  # a fault in progress flows from sample 0
            stop = _sample(p["clearing_ms"]) if p["clearing_ms"] is not None else N_SAMPLES
            if stop - start < TWO_CYCLES:
                continue  # a fault in progress cleared early: energy over part of a cycle says little
            energy = (x[:, start:stop] ** 2).sum(axis=1)
            if view == "yd_compensated":
                partner = 2 if p["yd_pairing"] == "a-b" else 1  # rows c - a or b - a carry A
                third = 3 - partner
                assert energy[0] == pytest.approx(energy[partner], rel=0.1), (unit, energy)
                assert energy[0] > 20 * energy[third], (unit, energy)
                continue
            # the tie carries at most 0.9 of A's current (delta_tied), so A's 60 Hz amplitude leads;
            # energy would also count the DC offset, which the tie's 20-40 deg shift redistributes
            amplitude = _amplitude(x[:, start:stop].astype(np.float64), 60.0)
            assert amplitude[0] > 1.05 * max(amplitude[1], amplitude[2]), (unit, view, amplitude)
            if view == "faulted_windings":
                assert energy[0] > 50 * max(energy[1], energy[2])


def test_sim008_relay_view_mixture_is_identical_for_every_unit_and_no_quadrature_coupling():
    shares = []
    for unit in UNITS:
        rows = _batch(unit + "Class1", 300, seed=4)[1]
        views = [r["relay_view"] for r in rows]
        shares.append([views.count(v) / len(views) for v in RELAY_VIEWS])
    shares = np.array(shares)
    assert (shares.max(axis=0) - shares.min(axis=0) < 0.1).all()
    # exciting-unit AG seen by the faulted windings: the healthy phases carry only the standing current
    x, p = simulate_event(EXCITING + "Class1", seed=2, relay_view="faulted_windings",
                          fault_resistance_ohm=0.5, winding_percent=80.0, standing_current_ka=0.001)
    segment = x.astype(np.float64)[:, _sample(p["inception_ms"]):_sample(p["inception_ms"]) + TWO_CYCLES]
    fundamental = _amplitude(segment, 60.0)
    assert max(fundamental[1], fundamental[2]) < 0.01 * fundamental[0]


def test_sim009_three_phase_to_ground_ground_share_reaches_zero():
    residual = []
    for unit in UNITS:
        X, rows = _batch(unit + "Class7", 100, seed=6, relay_view="faulted_windings")
        for x, p in zip(X, rows, strict=True):
            assert 0.0 <= p["ground_share"] <= 0.5
            if p["peak_fault_current_ka"] < 30 * p["standing_current_ka"]:
                continue
            start = _sample(p["inception_ms"]) + 83  # half a cycle in: past most of the offset
            segment = x[:, start:start + 167]
            phasors = _phasor(segment, 60.0)
            residual.append(np.abs(phasors.sum()) / np.abs(phasors).max())
    assert min(residual) < 0.05 and max(residual) > 0.3


def test_sim010_dc_time_constant_range_is_the_same_for_every_unit():
    specs = [{s["name"]: s for s in parameter_specs(unit + "Class1")}["x_over_r"] for unit in UNITS]
    assert all((s["min"], s["max"]) == (specs[0]["min"], specs[0]["max"]) for s in specs)
    assert specs[0]["min"] <= 1.5 and specs[0]["max"] >= 40.0
    for unit in UNITS:
        tau = np.array([r["dc_time_constant_ms"] for r in _batch(unit + "class11", 200, seed=9)[1]])
        assert tau.min() < 6.0 and tau.max() > 80.0


def test_sim011_power_transformer_faulted_phases_carry_more_current_seen_by_the_windings():
    for suffix, faulted in (("Class2", "B"), ("Class4", "AB"), ("Class6", "BC"), ("Class9", "AC")):
        idx = ["ABC".index(c) for c in faulted]
        healthy = [i for i in range(3) if i not in idx]
        X, rows = _batch(PT + suffix, 20, relay_view="faulted_windings")
        for x, p in zip(X, rows, strict=True):
            if p["peak_fault_current_ka"] < 30 * p["standing_current_ka"]:
                continue
            rms = np.sqrt((x ** 2).mean(axis=1))
            assert rms[idx].min() > 3.0 * rms[healthy].max()


def test_sim012_ct_saturation_event_always_saturates():
    X, rows = _batch("transient_external_fault_with_CT_saturation", 200, seed=11,
                     relay_view="faulted_windings")
    for x, p in zip(X, rows, strict=True):
        assert p["time_to_saturation_ms"] is not None and p["time_to_saturation_ms"] >= 0.0
        assert p["inception_ms"] + p["time_to_saturation_ms"] <= 72.6 - 16.6  # a cycle before the end
        peak = np.abs(x).max()
        # the saturating CT's error current stands well out of the standing current (up to 0.3 kA)
        assert peak >= 0.02 * p["fault_current"] and peak > 5 * _standing_peak_bound(p)
        biggest = x[int(np.argmax(np.abs(x).max(axis=1)))]
        onset = int(np.flatnonzero(np.abs(biggest) > 0.05 * peak)[0])
        if N_SAMPLES - onset > TWO_CYCLES and p["ct_saturation"] == "dc_offset":
            # clipped pulses with current-free gaps, once per cycle
            assert (np.abs(biggest[onset:]) < 0.05 * peak).mean() > 0.2
    x, p = simulate_event("transient_external_fault_with_CT_saturation", seed=1,
                          **{s["name"]: s["default"] for s in
                             parameter_specs("transient_external_fault_with_CT_saturation")})
    assert np.abs(x).max() > 0.3
    with pytest.raises(ValueError, match="saturate"):
        simulate_event("transient_external_fault_with_CT_saturation", seed=1, saturation_factor=40.0,
                       inception_ms=43.0, x_over_r=10.0, inception_angle_deg=95.7)


def test_sim013_inrush_second_harmonic_both_core_types_and_remanence():
    X, rows = _batch("transient_magnetising_inrush", 60)
    ratios = []
    for x, p in zip(X, rows, strict=True):
        onset = max(_sample(p["inception_ms"]), 0)  # in progress: from the window start
        segment = x[:, min(onset, N_SAMPLES - TWO_CYCLES):][:, :TWO_CYCLES]
        fundamental = _amplitude(segment, 60.0)
        k = int(np.argmax(fundamental))
        ratios.append(_amplitude(segment, 120.0)[k] / fundamental[k])
        remanence = np.array([p["remanence_a_pu"], p["remanence_b_pu"], p["remanence_c_pu"]])
        if p["core"] == "three_limb":
            assert abs(remanence.sum()) < 1e-5
    assert min(ratios) >= 0.15, f"median {np.median(ratios):.2f}, min {min(ratios):.2f}"
    assert {p["core"] for p in rows} == {"single_phase_bank", "three_limb"}
    independent = [p for p in rows if p["core"] == "single_phase_bank"]
    sums = [abs(p["remanence_a_pu"] + p["remanence_b_pu"] + p["remanence_c_pu"]) for p in independent]
    assert max(sums) > 0.2


def _rectifier(seed: int, **overrides) -> tuple[np.ndarray, dict]:
    values = {"load_current": 2.0, "inception_ms": 0.0, "standing_current_ka": 0.0005,
              "commutation_overlap_deg": 6.0, **overrides}
    x, p = simulate_event("transient_non-linear_load_switching", seed=seed,
                          relay_view="faulted_windings", **values)
    return x.astype(np.float64)[:, -2 * TWO_CYCLES // 2 - 167:][:, :333], p


def test_sim014_rectifier_harmonics_follow_pulse_number_and_connection():
    for seed in range(4):
        for connection, expected in ((0, np.pi), (1, 0.0)):
            segment, p = _rectifier(seed, pulse_number=6, transformer_connection=connection)
            one, five, seven = (_phasor(segment, f) for f in (60.0, 300.0, 420.0))
            assert (np.abs(five) > 0.12 * np.abs(one)).all() and (np.abs(seven) > 0.08 * np.abs(one)).all()
            assert (_amplitude(segment, 180.0) < 0.02 * np.abs(one)).all()  # no triplens
            # the 5th relative to the fundamental: reversed by the delta-wye's 30 deg per sequence
            relative = np.angle(five * np.conj(one) ** 5)
            assert np.all(np.abs(np.angle(np.exp(1j * (relative - expected)))) < 0.35), relative
        segment, p = _rectifier(seed, pulse_number=12)
        one, five, seven, eleven = (_amplitude(segment, f) for f in (60.0, 300.0, 420.0, 660.0))
        assert (five < 0.02 * one).all() and (seven < 0.02 * one).all()
        assert (eleven > 0.05 * one).all()
    X, rows = _batch("transient_non-linear_load_switching", 60)
    assert {r["pulse_number"] for r in rows} == {6.0, 12.0}
    assert {r["connection"] for r in rows} == {"wye-wye", "delta-wye", "wye-wye + delta-wye"}
    for x, p in zip(X, rows, strict=True):
        if p["load_current"] < 40 * p["standing_current_ka"] or p["inception_ms"] > 30.0 or p["action"] == "off":
            continue
        segment = x[:, -TWO_CYCLES:]
        one, five = _amplitude(segment, 60.0), _amplitude(segment, 300.0)
        k = int(np.argmax(one))
        if p["pulse_number"] == 6.0:
            assert five[k] > 0.08 * one[k]
        else:
            assert five[k] < 0.03 * one[k]


def test_sim015_capacitor_switching_carries_energy_at_its_resonance():
    """Isolated banks ring at 250-1200 Hz, back-to-back banks at 1-4 kHz (measured around f_r)."""
    X, rows = _batch("transient_capacitor_switching", 60)
    for x, p in zip(X, rows, strict=True):
        if p["steady_current"] < 20 * p["standing_current_ka"]:
            continue
        segment = x[:, _sample(p["inception_ms"]):]
        spectrum = np.abs(np.fft.rfft(segment, axis=-1)) ** 2
        freqs = np.fft.rfftfreq(segment.shape[-1], 1.0 / SAMPLE_RATE_HZ)
        f_r = p["resonant_frequency_hz"]
        band = spectrum[:, (freqs >= 0.7 * f_r) & (freqs <= 1.3 * f_r)].sum()
        assert band / spectrum.sum() > 0.1


def test_sim016_turn_to_turn_fault_is_small_and_arc_distorted():
    tt_ratio, ag_ratio = [], []
    for label, store in ((PT + "tt", tt_ratio), (PT + "Class1", ag_ratio)):
        X, rows = _batch(label, 30, relay_view="faulted_windings")
        for x, p in zip(X, rows, strict=True):
            if p["peak_fault_current_ka"] < 20 * p["standing_current_ka"] or p["timing"] == "in_progress":
                continue  # too small to read, or cleared before the arc's two cycles are seen
            k = int(np.argmax((x ** 2).sum(axis=1)))
            start = _sample(p["inception_ms"]) + 150
            segment = x[k:k + 1, start:start + TWO_CYCLES]
            store.append(_amplitude(segment, 180.0)[0] / _amplitude(segment, 60.0)[0])
    assert np.median(tt_ratio) > 0.12 and min(tt_ratio) > 2 * np.median(ag_ratio)
    tt = [p["peak_fault_current_ka"] for p in _batch(PT + "tt", 40)[1]]
    ag = [p["peak_fault_current_ka"] for p in _batch(PT + "Class1", 40)[1]]
    assert np.median(tt) < 0.4 * np.median(ag)


def test_sim017_ferroresonance_is_sustained_and_subharmonic_mode_has_20hz():
    x, params = simulate_event("transient_ferroresonance", seed=4, mode_index=2, inception_ms=0.0)
    assert params["mode"] == "subharmonic_20Hz"
    full = x.astype(np.float64)[:, 60:]
    assert (_amplitude(full, 20.0) > 0.5 * _amplitude(full, 60.0)).any()
    assert np.abs(x[:, -250:]).max() > 0.3 * np.abs(x).max()


def test_sim018_sympathetic_inrush_builds_up_during_the_window():
    X, rows = _batch("transient_sympathetic_inrush", 100)
    starting = [(x, p) for x, p in zip(X, rows, strict=True) if p["timing"] != "in_progress"]
    grew = sum(np.abs(x[:, -170:]).max() > np.abs(x[:, _sample(p["inception_ms"]):][:, :170]).max()
               for x, p in starting)
    assert len(starting) > 20 and grew >= 0.8 * len(starting)


def test_sim033_sympathetic_offsets_sum_to_zero_in_three_limb_cores_only():
    """A three-limb core has no zero-sequence flux path, so its DC offsets sum to zero; a bank of
    single-phase units keeps each phase's own remanence (Bronzeado & Yacamini 1995)."""
    _, rows = _batch("transient_sympathetic_inrush", 200, seed=77)
    total = {core: np.array([abs(sum(r[f"dc_flux_{p}_pu"] for p in "abc")) for r in rows if r["core"] == core])
             for core in ("three_limb", "single_phase_bank")}
    assert len(total["three_limb"]) > 60 and len(total["single_phase_bank"]) > 60
    assert total["three_limb"].max() < 1e-5  # the parameters are stored to 6 decimals
    assert np.median(total["single_phase_bank"]) > 0.1


def test_sim019_parameter_specs_are_usable_by_the_form_and_validated():
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
    with pytest.raises(ValueError, match="tap_position"):
        simulate_event(PT + "Class1", tap_position=2)  # the power transformer has no regulator tap
    with pytest.raises(ValueError, match="pulse_number"):
        simulate_event("transient_non-linear_load_switching", pulse_number=7)
    with pytest.raises(ValueError, match="unknown label"):
        simulate_event("no_such_event")
    with pytest.raises(ValueError, match="per_class"):
        generate_dataset(0, 1)


def test_sim020_overrides_change_the_physics_as_expected():
    weak, _ = simulate_event(PT + "Class1", seed=2, fault_resistance_ohm=80.0, winding_percent=10.0,
                             standing_current_ka=0.001)
    strong, _ = simulate_event(PT + "Class1", seed=2, fault_resistance_ohm=0.1, winding_percent=100.0,
                               standing_current_ka=0.001)
    assert np.abs(strong).max() > 10 * np.abs(weak).max()
    x, _ = simulate_event("transient_capacitor_switching", seed=2, resonant_frequency_hz=600.0,
                          inception_ms=5.0, switching_angle_deg=90.0, standing_current_ka=0.001)
    segment = x.astype(np.float64)[:, 60:260]
    assert (_amplitude(segment, 600.0) > _amplitude(segment, 300.0)).all()


SUSTAINED = ("transient_magnetising_inrush", "transient_sympathetic_inrush", "transient_ferroresonance",
             "transient_non-linear_load_switching", "transient_external_fault_with_CT_saturation")


def test_sim021_sustained_transients_are_in_progress_at_the_window_start_in_their_share():
    for label in SUSTAINED:
        X, rows = _batch(label, 200, seed=31)
        started = [r["timing"] == "in_progress" for r in rows]
        share = IN_PROGRESS_SHARES.get(rows[0]["kind"], IN_PROGRESS_SHARE)
        assert abs(np.mean(started) - share) < 0.1, (label, np.mean(started))
        for x, p in zip(X, rows, strict=True):
            if p["timing"] != "in_progress":
                assert p["inception_ms"] >= 0.0
                continue
            assert p["inception_ms"] < 0.0
            if p["kind"] == "external_fault_ct_saturation":
                # the through fault flows from before the window; its CT may take cycles to
                # saturate (a soft air-core slope gives a small error current at first), but it
                # saturates inside the window
                assert p["saturated_phases"] != ""
                continue
            # no quiet pre-event part: the event is there in the first cycle (a 20 Hz mode: 3 cycles)
            if p["peak_event_ka"] > 30 * _standing_peak_bound(p):
                assert np.abs(x[:, :500]).max() > 5 * _standing_peak_bound(p), (label, p["inception_ms"])
    capacitor = _batch("transient_capacitor_switching", 60)[1]
    assert all(r["timing"] != "in_progress" and r["inception_ms"] >= 0.0 for r in capacitor)
    # an override of the inception places the event inside the window
    x, p = simulate_event("transient_ferroresonance", seed=3, inception_ms=20.0)
    assert p["timing"] != "in_progress" and p["inception_ms"] == 20.0


def test_sim022_every_transient_draws_the_relay_views_and_yd_makes_inrush_bipolar():
    for label in ("transient_magnetising_inrush", "transient_capacitor_switching",
                  "transient_non-linear_load_switching"):
        views = [r["relay_view"] for r in _batch(label, 300, seed=2)[1]]
        shares = np.array([views.count(v) / len(views) for v in RELAY_VIEWS])
        assert (np.abs(shares - np.array([0.36, 0.16, 0.28, 0.2])) < 0.08).all(), (label, shares)
    def bipolar_share(view: str) -> float:
        # a phase carrying a fifth of the peak or more, with lobes of both signs (a quarter of its own)
        X, rows = _batch("transient_magnetising_inrush", 100, seed=5, relay_view=view)
        assert {r["relay_view"] for r in rows} == {view}
        count = 0
        for x in X:
            own = np.abs(x).max(axis=1)
            lobes = (x.max(axis=1) > 0.25 * own) & (x.min(axis=1) < -0.25 * own) & (own > 0.2 * own.max())
            count += bool(lobes.any())
        return count / len(X)

    # two phases with inrush of the same sign give (i_a - i_b)/sqrt(3) both lobes
    yd, windings = bipolar_share("yd_compensated"), bipolar_share("faulted_windings")
    assert yd > 0.25 and yd > 3 * windings, (yd, windings)
    pairings = {r["yd_pairing"] for r in _batch("transient_magnetising_inrush", 40, seed=5,
                                                  relay_view="yd_compensated")[1]}
    assert pairings == {"a-b", "a-c"}


def test_sim023_symmetric_ct_saturation_has_lobes_of_both_signs():
    X, rows = _batch("transient_external_fault_with_CT_saturation", 200, seed=12,
                     relay_view="faulted_windings")
    modes = [r["ct_saturation"] for r in rows]
    assert 0.4 < modes.count("symmetric") / len(modes) < 0.6
    both = []
    for x, p in zip(X, rows, strict=True):
        if p["ct_saturation"] != "symmetric":
            continue
        assert p["saturation_factor"] < 1.0  # knee below the symmetrical flux
        if p["external_fault_type"] not in ("AG", "BG", "CG", "AB", "BC", "CA"):
            continue  # the other phases of a multi-phase fault keep their DC offsets
        k = int(np.argmax(np.abs(x).max(axis=1)))
        tail = x[k, -TWO_CYCLES:]
        peak = np.abs(tail).max()
        both.append(tail.max() > 0.3 * peak and tail.min() < -0.3 * peak)
    assert len(both) > 15 and np.mean(both) > 0.9


def test_sim024_two_phase_external_faults_saturate_two_cts_with_opposite_lobes():
    X, rows = _batch("transient_external_fault_with_CT_saturation", 300, seed=13,
                     relay_view="faulted_windings")
    two, opposite = 0, 0
    for x, p in zip(X, rows, strict=True):
        assert len(p["saturated_phases"]) >= 1  # always at least one saturating CT
        if p["external_fault_type"] not in ("AB", "BC", "CA") or len(p["saturated_phases"]) != 2:
            continue
        two += 1
        i, j = ("ABC".index(c) for c in p["saturated_phases"])
        opposite += bool(np.corrcoef(x[i], x[j])[0, 1] < -0.5)
    phase_to_phase = sum(r["external_fault_type"] in ("AB", "BC", "CA") for r in rows)
    assert two > 0.5 * phase_to_phase and opposite > 0.8 * two


def test_sim025_ferroresonance_amplitudes_modes_and_pulses():
    X, rows = _batch("transient_ferroresonance", 200, seed=14)
    peaks = np.array([r["peak_current"] for r in rows])
    assert peaks.min() < 0.1 and peaks.max() > 3.0
    assert {"fundamental", "subharmonic_30Hz", "subharmonic_20Hz", "chaotic"} <= {r["mode"] for r in rows}
    assert {r["model"] for r in rows} == {"circuit", "mode_waveform"}
    assert {r["pulses_per_cycle"] for r in rows if r["mode"] == "fundamental" and r["model"] == "mode_waveform"} == {1.0, 2.0}
    for seed in range(200):
        x, p = simulate_event("transient_ferroresonance", seed=seed, mode_index=0, peak_current=3.0, unsymmetrical=0,
                              core_exponent=9.0, relay_view="faulted_windings", standing_current_ka=0.0005)
        if p["timing"] == "in_progress":
            break
    assert p["pulses_per_cycle"] == 2.0 and p["timing"] == "in_progress"
    k = int(np.argmax(np.abs(x).max(axis=1)))
    wave = x[k].astype(np.float64)
    positive, negative = wave.max(), -wave.min()
    # one pulse of each polarity per cycle, as large
    assert min(positive, negative) > 0.6 * max(positive, negative)
    # sharp: the current stays under a fifth of its peak for most of the cycle
    assert (np.abs(wave) < 0.2 * np.abs(wave).max()).mean() > 0.5
    # no DC (the capacitance in the ferroresonant loop blocks it): the mean over whole cycles is
    # small against the peak, and there are no even harmonics (half-wave symmetry)
    cycles = wave[:4 * 167 - 1]
    assert abs(cycles.mean()) < 0.03 * np.abs(wave).max()
    assert _amplitude(cycles, 120.0) < 0.05 * _amplitude(cycles, 60.0)
    # one, two or all three phases take part (the ones left open); the others carry only their
    # normal exciting current, the standing current
    assert {len(r["ferroresonant_phases"]) for r in rows} == {1, 2, 3}
    seen = 0
    for seed in range(40):
        x, p = simulate_event("transient_ferroresonance", seed=seed, peak_current=2.0, relay_view="faulted_windings",
                              standing_current_ka=0.0005, noise_std_ka=0.0002)
        if len(p["ferroresonant_phases"]) != 1:
            continue
        seen += 1
        peaks = np.abs(x.astype(np.float64)).max(axis=1)
        k = "ABC".index(p["ferroresonant_phases"])
        assert np.delete(peaks, k).max() < 0.05 * peaks[k], (seed, peaks)
    assert seen >= 5
    # the core law's exponent is drawn (3 to 11): a softer core gives rounder, lower-crest pulses
    assert {r["core_exponent"] for r in rows} == {3.0, 5.0, 7.0, 9.0, 11.0}
    crest = {}
    for exponent in (3.0, 5.0, 11.0):
        x, _ = simulate_event("transient_ferroresonance", seed=7, mode_index=0, inception_ms=0.0, peak_current=3.0,
                              unsymmetrical=0, core_exponent=exponent, relay_view="faulted_windings",
                              standing_current_ka=0.0005)
        wave = x.astype(np.float64)
        crest[exponent] = np.abs(wave).max() / np.sqrt((wave**2).mean(axis=1)).max()
    assert crest[3.0] < crest[5.0] < 0.8 * crest[11.0]
    x, p = simulate_event("transient_ferroresonance", seed=4, mode_index=1, inception_ms=0.0, unsymmetrical=0,
                          relay_view="faulted_windings", standing_current_ka=0.0005)
    full = x.astype(np.float64)[:, 60:60 + 667]
    assert (_amplitude(full, 30.0) > 0.3 * _amplitude(full, 60.0)).any()
    # an unsymmetrical state: one tall pulse per cycle and a broad low lobe of the other polarity,
    # with no DC over whole cycles (the series capacitance passes none), unlike an inrush
    for exponent in (3.0, 9.0):
        x, p = simulate_event("transient_ferroresonance", seed=5, mode_index=0, unsymmetrical=1, inception_ms=0.0,
                              core_exponent=exponent, peak_current=2.0, relay_view="faulted_windings",
                              standing_current_ka=0.0005, noise_std_ka=0.0002)
        assert p["pulses_per_cycle"] == 1.0 and p["unsymmetrical"] == 1.0 and p["model"] == "mode_waveform"
        wave = x.astype(np.float64)[int(np.argmax(np.abs(x).max(axis=1)))]
        cycles = wave[150:150 + 4 * 167]  # after the 2-60 ms build-up has mostly settled
        tall, low = max(cycles.max(), -cycles.min()), min(cycles.max(), -cycles.min())
        assert low < 0.75 * tall
        assert abs(cycles.mean()) < 0.06 * tall
        assert _amplitude(cycles, 120.0) > 0.1 * _amplitude(cycles, 60.0)  # even harmonics


def test_sim026_inrush_amplitudes_reach_small_units_and_later_cycles():
    sympathetic = [r["peak_event_ka"] for r in _batch("transient_sympathetic_inrush", 200, seed=15)[1]]
    inrush = [r["peak_event_ka"] for r in _batch("transient_magnetising_inrush", 200, seed=15)[1]]
    assert min(sympathetic) < 0.25 and max(sympathetic) > 5.0
    assert min(inrush) < 0.35 and max(inrush) > 10.0
    # the in-service transformer's own magnetising current flows before its neighbour's energisation
    x, p = simulate_event("transient_sympathetic_inrush", seed=2, inception_ms=40.0,
                          standing_current_ka=0.0005, noise_std_ka=0.0002, relay_view="faulted_windings")
    pre = _amplitude(x.astype(np.float64)[:, :TWO_CYCLES], 60.0)
    assert (pre > 0.8 * p["magnetising_slope_ka"]).all()


def test_sim027_back_to_back_capacitor_switching_rings_above_1khz_with_pole_scatter():
    rows = _batch("transient_capacitor_switching", 200, seed=16)[1]
    back = [r for r in rows if r["switching"] == "back_to_back"]
    assert 0.3 < len(back) / len(rows) < 0.5
    assert all(1000.0 <= r["resonant_frequency_hz"] <= 4000.0 for r in back)
    assert all(250.0 <= r["resonant_frequency_hz"] <= 1200.0 for r in rows if r["switching"] == "isolated")
    assert min(r["peak_event_ka"] for r in rows) < 0.08
    x, p = simulate_event("transient_capacitor_switching", seed=3, back_to_back=1, inception_ms=5.0,
                          switching_angle_deg=90.0, standing_current_ka=0.0005, relay_view="faulted_windings")
    segment = x.astype(np.float64)[:, 50:50 + 256]
    spectrum = np.abs(np.fft.rfft(segment, axis=-1)).sum(axis=0)
    freqs = np.fft.rfftfreq(256, 1.0 / SAMPLE_RATE_HZ)
    assert freqs[int(np.argmax(spectrum[freqs > 200])) + int((freqs <= 200).sum())] > 1000.0
    assert p["peak_event_ka"] > 5 * p["steady_current"]  # the back-to-back current is far larger
    # per-pole closing: each phase starts at its own instant
    spreads = []
    for seed in range(10):
        scattered = simulate_event("transient_capacitor_switching", seed=seed, pole_scatter_ms=3.0,
                                   inception_ms=10.0, standing_current_ka=0.0005, noise_std_ka=0.0002,
                                   relay_view="faulted_windings")[0]
        starts = [int(np.flatnonzero(np.abs(scattered[k]) > 0.02 * np.abs(scattered).max())[0]) for k in range(3)]
        spreads.append(max(starts) - min(starts))
    assert max(spreads) >= 15 and min(spreads) >= 0


def test_sim028_ferroresonant_circuit_is_sustained_dc_free_and_reports_its_period():
    from services.simulation.transients import _ferroresonant_circuit

    current, period = _ferroresonant_circuit(np.random.default_rng(3), 120, np.full(120, 11.0))
    assert current.shape == (120, 3, N_SAMPLES) and np.isfinite(current).all()
    assert np.allclose(np.abs(current).max(axis=(1, 2)), 1.0)
    # sustained: the last cycle still carries a large share of the window's peak
    assert np.median(np.abs(current[:, :, -167:]).max(axis=(1, 2))) > 0.5
    # the capacitance blocks DC: over whole cycles the mean is small against the peak
    assert np.median(np.abs(current[:, :, :4 * 167].mean(axis=2)).max(axis=1)) < 0.05
    # both a periodic fundamental solution and aperiodic ones occur; a period-1 window repeats
    assert (period == 1).any() and (period == 0).any()
    one = current[int(np.flatnonzero(period == 1)[0])]
    assert np.abs(one[:, 167:] - one[:, :-167]).max() < 0.1
    # steep core: sharp current pulses, low for most of the cycle
    assert np.median((np.abs(current) < 0.2).mean(axis=2)) > 0.5


def test_sim031_cubic_core_ferroresonance_is_saturated_and_may_be_unsymmetrical():
    from services.simulation.transients import (
        FERRO_MIN_CREST,
        _crest,
        _ferroresonant_circuit,
        _saturated_ferroresonance,
    )

    exponent = np.full(100, 3.0)
    plain, _ = _ferroresonant_circuit(np.random.default_rng(5), 100, exponent)
    steady, period = _saturated_ferroresonance(np.random.default_rng(5), exponent)
    # a soft (cubic) core often settles on a barely distorted state; those are drawn again
    assert (_crest(plain) < FERRO_MIN_CREST).mean() > 0.25
    assert (_crest(steady) >= FERRO_MIN_CREST).mean() > 0.9
    assert np.isfinite(steady).all() and period.shape == (100,)
    # some settled states are unsymmetrical: one polarity's peak well above the other's
    cycles = steady[:, :, :4 * 167]
    asymmetry = np.abs(cycles.max(axis=2) + cycles.min(axis=2)) / np.abs(cycles).max(axis=2)
    assert (asymmetry > 0.3).any()


def test_sim029_ct_saturation_clearing_and_through_current_mismatch():
    X, rows = _batch("transient_external_fault_with_CT_saturation", 200, seed=21,
                     relay_view="faulted_windings")
    cleared = [(x, p) for x, p in zip(X, rows, strict=True) if p["clearing_time_ms"] > 0.0]
    assert 0.35 < len(cleared) / len(rows) < 0.65
    assert all(p["clearing_time_ms"] >= 40.0 and p["inception_ms"] + p["clearing_time_ms"] >= 25.0 for _, p in cleared)
    assert any(p["other_side_saturates"] for p in rows) and not all(p["other_side_saturates"] for p in rows)
    assert all(0.0005 <= p["through_mismatch"] <= 0.01 for p in rows)
    ended = 0
    for x, p in cleared:
        end = p["inception_ms"] + p["clearing_time_ms"]
        if end > 72.6 - 2 * 16.7:
            continue  # cleared too late to see the current fall back
        ended += 1
        # a cycle after the last pole's current zero the through current is gone: the CT leaves
        # saturation and the differential is back near the standing level
        tail = x[:, _sample(end + 16.7 + 8.4):]
        assert np.abs(tail).max() < 0.1 * np.abs(x).max() + 3 * _standing_peak_bound(p)
    assert ended > 5


def test_sim030_rectifier_switched_off_falls_to_zero_and_on_rises():
    x, p = simulate_event("transient_non-linear_load_switching", seed=5, switch_off=1, inception_ms=20.0,
                          rise_time_ms=2.0, load_current=1.0, standing_current_ka=0.0005, noise_std_ka=0.0002,
                          relay_view="faulted_windings")
    assert p["action"] == "off"
    before, after = np.abs(x[:, :190]).max(), np.abs(x[:, _sample(20.0 + 5 * 2.0):]).max()
    assert before > 0.8 and after < 0.05 * before
    x, p = simulate_event("transient_non-linear_load_switching", seed=5, switch_off=0, inception_ms=20.0,
                          rise_time_ms=2.0, load_current=1.0, standing_current_ka=0.0005, noise_std_ka=0.0002,
                          relay_view="faulted_windings")
    assert p["action"] == "on"
    assert np.abs(x[:, :190]).max() < 0.02 and np.abs(x[:, -TWO_CYCLES:]).max() > 0.8
    rows = _batch("transient_non-linear_load_switching", 200, seed=22)[1]
    actions = [r["action"] for r in rows]
    assert {"on", "off", "running"} == set(actions) and 0.1 < actions.count("off") / len(rows) < 0.3


def test_sim034_a_line_fault_through_a_delta_tie_can_be_another_pair_exactly():
    """An AB fault tied to the next line (s 0.5, psi 30 deg) is -1 times an AC fault tied to the
    previous line (s 0.62, psi 23.8 deg): both inside the drawn ranges, so its phases are marked
    unreadable; a tie whose image falls outside the ranges, a single-phase fault and the plain
    winding view stay readable; a Yd-compensated view never is."""
    from services.simulation.faults import _EYE, _NEXT, _PREVIOUS, phases_identifiable

    def tie(s: float, psi_deg: float, to_next: bool) -> np.ndarray:
        sign = 1.0 if to_next else -1.0
        return _EYE + s * np.exp(1j * np.deg2rad(sign * psi_deg)) * (_NEXT if to_next else _PREVIOUS)

    a, b, c = _EYE
    image = 1.0 - 0.5 * np.exp(1j * np.deg2rad(30.0))
    ab = tie(0.5, 30.0, True) @ (a - b)
    ac = tie(abs(image), -np.degrees(np.angle(image)), False) @ (c - a)
    assert np.allclose(ac, -ab)
    matrices = np.stack([tie(0.5, 30.0, True), tie(0.3, 20.0, True), _EYE, _EYE])
    views = np.array(["delta_tied", "delta_tied", "faulted_windings", "yd_compensated"])
    assert phases_identifiable("AB", np.stack([a - b] * 4), matrices, views).tolist() == [False, True, True, False]
    assert phases_identifiable("AG", np.stack([a] * 4), matrices, views).tolist() == [True, True, True, False]
    _, _, params = generate_dataset(20, seed=3, classes=["internal_power_transformer_internal_faults_Class8"],
                                    relay_view="delta_tied")
    flags = [json.loads(row)["phases_identifiable"] for row in params]
    assert True in flags and False in flags


def test_sim035_pooled_units_draw_another_units_physics_under_the_same_label():
    """For calibrating the unit level: a power-transformer fault label simulated with a random unit's
    fault level, standing current and tap; the default draws are untouched."""
    label = "internal_power_transformer_internal_faults_Class1"
    X, y, params = generate_dataset(30, seed=8, classes=[label], pooled_units=True)
    rows = [json.loads(row) for row in params]
    assert set(y.tolist()) == {LABELS.index(label)}
    assert {row["unit_physics"] for row in rows} == {"power_transformer", "ispar_series", "ispar_exciting"}
    assert all((row["tap_position"] is None) == (row["unit_physics"] == "power_transformer") for row in rows)
    X_plain, _, plain = generate_dataset(30, seed=8, classes=[label])
    assert "unit_physics" not in json.loads(plain[0]) and not np.array_equal(X, X_plain)
