"""Shared pieces of the shift set: time base, the relay's view of the zone currents, the standing
differential current and the measurement chain (CT errors, sampling jitter, noise, quantisation).

Written apart from ``services.simulation`` on purpose (issue 10, item 3): the shift set is a second
opinion on the physics and must not share code, constants or habits with the training generator.
Only the waveform conventions (``services.waveform``) and the label strings (``services.labels``)
are shared, because they are the contract of docs/contracts.md, "Waveforms" and "Labels".

Units: instantaneous differential current in kA on the data set's 500 MVA, 230 kV base
(rated current 500e6 / (sqrt(3) * 230e3) = 1.2551 kA rms), the unit of the public PSCAD/EMTDC data
set (Bera, Isik, Kumar, "Transients and Faults in Power Transformers and Phase Angle Regulators",
IEEE DataPort 2020, DOI 10.21227/1d1w-q940).
"""

from __future__ import annotations

import numpy as np

from services.waveform import N_SAMPLES, SAMPLE_RATE_HZ, SYSTEM_FREQUENCY_HZ

#: rated current of the 500 MVA, 230 kV base, kA rms
I_RATED_KA = 500e6 / (np.sqrt(3.0) * 230e3) / 1e3
#: its peak, kA
I_RATED_PEAK_KA = I_RATED_KA * np.sqrt(2.0)
TS = 1.0 / SAMPLE_RATE_HZ
#: nominal sample instants of one window, s
T = np.arange(N_SAMPLES, dtype=np.float64) * TS
#: phase displacement of phases A, B, C (positive sequence), rad
PHASE_SHIFT = np.array([0.0, -2.0 * np.pi / 3.0, 2.0 * np.pi / 3.0])

# --------------------------------------------------------------------------------------------
# relay views
# --------------------------------------------------------------------------------------------
# Which currents each unit's differential relay compares is not publicly documented (docs/contracts.md,
# "Labels"), so the shift set draws the view from several textbook alternatives:
#   windings         the faulted windings' own currents (wye CTs, wye-wye unit, no compensation)
#   yd_lag / yd_lead the delta-connected CTs or numerical compensation of a Yd1 / Yd11 unit:
#                    differences of two phase currents over sqrt(3), which shifts 30 degrees and
#                    removes zero sequence (IEEE C37.91-2021, section on CT connections and
#                    phase-angle compensation; Horowitz & Phadke, "Power System Relaying", ch. 8)
#   zero_seq_filtered  a wye relay input with zero-sequence removal, i - i0 (C37.91, same section)
#   quadrature       an ISPAR-style arrangement in which part of each phase's current is taken
#                    from the other two phases in quadrature, (i_b - i_c)/sqrt(3) for phase A,
#                    by an angle drawn from 0 to 90 degrees (IEEE C37.245-2018 describes the
#                    series/exciting units' delta windings fed from the other phases)
#   uncompensated    the unit's phase shift is not compensated: the fault current is seen as it
#                    flows, and the load current leaves a standing differential 2 sin(theta/2) I_L
VIEWS: tuple[str, ...] = (
    "windings", "yd_lag", "yd_lead", "zero_seq_filtered", "quadrature", "uncompensated",
)
_SQ3 = np.sqrt(3.0)
_Q = np.array([[0.0, 1.0, -1.0], [-1.0, 0.0, 1.0], [1.0, -1.0, 0.0]]) / _SQ3
_FIXED_VIEW_MATRICES = {
    "windings": np.eye(3),
    "yd_lag": np.array([[1.0, -1.0, 0.0], [0.0, 1.0, -1.0], [-1.0, 0.0, 1.0]]) / _SQ3,
    "yd_lead": np.array([[1.0, 0.0, -1.0], [-1.0, 1.0, 0.0], [0.0, -1.0, 1.0]]) / _SQ3,
    "zero_seq_filtered": np.eye(3) - np.full((3, 3), 1.0 / 3.0),
    "uncompensated": np.eye(3),
}


def view_matrix(view: str, quadrature_deg: float = 0.0) -> np.ndarray:
    """3x3 real matrix mapping the zone's phase currents to what the relay's inputs see."""
    if view == "quadrature":
        psi = np.deg2rad(quadrature_deg)
        return np.cos(psi) * np.eye(3) + np.sin(psi) * _Q
    return _FIXED_VIEW_MATRICES[view]


def restrict_weights(weights: dict[str, float], allowed: tuple[str, ...] | None) -> dict[str, float]:
    """The view weights limited to ``allowed`` (None: all); ValueError for an unknown view name."""
    if allowed is None:
        return weights
    unknown = [v for v in allowed if v not in VIEWS]
    if unknown or not allowed:
        raise ValueError(f"unknown relay view(s) {unknown}: expected some of {', '.join(VIEWS)}")
    return {k: (weights.get(k, 0.0) or 1e-3) for k in allowed}


