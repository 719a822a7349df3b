"""Internal faults of the power transformer and of the ISPAR series and exciting units.

Physics and derivation of the signatures
----------------------------------------
A fault is described in the *winding frame* by the complex phasor vector F (3,) of the fault
currents that leave the three windings of the faulted unit. The relay measures the differential
currents D = M F, where M (3 x 3) is the connection matrix of the unit between its windings and the
measured lines. Over the window each phase then carries

    i_k(t) = Re[ D_k e^{j(theta - phi_z)} (z(t - t0) - z(0) e^{-(t - t0)/tau}) ],  t >= t0

with theta the voltage angle at inception t0, phi_z = atan(X/R) the fault-loop angle, tau = (X/R)/omega
the decay of the DC offset (the subtracted term makes the current start at zero, which is what
produces the offset), and z(t) = e^{j omega t} (plus arc harmonics for turn-to-turn faults). The
breaker may clear the fault inside the window; the current then falls to zero within a few ms.

Fault vectors F (winding frame, x/y = faulted phases, (x, y) in cyclic order A->B->C->A):
- xG (Class1-3): e_x                                  single phase, zero sequence = the fault current
- xy (Class8-10): e_x - rho e^{j eps} e_y               rho 0.95-1.05, |eps| < 4 deg: sum ~ 0
- xyG (Class4-6): e_x + r e^{-j Delta} e_y              Delta 100-150 deg, r 0.7-1.4: a neutral current.
  Delta is 60 deg for a solid fault with Z0 -> 0, 120 deg for Z0 = Z1 and tends to 180 deg (the xy
  case) only for a very high ground resistance; the range keeps a 30 deg margin to both the xy
  case and the point (Delta = 60 deg, r = 1) where the negative sequence vanishes and xyG would
  look like a grounded three-phase fault.
- ABC (class11): positive sequence (1, a^2, a) with per-phase imbalance < 3 %
- ABCG (Class7): positive sequence + a neutral (zero-sequence) share of 0.25-0.5 as measured, from
  unequal phase / ground fault resistances
- tt: e_x with an arc (flattened current: 3rd harmonic 25-45 %, 5th 5-12 % of the fundamental),
  small amplitude growing with the shorted turns, build-up over 3-12 ms as the arc establishes
- ww: a current that leaves one winding and enters another; F is then already the measured route:
  power transformer (HV winding of phase x to LV winding of phase y != x): e_x - r e^{j phi} e_y,
  r 0.25-0.45 (the LV share referred through the turns ratio), |phi| < 10 deg;
  ISPAR series unit (primary to its own delta secondary): e_x + w e^{j phi} (e_{x+1} - e_{x+2}),
  w 0.5-0.9, |phi| < 20 deg: the current enters the delta and leaves through the two other lines;
  ISPAR exciting unit (exciting winding to its regulating winding): e_x - r e^{j phi}(e_{x+1} +
  e_{x+2}), r 0.35-0.6, |phi| < 15 deg: both quadrature phases in phase, opposite to phase x.

Connection matrices M (P = cyclic shift: column k -> row k+1):
- power transformer, YNyn, the relay keeps the zero sequence: M = I. Only the faulted phases carry
  current: xG -> [1,0,0], AB -> [1,-1,0] (sum 0), ABG -> two phases 100-150 deg apart with a
  neutral current, ABC balanced with sum 0, ABCG balanced + neutral.
- ISPAR series unit: its secondary is delta-connected, so a winding current of phase k also flows,
  transformed, in the line the delta ties it to: M = I + s e^{j psi} P, s = 0.6 + 0.25 |tap|/16 (the
  unit ratio grows with the phase shift 2.5 deg/step), psi = 30 deg (the delta) + 0.25 x phase
  shift (20-40 deg). xG -> [1, s e^{j psi}, 0]: two phases, ratio 0.6-0.85, 20-40 deg apart, which
  a power-transformer fault never gives. Sequence gains: zero 1 + s e^{j psi} (about 1.8), positive
  1 + s e^{j(psi+120)} (about 0.5): ground faults show a strong neutral share.
- ISPAR exciting unit: grounded wye-wye with the tap changer; the regulating winding of phase k
  feeds the series units of the two quadrature phases (the series unit of A is excited by V_bc),
  so M = I + j sigma t e^{j delta}(P - P^2): a fault in phase A's exciting winding also shows in B and
  C with equal magnitude t = 0.15 + 0.13 |tap|/16 at +90 and -90 deg (sigma = sign of the tap, advance
  or retard), |delta| < 8 deg. xG -> [1, +-jt, -+jt]. Sequence gains: zero 1, positive
  1 - sqrt(3) sigma t, negative 1 + sqrt(3) sigma t; t stays below 0.3 so that neither sequence is
  cancelled (t = 0.58 would erase one and merge the fault types).
Since every M is circulant, a balanced (positive-sequence) fault stays balanced in every unit, so
the phasor pattern cannot tell the units apart for ABC / ABCG faults. What does is the fault loop:
X/R 20-40 for the power transformer (leakage reactance of a 500 MVA unit), 5-9 for the series unit
(fed through the line), 1.5-3 for the exciting unit (regulating winding and tap-changer transition
resistance in the loop), seen in the DC offset decay (tau 53-106 ms, 13-24 ms, 4-8 ms: at least one
phase of a three-phase fault always carries a large offset), and the unit's short-circuit level.
The pattern distance (1 - |<P, Q>|^2 / (|P|^2 |Q|^2))^0.5 between any two fault types of one unit,
minimised over the random parameters, is at least 0.10 (checked by sampling).

Amplitude (peak of the largest phase, units of the data): L (0.15 + 0.85 w) / (1 + R_f / 15 ohm) for
winding fraction w, fault resistance R_f (log-uniform 0.01-100 ohm) and the unit level L = 4 (power
transformer), 2 (series), 1.2 (exciting) -> about 0.03 to 4; turn-to-turn: L (0.03 + 0.15
(turns / 20 %)^0.8) / (1 + R_f / 100 ohm) -> about 0.02 to 0.7.
"""

