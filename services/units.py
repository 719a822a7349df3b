"""Amplitude in stated units: a recording's currents brought to the model's window unit.

The window unit is the data set's (docs/contracts.md, "Waveforms"): differential current in kA on the
public data set's 500 MVA, 230 kV system (Bera, Isik, Kumar, IEEE DataPort 2020,
DOI 10.21227/1d1w-q940), whose rated (base) current is
I_base = S_base / (sqrt(3) * V_base,LL) = 500 MVA / (sqrt(3) * 230 kV) = 1.2551 kA
(the three-phase per-unit base, e.g. Grainger & Stevenson, *Power System Analysis*, 1994, ch. 2;
https://en.wikipedia.org/wiki/Per-unit_system#Three-phase).

A recording of another unit is compared on its own rating, in per unit of its rated current I_r:
per unit = x_A / I_r, then window = per unit * 1.2551 kA. So a 1.5 kA record of a 1.2 kA
transformer (1.25 pu) becomes a 1.57 kA window: an event of the same severity as in the data set,
inside the amplitude range the unknown detector knows. The classifier itself is amplitude-free
(services.model.make_scale_invariant); the unit matters for the unknown detector's amplitude range
and for what the pages say about the current.

Units a caller can name: "window" (already kA on the reference system: the default for `.npy`,
CSV/text and JSON waveforms, which is the data set's own format), "A", "kA" (with the unit's
rated current in amperes, default the reference's 1255.1 A) and "pu" (per unit of the unit's own
rating, which needs no rating). A COMTRADE record states its unit in the `.cfg`
(services.comtrade_ingest converts A, kA and mA to amperes, primary side by default): the rating
must be on the same side as the values (primary amperes, or the CT secondary's for a record read
on the secondary side).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, replace

import numpy as np

from services.waveform import REFERENCE_RATED_CURRENT_KA, WaveformError

REFERENCE_POWER_MVA = 500.0
REFERENCE_VOLTAGE_KV = 230.0
#: the reference system's rated current in amperes (the default rating of a record in A or kA)
REFERENCE_RATED_CURRENT_A = REFERENCE_RATED_CURRENT_KA * 1000.0
#: ratings accepted (amperes): below 1 A or above 100 kA is a typing or unit mistake
MIN_RATED_CURRENT_A = 1.0
MAX_RATED_CURRENT_A = 100_000.0
UNITS = ("window", "A", "kA", "pu")
DEFAULT_UNIT = "window"

_UNIT_NAMES = {
    "window": "window", "dataset": "window", "data set": "window", "data-set": "window", "reference": "window",
    "ka reference": "window", "ka on reference": "window",
    "a": "A", "amp": "A", "amps": "A", "ampere": "A", "amperes": "A",
    "ka": "kA", "kiloampere": "kA", "kiloamperes": "kA",
    "pu": "pu", "p.u.": "pu", "p.u": "pu", "per unit": "pu", "per-unit": "pu",
}


class UnitError(WaveformError):
    """A unit or rated current that cannot be used; the message says what is accepted."""


@dataclass(frozen=True)
class UnitConversion:
    """How a recording's values became window values (window = factor * recorded)."""

    unit: str  # units of the recorded values: one of UNITS
    rated_current_a: float | None  # rating used for A/kA; None for "window" and "pu"
    rating_source: str  # "given", "default" (the reference's 1255.1 A) or "not used"
    factor: float  # window value per recorded value
    peak_recorded: float | None = None  # largest |value| of the recording, in its own unit
    source: str = "default"  # where the unit came from: "given", "default", "COMTRADE .cfg"
    note: str | None = None  # e.g. a unit given by the user that the record's own unit overrode

    @property
    def peak_per_unit(self) -> float | None:
        """The recording's peak in per unit of the unit's rated current."""
        if self.peak_recorded is None:
            return None
        return self.peak_recorded * self.factor / REFERENCE_RATED_CURRENT_KA

    @property
    def peak_window(self) -> float | None:
        return None if self.peak_recorded is None else self.peak_recorded * self.factor

    def _details(self) -> dict:
        return {**asdict(self), "peak_per_unit": self.peak_per_unit, "peak_window_ka": self.peak_window}

    def to_dict(self) -> dict:
        """Plain JSON, with the peaks and the one-line summary."""
        details = self._details()
        return {**details, "summary": summary_of(details)}

    def summary(self) -> str:
        """One line for status lines, the API and the CLI, e.g.
        '1.5 kA record of a 1.2 kA unit = 1.25 pu; analysed as 1.57 kA on the data set's 1.2551 kA base'."""
        return summary_of(self._details())


