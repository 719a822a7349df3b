"""COMTRADE records (IEEE C37.111) read into the model's window: formats, revisions, channel choice,
resampling, window placement, the refusals, and the upload/CLI paths that use them.

Every record is written here by a small COMTRADE writer from simulator windows
(`services.simulation.simulate_event`), so the window the reader should recover is known exactly.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import math
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import scipy.signal

from services.comtrade_ingest import (
    MAX_RECORD_BYTES,
    detect_onset,
    load_comtrade,
    parse_channel_spec,
    read_comtrade,
)
from services.ingest import (
    load_labelled_folder,
    load_waveform_file,
    load_waveform_source,
    parse_uploaded_files,
    parse_waveform_bytes,
)
from services.labels import LABELS
from services.simulation import simulate_event
from services.waveform import WaveformError

ROOT = Path(__file__).resolve().parents[1]
ARTIFACTS = Path(os.environ.get("GEM_ARTIFACTS_DIR") or ROOT / "artifacts")
START = dt.datetime(2024, 3, 1, 10, 15, 2, 250_000)
FAULT = "internal_power_transformer_internal_faults_Class4"
MARGIN = 600  # samples of background before the simulated window in 10 kHz records
TRIGGER_LEAD_MS = 25.0  # 1.5 cycles: where the reader puts the trigger in the window


# --- a small COMTRADE writer ----------------------------------------------------------------------

@dataclass(frozen=True)
class Channel:
    name: str
    ph: str = ""
    units: str = "A"
    primary: float = 1200.0
    secondary: float = 5.0
    ps: str = "P"
    offset: float = 0.0  # the cfg's b


def _stamp(moment: dt.datetime | None, revision: str) -> str:
    if moment is None:
        return ","
    date = moment.strftime("%m/%d/%y") if revision == "1991" else moment.strftime("%d/%m/%Y")
    return f"{date},{moment.strftime('%H:%M:%S.%f')}"


def write_comtrade(values: np.ndarray, channels: list[Channel], *, rate: float = 10_000.0, revision: str = "1999",
                   fmt: str = "ASCII", frequency: float = 60.0, trigger_ms: float | None = None,
                   status_channels: int = 2, rates: list[tuple[float, int]] | None = None,
                   ) -> tuple[bytes, bytes, np.ndarray]:
    """(.cfg bytes, .dat bytes, the a factor of each channel) for `values` (channels x samples).

    Integer formats store round((v - b) / a) with a = peak / 32000 (BINARY, ASCII) or / 2e9
    (BINARY32); FLOAT32 stores v with a = 1. NaN values are written as the missing-data code.
    """
    values = np.asarray(values, dtype=np.float64)
    n_analog, n = values.shape
    full_scale = {"BINARY32": 2e9}.get(fmt, 32000.0)
    peaks = np.nanmax(np.abs(values - np.array([c.offset for c in channels])[:, None]), axis=1)
    scales = np.array([float(f"{p / full_scale:.9g}") if fmt != "FLOAT32" and p > 0 else 1.0 for p in peaks])
    lines = [f"Substation Nord,T1 87T relay,{revision}" if revision != "1991" else "Substation Nord,T1 87T relay",
             f"{n_analog + status_channels},{n_analog}A,{status_channels}D"]
    for k, (channel, a) in enumerate(zip(channels, scales, strict=True)):
        fields = [k + 1, channel.name, channel.ph, "T1", channel.units, f"{a:.9g}", f"{channel.offset:g}", 0,
                  -32767, 32767]
        if revision != "1991":
            fields += [f"{channel.primary:g}", f"{channel.secondary:g}", channel.ps]
        lines.append(",".join(str(field) for field in fields))
    lines += [f"{k + 1},TRIP {k + 1},,T1,0" for k in range(n_analog, n_analog + status_channels)]
    segments = rates or [(rate, n)]
    lines += [f"{frequency:g}", str(len(segments))]
    end = 0
    for segment_rate, count in segments:
        end += count
        lines.append(f"{segment_rate:g},{end}")
    assert end == n
    trigger = START + dt.timedelta(milliseconds=trigger_ms) if trigger_ms is not None else None
    lines += [_stamp(START, revision), _stamp(trigger, revision), fmt]
    if revision != "1991":
        lines.append("1")
    if revision == "2013":
        lines += ["+1h,+1h", "0,0"]
    cfg = ("\r\n".join(lines) + "\r\n").encode("latin-1")

    times_us = np.concatenate([np.arange(count) / r for r, count in segments])
    times_us = np.round((times_us + np.repeat(np.cumsum([0.0] + [c / r for r, c in segments])[:-1],
                                              [c for _, c in segments])) * 1e6).astype(np.int64)
    offsets = np.array([c.offset for c in channels])[:, None]
    missing = np.isnan(values)
    status = (np.arange(n) >= n // 2).astype(int)  # a trip bit that changes half way
    if fmt == "ASCII":
        raw = np.round((np.nan_to_num(values) - offsets) / scales[:, None]).astype(np.int64).astype(str)
        raw[missing] = "99999"
        rows = [",".join([str(k + 1), str(times_us[k]), *raw[:, k], *([str(status[k])] * status_channels)])
                for k in range(n)]
        return cfg, ("\r\n".join(rows) + "\r\n").encode(), scales
    analog_type = {"BINARY": "<i2", "BINARY32": "<i4", "FLOAT32": "<f4"}[fmt]
    row = np.dtype([("n", "<u4"), ("t", "<u4"), ("a", analog_type, (n_analog,)),
                    ("s", "<u2", (math.ceil(status_channels / 16),))])
    table = np.zeros(n, dtype=row)
    table["n"], table["t"] = np.arange(1, n + 1), times_us
    if fmt == "FLOAT32":
        table["a"] = np.where(missing, np.nan, values).T
    else:
        raw = np.round((np.nan_to_num(values) - offsets) / scales[:, None])
        raw[missing] = {"BINARY": -32768, "BINARY32": -(2**31)}[fmt]
        table["a"] = raw.T
    if status_channels:
        table["s"][:, 0] = status * ((1 << status_channels) - 1)
    return cfg, table.tobytes(), scales


def to_cff(cfg: bytes, dat: bytes, fmt: str) -> bytes:
    """A 2013 combined file: CFG, INF, HDR and DAT sections (binary DAT with its byte count)."""
    dat_header = f"--- file type: DAT {fmt} ---" if fmt == "ASCII" else f"--- file type: DAT {fmt}: {len(dat)} ---"
    return (b"--- file type: CFG ---\r\n" + cfg + b"--- file type: INF ---\r\n\r\n--- file type: HDR ---\r\n"
            b"Recorded by the T1 differential relay.\r\n" + dat_header.encode() + b"\r\n" + dat)


PHASE_CHANNELS = [Channel("IdA", "A"), Channel("IdB", "B"), Channel("IdC", "C")]


# --- simulator windows in longer records ------------------------------------------------------------

def _source(label: str = FAULT, seed: int = 5, inception_ms: float = 30.0) -> np.ndarray:
    # an isolated bank (ringing below 1.2 kHz): a back-to-back one rings up to 4 kHz, above the
    # Nyquist frequency of the slower records these tests resample
    extra = {"back_to_back": 0} if label == "transient_capacitor_switching" else {}
    window, _ = simulate_event(label, seed, inception_ms=inception_ms, **extra)
    return window.astype(np.float64)


def _background_before(window: np.ndarray, inception_ms: float, samples: int, seed: int = 0) -> np.ndarray:
    """`samples` of the window's pre-event background continued back in time (60 Hz harmonics + noise)."""
    known = int(inception_ms * 10) - 5
    def design(t):
        columns = [np.ones_like(t)]
        for harmonic in (1, 3, 5, 7):
            columns += [np.cos(2 * np.pi * 60 * harmonic * t), np.sin(2 * np.pi * 60 * harmonic * t)]
        return np.stack(columns, axis=1)
    t = np.arange(window.shape[1]) / 1e4
    coefficients = np.linalg.lstsq(design(t[:known]), window[:, :known].T, rcond=None)[0]
    noise = float(np.std(window[:, :known] - (design(t[:known]) @ coefficients).T))
    before = (design(np.arange(-samples, 0) / 1e4) @ coefficients).T
    return before + np.random.default_rng(seed).normal(0.0, noise, before.shape)


