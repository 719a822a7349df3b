"""COMTRADE recordings (IEEE C37.111-1991/1999/2013) turned into the model's (3, 726) window.

A relay or DFR record is read from memory (uploads) or from disk (CLI): a `.cfg` + `.dat` pair in
ASCII, BINARY, BINARY32 or FLOAT32, or one `.cff` file. Uploaded bytes never touch the disk.

- Parsing: the `comtrade` package reads the `.cfg` and ASCII `.dat` files. Its gaps are handled
  here: it needs a path for `.cff` (and ignores the DAT byte count), crashes on a time stamp without
  fractional seconds, trusts the declared sample count (a short `.dat` becomes silent zeros) and
  treats the raw value -1 of 1991 BINARY files as missing. So `.cff` containers are split here,
  time stamps are parsed here, sizes are checked before any parsing, and binary `.dat` files are
  read with numpy (missing = 0x8000 / 0x80000000 in every revision, non-finite for FLOAT32).
- Channels: the three phase differential currents, found by name (diff, Id, IOP, 87...) and phase
  (the ph field, else the name). A record with only winding currents is refused with a message
  that lists them: the differential current needs the transformer ratio and vector group, which
  the record does not hold. Callers can name the channels (names or analog channel numbers An).
- Values: a*x+b from the `.cfg`, converted to primary (default) or secondary amperes with the
  channel's primary/secondary ratio; kA and mA become A. The model is scale-invariant; the units
  are reported so that messages stay honest.
- Time base: 60 Hz records only (the model knows no other system frequency). Other sample rates
  are resampled to 10 kHz with `scipy.signal.resample_poly` (zero-phase polyphase FIR with a
  Kaiser anti-aliasing filter, rational factor up/down, edges padded linearly) so that no sample
  is shifted in time.
- Window: 726 samples (72.6 ms). With a trigger time stamp inside the record the trigger sits
  1.5 cycles (25 ms) after the window start: a relay or DFR triggers a few ms to a cycle after
  inception, so the inception lands about 1-1.5 cycles in, where most training windows have it
  (services.simulation draws 60 % of inceptions in the first quarter of the window). Without a
  usable trigger the onset is found from the data (first departure from the cycle-before value)
  and placed 1 cycle after the window start. The window is clipped to the record.
"""

from __future__ import annotations

import datetime as dt
import io
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields
from fractions import Fraction
from pathlib import Path
from typing import Literal

import comtrade
import numpy as np
from scipy.signal import resample_poly

from services.waveform import (
    N_PHASES,
    N_SAMPLES,
    PHASES,
    SAMPLE_RATE_HZ,
    SAMPLES_PER_CYCLE,
    SYSTEM_FREQUENCY_HZ,
    WINDOW_MS,
    WaveformError,
    validate_waveform,
)

#: the whole record (all its files together); uploads are untrusted
MAX_RECORD_BYTES = 10 * 1024 * 1024
MAX_CFG_BYTES = 1024 * 1024
MAX_CHANNELS = 4096
#: lines of a .cfg: its channels plus the station, count, frequency, rate, time stamp and type lines
MAX_CFG_LINES = MAX_CHANNELS + 128
#: the longest channel list a user may type (three names of a .cfg's 64 characters and separators)
MAX_CHANNEL_SPEC_CHARS = 256
COMTRADE_SUFFIXES = (".cfg", ".cff")
#: files that may come with a record and are not needed for the window
COMPANION_SUFFIXES = (".dat", ".hdr", ".inf")
DATA_FORMATS = ("ASCII", "BINARY", "BINARY32", "FLOAT32")
#: lowest sample rate accepted: 16 samples per cycle, the least a protective relay records
MIN_SAMPLE_RATE_HZ = 16 * SYSTEM_FREQUENCY_HZ
FREQUENCY_TOLERANCE_HZ = 0.5
TRIGGER_LEAD_CYCLES = 1.5
ONSET_LEAD_CYCLES = 1.0

Side = Literal["primary", "secondary"]
ChannelSpec = Sequence[str | int]

_BINARY_ANALOG = {"BINARY": ("<i2", -32768), "BINARY32": ("<i4", -(2**31)), "FLOAT32": ("<f4", None)}
_CFF_HEADER = re.compile(
    rb"^[ \t]*-{3}[ \t]*file type:[ \t]*([A-Za-z]+)(?:[ \t]+([A-Za-z0-9]+))?(?:[ \t]*:[ \t]*([0-9]{1,12}))?[ \t]*-{3}[ \t]*\r?$",
    re.IGNORECASE | re.MULTILINE,
)
_DATE = re.compile(r"^\s*(\d{1,2})/(\d{1,2})/(\d{2,4})\s*$")
_TIME = re.compile(r"^\s*(\d{1,2}):(\d{1,2}):(\d{1,2})(?:\.(\d{1,12}))?\s*$")
_CURRENT_UNITS = {"a": 1.0, "amp": 1.0, "amps": 1.0, "ampere": 1.0, "amperes": 1.0, "ka": 1000.0, "ma": 0.001}
_PER_UNIT_UNITS = {"pu", "p.u.", "p.u", "xin", "xtap", "*in", "xir", "xinom"}
_VOLTAGE_UNITS = {"v", "kv", "mv", "volt", "volts"}
_PHASE_FIELD = {"A": "A", "B": "B", "C": "C", "1": "A", "2": "B", "3": "C",
                "L1": "A", "L2": "B", "L3": "C", "R": "A", "S": "B", "T": "C"}
_B, _E = r"(?<![a-z0-9])", r"(?![a-z0-9])"  # word edges where '_' separates words too
_NOT_DIFFERENTIAL = re.compile(
    rf"restr|{_B}rest|bias|stab|harm|2nd|5th|thd|{_B}i?rt{_E}|{_B}ir[abc123]?{_E}|{_B}[25]h{_E}|[a-z][25]h{_E}"
)
_DIFFERENTIAL = re.compile(
    rf"diff|{_B}87|operat|{_B}iop|{_B}i[_\s-]?d(?:[_\s-]?(?:ph)?[abc123])?{_E}|{_B}i[abc][_\s-]?(?:d|op){_E}"
)
#: phase marks in channel names, most specific first (the ph field wins when it is set)
_NAME_PHASE = (
    re.compile(r"(?:id|iop|idiff|diff|differential|i87|87t?)[_\s-]?(?:ph)?([abc123])$"),
    re.compile(r"(?:^|[^a-z0-9])(?:ph(?:ase)?[_\s-]?)?([abc])$"),
    re.compile(r"^i[_\s-]?([abc])(?:[_\s-]|$)"),
    re.compile(r"(?:^|[^a-z0-9])l([123])$"),
)