def draw_views(rng: np.random.Generator, n: int, weights: dict[str, float]):
    """Draw n views with the given weights; return the names, the (n, 3, 3) matrices and the
    quadrature angles (degrees, used by the quadrature view only)."""
    names = list(weights)
    p = np.array([weights[k] for k in names], dtype=np.float64)
    idx = rng.choice(len(names), size=n, p=p / p.sum())
    psi = rng.uniform(15.0, 90.0, size=n)
    chosen = [names[i] for i in idx]
    mats = np.stack([view_matrix(v, a) for v, a in zip(chosen, psi, strict=True)])
    return chosen, mats, psi


def apply_view(x: np.ndarray, mats: np.ndarray) -> np.ndarray:
    """(n,3,3) x (n,3,N) -> (n,3,N)."""
    return np.einsum("nij,njk->nik", mats, x)


# --------------------------------------------------------------------------------------------
# random draws
# --------------------------------------------------------------------------------------------
def log_uniform(rng: np.random.Generator, lo: float, hi: float, size) -> np.ndarray:
    return np.exp(rng.uniform(np.log(lo), np.log(hi), size=size))


def system_frequency(rng: np.random.Generator, n: int) -> np.ndarray:
    """Per-window system frequency, Hz: the nominal 60 Hz within a normal operating band of
    +/-0.05 Hz (a simulator runs at exactly 60 Hz; a recording never does)."""
    return SYSTEM_FREQUENCY_HZ + rng.uniform(-0.05, 0.05, size=n)


# --------------------------------------------------------------------------------------------
# standing differential current
# --------------------------------------------------------------------------------------------
def standing_current(rng: np.random.Generator, n: int, omega: np.ndarray, views: list[str]):
    """Balanced standing differential current present before, during and after every event.

    In a regulating transformer the CT ratios can match only one tap position, so a differential
    proportional to load flows at all times; the exciting current adds to it (Hayder, Schaefer,
    Thomas, "Protection of phase shifting transformers", IEEE Trans. Power Delivery 23(2), 2008;
    IEEE C37.245-2018). Here: load 5-110 % of rating, ratio mismatch 0-15 % (weighted towards small
    values), plus the phase-shift error 2 sin(theta/2) for an uncompensated view (theta up to 12
    degrees), plus an exciting current of 0.1-1 % of rating with 3rd/5th harmonics.

    Returns the (n, 3, N) current in kA and a list of per-window dicts.
    """
    load = rng.uniform(0.05, 1.1, size=n)
    mismatch = 0.15 * rng.uniform(0.0, 1.0, size=n) ** 2
    theta = np.where(np.array([v == "uncompensated" for v in views]), np.deg2rad(rng.uniform(1.0, 12.0, n)), 0.0)
    phase_err = 2.0 * np.sin(theta / 2.0)
    amp_fund = (mismatch + phase_err) * load * I_RATED_PEAK_KA  # kA peak
    # with mismatch and shift errors of random sign the vector sum has a random angle
    ang = rng.uniform(0.0, 2.0 * np.pi, size=n)
    exc = log_uniform(rng, 0.001, 0.01, n) * I_RATED_PEAK_KA
    h3 = rng.uniform(0.1, 0.4, size=n)
    h5 = rng.uniform(0.05, 0.2, size=n)
    ang_e = rng.uniform(0.0, 2.0 * np.pi, size=n)
    wt = omega[:, None, None] * T[None, None, :]
    ph = PHASE_SHIFT[None, :, None]
    x = amp_fund[:, None, None] * np.cos(wt + ph + ang[:, None, None])
    # exciting current lags the voltage by ~90 deg; 3rd harmonic is zero sequence, 5th negative
    e_ang = ang_e[:, None, None]
    x += exc[:, None, None] * (
        np.cos(wt + ph + e_ang)
        + h3[:, None, None] * np.cos(3.0 * (wt + e_ang))
        + h5[:, None, None] * np.cos(5.0 * (wt + e_ang) + 5.0 * ph)
    )
    info = [
        {
            "standing_load_pu": float(load[i]),
            "standing_mismatch": float(mismatch[i]),
            "standing_phase_error_deg": float(np.rad2deg(theta[i])),
            "standing_peak_kA": float(amp_fund[i] + exc[i]),
        }
        for i in range(n)
    ]
    return x, info


# --------------------------------------------------------------------------------------------
# current transformer
# --------------------------------------------------------------------------------------------
# A CT with a resistive burden in the manner of the IEEE PSRC "CT saturation calculator" (G. Swift,
# companion of IEEE C37.110-2007): the burden voltage drives the core flux, lam' = R_b (i_p/N -
# i_e(lam)); here with a two-slope excitation curve and the burden resistance normalised to 1.
def _two_slope_current(lam, lam_k, i_k, l2):
    """Exciting current of a two-slope curve: lam / (lam_k / i_k) below the knee, steep above."""
    a = np.abs(lam)
    return np.where(a <= lam_k, lam * (i_k / lam_k), np.sign(lam) * (i_k + (a - lam_k) / l2))


