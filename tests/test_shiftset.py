"""The shift set (services.shiftset): an independent generator of evaluation windows.

Shapes, labels, determinism and the CLI; the physics each class must show; and that the package
stays independent of the training generator (it imports nothing from simulation, training or
inference).
"""

from __future__ import annotations

import ast
import json
from pathlib import Path

import numpy as np
import pytest

from services.labels import LABELS, label_parts
from services.shiftset import TRANSIENT_IDS, generate_independent_transients, generate_shift_set
from services.shiftset.__main__ import main as shiftset_main
from services.shiftset.common import ct_error_current
from services.shiftset.faults import (
    DATASET_FAULT_DURATION_S,
    DATASET_INCEPTION_STEP_S,
    phase_impedance,
    shunt_fault_currents,
)
from services.shiftset.transients import bridge_line_current, converter_currents
from services.waveform import N_SAMPLES, SAMPLE_RATE_HZ

PACKAGE = Path(__file__).resolve().parents[1] / "services" / "shiftset"
SEED = 11


def _harmonic(x: np.ndarray, k: int, n: int = 500) -> np.ndarray:
    """Amplitude of the k-th 60 Hz harmonic over the last n samples (3 cycles), any leading shape."""
    t = np.arange(n) / SAMPLE_RATE_HZ
    return np.abs((x[..., -n:] * np.exp(-2j * np.pi * 60.0 * k * t)).sum(-1)) * 2.0 / n


@pytest.fixture(scope="module")
def faults_set():
    ids = [0, 1, 2, 9, 11, 13, 26]
    return generate_shift_set(60, SEED, classes=ids)


@pytest.fixture(scope="module")
def windings_set():
    """Faults seen in the windings' own currents (or uncompensated): their phases are readable."""
    return generate_shift_set(40, SEED, classes=[0, 1, 2, 9, 13, 26], views=["windings", "uncompensated"])


@pytest.fixture(scope="module")
def transients_set():
    return generate_independent_transients(60, SEED)


def _select(data, label_id):
    x, y, params = data
    idx = np.flatnonzero(y == label_id)
    return x[idx].astype(np.float64), [params[i] for i in idx]


# ------------------------------------------------------------------------------------------------
# API, determinism, CLI, independence
# ------------------------------------------------------------------------------------------------
def test_all_45_labels_shapes_and_types():
    x, y, params = generate_shift_set(2, SEED)
    assert x.shape == (90, 3, N_SAMPLES) and x.dtype == np.float32
    assert y.dtype == np.int64 and sorted(set(y.tolist())) == list(range(45))
    assert np.isfinite(x).all()
    assert len(params) == 90
    for label_id, p in zip(y, params, strict=True):
        assert p["label_id"] == label_id and p["label"] == LABELS[label_id]
        parts = label_parts(LABELS[label_id])
        assert p["family"] == parts.category and p["equipment"] == parts.equipment and p["kind"] == parts.kind
        json.dumps(p)  # every parameter is plain JSON
    # every window carries something beyond noise
    assert (np.abs(x).max(axis=(1, 2)) > 0.01).all()


def test_deterministic_per_seed_and_per_class():
    a = generate_shift_set(3, 5, classes=[7, 40])
    b = generate_shift_set(3, 5, classes=[7, 40])
    assert np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1]) and a[2] == b[2]
    c = generate_shift_set(3, 6, classes=[7, 40])
    assert not np.array_equal(a[0], c[0])
    # a class's windows do not depend on which other classes come with it
    alone = generate_shift_set(3, 5, classes=[LABELS[40]])
    assert np.array_equal(alone[0], a[0][3:])


def test_independent_transients_are_the_six_transient_labels(transients_set):
    x, y, params = transients_set
    assert x.shape == (360, 3, N_SAMPLES) and x.dtype == np.float32 and np.isfinite(x).all()
    assert sorted(set(y.tolist())) == list(TRANSIENT_IDS) == list(range(39, 45))
    assert all(p["family"] == "transient" and p["equipment"] == "none" for p in params)
    same = generate_shift_set(60, SEED, classes=[TRANSIENT_IDS[0]])
    assert np.array_equal(same[0], x[:60])


def test_bad_arguments():
    with pytest.raises(ValueError):
        generate_shift_set(0, 1)
    with pytest.raises(ValueError):
        generate_shift_set(1, 1, classes=["no_such_label"])


