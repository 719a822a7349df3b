"""Amplitude in stated units: recordings in A, kA or per unit brought to the window unit by the
protected unit's rating (services.units), through the ingest paths and the unknown detector."""

from __future__ import annotations

import io
import math
import os
from pathlib import Path

import numpy as np
import pytest

from services.ingest import load_waveform_source, parse_uploaded_files
from services.units import (
    REFERENCE_RATED_CURRENT_A,
    REFERENCE_RATED_CURRENT_KA,
    UnitError,
    check_rated_current,
    conversion_for,
    convert,
    normalise_unit,
    to_window_units,
)

ROOT = Path(__file__).resolve().parents[1]
ARTIFACTS = Path(os.environ.get("GEM_ARTIFACTS_DIR") or ROOT / "artifacts")
FAULT = "internal_power_transformer_internal_faults_Class1"


def _csv(wave: np.ndarray) -> bytes:
    time = np.arange(wave.shape[1]) / 10_000.0
    rows = "\n".join(f"{t:.4f},{a:.6g},{b:.6g},{c:.6g}" for t, a, b, c in zip(time, *wave, strict=True))
    return ("time,Ia,Ib,Ic\n" + rows).encode()


def _npy(wave: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, wave.astype(np.float32))
    return buffer.getvalue()


def test_unit001_reference_rating_is_the_data_sets_base_current():
    # I_base = S / (sqrt(3) V) = 500 MVA / (sqrt(3) x 230 kV)
    assert abs(REFERENCE_RATED_CURRENT_KA - 500e6 / (math.sqrt(3) * 230e3) / 1e3) < 1e-4
    assert abs(REFERENCE_RATED_CURRENT_A - 1255.1) < 0.05


def test_unit002_a_1_5_ka_record_of_a_1_2_ka_unit_is_1_25_pu():
    x = np.array([[1.5, -1.5, 0.3]])
    window, conversion = convert(x, "kA", 1200.0)
    assert conversion.peak_per_unit == pytest.approx(1.25)
    np.testing.assert_allclose(window, x * 1.25 / 1.5 * REFERENCE_RATED_CURRENT_KA, rtol=1e-6)
    assert "1.5 kA record of a 1.2 kA unit = 1.25 pu" in conversion.summary()
    # the same record in amperes, and in per unit, lands on the same window
    np.testing.assert_allclose(to_window_units(x * 1000.0, unit="A", rated_current_a=1200.0), window, rtol=1e-6)
    np.testing.assert_allclose(to_window_units(x / 1.2, unit="pu"), window, rtol=1e-6)


def test_unit003_defaults_window_unchanged_amperes_become_ka():
    x = np.array([[0.5, -2.0]], dtype=np.float32)
    window, conversion = convert(x)
    np.testing.assert_array_equal(window, x)
    assert conversion.unit == "window" and conversion.source == "default" and conversion.rated_current_a is None
    amperes, conversion = convert(x * 1000.0, "A")
    np.testing.assert_allclose(amperes, x, rtol=1e-6)
    assert conversion.rating_source == "default" and "1255.1 A assumed" in conversion.summary()
    # a rating given with a window-unit recording is checked but not used
    assert conversion_for("window", 1200.0).factor == 1.0


@pytest.mark.parametrize("text, unit", [("A", "A"), ("amps", "A"), (" KA ", "kA"), ("p.u.", "pu"),
                                        ("per unit", "pu"), ("Window", "window"), (None, "window"), ("", "window")])
def test_unit004_unit_names_are_read_leniently(text, unit):
    assert normalise_unit(text) == unit


@pytest.mark.parametrize("rating, message", [
    (0, "must be positive"), (-1200, "must be positive"), (float("nan"), "finite"), (float("inf"), "finite"),
    (0.5, "outside 1 A to 100 kA"), (2e5, "outside 1 A to 100 kA"), ("abc", "not a number"),
    (True, "number of amperes"), ([1200], "number of amperes"),
])
def test_unit005_bad_ratings_are_refused_with_what_is_wrong(rating, message):
    with pytest.raises(UnitError, match=message):
        conversion_for("A", rating)
    with pytest.raises(ValueError, match=message):  # UnitError is a ValueError (and a WaveformError)
        check_rated_current(rating)


def test_unit006_unknown_unit_names_what_is_accepted():
    with pytest.raises(UnitError, match="use A or kA"):
        normalise_unit("volts")


def test_unit007_uploads_and_files_convert_and_say_so(tmp_path):
    wave = np.sin(np.linspace(0, 8 * np.pi, 726))[None, :] * np.array([[1500.0], [-800.0], [300.0]])
    loaded = parse_uploaded_files([("relay.csv", _csv(wave))], rated_current_a=1200, unit="A")
    np.testing.assert_allclose(loaded.waveform, wave / 1200.0 * REFERENCE_RATED_CURRENT_KA, rtol=1e-4, atol=1e-6)
    assert loaded.units.unit == "A" and loaded.summary is not None and "= 1.25 pu" in loaded.summary
    # a plain .npy is in the window unit by default, and says nothing unless a unit was given
    plain = parse_uploaded_files([("w.npy", _npy(wave / 1000.0))])
    np.testing.assert_allclose(plain.waveform, wave / 1000.0, rtol=1e-6)
    assert plain.summary is None and plain.units.unit == "window" and "peak 1.5 kA" in plain.units_summary
    (tmp_path / "w.csv").write_bytes(_csv(wave))
    from_disk = load_waveform_source(tmp_path / "w.csv", unit="kA", rated_current_a="1200")
    np.testing.assert_allclose(from_disk.waveform, wave * 1000.0 / 1200.0 * REFERENCE_RATED_CURRENT_KA, rtol=1e-4)
    with pytest.raises(UnitError, match="relay.csv: rated current must be positive"):
        parse_uploaded_files([("relay.csv", _csv(wave))], rated_current_a=-5, unit="A")


def test_unit008_a_1_5_ka_record_is_not_unknown_for_its_amplitude_once_converted():
    """The issue's case: a fault recorded in amperes (peak 1.5 kA) on a 1.2 kA transformer."""
    from services.inference import get_predictor
    from services.simulation import simulate_event

    window, _ = simulate_event(FAULT, 11)
    record = window / np.abs(window).max() * 1500.0  # amperes
    predictor = get_predictor(ARTIFACTS)
    raw = predictor.predict(record.astype(np.float32))
    assert raw.unknown and "amplitude too large" in raw.unknown_reason  # amperes read as kA
    loaded = parse_uploaded_files([("relay.csv", _csv(record))], rated_current_a=1200.0, unit="A")
    converted = predictor.predict(loaded.waveform)
    assert not (converted.unknown_reason or "").startswith("amplitude")
    assert converted.label == raw.label  # the classifier itself is amplitude-free