def summary_of(details: dict) -> str:
    """`UnitConversion.summary` from its `to_dict()` (what a browser store keeps)."""
    text = _summary_text(details)
    return f"{text} ({details['note']})" if details.get("note") else text


def _summary_text(details: dict) -> str:
    unit, rating = details["unit"], details.get("rated_current_a")
    peak, pu, window = details.get("peak_recorded"), details.get("peak_per_unit"), details.get("peak_window_ka")
    base = f"the data set's {REFERENCE_RATED_CURRENT_KA:g} kA base (500 MVA, 230 kV)"
    if unit == "window":
        text = f"values taken as kA on {base}"
        if peak is not None:
            text += f"; peak {_number(peak)} kA = {_number(pu)} pu"
        return text
    if unit == "pu":
        text = f"values in per unit of the unit's rating, analysed on {base}"
        if peak is not None:
            text += f"; peak {_number(peak)} pu = {_number(window)} kA on that base"
        return text
    rating_text = _current(rating)
    assumed = ("; no rating given: the data set's 1255.1 A assumed"
               if details.get("rating_source") == "default" else "")
    if peak is not None:
        return (f"{_number(peak)} {unit} record of a {rating_text} unit = {_number(pu)} pu; analysed as "
                f"{_number(window)} kA on {base}{assumed}")
    return f"{unit} record of a {rating_text} unit, analysed in per unit on {base}{assumed}"


def _number(value: float | None) -> str:
    if value is None or not math.isfinite(value):
        return "?"
    return f"{value:.4g}"


def _current(amperes: float | None) -> str:
    if amperes is None:
        return "?"
    return f"{amperes / 1000.0:.4g} kA" if amperes >= 1000.0 else f"{amperes:.4g} A"


def normalise_unit(unit: str | None, *, default: str = DEFAULT_UNIT) -> str:
    """One of UNITS from what a user typed ("A", "amps", "kA", "p.u.", "window", ...); None: `default`."""
    if unit is None or (isinstance(unit, str) and not unit.strip()):
        return default
    if not isinstance(unit, str):
        raise UnitError(f"unit must be text, one of {', '.join(UNITS)}; got {type(unit).__name__}")
    key = " ".join(unit.strip().lower().replace("_", " ").split())
    if key in _UNIT_NAMES:
        return _UNIT_NAMES[key]
    raise UnitError(f"unknown unit {unit[:40]!r}: use A or kA (with the unit's rated current), pu (per unit of its "
                    "rating) or window (already kA on the data set's 500 MVA, 230 kV system)")


def check_rated_current(rated_current_a: object) -> float:
    """The rated current in amperes as a float, or UnitError saying what is wrong."""
    if isinstance(rated_current_a, bool):
        raise UnitError(f"rated current must be a number of amperes, got {rated_current_a!r}")
    if isinstance(rated_current_a, str):
        text = rated_current_a.strip()
        try:
            rated_current_a = float(text)
        except ValueError:
            raise UnitError(f"rated current {text[:40]!r} is not a number; give the unit's rated current in amperes, "
                            "e.g. 1200") from None
    try:
        value = float(rated_current_a)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise UnitError(f"rated current must be a number of amperes, got {str(rated_current_a)[:40]!r}") from None
    if math.isnan(value) or math.isinf(value):
        raise UnitError("rated current must be a finite number of amperes (got NaN or infinity)")
    if value <= 0:
        raise UnitError(f"rated current must be positive, got {value:g} A")
    if not MIN_RATED_CURRENT_A <= value <= MAX_RATED_CURRENT_A:
        raise UnitError(f"rated current {value:g} A is outside {MIN_RATED_CURRENT_A:g} A to "
                        f"{MAX_RATED_CURRENT_A / 1000:g} kA; give it in amperes (1.2 kA is 1200)")
    return value