def test_cli_writes_npz(tmp_path, capsys):
    out = tmp_path / "shift.npz"
    assert shiftset_main(["--per-class", "1", "--seed", "4", "--out", str(out), "--transients-only"]) == 0
    data = np.load(out)
    assert data["X"].shape == (6, 3, N_SAMPLES) and data["X"].dtype == np.float32
    assert sorted(set(data["y"].tolist())) == list(range(39, 45))
    assert list(data["labels"]) == list(LABELS)
    params = json.loads(str(data["params"]))
    assert len(params) == 6 and params[0]["label_id"] == int(data["y"][0])
    assert "never for training" in capsys.readouterr().out
    out2 = tmp_path / "some.npz"
    assert shiftset_main(["--per-class", "1", "--seed", "4", "--out", str(out2), "--classes", "0,transient_capacitor_switching"]) == 0
    assert np.load(out2)["y"].tolist() == [0, 39]


def test_package_imports_nothing_from_the_training_generator():
    """The shift set is a second opinion: no code from simulation, training or inference."""
    allowed = {"services.labels", "services.waveform"}
    files = sorted(PACKAGE.glob("*.py"))
    assert len(files) >= 5
    for path in files:
        tree = ast.parse(path.read_text(), filename=str(path))
        for node in ast.walk(tree):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                assert node.level == 0, f"{path.name}: relative import"
                names = [node.module or ""]
            for name in names:
                for banned in ("services.simulation", "services.training", "services.inference"):
                    assert not name.startswith(banned), f"{path.name} imports {name}"
                if name.startswith("services") and not name.startswith("services.shiftset"):
                    assert name in allowed, f"{path.name} imports {name}"
            if isinstance(node, ast.Call) and getattr(node.func, "id", "") in {"__import__", "import_module"}:
                pytest.fail(f"{path.name}: dynamic import")


# ------------------------------------------------------------------------------------------------
# internal faults
# ------------------------------------------------------------------------------------------------
def test_sequence_network_solver_matches_textbook_formulas():
    z1 = np.array([0.05 + 0.6j])
    z2 = np.array([0.06 + 0.55j])
    z0 = np.array([0.2 + 1.4j])
    zabc = phase_impedance(z1, z2, z0)
    e = np.exp(1j * np.array([[0.0, -2 * np.pi / 3, 2 * np.pi / 3]]))
    zf = 0.1
    # single line to ground, phase A: Ia = 3E / (Z1 + Z2 + Z0 + 3Zf)
    i = shunt_fault_currents(e, zabc, np.array([[True, False, False]]), np.full((1, 3), zf + 0j),
                             np.zeros(1, complex), np.array([True]))
    assert i[0, 0] == pytest.approx(3.0 / (z1[0] + z2[0] + z0[0] + 3 * zf))
    assert abs(i[0, 1]) < 1e-12 and abs(i[0, 2]) < 1e-12
    # line to line B-C, bolted: Ib = -j sqrt(3) E / (Z1 + Z2) = -Ic
    i = shunt_fault_currents(e, zabc, np.array([[False, True, True]]), np.zeros((1, 3), complex),
                             np.zeros(1, complex), np.array([False]))
    assert i[0, 1] == pytest.approx(-1j * np.sqrt(3) / (z1[0] + z2[0]))
    assert i[0, 2] == pytest.approx(-i[0, 1])
    # double line to ground B-C, bolted: ground current 3 I0 = -3 I1 Z2 / (Z2 + Z0)
    i = shunt_fault_currents(e, zabc, np.array([[False, True, True]]), np.zeros((1, 3), complex),
                             np.zeros(1, complex), np.array([True]))
    i1 = 1.0 / (z1[0] + z2[0] * z0[0] / (z2[0] + z0[0]))
    assert i[0].sum() == pytest.approx(-3 * i1 * z2[0] / (z2[0] + z0[0]))
    # three-phase fault: balanced, E / Z1
    i = shunt_fault_currents(e, zabc, np.ones((1, 3), bool), np.zeros((1, 3), complex), np.zeros(1, complex),
                             np.array([False]))
    assert np.allclose(i[0], e[0] / z1[0])


