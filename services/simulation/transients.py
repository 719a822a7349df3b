"""Transients that are not internal faults, each from its own physics (vectorised over windows).

- Magnetising inrush: energising a transformer at voltage angle theta_k leaves in each core the flux
  lambda_k(t) = (lambda_r,k + cos theta_k) e^{-t/tau} - cos(omega t + theta_k) (per unit of rated flux,
  lambda_r,k = remanence, differing per phase). The core draws current only above the saturation flux
  lambda_s (1.05-1.4 pu): i = (|lambda| - lambda_s)+ / L_air. The result is unipolar, peaked, with gaps
  where the core is unsaturated (hence a strong 2nd harmonic), decaying over many cycles (tau 40-300 ms).
- Sympathetic inrush: the parallel, already energised transformer sees the DC voltage drop of its
  neighbour's inrush across the shared source resistance: its flux takes an offset of the opposite
  polarity, built up over a few cycles (build-up 15-50 ms): the same core law gives peaks of opposite
  polarity to the neighbour's inrush that grow during the window instead of starting at their largest.
- Capacitor switching: closing an uncharged bank through the source inductance at voltage angle theta:
  i(t) = I_ss [cos(omega t + theta) - cos(theta) cos(omega_r t) e^{-t/tau}
  + (omega_r/omega) sin(theta) sin(omega_r t) e^{-t/tau}],  f_r = 1/(2 pi sqrt(LC)) 250-1200 Hz
  (derived from the LC circuit with i(0) = 0, v_C(0) = 0), per phase at theta - k 120 deg.
- External fault with CT saturation: the through-fault primary current (with DC offset, X/R 10-40)
  is reproduced by both CT sets until one CT core saturates; the CT flux follows
  d lambda / dt = R_b (i_p - i_m(lambda)) with the magnetising current i_m rising steeply above the knee.
  The differential current is i_m: zero until saturation, then clipped, distorted half-cycles. Time to
  saturation follows from DC offset, X/R, burden (saturation factor) and remanence. Integrated with
  backward Euler on the piecewise-linear core (stable for the steep saturated slope), one time step
  at a time but vectorised over all windows and phases.
- Ferroresonance: a saturable magnetising reactance in resonance with line/grading capacitance
  sustains a flux that is fundamental (distorted), sub-harmonic (30 Hz, 20 Hz) or chaotic
  (quasi-periodic, incommensurate components); the current is the core's steep non-linear function
  i = k (0.15 lambda + lambda |lambda|^8) of that flux: sustained, peaky, distorted.
- Non-linear load switching: a six-pulse rectifier load switched in at t0 (inside the protected
  zone, e.g. on a tertiary or station-service winding): i_k = I_1 sum_h s_h F_h(mu)/h cos(h(omega t +
  theta_k)), h = 1, 5, 7, 11, 13 with the signs (-, +, -, +) of six-pulse theory and the commutation
  overlap mu reducing the higher orders; the current rises with the DC-side time constant.
"""

from __future__ import annotations

import numpy as np

from services.simulation.common import (
    DT_S,
    OMEGA,
    POSITIVE_SEQUENCE,
    T_MS,
    Draws,
    background,
    elapsed_s,
)

_PHASE_OFFSETS = np.array([0.0, -2.0 * np.pi / 3.0, 2.0 * np.pi / 3.0])
FERRO_MODES = ("fundamental", "subharmonic_30Hz", "subharmonic_20Hz", "chaotic")


def _phase_angles(angle_deg: np.ndarray) -> np.ndarray:
    """(n, 3) voltage angles of phases A, B, C at inception."""
    return np.deg2rad(angle_deg)[:, None] + _PHASE_OFFSETS[None, :]


def _core_current(flux: np.ndarray, knee: np.ndarray, scale: np.ndarray) -> np.ndarray:
    """The transformer core law both inrush models share: current only for flux beyond the knee,
    i = scale (|lambda| - lambda_s)+ sign(lambda); flux (n, 3, t), knee and scale per window (n,)."""
    excess = np.maximum(np.abs(flux) - knee[:, None, None], 0.0) * np.sign(flux)
    return scale[:, None, None] * excess


def _with_background(event: np.ndarray, draws: Draws, params: dict) -> tuple[np.ndarray, dict]:
    base, base_params = background(draws)
    params.update(base_params)
    return event + base, params