def _record_10khz(window: np.ndarray, inception_ms: float, after: int = 300) -> np.ndarray:
    """MARGIN samples of background, the window, then `after` samples continuing it (odd reflection)."""
    tail = 2 * window[:, -1:] - window[:, -2:-after - 2:-1]
    return np.concatenate([_background_before(window, inception_ms, MARGIN), window, tail], axis=1)


def _upload(cfg: bytes, dat: bytes, stem: str = "fault") -> dict[str, bytes]:
    return {f"{stem}.cfg": cfg, f"{stem}.dat": dat}


def _trigger_for_window_at(first_sample: int) -> float:
    """The trigger time (ms from the record start) that makes the window start at `first_sample` (10 kHz)."""
    return first_sample / 10.0 + TRIGGER_LEAD_MS


# --- formats, revisions and the .cff container ------------------------------------------------------

FORMATS = [("1991", "ASCII"), ("1991", "BINARY"), ("1999", "ASCII"), ("1999", "BINARY"), ("1999", "BINARY32"),
           ("2013", "ASCII"), ("2013", "BINARY"), ("2013", "FLOAT32")]


@pytest.mark.parametrize(("revision", "fmt"), FORMATS)
def test_ctr001_window_at_10khz_is_recovered_in_every_format(revision, fmt):
    window = _source()
    record = _record_10khz(window, 30.0)
    cfg, dat, scales = write_comtrade(record, PHASE_CHANNELS, revision=revision, fmt=fmt,
                                      trigger_ms=_trigger_for_window_at(MARGIN))
    result = read_comtrade(_upload(cfg, dat))
    # integer formats quantise to a/2 per sample; float32 keeps 24 bits
    tolerance = scales[:, None] / 2 * 1.001 + 1e-6 * np.abs(window).max()
    assert result.waveform.dtype == np.float32 and result.waveform.shape == (3, 726)
    assert (np.abs(result.waveform - window) <= tolerance).all()
    assert result.placement == "trigger" and result.event_ms_in_window == TRIGGER_LEAD_MS
    assert result.window_start_ms == pytest.approx(MARGIN / 10.0)
    assert result.window_start_time == (START + dt.timedelta(milliseconds=MARGIN / 10)).isoformat(sep=" ")
    assert (result.channels, result.channel_numbers) == (("IdA", "IdB", "IdC"), (1, 2, 3))
    assert (result.revision, result.data_format, result.resampled) == (revision, fmt, False)
    assert (result.station, result.device) == ("Substation Nord", "T1 87T relay")
    assert result.record_ms == pytest.approx(record.shape[1] / 10.0)
    if revision == "1991":
        assert result.units == "A as recorded"
    else:
        assert result.units == "A primary"


def test_ctr002_raw_minus_one_of_a_1991_binary_file_is_a_value_not_missing_data():
    """The comtrade package reads raw -1 of 1991 BINARY files as missing; a record is full of them."""
    window = _source()
    record = _record_10khz(window, 30.0)
    cfg, dat, scales = write_comtrade(record, PHASE_CHANNELS, revision="1991", fmt="BINARY",
                                      trigger_ms=_trigger_for_window_at(MARGIN))
    raw = np.frombuffer(dat, dtype=np.dtype([("n", "<u4"), ("t", "<u4"), ("a", "<i2", (3,)), ("s", "<u2", (1,))]))
    assert (raw["a"] == -1).sum() > 0  # the case under test is in the file
    result = read_comtrade(_upload(cfg, dat))
    assert np.abs(result.waveform - window).max() <= scales.max()


@pytest.mark.parametrize("fmt", ["ASCII", "BINARY", "FLOAT32"])
def test_ctr003_single_cff_file_gives_the_same_window_as_the_pair(fmt):
    window = _source()
    record = _record_10khz(window, 30.0)
    cfg, dat, _ = write_comtrade(record, PHASE_CHANNELS, revision="2013", fmt=fmt,
                                 trigger_ms=_trigger_for_window_at(MARGIN))
    pair = read_comtrade(_upload(cfg, dat))
    single = read_comtrade({"fault.cff": to_cff(cfg, dat, fmt)})
    np.testing.assert_array_equal(single.waveform, pair.waveform)
    assert single.source == "fault.cff" and single.window_start_ms == pair.window_start_ms