def ct_error_current(i_p: np.ndarray, lam_k, i_k, l2, lam_r, substeps: int = 4):
    """Exciting (error) current of a CT with resistive burden for primary current i_p (m, N), in the
    primary's units with the burden resistance normalised to 1: lam' = i_p - i_e(lam). Backward
    Euler on the two-slope curve is solved exactly (the curve is monotonic: try the linear branch,
    else the saturated branch of the same sign). Returns (i_e (m,N), max |lam|/lam_k (m,))."""
    m, n_s = i_p.shape
    h = TS / substeps
    l1 = lam_k / i_k
    lam = lam_r.copy()
    out = np.empty_like(i_p)
    peak = np.abs(lam) / lam_k
    prev = i_p[:, 0]
    for k in range(n_s):
        cur = i_p[:, k]
        for s in range(substeps):
            ip = prev + (cur - prev) * (s + 1) / substeps
            c = lam + h * ip
            lin = c / (1.0 + h / l1)
            sgn = np.sign(lin)
            sat = (c - h * sgn * (i_k - lam_k / l2)) / (1.0 + h / l2)
            lam = np.where(np.abs(lin) <= lam_k, lin, sat)
        prev = cur
        out[:, k] = _two_slope_current(lam, lam_k, i_k, l2)
        peak = np.maximum(peak, np.abs(lam) / lam_k)
    return out, peak


# --------------------------------------------------------------------------------------------
# measurement chain
# --------------------------------------------------------------------------------------------
def _fractional_resample(x: np.ndarray, shift: np.ndarray) -> np.ndarray:
    """Value of x (n,3,N) at sample index k + shift[n,3,k] by linear interpolation (edges held)."""
    n_s = x.shape[-1]
    pos = np.clip(np.arange(n_s)[None, None, :] + shift, 0.0, n_s - 1.000001)
    i0 = np.floor(pos).astype(np.int64)
    frac = pos - i0
    a = np.take_along_axis(x, i0, axis=-1)
    b = np.take_along_axis(x, i0 + 1, axis=-1)
    return a + frac * (b - a)


def measurement_chain(rng: np.random.Generator, x: np.ndarray, omega: np.ndarray):
    """What a relay's recorder makes of the differential current x (n,3,N) in kA.

    - CT ratio error per phase (+/-1 % typical, up to 3 %) and phase displacement per phase (up to
      about 0.5 deg), within the accuracy classes of IEEE C57.13 relaying CTs at rated current;
    - sampling jitter, 0.5-5 us rms, and a fixed channel skew per phase of up to 10 us (a
      multiplexed ADC);
    - white noise: 0.5-3 A floor plus 0.05-0.5 % of the window's rms;
    - quantisation by a 16-bit (80 %) or 14-bit ADC whose full scale is 20-40 times rated peak,
      clipping at it.

    Returns the measured array and a list of per-window dicts.
    """
    n = x.shape[0]
    gain = 1.0 + np.clip(rng.normal(0.0, 0.01, size=(n, 3)), -0.03, 0.03)
    phase_deg = np.clip(rng.normal(0.0, 0.2, size=(n, 3)), -0.5, 0.5)
    jitter_us = rng.uniform(0.5, 5.0, size=n)
    skew_us = rng.uniform(-10.0, 10.0, size=(n, 3))
    # phase error as a time advance at the fundamental
    dt_phase = np.deg2rad(phase_deg) / omega[:, None]
    shift_s = (dt_phase + skew_us * 1e-6)[:, :, None] + rng.normal(size=x.shape) * (jitter_us * 1e-6)[:, None, None]
    y = _fractional_resample(x, shift_s * SAMPLE_RATE_HZ) * gain[:, :, None]
    rms = np.sqrt(np.mean(y**2, axis=(1, 2)))
    floor = rng.uniform(0.0005, 0.003, size=n)
    rel = rng.uniform(0.0005, 0.005, size=n)
    sigma = floor + rel * rms
    y = y + rng.normal(size=y.shape) * sigma[:, None, None]
    bits = rng.choice([14, 16], size=n, p=[0.2, 0.8])
    full_scale = rng.uniform(20.0, 40.0, size=n) * I_RATED_PEAK_KA
    lsb = 2.0 * full_scale / (2.0 ** bits)
    y = np.clip(np.round(y / lsb[:, None, None]) * lsb[:, None, None], -full_scale[:, None, None], full_scale[:, None, None])
    info = [
        {
            "ct_gain": [float(g) for g in gain[i]],
            "ct_phase_deg": [float(p) for p in phase_deg[i]],
            "jitter_us": float(jitter_us[i]),
            "noise_kA": float(sigma[i]),
            "adc_bits": int(bits[i]),
            "adc_full_scale_kA": float(full_scale[i]),
        }
        for i in range(n)
    ]
    return y, info
