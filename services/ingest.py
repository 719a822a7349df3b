"""Reading users' waveform files: `.npy` arrays, CSV/text tables and COMTRADE records, one window
or a labelled folder.

Uploaded bytes are untrusted: `.npy` files are read with `allow_pickle=False` (a pickle can run
code), sizes are bounded, and every problem becomes a `WaveformError` whose message tells the
user what was expected. Text tables follow the layout of the original data set: columns
time, Ia, Ib, Ic (header optional), one row per sample at 10 kHz. COMTRADE records (`.cfg` +
`.dat`, or `.cff`) go through `services.comtrade_ingest`, which picks the channels, resamples and
places the window; `LoadedWaveform.comtrade` then says what was analysed.

Amplitudes are brought to the window unit (kA on the data set's 500 MVA, 230 kV system) by
`services.units`: `.npy` and text windows are taken as already in that unit unless the caller names
another (`unit="A"`, `"kA"`, `"pu"`, with the unit's `rated_current_a`); a COMTRADE record's unit
comes from its `.cfg` (amperes), scaled by the given rating or the reference's 1255.1 A.
`LoadedWaveform.units` says which conversion was used.
"""

from __future__ import annotations

import io
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from services.comtrade_ingest import (
    COMPANION_SUFFIXES,
    COMTRADE_SUFFIXES,
    MAX_RECORD_BYTES,
    ChannelSpec,
    ComtradeWindow,
    is_comtrade_name,
    load_comtrade,
    read_comtrade,
)
from services.labels import LABELS
from services.units import UnitConversion, comtrade_unit, convert, normalise_unit
from services.waveform import (
    N_PHASES,
    N_SAMPLES,
    SAMPLE_RATE_HZ,
    WaveformError,
    validate_waveform,
)

MAX_FILE_BYTES = 10 * 1024 * 1024
TEXT_SUFFIXES = (".csv", ".txt", ".dat", ".tsv")
DATA_SUFFIXES = (".npy", *TEXT_SUFFIXES)
#: every file name an upload may carry: windows, and COMTRADE records with their companion files
UPLOAD_SUFFIXES = (*DATA_SUFFIXES, *COMTRADE_SUFFIXES, *COMPANION_SUFFIXES)
MAX_UPLOAD_FILES = 1 + len(COMPANION_SUFFIXES)  # .cfg, .dat, .hdr, .inf
_EXPECTED = f"a ({N_PHASES}, {N_SAMPLES}) waveform (phases A, B, C x {N_SAMPLES} samples at 10 kHz)"
_SAMPLE_PERIOD_S = 1.0 / SAMPLE_RATE_HZ
#: lines a text window may have: its rows plus a header, comments and blank lines
MAX_TEXT_LINES = N_SAMPLES + 64
#: time-column units we recognise, by the step one 10 kHz sample takes in them
_TIME_UNITS = (("s", _SAMPLE_PERIOD_S), ("ms", _SAMPLE_PERIOD_S * 1e3), ("us", _SAMPLE_PERIOD_S * 1e6))


@dataclass(frozen=True)
class LoadedWaveform:
    """A window read from a user's file(s), and for a COMTRADE record what was taken from it."""

    waveform: np.ndarray  # float32 (3, 726) in the window unit (services.units)
    name: str  # the file analysed: the window file, or the record's .cfg / .cff
    files: tuple[str, ...]
    comtrade: ComtradeWindow | None = None
    units: UnitConversion | None = None  # how the recorded values became window values

    @property
    def summary(self) -> str | None:
        """Which channels and window of a COMTRADE record were analysed and in what units; for a
        plain window the unit conversion when a unit was given, else None."""
        units = self.units.summary() if self.units is not None else None
        if self.comtrade is not None:
            return f"{self.comtrade.summary()}; {units}" if units else self.comtrade.summary()
        if self.units is not None and self.units.source != "default":
            return units
        return None

    @property
    def units_summary(self) -> str | None:
        """The unit conversion alone, e.g. '1.5 kA record of a 1.2 kA unit = 1.25 pu; ...'."""
        return self.units.summary() if self.units is not None else None


def safe_filename(name: object) -> str:
    """An uploaded file's name as it may be shown and stored: the last path part, without control or
    format characters (a carriage return would start a new CSV row, a right-to-left mark would
    disguise the suffix), at most MAX_FILENAME_CHARS characters with its suffix kept; "upload" when
    nothing is left."""
    text = str(name or "")
    text = text.replace("\\", "/").rsplit("/", 1)[-1]
    text = "".join(char for char in text if unicodedata.category(char) not in _HIDDEN_CATEGORIES)
    text = " ".join(text.split()).strip(" .")
    if len(text) > MAX_FILENAME_CHARS:
        suffix = Path(text).suffix[:16]
        text = text[:MAX_FILENAME_CHARS - len(suffix)] + suffix
    return text or "upload"


