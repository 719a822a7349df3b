"""The six non-fault transients of the shift set (labels 39-44), written from textbook physics and
apart from the project's simulator (issue 10, item 3: "independent transients").

Each generator returns the differential current the protected unit's relay sees, in kA, before
the common relay view, standing current and measurement chain of ``common`` are applied.

- Capacitor bank energisation: closed-form series R-L-C response of each pole of a grounded-wye
  bank to a sinusoidal source, per-pole closing scatter, optional trapped charge; isolated banks
  ring at f0 = f1 sqrt(S_sc / Q_bank) (200-2000 Hz); back-to-back banks first equalise through
  the inrush-limiting loop at 1-3.5 kHz, then share the source mode (IEEE C37.012 application guide for capacitance current switching;
  IEEE Std 1036 on shunt capacitor banks; Greenwood, "Electrical Transients in Power Systems",
  ch. 2 and 3).
- External fault with CT saturation: the through-fault current from a sequence-network calculation,
  fed to a CT model in the manner of the IEEE PSRC "CT saturation calculator" (G. Swift; companion
  of IEEE C37.110-2007): burden-driven flux lambda' = R_b (i_p/N - i_e(lambda)) with remanence,
  here with a two-slope excitation curve solved exactly by backward Euler. The knee is always
  below the symmetrical flux demand, so the CT always saturates. The relay sees the CT's exciting
  (error) current.
- Ferroresonance: the driven series capacitance / saturable inductance circuit reduced to
  x'' + k x' + a x + x^n = B cos(tau) (Kavasseri, "Analysis of subharmonic oscillations in a
  ferroresonant circuit", magnetising law a x + b x^n; Y. Ueda's study of the same equation,
  J. Stat. Phys. 20, 1979, for the chaotic regime; Milicevic et al., Math. Probl. Eng. 2009,
  doi:10.1155/2009/693081), integrated with RK4 and sorted by its Poincare section into
  fundamental, subharmonic and chaotic modes.
- Magnetising inrush: the flux is the integral of the applied voltage less the resistive drop,
  lambda' = v(t) - r i(lambda), from a per-phase remanence, with a two-slope saturation curve
  (Blackburn & Domin, "Protective Relaying", ch. 9; Horowitz & Phadke, "Power System Relaying",
  section 8.4; IEEE C37.91-2021 annex on inrush). Single-phase banks keep independent remanence;
  three-limb cores with a delta winding suppress zero-sequence flux (the sum of the three fluxes is
  forced to zero).
- Non-linear load switching: line current of a line-commutated 6-pulse bridge with firing angle
  alpha and commutation overlap mu computed in the time domain (i = Id (cos a - cos(a + u)) /
  (cos a - cos(a + mu)) during each commutation; Mohan, Undeland, Robbins, "Power Electronics",
  3rd ed., ch. 6; Arrillaga & Watson, "Power System Harmonics", 2nd ed., ch. 4), seen through a
  wye-wye or delta-wye converter transformer; 12-pulse = both, whose 5th and 7th cancel (IEEE 519
  characteristic harmonics h = kp +/- 1).
- Sympathetic inrush: two transformers on one bus with a shared source resistance; energising
  the second drives the first's flux towards saturation of opposite polarity through the shared
  resistive drop of the second's DC current (Bronzeado & Yacamini, IEE Proc. Gen. Transm. Distrib.
  142(4), 1995; Hayward, "Prevention of relay operation on energizing a transformer", AIEE 1941).
"""

from __future__ import annotations

import numpy as np

from services.labels import LABELS, TRANSIENT_LABELS, label_parts
from services.shiftset.common import (
    I_RATED_KA,
    I_RATED_PEAK_KA,
    PHASE_SHIFT,
    TS,
    T,
    apply_view,
    ct_error_current,
    draw_views,
    log_uniform,
    measurement_chain,
    restrict_weights,
    standing_current,
    system_frequency,
)
from services.shiftset.faults import SHUNT_FAULTS, phase_impedance, shunt_fault_currents
from services.waveform import N_SAMPLES

#: relay views for transients: no unit is faulted, the energised or through-carrying unit's relay
#: compensates its connection in any of the usual ways
TRANSIENT_VIEW_WEIGHTS = {"windings": 0.3, "yd_lag": 0.2, "yd_lead": 0.2, "zero_seq_filtered": 0.2,
                          "quadrature": 0.05, "uncompensated": 0.05}

V_LL = 230e3  # V