def conversion_for(unit: str | None = None, rated_current_a: object = None, *,
                   default_unit: str = DEFAULT_UNIT, unit_source: str | None = None) -> UnitConversion:
    """The conversion of a recording in `unit` of a unit rated `rated_current_a` amperes.

    A/kA without a rating use the reference's 1255.1 A (so A become kA, as in the data set);
    "pu" and "window" need none (a rating given with them is not used). UnitError if invalid.
    """
    name = normalise_unit(unit, default=default_unit)
    source = unit_source or ("default" if unit is None or not str(unit).strip() else "given")
    if name in ("window", "pu"):
        if rated_current_a is not None and not (isinstance(rated_current_a, str) and not rated_current_a.strip()):
            check_rated_current(rated_current_a)  # still refuse nonsense
        factor = 1.0 if name == "window" else REFERENCE_RATED_CURRENT_KA
        return UnitConversion(name, None, "not used", factor, source=source)
    if rated_current_a is None or (isinstance(rated_current_a, str) and not rated_current_a.strip()):
        rating, rating_source = REFERENCE_RATED_CURRENT_A, "default"
    else:
        rating, rating_source = check_rated_current(rated_current_a), "given"
    to_amperes = 1000.0 if name == "kA" else 1.0
    factor = to_amperes / rating * REFERENCE_RATED_CURRENT_KA
    return UnitConversion(name, rating, rating_source, factor, source=source)


def convert(x: np.ndarray, unit: str | None = None, rated_current_a: object = None, *,
            default_unit: str = DEFAULT_UNIT, unit_source: str | None = None, note: str | None = None
            ) -> tuple[np.ndarray, UnitConversion]:
    """`to_window_units` and the conversion used (with the recording's peak, for the summary)."""
    conversion = conversion_for(unit, rated_current_a, default_unit=default_unit, unit_source=unit_source)
    array = np.asarray(x)
    finite = array[np.isfinite(array)] if array.size else array
    peak = float(np.abs(finite).max()) if finite.size else None
    conversion = replace(conversion, peak_recorded=peak, note=note)
    if conversion.factor == 1.0:
        return np.asarray(x, dtype=np.float32), conversion
    return (np.asarray(x, dtype=np.float64) * conversion.factor).astype(np.float32), conversion


def to_window_units(x: np.ndarray, *, unit: str | None = DEFAULT_UNIT, rated_current_a: float | None = None
                    ) -> np.ndarray:
    """Values of a recording in `unit` ("window", "A", "kA", "pu") as window values (float32):
    kA on the data set's 500 MVA, 230 kV reference, scaled by the unit's rating (per unit x 1.2551)."""
    return convert(x, unit, rated_current_a)[0]


#: where a conversion's unit may have come from (UnitConversion.source)
UNIT_SOURCES = ("default", "given", "COMTRADE .cfg", "assumed: the .cfg names no unit")


def checked_conversion(details: object, window: np.ndarray) -> UnitConversion:
    """`UnitConversion.to_dict()` as a browser sent it back, re-derived rather than trusted.

    Only the unit, the rating and where they came from are read (each checked); the factor is
    computed again from them and the peaks from `window` (the checked window values), so a forged
    factor, peak or summary cannot reach the history. UnitError when a field is not acceptable."""
    if not isinstance(details, dict):
        raise UnitError("the stored unit conversion is not an object; upload the recording again")
    unit, rating, source, note = (details.get(key) for key in ("unit", "rated_current_a", "source", "note"))
    if unit not in UNITS or source not in UNIT_SOURCES:
        raise UnitError("the stored unit conversion names an unknown unit or source; upload the recording again")
    if note is not None and (not isinstance(note, str) or len(note) > 200
                             or any(ord(char) < 32 for char in note)):
        raise UnitError("the stored unit conversion's note is not short text; upload the recording again")
    if unit in ("window", "pu"):
        rating = None
    elif details.get("rating_source") != "given":
        rating = None  # the default rating: conversion_for uses the reference's
    conversion = conversion_for(unit, rating, unit_source=source)
    values = np.asarray(window, dtype=np.float64)
    peak = float(np.abs(values).max()) / conversion.factor if values.size else None
    return replace(conversion, peak_recorded=peak, note=note)


def comtrade_unit(units_text: str) -> str | None:
    """The unit of a COMTRADE window's `units` text ("A primary", "pu", "units as recorded"), or None."""
    head = (units_text or "").strip().split(" ")[0]
    return {"A": "A", "pu": "pu"}.get(head)
