"""Transients that are not internal faults, each from its own physics (vectorised over windows).

Every window also carries the standing differential current of a unit drawn at random
(`common.finish`), so the standing current says nothing about the class. Every transient's event
current passes the same relay views as the internal faults (`apply_relay_view`, faults.RELAY_VIEWS,
including the Yd compensation), and the sustained ones (inrush, sympathetic inrush, ferroresonance,
rectifier load, CT saturation) start before the window in IN_PROGRESS_SHARE of the windows
(`_event_start`).

- Magnetising inrush: energising phase k at voltage angle theta_k leaves in its core the flux
  lambda_k(t) = (lambda_r,k + cos theta_k) e^{-t/tau} - cos(omega t + theta_k) (per unit of rated
  flux); the core draws current only above the saturation flux lambda_s: i = (|lambda| - lambda_s)+
  / L_air: unipolar, peaked, gapped, with a strong 2nd harmonic (IEEE C37.91-2021, inrush;
  Blackburn & Domin, "Protective Relaying", ch. 9; Horowitz & Phadke, "Power System Relaying",
  ch. 8). Remanence: a bank of single-phase units has independent remanence per phase; a three-limb
  core's remanent fluxes are coupled and sum to about zero (no return limb: the limb fluxes must
  close through each other; residual flux per limb of three- and five-limb cores: de Leon et al.,
  IEEE Trans. Power Delivery 30(4), 2015); both are drawn. The decay time constant is drawn
  log-uniform 40 ms-2 s: the inrush of a large power transformer decays slowly, over seconds or
  longer (Blackburn & Domin ch. 9; C37.91-2021), so a window can show it almost undamped
  (`core_type`). Each pole closes at its own instant (breaker pole scatter, 0-3 ms: not publicly
  documented for the data set; randomised), so each phase has its own energisation angle.
- Sympathetic inrush: the parallel, already energised transformer sees the DC voltage drop of its
  neighbour's inrush across the shared source resistance; its flux takes an offset of opposite
  polarity built up over a few cycles (Horowitz & Phadke ch. 8; IEEE C37.91-2021) and lasts far
  longer than an ordinary inrush (Bronzeado & Yacamini 1995), so most windows (60 %) open on it
  in progress. What separates it physically from a magnetising inrush is the envelope (built up,
  then nearly flat, against the inrush's decay from an abrupt start), not its amplitude: both
  core-current scales reach down to 0.5 kA/pu and overlap.
- Capacitor switching: closing an uncharged bank through the source inductance, the exact LC
  solution i(t) = I_ss [cos(omega t + theta) - cos(theta) cos(omega_r t) e^{-t/tau}
  + (omega_r/omega) sin(theta) sin(omega_r t) e^{-t/tau}], f_r = 1/(2 pi sqrt(LC)) 250-1200 Hz for an
  isolated bank, 1-4 kHz back-to-back, per pole (Greenwood, "Electrical Transients in Power
  Systems", capacitor energisation and back-to-back switching; IEEE C37.012).
- External fault with CT saturation: the through-fault primary current (DC offset, X/R 10-40) is
  reproduced by both CT sets until one CT core saturates; its flux follows d lambda/dt = R_b (i_p -
  i_m(lambda)) and the differential current is i_m (IEEE C37.110-2007, CT saturation and time to
  saturation; IEEE C37.91-2021). Every window saturates inside the window: a window that would not
  gets the full-offset inception angle and then a lower knee (checked, never silently kept).
  Through-fault peaks 4-50 kA (log-uniform: the transformer's own impedance limits a through
  fault); half DC-offset, half symmetric (AC) saturation; cleared by the external fault's own
  protection after 40-130 ms in half of the windows; the other side's CTs saturate too (milder)
  in a quarter; a 0.05-1 % ratio mismatch passes a share of the through current.
- Ferroresonance: a saturable magnetising reactance in resonance with line / grading capacitance
  sustains fundamental (distorted), sub-harmonic (30 Hz, 20 Hz) or chaotic flux; the current is the
  core's steep function of that flux (Greenwood; IEEE C37.91-2021 lists ferroresonance among
  conditions a differential relay sees). No DC (the capacitance blocks it). 40 % of the windows
  come from the mode waveforms, 60 % from integrating the series ferroresonant circuit itself
  (Mork & Stuehm, IEEE Trans. Power Delivery 9(2), 1994), whose settled solution decides the mode
  and may be unsymmetrical (Hayashi, "Nonlinear Oscillations in Physical Systems", 1964). The core
  law's exponent is drawn from 3 (the textbook cubic) to 11. 70 % are in progress (an established,
  sustained state).
- Non-linear load switching: a rectifier load inside the zone switched in at t0. Line current of a
  six-pulse bridge through a wye-wye transformer: I_1 sum_h s_h F_h(mu) / h cos(h(omega t + theta_k
  - alpha')), characteristic orders h = kp +- 1 with s_h = +1 for h = 6k + 1 (positive sequence)
  and -1 for h = 6k - 1 (negative sequence); a delta-wye transformer shifts each harmonic by
  s_h x 30 deg, which reverses the 5th, 7th, 17th, 19th relative to the fundamental; a 12-pulse
  rectifier (one wye-wye and one delta-wye bridge) cancels them up to a small bridge imbalance
  (IEEE 519-2022 and Arrillaga & Watson, "Power System Harmonics", characteristic harmonics
  h = kp +- 1; Acha et al., "Power Electronic Control in Electrical Systems", 12-pulse wye/delta
  cancellation of the 5th and 7th). Firing delay alpha and commutation overlap mu delay the current
  by alpha + mu/2 and reduce the harmonics by F_h(mu) = |sin(h mu/2) / (h mu/2)| (a first-order
  overlap model, Arrillaga & Watson). Orders up to the 49th (IEEE 519-2022 counts to the 50th).
  The load is switched on, switched off (25 % of the windows that start inside the window) or
  already running; the DC current rises or falls with the DC circuit's L/R, 0.5-20 ms.
"""

from __future__ import annotations

import numpy as np

from services.simulation.common import (
    CYCLE_MS,
    DT_S,
    INCEPTION,
    OMEGA,
    PHASE_OFFSETS,
    POSITIVE_SEQUENCE,
    T_MS,
    Draws,
    ParameterSpec,
    active_mask,
    elapsed_s,
    finish,
    harmonic_sum,
)
from services.simulation.faults import RELAY_VIEWS, relay_view_matrices
from services.waveform import N_SAMPLES, SAMPLES_PER_CYCLE

FERRO_MODES = ("fundamental", "subharmonic_30Hz", "subharmonic_20Hz", "chaotic")
CORE_TYPES = ("single_phase_bank", "three_limb")
RECTIFIER_CONNECTIONS = ("wye-wye", "delta-wye")


def _s(name, title, unit, low, high, default, step, **kw) -> ParameterSpec:
    return ParameterSpec(name, title, unit, low, high, default, step, **kw)