def magnetising_inrush(draws: Draws) -> tuple[np.ndarray, dict]:
    n, rng = draws.n, draws.rng
    inception = draws.inception_ms()
    angle = draws.uniform("switching_angle_deg", 0.0, 360.0)
    remanence = draws.uniform("remanence_percent", 0.0, 80.0)
    saturation = draws.uniform("saturation_flux_pu", 1.05, 1.4)
    tau_ms = draws.uniform("decay_time_constant_ms", 40.0, 300.0)
    scale = draws.log_uniform("inrush_scale", 8.0, 60.0)
    rem_angle = rng.uniform(0.0, 2.0 * np.pi, n)
    residual = (remanence / 100.0)[:, None] * np.cos(rem_angle[:, None] + _PHASE_OFFSETS[None, :])
    theta = _phase_angles(angle)
    if "saturation_flux_pu" not in draws.overrides:
        # an energisation that never drives the core past its knee is no inrush event: keep the
        # knee at least 0.25 pu below the largest flux peak the switching angle and remanence give
        # (and no more than 1.1 pu below it: deeper saturation is beyond a real core's remanence)
        reachable = 1.0 + np.abs(residual + np.cos(theta)).max(axis=1)
        saturation = np.clip(saturation, reachable - 1.1, reachable - 0.25).clip(1.02, None)
    t = elapsed_s(inception)[:, None, :]
    active = (T_MS[None, :] >= inception[:, None])[:, None, :]
    dc = (residual + np.cos(theta))[:, :, None] * np.exp(-t / (tau_ms[:, None, None] / 1000.0))
    flux = dc - np.cos(OMEGA * t + theta[:, :, None])
    event = _core_current(flux, saturation, scale) * active
    params = {
        "inception_ms": inception, "switching_angle_deg": angle, "remanence_percent": remanence,
        "saturation_flux_pu": saturation, "decay_time_constant_ms": tau_ms, "inrush_scale": scale,
        "peak_current": np.abs(event).max(axis=(1, 2)),
    }
    return _with_background(event, draws, params)


def sympathetic_inrush(draws: Draws) -> tuple[np.ndarray, dict]:
    n, rng = draws.n, draws.rng
    inception = draws.inception_ms()
    angle = draws.uniform("switching_angle_deg", 0.0, 360.0)
    offset = draws.uniform("dc_flux_offset_pu", 0.35, 0.9)
    build_ms = draws.uniform("build_up_time_ms", 15.0, 50.0)
    saturation = draws.uniform("saturation_flux_pu", 1.0, 1.2)
    scale = draws.log_uniform("inrush_scale", 6.0, 40.0)
    decay_ms = rng.uniform(300.0, 1500.0, n)
    theta = _phase_angles(angle)
    # polarity of the neighbour's inrush per phase (its DC flux), the offset here is opposite
    neighbour_dc = np.cos(theta) + 0.4 * rng.uniform(-1.0, 1.0, (n, 1)) * np.cos(theta + 0.5)
    polarity = -np.sign(neighbour_dc + 1e-9)
    weight = 0.5 + 0.5 * np.abs(neighbour_dc) / np.abs(neighbour_dc).max(axis=1, keepdims=True)
    t = elapsed_s(inception)[:, None, :]
    growth = (1.0 - np.exp(-t / (build_ms[:, None, None] / 1000.0))) * np.exp(
        -t / (decay_ms[:, None, None] / 1000.0)
    )
    dc = (polarity * weight * offset[:, None])[:, :, None] * growth
    # the energised transformer's flux lags its voltage: -cos of the phase angle, from before t0
    steady = -np.cos(OMEGA * (T_MS[None, None, :] - inception[:, None, None]) / 1000.0 + theta[:, :, None])
    flux = dc + steady
    event = _core_current(flux, saturation, scale)
    params = {
        "inception_ms": inception, "switching_angle_deg": angle, "dc_flux_offset_pu": offset,
        "build_up_time_ms": build_ms, "saturation_flux_pu": saturation, "inrush_scale": scale,
        "peak_current": np.abs(event).max(axis=(1, 2)),
    }
    return _with_background(event, draws, params)


def capacitor_switching(draws: Draws) -> tuple[np.ndarray, dict]:
    inception = draws.inception_ms()
    angle = draws.uniform("switching_angle_deg", 0.0, 360.0)
    f_res = draws.uniform("resonant_frequency_hz", 250.0, 1200.0)
    damping_ms = draws.uniform("damping_time_constant_ms", 2.0, 15.0)
    steady = draws.log_uniform("steady_current", 0.1, 1.5)
    theta = _phase_angles(angle)[:, :, None]
    t = elapsed_s(inception)[:, None, :]
    active = (T_MS[None, :] >= inception[:, None])[:, None, :]
    omega_r = 2.0 * np.pi * f_res[:, None, None]
    decay = np.exp(-t / (damping_ms[:, None, None] / 1000.0))
    event = np.cos(OMEGA * t + theta) - np.cos(theta) * np.cos(omega_r * t) * decay
    event += (omega_r / OMEGA) * np.sin(theta) * np.sin(omega_r * t) * decay
    event *= steady[:, None, None] * active
    params = {
        "inception_ms": inception, "switching_angle_deg": angle, "resonant_frequency_hz": f_res,
        "damping_time_constant_ms": damping_ms, "steady_current": steady,
        "peak_current": np.abs(event).max(axis=(1, 2)),
    }
    return _with_background(event, draws, params)