@pytest.mark.parametrize(("label_id", "phase"), [(0, 0), (1, 1), (2, 2), (13, 0), (26, 0)])
def test_single_phase_faults_show_in_the_faulted_winding(windings_set, label_id, phase):
    """In the faulted-windings view (and the uncompensated one) a clear XG fault has most of its
    energy in phase X."""
    x, params = _select(windings_set, label_id)
    keep = [i for i, p in enumerate(params)
            if p["fault_peak_kA"] > 3 * p["standing_peak_kA"] and p["placement"] == "dataset"]
    assert len(keep) >= 8
    energy = (x[keep] ** 2).sum(axis=-1)
    assert (energy.argmax(axis=1) == phase).mean() >= 0.9


def test_line_to_line_fault_spares_the_healthy_phase(windings_set):
    assert label_parts(LABELS[9]).kind == "BC"
    x, params = _select(windings_set, 9)
    keep = [i for i, p in enumerate(params)
            if p["fault_peak_kA"] > 3 * p["standing_peak_kA"] and p["placement"] == "dataset"]
    assert len(keep) >= 8
    energy = (x[keep] ** 2).sum(axis=-1)
    assert (energy.argmin(axis=1) == 0).mean() >= 0.9


def test_fault_time_protocol_and_return_to_standing_level(faults_set):
    x, y, params = faults_set
    dataset = [i for i, p in enumerate(params) if p["placement"] == "dataset"]
    assert len(dataset) >= 0.6 * len(params)
    t0 = np.array([params[i]["t_inception_ms"] for i in dataset]) / 1e3
    assert t0.min() >= 0.0 and t0.max() <= 0.003 + 11 * DATASET_INCEPTION_STEP_S + 1e-9
    dur = np.array([params[i]["t_clear_ms"] - params[i]["t_inception_ms"] for i in dataset]) / 1e3
    assert np.allclose(dur, DATASET_FAULT_DURATION_S)
    # after clearing (next current zero, at most half a cycle later) the current is back near its
    # standing level: checked where the window has at least 5 ms after that and the fault is clear
    t = np.arange(N_SAMPLES) / SAMPLE_RATE_HZ
    checked = 0
    for i in dataset:
        p = params[i]
        t_back = p["t_clear_ms"] / 1e3 + 1.0 / 120.0 + 0.002
        if t_back > t[-1] - 0.005 or p["fault_peak_kA"] < 5 * p["standing_peak_kA"] or p["kind"] == "turn-to-turn":
            continue
        during = np.abs(x[i][:, (t > p["t_inception_ms"] / 1e3) & (t < p["t_clear_ms"] / 1e3)]).max()
        after = np.abs(x[i][:, t > t_back]).max()
        assert after < 0.35 * during, p
        checked += 1
    assert checked >= 20


def test_fault_amplitudes_span_the_data_sets_range(faults_set):
    x, y, params = faults_set
    peak = np.abs(x).max(axis=(1, 2))
    assert np.percentile(peak, 5) > 0.03 and np.percentile(peak, 95) < 6.0
    tt = peak[y == 11]
    assert np.median(tt) < np.median(peak[y != 11])  # turn faults are the weak ones
    standing = np.array([p["standing_peak_kA"] for p in params])
    assert standing.min() >= 0.0 and np.percentile(standing, 95) < 0.35


def test_relay_views_vary_within_each_unit(faults_set):
    _, _, params = faults_set
    for unit in ("ispar_exciting", "ispar_series", "power_transformer"):
        views = {p["view"] for p in params if p["equipment"] == unit}
        assert len(views) >= 4, (unit, views)


def test_views_can_be_restricted_and_phases_seen_are_reported():
    x, y, params = generate_shift_set(30, SEED, classes=[0, 7, 10], views=["windings"])
    assert {p["view"] for p in params} == {"windings"}
    # readable, unless a saturating CT adds a false residual (zero sequence) of its own
    assert all(p["phases_identifiable"] for p in params if not p["ct_saturates_in_fault"])
    assert {p["seen_phases"] for p in params if p["kind"] == "AG"} == {"AG"}
    assert {p["seen_phases"] for p in params if p["kind"] == "AB"} == {"AB"}
    # ungrounded faults: the three phase currents sum to zero, up to the CT ratio and phase errors
    # (at most 3 % and 0.5 deg per phase), the standing current's zero-sequence harmonics and noise
    for i in np.flatnonzero(np.isin(y, [7, 10])):
        assert np.abs(x[i].astype(np.float64).sum(axis=0)).max() < 0.08 * np.abs(x[i]).max() + 0.03
    # a Yd-compensated relay shows an AG fault in A and C: the phases are not readable there
    _, _, yd = generate_shift_set(10, SEED, classes=[0], views=["yd_lag"])
    assert {p["seen_phases"] for p in yd} == {"AC"} and not any(p["phases_identifiable"] for p in yd)
    with pytest.raises(ValueError):
        generate_shift_set(1, SEED, classes=[0], views=["no_such_view"])