@dataclass(frozen=True)
class ComtradeWindow:
    """The analysed window and what it came from, for the UI, the CLI and the history."""

    waveform: np.ndarray = field(repr=False)
    source: str
    station: str
    device: str
    revision: str
    data_format: str
    channels: tuple[str, ...]
    channel_numbers: tuple[int, ...]
    units: str
    line_frequency_hz: float
    original_rate_hz: float
    resampled: bool
    record_ms: float
    window_start_ms: float
    window_start_time: str | None
    placement: Literal["trigger", "onset", "record start"]
    event_ms_in_window: float | None
    trigger_ms: float | None
    notes: tuple[str, ...] = ()

    def to_dict(self) -> dict:
        """Plain JSON (everything but the waveform)."""
        details = {item.name: getattr(self, item.name) for item in fields(self) if item.name != "waveform"}
        return {key: list(value) if isinstance(value, tuple) else value for key, value in details.items()}

    def summary(self) -> str:
        """One line saying what was analysed, for status lines and the CLI."""
        return summary_of(self.to_dict())


def summary_of(details: Mapping) -> str:
    """`ComtradeWindow.summary` from its `to_dict()` (what a browser store keeps)."""
    rate = details["original_rate_hz"]
    sampling = (f"{rate / 1e3:g} kHz resampled to 10 kHz" if details["resampled"] else "10 kHz")
    start = details["window_start_ms"]
    placed = {"trigger": "trigger", "onset": "detected onset", "record start": "record start"}[details["placement"]]
    event = details.get("event_ms_in_window")
    at = f" at {event:.1f} ms" if event is not None else ""
    return (f"{', '.join(details['channels'])} ({details['units']}), {sampling}; window "
            f"{start:.1f}-{start + WINDOW_MS:.1f} ms of the {details['record_ms']:.0f} ms record, "
            f"placed by the {placed}{at}")


#: bounds on what a record's description may hold (C37.111-2013 gives names 64 characters; room for older files)
MAX_NAME_CHARS = 128
MAX_NOTE_CHARS = 1000
MAX_NOTES = 16


def checked_window_details(details: object) -> dict:
    """`ComtradeWindow.to_dict()` as a browser sent it back, checked field by field and rebuilt.

    The dashboard keeps the last upload's description in the browser; whatever comes back is
    untrusted: exactly the fields of `to_dict`, of their types, finite, bounded and without control
    characters (a station name of 300 kB or with line breaks is refused). WaveformError otherwise."""
    if not isinstance(details, Mapping):
        raise WaveformError("the stored record description is not an object; upload the record again")
    expected = {item.name for item in fields(ComtradeWindow)} - {"waveform"}
    if set(details) != expected:
        raise WaveformError("the stored record description does not match a COMTRADE record's; upload it again")

    def text(name: str, limit: int = MAX_NAME_CHARS, optional: bool = False) -> str | None:
        value = details[name]
        if value is None and optional:
            return None
        return _checked_text(value, name, limit)

    def number(name: str, optional: bool = False) -> float | None:
        value = details[name]
        if value is None and optional:
            return None
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
            raise WaveformError(f"the stored record's {name} is not a finite number; upload the record again")
        return float(value)

    channels, numbers, notes = details["channels"], details["channel_numbers"], details["notes"]
    if not isinstance(channels, list | tuple) or len(channels) != N_PHASES:
        raise WaveformError("the stored record does not name three channels; upload it again")
    if (not isinstance(numbers, list | tuple) or len(numbers) != N_PHASES
            or not all(type(n) is int and 0 < n <= MAX_CHANNELS for n in numbers)):
        raise WaveformError("the stored record's channel numbers are not three channel numbers; upload it again")
    if not isinstance(notes, list | tuple) or len(notes) > MAX_NOTES:
        raise WaveformError(f"the stored record's notes are not a list of at most {MAX_NOTES}; upload it again")
    if details["data_format"] not in DATA_FORMATS or details["placement"] not in ("trigger", "onset", "record start"):
        raise WaveformError("the stored record's data format or window placement is unknown; upload it again")
    if not isinstance(details["resampled"], bool):
        raise WaveformError("the stored record's resampled flag is not true or false; upload it again")
    frequency, rate = number("line_frequency_hz"), number("original_rate_hz")
    if abs(frequency - SYSTEM_FREQUENCY_HZ) > FREQUENCY_TOLERANCE_HZ or not rate >= MIN_SAMPLE_RATE_HZ:
        raise WaveformError("the stored record's line frequency or sample rate is not one the model reads; "
                            "upload the record again")
    return {
        "source": text("source", 255), "station": text("station"), "device": text("device"),
        "revision": text("revision", 8), "data_format": details["data_format"],
        "channels": [_checked_text(name, "channel", MAX_NAME_CHARS) for name in channels],
        "channel_numbers": list(numbers), "units": text("units"), "line_frequency_hz": frequency,
        "original_rate_hz": rate, "resampled": details["resampled"], "record_ms": number("record_ms"),
        "window_start_ms": number("window_start_ms"), "window_start_time": text("window_start_time", optional=True),
        "placement": details["placement"], "event_ms_in_window": number("event_ms_in_window", optional=True),
        "trigger_ms": number("trigger_ms", optional=True),
        "notes": [_checked_text(note, "note", MAX_NOTE_CHARS) for note in notes],
    }


def _checked_text(value: object, name: str, limit: int) -> str:
    if not isinstance(value, str) or len(value) > limit or any(ord(char) < 32 or ord(char) == 127 for char in value):
        raise WaveformError(f"the stored record's {name} is not text of at most {limit} printable characters; "
                            "upload the record again")
    return value


def is_comtrade_name(filename: str) -> bool:
    """True for the file names that start a COMTRADE record (`.cfg`, `.cff`)."""
    return Path(filename).suffix.lower() in COMTRADE_SUFFIXES