# --------------------------------------------------------------------------------------------
# capacitor bank energisation
# --------------------------------------------------------------------------------------------
def _rlc_step(e_amp, e_phase, omega, r, ell, c, t_close, v0, t, i_init=0.0):
    """Current of a series R-L-C (all arrays broadcast to (n,3)) switched at t_close onto the source
    e_amp cos(omega t + e_phase), with the capacitor at v0 and the inductor carrying i_init at that
    instant. Steady state from the phasor solution plus the underdamped homogeneous response that
    meets the initial conditions. Returns (n,3,N) A, zero before t_close."""
    z = r + 1j * (omega * ell - 1.0 / (omega * c))
    i_ph = e_amp * np.exp(1j * e_phase) / z
    v_ph = i_ph / (1j * omega * c)
    tc = t_close[..., None]
    i_ss = np.real(i_ph[..., None] * np.exp(1j * omega[..., None] * t[None, None, :]))
    i0 = i_init - np.real(i_ph * np.exp(1j * omega * t_close))
    vh0 = v0 - np.real(v_ph * np.exp(1j * omega * t_close))
    alpha = r / (2.0 * ell)
    w0 = 1.0 / np.sqrt(ell * c)
    wd = np.sqrt(np.maximum(w0**2 - alpha**2, 1.0))
    di0 = (-r * i0 - vh0) / ell
    b = (di0 + alpha * i0) / wd
    dt = np.maximum(t[None, None, :] - tc, 0.0)
    i_h = np.exp(-alpha[..., None] * dt) * (i0[..., None] * np.cos(wd[..., None] * dt) + b[..., None] * np.sin(wd[..., None] * dt))
    return (i_ss + i_h) * (t[None, None, :] >= tc)


def capacitor_switching(rng: np.random.Generator, n: int, omega: np.ndarray):
    """Energising a grounded-wye bank, isolated or back-to-back with an energised bank."""
    q_mvar = log_uniform(rng, 20.0, 200.0, n)
    back_to_back = rng.uniform(size=n) < 0.4
    c2 = q_mvar * 1e6 / (omega * V_LL**2)  # F per phase of the bank being switched
    c1 = c2 * np.where(back_to_back, rng.uniform(0.5, 2.0, size=n), 0.0)  # the bank already on
    f0_iso = log_uniform(rng, 250.0, 1800.0, n)  # source mode with all connected capacitance
    f0_b2b = log_uniform(rng, 1000.0, 3500.0, n)  # discharge loop between the banks
    zeta = rng.uniform(0.02, 0.15, size=n)
    e_amp = V_LL * np.sqrt(2.0 / 3.0)
    delta = rng.uniform(0, 2 * np.pi, size=n)
    t_base = rng.uniform(0.005, 0.035, size=n)
    scatter = rng.uniform(0.0, 0.003, size=(n, 3))  # per-pole closing scatter up to 3 ms
    t_close = t_base[:, None] + scatter
    trapped = np.where(rng.uniform(size=(n, 1)) < 0.2, rng.uniform(-1.0, 1.0, size=(n, 3)), 0.0) * e_amp
    bc = lambda a: np.broadcast_to(a[:, None], (n, 3))  # noqa: E731
    ph = delta[:, None] + PHASE_SHIFT[None, :]
    w3 = bc(omega)
    c_tot = c1 + c2
    # source inductance and resistance from the source mode's frequency with all capacitance on
    ell_s = 1.0 / ((2 * np.pi * f0_iso) ** 2 * c_tot)
    r_s = 2.0 * zeta * np.sqrt(ell_s / c_tot)
    v_close = e_amp * np.cos(w3 * t_close + ph)  # bus voltage when each pole closes
    # isolated: the source drives L_s, C2 from zero current; back-to-back: the banks first equalise
    # through the small loop (its frequency f_bb), then the source mode drives L_s, C1 + C2 from
    # the equalised voltage, carrying the old bank's current, and the new bank takes its share
    share = c2 / c_tot
    v_eq = np.where(bc(back_to_back), (bc(c1) * v_close + bc(c2) * trapped) / bc(c_tot), trapped)
    z_old = r_s + 1j * (omega * ell_s - 1.0 / (omega * np.maximum(c1, 1e-12)))
    i_old = np.where(bc(back_to_back), np.real(bc(e_amp / z_old) * np.exp(1j * (w3 * t_close + ph))), 0.0)
    i_src = _rlc_step(bc(np.full(n, e_amp)), ph, w3, bc(r_s), bc(ell_s), bc(c_tot), t_close, v_eq, T, i_old)
    i_new = np.where(back_to_back[:, None, None], i_src * share[:, None, None], i_src)
    if back_to_back.any():
        c_eq = np.where(back_to_back, c1 * c2 / c_tot, c2)
        w_bb = 2 * np.pi * f0_b2b
        l_bb = 1.0 / (w_bb**2 * c_eq)
        alpha = zeta * w_bb
        wd = w_bb * np.sqrt(1.0 - zeta**2)
        dv = v_close - trapped
        dt = np.maximum(T[None, None, :] - t_close[..., None], 0.0)
        hf = (dv / (bc(l_bb) * bc(wd)))[..., None] * np.exp(-bc(alpha)[..., None] * dt) * np.sin(bc(wd)[..., None] * dt)
        hf = hf * (T[None, None, :] >= t_close[..., None])
        i_new = i_new + np.where(back_to_back[:, None, None], hf, 0.0)
    f0 = np.where(back_to_back, f0_b2b, f0_iso)
    inside = rng.uniform(size=n) < 0.5
    seen_share = np.where(inside, 1.0, rng.uniform(0.05, 0.3, size=n))
    x = i_new / 1e3 * seen_share[:, None, None]
    params = [
        {"bank_mvar": float(q_mvar[i]), "back_to_back": bool(back_to_back[i]), "resonance_hz": float(f0[i]),
         "source_mode_hz": float(f0_iso[i]), "damping_ratio": float(zeta[i]),
         "t_close_ms": [float(v * 1e3) for v in t_close[i]], "trapped_charge": bool(np.any(trapped[i] != 0)),
         "bank_in_zone": bool(inside[i]), "seen_share": float(seen_share[i])}
        for i in range(n)
    ]
    return x, params