def test_ctr004_time_stamps_without_fractional_seconds_and_companion_files_are_accepted():
    """The comtrade package crashes on '10:15:02' (no fraction); .hdr and .inf come along with records."""
    window = _source()
    record = _record_10khz(window, 30.0)
    cfg, dat, _ = write_comtrade(record, PHASE_CHANNELS, trigger_ms=_trigger_for_window_at(MARGIN))
    start, trigger = _stamp(START, "1999"), _stamp(START + dt.timedelta(milliseconds=85.0), "1999")
    cfg = cfg.replace(start.encode(), b"01/03/2024,10:15:02").replace(trigger.encode(), b"01/03/2024,10:15:02.085")
    result = read_comtrade({**_upload(cfg, dat), "fault.hdr": b"relay header", "fault.inf": b"[Public Record]"})
    # start 10:15:02.000 and trigger 85 ms later: the window starts 25 ms before the trigger
    assert result.window_start_ms == pytest.approx(60.0)
    assert result.window_start_time == "2024-03-01 10:15:02.060000"


# --- resampling -----------------------------------------------------------------------------------

PAD = 387  # 10 kHz samples on each side of the window: 726 + 2 * 387 = 1500, a whole number of samples at every rate


def _fundamental(x: np.ndarray) -> np.ndarray:
    """60 Hz phasor of each phase, fitted with a DC offset and a linear drift (decaying offsets)."""
    t = np.arange(x.shape[1]) / 1e4
    design = np.stack([np.cos(2 * np.pi * 60 * t), np.sin(2 * np.pi * 60 * t), np.ones_like(t), t], axis=1)
    coefficients = np.linalg.lstsq(design, x.T, rcond=None)[0]
    return coefficients[0] + 1j * coefficients[1]


@pytest.mark.parametrize("rate", [4800.0, 5000.0, 7680.0, 12800.0, 20000.0])
@pytest.mark.parametrize("label", [FAULT, "transient_capacitor_switching", "transient_magnetising_inrush"])
def test_ctr005_other_sample_rates_are_resampled_to_10khz_without_shift(rate, label):
    """A record at `rate` made by ideal (FFT) band-limited resampling of a simulator window.

    Tolerances: against the ideal band-limited answer the polyphase filter may differ only in its
    transition band near the lower Nyquist frequency: below 1 % of the window's RMS (0.3 % seen for
    capacitor switching, whose ringing reaches 4 kHz). Each phase's 60 Hz phasor must agree with the
    source within 0.2 % in magnitude and 0.05 degree in angle: one 10 kHz sample is 2.2 degrees at
    60 Hz, so the window is neither shifted nor distorted. At rates above 10 kHz nothing of the
    source is lost: within 0.5 % of its RMS (content near 5 kHz is attenuated by the anti-aliasing).
    """
    window = _source(label)
    padded = np.concatenate([2 * window[:, :1] - window[:, PAD:0:-1], window,
                             2 * window[:, -1:] - window[:, -2:-PAD - 2:-1]], axis=1)
    taper = np.ones(padded.shape[1])
    ramp = 0.5 - 0.5 * np.cos(np.pi * np.arange(250) / 250)
    taper[:250], taper[-250:] = ramp, ramp[::-1]  # periodic ends for the FFT, far from the window
    padded *= taper
    at_rate = scipy.signal.resample(padded, round(padded.shape[1] * rate / 1e4), axis=1)
    cfg, dat, _ = write_comtrade(at_rate, PHASE_CHANNELS, rate=rate, fmt="BINARY32", revision="2013",
                                 trigger_ms=_trigger_for_window_at(PAD))
    result = read_comtrade(_upload(cfg, dat))
    recovered = result.waveform.astype(np.float64)
    ideal = scipy.signal.resample(at_rate, padded.shape[1], axis=1)[:, PAD:PAD + 726]
    rms = np.sqrt(np.mean(window**2))
    assert result.resampled and result.original_rate_hz == rate
    assert result.window_start_ms == pytest.approx(PAD / 10.0)
    assert np.sqrt(np.mean((recovered - ideal) ** 2)) < 0.01 * rms
    source_phasor, recovered_phasor = _fundamental(window), _fundamental(recovered)
    assert np.abs(np.abs(recovered_phasor) / np.abs(source_phasor) - 1).max() < 0.002
    assert np.degrees(np.abs(np.angle(recovered_phasor / source_phasor))).max() < 0.05
    if rate > 1e4:
        assert np.sqrt(np.mean((recovered - window) ** 2)) < 0.005 * rms
    else:
        assert any(f"{rate / 1e3:g} kHz" in note for note in result.notes)


def test_ctr006_a_one_sample_shift_would_fail_the_phase_check():
    """The 0.05 degree bound of ctr005 is tight enough to catch a timing error of one sample."""
    window = _source()
    shifted = np.roll(window, 1, axis=1)
    angle = np.degrees(np.abs(np.angle(_fundamental(shifted) / _fundamental(window)))).max()
    assert angle > 1.0


def test_ctr007_multi_rate_record_uses_the_part_holding_the_trigger():
    window = _source()
    record = _record_10khz(window, 30.0)
    slow = record[:, :200:10]  # what a recorder keeps before switching to its fast rate
    values = np.concatenate([slow, record], axis=1)  # 20 samples at 1 kHz (20 ms), then 10 kHz
    cfg, dat, _ = write_comtrade(values, PHASE_CHANNELS, rates=[(1000.0, 20), (10000.0, record.shape[1])],
                                 trigger_ms=20.0 + _trigger_for_window_at(MARGIN))
    result = read_comtrade(_upload(cfg, dat))
    assert result.original_rate_hz == 10_000.0 and not result.resampled
    assert result.window_start_ms == pytest.approx(20.0 + MARGIN / 10.0)
    assert np.abs(result.waveform - window).max() < 1e-3 * np.abs(window).max()
    assert any("changes sample rate" in note for note in result.notes)


# --- channel choice and units ---------------------------------------------------------------------

def _distractors(n: int, rng: np.random.Generator) -> np.ndarray:
    t = np.arange(n) / 1e4
    return np.stack([(k + 1) * np.sin(2 * np.pi * 60 * t + k) + rng.normal(0, 0.01, n) for k in range(6)])