def parse_channel_spec(text: str | None) -> tuple[str | int, ...] | None:
    """'IdA, IdB, IdC' or '7 8 9' (analog channel numbers An) as a channel tuple; None when blank.

    WaveformError for text that cannot name three channels (too long, too many names), so a
    5,000-digit 'number' is refused here rather than converted."""
    if text is None or not str(text).strip():
        return None
    text = str(text).strip()
    if len(text) > MAX_CHANNEL_SPEC_CHARS:
        raise WaveformError(f"channels: {len(text):,} characters; name three channels (names or numbers An), "
                            f"e.g. 'IdA, IdB, IdC' or '7 8 9'")
    separator = r"[,;]" if re.search(r"[,;]", text) else r"\s+"
    parts = [part.strip() for part in re.split(separator, text) if part.strip()]
    if len(parts) > N_PHASES:
        raise WaveformError(f"channels: {len(parts)} given; name exactly three channels (phases A, B, C)")
    return tuple(int(part) if part.isascii() and part.isdigit() and len(part) <= 9 else part for part in parts)


def read_comtrade(files: Mapping[str, bytes] | Sequence[tuple[str, bytes]], *,
                  channels: ChannelSpec | None = None, side: Side = "primary",
                  max_bytes: int = MAX_RECORD_BYTES) -> ComtradeWindow:
    """The window of an uploaded record: `{name: bytes}` of a `.cfg` + `.dat` pair or one `.cff`.

    `max_bytes` is the largest record accepted (the web app passes its upload limit).

    `.hdr` and `.inf` files may come along and are ignored. `channels`: three channel names or
    analog channel numbers (An of the `.cfg`, 1-based) for phases A, B, C; None picks the
    differential currents. Raises WaveformError with a message for a protection engineer.
    """
    items = list(files.items()) if isinstance(files, Mapping) else list(files)
    total = 0
    for name, data in items:
        if not isinstance(data, bytes | bytearray | memoryview):
            raise WaveformError(f"{name}: expected the file's bytes, got {type(data).__name__}")
        total += len(data)
    if total > max_bytes:
        raise WaveformError(f"the record is {total / 1e6:.1f} MB, more than the {max_bytes / 2**20:g} MB "
                            "accepted; cut it to the event (a few hundred ms) in your COMTRADE tool")
    cfg_name, cfg_bytes, dat_bytes, dat_format = _record_parts([(Path(n).name, bytes(d)) for n, d in items])
    try:
        return _window_of(cfg_name, cfg_bytes, dat_bytes, dat_format, channels, side)
    except WaveformError as exc:
        message = str(exc)
        raise WaveformError(message if message.startswith(cfg_name) else f"{cfg_name}: {message}") from None


def load_comtrade(path: str | Path, *, channels: ChannelSpec | None = None, side: Side = "primary") -> ComtradeWindow:
    """The window of a record on disk: a `.cff`, or a `.cfg` whose `.dat` lies beside it (any case)."""
    path = Path(path)
    if not is_comtrade_name(path.name):
        raise WaveformError(f"{path.name}: expected a COMTRADE .cfg or .cff file")
    if not path.is_file():
        raise WaveformError(f"{path}: cannot read the file (no such file)")
    files = [path]
    if path.suffix.lower() == ".cfg":
        siblings = [p for p in path.parent.glob("*") if p.stem == path.stem and p.suffix.lower() == ".dat"]
        if not siblings:
            raise WaveformError(f"{path.name}: the data file {path.stem}.dat is missing beside it; "
                                "a COMTRADE record needs the .cfg and its .dat")
        files.append(siblings[0])
    contents = []
    for file in files:
        try:
            size = file.stat().st_size
            if size > MAX_RECORD_BYTES:
                raise WaveformError(f"{file.name}: the file is {size / 1e6:.1f} MB, more than the "
                                    f"{MAX_RECORD_BYTES // 2**20} MB accepted; cut the record to the event")
            contents.append((file.name, file.read_bytes()))
        except OSError as exc:
            raise WaveformError(f"{file}: cannot read the file ({exc.strerror or exc})") from None
    return read_comtrade(contents, channels=channels, side=side)


# --- files ----------------------------------------------------------------------------------------

def _record_parts(items: list[tuple[str, bytes]]) -> tuple[str, bytes, bytes, str | None]:
    """(cfg name, cfg bytes, dat bytes, DAT format named by a .cff or None) of the uploaded files."""
    by_suffix: dict[str, list[tuple[str, bytes]]] = {}
    for name, data in items:
        by_suffix.setdefault(Path(name).suffix.lower(), []).append((name, data))
    unexpected = [name for name, _ in items
                  if Path(name).suffix.lower() not in (*COMTRADE_SUFFIXES, *COMPANION_SUFFIXES)]
    if unexpected:
        raise WaveformError(f"{', '.join(unexpected)}: not part of a COMTRADE record "
                            "(expected a .cfg with its .dat, or one .cff)")
    cfgs, dats, cffs = by_suffix.get(".cfg", []), by_suffix.get(".dat", []), by_suffix.get(".cff", [])
    if len(cfgs) + len(cffs) > 1:
        names = ", ".join(name for name, _ in cfgs + cffs)
        raise WaveformError(f"{names}: several records at once; upload one record at a time "
                            "(a .cfg with its .dat, or one .cff)")
    if cffs:
        if dats:
            raise WaveformError(f"{cffs[0][0]}: a .cff holds its own data; upload it without a separate .dat")
        return _split_cff(*cffs[0])
    if not cfgs:
        names = ", ".join(name for name, _ in dats) or "the upload"
        raise WaveformError(f"{names}: the .cfg configuration file is missing; a COMTRADE .dat can only be read "
                            "with its .cfg: upload both together")
    cfg_name, cfg_bytes = cfgs[0]
    if not dats:
        raise WaveformError(f"{cfg_name}: the data file {Path(cfg_name).stem}.dat is missing; "
                            "upload the .cfg and the .dat together")
    if len(dats) > 1:
        raise WaveformError(f"{cfg_name}: several .dat files ({', '.join(n for n, _ in dats)}); upload only its own")
    dat_name, dat_bytes = dats[0]
    if Path(dat_name).stem.lower() != Path(cfg_name).stem.lower():
        raise WaveformError(f"{cfg_name} and {dat_name} do not belong together (different names); "
                            "upload a record's .cfg with its own .dat")
    return cfg_name, cfg_bytes, dat_bytes, None