# --------------------------------------------------------------------------------------------
# external fault with CT saturation
# --------------------------------------------------------------------------------------------
def external_fault_ct_saturation(rng: np.random.Generator, n: int, omega: np.ndarray):
    kinds = list(SHUNT_FAULTS)
    kind = rng.choice(kinds, size=n)
    faulted = np.array([[p in SHUNT_FAULTS[k][0] for p in range(3)] for k in kind])
    grounded = np.array([SHUNT_FAULTS[k][1] for k in kind])
    z1_mag = log_uniform(rng, 0.05, 0.4, n)
    xr = log_uniform(rng, 8.0, 50.0, n)
    z1 = z1_mag * (1 + 1j * xr) / np.sqrt(1 + xr**2)
    z0 = z1 * log_uniform(rng, 0.5, 3.0, n)
    r_f = log_uniform(rng, 0.0005, 0.05, n)
    delta = rng.uniform(0, 2 * np.pi, size=n)
    e = np.exp(1j * (delta[:, None] + PHASE_SHIFT[None, :]))
    i_pu = shunt_fault_currents(e, phase_impedance(z1, z1, z0), faulted, (r_f[:, None] * np.ones((1, 3))).astype(complex),
                                np.full(n, 0.001 + 0j), grounded)
    amp = np.abs(i_pu) * I_RATED_PEAK_KA
    phi = np.angle(i_pu)
    tau = np.clip(np.imag(z1) / (omega * (np.real(z1) + r_f)), 0.01, 0.2)
    t0 = rng.uniform(-0.005, 0.035, size=n)
    dur = rng.uniform(0.05, 0.15, size=n)
    load = rng.uniform(0.2, 1.0, size=n) * I_RATED_PEAK_KA
    t = T[None, None, :]
    w = omega[:, None, None]
    dt = np.maximum(t - t0[:, None, None], 0.0)
    on = (t >= t0[:, None, None]) & (t < (t0 + dur)[:, None, None])
    fault = amp[..., None] * (np.cos(w * t + phi[..., None])
                              - np.cos(w * t0[:, None, None] + phi[..., None]) * np.exp(-dt / tau[:, None, None])) * on
    i_p = fault + load[:, None, None] * np.cos(w * t + delta[:, None, None] + PHASE_SHIFT[None, :, None] - 0.3)
    # CT: knee flux a fraction of the symmetrical flux demand of the largest faulted current, so the
    # CT saturates even without offset or remanence ("always saturating"), but at least twice the
    # load's, so it does not saturate on load. Unsaturated, the magnetising branch's time constant
    # (knee flux / knee current, burden resistance 1) is seconds, so remanence leaves a negligible
    # exciting current; saturated, 0.3-3 ms (an air-core secondary)
    ip_max = amp.max(axis=1)
    u = log_uniform(rng, 0.1, 0.7, n)
    lam_k = (np.maximum(u * ip_max, 2.0 * load) / omega)[:, None] * np.ones((1, 3))
    i_k = (log_uniform(rng, 1e-5, 1e-4, n) * ip_max)[:, None] * np.ones((1, 3))
    l2 = log_uniform(rng, 3e-4, 3e-3, n)[:, None] * np.ones((1, 3))
    # remanence up to 80 % of what load flux leaves below the knee (a remanence that load current
    # would push past the knee would have been walked down by it long before the fault)
    lam_load = (load / omega)[:, None]
    lam_r = rng.uniform(-0.8, 0.8, size=(n, 3)) * (lam_k - lam_load)
    # the CT starts in its steady state on load: the flux follows the integral of the load current
    # around the remanent level (lam' = i_p with the burden resistance normalised to 1)
    lam_steady = lam_load * np.sin(delta[:, None] + PHASE_SHIFT[None, :] - 0.3)
    err, peak = ct_error_current(i_p.reshape(n * 3, -1), lam_k.ravel(), i_k.ravel(), l2.ravel(),
                                 (lam_r + lam_steady).ravel())
    err = err.reshape(n, 3, -1)
    peak = peak.reshape(n, 3)
    # the other side's CTs: most often linear, sometimes a milder saturation of their own
    both = rng.uniform(size=n) < 0.25
    if both.any():
        u2 = u * log_uniform(rng, 1.5, 4.0, n)
        lam_k2 = (np.maximum(u2 * ip_max, 2.0 * load) / omega)[:, None] * np.ones((1, 3))
        err2, _ = ct_error_current(i_p.reshape(n * 3, -1), lam_k2.ravel(), i_k.ravel(), l2.ravel(),
                                   (rng.uniform(-0.5, 0.5, size=(n, 3)) * (lam_k2 - lam_load) + lam_steady).ravel())
        err = np.where(both[:, None, None], err - err2.reshape(n, 3, -1), err)
    params = [
        {"external_fault_type": str(kind[i]), "through_fault_peak_kA": float(ip_max[i]),
         "knee_over_symmetrical_flux": float(u[i]), "remanence_over_knee": [float(v) for v in lam_r[i] / lam_k[i]],
         "tau_dc_ms": float(tau[i] * 1e3), "t_inception_ms": float(t0[i] * 1e3), "duration_ms": float(dur[i] * 1e3),
         "max_flux_over_knee": float(peak[i].max()), "saturated": bool(peak[i].max() > 1.0),
         "both_sides_saturate": bool(both[i])}
        for i in range(n)
    ]
    return err, params