def test_ct_saturation_in_internal_faults_only_on_severe_faults():
    """A few fault windows see a saturating CT, only on strong faults: the knee is at least 20 x
    rated current's symmetrical flux demand; a fault of AC peak A lasting at most 58 ms (0.05 s
    plus half a cycle) adds at most A (1 + omega 0.058) = 23 A of that, and remanence at most half
    a knee, so A must exceed 0.5 x 20 x 1.775 / 23 = 0.77 kA."""
    _, _, params = generate_shift_set(100, SEED, classes=[6, 10, 19, 32])
    sat = [p for p in params if p["ct_saturates_in_fault"]]
    assert 0 < len(sat) < 0.15 * len(params)
    assert min(p["fault_peak_kA"] for p in sat) > 0.77


def test_abcg_ground_share_goes_down_to_zero():
    _, _, params = generate_shift_set(60, SEED, classes=[6])
    share = np.array([p["ground_share"] for p in params])
    assert share.min() < 1e-6 and share.max() > 0.05


# ------------------------------------------------------------------------------------------------
# transients
# ------------------------------------------------------------------------------------------------
def test_magnetising_inrush_has_second_harmonic(transients_set):
    x, params = _select(transients_set, 42)
    worst = x[np.arange(len(x)), np.abs(x).max(axis=-1).argmax(axis=-1)]
    ratio = _harmonic(worst, 2) / _harmonic(worst, 1)
    assert (ratio > 0.15).mean() >= 0.8
    cores = {p["core"] for p in params}
    assert cores == {"single_phase_bank", "three_limb"}
    # single-phase banks keep independent remanence; three-limb cores a zero-sum pattern
    for p in params:
        if p["core"] == "three_limb":
            assert abs(sum(p["remanence_pu"])) < 1e-9


def test_sympathetic_inrush_opposite_polarity_and_second_harmonic(transients_set):
    x, params = _select(transients_set, 44)
    assert np.mean([p["opposite_polarity"] for p in params]) >= 0.9
    assert all(p["in_service_flux_over_knee"] > 1.0 for p in params)  # driven into saturation
    worst = x[np.arange(len(x)), np.abs(x).max(axis=-1).argmax(axis=-1)]
    assert (_harmonic(worst, 2) / _harmonic(worst, 1) > 0.15).mean() >= 0.8


def test_ct_saturation_always_saturates(transients_set):
    x, params = _select(transients_set, 40)
    assert all(p["saturated"] and p["max_flux_over_knee"] > 1.0 for p in params)
    # the differential (error) current of a saturating CT is large: well above rated current
    assert np.median(np.abs(x).max(axis=(1, 2))) > 2.0
    # before the external fault the CT carries load unsaturated: only the standing current and the
    # recorder's noise and quantisation show
    checked = 0
    for i, p in enumerate(params):
        k = int(p["t_inception_ms"] * SAMPLE_RATE_HZ / 1e3) - 3
        if k > 30:
            lsb = 2 * p["adc_full_scale_kA"] / 2 ** p["adc_bits"]
            assert np.abs(x[i][:, :k]).max() < 1.1 * p["standing_peak_kA"] + 5 * p["noise_kA"] + lsb + 0.01, p
            checked += 1
    assert checked >= 20


def test_ct_model_is_linear_below_the_knee():
    t = np.arange(N_SAMPLES) / SAMPLE_RATE_HZ
    i_p = np.cos(2 * np.pi * 60 * t)[None, :] * np.array([[1.0], [20.0]])
    lam_k = np.full(2, 2.0 / (2 * np.pi * 60))  # knee at twice the 1 kA flux demand
    err, peak = ct_error_current(i_p, lam_k, np.full(2, 0.001), np.full(2, 1e-6), np.zeros(2))
    assert peak[0] < 1.0 and np.abs(err[0]).max() < 0.01
    assert peak[1] > 1.0 and np.abs(err[1]).max() > 5.0