def _split_cff(name: str, data: bytes) -> tuple[str, bytes, bytes | memoryview, str | None]:
    """The CFG text and DAT bytes of a 2013 combined file (`--- file type: ... ---` sections).

    A binary DAT section is read for its declared byte count, so its bytes can never be taken
    for a section header.
    """
    sections: dict[str, tuple[str | None, bytes]] = {}
    position = 0
    while True:
        header = _CFF_HEADER.search(data, position)
        if header is None:
            break
        kind = header.group(1).decode("ascii").upper()
        fmt = header.group(2).decode("ascii").upper() if header.group(2) else None
        start = header.end() + (1 if data[header.end():header.end() + 1] == b"\n" else 0)
        if kind == "DAT" and fmt not in (None, "ASCII") and header.group(3):
            end = start + int(header.group(3))
            if end > len(data):
                raise WaveformError(f"{name}: the DAT section declares {int(header.group(3))} bytes but "
                                    f"only {len(data) - start} follow; the file is truncated")
        else:
            following = _CFF_HEADER.search(data, start)
            end = following.start() if following else len(data)
        binary = kind == "DAT" and fmt not in (None, "ASCII")
        sections.setdefault(kind, (fmt, memoryview(data)[start:end] if binary else data[start:end]))  # no copy
        position = end
    if "CFG" not in sections or "DAT" not in sections:
        missing = " and ".join(kind for kind in ("CFG", "DAT") if kind not in sections)
        raise WaveformError(f"{name}: not a COMTRADE .cff file: no '--- file type: {missing} ---' section")
    return name, sections["CFG"][1], sections["DAT"][1], sections["DAT"][0]


def _decode_text(data: bytes, what: str) -> str:
    if b"\x00" in data[:4096]:
        raise WaveformError(f"the {what} is binary, not text")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        text = data.decode("latin-1")  # station names of older devices
    return text.replace("\x1a", "")


# --- configuration --------------------------------------------------------------------------------

@dataclass(frozen=True)
class _Config:
    cfg: comtrade.Cfg
    text: str  # the .cfg with its time stamps rewritten as the comtrade package reads them
    start: tuple[dt.date, Fraction] | None
    trigger: tuple[dt.date, Fraction] | None
    data_format: str
    total_samples: int
    segments: tuple[tuple[float, int, int], ...]  # (rate, first index, end index) of each rate


def _parse_config(data: bytes) -> _Config:
    """Check the .cfg's structure and sizes, then let `comtrade.Cfg` read it."""
    if len(data) > MAX_CFG_BYTES:
        raise WaveformError(f"the .cfg is {len(data) / 1e6:.1f} MB; a configuration file is a few kB")
    text = _decode_text(data, ".cfg").replace("\r\n", "\n").replace("\r", "\n")
    if text.count("\n") > MAX_CFG_LINES:
        raise WaveformError(f"the .cfg has {text.count(chr(10)):,} lines; a configuration file of at most "
                            f"{MAX_CHANNELS} channels has no more than {MAX_CFG_LINES}")
    lines = text.split("\n")
    if len(lines) < 2:
        raise WaveformError("the .cfg is incomplete: expected the station line and the channel count line")
    match = re.fullmatch(r"\s*(\d{1,9})\s*,\s*(\d{1,9})\s*A\s*,\s*(\d{1,9})\s*D\s*,?\s*", lines[1], re.IGNORECASE)
    if match is None:
        raise WaveformError(f"line 2 of the .cfg should read like '12,8A,4D' (total, analog, status channels), "
                            f"got {lines[1].strip()[:40]!r}")
    total, analog, status = (int(value) for value in match.groups())
    if analog + status != total:
        raise WaveformError(f"the .cfg declares {total} channels but {analog} analog + {status} status")
    if total > MAX_CHANNELS or 2 + total > len(lines):
        raise WaveformError(f"the .cfg declares {total} channels but describes {max(len(lines) - 2, 0)} at most")
    revision = _revision(lines[0])
    first_rate_line = 2 + total + 2
    if len(lines) <= first_rate_line:
        raise WaveformError("the .cfg ends before its sample-rate lines")
    try:
        nrates = int(lines[first_rate_line - 1].strip())
    except ValueError:
        raise WaveformError(f"the .cfg's number of sample rates {lines[first_rate_line - 1].strip()!r} "
                            "is not a whole number") from None
    if not 0 <= nrates <= 64:
        raise WaveformError(f"the .cfg declares {nrates} sample rates")
    start_line = first_rate_line + max(nrates, 1)
    if len(lines) <= start_line + 2:
        raise WaveformError("the .cfg ends before its time stamps and data file type")
    start = _timestamp(lines[start_line], revision)
    trigger = _timestamp(lines[start_line + 1], revision)
    # the comtrade package fails on a time stamp it cannot read: give it only the ones read here
    for offset, stamp in ((0, start), (1, trigger)):
        lines[start_line + offset] = _format_timestamp(stamp, revision)
    text = "\n".join(lines)
    cfg = comtrade.Cfg(ignore_warnings=True)
    try:
        cfg.read(text)
    except (ValueError, TypeError, IndexError, AttributeError) as exc:
        raise WaveformError(f"the .cfg does not follow IEEE C37.111 ({type(exc).__name__}: {exc})") from None
    data_format = cfg.ft.strip().upper()
    if data_format not in DATA_FORMATS:
        raise WaveformError(f"unsupported data file type {cfg.ft.strip()!r}: expected one of {', '.join(DATA_FORMATS)}")
    return _Config(cfg, text, start, trigger, data_format, *_segments(cfg, nrates))


def _revision(first_line: str) -> str:
    fields = [value.strip() for value in first_line.split(",")]
    return fields[2] if len(fields) >= 3 and fields[2] else "1991"


def _segments(cfg: comtrade.Cfg, nrates: int) -> tuple[int, tuple[tuple[float, int, int], ...]]:
    """Total samples and (rate, first index, end index) per rate; rate 0 means 'use the time stamps'."""
    segments: list[tuple[float, int, int]] = []
    first = 0
    for rate, end in cfg.sample_rates:
        if end <= first or (nrates and (not math.isfinite(rate) or rate <= 0)):
            raise WaveformError(f"the .cfg's sample-rate line '{rate:g},{end}' is not valid "
                                f"(rates must be above 0 and last sample numbers increase)")
        segments.append((float(rate) if nrates else 0.0, first, int(end)))
        first = int(end)
    return first, tuple(segments)