#: the one table of transient parameter ranges: form ones first, then hidden ones
TRANSIENT_SPECS: dict[str, list[ParameterSpec]] = {
    "magnetising_inrush": [
        _s("switching_angle_deg", "Voltage angle at energisation", "deg", 0.0, 360.0, 0.0, 1.0),
        _s("remanence_percent", "Core remanence", "% of rated flux", 0.0, 80.0, 50.0, 1.0),
        _s("saturation_flux_pu", "Saturation (knee) flux", "pu", 1.05, 1.4, 1.2, 0.01),
        _s("decay_time_constant_ms", "Inrush decay time constant", "ms", 40.0, 2000.0, 150.0, 5.0,
           dist="log"),
        INCEPTION,
        _s("core_type", "Core (0 single-phase bank, 1 three-limb)", "", 0.0, 1.0, 1.0, 1.0,
           dist="choice", choices=(0.0, 1.0), form=False),
        _s("pole_scatter_ms", "Breaker pole scatter", "ms", 0.0, 3.0, 1.0, 0.1, form=False),
        _s("inrush_scale_ka", "Core current per pu flux above the knee", "kA", 0.5, 60.0, 20.0, 0.5,
           dist="log", form=False),
    ],
    "sympathetic_inrush": [
        _s("dc_flux_offset_pu", "DC flux offset reached", "pu", 0.35, 0.9, 0.6, 0.01),
        _s("build_up_time_ms", "Build-up time constant", "ms", 35.0, 300.0, 50.0, 0.5, dist="log"),
        _s("saturation_flux_pu", "Saturation (knee) flux", "pu", 1.0, 1.2, 1.1, 0.01),
        _s("switching_angle_deg", "Neighbour's energisation angle", "deg", 0.0, 360.0, 0.0, 1.0),
        INCEPTION,
        _s("inrush_scale_ka", "Core current per pu flux above the knee", "kA", 0.5, 40.0, 15.0, 0.5,
           dist="log", form=False),
        _s("magnetising_slope_ka", "Its own magnetising current per pu flux", "kA", 0.005, 0.05, 0.01,
           0.001, dist="log", form=False),
        _s("core_type", "Cores (0 single-phase banks, 1 three-limb)", "", 0.0, 1.0, 1.0, 1.0,
           dist="choice", choices=(0.0, 1.0), form=False),
    ],
    "capacitor_switching": [
        _s("resonant_frequency_hz", "Resonant frequency 1/(2 pi sqrt(LC))", "Hz", 250.0, 4000.0, 500.0,
           5.0, dist="custom"),
        _s("damping_time_constant_ms", "Damping time constant", "ms", 0.5, 15.0, 6.0, 0.5, dist="custom"),
        _s("steady_current", "Bank steady-state current", "kA", 0.01, 1.5, 0.5, 0.01, dist="log"),
        _s("switching_angle_deg", "Voltage angle at closing", "deg", 0.0, 360.0, 90.0, 1.0),
        INCEPTION,
        _s("back_to_back", "Switching (0 isolated bank, 1 back-to-back)", "", 0.0, 1.0, 0.0, 1.0,
           dist="choice", choices=(0.0, 1.0), form=False),
        _s("pole_scatter_ms", "Breaker pole scatter", "ms", 0.0, 3.0, 1.0, 0.1, form=False),
    ],
    "external_fault_ct_saturation": [
        _s("fault_current", "Through-fault current", "kA", 4.0, 50.0, 20.0, 0.5, dist="log"),
        _s("x_over_r", "System X/R (DC offset decay)", "", 10.0, 40.0, 25.0, 0.5),
        _s("saturation_factor", "CT knee / symmetrical flux", "", 0.05, 40.0, 4.0, 0.01, dist="custom"),
        _s("remanence_percent", "CT remanence", "% of knee", -80.0, 80.0, 0.0, 1.0),
        INCEPTION,
        _s("inception_angle_deg", "Voltage angle at inception", "deg", 0.0, 360.0, 0.0, 1.0, form=False),
        _s("symmetric_saturation", "CT saturation (0 DC offset, 1 symmetric AC)", "", 0.0, 1.0, 0.0,
           1.0, dist="choice", choices=(0.0, 1.0), form=False),
        _s("clearing_time_ms", "External fault cleared after (0: not inside the window)", "ms", 0.0,
           140.0, 0.0, 1.0, dist="custom", form=False),
        _s("through_mismatch", "CT ratio / tap mismatch of the through current", "", 0.0, 0.02, 0.0,
           0.001, dist="custom", form=False),
    ],
    "ferroresonance": [
        _s("mode_index", "Mode (0 fundamental, 1 30 Hz, 2 20 Hz, 3 chaotic)", "", 0.0, 3.0, 2.0, 1.0,
           dist="int"),
        _s("flux_peak_pu", "Peak core flux", "pu", 1.05, 1.5, 1.3, 0.01),
        _s("peak_current", "Peak current", "kA", 0.05, 6.0, 1.0, 0.01, dist="log"),
        INCEPTION,
        _s("core_exponent", "Core law i = a lambda + b lambda^n: exponent n", "", 3.0, 11.0, 9.0, 2.0,
           dist="choice", choices=(3.0, 5.0, 7.0, 9.0, 11.0), form=False),
        _s("unsymmetrical", "State (0 symmetrical, 1 unsymmetrical)", "", 0.0, 1.0, 0.0, 1.0,
           dist="choice", choices=(0.0, 1.0), form=False),
    ],
    "non_linear_load_switching": [
        _s("load_current", "Rectifier load current (fundamental)", "kA", 0.1, 3.0, 1.0, 0.05, dist="log"),
        _s("pulse_number", "Rectifier pulse number", "", 6.0, 12.0, 6.0, 6.0, dist="choice",
           choices=(6.0, 12.0)),
        _s("transformer_connection", "Rectifier transformer (0 wye-wye, 1 delta-wye)", "", 0.0, 1.0,
           0.0, 1.0, dist="choice", choices=(0.0, 1.0)),
        _s("firing_angle_deg", "Firing delay angle", "deg", 0.0, 60.0, 15.0, 1.0),
        INCEPTION,
        _s("commutation_overlap_deg", "Commutation overlap", "deg", 2.0, 30.0, 15.0, 0.5, form=False),
        _s("rise_time_ms", "Current rise (or fall) time constant", "ms", 0.5, 20.0, 2.0, 0.1, dist="log",
           form=False),
        _s("switch_off", "Switching (0 load switched on, 1 switched off)", "", 0.0, 1.0, 0.0, 1.0,
           dist="custom", form=False),
        _s("bridge_imbalance", "12-pulse bridge imbalance", "", 0.0, 0.03, 0.0, 0.001, form=False),
    ],
}


def _spec(kind: str, name: str) -> ParameterSpec:
    return next(spec for spec in TRANSIENT_SPECS[kind] if spec.name == name)


def _draw(draws: Draws, kind: str, name: str) -> np.ndarray:
    return draws.spec(_spec(kind, name))


#: share of windows of the sustained transients whose event began before the window starts
IN_PROGRESS_SHARE = 0.38
#: per kind where it differs: ferroresonance is a sustained steady state that takes cycles to
#: establish (Ferracci, CT 190), so a record mostly shows it established; sympathetic inrush builds
#: up over several cycles after the neighbour's energisation and lasts for many (Bronzeado &
#: Yacamini 1995), so a record triggered by the relay of the in-service unit mostly opens on it
IN_PROGRESS_SHARES = {"ferroresonance": 0.7, "sympathetic_inrush": 0.6}
#: how long before the window start an in-progress event began (ms): inrush some cycles after
#: energisation, sympathetic inrush 3-25 cycles after the neighbour's energisation (Bronzeado &
#: Yacamini 1995), ferroresonance and a running rectifier in steady state, CT saturation in its
#: later cycles (IEEE C37.110-2007); the exact leads are not documented for the data set: randomised
IN_PROGRESS_LEAD_MS = {
    "magnetising_inrush": (0.3 * CYCLE_MS, 30.0 * CYCLE_MS),
    "sympathetic_inrush": (3.0 * CYCLE_MS, 30.0 * CYCLE_MS),
    "ferroresonance": (0.5 * CYCLE_MS, 20.0 * CYCLE_MS),
    "non_linear_load_switching": (0.5 * CYCLE_MS, 20.0 * CYCLE_MS),
    "external_fault_ct_saturation": (0.3 * CYCLE_MS, 3.0 * CYCLE_MS),
}
TIMING_NAMES = np.array(["protocol", "augmented", "in_progress"])


