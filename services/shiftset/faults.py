"""Internal faults of the power transformer and of the ISPAR's series and exciting units, for the
shift set (labels 0-38), by a route of their own:

1. **Sequence-network fault calculation in the phase domain.** A Thevenin source with positive-,
   negative- and zero-sequence impedances Z1, Z2, Z0 drawn per event is turned into its phase
   impedance matrix Zabc = A Z012 A^-1 and connected to a general shunt fault: one impedance per
   faulted phase to a common node, and that node to ground through Zg (or not at all). Solving the
   four linear equations gives every shunt fault type at once and reduces to the textbook formulas
   (single line to ground: I = 3E / (Z1 + Z2 + Z0 + 3Zf); line to line: I = -j sqrt(3) E / (Z1 + Z2
   + Zf); ...), see J. L. Blackburn, T. J. Domin, "Protective Relaying: Principles and
   Applications", 4th ed., ch. 4, and J. D. Glover, M. S. Sarma, "Power System Analysis and
   Design", ch. 9. A three-phase-to-ground fault gets a ground impedance drawn from bolted to
   open, so its ground share goes down to 0 (then it is indistinguishable from ABC, as it is in
   the field).
2. **Where in the winding.** The terminal current of a fault x per unit along a winding from its
   neutral falls roughly with x to x^2 (Horowitz & Phadke, "Power System Relaying", 3rd ed.,
   section 8.2, on faults near the neutral of wye windings); the shift set draws x and an
   exponent between 0.5 and 2.
3. **Turn-to-turn and winding-to-winding faults** are not shunt faults of the network: a few
   shorted turns add a small current in one phase (C37.91-2021 notes that turn faults of a few
   percent of the winding may draw less than rated current at the terminals); a short between two
   windings (same or another phase) injects a current into one winding and takes a turns-ratio
   share of it out of the other.
4. **Time protocol of the public data set**: the fault is applied for 0.05 s and then removed, so
   the current returns to its standing level inside the window; inception is swept over about
   one cycle in 1.38 ms steps near the start of the window (Bera, Isik, Kumar, IEEE DataPort 2020,
   DOI 10.21227/1d1w-q940; P. K. Bera, dissertation, arXiv 2302.03826). Each pole interrupts at
   its own next current zero after the clearing instant, as a circuit breaker does. About 30 %
   of the windows use other placements (anywhere in the window, or the fault already flowing at
   its start).
5. **DC offset** decays with the fault loop's X/R including the fault resistance, drawn the same
   way for every unit; a damped inception ringing at 0.5-3 kHz (line and bushing capacitance) is
   added to half of the windows.
6. **The relay's view** of the unit (see ``common.VIEWS``) is drawn per window with unit-specific
   weights, but every view is possible for every unit: no public source says which currents each
   ISPAR unit's relay compares, so the shift set does not let a unit own a signature.
"""

from __future__ import annotations

import numpy as np