def _timestamp(line: str, revision: str) -> tuple[dt.date, Fraction] | None:
    """(date, seconds of the day as an exact fraction), or None for a missing or unreadable stamp."""
    fields = [value.strip() for value in line.split(",")]
    if len(fields) < 2 or not fields[0] or not fields[1]:
        return None
    date, time = _DATE.match(fields[0]), _TIME.match(fields[1])
    if date is None or time is None:
        return None
    first, second, year = (int(value) for value in date.groups())
    if year < 100:
        year += 1900 if year >= 70 else 2000
    day, month = (second, first) if revision == "1991" else (first, second)
    try:
        day_of = dt.date(year, month, day)
    except ValueError:
        try:  # some devices write the other order
            day_of = dt.date(year, day, month)
        except ValueError:
            return None
    hours, minutes, seconds, fraction = time.groups()
    if int(minutes) > 59 or int(seconds) > 60 or int(hours) > 23:
        return None
    fraction_s = Fraction(int(fraction), 10 ** len(fraction)) if fraction else Fraction(0)
    return day_of, int(hours) * 3600 + int(minutes) * 60 + int(seconds) + fraction_s


def _format_timestamp(stamp: tuple[dt.date, Fraction] | None, revision: str) -> str:
    if stamp is None:
        return ","
    day_of, seconds = stamp
    whole = int(seconds)
    micro = int((seconds - whole) * 1_000_000)
    date = (f"{day_of.month:02d}/{day_of.day:02d}/{day_of.year:04d}" if revision == "1991"
            else f"{day_of.day:02d}/{day_of.month:02d}/{day_of.year:04d}")
    return f"{date},{whole // 3600:02d}:{whole // 60 % 60:02d}:{whole % 60:02d}.{micro:06d}"


def _seconds_between(start: tuple[dt.date, Fraction], later: tuple[dt.date, Fraction]) -> float:
    return float((later[0] - start[0]).days * 86400 + (later[1] - start[1]))


def _iso(stamp: tuple[dt.date, Fraction], offset_s: float) -> str:
    base = dt.datetime.combine(stamp[0], dt.time()) + dt.timedelta(seconds=float(stamp[1]))
    return (base + dt.timedelta(seconds=offset_s)).isoformat(sep=" ", timespec="microseconds")


# --- channels -------------------------------------------------------------------------------------

@dataclass(frozen=True)
class _Channel:
    index: int  # position among the analog channels, 0-based
    number: int  # An of the .cfg
    name: str
    phase: str | None
    units: str
    channel: comtrade.AnalogChannel

    @property
    def label(self) -> str:
        return f"{self.name} (#{self.number})"


def _channels_of(cfg: comtrade.Cfg) -> list[_Channel]:
    result = []
    for index, channel in enumerate(cfg.analog_channels):
        name = channel.name.strip() or f"channel {channel.n}"
        result.append(_Channel(index, int(channel.n), name, _phase_of(channel), channel.uu.strip(), channel))
    return result


def _phase_of(channel: comtrade.AnalogChannel) -> str | None:
    """Phase from the ph field (A, B, C, 1-3, L1-L3, R/S/T), else from the end of the channel name."""
    field_value = re.sub(r"^PH(?:ASE)?[\s_-]?", "", channel.ph.strip().upper())
    field_value = re.sub(r"[\s_-]?N$", "", field_value) if len(field_value) > 1 else field_value
    if field_value in _PHASE_FIELD:
        return _PHASE_FIELD[field_value]
    name = channel.name.strip().lower()
    for pattern in _NAME_PHASE:
        found = pattern.search(name)
        if found:
            value = found.group(1).upper()
            return _PHASE_FIELD.get(value, value)
    return None


def _unit_kind(units: str) -> tuple[str, float]:
    """('current', factor to A) | ('per-unit', 1) | ('voltage', 1) | ('unknown', 1)."""
    key = units.strip().lower().replace(" ", "")
    if key in _CURRENT_UNITS:
        return "current", _CURRENT_UNITS[key]
    if key in _PER_UNIT_UNITS:
        return "per-unit", 1.0
    if key in _VOLTAGE_UNITS:
        return "voltage", 1.0
    return "unknown", 1.0


def _is_differential(channel: _Channel) -> bool:
    text = f"{channel.name} {channel.channel.ccbm}".lower()
    return not _NOT_DIFFERENTIAL.search(text) and bool(_DIFFERENTIAL.search(text))


def _select_channels(all_channels: list[_Channel], requested: ChannelSpec | None) -> list[_Channel]:
    if requested is not None:
        return _requested_channels(all_channels, requested)
    currents = [c for c in all_channels if _unit_kind(c.units)[0] in ("current", "per-unit", "unknown")]
    differential = [c for c in currents if _is_differential(c) and c.phase in PHASES]
    sets: dict[str, dict[str, _Channel]] = {}
    for channel in differential:
        stem = _stem(channel)
        sets.setdefault(stem, {}).setdefault(channel.phase, channel)
    complete = [phases for phases in sets.values() if len(phases) == N_PHASES]
    if len(complete) == 1:
        return [complete[0][phase] for phase in PHASES]
    if len(complete) > 1:
        listed = "; ".join(", ".join(s[p].label for p in PHASES) for s in complete)
        raise WaveformError(f"the record holds {len(complete)} sets of differential currents ({listed}); "
                            "name the three channels to analyse")
    if differential:
        found = ", ".join(f"{c.label} phase {c.phase}" for c in differential)
        raise WaveformError(f"no complete set of phase A, B, C differential currents: found only {found}; "
                            "name the three channels to analyse")
    phase_currents = [c for c in all_channels if _unit_kind(c.units)[0] == "current" and c.phase in PHASES]
    if phase_currents:
        listed = ", ".join(c.label for c in phase_currents[:12]) + (" ..." if len(phase_currents) > 12 else "")
        raise WaveformError(
            f"no differential-current channels: the record holds {len(phase_currents)} phase currents ({listed}), "
            "i.e. winding or line currents. The model reads the differential currents I_P - I_S, which need the "
            "transformer's ratio and vector-group compensation that the record does not give, so none is "
            "guessed. Record the relay's differential (operate) currents, or name the three channels to "
            "analyse if they are differential currents under other names")
    listed = ", ".join(f"{c.label} [{c.units or 'no units'}]" for c in all_channels[:12])
    raise WaveformError(f"no phase current channels found among the {len(all_channels)} analog channels "
                        f"({listed}); name the three differential-current channels to analyse")


def _stem(channel: _Channel) -> str:
    """The channel name without its trailing phase mark, so IdA/IdB/IdC (or IOP1..3) group together."""
    name = channel.name.lower()
    mark = re.search(r"[_\s-]?(?:ph(?:ase)?|l)?[_\s-]?([abc123])$", name)
    if channel.phase and mark and _PHASE_FIELD.get(mark.group(1).upper()) == channel.phase:
        return name[:mark.start()]
    return name