from __future__ import annotations

import numpy as np

from services.simulation.common import (
    CYCLE_MS,
    OMEGA,
    POSITIVE_SEQUENCE,
    T_MS,
    WINDOW_MS,
    Draws,
    background,
    clearing_envelope,
    elapsed_s,
)

FAULT_PHASES: dict[str, tuple[int, ...]] = {
    "AG": (0,), "BG": (1,), "CG": (2,), "ABG": (0, 1), "ACG": (2, 0), "BCG": (1, 2),
    "ABCG": (0, 1, 2), "AB": (0, 1), "AC": (2, 0), "BC": (1, 2), "ABC": (0, 1, 2),
}
_EYE = np.eye(3, dtype=np.complex128)
_SHIFT = np.roll(_EYE, 1, axis=0)  # column k -> row k+1
_SHIFT2 = _SHIFT @ _SHIFT
#: peak current of a solid fault over the whole winding, units of the data (unit short-circuit level)
FAULT_LEVEL = {"power_transformer": 4.0, "ispar_series": 2.0, "ispar_exciting": 1.2}
#: X/R of the fault loop: the large transformer's leakage reactance, the line feeding the series
#: unit, the regulating winding and tap-changer transition resistance of the exciting unit
LOOP_X_OVER_R = {"power_transformer": (20.0, 40.0), "ispar_series": (5.0, 9.0),
                 "ispar_exciting": (1.5, 3.0)}
EQUIPMENT_TITLES = {
    "power_transformer": "power transformer",
    "ispar_series": "ISPAR series unit",
    "ispar_exciting": "ISPAR exciting unit",
}


def _unit(n: int, index: np.ndarray | int) -> np.ndarray:
    out = np.zeros((n, 3), dtype=np.complex128)
    out[np.arange(n), np.broadcast_to(np.asarray(index), (n,))] = 1.0
    return out