#: Unicode categories never kept in a stored file name: controls, format marks, separators, unassigned
_HIDDEN_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"})
MAX_FILENAME_CHARS = 120


_COMTRADE_FILE_ORDER = (*COMTRADE_SUFFIXES, *COMPANION_SUFFIXES)  # .cfg, .cff, .dat, .hdr, .inf


def _comtrade_file_order(name: str) -> tuple[int, str]:
    """The record's files as people name them, whatever order the browser sent: cfg, dat, the rest."""
    suffix = Path(name).suffix.lower()
    rank = _COMTRADE_FILE_ORDER.index(suffix) if suffix in _COMTRADE_FILE_ORDER else len(_COMTRADE_FILE_ORDER)
    return rank, name


def parse_uploaded_files(files: Sequence[tuple[str, bytes]], *, channels: ChannelSpec | None = None,
                         rated_current_a: float | str | None = None, unit: str | None = None,
                         max_bytes: int = MAX_RECORD_BYTES) -> LoadedWaveform:
    """One upload of (name, bytes) pairs: a single `.npy`/CSV window, or a COMTRADE record.

    A record is a `.cfg` with its `.dat` (optionally `.hdr`, `.inf`), or one `.cff`; `channels`
    names its three channels (see `services.comtrade_ingest.read_comtrade`) and is ignored for
    plain windows. `unit` ("window", "A", "kA", "pu"; default "window" for plain windows, the
    `.cfg`'s for a record) and `rated_current_a` (the protected unit's rated current in amperes;
    default the reference's 1255.1 A) bring the values to the window unit (services.units).
    `max_bytes` is the largest COMTRADE record accepted (the web app passes its upload limit).
    Raises WaveformError (services.units.UnitError for a bad unit or rating) naming the file(s).
    """
    if not files:
        raise WaveformError("no file received")
    names = [safe_filename(name) for name, _ in files]
    if len(files) > MAX_UPLOAD_FILES:
        raise WaveformError(f"{len(files)} files at once; upload one recording: a .npy or CSV file, or a COMTRADE "
                            ".cfg with its .dat (or one .cff)")
    suffixes = [Path(name).suffix.lower() for name in names]
    if any(is_comtrade_name(name) for name in names):
        window = read_comtrade([(name, data) for name, (_, data) in zip(names, files, strict=True)],
                               channels=channels, max_bytes=max_bytes)
        waveform, units = _comtrade_units(window, unit, rated_current_a)
        return LoadedWaveform(waveform, window.source, tuple(sorted(names, key=_comtrade_file_order)), window, units)
    if len(files) > 1:
        if ".dat" in suffixes:
            dat = names[suffixes.index(".dat")]
            raise WaveformError(f"{dat}: a COMTRADE .dat can only be read with its .cfg; upload both together")
        raise WaveformError(f"{', '.join(names)}: upload one window file at a time (or a COMTRADE .cfg with its .dat)")
    waveform, units = _window_units(_parse_window_bytes(files[0][1], names[0]), unit, rated_current_a, names[0])
    return LoadedWaveform(waveform, names[0], (names[0],), None, units)


def _window_units(raw: np.ndarray, unit: str | None, rated_current_a: float | str | None, name: str
                  ) -> tuple[np.ndarray, UnitConversion]:
    """A plain window's values in the window unit (default: already in it)."""
    try:
        waveform, units = convert(raw, unit, rated_current_a)
    except WaveformError as exc:
        raise type(exc)(f"{name}: {exc}") from None
    return validate_waveform(waveform), units


def _comtrade_units(window: ComtradeWindow, unit: str | None, rated_current_a: float | str | None
                    ) -> tuple[np.ndarray, UnitConversion]:
    """A record's window in the window unit: its `.cfg` unit (amperes or pu) wins over a unit given."""
    recorded = comtrade_unit(window.units)
    note = None
    try:
        given = normalise_unit(unit) if unit is not None and str(unit).strip() else None
        if recorded is None:  # the .cfg names no current unit: the one given, else amperes
            chosen, source = (given, "given") if given else ("A", "assumed: the .cfg names no unit")
        else:
            chosen, source = recorded, "COMTRADE .cfg"
            if given is not None and given != recorded:
                note = f"the .cfg gives {recorded}; the unit {given} given was not used"
        waveform, units = convert(window.waveform, chosen, rated_current_a, unit_source=source, note=note)
    except WaveformError as exc:
        raise type(exc)(f"{window.source}: {exc}") from None
    return validate_waveform(waveform), units