# --------------------------------------------------------------------------------------------
# ferroresonance
# --------------------------------------------------------------------------------------------
_FERRO_SPC = 2 * 167  # RK4 steps per cycle (two per sample)


def _ferro_integrate(k, a, nexp, b_amp, phase, x0, v0, settle_cycles, keep_cycles):
    """RK4 of x'' + k x' + a x + x^n = B cos(tau + phase) over settle + keep cycles (all (m,);
    n is 3 or 5). Returns the current a x + x^n + k x' sampled at 2 steps per sample over the kept cycles
    (m, keep*167) and the Poincare points x(2 pi j) of the kept cycles (m, keep)."""
    h = 2 * np.pi / _FERRO_SPC
    x, v = x0.copy(), v0.copy()

    sel5 = (nexp == 5.0).astype(np.float64)
    sel3 = 1.0 - sel5

    def acc(tau, x, v):
        x2 = x * x
        return b_amp * np.cos(tau + phase) - k * v - a * x - x * x2 * (sel3 + sel5 * x2)

    total = settle_cycles + keep_cycles
    cur = np.empty((x.shape[0], keep_cycles * _FERRO_SPC // 2))
    poinc = np.empty((x.shape[0], keep_cycles))
    tau = 0.0
    j = 0
    for cyc in range(total):
        for s in range(_FERRO_SPC):
            a1 = acc(tau, x, v)
            x2, v2 = x + 0.5 * h * v, v + 0.5 * h * a1
            a2 = acc(tau + 0.5 * h, x2, v2)
            x3, v3 = x + 0.5 * h * v2, v + 0.5 * h * a2
            a3 = acc(tau + 0.5 * h, x3, v3)
            x4, v4 = x + h * v3, v + h * a3
            a4 = acc(tau + h, x4, v4)
            x = x + h / 6.0 * (v + 2 * v2 + 2 * v3 + v4)
            v = v + h / 6.0 * (a1 + 2 * a2 + 2 * a3 + a4)
            tau += h
            if cyc >= settle_cycles and s % 2 == 1:
                cur[:, j] = a * x + x**3 * (sel3 + sel5 * x * x) + k * v
                j += 1
        if cyc >= settle_cycles:
            poinc[:, cyc - settle_cycles] = x
    return cur, poinc


def _ferro_mode(poinc: np.ndarray) -> np.ndarray:
    """'fundamental' (period 1), 'subharmonic' (period 2-6) or 'chaotic' from Poincare points."""
    scale = np.maximum(np.abs(poinc).max(axis=1), 1e-9)
    mode = np.full(poinc.shape[0], "chaotic", dtype=object)
    found = np.zeros(poinc.shape[0], dtype=bool)
    for p in range(1, 7):
        d = np.abs(poinc[:, p:] - poinc[:, :-p]).max(axis=1) / scale
        ok = (d < 2e-3) & ~found
        mode[ok] = "fundamental" if p == 1 else "subharmonic"
        found |= ok
    return mode


def ferroresonance(rng: np.random.Generator, n: int, omega: np.ndarray):
    n_aff = rng.choice([1, 2, 3], size=n, p=[0.5, 0.3, 0.2])
    target = rng.choice(["fundamental", "subharmonic", "chaotic"], size=n, p=[0.4, 0.3, 0.3])
    slots = [(i, int(p)) for i in range(n) for p in sorted(rng.permutation(3)[: n_aff[i]])]
    m = 3 * len(slots)
    k = log_uniform(rng, 0.02, 0.25, m)
    a = log_uniform(rng, 0.005, 0.3, m)
    nexp = np.where(rng.uniform(size=m) < 0.5, 3.0, 5.0)
    b_amp = log_uniform(rng, 1.0, 12.0, m)
    x0 = rng.uniform(-2, 2, m)
    v0 = rng.uniform(-2, 2, m)
    phase = rng.uniform(0, 2 * np.pi, m)
    keep = 10  # the window is the last 726 samples of the kept cycles
    cur, poinc = _ferro_integrate(k, a, nexp, b_amp, phase, x0, v0, settle_cycles=24, keep_cycles=keep)
    mode = _ferro_mode(poinc)
    # saturated: the current is clearly non-sinusoidal in the window (crest factor above 1.8; a sine
    # has 1.41), i.e. the core is driven into saturation and this is ferroresonance, not a normal
    # exciting current
    win = cur[:, -N_SAMPLES:]
    crest = np.abs(win).max(axis=1) / np.maximum(np.sqrt(np.mean(win**2, axis=1)), 1e-12)
    saturated = crest > 1.8
    pool = {md: list(np.flatnonzero((mode == md) & saturated)) for md in ("fundamental", "subharmonic", "chaotic")}
    rest = list(np.flatnonzero(saturated)) or list(range(m))
    used: set[int] = set()
    x = np.zeros((n, 3, N_SAMPLES))
    info: list[dict] = [{"affected_phases": "", "modes": []} for _ in range(n)]
    peak_target = log_uniform(rng, 0.05, 2.5, n)
    w = np.zeros(n)
    for i, p in slots:
        cand = [c for c in pool[target[i]] if c not in used] or [c for c in rest if c not in used] or list(range(m))
        c = cand[0]
        used.add(c)
        x[i, p] = cur[c, -N_SAMPLES:]
        info[i]["affected_phases"] += "ABC"[p]
        info[i]["modes"].append(str(mode[c]))
        w[i] = max(w[i], np.abs(cur[c, -N_SAMPLES:]).max())
    # amplitude: the per-unit circuit scaled to a drawn peak in kA; healthy phases carry a normal,
    # sinusoidal exciting current of 1 % of that peak
    x *= (peak_target / np.maximum(w, 1e-9))[:, None, None]
    healthy = np.abs(x).max(axis=2) == 0
    t = T[None, None, :]
    normal = (0.01 * peak_target)[:, None, None] * np.sin(omega[:, None, None] * t + PHASE_SHIFT[None, :, None])
    x = np.where(healthy[..., None], normal, x)
    params = []
    for i in range(n):
        modes = info[i]["modes"]
        params.append({"affected_phases": info[i]["affected_phases"], "target_mode": str(target[i]),
                       "modes": modes, "mode": modes[0] if modes else "none", "peak_kA": float(peak_target[i])})
    return x, params


# --------------------------------------------------------------------------------------------
# magnetising and sympathetic inrush
# --------------------------------------------------------------------------------------------
def _sat_current(lam, lam_k, l_m, l_air):
    """Two-slope magnetising current (pu): lam / l_m below the knee, plus (|lam|-knee)/l_air above."""
    a = np.abs(lam)
    return lam / l_m + np.sign(lam) * np.maximum(a - lam_k, 0.0) / l_air


def _window_start_index(t_first: float, substeps: int) -> tuple[float, int]:
    """Integration start (<= t_first and <= 0) on the sub-step grid and the number of steps to 0."""
    h = TS / substeps
    start = min(t_first, 0.0) - h
    n_pre = int(np.ceil(-start / h))
    return -n_pre * h, n_pre


def magnetising_inrush(rng: np.random.Generator, n: int, omega: np.ndarray):
    single_phase_bank = rng.uniform(size=n) < 0.5
    delta_energised = rng.uniform(size=n) < 0.35
    lam_k = rng.uniform(1.05, 1.3, size=(n, 1))
    l_air = rng.uniform(0.15, 0.6, size=(n, 1))
    l_m = log_uniform(rng, 100.0, 500.0, (n, 1))
    r = log_uniform(rng, 0.003, 0.03, (n, 1))
    # remanence: independent per phase for single-phase banks, a zero-sum pattern for 3-limb cores
    rem_ind = rng.uniform(-0.8, 0.8, size=(n, 3))
    psi = rng.uniform(0, 2 * np.pi, size=(n, 1))
    rem_3l = rng.uniform(0.2, 0.8, size=(n, 1)) * np.cos(psi + PHASE_SHIFT[None, :])
    rem = np.where(single_phase_bank[:, None], rem_ind, rem_3l)
    late = rng.uniform(size=n) < 0.25
    t_c = np.where(late, rng.uniform(-0.12, -0.02, size=n), rng.uniform(-0.002, 0.03, size=n))
    t_pole = t_c[:, None] + rng.uniform(0.0, 0.003, size=(n, 3))
    theta = rng.uniform(0, 2 * np.pi, size=(n, 1))
    rating = rng.uniform(0.3, 1.0, size=n)  # energised transformer rating / 500 MVA
    substeps = 1  # Heun at the sampling step: omega h = 0.038 rad, r h omega / L_air < 0.03
    h = TS / substeps
    t_start, n_pre = _window_start_index(float(t_pole.min()), substeps)
    lam = rem.copy()
    out = np.zeros((n, 3, N_SAMPLES))
    total = n_pre + N_SAMPLES * substeps
    w = omega[:, None]
    for s in range(total):
        t = t_start + s * h
        closed = t >= t_pole
        v = np.cos(w * t + theta + PHASE_SHIFT[None, :])

        def deriv(lm, vv, closed=closed):
            return np.where(closed, vv - r * _sat_current(lm, lam_k, l_m, l_air), 0.0) * w

        k1 = deriv(lam, v)
        v2 = np.cos(w * (t + h) + theta + PHASE_SHIFT[None, :])
        k2 = deriv(lam + h * k1, v2)
        lam = lam + 0.5 * h * (k1 + k2)
        # three-limb core with a delta winding: no zero-sequence flux once all poles are closed
        all_closed = (t + h >= t_pole).all(axis=1) & ~single_phase_bank
        lam = np.where(all_closed[:, None], lam - lam.mean(axis=1, keepdims=True), lam)
        if s >= n_pre and (s - n_pre) % substeps == substeps - 1:
            out[:, :, (s - n_pre) // substeps] = _sat_current(lam, lam_k, l_m, l_air) * ((t + h) >= t_pole)
    # line currents of a delta-connected energised winding are differences of winding currents
    d = np.array([[1.0, 0.0, -1.0], [-1.0, 1.0, 0.0], [0.0, -1.0, 1.0]]) / np.sqrt(3.0)
    out = np.where(delta_energised[:, None, None], np.einsum("ij,njk->nik", d, out), out)
    x = out * (rating * I_RATED_PEAK_KA)[:, None, None]
    params = [
        {"core": "single_phase_bank" if single_phase_bank[i] else "three_limb", "energised_winding":
         "delta" if delta_energised[i] else "wye", "remanence_pu": [float(v) for v in rem[i]],
         "knee_pu": float(lam_k[i, 0]), "air_core_pu": float(l_air[i, 0]), "resistance_pu": float(r[i, 0]),
         "t_energise_ms": [float(v * 1e3) for v in t_pole[i]], "rating_over_base": float(rating[i])}
        for i in range(n)
    ]
    return x, params


def _sympathetic_once(rng: np.random.Generator, n: int, omega: np.ndarray):
    """One batch: T1 in service, T2 energised at t_c on the same bus; T1's relay sees T1's current.
    Returns the window currents (kA), params and whether T1's flux passed the knee in the window."""
    lam_k = rng.uniform(1.1, 1.3, size=(n, 1))
    l_air1 = rng.uniform(0.2, 0.5, size=(n, 1))
    l_air2 = rng.uniform(0.15, 0.5, size=(n, 1))
    l_m = log_uniform(rng, 100.0, 500.0, (n, 1))
    r_s = log_uniform(rng, 0.03, 0.12, (n, 1))  # shared source resistance, pu
    r1 = log_uniform(rng, 0.002, 0.008, (n, 1))
    r2 = log_uniform(rng, 0.002, 0.008, (n, 1))
    single_phase_bank = rng.uniform(size=n) < 0.5
    rem2 = np.where(single_phase_bank[:, None], rng.uniform(-0.8, 0.8, size=(n, 3)),
                    rng.uniform(0.3, 0.8, size=(n, 1)) * np.cos(rng.uniform(0, 2 * np.pi, (n, 1)) + PHASE_SHIFT[None, :]))
    v_over = rng.uniform(1.0, 1.05, size=(n, 1))  # bus voltage, pu
    # sympathetic saturation builds up over cycles (Bronzeado & Yacamini): the window is taken 3 to
    # 25 cycles after the other unit's energisation, when the in-service unit's current shows
    t_c = -rng.uniform(3.0, 25.0, size=n) / 60.0
    theta = rng.uniform(0, 2 * np.pi, size=(n, 1))
    substeps = 1  # Heun at the sampling step: omega h = 0.038 rad, r h omega / L_air < 0.03
    h = TS / substeps
    # start one cycle before the earliest energisation with T1 in steady state
    t_start, n_pre = _window_start_index(float(t_c.min()) - 1.0 / 60.0, substeps)
    w = omega[:, None]
    ph = theta + PHASE_SHIFT[None, :]
    lam1 = v_over * np.sin(w * t_start + ph)
    lam2 = rem2.copy()
    out = np.zeros((n, 3, N_SAMPLES))
    out2 = np.zeros((n, 3, N_SAMPLES))
    flux_peak = np.zeros(n)
    total = n_pre + N_SAMPLES * substeps

    def currents(l1, l2):
        return _sat_current(l1, lam_k, l_m, l_air1), _sat_current(l2, lam_k, l_m, l_air2)

    for s in range(total):
        t = t_start + s * h
        on2 = (t >= t_c)[:, None]

        def deriv(l1, l2, tt, on2=on2):
            i1, i2 = currents(l1, l2)
            i2 = i2 * on2
            v_bus = v_over * np.cos(w * tt + ph) - r_s * (i1 + i2)
            return (v_bus - r1 * i1) * w, np.where(on2, (v_bus - r2 * i2) * w, 0.0)

        a1, b1 = deriv(lam1, lam2, t)
        a2, b2 = deriv(lam1 + h * a1, lam2 + h * b1, t + h)
        lam1 = lam1 + 0.5 * h * (a1 + a2)
        lam2 = lam2 + 0.5 * h * (b1 + b2)
        three_limb = ~single_phase_bank
        lam1 = np.where(three_limb[:, None], lam1 - lam1.mean(axis=1, keepdims=True), lam1)
        lam2 = np.where((three_limb & (t + h >= t_c))[:, None], lam2 - lam2.mean(axis=1, keepdims=True), lam2)
        if s >= n_pre and (s - n_pre) % substeps == substeps - 1:
            i1, i2 = currents(lam1, lam2)
            out[:, :, (s - n_pre) // substeps] = i1
            out2[:, :, (s - n_pre) // substeps] = i2 * on2
            flux_peak = np.maximum(flux_peak, (np.abs(lam1) / lam_k).max(axis=1))
    rating = rng.uniform(0.5, 1.0, size=n)
    x = out * (rating * I_RATED_PEAK_KA)[:, None, None]
    # polarity check: in the phase where the in-service unit's current is most one-sided, its DC
    # (window mean) has the opposite sign of the energised unit's
    m1, m2 = out.mean(axis=2), out2.mean(axis=2)
    ph = np.abs(m1).argmax(axis=1)
    rows = np.arange(n)
    opposite = np.sign(m1[rows, ph]) * np.sign(m2[rows, ph]) < 0
    params = [
        {"core": "single_phase_bank" if single_phase_bank[i] else "three_limb",
         "t_energise_other_ms": float(t_c[i] * 1e3), "source_resistance_pu": float(r_s[i, 0]),
         "in_service_peak_pu": float(np.abs(out[i]).max()), "energised_peak_pu": float(np.abs(out2[i]).max()),
         "opposite_polarity": bool(opposite[i]), "in_service_flux_over_knee": float(flux_peak[i]),
         "rating_over_base": float(rating[i])}
        for i in range(n)
    ]
    return x, params, flux_peak > 1.0


def sympathetic_inrush(rng: np.random.Generator, n: int, omega: np.ndarray):
    """Sympathetic inrush in which the in-service unit's core does reach saturation: windows where
    the drawn circuit is too stiff for that are drawn again (up to four times)."""
    x, params, ok = _sympathetic_once(rng, n, omega)
    for _ in range(4):
        bad = np.flatnonzero(~ok)
        if bad.size == 0:
            break
        x2, p2, ok2 = _sympathetic_once(rng, bad.size, omega[bad])
        x[bad] = x2
        for j, i in enumerate(bad):
            params[i] = p2[j]
        ok[bad] = ok2
    return x, params


# --------------------------------------------------------------------------------------------
# non-linear load switching
# --------------------------------------------------------------------------------------------
def _ramp(u, alpha, mu):
    """Commutation ramp: 0 before, (cos a - cos(a+u)) / (cos a - cos(a+mu)) during, 1 after."""
    uu = np.clip(u, 0.0, mu)
    val = (np.cos(alpha) - np.cos(alpha + uu)) / (np.cos(alpha) - np.cos(alpha + mu))
    return np.where(u < 0, 0.0, np.where(u >= mu, 1.0, val))


def bridge_line_current(theta: np.ndarray, alpha, mu) -> np.ndarray:
    """Phase-A AC current (per unit of Id) of a 6-pulse bridge fed by v_a = cos(theta).

    The top group takes phase A from its natural commutation at theta = -60 deg plus alpha to
    +60 deg plus alpha, the bottom group from 120 + alpha to 240 + alpha; each transfer takes the
    overlap mu with the commutation-current shape of the textbook (Mohan et al., ch. 6)."""
    def block(start):
        psi = np.mod(theta - start, 2 * np.pi)
        return _ramp(psi, alpha, mu) - _ramp(psi - 2 * np.pi / 3, alpha, mu)

    return block(-np.pi / 3 + alpha) - block(2 * np.pi / 3 + alpha)


_YD = np.array([[1.0, -1.0, 0.0], [0.0, 1.0, -1.0], [-1.0, 0.0, 1.0]]) / np.sqrt(3.0)


def converter_currents(th: np.ndarray, alpha: np.ndarray, mu: np.ndarray, config: np.ndarray,
                       imbalance: np.ndarray) -> np.ndarray:
    """Primary line currents (n,3,N), per unit of Id, of a converter seen through its transformer.

    th (n,N) phase-A voltage angle; alpha, mu (n,1) rad; config (n,) one of '6p_wye_wye',
    '6p_delta_wye', '12p'; imbalance (n,) ratio of the delta-wye bridge's Id to the wye-wye one's in
    the 12-pulse pair. The delta-wye bridge's secondary voltages lag 30 deg; its currents come back
    through the delta advanced 30 deg for positive and retarded 30 deg for negative sequence, so the
    5th and 7th of the two bridges are in antiphase and cancel in the 12-pulse sum."""
    def bridge(shift):
        return np.stack([bridge_line_current(th + shift + PHASE_SHIFT[p], alpha, mu) for p in range(3)], axis=1)

    wye = bridge(0.0)
    dy = np.einsum("ij,njk->nik", _YD, bridge(-np.pi / 6))
    return np.where((config == "6p_wye_wye")[:, None, None], wye,
                    np.where((config == "6p_delta_wye")[:, None, None], dy,
                             0.5 * (wye + imbalance[:, None, None] * dy)))


def non_linear_load_switching(rng: np.random.Generator, n: int, omega: np.ndarray):
    config = rng.choice(["6p_wye_wye", "6p_delta_wye", "12p"], size=n, p=[0.35, 0.35, 0.3])
    alpha = np.deg2rad(rng.uniform(0.0, 60.0, size=n))
    mu = np.deg2rad(rng.uniform(3.0, 30.0, size=n))
    theta0 = rng.uniform(0, 2 * np.pi, size=n)
    th = omega[:, None] * T[None, :] + theta0[:, None]
    imbalance = 1.0 + rng.uniform(-0.03, 0.03, size=n)
    shape = converter_currents(th, alpha[:, None], mu[:, None], config, imbalance)
    # DC-side ripple (finite smoothing reactor) at the pulse number times the fundamental: 6th for a
    # 6-pulse bridge, 12th for the 12-pulse pair, so it adds sidebands at the characteristic
    # harmonics only (h = kp +/- 1)
    ripple = rng.uniform(0.0, 0.08, size=n)
    pulses = np.where(config == "12p", 12.0, 6.0)
    shape = shape * (1.0 + ripple[:, None, None]
                     * np.cos(pulses[:, None, None] * th[:, None, :] + rng.uniform(0, 2 * np.pi, (n, 1, 1))))
    load = rng.uniform(0.1, 1.0, size=n) * I_RATED_KA  # kA rms of the fundamental
    fund_per_id = np.sqrt(6.0) / np.pi  # fundamental rms of a 6-pulse line current per unit Id
    i_d = load / fund_per_id
    # switching: on inside the window (most), off inside the window, or already running
    action = rng.choice(["on", "off", "running"], size=n, p=[0.65, 0.2, 0.15])
    t_sw = rng.uniform(0.005, 0.035, size=n)
    tau_d = rng.uniform(0.002, 0.02, size=n)
    dt = T[None, :] - t_sw[:, None]
    env_on = np.where(dt >= 0, 1.0 - np.exp(-np.maximum(dt, 0) / tau_d[:, None]), 0.0)
    env_off = np.where(dt >= 0, np.exp(-np.maximum(dt, 0) / tau_d[:, None]), 1.0)
    env = np.where((action == "on")[:, None], env_on, np.where((action == "off")[:, None], env_off, 1.0))
    inside = rng.uniform(size=n) < 0.4
    seen_share = np.where(inside, 1.0, rng.uniform(0.05, 0.3, size=n))
    x = shape * (i_d * seen_share)[:, None, None] * env[:, None, :]
    params = [
        {"converter": str(config[i]), "alpha_deg": float(np.rad2deg(alpha[i])), "mu_deg": float(np.rad2deg(mu[i])),
         "action": str(action[i]), "t_switch_ms": float(t_sw[i] * 1e3), "load_kA_rms": float(load[i]),
         "load_in_zone": bool(inside[i]), "seen_share": float(seen_share[i]), "dc_ripple": float(ripple[i])}
        for i in range(n)
    ]
    return x, params


GENERATORS = {
    "capacitor_switching": capacitor_switching,
    "external_fault_ct_saturation": external_fault_ct_saturation,
    "ferroresonance": ferroresonance,
    "magnetising_inrush": magnetising_inrush,
    "non_linear_load_switching": non_linear_load_switching,
    "sympathetic_inrush": sympathetic_inrush,
}


def transient_windows(label_id: int, n: int, rng: np.random.Generator, views: tuple[str, ...] | None = None
                      ) -> tuple[np.ndarray, list[dict]]:
    """n independent-transient windows (n,3,726) float32 in kA for one transient label; ``views``
    limits the relay views drawn (default: all)."""
    label = LABELS[label_id]
    if label not in TRANSIENT_LABELS:
        raise ValueError(f"label {label_id} is not a transient")
    kind = label_parts(label).kind
    f_sys = system_frequency(rng, n)
    omega = 2.0 * np.pi * f_sys
    zone, extra = GENERATORS[kind](rng, n, omega)
    view_names, mats, psi = draw_views(rng, n, restrict_weights(TRANSIENT_VIEW_WEIGHTS, views))
    seen = apply_view(zone, mats)
    standing, s_info = standing_current(rng, n, omega, view_names)
    x, m_info = measurement_chain(rng, seen + standing, omega)
    params = []
    for i in range(n):
        d = {"label": label, "label_id": int(label_id), "family": "transient", "equipment": "none", "kind": kind,
             "view": view_names[i], "quadrature_deg": float(psi[i]) if view_names[i] == "quadrature" else None,
             "system_frequency_hz": float(f_sys[i])}
        d.update(extra[i])
        d.update(s_info[i])
        d.update(m_info[i])
        params.append(d)
    return x.astype(np.float32), params