def _connection(equipment: str, tap: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, dict]:
    """(n, 3, 3) connection matrices and the derived coupling parameters."""
    n = tap.shape[0]
    if equipment == "power_transformer":
        return np.broadcast_to(_EYE, (n, 3, 3)).copy(), {"phase_shift_deg": np.full(n, np.nan)}
    phase_shift = 2.5 * tap
    if equipment == "ispar_series":
        ratio = 0.6 + 0.25 * np.abs(tap) / 16.0
        psi = np.deg2rad(30.0 + 0.25 * phase_shift + rng.uniform(-2.0, 2.0, n))
        coupling = ratio * np.exp(1j * psi)
        matrix = _EYE[None] + coupling[:, None, None] * _SHIFT[None]
        return matrix, {"phase_shift_deg": phase_shift, "coupling_ratio": ratio,
                        "coupling_angle_deg": np.rad2deg(psi)}
    ratio = 0.15 + 0.13 * np.abs(tap) / 16.0
    sigma = np.where(tap < 0, -1.0, 1.0)
    delta = np.deg2rad(rng.uniform(-8.0, 8.0, n))
    coupling = 1j * sigma * ratio * np.exp(1j * delta)
    matrix = _EYE[None] + coupling[:, None, None] * (_SHIFT - _SHIFT2)[None]
    return matrix, {"phase_shift_deg": phase_shift, "coupling_ratio": ratio,
                    "coupling_angle_deg": np.rad2deg(np.angle(coupling))}


def _fault_vector(
    kind: str, equipment: str, draws: Draws, sequence_gain_ratio: np.ndarray
) -> tuple[np.ndarray, dict]:
    """(n, 3) winding-frame fault currents for a fault kind (see module docstring)."""
    n, rng = draws.n, draws.rng
    extra: dict[str, np.ndarray] = {}
    if kind in ("AG", "BG", "CG"):
        return _unit(n, FAULT_PHASES[kind][0]), extra
    if kind in ("AB", "AC", "BC"):
        x, y = FAULT_PHASES[kind]
        rho = rng.uniform(0.95, 1.05, n) * np.exp(1j * np.deg2rad(rng.uniform(-4.0, 4.0, n)))
        return _unit(n, x) - rho[:, None] * _unit(n, y), extra
    if kind in ("ABG", "ACG", "BCG"):
        x, y = FAULT_PHASES[kind]
        delta = rng.uniform(100.0, 150.0, n)
        ratio = rng.uniform(0.7, 1.4, n)
        extra["phase_angle_between_deg"] = delta
        return _unit(n, x) + (ratio * np.exp(-1j * np.deg2rad(delta)))[:, None] * _unit(n, y), extra
    if kind in ("ABC", "ABCG"):
        imbalance = 1.0 + 0.03 * rng.uniform(0.0, 1.0, (n, 3)) * np.exp(2j * np.pi * rng.random((n, 3)))
        vector = POSITIVE_SEQUENCE[None, :] * imbalance
        if kind == "ABCG":
            # neutral-current share as measured (after the unit's zero/positive sequence gains)
            extra["zero_sequence_ratio"] = rng.uniform(0.25, 0.5, n)
            zero = extra["zero_sequence_ratio"] * np.exp(2j * np.pi * rng.random(n))
            vector = vector + zero[:, None] * sequence_gain_ratio[:, None]
        return vector, extra
    faulted = rng.integers(0, 3, n)
    extra["faulted_phase"] = faulted
    if kind == "turn-to-turn":
        return _unit(n, faulted), extra
    # winding-to-winding
    phi = np.deg2rad(rng.uniform(-1.0, 1.0, n))
    if equipment == "power_transformer":
        other = (faulted + rng.integers(1, 3, n)) % 3
        ratio = 0.25 + 0.2 * rng.random(n)
        extra["second_phase"] = other
        return _unit(n, faulted) - (ratio * np.exp(10j * phi))[:, None] * _unit(n, other), extra
    nxt, nxt2 = _unit(n, (faulted + 1) % 3), _unit(n, (faulted + 2) % 3)
    if equipment == "ispar_series":
        ratio = rng.uniform(0.5, 0.9, n) * np.exp(20j * phi)
        return _unit(n, faulted) + ratio[:, None] * (nxt - nxt2), extra
    ratio = rng.uniform(0.35, 0.6, n) * np.exp(15j * phi)
    return _unit(n, faulted) - ratio[:, None] * (nxt + nxt2), extra