@pytest.mark.parametrize(
    "differential",
    [
        [Channel("IdA"), Channel("IdB"), Channel("IdC")],
        [Channel("I_diff_A"), Channel("I_diff_B"), Channel("I_diff_C")],
        [Channel("IOP1"), Channel("IOP2"), Channel("IOP3")],
        [Channel("87T Id", "A"), Channel("87T Id", "B"), Channel("87T Id", "C")],
        [Channel("DIFF L1", units="kA"), Channel("DIFF L2", units="kA"), Channel("DIFF L3", units="kA")],
    ],
    ids=["IdA", "I_diff_A", "IOP1", "ph-field", "L1-kA"],
)
def test_ctr008_differential_channels_are_found_among_others_and_put_in_phase_order(differential):
    window = _source()
    record = _record_10khz(window, 30.0)
    n = record.shape[1]
    others = _distractors(n, np.random.default_rng(3))
    # order in the file: a voltage, a winding current, a whole set of restraint currents and a 2nd-harmonic
    # channel (all named like differential-relay quantities), then the differential currents C, A, B
    channels = [Channel("VA", "A", "kV"), Channel("IA_HV", "A"), Channel("87T IrA", "A"), Channel("87T IrB", "B"),
                Channel("87T IrC", "C"), Channel("IdA_2h", "A"), differential[2], differential[0], differential[1]]
    scale = 1e-3 if differential[0].units == "kA" else 1.0
    values = np.concatenate([others, record[[2, 0, 1]] * scale], axis=0)
    cfg, dat, scales = write_comtrade(values, channels, fmt="BINARY32", trigger_ms=_trigger_for_window_at(MARGIN))
    result = read_comtrade(_upload(cfg, dat))
    assert result.channel_numbers == (8, 9, 7)
    assert result.channels == tuple(c.name for c in differential)
    assert result.units == "A primary"  # kA converted to A
    np.testing.assert_allclose(result.waveform, window, atol=1e-5 * np.abs(window).max(), rtol=1e-5)


def _winding_record() -> tuple[bytes, bytes, np.ndarray]:
    window = _source()
    record = _record_10khz(window, 30.0)
    rng = np.random.default_rng(4)
    channels = [Channel("VA", "A", "kV"), Channel("VB", "B", "kV"), Channel("VC", "C", "kV"),
                Channel("IA_HV", "A"), Channel("IB_HV", "B"), Channel("IC_HV", "C"),
                Channel("IA_LV", "A"), Channel("IB_LV", "B"), Channel("IC_LV", "C")]
    values = np.concatenate([_distractors(record.shape[1], rng)[:3], record, _distractors(record.shape[1], rng)[:3]])
    cfg, dat, _ = write_comtrade(values, channels, fmt="BINARY32", trigger_ms=_trigger_for_window_at(MARGIN))
    return cfg, dat, window


def test_ctr009_winding_currents_only_is_said_clearly_not_guessed():
    cfg, dat, _ = _winding_record()
    with pytest.raises(WaveformError) as caught:
        read_comtrade(_upload(cfg, dat))
    message = str(caught.value)
    assert message.startswith("fault.cfg: no differential-current channels")
    assert "winding" in message and "IA_HV (#4)" in message and "IC_LV (#9)" in message
    assert "vector-group" in message


@pytest.mark.parametrize("channels", [("IA_HV", "IB_HV", "IC_HV"), ("ia_hv", "ib_hv", "ic_hv"), (4, 5, 6)])
def test_ctr010_explicit_channels_by_name_or_number_are_used_as_given(channels):
    cfg, dat, window = _winding_record()
    result = read_comtrade(_upload(cfg, dat), channels=channels)
    assert result.channels == ("IA_HV", "IB_HV", "IC_HV") and result.channel_numbers == (4, 5, 6)
    np.testing.assert_allclose(result.waveform, window, atol=1e-5 * np.abs(window).max(), rtol=1e-5)


@pytest.mark.parametrize(
    ("channels", "message"),
    [
        (("IA_HV", "IB_HV"), "exactly three"),
        (("IA_HV", "IB_HV", "Iz"), "no analog channel 'Iz'"),
        ((4, 4, 5), "named twice"),
        (("VA", "VB", "VC"), "is a voltage"),
        ((4, 5, 99), "no analog channel 99"),
    ],
)
def test_ctr011_bad_explicit_channels_are_refused(channels, message):
    cfg, dat, _ = _winding_record()
    with pytest.raises(WaveformError, match=message):
        read_comtrade(_upload(cfg, dat), channels=channels)


def test_ctr012_two_differential_sets_ask_which_one():
    window = _source()
    record = _record_10khz(window, 30.0)
    channels = [Channel(f"{zone} Id{phase}", phase) for zone in ("87T", "87B") for phase in "ABC"]
    cfg, dat, _ = write_comtrade(np.concatenate([record, record * 2]), channels, fmt="BINARY32",
                                 trigger_ms=_trigger_for_window_at(MARGIN))
    with pytest.raises(WaveformError, match="2 sets of differential currents"):
        read_comtrade(_upload(cfg, dat))
    chosen = read_comtrade(_upload(cfg, dat), channels=("87B IdA", "87B IdB", "87B IdC"))
    np.testing.assert_allclose(chosen.waveform, 2 * window, atol=1e-5 * np.abs(window).max(), rtol=1e-5)


def test_ctr013_secondary_values_are_converted_with_the_ct_ratio_and_offsets_applied():
    window = _source()
    record = _record_10khz(window, 30.0)
    channels = [Channel(f"Id{p}", p, primary=1200.0, secondary=5.0, ps="S", offset=0.25) for p in "ABC"]
    cfg, dat, _ = write_comtrade(record / 240.0, channels, fmt="BINARY32", trigger_ms=_trigger_for_window_at(MARGIN))
    primary = read_comtrade(_upload(cfg, dat))
    secondary = read_comtrade(_upload(cfg, dat), side="secondary")
    np.testing.assert_allclose(primary.waveform, window, atol=1e-5 * np.abs(window).max(), rtol=1e-5)
    np.testing.assert_allclose(secondary.waveform, window / 240.0, atol=1e-5 * np.abs(window).max() / 240, rtol=1e-5)
    assert primary.units == "A primary" and secondary.units == "A secondary"
    assert any("1200/5" in note for note in primary.notes)


# --- window placement -------------------------------------------------------------------------------

