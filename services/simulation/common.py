"""Shared building blocks of every simulated window: time base, parameter table, draws, timing,
the standing differential current, noise and sampling jitter.

Units: every window is in kA on the 500 MVA, 230 kV reference system of the public data set
(Bera, Isik, Kumar, "Transients and Faults in Power Transformers and Phase Angle Regulators",
IEEE DataPort 2020, DOI 10.21227/1d1w-q940: PSCAD/EMTDC differential currents in kA), whose rated
current is `services.waveform.REFERENCE_RATED_CURRENT_KA` (1.2551 kA rms). Amplitudes below are
instantaneous peaks in kA unless a name says otherwise.

Every window is the sum of
- the standing differential current (`standing_current`), present before, during and after the
  event: balanced, load-proportional through a tap / CT-ratio mismatch, plus the unit's magnetising
  current. Source: Hayder, Schaerli, Feser, Schiel, "Universal Adaptive Differential Protection for
  Regulating Transformers", IEEE Trans. Power Delivery 23(2), 568-, 2008 (the CT ratios of a
  regulating transformer match one tap position only, so a load-proportional differential flows at
  the others, and the relay must tolerate it); IEEE C37.245-2018 (Guide for the Application of
  Protective Relaying for Phase-Shifting Transformers); M. Thompson (SEL), "Protection System for
  Phase-Shifting Transformers Improves Simplicity, Dependability, and Security": a tap changer
  unbalances ampere-turns by about 10 % in an ordinary transformer and far more on a PST's
  regulating core;
- the event itself (`faults`, `transients`), starting at the inception sample;
- white measurement noise and, in half of the windows, a small sampling-clock jitter.

Every parameter range is written once, as a `ParameterSpec` in a table of the module that uses it;
the same spec draws the random value, validates a user override and describes the dashboard form.
All functions work on a batch of `n` windows at once (numpy broadcasting over windows and phases);
no Python loop runs per window.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from services.waveform import (
    N_PHASES,
    N_SAMPLES,
    REFERENCE_RATED_CURRENT_KA,
    SAMPLE_RATE_HZ,
    SYSTEM_FREQUENCY_HZ,
)

DT_S = 1.0 / SAMPLE_RATE_HZ
OMEGA = 2.0 * np.pi * SYSTEM_FREQUENCY_HZ
T_S = np.arange(N_SAMPLES, dtype=np.float64) * DT_S
T_MS = T_S * 1000.0
WINDOW_MS = N_SAMPLES * DT_S * 1000.0
CYCLE_MS = 1000.0 / SYSTEM_FREQUENCY_HZ
#: phase rotation a = 1 at 120 degrees; positive-sequence set is (1, a^2, a)
A_OP = np.exp(2j * np.pi / 3)
POSITIVE_SEQUENCE = np.array([1.0, A_OP**2, A_OP], dtype=np.complex128)
PHASE_OFFSETS = np.array([0.0, -2.0 * np.pi / 3.0, 2.0 * np.pi / 3.0])
#: latest inception, as a fraction of the window (the event must be visible for a few cycles)
MAX_INCEPTION_FRACTION = 0.6
#: peak of the rated current of the reference system (kA)
RATED_PEAK_KA = np.sqrt(2.0) * REFERENCE_RATED_CURRENT_KA

# --- the data set's time protocol ----------------------------------------------------------------
#: Bera, Isik, Kumar (DataPort 2020) and Bera's dissertation (arXiv 2302.03826): each fault is
#: applied for 0.05 s (3 cycles) and then removed; inception is swept over about one cycle in
#: 1.38 ms steps near the start of the recorded window.
FAULT_DURATION_MS = 50.0
INCEPTION_STEP_MS = 1.38
#: the sweep: 13 steps of 1.38 ms (17.9 ms, about one cycle) from the first step; the start of
#: the sweep inside the window is not publicly documented; randomised over the first 1.5 ms
PROTOCOL_STEPS = 13
#: share of windows outside the protocol (later inception, other or no clearing): augmentation
AUGMENTED_TIMING_SHARE = 0.3
TIMINGS = ("protocol", "augmented", "in_progress")


@dataclass(frozen=True)
class ParameterSpec:
    """One physical parameter: its range (used for the random draw and for validating an override),
    its distribution, its form description and whether the dashboard form shows it."""

    name: str
    title: str
    unit: str
    low: float
    high: float
    default: float
    step: float
    dist: str = "uniform"  # uniform | log | int | choice | custom
    form: bool = True
    choices: tuple[float, ...] = ()

    def form_dict(self) -> dict:
        return {"name": self.name, "title": self.title, "unit": self.unit, "min": self.low,
                "max": self.high, "default": self.default, "step": self.step}

    def check(self, number: float) -> None:
        """ValueError naming the parameter when `number` is outside the spec."""
        if not np.isfinite(number) or not self.low <= number <= self.high:
            raise ValueError(
                f"parameter {self.name!r} = {number!r} is out of range [{self.low}, {self.high}]"
            )
        if self.dist in ("int", "choice") and number != round(number):
            raise ValueError(f"parameter {self.name!r} must be a whole number, got {number!r}")
        if self.choices and number not in self.choices:
            allowed = ", ".join(f"{c:g}" for c in self.choices)
            raise ValueError(f"parameter {self.name!r} must be one of {allowed}, got {number!r}")


INCEPTION = ParameterSpec("inception_ms", "Event inception", "ms", 0.0,
                          round(MAX_INCEPTION_FRACTION * WINDOW_MS, 2), 10.0, 0.1, dist="custom")

#: Standing differential current (fundamental peak, kA), log-uniform from negligible to several times
#: a weak (0.03-0.05 kA) fault: Hayder et al. 2008 and C37.245-2018 say it exists and grows with the
#: load and the tap; up to 0.3 kA, about a 15 % mismatch (a regulating range's end, uncompensated)
#: at 110 % load on the data set's base (rated peak 1.78 kA); its distribution over real units is
#: not publicly documented; randomised.
STANDING_SPECS = {
    "standing_current_ka": ParameterSpec("standing_current_ka", "Standing differential current",
                                         "kA", 0.0005, 0.3, 0.01, 0.0005, dist="log", form=False),
    "loading_percent": ParameterSpec("loading_percent", "Transformer loading", "%", 20.0, 110.0,
                                     80.0, 1.0, form=False),
    "noise_std_ka": ParameterSpec("noise_std_ka", "Measurement noise (rms)", "kA", 0.0002, 0.004,
                                  0.001, 0.0001, dist="log", form=False),
    "sampling_jitter_us": ParameterSpec("sampling_jitter_us", "Sampling-clock jitter (rms)", "us",
                                        0.0, 5.0, 0.0, 0.1, form=False),
}


class Draws:
    """Random parameter draws for a batch, where user overrides replace the random values.

    The random numbers are always drawn (so the stream, and every other parameter, is the same
    whether or not a value is overridden); an override then replaces the whole column.
    """

    def __init__(self, rng: np.random.Generator, n: int, overrides: Mapping[str, float],
                 relay_view: str | None = None, pooled_units: bool = False):
        self.rng = rng
        self.n = n
        self.overrides = dict(overrides)
        self.relay_view = relay_view
        #: draw each fault window's unit-specific physics (fault level, standing current, tap) as a
        #: random unit's, keeping the label: see services.simulation.faults.simulate_faults
        self.pooled_units = pooled_units

    def take(self, name: str, values: np.ndarray) -> np.ndarray:
        """`values`, or the override of `name` for every window."""
        if name in self.overrides:
            return np.full(self.n, float(self.overrides[name]))
        return values

    def spec(self, spec: ParameterSpec) -> np.ndarray:
        """Draw `spec` over its own range and distribution (one source for every range)."""
        rng, n = self.rng, self.n
        if spec.dist == "log":
            values = np.exp(rng.uniform(np.log(spec.low), np.log(spec.high), n))
        elif spec.dist == "int":
            values = rng.integers(int(spec.low), int(spec.high) + 1, n).astype(np.float64)
        elif spec.dist == "choice":
            values = np.asarray(spec.choices, dtype=np.float64)[rng.integers(0, len(spec.choices), n)]
        elif spec.dist == "uniform":
            values = rng.uniform(spec.low, spec.high, n)
        else:
            raise ValueError(f"{spec.name} has a custom draw")
        return self.take(spec.name, values)

    def inception_ms(self) -> tuple[np.ndarray, np.ndarray]:
        """(inception ms, augmented flag): the data set's sweep or, for 30 %, anywhere up to 60 %.

        Protocol (Bera et al. 2020; arXiv 2302.03826): one-cycle sweep in 1.38 ms steps from a
        start drawn in the first 1.5 ms. Augmentation: uniform over the first 60 % of the window.
        """
        rng, n = self.rng, self.n
        start = rng.uniform(0.3, 1.8, n)
        steps = rng.integers(0, PROTOCOL_STEPS, n)
        protocol = start + INCEPTION_STEP_MS * steps
        anywhere = rng.uniform(0.0, INCEPTION.high, n)
        augmented = rng.random(n) < AUGMENTED_TIMING_SHARE
        return self.take(INCEPTION.name, np.where(augmented, anywhere, protocol)), augmented


def harmonic_sum(coefficients: np.ndarray, orders: tuple[int, ...]) -> np.ndarray:
    """(n, 3, T) sum over h of Re[c_{n,k,h} e^{j h omega t}] for coefficients (n, 3, H): the
    steady-state waveform of given phasors, with no transcendental function per sample (a
    multiply-add per order on the precomputed e^{j h omega t}; deterministic summation order)."""
    out = np.zeros(coefficients.shape[:2] + (N_SAMPLES,))
    for index, order in enumerate(orders):
        rotation = _ROTATIONS.setdefault(order, np.exp(1j * order * OMEGA * T_S))
        c = coefficients[:, :, index, None]
        out += c.real * rotation.real[None, None, :]
        out -= c.imag * rotation.imag[None, None, :]
    return out


_ROTATIONS: dict[int, np.ndarray] = {}


def elapsed_s(start_ms: np.ndarray) -> np.ndarray:
    """(n, T) seconds since inception, 0 before it."""
    return np.maximum(T_S[None, :] - start_ms[:, None] / 1000.0, 0.0)


def active_mask(start_ms: np.ndarray) -> np.ndarray:
    """(n, T) boolean, True from the inception sample on."""
    return T_MS[None, :] >= start_ms[:, None]


# unit index used by the standing current: 0 power transformer, 1 ISPAR series, 2 ISPAR exciting
UNIT_INDEX = {"power_transformer": 0, "ispar_series": 1, "ispar_exciting": 2}
#: phase shift per tap step of the ISPAR (deg); not publicly documented for the data set's unit
DEG_PER_TAP_STEP = 2.5


def standing_current(draws: Draws, unit: np.ndarray, tap: np.ndarray) -> tuple[np.ndarray, dict]:
    """Balanced standing differential current (n, 3, T) of a loaded unit and its parameters.

    - Size: fundamental peak `standing_current_ka`, log-uniform 0.0005-0.3 kA (see STANDING_SPECS).
    - Mismatch part, proportional to the drawn load current: power transformer, an OLTC / CT ratio
      mismatch eps (differential = eps x load current, in phase with it: Blackburn & Domin,
      "Protective Relaying", ch. 9, CT ratio mismatch and tap changing in transformer differential
      protection; Hayder et al. 2008); ISPAR units, an uncompensated phase shift alpha between the
      two CT sets, differential = |1 - e^{j alpha}| x load current, in quadrature with it
      (IEEE C37.245-2018: the relay compensates the phase shift of the PAR, which varies with the
      tap). Its share in the total is randomised (not publicly documented).
    - Magnetising part: the unit's exciting current, odd harmonics of a saturating core (3rd only when
      no delta winding traps it, 5th, 7th; Blackburn & Domin ch. 9; IEEE C37.91-2021 on exciting
      current). The ISPAR exciting unit's grows with the tap / phase shift because its core is
      excited in proportion to the phase shift (Kramer & Ruff, "Transformers for phase angle
      regulation considering the selection of on-load tap-changers", IEEE Trans. Power Delivery
      13(2), 1998); the power transformer's and the series unit's do not depend on the tap.
    """
    n, rng = draws.n, draws.rng
    level = draws.spec(STANDING_SPECS["standing_current_ka"])
    loading = draws.spec(STANDING_SPECS["loading_percent"])
    load_peak = loading / 100.0 * RATED_PEAK_KA
    load_angle = np.deg2rad(rng.uniform(-35.0, 10.0, n))
    mismatch_raw = np.exp(rng.uniform(np.log(0.001), np.log(0.1), n)) * load_peak
    tap_share = np.where(unit == 2, 0.3 + 1.7 * np.abs(np.nan_to_num(tap)) / 16.0, 1.0)
    magnetising_raw = rng.uniform(0.002, 0.01, n) * RATED_PEAK_KA * tap_share
    shift_sign = np.where(rng.random(n) < 0.5, -1.0, 1.0)
    # mismatch phasor direction: along the load (ratio) or in quadrature (uncompensated shift)
    mismatch_dir = np.where(unit == 0, 0.0, shift_sign * np.pi / 2.0) + load_angle
    voltage_angle = rng.uniform(0.0, 2.0 * np.pi, n)
    phasor = (mismatch_raw * np.exp(1j * mismatch_dir)
              + magnetising_raw * np.exp(-1j * np.pi / 2.0))
    # the drawn level bounds each part: a mismatch in quadrature with the load can cancel the
    # magnetising current's fundamental, and scaling by the sum's magnitude would then blow both
    # parts (and the magnetising harmonics) up far beyond any standing current
    scale = level / np.maximum(np.abs(phasor), 0.5 * (mismatch_raw + magnetising_raw))
    mismatch = mismatch_raw * scale
    magnetising = magnetising_raw * scale
    third = np.where(rng.random(n) < 0.4, 0.0, rng.uniform(0.05, 0.4, n))
    fifth = rng.uniform(0.05, 0.25, n)
    seventh = rng.uniform(0.01, 0.1, n)

    # phasors at t = 0 of phase k: voltage angle v - k 120 deg; the mismatch along its direction,
    # the magnetising current lagging the voltage by 90 deg and peaking with the flux (odd orders)
    phase = (voltage_angle[:, None] + PHASE_OFFSETS[None, :])  # (n, 3)
    flux = phase - np.pi / 2.0
    orders = (1, 3, 5, 7)
    coefficients = np.stack([
        mismatch[:, None] * np.exp(1j * (phase + mismatch_dir[:, None])) + magnetising[:, None] * np.exp(1j * flux),
        (magnetising * third)[:, None] * np.exp(3j * flux),
        (magnetising * fifth)[:, None] * np.exp(5j * flux),
        (magnetising * seventh)[:, None] * np.exp(7j * flux),
    ], axis=2)
    wave = harmonic_sum(coefficients, orders)
    ratio = mismatch / load_peak
    is_pt = unit == 0
    params = {
        # the fundamental actually present (below the drawn level where the two parts partly cancel)
        "standing_current_ka": np.abs(phasor) * scale,
        "loading_percent": loading,
        "ratio_mismatch": np.where(is_pt, ratio, np.nan),
        "uncompensated_shift_deg": np.where(
            is_pt, np.nan, shift_sign * np.rad2deg(2.0 * np.arcsin(np.minimum(ratio / 2.0, 1.0)))),
        "standing_mismatch_ka": mismatch,
        "magnetising_ka": magnetising,
        "magnetising_h3": third, "magnetising_h5": fifth, "magnetising_h7": seventh,
    }
    return wave, params


def measurement(draws: Draws, wave: np.ndarray) -> tuple[np.ndarray, dict]:
    """White noise and, in half of the windows, sampling-clock jitter (first-order: x + dt x')."""
    n, rng = draws.n, draws.rng
    noise = draws.spec(STANDING_SPECS["noise_std_ka"])
    jitter_draw = rng.uniform(0.0, STANDING_SPECS["sampling_jitter_us"].high, n)
    jitter_us = draws.take("sampling_jitter_us", np.where(rng.random(n) < 0.5, 0.0, jitter_draw))
    offsets = rng.standard_normal((n, 1, N_SAMPLES)) * (jitter_us * 1e-6)[:, None, None]
    wave = wave + noise[:, None, None] * rng.standard_normal((n, N_PHASES, N_SAMPLES))
    rows = np.flatnonzero(jitter_us > 0.0)
    if rows.size:
        # sampled at t + dt instead of t: x(t + dt) = x(t) + dt x'(t) to first order
        wave[rows] += np.gradient(wave[rows], DT_S, axis=2) * offsets[rows]
    return wave, {"noise_std_ka": noise, "sampling_jitter_us": jitter_us}


def finish(event: np.ndarray, draws: Draws, unit: np.ndarray, tap: np.ndarray,
           params: dict) -> tuple[np.ndarray, dict]:
    """Event + standing current + measurement; the parameters of all three merged into `params`."""
    base, base_params = standing_current(draws, unit, tap)
    wave, measured = measurement(draws, event + base)
    params.update(base_params)
    params.update(measured)
    return wave, params


def to_float32(wave: np.ndarray) -> np.ndarray:
    """Final cast; rejects anything non-finite (a bug in a physics module, never silently kept)."""
    out = np.ascontiguousarray(wave, dtype=np.float32)
    if not np.isfinite(out).all():
        raise FloatingPointError("simulation produced NaN or Inf")
    return out