def parse_waveform_bytes(data: bytes, filename: str, *, rated_current_a: float | str | None = None,
                         unit: str | None = None) -> np.ndarray:
    """Parse an uploaded `.npy`, CSV/text or single-file COMTRADE `.cff` into a float32 (3, 726) waveform
    in the window unit (`unit`/`rated_current_a` as in `parse_uploaded_files`).

    `.npy`: shape (3, 726), or (726, 3) which is transposed. Text: columns time, Ia, Ib, Ic (or
    just Ia, Ib, Ic), header optional, separated by commas, semicolons, tabs or spaces, 726 rows.
    A `.cfg` needs its `.dat`: use `parse_uploaded_files` for the pair.
    Raises WaveformError with a message naming the file and what was expected.
    """
    name = Path(filename or "upload").name
    if Path(name).suffix.lower() == ".cff":
        return parse_uploaded_files([(name, data)], rated_current_a=rated_current_a, unit=unit).waveform
    return _window_units(_parse_window_bytes(data, name), unit, rated_current_a, name)[0]


def _parse_window_bytes(data: bytes, filename: str) -> np.ndarray:
    """`parse_waveform_bytes` without the unit conversion (values as written in the file)."""
    name = Path(filename or "upload").name
    if not isinstance(data, bytes | bytearray | memoryview):
        raise WaveformError(f"{name}: expected the file's bytes, got {type(data).__name__}")
    data = bytes(data)
    if not data:
        raise WaveformError(f"{name}: the file is empty; expected {_EXPECTED}")
    if len(data) > MAX_FILE_BYTES:
        raise WaveformError(
            f"{name}: the file is {len(data) / 1e6:.1f} MB, more than the {MAX_FILE_BYTES // 2**20} MB "
            f"accepted for one window; expected {_EXPECTED}"
        )
    suffix = Path(name).suffix.lower()
    if suffix == ".cfg":
        raise WaveformError(f"{name}: a COMTRADE .cfg only describes the channels; its samples are in the .dat: "
                            "upload the .cfg and the .dat together")
    try:
        if suffix == ".npy" or data[:6] == b"\x93NUMPY":
            waveform = _parse_npy(data)
        elif suffix in TEXT_SUFFIXES or suffix == "":
            waveform = _parse_text(data)
        else:
            raise WaveformError(
                f"unsupported file type {suffix!r}; use .npy ({N_PHASES}, {N_SAMPLES}), CSV/text "
                "with columns time, Ia, Ib, Ic, or a COMTRADE record (.cfg + .dat, or .cff)"
            )
    except WaveformError as exc:
        hint = " (if this is a COMTRADE .dat, upload it together with its .cfg)" if suffix == ".dat" else ""
        raise WaveformError(f"{name}: {exc}{hint}") from None
    return waveform


def load_waveform_file(path: str | Path, *, rated_current_a: float | str | None = None,
                       unit: str | None = None) -> np.ndarray:
    """Read one waveform file from disk in the window unit (see parse_waveform_bytes; a `.cfg` finds
    its `.dat` beside it); WaveformError if unusable."""
    return load_waveform_source(path, rated_current_a=rated_current_a, unit=unit).waveform


def load_waveform_source(path: str | Path, *, channels: ChannelSpec | None = None,
                         rated_current_a: float | str | None = None, unit: str | None = None) -> LoadedWaveform:
    """`load_waveform_file` with what was read: for a COMTRADE `.cfg`/`.cff`, its channels and window,
    and the unit conversion used (`unit`, `rated_current_a` as in `parse_uploaded_files`)."""
    path = Path(path)
    if is_comtrade_name(path.name):
        window = load_comtrade(path, channels=channels)
        waveform, units = _comtrade_units(window, unit, rated_current_a)
        return LoadedWaveform(waveform, path.name, (path.name,), window, units)
    try:
        size = path.stat().st_size
        if size > MAX_FILE_BYTES:
            raise WaveformError(f"{path.name}: the file is {size / 1e6:.1f} MB; expected {_EXPECTED}")
        data = path.read_bytes()
    except OSError as exc:
        raise WaveformError(f"{path}: cannot read the file ({exc.strerror or exc})") from None
    waveform, units = _window_units(_parse_window_bytes(data, path.name), unit, rated_current_a, path.name)
    return LoadedWaveform(waveform, path.name, (path.name,), None, units)