_EXTERNAL_FAULTS = ("AG", "BG", "CG", "AB", "BC", "CA", "ABG", "BCG", "CAG", "ABC")


def external_fault_ct_saturation(draws: Draws) -> tuple[np.ndarray, dict]:
    n, rng = draws.n, draws.rng
    inception = draws.inception_ms()
    fault_current = draws.log_uniform("fault_current", 15.0, 60.0)
    x_over_r = draws.uniform("x_over_r", 10.0, 40.0)
    angle = draws.uniform("inception_angle_deg", 0.0, 360.0)
    remanence = draws.uniform("remanence_percent", -80.0, 80.0)
    fault_index = rng.integers(0, len(_EXTERNAL_FAULTS), n)
    # primary through-fault phasors of the external fault (the power-transformer patterns)
    phasors = np.zeros((n, 3), dtype=np.complex128)
    for i, name in enumerate(_EXTERNAL_FAULTS):
        rows = fault_index == i
        phases = ["ABC".index(c) for c in name.rstrip("G")] if name != "ABC" else [0, 1, 2]
        if name == "ABC":
            phasors[rows] = POSITIVE_SEQUENCE
        elif len(phases) == 1:
            phasors[rows, phases[0]] = 1.0
        elif name.endswith("G"):
            phasors[rows, phases[0]] = 1.0
            phasors[rows, phases[1]] = np.exp(-1j * np.deg2rad(100.0))
        else:
            phasors[rows, phases[0]] = 1.0
            phasors[rows, phases[1]] = -1.0
    tau = x_over_r / OMEGA
    theta = np.deg2rad(angle) - np.arctan(x_over_r)
    t = elapsed_s(inception)
    rotation = phasors * np.exp(1j * theta)[:, None]
    primary = np.real(
        rotation[:, :, None] * (np.exp(1j * OMEGA * t) - np.exp(-t / tau[:, None]))[:, None, :]
    )
    primary *= (T_MS[None, :] >= inception[:, None])[:, None, :]
    # CT core flux in units of the symmetrical flux R_b I_f / omega (burden x current), knee at
    # `saturation_factor`. Without an override the knee is drawn below the flux this fault's DC
    # offset actually builds inside the window (otherwise the window would show no event at all).
    h = OMEGA * DT_S
    unsaturated = h * np.cumsum(primary, axis=2)
    peak = np.abs(unsaturated).max(axis=(1, 2))
    drawn = rng.uniform(0.3, 0.8, n) * peak
    spread = rng.uniform(0.7, 1.0, (n, 3))  # remanence differs a little between the three cores
    remanent = (remanence / 100.0)[:, None] * drawn[:, None] * spread
    reached = np.abs(unsaturated + remanent[:, :, None]).max(axis=(1, 2))
    factor = draws.take("saturation_factor", np.clip(np.minimum(drawn, 0.85 * reached), 1.2, 40.0))
    slope = 30.0  # saturated magnetising current per unit flux above the knee (air-core slope)
    knee = factor[:, None]
    flux = (remanence / 100.0)[:, None] * knee * spread
    magnetising = np.zeros_like(primary)
    for step in range(primary.shape[2]):
        candidate = flux + h * primary[:, :, step]
        sign = np.sign(candidate)
        saturated = np.abs(candidate) > knee
        implicit = (candidate + h * slope * knee * sign) / (1.0 + h * slope)
        flux = np.where(saturated, implicit, candidate)
        magnetising[:, :, step] = slope * np.maximum(np.abs(flux) - knee, 0.0) * sign
    event = magnetising * fault_current[:, None, None]
    first = np.argmax(np.abs(magnetising).max(axis=1) > 0.02, axis=1).astype(np.float64)
    saturates = (np.abs(magnetising).max(axis=(1, 2)) > 0.02)
    params = {
        "inception_ms": inception, "fault_current": fault_current, "x_over_r": x_over_r,
        "inception_angle_deg": angle, "remanence_percent": remanence, "saturation_factor": factor,
        "external_fault_type": np.array(_EXTERNAL_FAULTS)[fault_index],
        "time_to_saturation_ms": np.where(saturates, first / 10.0 - inception, np.nan),
        "peak_differential": np.abs(event).max(axis=(1, 2)),
    }
    return _with_background(event, draws, params)