def _requested_channels(all_channels: list[_Channel], requested: ChannelSpec) -> list[_Channel]:
    if isinstance(requested, str | bytes) or len(requested) != N_PHASES:
        raise WaveformError(f"name exactly three channels (phases A, B, C), got {requested!r}")
    available = ", ".join(c.label for c in all_channels[:24]) + (" ..." if len(all_channels) > 24 else "")
    chosen = []
    for item in requested:
        if isinstance(item, bool):
            raise WaveformError(f"channel {item!r} is neither a name nor an analog channel number")
        if isinstance(item, int | np.integer):
            matches = [c for c in all_channels if c.number == int(item)]
        else:
            wanted = str(item).strip()
            matches = [c for c in all_channels if c.name == wanted] or \
                      [c for c in all_channels if c.name.lower() == wanted.lower()]
        if not matches:
            raise WaveformError(f"no analog channel {item!r} in the record; its analog channels are {available}")
        if len(matches) > 1:
            raise WaveformError(f"several analog channels are called {item!r}; give their numbers instead "
                                f"({', '.join(c.label for c in matches)})")
        channel = matches[0]
        if _unit_kind(channel.units)[0] == "voltage":
            raise WaveformError(f"channel {channel.label} is a voltage ({channel.units}); the model reads "
                                "differential currents")
        chosen.append(channel)
    if len({c.index for c in chosen}) < N_PHASES:
        raise WaveformError(f"the same channel is named twice in {requested!r}; name three different channels")
    return chosen


# --- data -----------------------------------------------------------------------------------------

def _read_samples(config: _Config, dat: bytes, chosen: list[_Channel]) -> tuple[np.ndarray, np.ndarray | None]:
    """(3, n) values a*x+b of the chosen channels (NaN = missing) and, without rates, their times in s."""
    cfg = config.cfg
    n_analog, n_status = cfg.analog_count, cfg.status_count
    if config.data_format == "ASCII":
        return _read_ascii(config, dat, chosen)
    analog_type, missing = _BINARY_ANALOG[config.data_format]
    row = np.dtype([("n", "<u4"), ("t", "<u4"), ("a", analog_type, (n_analog,)),
                    ("s", "<u2", (math.ceil(n_status / 16),))])
    if len(dat) % row.itemsize:
        raise WaveformError(
            f"the {config.data_format} .dat holds {len(dat)} bytes, not a whole number of {row.itemsize}-byte "
            f"samples ({n_analog} analog, {n_status} status channels): it does not match the .cfg")
    rows = len(dat) // row.itemsize
    _check_count(config, rows)
    table = np.frombuffer(dat, dtype=row)
    values = np.empty((N_PHASES, rows), dtype=np.float64)
    for k, channel in enumerate(chosen):
        raw = table["a"][:, channel.index].astype(np.float64)
        is_missing = ~np.isfinite(raw) if missing is None else raw == missing
        values[k] = channel.channel.a * raw + channel.channel.b
        values[k, is_missing] = np.nan
    times = None
    if config.segments[0][0] == 0.0:
        stamps = table["t"].astype(np.float64)
        stamps[table["t"] == 0xFFFFFFFF] = np.nan
        times = stamps * cfg.time_base * cfg.timemult
    return values, times


def _check_count(config: _Config, rows: int) -> None:
    if rows != config.total_samples:
        raise WaveformError(f"the .cfg declares {config.total_samples} samples per channel but the .dat holds "
                            f"{rows}: the files do not belong together or the .dat is truncated")


def _read_ascii(config: _Config, dat: bytes, chosen: list[_Channel]) -> tuple[np.ndarray, np.ndarray | None]:
    """The chosen channels of an ASCII .dat, read by numpy's C parser: the rows are counted and the
    commas checked on the bytes first, so a malformed or oversized file costs no Python objects per
    value. Missing values (blank, or 99999 from 1999 on) become NaN, as in the comtrade package."""
    if b"\x00" in dat[:4096]:
        raise WaveformError("the .dat (the .cfg says ASCII) is binary, not text")
    text = dat.replace(b"\x1a", b"").replace(b"\r\n", b"\n").replace(b"\r", b"\n")
    while b"\n\n" in text:  # blank lines
        text = text.replace(b"\n\n", b"\n")
    text = text.strip(b"\n")
    rows = text.count(b"\n") + 1 if text else 0
    _check_count(config, rows)
    expected = 2 + config.cfg.analog_count + config.cfg.status_count
    if text.count(b",") != rows * (expected - 1):
        for number, line in enumerate(io.BytesIO(text), start=1):
            if line.count(b",") != expected - 1:
                raise WaveformError(f"line {number} of the .dat has {line.count(b',') + 1} values; the .cfg declares "
                                    f"{expected} (sample number, time stamp, {config.cfg.analog_count} analog, "
                                    f"{config.cfg.status_count} status)")
    if b",," in text or b",\n" in text or text.endswith(b","):  # blank fields: missing values
        text = text.replace(b",,", b",nan,").replace(b",,", b",nan,").replace(b",\n", b",nan\n")
        text = text + b"nan" if text.endswith(b",") else text
    columns = (1, *(2 + channel.index for channel in chosen))
    try:
        table = np.loadtxt(io.BytesIO(text), delimiter=",", usecols=columns, dtype=np.float64, comments=None,
                           encoding="latin-1", ndmin=2, max_rows=rows)
    except ValueError as exc:
        raise WaveformError(f"the ASCII .dat cannot be read ({str(exc)[:160]}); expected lines of numbers: sample "
                            "number, time stamp, analog values, status values") from None
    missing = 99999.0 if config.cfg.rev_year != "1991" else None
    values = np.empty((N_PHASES, rows), dtype=np.float64)
    for k, channel in enumerate(chosen):
        raw = table[:, 1 + k]
        values[k] = channel.channel.a * raw + channel.channel.b
        if missing is not None:
            values[k, raw == missing] = np.nan
    times = table[:, 0] * config.cfg.time_base * config.cfg.timemult if config.segments[0][0] == 0.0 else None
    return values, times