def test_capacitor_switching_rings_at_its_resonance(transients_set):
    x, params = _select(transients_set, 39)
    iso = [i for i, p in enumerate(params) if not p["back_to_back"]]
    assert len(iso) >= 15 and any(p["back_to_back"] for p in params)
    res = np.array([params[i]["resonance_hz"] for i in iso])
    assert res.min() >= 200 and res.max() <= 2000
    measured = []
    for i in iso:
        d = np.diff(x[i], axis=-1)
        spec = np.abs(np.fft.rfft(d * np.hanning(d.shape[-1]), axis=-1)).sum(axis=0)
        f = np.fft.rfftfreq(d.shape[-1], 1.0 / SAMPLE_RATE_HZ)
        spec[f < 150] = 0
        measured.append(f[spec.argmax()])
    measured = np.array(measured)
    assert (np.abs(measured - res) / res < 0.2).mean() >= 0.85


def test_ferroresonance_is_sustained_and_has_three_modes(transients_set):
    x, params = _select(transients_set, 41)
    first = np.sqrt((x[..., :167] ** 2).mean(-1)).max(-1)
    last = np.sqrt((x[..., -167:] ** 2).mean(-1)).max(-1)
    assert (last / first).min() > 0.4
    modes = {p["mode"] for p in params}
    assert {"fundamental", "subharmonic", "chaotic"} <= modes
    # saturated: crest factor of the worst phase well above a sine's 1.41
    worst = x[np.arange(len(x)), np.abs(x).max(axis=-1).argmax(axis=-1)]
    crest = np.abs(worst).max(-1) / np.sqrt((worst**2).mean(-1))
    assert np.median(crest) > 1.8


def test_rectifier_waveshapes_six_and_twelve_pulse():
    n_s = 1200
    th = np.linspace(0, 2 * np.pi, n_s, endpoint=False)[None, :].repeat(3, axis=0)
    alpha = np.deg2rad(np.array([[15.0], [15.0], [15.0]]))
    mu = np.deg2rad(np.array([[10.0], [10.0], [10.0]]))
    config = np.array(["6p_wye_wye", "6p_delta_wye", "12p"])
    cur = converter_currents(th, alpha, mu, config, np.ones(3))
    spec = np.abs(np.fft.rfft(cur, axis=-1)) * 2 / n_s
    h1, h5, h7 = spec[..., 1], spec[..., 5], spec[..., 7]
    for k in range(2):  # 6-pulse: 5th about 1/5, less a little for overlap
        assert 0.12 < (h5[k] / h1[k]).max() < 0.21 and 0.07 < (h7[k] / h1[k]).max() < 0.15
    assert (h5[2] / h1[2]).max() < 0.01 and (h7[2] / h1[2]).max() < 0.01
    assert (spec[2, :, 11] / h1[2]).max() > 0.04  # 12-pulse keeps its 11th
    # no triplen harmonics and half-wave symmetry for any of them
    assert (spec[..., 3] / h1).max() < 1e-3 and (spec[..., 2] / h1).max() < 1e-3
    # the bridge current is a 120-degree block of Id with overlap ramps
    one = bridge_line_current(th[0], np.deg2rad(15.0), np.deg2rad(10.0))
    assert one.max() == pytest.approx(1.0) and one.min() == pytest.approx(-1.0)
    assert (np.abs(one) > 0.999).mean() == pytest.approx(2 * (120 - 10) / 360, abs=0.01)  # two blocks


def test_non_linear_load_windows_show_the_characteristic_harmonics(transients_set):
    x, params = _select(transients_set, 43)
    on = [i for i, p in enumerate(params) if p["action"] == "running" or
          (p["action"] == "on" and p["t_switch_ms"] < 25.0)]
    six = [i for i in on if params[i]["converter"] != "12p"]
    twelve = [i for i in on if params[i]["converter"] == "12p"]
    assert len(six) >= 8 and len(twelve) >= 4

    def ratio(idx):
        return (_harmonic(x[idx], 5) + _harmonic(x[idx], 7)).max(-1) / _harmonic(x[idx], 1).max(-1)

    assert np.median(ratio(six)) > 0.15
    assert np.median(ratio(twelve)) < 0.05
