"""Signal analytics of one 3-phase window, as a protection engineer reads a fault record.

`compute_analytics(waveform) -> Analytics`: per phase and per one-cycle window sliding every 1 ms
(`services.analytics.phasors`: least-squares DFT with exact 60 Hz kernels over 167 samples, no
resampling), the fundamental phasor (RMS magnitude, angle), harmonics 2-15 (RMS magnitude and ratio
to the fundamental), THD, true RMS over one cycle, the DC component and its decay time constant;
symmetrical components of the fundamental; event inception and clearing from the signal itself
(`services.analytics.events`); and the key figures an engineer notes. Pure numpy, no Dash.

Sources:
- phasors by one-cycle DFT: Phadke & Thorp, "Computer Relaying for Power Systems", 2nd ed. (2009),
  ch. 4; RMS magnitudes and angles as in IEEE C37.118.1-2011; sample-rate and record conventions of
  fault records: IEEE C37.111-2013 (COMTRADE).
- symmetrical components: C. L. Fortescue, "Method of symmetrical co-ordinates applied to the
  solution of polyphase networks", AIEE Trans. 37 (1918); I0 = (Ia+Ib+Ic)/3,
  I1 = (Ia + a Ib + a^2 Ic)/3, I2 = (Ia + a^2 Ib + a Ic)/3, a = exp(j 120 deg).
- THD = sqrt(sum_{h=2..15} I_h^2) / I_1 (IEEE 519-2014 definition, here truncated at the 15th).
- harmonic restraint of transformer differential relays: IEEE C37.91-2008 (inrush and
  overexcitation); typical settings 15-20 % of the fundamental for the 2nd harmonic (inrush) and
  30-35 % for the 5th (overexcitation): Behrendt, Fischer, Labuschagne, "Considerations for Using
  Harmonic Blocking and Harmonic Restraint Techniques on Transformer Differential Relays", SEL,
  WPRC 2006 (the SEL-387 defaults PCT2 = 15 %, PCT5 = 35 %).
- DC offset decaying with tau = X / (omega R): Blackburn & Domin, "Protective Relaying", 4th ed., ch. 4.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from services.analytics.events import event_samples
from services.analytics.phasors import MAX_HARMONIC, STEP_SAMPLES, WINDOW_SAMPLES, sliding_phasors
from services.waveform import PHASES, SAMPLE_RATE_HZ, SYSTEM_FREQUENCY_HZ

__all__ = ["Analytics", "compute_analytics", "SECOND_HARMONIC_RESTRAINT", "FIFTH_HARMONIC_RESTRAINT",
           "RESTRAINT_RANGES", "MAX_HARMONIC", "METHOD"]

#: typical restraint/blocking thresholds (ratio to the fundamental), the lower end of the usual range
SECOND_HARMONIC_RESTRAINT = 0.15
FIFTH_HARMONIC_RESTRAINT = 0.35
#: the ranges quoted for them (IEEE C37.91-2008; Behrendt, Fischer, Labuschagne 2006)
RESTRAINT_RANGES = {2: (0.15, 0.20), 5: (0.30, 0.35)}
METHOD = (f"least-squares DFT with exact {SYSTEM_FREQUENCY_HZ:g} Hz kernels (DC, ramp, harmonics 1-{MAX_HARMONIC}) "
          f"over {WINDOW_SAMPLES} samples (one cycle is {SAMPLE_RATE_HZ / SYSTEM_FREQUENCY_HZ:.2f}), "
          f"every {STEP_SAMPLES} samples; no resampling")
_A = np.exp(2j * np.pi / 3)
#: Fortescue's transform: rows give I0, I1, I2 from (Ia, Ib, Ic)
FORTESCUE = np.array([[1, 1, 1], [1, _A, _A ** 2], [1, _A ** 2, _A]]) / 3.0


@dataclass(frozen=True)
class Analytics:
    """The analytics of one window. Arrays are per phase (A, B, C) x window position; currents in
    the window's unit (kA), magnitudes RMS, angles in degrees referred to the record's first sample."""

    start_ms: np.ndarray  # (K,) start of each one-cycle window
    end_ms: np.ndarray  # (K,) its end (the relay's view at that instant)
    phasors: np.ndarray  # complex (3, K, 15): harmonic h at [..., h - 1]
    dc: np.ndarray  # (3, K) DC component at each window's centre
    rms: np.ndarray  # (3, K) true RMS over one cycle
    sequence: np.ndarray  # complex (3, K): I0, I1, I2 of the fundamental
    peak: np.ndarray  # (3,) largest |x| per phase
    peak_ms: np.ndarray  # (3,) when
    inception_ms: float | None
    clearing_ms: float | None
    event_position: int  # the window the key figures are read at (the first full cycle after inception)
    tau_ms: tuple[float | None, ...]  # DC decay time constant per phase, None when there is no decaying DC
    extra: dict[str, Any] = field(default_factory=dict)

    # -- derived per position ------------------------------------------------------------------
    @property
    def fundamental(self) -> np.ndarray:
        """(3, K) RMS magnitude of the fundamental."""
        return np.abs(self.phasors[..., 0])

    @property
    def angle_deg(self) -> np.ndarray:
        return np.degrees(np.angle(self.phasors[..., 0]))

    @property
    def harmonics(self) -> np.ndarray:
        """(3, K, 14) RMS magnitudes of harmonics 2..15."""
        return np.abs(self.phasors[..., 1:])

    @property
    def ratios(self) -> np.ndarray:
        """(3, K, 14) harmonics 2..15 over the fundamental (NaN where there is no fundamental)."""
        return _ratio(self.harmonics, self.fundamental[..., None])

    @property
    def thd(self) -> np.ndarray:
        return _ratio(np.sqrt((self.harmonics ** 2).sum(axis=-1)), self.fundamental)

    @property
    def sequence_magnitudes(self) -> dict[str, np.ndarray]:
        """|I0|, |I1|, |I2| and the ratios I2/I1, I0/I1 per position."""
        i0, i1, i2 = np.abs(self.sequence)
        return {"i0": i0, "i1": i1, "i2": i2, "i2_i1": _ratio(i2, i1), "i0_i1": _ratio(i0, i1)}

    def harmonic_ratio(self, order: int, position: int | None = None) -> np.ndarray:
        """(3,) ratio of harmonic `order` (2..15) to the fundamental at `position` (default: the event's)."""
        return self.ratios[:, self.event_position if position is None else position, order - 2]

    def key_figures(self) -> dict[str, Any]:
        """The figures an engineer notes: peak, DC offset and tau, 2nd/5th ratios, I2/I1, I0/I1, times.

        Read at the first full cycle after inception (relays restrain on that window), or at the
        first window when no inception is found. Harmonic ratios: the largest over the phases
        (cross-blocking schemes restrain all phases on any one)."""
        k = self.event_position
        worst = int(np.argmax(self.peak))
        dc_phase = int(np.argmax(np.abs(self.dc[:, k])))
        fundamental_peak = np.sqrt(2.0) * self.fundamental[dc_phase, k]
        sequence = self.sequence_magnitudes
        return {
            "peak_ka": _num(self.peak[worst]), "peak_phase": PHASES[worst], "peak_ms": _num(self.peak_ms[worst]),
            "dc_offset_ka": _num(self.dc[dc_phase, k]), "dc_phase": PHASES[dc_phase],
            "dc_offset_ratio": _num(_ratio(abs(self.dc[dc_phase, k]), fundamental_peak)),
            "tau_ms": self.tau_ms[dc_phase],
            "second_harmonic_ratio": _largest(self.harmonic_ratio(2)),
            "fifth_harmonic_ratio": _largest(self.harmonic_ratio(5)),
            "thd": _largest(self.thd[:, k]),
            "i2_i1": _num(sequence["i2_i1"][k]), "i0_i1": _num(sequence["i0_i1"][k]),
            "inception_ms": self.inception_ms, "clearing_ms": self.clearing_ms,
            "at_ms": [_num(self.start_ms[k]), _num(self.end_ms[k])],
        }

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON (5 significant digits; null where a ratio has no fundamental)."""
        ratios, thd, sequence = self.ratios, self.thd, self.sequence_magnitudes
        phases = {}
        for index, phase in enumerate(PHASES):
            phases[phase] = {
                "fundamental_rms": _list(self.fundamental[index]),
                "fundamental_angle_deg": _list(self.angle_deg[index]),
                "harmonics_rms": _list(self.harmonics[index]),
                "harmonic_ratios": _list(ratios[index]),
                "thd": _list(thd[index]), "rms": _list(self.rms[index]), "dc": _list(self.dc[index]),
                "peak": _num(self.peak[index]), "peak_ms": _num(self.peak_ms[index]), "tau_ms": self.tau_ms[index],
            }
        return {
            "method": METHOD, "sample_rate_hz": SAMPLE_RATE_HZ, "frequency_hz": SYSTEM_FREQUENCY_HZ,
            "window_samples": WINDOW_SAMPLES, "step_samples": STEP_SAMPLES,
            "units": "currents in the window's unit (kA); magnitudes RMS; angles in degrees at the record's first "
                     "sample; harmonics_rms and harmonic_ratios list orders 2 to 15",
            "start_ms": _list(self.start_ms), "end_ms": _list(self.end_ms),
            "phases": phases,
            "sequence": {key: _list(values) for key, values in sequence.items()},
            "inception_ms": self.inception_ms, "clearing_ms": self.clearing_ms,
            "event_position": self.event_position,
            "restraint_thresholds": {"second_harmonic": SECOND_HARMONIC_RESTRAINT,
                                     "fifth_harmonic": FIFTH_HARMONIC_RESTRAINT},
            "key_figures": self.key_figures(),
        }


def compute_analytics(waveform: Any) -> Analytics:
    """The analytics of a (3, N) window at 10 kHz on 60 Hz (N >= 167; the record is 726 samples)."""
    x = np.asarray(waveform, dtype=np.float64)
    if x.ndim != 2 or x.shape[0] != 3 or not np.isfinite(x).all():
        raise ValueError(f"need a finite (3, samples) waveform, got shape {x.shape}")
    series = sliding_phasors(x)
    start_ms = series.start / SAMPLE_RATE_HZ * 1000.0
    end_ms = (series.start + WINDOW_SAMPLES) / SAMPLE_RATE_HZ * 1000.0
    sequence = np.einsum("sp,pk->sk", FORTESCUE, series.phasors[..., 0])
    peak_index = np.abs(x).argmax(axis=1)
    inception, clearing = event_samples(x)
    position = _event_position(series.start, inception)
    first, last = _event_span(series.start, inception, clearing)
    peak = np.abs(x)[np.arange(3), peak_index]
    centre_ms = (series.start[first:last + 1] + WINDOW_SAMPLES / 2) / SAMPLE_RATE_HZ * 1000.0
    taus = tuple(_time_constant(series.dc[p, first:last + 1], centre_ms, 0.02 * peak[p]) for p in range(3))
    return Analytics(
        start_ms=start_ms, end_ms=end_ms, phasors=series.phasors, dc=series.dc, rms=series.rms, sequence=sequence,
        peak=peak, peak_ms=peak_index / SAMPLE_RATE_HZ * 1000.0,
        inception_ms=_ms(inception), clearing_ms=_ms(clearing), event_position=position, tau_ms=taus,
    )


def _event_position(starts: np.ndarray, inception: int | None) -> int:
    """The first window that starts at or after inception (the last one if none does; 0 without inception)."""
    if inception is None:
        return 0
    later = np.nonzero(starts >= inception)[0]
    return int(later[0]) if later.size else len(starts) - 1


def _event_span(starts: np.ndarray, inception: int | None, clearing: int | None) -> tuple[int, int]:
    """First and last window lying inside [inception, clearing) (the whole record's bounds when absent)."""
    first = _event_position(starts, inception)
    if clearing is None:
        return first, len(starts) - 1
    inside = np.nonzero(starts + WINDOW_SAMPLES <= clearing)[0]
    last = int(inside[-1]) if inside.size else first
    return first, max(first, last)


def _time_constant(dc: np.ndarray, centre_ms: np.ndarray, smallest: float) -> float | None:
    """Decay time constant (ms) of a DC component: a least-squares line through log|dc| over the
    windows where it keeps its sign and stays above 5 % of its largest value (at least 3 windows,
    spanning half a cycle); None when it does not decay (falls by less than 5 % over the span) or never reaches `smallest`
    (2 % of the phase's peak: no DC offset worth a time constant)."""
    if dc.size < 3:
        return None
    biggest = int(np.argmax(np.abs(dc)))
    level = abs(dc[biggest])
    if level <= max(smallest, 0.0):
        return None
    keep = (np.sign(dc) == np.sign(dc[biggest])) & (np.abs(dc) >= 0.05 * level)
    keep[:biggest] = False  # the decay starts at the largest value
    if keep.sum() < 3 or np.ptp(centre_ms[keep]) < 1000.0 / SYSTEM_FREQUENCY_HZ / 2:
        return None
    slope, _ = np.polyfit(centre_ms[keep], np.log(np.abs(dc[keep])), 1)
    if -slope * np.ptp(centre_ms[keep]) < -np.log(0.95):  # falls by less than 5 %: a standing DC
        return None
    return _num(-1.0 / slope)


def _ratio(numerator: Any, denominator: Any) -> Any:
    numerator, denominator = np.asarray(numerator, dtype=np.float64), np.asarray(denominator, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(denominator > 1e-9, numerator / np.where(denominator > 1e-9, denominator, 1.0), np.nan)


def _largest(values: np.ndarray) -> float | None:
    """The largest finite value (rounded), None when there is none."""
    values = np.asarray(values, dtype=np.float64)
    finite = values[np.isfinite(values)]
    return _num(finite.max()) if finite.size else None


def _num(value: Any) -> float | None:
    number = float(value)
    return float(f"{number:.5g}") if np.isfinite(number) else None


def _significant(values: np.ndarray, digits: int = 5) -> np.ndarray:
    """`values` rounded to `digits` significant digits, vectorised (JSON stays small)."""
    values = np.asarray(values, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        exponent = np.floor(np.log10(np.abs(np.where(values == 0.0, 1.0, values))))
        scale = 10.0 ** (digits - 1 - np.nan_to_num(exponent, nan=0.0, posinf=0.0, neginf=0.0))
        return np.round(values * scale) / scale


def _list(values: np.ndarray) -> list:
    """Rounded values as JSON lists (nested for 2-D), NaN as null."""
    rounded = _significant(values)
    finite = np.isfinite(rounded)
    if finite.all():
        return rounded.tolist()
    return np.where(finite, rounded, None).tolist()


def _ms(sample: int | None) -> float | None:
    return None if sample is None else round(sample / SAMPLE_RATE_HZ * 1000.0, 2)