def _to_amperes(chosen: list[_Channel], values: np.ndarray, side: Side) -> tuple[np.ndarray, str, list[str]]:
    """Values in A (or pu) on the requested side, the units text and notes on what was done."""
    notes: list[str] = []
    kinds = [_unit_kind(c.units)[0] for c in chosen]
    known = set(kinds) - {"unknown"}
    if len(known) > 1:
        listed = ", ".join(f"{c.name} [{c.units}]" for c in chosen)
        raise WaveformError(f"the three channels are in different kinds of units ({listed}); "
                            "choose three channels of the same kind")
    base_units = {"current": "A", "per-unit": "pu"}.get(next(iter(known), ""), "units as recorded")
    if "unknown" in kinds:
        unnamed = ", ".join(f"{c.name} [{c.units or 'blank'}]" for c, kind in zip(chosen, kinds, strict=True)
                            if kind == "unknown")
        notes.append(f"the .cfg gives no current units for {unnamed}")
    scaled = values.copy()
    sides = set()
    for k, channel in enumerate(chosen):
        scaled[k] *= _unit_kind(channel.units)[1]
        flag = channel.channel.pors.strip().upper()
        primary, secondary = channel.channel.primary, channel.channel.secondary
        if base_units == "pu" or flag not in ("P", "S") or not (primary > 0 and secondary > 0):
            sides.add("as recorded")
            continue
        recorded = "primary" if flag == "P" else "secondary"
        if recorded != side:
            scaled[k] *= (primary / secondary) if side == "primary" else (secondary / primary)
            notes.append(f"{channel.name}: recorded as {recorded} values, converted to {side} with the ratio "
                         f"{primary:g}/{secondary:g}")
        sides.add(side)
    if "as recorded" in sides and base_units != "pu":
        notes.append("no primary/secondary ratio in the .cfg (1991 record or blank fields): values as recorded")
    skews = [abs(c.channel.skew) for c in chosen]
    if max(skews) > 1.0:
        notes.append(f"channel time skews of up to {max(skews):g} us are not corrected")
    return scaled, f"{base_units} {' / '.join(sorted(sides))}", notes


# --- time base and window -------------------------------------------------------------------------

@dataclass(frozen=True)
class _Segment:
    """The samples at one rate that the window is taken from."""

    values: np.ndarray  # (3, n)
    rate_hz: float
    start_s: float  # time of its first sample from the record's first sample
    record_s: float  # duration of the whole record
    notes: tuple[str, ...]


def _segment_for(config: _Config, values: np.ndarray, times: np.ndarray | None, trigger_s: float | None) -> _Segment:
    """The part of the record at one sample rate: the one holding the trigger, else the first."""
    if times is not None:
        if not np.isfinite(times).all():
            raise WaveformError("the .cfg gives no sample rate (nrates 0) and some .dat time stamps are missing")
        steps = np.diff(times)
        if steps.size == 0 or (steps <= 0).any():
            raise WaveformError("the .cfg gives no sample rate and the .dat time stamps do not increase")
        step = float(np.median(steps))
        if np.abs(steps - step).max() > 0.01 * step:
            raise WaveformError("the .cfg gives no sample rate and the .dat time stamps are not evenly spaced; "
                                "export the record at a fixed sample rate")
        return _Segment(values, 1.0 / step, float(times[0]), float(times[-1] - times[0]) + step,
                        ("sample rate taken from the .dat time stamps",))
    segments = config.segments
    starts = np.cumsum([0.0] + [(end - first) / rate for rate, first, end in segments])
    index = 0
    if trigger_s is not None:
        index = next((i for i in range(len(segments)) if starts[i] <= trigger_s < starts[i + 1]), 0)
    rate, first, end = segments[index]
    notes: tuple[str, ...] = ()
    if len(segments) > 1:
        rates = ", ".join(f"{r:g} Hz" for r, _, _ in segments)
        where = "holding the trigger" if trigger_s is not None else "at its start"
        notes = (f"the record changes sample rate ({rates}); the part at {rate:g} Hz {where} is used",)
    return _Segment(values[:, first:end], rate, float(starts[index]), float(starts[-1]), notes)


def _resample(segment: np.ndarray, rate: float) -> tuple[np.ndarray, bool, list[str]]:
    """The segment at 10 kHz (zero-phase polyphase FIR); unchanged when already at 10 kHz."""
    if abs(rate / SAMPLE_RATE_HZ - 1.0) < 1e-6:
        return segment, False, []
    if rate < MIN_SAMPLE_RATE_HZ:
        raise WaveformError(f"the record is sampled at {rate:g} Hz ({rate / SYSTEM_FREQUENCY_HZ:.1f} samples per "
                            f"cycle); at least {MIN_SAMPLE_RATE_HZ:g} Hz is needed to see the event's waveform")
    factor = Fraction(SAMPLE_RATE_HZ / rate).limit_denominator(1000)
    notes = []
    if rate < SAMPLE_RATE_HZ:
        notes.append(f"recorded at {rate / 1e3:g} kHz: content above {rate / 2e3:g} kHz was not recorded, "
                     "the model was trained on 10 kHz data")
    resampled = resample_poly(segment, factor.numerator, factor.denominator, axis=1, padtype="line")
    return resampled, True, notes


def detect_onset(waveform: np.ndarray) -> int | None:
    """Sample (at 10 kHz) where the current first departs from its value one cycle earlier.

    The change |x(t) - x(t - T)| (largest over phases; T one 60 Hz cycle, interpolated) is
    compared with its 20th percentile over the record, which is the steady-state noise while the
    event changes less than 80 % of the record (a steady 60 Hz current cancels out): the first
    crossing of max(10 x that level, 1 % of the largest current, 15 % of the largest change) marks
    the event, and stepping back
    to where the change last sat at three times its pre-crossing median gives its start. None when
    nothing stands out; the first sample that has a cycle-earlier value when the event is under way
    from the start. Inrush and CT saturation show here when the differential current appears
    (core or CT saturating), a few ms after the switching or fault instant.
    """
    x = np.asarray(waveform, dtype=np.float64)
    whole = int(SAMPLES_PER_CYCLE)
    fraction = SAMPLES_PER_CYCLE - whole
    first = whole + 1
    if x.shape[-1] <= first + 1:
        return None
    delayed = (1.0 - fraction) * x[:, 1:x.shape[1] - whole] + fraction * x[:, :x.shape[1] - whole - 1]
    change = np.abs(x[:, first:] - delayed).max(axis=0)
    peak, quiet_level = float(change.max()), float(np.percentile(change, 20))
    floor = max(10.0 * quiet_level, 0.01 * float(np.abs(x).max()))
    if peak <= 0.0 or peak < floor:
        return None
    crossing = int(np.argmax(change >= max(floor, 0.15 * peak)))
    before = change[:max(crossing - 3, 0)]
    if before.size < 10:
        return first
    quiet = np.nonzero(before <= 3.0 * float(np.median(before)))[0]
    return first + (int(quiet[-1]) + 1 if quiet.size else 0)