@pytest.mark.parametrize("trigger_ms", [70.0, 95.5, 110.0])
def test_ctr014_the_trigger_sits_one_and_a_half_cycles_into_the_window(trigger_ms):
    window = _source()
    record = _record_10khz(window, 30.0)
    cfg, dat, _ = write_comtrade(record, PHASE_CHANNELS, trigger_ms=trigger_ms)
    result = read_comtrade(_upload(cfg, dat))
    first = round(trigger_ms * 10 - 250)
    assert result.window_start_ms == pytest.approx(first / 10)
    assert result.event_ms_in_window == pytest.approx(TRIGGER_LEAD_MS, abs=0.05)
    np.testing.assert_allclose(result.waveform, record[:, first:first + 726], atol=np.abs(record).max() / 30000)


def test_ctr015_a_trigger_near_the_record_start_clips_the_window_and_says_so():
    window = _source()
    record = _record_10khz(window, 30.0)
    cfg, dat, _ = write_comtrade(record, PHASE_CHANNELS, trigger_ms=8.0)
    result = read_comtrade(_upload(cfg, dat))
    assert result.window_start_ms == 0.0 and result.event_ms_in_window == pytest.approx(8.0)
    assert any("clipped" in note for note in result.notes)


@pytest.mark.parametrize(("label", "inception_ms"), [(FAULT, 30.0), ("internal_power_transformer_internal_faults_Class1", 12.0),
                                                     ("transient_capacitor_switching", 40.0)])
@pytest.mark.parametrize("trigger", ["blank", "at record start"])
def test_ctr016_without_a_usable_trigger_the_onset_is_found_and_put_one_cycle_in(label, inception_ms, trigger):
    """Faults and switching start sharply: the detected onset is within 1 ms of the simulator's inception."""
    window = _source(label, 9, inception_ms)
    record = _record_10khz(window, inception_ms)
    cfg, dat, _ = write_comtrade(record, PHASE_CHANNELS, trigger_ms=None if trigger == "blank" else 0.0)
    result = read_comtrade(_upload(cfg, dat))
    true_onset_ms = MARGIN / 10 + inception_ms
    assert result.placement == "onset" and result.trigger_ms is None
    assert result.window_start_ms + result.event_ms_in_window == pytest.approx(true_onset_ms, abs=1.0)
    assert result.event_ms_in_window == pytest.approx(1000 / 60, abs=0.1)
    assert any("found from the data" in note for note in result.notes)


def test_ctr017_onset_detection_on_plain_signals():
    t = np.arange(3000) / 1e4
    rng = np.random.default_rng(2)
    steady = np.stack([0.02 * np.sin(2 * np.pi * 60 * t + k) for k in (0.0, -2.094, 2.094)])
    noisy = steady + rng.normal(0, 0.002, steady.shape)
    assert detect_onset(noisy) is None  # a steady 60 Hz current with noise holds no event
    event = noisy.copy()
    event[:, 1800:] += 1.5 * np.sin(2 * np.pi * 60 * t[1800:] + 0.7)
    assert abs(detect_onset(event) - 1800) <= 3
    under_way = noisy + 1.5 * np.sin(2 * np.pi * 60 * t) * np.exp(-t / 0.05)
    assert detect_onset(under_way) == 167  # from the first sample with a cycle-earlier value


def test_ctr018_a_record_without_any_event_takes_its_first_window():
    t = np.arange(1500) / 1e4
    steady = np.stack([np.sin(2 * np.pi * 60 * t + k) for k in (0.0, -2.094, 2.094)])
    cfg, dat, _ = write_comtrade(steady, PHASE_CHANNELS, trigger_ms=None)
    result = read_comtrade(_upload(cfg, dat))
    assert result.placement == "record start" and result.window_start_ms == 0.0
    assert any("no disturbance" in note for note in result.notes)


# --- refusals ----------------------------------------------------------------------------------------

def _good(**options) -> tuple[bytes, bytes]:
    window = _source()
    cfg, dat, _ = write_comtrade(_record_10khz(window, 30.0), PHASE_CHANNELS,
                                 trigger_ms=_trigger_for_window_at(MARGIN), **options)
    return cfg, dat


def _missing_sample(fmt: str) -> dict[str, bytes]:
    record = _record_10khz(_source(), 30.0)
    record[1, 900] = np.nan
    cfg, dat, _ = write_comtrade(record, PHASE_CHANNELS, fmt=fmt, trigger_ms=_trigger_for_window_at(MARGIN))
    return _upload(cfg, dat)


def _short_record() -> dict[str, bytes]:
    cfg, dat, _ = write_comtrade(_source()[:, :500], PHASE_CHANNELS, trigger_ms=10.0)
    return _upload(cfg, dat)


def _two_channels() -> dict[str, bytes]:
    cfg, dat, _ = write_comtrade(_source()[:2], PHASE_CHANNELS[:2], trigger_ms=10.0)
    return _upload(cfg, dat)


def _slow_record() -> dict[str, bytes]:
    cfg, dat, _ = write_comtrade(np.zeros((3, 100)), PHASE_CHANNELS, rate=500.0, trigger_ms=10.0)
    return _upload(cfg, dat)