def ferroresonance(draws: Draws) -> tuple[np.ndarray, dict]:
    n, rng = draws.n, draws.rng
    inception = draws.inception_ms()
    mode = draws.integers("mode_index", 0, 3).astype(int)
    flux_peak = draws.uniform("flux_peak_pu", 1.05, 1.5)
    peak_current = draws.log_uniform("peak_current", 0.8, 12.0)
    build_ms = rng.uniform(2.0, 10.0, n)
    t = elapsed_s(inception)[:, None, :]
    phase = rng.uniform(0.0, 2.0 * np.pi, (n, 3))[:, :, None]
    # participating phases: ferroresonance after single/two-pole switching involves 1-3 phases
    weight = rng.uniform(0.3, 1.0, (n, 3))
    weight[np.arange(n), rng.integers(0, 3, n)] = 1.0
    wt = OMEGA * t
    sub = np.where(mode == 1, 2.0, 3.0)[:, None, None]
    fundamental = np.sin(wt + phase) + 0.25 * np.sin(3.0 * (wt + phase))
    subharmonic = np.sin(wt / sub + phase) + rng.uniform(0.2, 0.5, (n, 1, 1)) * np.sin(wt + 2.0 * phase)
    f1, f2 = rng.uniform(0.3, 0.47, (n, 1, 1)), rng.uniform(1.4, 1.8, (n, 1, 1))
    chaotic = (
        np.sin(f1 * wt + phase) + 0.7 * np.sin(wt + 1.7 * phase)
        + 0.5 * np.sin(f2 * wt + 0.3 * phase)
    ) * (1.0 + 0.3 * np.sin(0.11 * wt))
    shapes = np.stack([fundamental, subharmonic, subharmonic, chaotic])
    shape = shapes[mode, np.arange(n)]
    shape /= np.abs(shape).max(axis=2, keepdims=True) + 1e-12
    flux = flux_peak[:, None, None] * shape * (1.0 - np.exp(-t * 1000.0 / build_ms[:, None, None]))
    current = 0.15 * flux + flux * np.abs(flux) ** 8
    current *= (T_MS[None, :] >= inception[:, None])[:, None, :] * weight[:, :, None]
    current *= (peak_current / (np.abs(current).max(axis=(1, 2)) + 1e-12))[:, None, None]
    params = {
        "inception_ms": inception, "mode_index": mode.astype(np.float64),
        "mode": np.array(FERRO_MODES)[mode], "flux_peak_pu": flux_peak, "peak_current": peak_current,
    }
    return _with_background(current, draws, params)


_SIX_PULSE = ((1, 1.0), (5, -1.0), (7, 1.0), (11, -1.0), (13, 1.0))


def non_linear_load_switching(draws: Draws) -> tuple[np.ndarray, dict]:
    n = draws.n
    inception = draws.inception_ms()
    load = draws.log_uniform("load_current", 0.2, 3.0)
    overlap = draws.uniform("commutation_overlap_deg", 5.0, 30.0)
    rise_ms = draws.uniform("rise_time_ms", 0.5, 5.0)
    angle = draws.rng.uniform(0.0, 360.0, n)
    theta = _phase_angles(angle)[:, :, None]
    t = elapsed_s(inception)[:, None, :]
    mu = np.deg2rad(overlap)[:, None, None]
    event = np.zeros((n, 3, T_MS.size))
    for order, sign in _SIX_PULSE:
        reduction = 1.0 if order == 1 else np.abs(np.sinc(order * mu / (2.0 * np.pi)))
        event += sign * reduction / order * np.cos(order * (OMEGA * t + theta))
    envelope = (1.0 - np.exp(-t * 1000.0 / rise_ms[:, None, None]))
    event *= load[:, None, None] * envelope * (T_MS[None, :] >= inception[:, None])[:, None, :]
    params = {
        "inception_ms": inception, "load_current": load, "commutation_overlap_deg": overlap,
        "rise_time_ms": rise_ms, "firing_angle_deg": angle,
    }
    return _with_background(event, draws, params)


TRANSIENT_SIMULATORS = {
    "capacitor_switching": capacitor_switching,
    "external_fault_ct_saturation": external_fault_ct_saturation,
    "ferroresonance": ferroresonance,
    "magnetising_inrush": magnetising_inrush,
    "non_linear_load_switching": non_linear_load_switching,
    "sympathetic_inrush": sympathetic_inrush,
}