def simulate_faults(equipment: str, kind: str, draws: Draws) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Batch of internal-fault windows (n, 3, T) and their parameter columns."""
    n, rng = draws.n, draws.rng
    turn_fault = kind == "turn-to-turn"
    resistance = draws.log_uniform("fault_resistance_ohm", 0.01, 100.0)
    level = FAULT_LEVEL[equipment]
    if turn_fault:
        turns = draws.uniform("shorted_turns_percent", 1.0, 20.0)
        amplitude = level * (0.03 + 0.15 * (turns / 20.0) ** 0.8) / (1.0 + resistance / 100.0)
    else:
        winding = draws.uniform("winding_percent", 5.0, 100.0)
        amplitude = level * (0.15 + 0.85 * winding / 100.0) / (1.0 + resistance / 15.0)
    inception = draws.inception_ms()
    angle = draws.uniform("inception_angle_deg", 0.0, 360.0)
    x_over_r = draws.uniform("x_over_r", *LOOP_X_OVER_R[equipment])
    if equipment == "power_transformer":
        tap = np.zeros(n)
    else:
        sign = np.where(rng.random(n) < 0.5, -1.0, 1.0)
        tap = draws.integers("tap_position", 0, 16) * sign
        if "tap_position" in draws.overrides:
            tap = np.full(n, float(draws.overrides["tap_position"]))
    matrix, coupling = _connection(equipment, tap, rng)
    positive_gain = np.einsum("nij,j->ni", matrix, POSITIVE_SEQUENCE)[:, 0]
    zero_gain = matrix.sum(axis=2)[:, 0]
    vector, extra = _fault_vector(kind, equipment, draws, positive_gain / zero_gain)
    # a winding-to-winding vector is already the measured route between the two windings
    measured = vector if kind == "winding-to-winding" else np.einsum("nij,nj->ni", matrix, vector)
    measured *= (amplitude / np.abs(measured).max(axis=1))[:, None]

    # breaker clearing: 2-3.5 cycles after inception in half of the windows, if inside the window
    delay = rng.uniform(2.0, 3.5, n) * CYCLE_MS
    cleared = (rng.random(n) < 0.5) & (inception + delay < WINDOW_MS - 4.0)
    clear_ms = np.where(cleared, inception + delay, np.nan)
    arc_tau = rng.uniform(0.3, 1.2, n)

    t = elapsed_s(inception)  # (n, T)
    active = (T_MS[None, :] >= inception[:, None])
    tau = x_over_r / OMEGA
    theta = np.deg2rad(angle) - np.arctan(x_over_r)  # current angle at inception
    harmonics = {1: np.ones(n, dtype=np.complex128)}
    if turn_fault:
        harmonics[3] = rng.uniform(0.25, 0.45, n) * np.exp(1j * (np.pi + rng.uniform(-0.3, 0.3, n)))
        harmonics[5] = rng.uniform(0.05, 0.12, n) * np.exp(1j * rng.uniform(-0.3, 0.3, n))
    z = np.zeros((n, T_MS.size), dtype=np.complex128)
    z0 = np.zeros(n, dtype=np.complex128)
    for order, coefficient in harmonics.items():
        rotation = coefficient * np.exp(1j * order * theta)
        z += rotation[:, None] * np.exp(1j * order * OMEGA * t)
        z0 += rotation
    z -= z0[:, None] * np.exp(-t / tau[:, None])
    envelope = active * clearing_envelope(clear_ms, arc_tau)
    if turn_fault:
        build_up = rng.uniform(3.0, 12.0, n)
        envelope = envelope * (1.0 - np.exp(-t * 1000.0 / build_up[:, None]))
    z *= envelope
    wave = np.real(measured[:, :, None] * z[:, None, :])

    base, base_params = background(draws)
    params: dict[str, np.ndarray] = {
        "fault_resistance_ohm": resistance,
        "inception_ms": inception,
        "inception_angle_deg": angle,
        "x_over_r": x_over_r,
        "dc_time_constant_ms": tau * 1000.0,
        "peak_fault_current": amplitude,
        "clearing_ms": clear_ms,
        "tap_position": tap if equipment != "power_transformer" else np.full(n, np.nan),
        **coupling,
        **extra,
        **base_params,
    }
    if turn_fault:
        params["shorted_turns_percent"] = turns
    else:
        params["winding_percent"] = winding
    return wave + base, params