from services.labels import LABELS, label_parts
from services.shiftset.common import (
    I_RATED_KA,
    I_RATED_PEAK_KA,
    PHASE_SHIFT,
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
from services.waveform import N_SAMPLES, SAMPLE_RATE_HZ

#: fault kind -> faulted phases (0=A, 1=B, 2=C) and whether ground is involved
SHUNT_FAULTS: dict[str, tuple[tuple[int, ...], bool]] = {
    "AG": ((0,), True), "BG": ((1,), True), "CG": ((2,), True),
    "ABG": ((0, 1), True), "ACG": ((0, 2), True), "BCG": ((1, 2), True),
    "ABCG": ((0, 1, 2), True),
    "AB": ((0, 1), False), "AC": ((0, 2), False), "BC": ((1, 2), False),
    "ABC": ((0, 1, 2), False),
}

#: view weights per unit (my own; every view is possible for every unit)
VIEW_WEIGHTS: dict[str, dict[str, float]] = {
    "power_transformer": {"windings": 0.25, "yd_lag": 0.2, "yd_lead": 0.2, "zero_seq_filtered": 0.15,
                          "quadrature": 0.05, "uncompensated": 0.15},
    "ispar_series": {"windings": 0.25, "yd_lag": 0.12, "yd_lead": 0.12, "zero_seq_filtered": 0.16,
                     "quadrature": 0.2, "uncompensated": 0.15},
    "ispar_exciting": {"windings": 0.2, "yd_lag": 0.1, "yd_lead": 0.1, "zero_seq_filtered": 0.15,
                       "quadrature": 0.3, "uncompensated": 0.15},
}

DATASET_FAULT_DURATION_S = 0.05
DATASET_INCEPTION_STEP_S = 1.38e-3

_A = np.array([[1, 1, 1], [1, np.exp(-2j * np.pi / 3), np.exp(2j * np.pi / 3)],
               [1, np.exp(2j * np.pi / 3), np.exp(-2j * np.pi / 3)]])
_A_INV = np.linalg.inv(_A)


def phase_impedance(z1: np.ndarray, z2: np.ndarray, z0: np.ndarray) -> np.ndarray:
    """(n,) sequence impedances -> (n,3,3) phase impedance matrix A diag(Z0,Z1,Z2) A^-1."""
    d = np.zeros((z1.shape[0], 3, 3), dtype=np.complex128)
    d[:, 0, 0], d[:, 1, 1], d[:, 2, 2] = z0, z1, z2
    return _A @ d @ _A_INV


def shunt_fault_currents(e_abc: np.ndarray, z_abc: np.ndarray, faulted: np.ndarray,
                         z_f: np.ndarray, z_g: np.ndarray, grounded: np.ndarray) -> np.ndarray:
    """Phase fault currents (n,3) complex, per unit.

    e_abc (n,3) prefault phase voltages; z_abc (n,3,3); faulted (n,3) bool; z_f (n,3) impedance of
    each faulted phase to the fault node; z_g (n,) fault node to ground; grounded (n,) bool (False:
    the fault node floats, sum of currents is zero).
    Unknowns [Ia, Ib, Ic, Vn]: for a faulted phase p, sum_q Zpq Iq + Zf_p Ip + Vn = Ep; for a
    healthy phase Ip = 0; the node: Vn - Zg (Ia+Ib+Ic) = 0, or Ia+Ib+Ic = 0 when ungrounded.
    """
    n = e_abc.shape[0]
    m = np.zeros((n, 4, 4), dtype=np.complex128)
    rhs = np.zeros((n, 4), dtype=np.complex128)
    for p in range(3):
        f = faulted[:, p]
        m[f, p, :3] = z_abc[f, p, :]
        m[f, p, p] += z_f[f, p]
        m[f, p, 3] = 1.0
        rhs[f, p] = e_abc[f, p]
        m[~f, p, p] = 1.0
    g = grounded
    m[g, 3, :3] = -z_g[g, None]
    m[g, 3, 3] = 1.0
    m[~g, 3, :3] = 1.0
    sol = np.linalg.solve(m, rhs[..., None])[..., 0]
    return sol[:, :3]


def _inception_times(rng: np.random.Generator, n: int):
    """Fault inception and clearing instants (s, window time) and the placement used."""
    mode = rng.choice(["dataset", "anywhere", "already_on"], size=n, p=[0.7, 0.2, 0.1])
    start = rng.uniform(0.0005, 0.003, size=n)
    step = rng.integers(0, 12, size=n)
    t0 = np.where(mode == "dataset", start + step * DATASET_INCEPTION_STEP_S, 0.0)
    t0 = np.where(mode == "anywhere", rng.uniform(0.0, 0.045, size=n), t0)
    t0 = np.where(mode == "already_on", rng.uniform(-0.04, 0.0, size=n), t0)
    return t0, t0 + DATASET_FAULT_DURATION_S, mode


def _first_zero_after(comp: np.ndarray, k_from: np.ndarray) -> np.ndarray:
    """Index of the first sign change of comp (..., N) at or after k_from (...); N if none."""
    s = np.signbit(comp)
    cross = np.zeros_like(s)
    cross[..., 1:] = s[..., 1:] != s[..., :-1]
    cand = cross & (np.arange(N_SAMPLES) >= k_from[..., None])
    return np.where(cand.any(axis=-1), cand.argmax(axis=-1), N_SAMPLES)


def _clear_at_current_zero(comp: np.ndarray, t_clear: np.ndarray, grounded: np.ndarray) -> np.ndarray:
    """Interrupt the fault component (n,3,N) after t_clear as a three-pole breaker does.

    Grounded faults: each pole at its own next current zero. Ungrounded faults: the first pole to
    clear interrupts at its current zero; the two others then carry one phase-to-phase loop
    current, (i_q - i_r)/2 and its negative, until that current's next zero (the first-pole-to-
    clear sequence; Greenwood, "Electrical Transients in Power Systems", ch. 4)."""
    k_clear = np.ceil(t_clear * SAMPLE_RATE_HZ).astype(np.int64)
    first = _first_zero_after(comp, np.broadcast_to(k_clear[:, None], comp.shape[:2]))
    idx = np.arange(N_SAMPLES)
    out = comp * (idx[None, None, :] < first[..., None])
    carrying = np.abs(comp).max(axis=-1) > 0
    for i in np.flatnonzero(~grounded):
        live = np.flatnonzero(carrying[i])
        if live.size < 3:
            continue  # a two-phase loop: both poles see the same current and clear together
        p = live[np.argmin(first[i, live])]
        k1 = first[i, p]
        if k1 >= N_SAMPLES:
            continue
        q, r = [j for j in live if j != p]
        loop = 0.5 * (comp[i, q] - comp[i, r])
        k2 = int(_first_zero_after(loop[None, :], np.array([k1]))[0])
        out[i, :, k1:] = 0.0
        out[i, q, k1:k2] = loop[k1:k2]
        out[i, r, k1:k2] = -loop[k1:k2]
    return out


def _time_domain(amp: np.ndarray, phi: np.ndarray, tau: np.ndarray, omega: np.ndarray,
                 t0: np.ndarray, t_clear: np.ndarray, grounded: np.ndarray) -> np.ndarray:
    """Fault component of each phase: A [cos(wt+phi) - cos(w t0+phi) exp(-(t-t0)/tau)] from t0,
    interrupted after t_clear (see ``_clear_at_current_zero``). amp, phi, tau: (n,3); omega, t0,
    t_clear, grounded: (n,)."""
    t = T[None, None, :]
    w = omega[:, None, None]
    t0b = t0[:, None, None]
    dt = np.maximum(t - t0b, 0.0)
    ac = np.cos(w * t + phi[..., None])
    dc = np.cos(w * t0b + phi[..., None]) * np.exp(-dt / tau[..., None])
    comp = amp[..., None] * (ac - dc) * (t >= t0b)
    return _clear_at_current_zero(comp, t_clear, grounded)


def _ringing(rng: np.random.Generator, n: int, peak: np.ndarray, t0: np.ndarray,
             t_clear: np.ndarray, grounded: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Damped oscillation at inception in the faulted phases' share (n,3,N) and its frequency;
    zero-sum over the phases when the fault loop has no ground path."""
    on = rng.uniform(size=n) < 0.5
    f = rng.uniform(500.0, 3000.0, size=n)
    decay = rng.uniform(0.0005, 0.004, size=n)
    rel = rng.uniform(0.02, 0.15, size=n) * on
    ph = rng.uniform(0, 2 * np.pi, size=(n, 3))
    t = T[None, None, :]
    dt = t - t0[:, None, None]
    env = np.where(dt >= 0, np.exp(-np.maximum(dt, 0) / decay[:, None, None]), 0.0)
    env = env * (t < t_clear[:, None, None])
    x = (rel * 1.0)[:, None, None] * peak[..., None] * env * np.sin(2 * np.pi * f[:, None, None] * np.maximum(dt, 0) + ph[..., None])
    x = np.where(grounded[:, None, None], x, x - x.mean(axis=1, keepdims=True))
    return x, np.where(on, f, 0.0)


def seen_phases(seen_fault: np.ndarray, rel: float = 0.2) -> list[str]:
    """The fault as the relay's inputs show it: phases whose fault component reaches ``rel`` of the
    largest, plus 'G' when the seen component carries zero sequence (its phase sum is at least
    ``rel`` of the largest phase). seen_fault (n,3,N) is the viewed fault component alone."""
    ph_rms = np.sqrt(np.mean(seen_fault**2, axis=-1))
    zs_rms = np.sqrt(np.mean(seen_fault.sum(axis=1) ** 2, axis=-1))
    top = np.maximum(ph_rms.max(axis=1), 1e-12)
    out = []
    for i in range(seen_fault.shape[0]):
        phases = "".join("ABC"[p] for p in range(3) if ph_rms[i, p] >= rel * top[i])
        out.append(phases + ("G" if zs_rms[i] >= rel * top[i] else ""))
    return out


def _true_phases(kind: str, extra: dict) -> str | None:
    """Faulted phases (and G) of a shunt fault as the windings see them; None for tt/ww."""
    if kind in SHUNT_FAULTS:
        phases, ground = SHUNT_FAULTS[kind]
        return "".join("ABC"[p] for p in phases) + ("G" if ground and extra.get("ground_share", 1.0) > 1e-6 else "")
    return None


def fault_windows(label_id: int, n: int, rng: np.random.Generator, views: tuple[str, ...] | None = None
                  ) -> tuple[np.ndarray, list[dict]]:
    """n shift-set windows (n,3,726) float32 in kA for one internal-fault label, and their params.

    ``views`` limits the relay views drawn (default: all six, unit-specific weights). Each window's
    params say which phases the relay's inputs show the fault in (``seen_phases``) and whether
    that equals the faulted windings' phases (``phases_identifiable``): a Yd-compensated relay shows
    an AG fault in A and C, exactly as an AC fault, so no model can read the phases there."""
    parts = label_parts(LABELS[label_id])
    if parts.category != "internal_fault":
        raise ValueError(f"label {label_id} is not an internal fault")
    unit, kind = parts.equipment, parts.kind
    f_sys = system_frequency(rng, n)
    omega = 2.0 * np.pi * f_sys
    delta = rng.uniform(0.0, 2.0 * np.pi, size=n)  # prefault voltage angle of phase A at t = 0
    t0, t_clear, placement = _inception_times(rng, n)
    extra: list[dict] = [{} for _ in range(n)]

    if kind in SHUNT_FAULTS:
        phases, ground = SHUNT_FAULTS[kind]
        z1_mag = log_uniform(rng, 0.35, 3.0, n)
        xr1 = log_uniform(rng, 4.0, 40.0, n)
        z1 = z1_mag * (1.0 + 1j * xr1) / np.sqrt(1.0 + xr1**2)
        z2 = z1 * rng.uniform(0.9, 1.1, size=n)
        z0_mag = z1_mag * log_uniform(rng, 0.3, 3.0, n)
        xr0 = log_uniform(rng, 2.0, 20.0, n)
        z0 = z0_mag * (1.0 + 1j * xr0) / np.sqrt(1.0 + xr0**2)
        r_f = log_uniform(rng, 0.001, 0.6, n)
        # each faulted phase's own arc/contact resistance scatters around r_f
        z_f = r_f[:, None] * rng.uniform(0.7, 1.3, size=(n, 3))
        if kind == "ABCG":
            # ground path from bolted to absent: ground share from 0
            z_g = log_uniform(rng, 0.001, 5.0, n)
            grounded = rng.uniform(size=n) >= 0.2
        else:
            z_g = log_uniform(rng, 0.001, 0.5, n)
            grounded = np.full(n, ground)
        faulted = np.zeros((n, 3), dtype=bool)
        faulted[:, list(phases)] = True
        loop_grounded = grounded
        e = np.exp(1j * (delta[:, None] + PHASE_SHIFT[None, :]))
        i_pu = shunt_fault_currents(e, phase_impedance(z1, z2, z0), faulted, z_f, z_g, grounded)
        # position along the winding: terminal current falls ~x to x^2 towards the neutral
        x_w = rng.uniform(0.05, 1.0, size=n)
        expo = rng.uniform(0.5, 2.0, size=n)
        share = x_w**expo
        amp = np.abs(i_pu) * np.sqrt(2.0) * I_RATED_KA * share[:, None]
        phi = np.angle(i_pu)
        tau_base = np.imag(z1) / (omega * (np.real(z1) + r_f))
        # grounded faults: each phase loop its own X/R (+/-10 %); ungrounded: one loop, one tau, so
        # the phase currents keep summing to zero
        tau = np.clip(tau_base, 0.003, 0.2)[:, None] * np.where(grounded[:, None], rng.uniform(0.9, 1.1, size=(n, 3)), 1.0)
        for i in range(n):
            g_share = float(np.abs(i_pu[i].sum()) / max(np.abs(i_pu[i]).max(), 1e-12))
            extra[i] = {
                "z1_pu": float(z1_mag[i]), "x_over_r": float(xr1[i]), "z0_over_z1": float(z0_mag[i] / z1_mag[i]),
                "fault_resistance_pu": float(r_f[i]), "ground_impedance_pu": float(z_g[i]) if grounded[i] else None,
                "ground_share": g_share, "winding_position": float(x_w[i]),
            }
    elif kind == "turn-to-turn":
        loop_grounded = np.ones(n, dtype=bool)
        ph = rng.integers(0, 3, size=n)
        mag = log_uniform(rng, 0.03, 1.2, n)
        lag = np.deg2rad(rng.uniform(55.0, 88.0, size=n))
        amp = np.zeros((n, 3))
        phi = np.zeros((n, 3))
        amp[np.arange(n), ph] = mag
        phi[np.arange(n), ph] = delta + PHASE_SHIFT[ph] - lag
        tau = (np.tan(lag) / omega)[:, None] * np.ones((1, 3))
        tau = np.clip(tau * rng.uniform(0.5, 1.5, size=(n, 1)), 0.002, 0.2)
        for i in range(n):
            extra[i] = {"faulted_phase": "ABC"[ph[i]], "turn_fault_peak_kA": float(mag[i])}
    elif kind == "winding-to-winding":
        loop_grounded = np.ones(n, dtype=bool)
        p = rng.integers(0, 3, size=n)
        same = rng.uniform(size=n) < 0.4
        q = np.where(same, p, (p + rng.integers(1, 3, size=n)) % 3)
        rho = np.where(same, rng.uniform(0.0, 0.7, size=n), rng.uniform(0.3, 1.5, size=n))
        mag = log_uniform(rng, 0.1, 3.0, n)
        lag = np.deg2rad(rng.uniform(45.0, 88.0, size=n))
        base_phi = delta + PHASE_SHIFT[p] - lag + rng.uniform(-0.5, 0.5, size=n)
        cplx = np.zeros((n, 3), dtype=np.complex128)
        cplx[np.arange(n), p] += mag * np.exp(1j * base_phi)
        cplx[np.arange(n), q] -= rho * mag * np.exp(1j * base_phi)
        amp, phi = np.abs(cplx), np.angle(cplx)
        tau = np.clip((np.tan(lag) / omega)[:, None] * rng.uniform(0.5, 1.5, size=(n, 1)), 0.002, 0.2) * np.ones((1, 3))
        for i in range(n):
            extra[i] = {"from_phase": "ABC"[p[i]], "to_phase": "ABC"[q[i]], "turns_share": float(rho[i]),
                        "fault_peak_kA": float(mag[i])}
    else:  # pragma: no cover - every fault kind is handled above
        raise ValueError(kind)

    zone = _time_domain(amp, phi, tau, omega, t0, t_clear, loop_grounded)
    ring, ring_f = _ringing(rng, n, amp, t0, t_clear, loop_grounded)
    zone = zone + ring
    # 15 % of the windows: the CT on the infeed side saturates on the fault current, as a severe
    # internal fault with DC offset can drive it (C37.110; C37.91 on harmonics in internal-fault
    # currents). The relay then sees the fault current less that CT's exciting current. The knee is
    # 0.3-1.5 of the fault's symmetrical flux demand but at least 20 times rated current's (a C-class
    # relaying CT delivers 20 x rated current into its standard burden within 10 % error, IEEE
    # C57.13 / C37.110), so only strong faults whose DC offset decays slowly saturate it.
    ct_on = (rng.uniform(size=n) < 0.15) & (t0 >= 0.0)
    u_ct = log_uniform(rng, 0.3, 1.5, n)
    i_k_ct = log_uniform(rng, 1e-5, 1e-4, n)
    l2_ct = log_uniform(rng, 3e-4, 3e-3, n)
    rem_ct = rng.uniform(-0.5, 0.5, size=(n, 3))
    ct_peak = np.zeros(n)
    if ct_on.any():
        rows = np.flatnonzero(ct_on)
        a_max = np.maximum(amp[rows].max(axis=1), 1e-6)
        lam_k = np.repeat(np.maximum(u_ct[rows] * a_max, 20.0 * I_RATED_PEAK_KA) / omega[rows], 3)
        err, pk = ct_error_current(zone[rows].reshape(-1, N_SAMPLES), lam_k, np.repeat(i_k_ct[rows] * a_max, 3),
                                   np.repeat(l2_ct[rows], 3), rem_ct[rows].ravel() * lam_k)
        zone[rows] -= err.reshape(-1, 3, N_SAMPLES)
        ct_peak[rows] = pk.reshape(-1, 3).max(axis=1)
    view_names, mats, psi = draw_views(rng, n, restrict_weights(VIEW_WEIGHTS[unit], views))
    seen = apply_view(zone, mats)
    seen_str = seen_phases(seen)
    standing, s_info = standing_current(rng, n, omega, view_names)
    x, m_info = measurement_chain(rng, seen + standing, omega)
    params = []
    for i in range(n):
        true = _true_phases(kind, extra[i])
        d = {
            "label": LABELS[label_id], "label_id": int(label_id), "family": "internal_fault",
            "equipment": unit, "kind": kind, "view": view_names[i],
            "quadrature_deg": float(psi[i]) if view_names[i] == "quadrature" else None,
            "seen_phases": seen_str[i],
            "phases_identifiable": (seen_str[i] == true) if true is not None else view_names[i] in ("windings", "uncompensated"),
            "system_frequency_hz": float(f_sys[i]), "placement": str(placement[i]),
            "t_inception_ms": float(t0[i] * 1e3), "t_clear_ms": float(t_clear[i] * 1e3),
            "fault_peak_kA": float(amp[i].max()), "tau_dc_ms": float(tau[i].max() * 1e3),
            "ringing_hz": float(ring_f[i]),
            "ct_knee_over_symmetrical_flux": float(u_ct[i]) if ct_on[i] else None,
            "ct_saturates_in_fault": bool(ct_peak[i] > 1.0),
        }
        d.update(extra[i])
        d.update(s_info[i])
        d.update(m_info[i])
        params.append(d)
    return x.astype(np.float32), params