def _place_window(resampled: np.ndarray, segment_start_s: float, trigger_s: float | None
                  ) -> tuple[int, Literal["trigger", "onset", "record start"], float | None, list[str]]:
    """(first sample, how it was placed, event time in the window in ms, notes)."""
    last_start = resampled.shape[1] - N_SAMPLES
    if trigger_s is not None:
        event = (trigger_s - segment_start_s) * SAMPLE_RATE_HZ
        placement: Literal["trigger", "onset", "record start"] = "trigger"
        lead_cycles = TRIGGER_LEAD_CYCLES
    else:
        onset = detect_onset(resampled)
        if onset is None:
            return 0, "record start", None, [f"no disturbance found in the record: the window is its first "
                                             f"{WINDOW_MS:.1f} ms"]
        event, placement, lead_cycles = float(onset), "onset", ONSET_LEAD_CYCLES
    wanted = int(round(event - lead_cycles * SAMPLES_PER_CYCLE))
    start = min(max(wanted, 0), last_start)
    notes = []
    if start != wanted:
        edge = "start" if wanted < start else "end"
        notes.append(f"the {placement} is too close to the record's {edge} for {lead_cycles:g} cycles before it: "
                     f"the window is clipped to the record")
    return start, placement, round((event - start) / SAMPLE_RATE_HZ * 1000.0, 2), notes


def _trigger_offset(config: _Config) -> tuple[float | None, list[str]]:
    """Trigger time from the record's first sample (s), or None with the reason."""
    if config.trigger is None or config.start is None:
        return None, ["no usable trigger time in the .cfg: the event is found from the data"]
    offset = _seconds_between(config.start, config.trigger)
    if offset < 0.0:
        return None, ["the trigger time is before the record's start time: the event is found from the data"]
    if offset == 0.0:
        return None, ["the trigger time is the record's start time: the event is found from the data"]
    return offset, []


def _window_of(cfg_name: str, cfg_bytes: bytes, dat_bytes: bytes, dat_format: str | None,
               channels: ChannelSpec | None, side: Side) -> ComtradeWindow:
    if side not in ("primary", "secondary"):
        raise WaveformError(f"side must be 'primary' or 'secondary', got {side!r}")
    if not cfg_bytes.strip():
        raise WaveformError("the .cfg is empty")
    config = _parse_config(cfg_bytes)
    cfg = config.cfg
    if dat_format is not None and dat_format != config.data_format:
        raise WaveformError(f"the DAT section is {dat_format} but the .cfg says {config.data_format}")
    frequency = float(cfg.frequency or 0.0)
    if not math.isfinite(frequency) or frequency <= 0.0:
        raise WaveformError("the .cfg gives no line frequency; the model only knows 60 Hz systems")
    if abs(frequency - SYSTEM_FREQUENCY_HZ) > FREQUENCY_TOLERANCE_HZ:
        raise WaveformError(f"the record is from a {frequency:g} Hz system; the model was trained on 60 Hz "
                            "recordings only and would misread other system frequencies")
    all_channels = _channels_of(cfg)
    if len(all_channels) < N_PHASES:
        raise WaveformError(f"the record has {len(all_channels)} analog channel(s); three phase differential "
                            "currents are needed")
    chosen = _select_channels(all_channels, channels)
    unscaled = [c.label for c in chosen if not (math.isfinite(c.channel.a) and math.isfinite(c.channel.b))]
    if unscaled:
        raise WaveformError(f"the .cfg gives no finite multiplier a and offset b for {', '.join(unscaled)}")
    if not dat_bytes:
        raise WaveformError("the .dat data file is empty")
    values, times = _read_samples(config, dat_bytes, chosen)
    values, units, notes = _to_amperes(chosen, values, side)

    trigger_s, trigger_notes = _trigger_offset(config)
    segment = _segment_for(config, values, times, trigger_s)
    notes += segment.notes
    segment_ms = segment.values.shape[1] / segment.rate_hz * 1000.0
    if segment.values.shape[1] * SAMPLE_RATE_HZ / segment.rate_hz < N_SAMPLES - 0.5:
        raise WaveformError(f"the record lasts {segment_ms:.1f} ms at {segment.rate_hz:g} Hz; the model needs "
                            f"{WINDOW_MS:.1f} ms ({N_SAMPLES} samples at 10 kHz)")
    missing = {c.name: int(np.isnan(row).sum()) for c, row in zip(chosen, segment.values, strict=True)
               if np.isnan(row).any()}
    if missing:
        listed = ", ".join(f"{name}: {count}" for name, count in missing.items())
        raise WaveformError(f"samples marked missing in the .dat ({listed}); the window needs complete channels")
    resampled, was_resampled, resample_notes = _resample(segment.values, segment.rate_hz)
    notes += resample_notes
    if resampled.shape[1] < N_SAMPLES:
        raise WaveformError(f"the record lasts {segment_ms:.1f} ms; the model needs {WINDOW_MS:.1f} ms "
                            f"({N_SAMPLES} samples at 10 kHz)")
    if trigger_s is not None and not 0.0 <= trigger_s - segment.start_s < resampled.shape[1] / SAMPLE_RATE_HZ:
        trigger_s, trigger_notes = None, ["the trigger time lies after the record's end: the event is found "
                                          "from the data"]
    notes += trigger_notes
    start, placement, event_ms, window_notes = _place_window(resampled, segment.start_s, trigger_s)
    notes += window_notes
    waveform = validate_waveform(resampled[:, start:start + N_SAMPLES])
    window_start_s = segment.start_s + start / SAMPLE_RATE_HZ
    return ComtradeWindow(
        waveform=waveform,
        source=cfg_name,
        station=cfg.station_name.strip(),
        device=cfg.rec_dev_id.strip(),
        revision=cfg.rev_year,
        data_format=config.data_format,
        channels=tuple(c.name for c in chosen),
        channel_numbers=tuple(c.number for c in chosen),
        units=units,
        line_frequency_hz=frequency,
        original_rate_hz=round(segment.rate_hz, 6),
        resampled=was_resampled,
        record_ms=round(segment.record_s * 1000.0, 3),
        window_start_ms=round(window_start_s * 1000.0, 3),
        window_start_time=_iso(config.start, window_start_s) if config.start is not None else None,
        placement=placement,
        event_ms_in_window=event_ms,
        trigger_ms=round(trigger_s * 1000.0, 3) if trigger_s is not None else None,
        notes=tuple(notes),
    )