REFUSALS = {
    "missing .dat": (lambda: {"fault.cfg": _good()[0]}, "fault.cfg: the data file fault.dat is missing"),
    "missing .cfg": (lambda: {"fault.dat": _good()[1]}, "fault.dat: the .cfg configuration file is missing"),
    "mismatched names": (lambda: {"fault.cfg": _good()[0], "other.dat": _good()[1]}, "do not belong together"),
    "two records": (lambda: {"a.cfg": _good()[0], "a.dat": _good()[1], "b.cfg": _good()[0]}, "one record at a time"),
    "truncated ascii": (lambda: _upload(_good()[0], _good()[1][: len(_good()[1]) // 2]),
                        "declares 1626 samples per channel but the .dat holds"),
    "truncated binary": (lambda: _upload(_good(fmt="BINARY")[0], _good(fmt="BINARY")[1][:-16]),
                         "declares 1626 samples per channel but the .dat holds 1625"),
    "broken binary": (lambda: _upload(_good(fmt="BINARY")[0], _good(fmt="BINARY")[1][:-5]),
                      "not a whole number of 16-byte samples"),
    "unsupported format": (lambda: _upload(_good()[0].replace(b"\r\nASCII\r\n", b"\r\nBINARY64\r\n"), _good()[1]),
                           "unsupported data file type 'BINARY64'"),
    "50 Hz record": (lambda: _upload(*_good(frequency=50.0)), "50 Hz system; the model was trained on 60 Hz"),
    "no line frequency": (lambda: _upload(_good()[0].replace(b"\r\n60\r\n1\r\n", b"\r\n\r\n1\r\n"), _good()[1]),
                          "no line frequency"),
    "too short": (_short_record, "lasts 50.0 ms at 10000 Hz; the model needs 72.6 ms"),
    "too few channels": (_two_channels, r"the record has 2 analog channel\(s\); three phase differential"),
    "sampled too slowly": (_slow_record, "sampled at 500 Hz"),
    "missing samples": (lambda: _missing_sample("BINARY"), r"samples marked missing in the .dat \(IdB: 1\)"),
    "missing ascii samples": (lambda: _missing_sample("ASCII"), r"samples marked missing in the .dat \(IdB: 1\)"),
    "bad channel count line": (lambda: _upload(_good()[0].replace(b"5,3A,2D", b"5 channels"), _good()[1]),
                               "line 2 of the .cfg should read like"),
    "inconsistent channel count": (lambda: _upload(_good()[0].replace(b"5,3A,2D", b"9,3A,2D"), _good()[1]),
                                   "declares 9 channels but 3 analog"),
    "ascii line with wrong width": (lambda: _upload(_good()[0], _good()[1].replace(b"\r\n", b",7\r\n", 1)),
                                    "line 1 of the .dat has 8 values"),
    "binary .dat said ascii": (lambda: _upload(_good()[0], _good(fmt="BINARY")[1]), "is binary, not text"),
    "not a cff": (lambda: {"fault.cff": b"just text\r\n"}, "not a COMTRADE .cff file"),
    "truncated cff": (lambda: {"fault.cff": to_cff(*_good(fmt="BINARY", revision="2013"), "BINARY")[:-100]},
                      "the file is truncated"),
    "too large": (lambda: {"fault.cfg": _good()[0], "fault.dat": b"0" * (MAX_RECORD_BYTES + 1)}, "MB, more than"),
}


@pytest.mark.parametrize("case", list(REFUSALS))
def test_ctr019_every_problem_is_a_waveform_error_a_protection_engineer_can_act_on(case):
    make_files, message = REFUSALS[case]
    with pytest.raises(WaveformError, match=message):
        read_comtrade(make_files())


def test_ctr020_channel_spec_text_is_parsed_for_the_ui_and_cli():
    assert parse_channel_spec("IdA, IdB, IdC") == ("IdA", "IdB", "IdC")
    assert parse_channel_spec("87T Id A; 87T Id B; 87T Id C") == ("87T Id A", "87T Id B", "87T Id C")
    assert parse_channel_spec("7 8 9") == (7, 8, 9)
    assert parse_channel_spec("  ") is None and parse_channel_spec(None) is None


# --- the ingest, callback and CLI paths ---------------------------------------------------------------

def test_ctr021_ingest_reads_pairs_cff_and_paths_and_keeps_plain_windows_working(tmp_path):
    window = _source()  # kA on the data set's system; recorded in amperes, read back in kA (default rating)
    cfg, dat, _ = write_comtrade(_record_10khz(window * 1000.0, 30.0), PHASE_CHANNELS, revision="2013",
                                 fmt="BINARY", trigger_ms=_trigger_for_window_at(MARGIN))
    loaded = parse_uploaded_files([("fault.cfg", cfg), ("fault.dat", dat)])
    assert loaded.name == "fault.cfg" and loaded.files == ("fault.cfg", "fault.dat")
    # browsers hand multiple files over in any order; the record reads and is named the same
    swapped = parse_uploaded_files([("fault.dat", dat), ("fault.cfg", cfg)])
    assert swapped.files == ("fault.cfg", "fault.dat")
    np.testing.assert_array_equal(swapped.waveform, loaded.waveform)
    assert loaded.comtrade is not None and "IdA, IdB, IdC (A primary)" in loaded.summary
    assert "no rating given: the data set's 1255.1 A assumed" in loaded.summary
    assert loaded.units.unit == "A" and loaded.units.source == "COMTRADE .cfg"
    assert np.abs(loaded.waveform - window).max() < 1e-3 * np.abs(window).max()
    np.testing.assert_array_equal(parse_waveform_bytes(to_cff(cfg, dat, "BINARY"), "fault.cff"), loaded.waveform)
    with pytest.raises(WaveformError, match="upload the .cfg and the .dat together"):
        parse_waveform_bytes(cfg, "fault.cfg")
    with pytest.raises(WaveformError, match="upload both together"):
        parse_uploaded_files([("fault.dat", dat), ("notes.csv", b"1,2,3")])
    # on disk the .dat is found beside the .cfg, whatever the case of its suffix
    (tmp_path / "fault.cfg").write_bytes(cfg)
    (tmp_path / "fault.DAT").write_bytes(dat)
    np.testing.assert_array_equal(load_waveform_file(tmp_path / "fault.cfg"), loaded.waveform)
    assert load_comtrade(tmp_path / "fault.cfg").channels == ("IdA", "IdB", "IdC")
    # a plain .npy upload is still one file, with no COMTRADE details
    buffer = tmp_path / "w.npy"
    np.save(buffer, window.astype(np.float32))
    plain = parse_uploaded_files([("w.npy", buffer.read_bytes())])
    assert plain.comtrade is None and plain.summary is None and plain.name == "w.npy"


def test_ctr022_labelled_folders_may_hold_comtrade_records(tmp_path):
    window = _source()
    cfg, dat, _ = write_comtrade(_record_10khz(window * 1000.0, 30.0), PHASE_CHANNELS,
                                 trigger_ms=_trigger_for_window_at(MARGIN))
    folder = tmp_path / FAULT
    folder.mkdir()
    (folder / "event1.cfg").write_bytes(cfg)
    (folder / "event1.dat").write_bytes(dat)
    np.save(folder / "event2.npy", window.astype(np.float32))
    X, y = load_labelled_folder(tmp_path)
    assert X.shape == (2, 3, 726) and list(y) == [LABELS.index(FAULT)] * 2
    assert np.abs(X[0] - window).max() < 1e-3 * np.abs(window).max()


def test_ctr026_record_in_amperes_is_scaled_by_the_rating_given(tmp_path):
    """A 1.5 kA-peak record of a 1.2 kA unit is 1.25 pu: the window holds 1.25 x 1.2551 kA."""
    window = _source()
    record = _record_10khz(window, 30.0)
    in_amperes = record / np.abs(window).max() * 1500.0
    cfg, dat, _ = write_comtrade(in_amperes, PHASE_CHANNELS, fmt="BINARY32", trigger_ms=_trigger_for_window_at(MARGIN))
    loaded = parse_uploaded_files([("fault.cfg", cfg), ("fault.dat", dat)], rated_current_a=1200.0)
    expected = window / np.abs(window).max() * 1.25 * 1.2551
    assert np.abs(loaded.waveform - expected).max() < 1e-3 * np.abs(expected).max()
    assert loaded.units.rated_current_a == 1200.0 and loaded.units.rating_source == "given"
    assert "1500 A record of a 1.2 kA unit = 1.25 pu" in loaded.summary
    # a unit given for a record that states its own: the .cfg wins, and the summary says so
    given = parse_uploaded_files([("fault.cfg", cfg), ("fault.dat", dat)], rated_current_a="1200", unit="kA")
    np.testing.assert_allclose(given.waveform, loaded.waveform)
    assert "the unit kA given was not used" in given.summary
    # the same in kA channels is read the same, and a bad rating is refused with the record's name
    kiloamps = [Channel(c.name, c.ph, "kA") for c in PHASE_CHANNELS]
    cfg_ka, dat_ka, _ = write_comtrade(in_amperes / 1000.0, kiloamps, fmt="FLOAT32",
                                       trigger_ms=_trigger_for_window_at(MARGIN))
    (tmp_path / "ka.cfg").write_bytes(cfg_ka)
    (tmp_path / "ka.dat").write_bytes(dat_ka)
    from_disk = load_waveform_source(tmp_path / "ka.cfg", rated_current_a=1200.0)
    assert np.abs(from_disk.waveform - expected).max() < 1e-3 * np.abs(expected).max()
    with pytest.raises(WaveformError, match="ka.cfg: rated current must be positive"):
        load_waveform_source(tmp_path / "ka.cfg", rated_current_a=0)


def _data_url(payload: bytes) -> str:
    return "data:application/octet-stream;base64," + base64.b64encode(payload).decode()


@pytest.fixture
def context(tmp_path):
    """The AnalysisContext of a fresh app inside a request, as in tests/test_callbacks.py."""
    from app import create_app
    from app.settings import Settings
    from services.analysis import EXTENSION_KEY

    if not (ARTIFACTS / "best_model.pth").is_file():
        pytest.fail(f"no trained model in {ARTIFACTS}: the shipped artifacts are part of the repository")
    settings = Settings(artifacts_dir=ARTIFACTS, database_url=f"sqlite:///{tmp_path / 'history.db'}",
                        instance_dir=tmp_path / "instance")
    app = create_app(settings=settings)
    with app.server.test_request_context("/"):
        yield app.server.extensions[EXTENSION_KEY]


def test_ctr023_the_analyze_page_reads_a_dropped_pair_and_says_what_it_analysed(context):
    from callbacks.analyze import AnalyzeRequest, analyze_page_update
    from components import ids

    window = _source()
    cfg, dat, _ = write_comtrade(_record_10khz(window * 1000.0, 30.0), PHASE_CHANNELS, fmt="BINARY",
                                 trigger_ms=_trigger_for_window_at(MARGIN))
    peers = {"sender": "prosumer-a", "receiver": "consumer-home", "transfer_kw": 5.0}
    request = AnalyzeRequest(trigger=ids.UPLOAD, upload_contents=[_data_url(cfg), _data_url(dat)],
                             upload_filename=["fault.cfg", "fault.dat"], **peers)
    outputs = analyze_page_update(request, context)
    assert outputs["alert"] is None and outputs["result"]["label"] in LABELS
    store = outputs["upload_store"]
    assert store["filename"] == "fault.cfg" and store["comtrade"]["channels"] == ["IdA", "IdB", "IdC"]
    status = str(outputs["upload_status"])
    assert "fault.cfg + fault.dat" in status and "IdA, IdB, IdC" in status and "placed by the trigger" in status
    rows, total = context.store.query(limit=5)
    assert total == 1 and rows[0]["sample_name"] == "fault.cfg"


def test_ctr024_winding_record_is_refused_then_analysed_with_typed_channels(context):
    from callbacks.analyze import AnalyzeRequest, analyze_page_update
    from components import ids

    cfg, dat, _ = _winding_record()
    peers = {"sender": "prosumer-a", "receiver": "consumer-home", "transfer_kw": 5.0}
    files = {"upload_contents": [_data_url(cfg), _data_url(dat)], "upload_filename": ["fault.cfg", "fault.dat"]}
    refused = analyze_page_update(AnalyzeRequest(trigger=ids.UPLOAD, **files, **peers), context)
    assert set(refused) == {"alert", "upload_status"} and "no differential-current channels" in str(refused["alert"])
    assert context.store.count() == 0
    # the user types the channels and presses Analyze: the files in the drop zone are read again
    again = analyze_page_update(AnalyzeRequest(trigger=ids.ANALYZE_BUTTON, source_tab=ids.SOURCE_UPLOAD,
                                               upload_channels="IA_HV, IB_HV, IC_HV", **files, **peers), context)
    assert again["alert"] is None and again["upload_store"]["channels"] == "IA_HV, IB_HV, IC_HV"
    assert context.store.count() == 1
    # Analyze again with the same files and channels uses the stored window (no new read needed)
    stored = analyze_page_update(AnalyzeRequest(trigger=ids.ANALYZE_BUTTON, source_tab=ids.SOURCE_UPLOAD,
                                                upload_channels="IA_HV,IB_HV,IC_HV",
                                                upload_store=again["upload_store"], **files, **peers), context)
    assert "upload_store" not in stored and context.store.count() == 2


def test_ctr025_cli_classifies_a_cfg_and_says_which_channels_it_used(tmp_path, capsys):
    from services.inference.__main__ import main as cli_main

    cfg, dat, _ = _winding_record()
    (tmp_path / "fault.cfg").write_bytes(cfg)
    (tmp_path / "fault.dat").write_bytes(dat)
    assert cli_main([str(tmp_path / "fault.cfg"), "--artifacts", str(ARTIFACTS), "--json"]) == 1
    refused = json.loads(capsys.readouterr().out)
    assert "no differential-current channels" in refused["error"]
    assert cli_main([str(tmp_path / "fault.cfg"), "--artifacts", str(ARTIFACTS), "--json",
                     "--channels", "4,5,6"]) == 0
    record = json.loads(capsys.readouterr().out)
    assert record["predicted_label"] in LABELS and record["comtrade"]["channels"] == ["IA_HV", "IB_HV", "IC_HV"]
    assert record["comtrade"]["placement"] == "trigger"


def test_ctr030_the_record_limit_is_the_callers_upload_limit():
    """The web app passes its GEM_MAX_UPLOAD_BYTES: a record is refused above it, not above a
    second, hard-wired limit."""
    cfg, dat = _good()
    size = len(cfg) + len(dat)
    assert read_comtrade(_upload(cfg, dat), max_bytes=size).waveform.shape == (3, 726)
    with pytest.raises(WaveformError, match="MB, more than"):
        read_comtrade(_upload(cfg, dat), max_bytes=size - 1)
    with pytest.raises(WaveformError, match="MB, more than"):
        parse_uploaded_files([("fault.cfg", cfg), ("fault.dat", dat)], max_bytes=size - 1)
    assert parse_uploaded_files([("fault.cfg", cfg), ("fault.dat", dat)], max_bytes=size).comtrade is not None


# --- hostile records: bounded cost, clear refusals (issue 12, items 3-4) ------------------------------

def _cfg_line(cfg: bytes, old: bytes, new: bytes) -> bytes:
    assert old in cfg
    return cfg.replace(old, new, 1)


HOSTILE = {
    "NaN line frequency": (lambda: _upload(_cfg_line(_good()[0], b"\r\n60\r\n", b"\r\nnan\r\n"), _good()[1]),
                           "no line frequency"),
    "infinite line frequency": (lambda: _upload(_cfg_line(_good()[0], b"\r\n60\r\n", b"\r\ninf\r\n"), _good()[1]),
                                "no line frequency"),
    "NaN channel multiplier": (lambda: _upload(_nan_multiplier(), _good()[1]),
                               "no finite multiplier a and offset b for IdB"),
    "5,000-digit channel count": (lambda: _upload(_cfg_line(_good()[0], b"5,3A,2D", b"9" * 5000 + b",3A,2D"),
                                                  _good()[1]), "line 2 of the .cfg should read like"),
    "a .cfg of line breaks": (lambda: _upload(b"x\r\n" + b"\n" * 900_000, _good()[1]), "lines"),
    "a .dat of line breaks": (lambda: _upload(_good()[0], b"\n" * 5_000_000), "declares 1626 samples"),
    "a .dat of form feeds": (lambda: _upload(_good()[0], b"\x0c" * 5_000_000), "declares 1626 samples"),
    "a cff byte count of 5,000 digits": (
        lambda: {"fault.cff": to_cff(*_good(fmt="BINARY", revision="2013"), "BINARY").replace(
            b"BINARY: ", b"BINARY: " + b"9" * 5000, 1)}, "no '--- file type: DAT ---' section"),
    "ascii value that is not a number": (lambda: _bad_first_value(), "the ASCII .dat cannot be read"),
}


def _nan_multiplier() -> bytes:
    lines = _good()[0].split(b"\r\n")
    fields = lines[3].split(b",")  # channel 2 (IdB)
    fields[5] = b"nan"
    lines[3] = b",".join(fields)
    return b"\r\n".join(lines)


def _bad_first_value() -> dict[str, bytes]:
    cfg, dat = _good()
    first, rest = dat.split(b"\r\n", 1)
    fields = first.split(b",")
    fields[2] = b"x"
    return _upload(cfg, b",".join(fields) + b"\r\n" + rest)


@pytest.mark.parametrize("case", list(HOSTILE))
def test_ctr030_hostile_records_are_refused_with_a_reason(case):
    make_files, message = HOSTILE[case]
    with pytest.raises(WaveformError, match=message):
        read_comtrade(make_files())


def test_ctr031_ascii_blank_fields_are_missing_values_and_blank_time_stamps_are_allowed():
    cfg, dat = _good(revision="1991")
    rows = dat.split(b"\r\n")
    fields = rows[900].split(b",")
    fields[3] = b""  # IdB blank: missing in a 1991 record
    rows[900] = b",".join(fields)
    with pytest.raises(WaveformError, match=r"samples marked missing in the .dat \(IdB: 1\)"):
        read_comtrade(_upload(cfg, b"\r\n".join(rows)))
    blank_times = b"\r\n".join(b",".join([row.split(b",")[0], b"", *row.split(b",")[2:]]) if row else row
                               for row in dat.split(b"\r\n"))
    window = read_comtrade(_upload(cfg, blank_times))  # the sample rate gives the times
    np.testing.assert_allclose(window.waveform, read_comtrade(_upload(cfg, dat)).waveform)


def test_ctr032_channel_lists_are_bounded_and_unicode_digits_are_names():
    with pytest.raises(WaveformError, match="characters"):
        parse_channel_spec("9" * 5000)
    with pytest.raises(WaveformError, match="exactly three"):
        parse_channel_spec("1 2 3 4")
    assert parse_channel_spec("¹ ² ³") == ("¹", "²", "³")
    assert parse_channel_spec("1234567890 2 3") == ("1234567890", 2, 3)


def test_ctr033_a_window_description_kept_by_the_browser_is_checked_field_by_field():
    from services.comtrade_ingest import checked_window_details

    details = read_comtrade(_upload(*_good())).to_dict()
    assert checked_window_details(json.loads(json.dumps(details))) == details
    for change, message in [({"station": "S" * 300_000}, "station"), ({"station": "a\r\n=b"}, "station"),
                            ({"notes": ["x"] * 100}, "notes"), ({"channel_numbers": [1, 2, True]}, "numbers"),
                            ({"line_frequency_hz": 50.0}, "line frequency"), ({"record_ms": "1"}, "record_ms"),
                            ({"placement": "anywhere"}, "placement"), ({"extra": 1}, "does not match")]:
        with pytest.raises(WaveformError, match=message):
            checked_window_details({**details, **change})