def load_labelled_folder(root: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """Load a labelled data set strictly: X float32 (n, 3, 726) and y int64 (n,).

    Any layout `services.dataset.load_dataset_tree` reads: one folder per label (a label string of
    docs/contracts.md, "Labels" or an id 0-44, `.npy`, CSV/text or COMTRADE files), the nested layout of the
    original data set (e.g. `transient/capacitor_switching/`), or the public data set's tree as
    downloaded. Unlike `load_dataset_tree`, which lists bad files and skips them, this raises
    WaveformError naming the unreadable files or unrecognised folders (duplicates are dropped).
    """
    from services.dataset import scan_dataset_tree

    tree = scan_dataset_tree(root)
    problems = [(path, reason) for path, reason in tree.skipped if not reason.startswith("duplicate of")]
    if problems:
        listed = "; ".join(f"{path}: {reason}" for path, reason in problems[:5])
        raise WaveformError(
            f"{root}: {len(problems)} file(s) cannot be used ({listed}); name folders by the label strings "
            f"(e.g. {LABELS[0]}, {LABELS[39]}), ids 0-{len(LABELS) - 1} or the data set's own folders"
        )
    if not tree.files:
        raise WaveformError(f"{root}: no .npy, CSV/text or COMTRADE files in label sub-folders")
    return tree.X, tree.y


def _parse_npy(data: bytes) -> np.ndarray:
    """The window of a `.npy` file, its header checked before any array is made: a header may claim
    (3, 10^12) values, which `np.load` would try to allocate; pickled objects are refused."""
    stream = io.BytesIO(data)
    readers = {(1, 0): np.lib.format.read_array_header_1_0, (2, 0): np.lib.format.read_array_header_2_0}
    try:
        version = np.lib.format.read_magic(stream)
        reader = readers.get(version)
        if reader is not None:
            shape, fortran_order, dtype = reader(stream)
    except (ValueError, TypeError, SyntaxError, OverflowError, MemoryError, EOFError) as exc:
        raise WaveformError(f"not a valid .npy file ({str(exc)[:200]})") from None
    if reader is None:
        raise WaveformError(f"not a valid .npy file (format version {version[0]}.{version[1]} is not read here; "
                            "save it with numpy.save)")
    if dtype.hasobject:
        raise WaveformError(
            "the .npy file holds Python objects (pickled data), which is refused for safety; "
            f"save {_EXPECTED} as a numeric float array"
        )
    if dtype.kind not in "biuf" or dtype.fields is not None or dtype.subdtype is not None:
        raise WaveformError(f"expected numeric values, got dtype {dtype}")
    if shape not in ((N_PHASES, N_SAMPLES), (N_SAMPLES, N_PHASES)):
        shown = shape if len(shape) <= 8 else f"{len(shape)} dimensions"
        raise WaveformError(f"expected {_EXPECTED} or its transpose ({N_SAMPLES}, {N_PHASES}), got shape {shown}")
    count = N_PHASES * N_SAMPLES
    offset = stream.tell()
    if len(data) - offset < count * dtype.itemsize:
        raise WaveformError(f"not a valid .npy file (the header promises {count} values but the file is truncated)")
    array = np.frombuffer(data, dtype=dtype, count=count, offset=offset).reshape(shape, order="F" if fortran_order
                                                                                 else "C")
    if array.shape == (N_SAMPLES, N_PHASES):
        array = array.T
    return validate_waveform(array)


def _decode(data: bytes) -> str:
    if b"\x00" in data[:4096]:
        raise WaveformError("this is a binary file, not CSV/text; expected columns time, Ia, Ib, Ic")
    for encoding in ("utf-8-sig", "latin-1"):
        try:
            return data.decode(encoding)
        except UnicodeDecodeError:
            continue
    raise WaveformError("cannot decode the text")  # pragma: no cover - latin-1 decodes any bytes


def _split_rows(text: str) -> list[list[str]]:
    """Rows of cells; the separator is the one (';', ',', tab, spaces) that splits the data best.

    The shape is checked before the whole table is split: more lines than a window has rows, or a
    first data row wider than a window, is refused while it costs nothing (a 10 MB one-column file
    would otherwise become a million small strings)."""
    text = text.replace("\r\n", "\n").replace("\r", "\n") if "\r" in text else text
    n_lines = text.count("\n") + 1
    if n_lines > MAX_TEXT_LINES:
        raise WaveformError(f"expected {N_SAMPLES} rows (72.6 ms at 10 kHz), the file has {n_lines:,} lines; cut "
                            f"the recording to one {N_SAMPLES}-sample window of time, Ia, Ib, Ic")
    lines = [line.strip() for line in text.split("\n")]
    lines = [line for line in lines if line and not line.startswith("#")]
    if not lines:
        raise WaveformError("the file holds no data rows; expected columns time, Ia, Ib, Ic")
    sample = lines[-1]
    if ";" in sample:
        # semicolon tables may use a decimal comma (e.g. "0,0123;-1,25")
        separator: str | None = ";"
    elif "," in sample:
        separator = ","
    else:
        separator = None
    widest = N_SAMPLES + 1 if len(lines) <= N_PHASES + 1 else N_PHASES + 1  # (3, 726) layout, else rows
    for number, line in enumerate(lines):
        limit = max(widest, 16) if number == 0 else widest  # the first line may be a wider header
        width = line.count(separator) + 1 if separator else len(line.split(None, limit))
        if width > limit:
            raise WaveformError(f"expected 4 columns (time, Ia, Ib, Ic) or 3 (Ia, Ib, Ic), got "
                                f"{'more than ' if not separator else ''}{width - (not separator):,} in a row")
    if separator == ";":
        return [[cell.strip().replace(",", ".") for cell in line.split(";")] for line in lines]
    if separator == ",":
        return [[cell.strip() for cell in line.split(",")] for line in lines]
    return [line.split() for line in lines]


def _parse_text(data: bytes) -> np.ndarray:
    rows = _split_rows(_decode(data))
    header: list[str] | None = None
    if not _is_numeric_row(rows[0]):
        header, rows = rows[0], rows[1:]
    if not rows:
        raise WaveformError("only a header line, no data rows; expected 726 rows of time, Ia, Ib, Ic")
    widths = {len(row) for row in rows}
    if len(widths) != 1:
        raise WaveformError(
            f"rows have different numbers of columns ({sorted(widths)}); expected columns time, Ia, Ib, Ic"
        )
    try:
        table = np.array([[float(cell) for cell in row] for row in rows], dtype=np.float64)
    except ValueError as exc:
        raise WaveformError(f"non-numeric value in the data rows ({exc}); expected numbers only") from None
    if table.shape == (N_PHASES, N_SAMPLES):  # phases as rows, e.g. np.savetxt of a (3, 726) array
        return validate_waveform(table)
    n_rows, n_cols = table.shape
    if n_cols == N_PHASES + 1:
        time, phases = table[:, 0], table[:, 1:]
        _check_time_column(time, header[0] if header else None)
    elif n_cols == N_PHASES:
        phases = table
    else:
        raise WaveformError(
            f"expected 4 columns (time, Ia, Ib, Ic) or 3 (Ia, Ib, Ic), got {n_cols}"
        )
    if n_rows != N_SAMPLES:
        raise WaveformError(
            f"expected {N_SAMPLES} rows (72.6 ms at 10 kHz), got {n_rows}; cut the recording to one "
            f"{N_SAMPLES}-sample window"
        )
    return validate_waveform(phases.T)


def _is_numeric_row(row: list[str]) -> bool:
    try:
        [float(cell) for cell in row]
    except ValueError:
        return False
    return True


def _check_time_column(time: np.ndarray, header: str | None) -> None:
    """The time column must step by one 10 kHz sample (in s, ms or us); say what it shows otherwise."""
    if not np.isfinite(time).all():
        raise WaveformError("the time column holds NaN or Inf")
    steps = np.diff(time)
    if steps.size == 0:
        return
    if (steps <= 0).any():
        raise WaveformError("the time column is not strictly increasing; expected one row per sample in time order")
    step = float(np.median(steps))
    if np.abs(steps - step).max() > 0.05 * step:
        raise WaveformError("the time column is not evenly spaced; expected a uniform 10 kHz sampling")
    units = _TIME_UNITS
    if header:
        named = header.lower()
        if "ms" in named:
            units = (("ms", _SAMPLE_PERIOD_S * 1e3),)
        elif "us" in named or "µs" in named:
            units = (("us", _SAMPLE_PERIOD_S * 1e6),)
    for _, expected_step in units:
        if abs(step / expected_step - 1.0) <= 0.02:
            return
    readings = " or ".join(
        f"{expected_step / step * SAMPLE_RATE_HZ / 1e3:.3g} kHz if in {unit}" for unit, expected_step in units
    )
    raise WaveformError(
        f"the time column steps by {step:g}, i.e. a sample rate of {readings}; this model needs "
        f"10 kHz (steps of 0.0001 s, 0.1 ms or 100 us). Resample the recording to 10 kHz first"
    )