def _event_start(draws: Draws, kind: str, lead_high_ms: np.ndarray | None = None
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(start ms, in-progress flag, timing name): the data set's sweep / augmentation as for the
    faults, or, for IN_PROGRESS_SHARE of a sustained transient's windows, a start before the window
    (negative: the event is computed from t0 < 0 with the decay that implies). A recorder triggered
    late, or started by another event, opens its window on an event already in progress (IEEE
    C37.111 COMTRADE records are cut by the trigger, not by the event's start). An override of
    `inception_ms` places every window's start there."""
    n, rng = draws.n, draws.rng
    inception, augmented = draws.inception_ms()
    low, high = IN_PROGRESS_LEAD_MS.get(kind, (0.0, 0.0))
    high = np.full(n, high) if lead_high_ms is None else np.minimum(high, lead_high_ms)
    lead = np.minimum(low, high) + rng.random(n) * np.maximum(high - low, 0.0)
    share = IN_PROGRESS_SHARES.get(kind, IN_PROGRESS_SHARE)
    in_progress = (rng.random(n) < share) & (kind in IN_PROGRESS_LEAD_MS)
    if INCEPTION.name in draws.overrides:
        in_progress[:] = False
    start = np.where(in_progress, -lead, inception)
    timing = TIMING_NAMES[np.where(in_progress, 2, augmented.astype(int))]
    return start, in_progress, timing


def _delayed(event: np.ndarray, delay: np.ndarray, in_progress: np.ndarray) -> np.ndarray:
    """event(t - delay) per window (integer samples, < one cycle); before the window start an event
    in progress is continued by its value one cycle later (periodic continuation), else it is 0."""
    cycle = int(round(SAMPLES_PER_CYCLE))
    index = np.arange(N_SAMPLES)[None, :] - delay[:, None]
    source = np.where(index >= 0, index, index + cycle)
    out = np.take_along_axis(event, np.broadcast_to(source[:, None, :], event.shape), axis=2)
    return out * ((index >= 0) | in_progress[:, None])[:, None, :]


def apply_relay_view(event: np.ndarray, draws: Draws, in_progress: np.ndarray
                     ) -> tuple[np.ndarray, dict]:
    """The event current as the differential relay sees it, with the SAME view mixture as the
    internal faults (faults.RELAY_VIEWS): the relay's phase / zero-sequence compensation acts on
    every current in its zone, not only on fault currents (IEEE C37.91-2021; GE P64x and SEL-487E
    manuals, "phase and amplitude compensation"). In the time domain: zero_sequence_removed
    subtracts the phase mean; delta_tied adds s x the current of the next / previous winding,
    shifted by the tie angle (a lag psi is a delay psi/omega, a lead psi is the negated copy delayed
    by 180 - psi, which are equal at the fundamental); yd_compensated is (i_a - i_b)/sqrt(3) ... or
    the lagging pairing (i_a - i_c)/sqrt(3) ..., the 30 deg compensation of a Yd / Dy transformer:
    unipolar inrush pulses become bipolar-looking. The standing current is balanced and passes any
    of these compensations as a balanced set, so only the event goes through the view.
    `generate_dataset(relay_view=...)` forces the view here as for the faults."""
    _, params = relay_view_matrices(draws)
    view = np.zeros(draws.n, dtype=int)
    for index, name in enumerate(RELAY_VIEWS):
        view[params["relay_view"] == name] = index
    out = event.copy()
    rows = view == 1
    if rows.any():
        out[rows] = event[rows] - event[rows].mean(axis=1, keepdims=True)
    rows = np.flatnonzero(view == 2)
    if rows.size:
        angle = params["tie_angle_deg"][rows]
        lead = angle > 0.0
        delay_deg = np.where(lead, 180.0 - angle, -angle)
        delay = np.round(delay_deg / 360.0 * SAMPLES_PER_CYCLE).astype(int)
        factor = np.where(lead, -1.0, 1.0) * params["tie_ratio"][rows]
        tied = _delayed(event[rows], delay, in_progress[rows])
        to_next = params["tie_line"][rows] == "next"
        shifted = np.where(to_next[:, None, None], np.roll(tied, 1, axis=1), np.roll(tied, -1, axis=1))
        out[rows] = event[rows] + factor[:, None, None] * shifted
    rows = np.flatnonzero(view == 3)
    if rows.size:
        leading = (params["yd_pairing"][rows] == "a-b")[:, None, None]
        partner = np.where(leading, np.roll(event[rows], -1, axis=1), np.roll(event[rows], 1, axis=1))
        out[rows] = (event[rows] - partner) / np.sqrt(3.0)
    return out, params


def _finish(event: np.ndarray, draws: Draws, params: dict, in_progress: np.ndarray | None = None,
            timing: np.ndarray | None = None) -> tuple[np.ndarray, dict]:
    """Relay view of the event, standing current of a unit drawn at random (with its tap),
    measurement, parameters."""
    n, rng = draws.n, draws.rng
    if in_progress is None:
        in_progress = np.zeros(n, dtype=bool)
    event, view_params = apply_relay_view(event, draws, in_progress)
    params.update(view_params)
    if timing is not None:
        params["timing"] = timing
    params["peak_event_ka"] = np.abs(event).max(axis=(1, 2))
    unit = rng.integers(0, 3, n)
    tap = np.where(unit == 0, np.nan, rng.integers(-16, 17, n).astype(np.float64))
    params["standing_unit"] = np.array(["power_transformer", "ispar_series", "ispar_exciting"])[unit]
    return finish(event, draws, unit, tap, params)


def _core_current(flux: np.ndarray, knee: np.ndarray, scale: np.ndarray) -> np.ndarray:
    """The transformer core law both inrush models share: current only for flux beyond the knee,
    i = scale (|lambda| - lambda_s)+ sign(lambda); flux (n, 3, t), knee and scale per window (n,)."""
    excess = np.maximum(np.abs(flux) - knee[:, None, None], 0.0) * np.sign(flux)
    return scale[:, None, None] * excess


def magnetising_inrush(draws: Draws) -> tuple[np.ndarray, dict]:
    """Inrush (module docstring). In progress: the energisation was up to 8 cycles before the window
    (bounded so that at least 0.3 pu of DC flux is left: the inrush decays with the core's DC time
    constant, Blackburn & Domin ch. 9; the later cycles are smaller, down to about 0.3 kA together
    with a small unit's lower core current scale, IEEE C37.91-2021)."""
    kind = "magnetising_inrush"
    n, rng = draws.n, draws.rng
    angle = _draw(draws, kind, "switching_angle_deg")
    remanence = _draw(draws, kind, "remanence_percent")
    saturation = _draw(draws, kind, "saturation_flux_pu")
    tau_ms = _draw(draws, kind, "decay_time_constant_ms")
    core = _draw(draws, kind, "core_type").astype(int)
    scatter_ms = _draw(draws, kind, "pole_scatter_ms")
    scale = _draw(draws, kind, "inrush_scale_ka")
    independent = rng.uniform(-1.0, 1.0, (n, 3))
    coupled = np.cos(rng.uniform(0.0, 2.0 * np.pi, n)[:, None] + PHASE_OFFSETS[None, :])
    residual = (remanence / 100.0)[:, None] * np.where(core[:, None] == 0, independent, coupled)
    # each pole closes at its own instant; phase k's voltage angle at its closing
    delay_ms = rng.uniform(0.0, 1.0, (n, 3)) * scatter_ms[:, None]
    delay_ms -= delay_ms.min(axis=1, keepdims=True)
    theta = np.deg2rad(angle)[:, None] + PHASE_OFFSETS[None, :] + OMEGA * delay_ms / 1000.0
    dc0 = np.abs(residual + np.cos(theta)).max(axis=1)
    lead_high = tau_ms * np.log(np.maximum(dc0, 0.31) / 0.3)
    inception, in_progress, timing = _event_start(draws, kind, lead_high)
    left = np.exp(np.minimum(inception, 0.0) / tau_ms)  # DC flux left at the window start
    if "saturation_flux_pu" not in draws.overrides:
        # an energisation that never drives a core past its knee is no inrush event: keep the knee
        # at least 0.25 pu (in progress: 0.1 pu) below the largest flux peak in the window
        reachable = 1.0 + dc0 * left
        margin = np.where(in_progress, 0.1, 0.25)
        saturation = np.clip(saturation, reachable - 1.1, reachable - margin).clip(1.02, None)
    start = inception[:, None] + delay_ms  # (n, 3)
    t = np.maximum(T_MS[None, None, :] - start[:, :, None], 0.0) / 1000.0
    active = T_MS[None, None, :] >= start[:, :, None]
    dc = (residual + np.cos(theta))[:, :, None] * np.exp(-t / (tau_ms[:, None, None] / 1000.0))
    flux = dc - np.cos(OMEGA * t + theta[:, :, None])
    event = _core_current(flux, saturation, scale) * active
    params = {
        "inception_ms": inception, "switching_angle_deg": angle, "remanence_percent": remanence,
        "saturation_flux_pu": saturation, "decay_time_constant_ms": tau_ms, "inrush_scale_ka": scale,
        "core_type": core.astype(np.float64), "core": np.array(CORE_TYPES)[core],
        "pole_scatter_ms": scatter_ms, "peak_current": np.abs(event).max(axis=(1, 2)),
    }
    for k, phase in enumerate("abc"):
        params[f"remanence_{phase}_pu"] = residual[:, k]
    return _finish(event, draws, params, in_progress, timing)


def sympathetic_inrush(draws: Draws) -> tuple[np.ndarray, dict]:
    """Sympathetic inrush (module docstring): the in-service transformer's flux takes a DC offset
    of opposite polarity to its energised neighbour's (H. S. Bronzeado, R. Yacamini, "Phenomenon of
    sympathetic interaction between transformers caused by inrush transients", IEE Proc. Sci. Meas.
    Technol. 142(4), 1995; Hayder et al. 2008 on the differential current of a regulating unit).
    Its current rides on its own magnetising current (a small slope below the knee, present before
    the neighbour's energisation: the in-service unit is already excited); the load current passes
    both CT sets and appears only through the standing mismatch. In progress: 3-30 cycles after the
    neighbour's energisation. Build-up 35-300 ms (two cycles and more: the offset accumulates from
    the shared resistive drop cycle by cycle, so it is never as abrupt as an energisation, whose
    first pulse is its largest) and decay 0.3-5 s (log-uniform), so its envelope may still grow,
    stay flat or slowly fall across the window. Peaks down to about 0.2 kA (a small core current
    scale). Three-limb cores (DC offsets summing to zero) or banks of single-phase units (each phase
    with its own remanence, so the offsets need not), half each."""
    kind = "sympathetic_inrush"
    n, rng = draws.n, draws.rng
    inception, in_progress, timing = _event_start(draws, kind)
    offset = _draw(draws, kind, "dc_flux_offset_pu")
    build_ms = _draw(draws, kind, "build_up_time_ms")
    saturation = _draw(draws, kind, "saturation_flux_pu")
    angle = _draw(draws, kind, "switching_angle_deg")
    scale = _draw(draws, kind, "inrush_scale_ka")
    slope = _draw(draws, kind, "magnetising_slope_ka")
    # the interaction decays far more slowly than a lone inrush, over seconds (Bronzeado & Yacamini
    # 1995: "prolonged"; the shared resistance is small), and builds up over several cycles to
    # some tens of cycles: both drawn log-uniform, so a late window shows a flat envelope
    decay_ms = np.exp(rng.uniform(np.log(300.0), np.log(5000.0), n))
    core = _draw(draws, kind, "core_type").astype(int)
    remanence = rng.uniform(-0.8, 0.8, (n, 3))
    theta = np.deg2rad(angle)[:, None] + PHASE_OFFSETS[None, :]
    # the neighbour's inrush DC flux per phase; the offset here is opposite and in proportion
    # (Bronzeado & Yacamini 1995: the interaction is driven by the neighbour's DC current through
    # the shared resistance), so a phase whose neighbour carries little DC barely saturates.
    # Three-limb cores: the DC fluxes sum to zero (no zero-sequence flux path). Banks of
    # single-phase units (sympathetic inrush among three banks of single-phase 50 MVA units, an ATP
    # study of a substation in Brazil, doi:10.3233/JAE-190041): each phase keeps its own
    # remanence, up to 80 % (as for the energisation), so the three offsets need not sum to zero
    neighbour_dc = np.cos(theta) + 0.4 * rng.uniform(-1.0, 1.0, (n, 1)) * np.cos(theta + 0.5)
    neighbour_dc = neighbour_dc + np.where(core[:, None] == 0, remanence, 0.0)
    polarity = -np.sign(neighbour_dc + 1e-9)
    weight = np.abs(neighbour_dc) / np.abs(neighbour_dc).max(axis=1, keepdims=True)
    t = elapsed_s(inception)[:, None, :]
    growth = (1.0 - np.exp(-t / (build_ms[:, None, None] / 1000.0))) * np.exp(
        -t / (decay_ms[:, None, None] / 1000.0)
    )
    offsets = polarity * weight * offset[:, None]  # (n, 3) pu, the DC flux each phase reaches
    dc = offsets[:, :, None] * growth
    # the energised transformer's flux lags its voltage: -cos of the phase angle, from before t0
    steady = -np.cos(OMEGA * (T_MS[None, None, :] - inception[:, None, None]) / 1000.0 + theta[:, :, None])
    flux = dc + steady
    event = _core_current(flux, saturation, scale) + slope[:, None, None] * flux
    params = {
        "inception_ms": inception, "switching_angle_deg": angle, "dc_flux_offset_pu": offset,
        "build_up_time_ms": build_ms, "saturation_flux_pu": saturation, "inrush_scale_ka": scale,
        "magnetising_slope_ka": slope, "core_type": core.astype(np.float64), "core": np.array(CORE_TYPES)[core],
        "peak_current": np.abs(event).max(axis=(1, 2)),
    }
    for k, phase in enumerate("abc"):
        params[f"dc_flux_{phase}_pu"] = offsets[:, k]
    return _finish(event, draws, params, in_progress, timing)


def capacitor_switching(draws: Draws) -> tuple[np.ndarray, dict]:
    """Capacitor energisation (module docstring), per pole: each pole closes at its own instant
    (pole scatter 0-3 ms, so each phase has its own closing angle: IEEE C37.012-2005, capacitance
    current switching). Isolated bank: f_r 250-1200 Hz; back-to-back (40 %): a bank energised beside
    one already charged rings through the small inductance between them at 1-4 kHz with a far larger,
    faster-damped current (Greenwood, "Electrical Transients in Power Systems", back-to-back
    switching; IEEE C37.012; IEEE C37.99, back-to-back inrush). Bank sizes give steady currents
    0.01-1.5 kA, so peaks from about 0.05 kA."""
    kind = "capacitor_switching"
    n, rng = draws.n, draws.rng
    inception, _, timing = _event_start(draws, kind)
    back = _draw(draws, kind, "back_to_back")
    f_res = draws.take("resonant_frequency_hz",
                       np.where(back == 1.0, rng.uniform(1000.0, 4000.0, n), rng.uniform(250.0, 1200.0, n)))
    damping_ms = draws.take("damping_time_constant_ms",
                            np.where(back == 1.0, rng.uniform(0.5, 5.0, n), rng.uniform(2.0, 15.0, n)))
    steady = _draw(draws, kind, "steady_current")
    angle = _draw(draws, kind, "switching_angle_deg")
    scatter_ms = _draw(draws, kind, "pole_scatter_ms")
    delay_ms = rng.uniform(0.0, 1.0, (n, 3)) * scatter_ms[:, None]
    delay_ms -= delay_ms.min(axis=1, keepdims=True)
    theta = (np.deg2rad(angle)[:, None] + PHASE_OFFSETS[None, :] + OMEGA * delay_ms / 1000.0)[:, :, None]
    start = inception[:, None] + delay_ms
    t = np.maximum(T_MS[None, None, :] - start[:, :, None], 0.0) / 1000.0
    omega_r = 2.0 * np.pi * f_res[:, None, None]
    decay = np.exp(-t / (damping_ms[:, None, None] / 1000.0))
    event = np.cos(OMEGA * t + theta) - np.cos(theta) * np.cos(omega_r * t) * decay
    event += (omega_r / OMEGA) * np.sin(theta) * np.sin(omega_r * t) * decay
    event *= steady[:, None, None] * (T_MS[None, None, :] >= start[:, :, None])
    params = {
        "inception_ms": inception, "switching_angle_deg": angle, "resonant_frequency_hz": f_res,
        "damping_time_constant_ms": damping_ms, "steady_current": steady, "back_to_back": back,
        "switching": np.where(back == 1.0, "back_to_back", "isolated"), "pole_scatter_ms": scatter_ms,
        "peak_current": np.abs(event).max(axis=(1, 2)),
    }
    return _finish(event, draws, params, None, timing)


_EXTERNAL_FAULTS = ("AG", "BG", "CG", "AB", "BC", "CA", "ABG", "BCG", "CAG", "ABC")
_CT_SLOPE = 30.0  # saturated magnetising current per unit flux above the knee (air-core slope)
_SATURATION_THRESHOLD = 0.02  # i_m in units of the fault current: the CT has saturated
#: the CT must saturate at least one cycle before the end of the window (a visible event)
_SATURATION_HORIZON = N_SAMPLES - int(round(SAMPLES_PER_CYCLE))


def _external_phasors(fault_index: np.ndarray) -> np.ndarray:
    n = fault_index.shape[0]
    phasors = np.zeros((n, 3), dtype=np.complex128)
    for i, name in enumerate(_EXTERNAL_FAULTS):
        rows = fault_index == i
        phases = ["ABC".index(c) for c in name.rstrip("G")]
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
    return phasors


def _primary(phasors, angle_deg, x_over_r, inception, t_ms: np.ndarray = T_MS) -> np.ndarray:
    """Through-fault primary current (n, 3, len(t_ms)) per unit of the fault current, with its DC
    offset, on the time grid t_ms (which may start before the window for an event in progress)."""
    tau = x_over_r / OMEGA
    theta = np.deg2rad(angle_deg) - np.arctan(x_over_r)
    t = np.maximum(t_ms[None, :] - inception[:, None], 0.0) / 1000.0
    rotation = phasors * np.exp(1j * theta)[:, None]
    primary = np.real(
        rotation[:, :, None] * (np.exp(1j * OMEGA * t) - np.exp(-t / tau[:, None]))[:, None, :]
    )
    return primary * (t_ms[None, :] >= inception[:, None])[:, None, :]


def _ct_magnetising(primary: np.ndarray, knee: np.ndarray, flux0: np.ndarray,
                    slope: np.ndarray | float = _CT_SLOPE) -> np.ndarray:
    """CT magnetising current (n, 3, T) by backward Euler on the piecewise-linear core (stable for
    the steep saturated slope), vectorised over windows and phases, one time step at a time.
    `slope` (scalar or (n, 1)): saturated magnetising current per unit flux above the knee."""
    h = OMEGA * DT_S
    slope = np.asarray(slope, dtype=np.float64)
    flux = flux0.copy()
    magnetising = np.zeros_like(primary)
    for step in range(primary.shape[2]):
        candidate = flux + h * primary[:, :, step]
        sign = np.sign(candidate)
        saturated = np.abs(candidate) > knee
        implicit = (candidate + h * slope * knee * sign) / (1.0 + h * slope)
        flux = np.where(saturated, implicit, candidate)
        magnetising[:, :, step] = slope * np.maximum(np.abs(flux) - knee, 0.0) * sign
    return magnetising


def _unsaturated(magnetising: np.ndarray) -> np.ndarray:
    """(n,) True where no CT saturates at least one cycle before the end of the window (the window
    is the last N_SAMPLES of the grid)."""
    window = magnetising[:, :, magnetising.shape[2] - N_SAMPLES:]
    return np.abs(window[:, :, :_SATURATION_HORIZON]).max(axis=(1, 2)) <= _SATURATION_THRESHOLD


#: share of CT-saturation windows with symmetric (AC) saturation
SYMMETRIC_SATURATION_SHARE = 0.5
#: share of CT-saturation windows whose external fault is cleared by its own protection 40-130 ms
#: after inception (and at least 1.5 cycles into the window) (2.5-8 cycles: relay plus breaker, Blackburn & Domin
#: ch. 1; Horowitz & Phadke ch. 1), each pole at its current's next zero
EXTERNAL_CLEARING_SHARE = 0.5
#: share in which the CTs of the other side saturate too, more mildly (knee 1.3-3 times higher)
OTHER_SIDE_SHARE = 0.25


def _cleared(primary: np.ndarray, grid_ms: np.ndarray, clear_ms: np.ndarray) -> np.ndarray:
    """The primary current with each phase interrupted at its first current zero after clear_ms
    (inf: not cleared): a breaker interrupts at a current zero (Blackburn & Domin ch. 1)."""
    sign = np.sign(primary)
    crossing = np.zeros(primary.shape, dtype=bool)
    crossing[:, :, 1:] = sign[:, :, 1:] * sign[:, :, :-1] <= 0.0
    crossing &= (grid_ms[None, :] >= clear_ms[:, None])[:, None, :]
    return primary * (np.cumsum(crossing, axis=2) == 0)


def external_fault_ct_saturation(draws: Draws) -> tuple[np.ndarray, dict]:
    """External fault with CT saturation (module docstring). Two kinds (IEEE C37.110-2007, CT
    saturation: the symmetrical-current limit V_x > I_f Z_b (1 + X/R) and its AC form V_x > I_f Z_b;
    the PSRC CT saturation calculator; Horowitz & Phadke, "Power System Relaying", ch. 3):
    - DC-offset saturation (50 %): knee above the symmetrical flux, reached by the offset's flux;
    - symmetric (AC) saturation (50 %): a high burden or small C-rating puts the knee below the
      symmetrical flux (0.05-0.75 of it, log-uniform), so the CT saturates every half cycle with little DC offset
      (inception angle within 8 deg of the zero-offset angle of the reference phase; the other
      phases of a multi-phase fault keep their offsets) and the differential shows lobes of both
      polarities.
    Phase-to-phase and two-phase-to-ground external faults drive two CTs with (nearly) opposite
    currents: both may saturate, with opposite lobes; the saturating phases are recorded. In progress
    (IN_PROGRESS_SHARE): the fault began up to 3 cycles before the window; the CT flux is integrated
    from the fault's start. Every window has at least one CT saturating inside the window.
    Broadened:
    - the external fault is cleared 40-130 ms after inception in EXTERNAL_CLEARING_SHARE of the
      windows (each pole at its next current zero; inside the window mostly for faults in progress); the CT then leaves saturation and the differential falls
      back to the standing level (C37.110-2007 on CT recovery after the primary current is removed);
    - the CTs of the other side may saturate too (OTHER_SIDE_SHARE, milder): the relay sees the
      difference of the two magnetising currents, i_m2 - i_m1 (C37.91-2021, CT performance on
      through faults; Horowitz & Phadke ch. 3);
    - a small CT ratio / tap mismatch (0.05-1 %, log-uniform) passes a share of the through current
      itself into the differential, the reason percentage-restraint relays have a slope
      (Blackburn & Domin ch. 9; C37.91-2021)."""
    kind = "external_fault_ct_saturation"
    n, rng = draws.n, draws.rng
    inception, in_progress, timing = _event_start(draws, kind)
    fault_current = _draw(draws, kind, "fault_current")
    x_over_r = _draw(draws, kind, "x_over_r")
    remanence = _draw(draws, kind, "remanence_percent")
    angle = _draw(draws, kind, "inception_angle_deg")
    symmetric = _draw(draws, kind, "symmetric_saturation") if "symmetric_saturation" in draws.overrides \
        else draws.take("symmetric_saturation", (rng.random(n) < SYMMETRIC_SATURATION_SHARE).astype(float))
    small_offset = (np.rad2deg(np.arctan(x_over_r)) + 90.0 + rng.uniform(-8.0, 8.0, n)
                    + 180.0 * (rng.random(n) < 0.5)) % 360.0
    if "inception_angle_deg" not in draws.overrides:
        angle = np.where(symmetric == 1.0, small_offset, angle)
    # down to 0.05: a deeply saturated CT reproduces only a short stretch after each current zero,
    # so the differential is nearly the whole primary current with notches (C37.110-2007 on severe
    # saturation of low-rated CTs with high burden; the PSRC calculator's severe cases)
    symmetric_knee = np.exp(rng.uniform(np.log(0.05), np.log(0.75), n))
    fault_index = rng.integers(0, len(_EXTERNAL_FAULTS), n)
    phasors = _external_phasors(fault_index)
    spread = rng.uniform(0.7, 1.0, (n, 3))  # remanence differs a little between the three cores
    fraction = rng.uniform(0.3, 0.95, n)  # up to near the in-window flux: saturation a few cycles in
    # cleared at least 1.5 cycles into the window (the CT must show its saturation first); a fault in
    # progress when the window opens is often cleared inside it
    drawn_clear = np.maximum(inception + rng.uniform(40.0, 130.0, n), 1.5 * CYCLE_MS) - inception
    clearing = draws.take("clearing_time_ms", np.where(rng.random(n) < EXTERNAL_CLEARING_SHARE, drawn_clear, 0.0))
    clear_at = np.where(clearing > 0.0, inception + clearing, np.inf)
    mismatch = draws.take("through_mismatch", np.exp(rng.uniform(np.log(0.0005), np.log(0.01), n)))
    other_side = rng.random(n) < OTHER_SIDE_SHARE
    other_knee = rng.uniform(1.3, 3.0, n)
    other_remanence = rng.uniform(-0.8, 0.8, (n, 3))
    # saturated (air-core) slope of the CT core against its burden: the saturated time constant
    # L_sat / R_b of 0.09-2.7 ms depends on the CT and its burden, which no source fixes for the
    # data set (IEEE C37.110-2007, excitation curve above the knee; the PSRC CT saturation
    # calculator's exponent S): drawn log-uniform, a steep slope cuts the secondary current sharply,
    # a soft one lets it fade
    slope = np.exp(rng.uniform(np.log(1.0), np.log(_CT_SLOPE), n))[:, None]
    h = OMEGA * DT_S
    pre = int(np.ceil(max(0.0, -float(inception.min())) * 10.0 - 1e-9))
    grid = np.arange(-pre, N_SAMPLES) * DT_S * 1000.0
    horizon = pre + _SATURATION_HORIZON

    def knee_for(primary: np.ndarray, rows: np.ndarray) -> np.ndarray:
        # CT flux in units of the symmetrical flux R_b I_f / omega; the knee is drawn below the flux
        # this fault's DC offset builds inside the window (otherwise there would be no event)
        unsaturated = h * np.cumsum(primary[:, :, :horizon], axis=2)
        peak = np.abs(unsaturated).max(axis=(1, 2))
        drawn = fraction[rows] * peak
        remanent = (remanence[rows] / 100.0)[:, None] * drawn[:, None] * spread[rows]
        reached = np.abs(unsaturated + remanent[:, :, None]).max(axis=(1, 2))
        offset_knee = np.clip(np.minimum(drawn, 0.85 * reached), 1.2, 40.0)
        return np.where(symmetric[rows] == 1.0, symmetric_knee[rows], offset_knee)

    def saturate(rows: np.ndarray) -> np.ndarray:
        return _ct_magnetising(primary[rows], factor[rows, None],
                               (remanence[rows] / 100.0)[:, None] * factor[rows, None] * spread[rows], slope[rows])

    every = np.arange(n)
    primary = _cleared(_primary(phasors, angle, x_over_r, inception, grid), grid, clear_at)
    factor = draws.take("saturation_factor", knee_for(primary, every))
    magnetising = saturate(every)
    missing = _unsaturated(magnetising)
    if missing.any() and "inception_angle_deg" not in draws.overrides:
        # redraw: the inception angle that gives this fault loop its full DC offset
        rows = np.flatnonzero(missing)
        angle[rows] = (np.rad2deg(np.arctan(x_over_r[rows])) + 180.0 * (rng.random(rows.size) < 0.5)) % 360.0
        primary[rows] = _cleared(_primary(phasors[rows], angle[rows], x_over_r[rows], inception[rows], grid),
                                 grid, clear_at[rows])
        if "saturation_factor" not in draws.overrides:
            factor[rows] = knee_for(primary[rows], rows)
        magnetising[rows] = saturate(rows)
        missing = _unsaturated(magnetising)
    if missing.any() and "saturation_factor" not in draws.overrides:
        # an event in progress whose offset has decayed: the CT saturates symmetrically instead
        rows = np.flatnonzero(missing)
        factor[rows] = symmetric_knee[rows]
        symmetric[rows] = 1.0
        magnetising[rows] = saturate(rows)
        missing = _unsaturated(magnetising)
    if missing.any():
        raise ValueError("these parameters do not saturate the CT inside the window: lower "
                         "saturation_factor or choose an earlier inception")
    saturated = np.abs(magnetising) > _SATURATION_THRESHOLD
    first = (np.argmax(saturated.any(axis=1), axis=1) - pre) / 10.0
    magnetising = magnetising[:, :, pre:]
    window_saturated = (np.abs(magnetising) > _SATURATION_THRESHOLD).any(axis=2)
    differential = magnetising.copy()
    rows = np.flatnonzero(other_side)
    if rows.size:
        knee2 = (factor[rows] * other_knee[rows])[:, None]
        second = _ct_magnetising(primary[rows], knee2, other_remanence[rows] * knee2, slope[rows])
        differential[rows] -= second[:, :, pre:]
    differential += mismatch[:, None, None] * primary[:, :, pre:]
    event = differential * fault_current[:, None, None]
    params = {
        "inception_ms": inception, "fault_current": fault_current, "x_over_r": x_over_r,
        "inception_angle_deg": angle, "remanence_percent": remanence, "saturation_factor": factor,
        "symmetric_saturation": symmetric, "ct_saturated_slope": slope[:, 0], "clearing_time_ms": clearing, "through_mismatch": mismatch,
        "other_side_saturates": other_side,
        "ct_saturation": np.where(symmetric == 1.0, "symmetric", "dc_offset"),
        "external_fault_type": np.array(_EXTERNAL_FAULTS)[fault_index],
        "saturated_phases": np.array(["".join("ABC"[k] for k in range(3) if row[k])
                                      for row in window_saturated]),
        "time_to_saturation_ms": first - inception,
        "peak_differential": np.abs(event).max(axis=(1, 2)),
    }
    return _finish(event, draws, params, in_progress, timing)


#: share of ferroresonance windows computed from the circuit (`_ferroresonant_circuit`); the others
#: use the mode waveforms (a drawn or overridden mode). The circuit's states are self-consistent and
#: include the unsymmetrical and soft-core ones the mode waveforms do not draw, hence the majority
FERRO_CIRCUIT_SHARE = 0.6
#: share of the mode-waveform windows in an unsymmetrical state (`_unsymmetrical_flux`)
FERRO_UNSYMMETRICAL_SHARE = 0.5
#: probability that 1, 2 or 3 phases take part in the ferroresonance (see `ferroresonance`)
FERRO_PHASE_COUNT_P = (0.4, 0.35, 0.25)
_FERRO_SETTLE_CYCLES = 25
_FERRO_PERIOD_MODES = {1: "fundamental", 2: "subharmonic_30Hz", 3: "subharmonic_20Hz", 4: "subharmonic_15Hz"}
#: a settled circuit current whose crest factor stays below this in a phase (a sine has 1.41) has
#: not driven the core into saturation: a normal exciting current, not ferroresonance
FERRO_MIN_CREST = 1.7
_FERRO_REDRAWS = 3


def _ferroresonant_circuit(rng: np.random.Generator, m: int, exponent: np.ndarray | None = None
                           ) -> tuple[np.ndarray, np.ndarray]:
    """(m, 3, N_SAMPLES) steady ferroresonant core current, each window scaled to peak 1, and the
    detected period in cycles (0: none within 4 cycles: quasi-periodic or chaotic).

    The series ferroresonant circuit of each phase (Greenwood, "Electrical Transients in Power
    Systems", ferroresonance; Ferracci, Cahier Technique 190; Mork & Stuehm, "Application of
    nonlinear dynamics and chaos to ferroresonance in distribution systems", IEEE Trans. Power
    Delivery 9(2), 1994): a source E sin(tau + theta_k) feeds, through a capacitance (series or
    grading, reactance X_c), a saturable core i(lambda) = a lambda + b lambda^n shunted by its
    core-loss resistance R, all per unit, tau = omega t:
        d lambda / d tau = e - v_C,   d v_C / d tau = X_c (i(lambda) + (e - v_C) / R).
    E 0.8-2 pu, X_c 0.3-4 pu, R 4-80 pu, a 0.003-0.03, b 0.002-0.02 (log-uniform) and the initial
    state (the switching that starts it) are drawn; RK4, two steps per sample, 25 cycles to settle.
    The exponent n (`exponent`, per window; default 11) is what the sources leave open: fits of
    real cores use n from 5 to 11 (Mork & Stuehm use 11 for a distribution transformer; Kavasseri
    and Milicevic et al. study 5 and 7), and the textbook treatment of the saturable-core circuit
    takes the cubic law (C. Hayashi, "Nonlinear Oscillations in Physical Systems", 1964; Y. Ueda,
    J. Stat. Phys. 20, 1979, Duffing's equation x'' + k x' + x^3 = B cos t), so the caller draws it.
    Depending on them the circuit settles on a fundamental, a subharmonic or an aperiodic (chaotic)
    solution, as the sources describe; the mode is read from the settled current's period. A
    settled state may also be unsymmetrical (Hayashi's unsymmetrical oscillations: the flux takes
    an offset and even harmonics, so the current shows one tall pulse per cycle and a broad, low
    lobe of the other polarity); the series capacitance still keeps the current's mean at zero."""
    e = rng.uniform(0.8, 2.0, (m, 1))
    xc = np.exp(rng.uniform(np.log(0.3), np.log(4.0), (m, 1)))
    r = np.exp(rng.uniform(np.log(4.0), np.log(80.0), (m, 1)))
    a = np.exp(rng.uniform(np.log(0.003), np.log(0.03), (m, 1)))
    b = np.exp(rng.uniform(np.log(0.002), np.log(0.02), (m, 1)))
    n_exp = (np.full((m, 1), 11.0) if exponent is None else np.asarray(exponent, dtype=np.float64).reshape(m, 1))
    theta = rng.uniform(0.0, 2.0 * np.pi, (m, 1)) + PHASE_OFFSETS[None, :]
    flux = rng.uniform(-2.0, 2.0, (m, 3))
    vc = rng.uniform(-3.0, 3.0, (m, 3))
    h = OMEGA * DT_S / 2.0
    settle = int(round(_FERRO_SETTLE_CYCLES * SAMPLES_PER_CYCLE))

    def slope(tau: float, lam: np.ndarray, v: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        vl = e * np.sin(tau + theta) - v
        return vl, xc * (a * lam + b * np.sign(lam) * np.abs(lam) ** n_exp + vl / r)

    out = np.zeros((m, 3, N_SAMPLES))
    tau = 0.0
    for step in range(2 * (settle + N_SAMPLES)):
        k1 = slope(tau, flux, vc)
        k2 = slope(tau + h / 2, flux + h / 2 * k1[0], vc + h / 2 * k1[1])
        k3 = slope(tau + h / 2, flux + h / 2 * k2[0], vc + h / 2 * k2[1])
        k4 = slope(tau + h, flux + h * k3[0], vc + h * k3[1])
        flux = flux + h / 6 * (k1[0] + 2 * k2[0] + 2 * k3[0] + k4[0])
        vc = vc + h / 6 * (k1[1] + 2 * k2[1] + 2 * k3[1] + k4[1])
        tau += h
        sample = step // 2 - settle
        if sample >= 0 and step % 2 == 1:
            out[:, :, sample] = a * flux + b * np.sign(flux) * np.abs(flux) ** n_exp
    out /= np.abs(out).max(axis=(1, 2), keepdims=True) + 1e-12
    cycle = int(round(SAMPLES_PER_CYCLE))
    period = np.zeros(m, dtype=int)
    if m == 0:
        return out, period
    for cycles in (4, 3, 2, 1):  # the shortest period that repeats wins
        repeats = (np.abs(out[:, :, cycles * cycle:] - out[:, :, :-cycles * cycle]).max(axis=(1, 2)) < 0.1)
        period[repeats] = cycles
    return out, period


def _crest(current: np.ndarray) -> np.ndarray:
    """Smallest crest factor (peak / rms) over the phases of each window (m, 3, t) -> (m,)."""
    rms = np.sqrt(np.mean(current**2, axis=2))
    return (np.abs(current).max(axis=2) / np.maximum(rms, 1e-12)).min(axis=1)


def _saturated_ferroresonance(rng: np.random.Generator, exponent: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """`_ferroresonant_circuit` for each window of `exponent`, with the circuits that settle on a
    barely distorted state (crest factor below FERRO_MIN_CREST in a phase) drawn again, up to
    _FERRO_REDRAWS times: a soft core (n = 3) settles on such a state about half the time, and a
    current that never saturates the core is the normal exciting current, not ferroresonance
    (Ferracci, CT 190: the sustained ferroresonant state is a saturated one)."""
    steady, period = _ferroresonant_circuit(rng, exponent.size, exponent)
    for _ in range(_FERRO_REDRAWS):
        again = np.flatnonzero(_crest(steady) < FERRO_MIN_CREST)
        if again.size == 0:
            break
        steady[again], period[again] = _ferroresonant_circuit(rng, again.size, exponent[again])
    return steady, period


def _core_law(flux: np.ndarray, linear: np.ndarray, exponent: np.ndarray) -> np.ndarray:
    """i = a lambda + lambda^n (per unit; `linear` a and `exponent` n broadcast against `flux`)."""
    return linear * flux + flux * np.abs(flux) ** (exponent - 1.0)


def _unsymmetrical_flux(shape: np.ndarray, even: np.ndarray, scale: np.ndarray, linear: np.ndarray,
                        exponent: np.ndarray, span: int) -> np.ndarray:
    """An unsymmetrical ferroresonant state of a mode waveform: `shape` (n, 3, t, peak 1) plus an
    even-order term even (shape^2 - mean) that breaks its half-wave symmetry, shifted by the flux
    offset b that brings the mean of the core current i(scale (shape + b)) over the first `span`
    samples to zero (`scale`: the peak flux the caller multiplies the result by).

    C. Hayashi ("Nonlinear Oscillations in Physical Systems", 1964) finds such unsymmetrical
    oscillations in the series circuit with a saturable core: the flux carries an offset and even
    harmonics, while the series capacitance keeps the current's mean at zero (a periodic state
    passes no DC through a capacitor). The current then shows one tall, narrow pulse per cycle and
    a broad, low lobe of the other polarity: unipolar-looking like an inrush, but without its DC.
    b is found by bisection (the mean current grows monotonically with b)."""
    distorted = shape + even * (shape**2 - np.mean(shape**2, axis=2, keepdims=True))
    distorted /= np.abs(distorted).max(axis=2, keepdims=True) + 1e-12
    low = np.full(shape.shape[:2] + (1,), -1.0)
    high = np.full(shape.shape[:2] + (1,), 1.0)
    for _ in range(40):
        middle = 0.5 * (low + high)
        current = _core_law(scale * (distorted[:, :, :span] + middle), linear, exponent)
        positive = np.mean(current, axis=2, keepdims=True) > 0.0
        high = np.where(positive, middle, high)
        low = np.where(positive, low, middle)
    return distorted + 0.5 * (low + high)


def ferroresonance(draws: Draws) -> tuple[np.ndarray, dict]:
    """Ferroresonance (module docstring; IEEE PES working group on modeling and analysis of
    system transients, ferroresonance modelling; P. Ferracci, "Ferroresonance", Schneider Electric
    Cahier Technique 190: fundamental, subharmonic (f/n, n odd or 2/3 here as 1/2, 1/3) and chaotic
    modes, sustained). Fundamental mode: the core saturates twice per cycle, one sharp current peak
    of each polarity (half-wave symmetric: odd harmonics only). The current carries no DC: it closes
    through a capacitance (series or grading) that blocks DC (Ferracci, CT 190; Greenwood ch. on
    ferroresonance), so the mode waveforms have none. Half of the mode waveforms are unsymmetrical
    states (`_unsymmetrical_flux`, Hayashi 1964: a flux offset and even harmonics, one tall pulse
    per cycle and a broad low lobe of the other polarity, zero mean current), and the circuit
    (`_ferroresonant_circuit`) yields such states of its own.
    Core law exponent n drawn from 3 (the textbook cubic, Hayashi 1964) to 11 (`core_exponent`).
    Amplitudes 0.05-6 kA peak (from a potential transformer's to a power transformer's). In
    progress (IN_PROGRESS_SHARES): sustained from before the window start (steady state)."""
    kind = "ferroresonance"
    n, rng = draws.n, draws.rng
    inception, in_progress, timing = _event_start(draws, kind)
    mode = _draw(draws, kind, "mode_index").astype(int)
    flux_peak = _draw(draws, kind, "flux_peak_pu")
    peak_current = _draw(draws, kind, "peak_current")
    # the oscillation settles in over a few cycles after the triggering switching (Ferracci, CT 190)
    build_ms = np.exp(rng.uniform(np.log(2.0), np.log(60.0), n))
    t = elapsed_s(inception)[:, None, :]
    phase = rng.uniform(0.0, 2.0 * np.pi, (n, 3))[:, :, None]
    # participating phases: ferroresonance follows single- or two-pole switching or a blown fuse,
    # so it involves the one or two phases left open (or all three of a VT bank on an ungrounded
    # system: Ferracci, CT 190); the others carry only their normal exciting current, part of the
    # standing current. The share of each count is not documented: FERRO_PHASE_COUNT_P
    count = rng.choice(np.arange(1, 4), size=n, p=FERRO_PHASE_COUNT_P)
    order = np.argsort(rng.random((n, 3)), axis=1)  # a random order of the phases
    participating = np.argsort(order, axis=1) < count[:, None]  # the first `count` of that order
    weight = np.where(participating, rng.uniform(0.5, 1.0, (n, 3)), 0.0)
    weight[np.arange(n), order[:, 0]] = 1.0
    wt = OMEGA * t
    sub = np.where(mode == 1, 2.0, 3.0)[:, None, None]
    # fundamental mode: near-sinusoidal flux (the voltage is), its saturating peaks draw the sharp
    # current pulses, one of each polarity per cycle (Ferracci, CT 190); a 3rd-harmonic flux
    # component of random sign widens or sharpens them (still half-wave symmetric)
    fundamental = np.sin(wt + phase) + rng.uniform(-0.15, 0.15, (n, 1, 1)) * np.sin(3.0 * (wt + phase))
    subharmonic = np.sin(wt / sub + phase) + rng.uniform(0.2, 0.5, (n, 1, 1)) * np.sin(wt + 2.0 * phase)
    f1, f2 = rng.uniform(0.3, 0.47, (n, 1, 1)), rng.uniform(1.4, 1.8, (n, 1, 1))
    # chaotic: incommensurate components with a slow irregular envelope; the core still saturates
    # in most cycles (irregular peaks, continuous spectrum: Ferracci, CT 190)
    chaotic = (
        np.sin(f1 * wt + phase) + 0.8 * np.sin(wt + 1.7 * phase)
        + 0.4 * np.sin(f2 * wt + 0.3 * phase)
    ) * (1.0 + 0.15 * np.sin(0.11 * wt + rng.uniform(0.0, 2.0 * np.pi, (n, 1, 1))))
    shapes = np.stack([fundamental, subharmonic, subharmonic, chaotic])
    shape = shapes[mode, np.arange(n)]
    shape /= np.abs(shape).max(axis=2, keepdims=True) + 1e-12
    # core law i = a lambda + lambda^n: n drawn from 3 (soft, rounded pulses) to 11 (sharp), the
    # linear share a with it (see `_ferroresonant_circuit` for the sources)
    exponent = _draw(draws, kind, "core_exponent")
    linear = rng.uniform(0.05, 0.3, n)[:, None, None]
    unsymmetrical = (_draw(draws, kind, "unsymmetrical") if "unsymmetrical" in draws.overrides
                     else (rng.random(n) < FERRO_UNSYMMETRICAL_SHARE).astype(np.float64))
    rows = np.flatnonzero(unsymmetrical == 1.0)
    if rows.size:
        # the mean is taken over whole periods of the mode: 4 cycles (fundamental, 30 Hz, chaotic)
        # or 3 (20 Hz: one period of 3 cycles)
        span = np.where(mode[rows] == 2, 3, 4) * int(round(SAMPLES_PER_CYCLE))
        for length in np.unique(span):
            chosen = rows[span == length]
            # the offset's polarity per phase: whichever the switching that started it left
            even = rng.uniform(0.3, 0.8, (chosen.size, 1, 1)) * rng.choice([-1.0, 1.0], (chosen.size, 3, 1))
            shape[chosen] = _unsymmetrical_flux(shape[chosen], even,
                                                flux_peak[chosen, None, None], linear[chosen],
                                                exponent[chosen, None, None], int(length))
    flux = flux_peak[:, None, None] * shape * (1.0 - np.exp(-t * 1000.0 / build_ms[:, None, None]))
    current = _core_law(flux, linear, exponent[:, None, None])
    names = np.array(FERRO_MODES)[mode]
    circuit = (rng.random(n) < FERRO_CIRCUIT_SHARE) & ("mode_index" not in draws.overrides)
    rows = np.flatnonzero(circuit)
    if rows.size:
        steady, period = _saturated_ferroresonance(rng, exponent[rows])
        current[rows] = steady * (1.0 - np.exp(-t[rows] * 1000.0 / build_ms[rows, None, None]))
        names[rows] = [_FERRO_PERIOD_MODES.get(int(p), "chaotic") for p in period]
        mode[rows] = np.select([period == 1, period == 2, period >= 3], [0, 1, 2], 3)
    current *= active_mask(inception)[:, None, :] * weight[:, :, None]
    current *= (peak_current / (np.abs(current).max(axis=(1, 2)) + 1e-12))[:, None, None]
    params = {
        "inception_ms": inception, "mode_index": mode.astype(np.float64),
        "mode": names, "model": np.where(circuit, "circuit", "mode_waveform"),
        "flux_peak_pu": flux_peak, "peak_current": peak_current, "core_exponent": exponent,
        "ferroresonant_phases": np.array(["".join("ABC"[k] for k in range(3) if row[k]) for row in participating]),
        "pulses_per_cycle": np.where((mode == 0) & ~circuit, np.where(unsymmetrical == 1.0, 1.0, 2.0), np.nan),
        "unsymmetrical": np.where(circuit, np.nan, unsymmetrical),
    }
    return _finish(current, draws, params, in_progress, timing)


#: characteristic orders h = 6k +- 1 up to the 49th (IEEE 519-2022 limits harmonics to the 50th)
_HARMONIC_ORDERS = (1, 5, 7, 11, 13, 17, 19, 23, 25, 29, 31, 35, 37, 41, 43, 47, 49)
#: share of non-linear load windows in which the load is switched off inside the window
SWITCH_OFF_SHARE = 0.25


def rectifier_current(pulse: np.ndarray, connection: np.ndarray, firing_deg: np.ndarray,
                      overlap_deg: np.ndarray, imbalance: np.ndarray, phase0: np.ndarray,
                      start_ms: np.ndarray) -> np.ndarray:
    """(n, 3, T) steady rectifier line current per unit of its fundamental (see module docstring),
    phase A at angle phase0 at the switching instant start_ms. A bridge behind a delta-wye
    transformer adds (s_h - h) 30 deg = -k 180 deg to harmonic h = 6k +- 1: the 5th, 7th, 17th and
    19th reverse, the 11th, 13th, 23rd, 25th do not."""
    mu = np.deg2rad(overlap_deg)
    # phase of phase A's fundamental at t = 0 (the window start), delayed by alpha + mu / 2
    base = phase0 - OMEGA * start_ms / 1000.0 - np.deg2rad(firing_deg) - mu / 2.0
    twelve = pulse == 12.0
    delta = connection == 1.0
    weight_wye = np.where(twelve, (1.0 + imbalance) / 2.0, np.where(delta, 0.0, 1.0))
    weight_delta = np.where(twelve, (1.0 - imbalance) / 2.0, np.where(delta, 1.0, 0.0))
    coefficients = np.zeros((pulse.shape[0], 3, len(_HARMONIC_ORDERS)), dtype=np.complex128)
    for index, order in enumerate(_HARMONIC_ORDERS):
        sequence = 1.0 if order % 6 == 1 else -1.0
        reduction = 1.0 if order == 1 else np.abs(np.sinc(order * mu / (2.0 * np.pi)))
        delta_sign = np.cos((sequence - order) * np.pi / 6.0).round()
        magnitude = sequence * reduction / order * (weight_wye + delta_sign * weight_delta)
        coefficients[:, :, index] = magnitude[:, None] * np.exp(
            1j * order * (base[:, None] + PHASE_OFFSETS[None, :]))
    return harmonic_sum(coefficients, _HARMONIC_ORDERS)


def non_linear_load_switching(draws: Draws) -> tuple[np.ndarray, dict]:
    """Rectifier load switched inside the zone (module docstring). Switched on, its DC current rises
    with the DC circuit's time constant L_d / R_d (0.5-20 ms, log-uniform); switched off
    (SWITCH_OFF_SHARE of the windows started inside the window), the load current flows from the
    window start and falls to zero with the same kind of time constant (load rejection and
    energisation are both switching events of a converter load: Arrillaga & Watson, "Power System
    Harmonics"; Mohan, Undeland, Robbins, "Power Electronics", DC-side L-R time constant). Already
    running (in progress): steady from before the window."""
    kind = "non_linear_load_switching"
    n, rng = draws.n, draws.rng
    inception, in_progress, timing = _event_start(draws, kind)
    off = draws.take("switch_off", ((rng.random(n) < SWITCH_OFF_SHARE) & ~in_progress).astype(float)) == 1.0
    off &= ~in_progress
    load = _draw(draws, kind, "load_current")
    pulse = _draw(draws, kind, "pulse_number")
    connection = _draw(draws, kind, "transformer_connection")
    firing = _draw(draws, kind, "firing_angle_deg")
    overlap = _draw(draws, kind, "commutation_overlap_deg")
    rise_ms = _draw(draws, kind, "rise_time_ms")
    imbalance = _draw(draws, kind, "bridge_imbalance")
    phase0 = rng.uniform(0.0, 2.0 * np.pi, n)
    t = elapsed_s(inception)[:, None, :]
    event = rectifier_current(pulse, connection, firing, overlap, imbalance, phase0, inception)
    rising = (1.0 - np.exp(-t * 1000.0 / rise_ms[:, None, None])) * active_mask(inception)[:, None, :]
    falling = np.exp(-t * 1000.0 / rise_ms[:, None, None])  # 1 before the switching instant
    envelope = np.where(off[:, None, None], falling, rising)
    event *= load[:, None, None] * envelope
    params = {
        "inception_ms": inception, "load_current": load, "pulse_number": pulse,
        "switch_off": off.astype(np.float64), "action": np.where(off, "off", np.where(in_progress, "running", "on")),
        "transformer_connection": connection,
        "connection": np.where(pulse == 12.0, "wye-wye + delta-wye",
                               np.array(RECTIFIER_CONNECTIONS)[connection.astype(int)]),
        "firing_angle_deg": firing, "commutation_overlap_deg": overlap, "rise_time_ms": rise_ms,
        "bridge_imbalance": imbalance,
    }
    return _finish(event, draws, params, in_progress, timing)


TRANSIENT_SIMULATORS = {
    "capacitor_switching": capacitor_switching,
    "external_fault_ct_saturation": external_fault_ct_saturation,
    "ferroresonance": ferroresonance,
    "magnetising_inrush": magnetising_inrush,
    "non_linear_load_switching": non_linear_load_switching,
    "sympathetic_inrush": sympathetic_inrush,
}
