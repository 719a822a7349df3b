"""Labelled folder trees: the public data set as downloaded, and a folder per label.

The public data set "Transients and Faults in Power Transformers and Phase Angle Regulators"
(Bera, Isik, Kumar, IEEE DataPort 2020, DOI 10.21227/1d1w-q940) comes as one zip,
`Dataset for Transformer & PAR transients.zip` (about 100,900 text files: 88,128 internal faults,
12,780 other transients, and a `Dataset_Readme.pdf`). Public code that reads it
(e.g. github.com/ogbonda GridX `data_processor.py`, Databricks `comtrade` solution-accelerator
notebooks) shows the tree after unzipping:

    Dataset for Transformer & PAR transients/          (zip folder, sometimes twice)
      data for transformer and par/
        internal faults/
          ispar exciting transformer internal faults/Class1 ... Class11, tt, ww/*.txt
          ispar series transformer internal faults/...
          power transformer internal faults/...
        transient disturbances/
          capacitor switching/*.txt, external fault with CT saturation/, ferroresonance/,
          magnetising inrush/, non-linear load switching/, sympathetic inrush/

Each file (PSCAD multiple-run output, e.g. `ep_back_tfull20_r00002_01.txt`) is a comma-separated
table without a header: time (s), Ia, Ib, Ic, 726 rows at 10 kHz, differential currents in kA
(docs/contracts.md, "Waveforms"). Our 45 label strings are that path with spaces as underscores
(`internal_..._Class1`, `transient_capacitor_switching`).

A file's label comes from its folder path, read leniently: case, `-`/`_`/space separators,
`Class10` or `class 10`, unit folder and class folder merged (`exciting_Class1`), extra wrapper
folders above (the zip's own folder) or below (run folders), and the older layout of one folder per
label named by a label string or id (`load_labelled_folder`). Files that cannot be used (wrong row
count, not numeric, a folder that names no label, a duplicate of another file) are listed with the
reason and skipped. Text files are parsed with numpy in one call each (about 0.1 ms a file) so the
whole data set loads in a few minutes on one core.
"""

from __future__ import annotations

import hashlib
import os
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import numpy as np

from services.comtrade_ingest import COMTRADE_SUFFIXES
from services.labels import FAULT_KINDS, FAULT_SUFFIXES, LABEL_TO_ID, LABELS
from services.units import UnitConversion, conversion_for, convert
from services.waveform import N_PHASES, N_SAMPLES, WaveformError, validate_waveform

TEXT_SUFFIXES = (".txt", ".csv", ".tsv", ".dat")
WINDOW_SUFFIXES = (".npy", *TEXT_SUFFIXES, *COMTRADE_SUFFIXES)
#: folders that are never data: macOS zip resource forks, version control, caches
_IGNORED_FOLDERS = {"__macosx", "__pycache__"}
_SEPARATORS = re.compile(r"[^a-z0-9&]+")  # after lower-casing: spaces, '_', '-', brackets, dots...
_CLASS = re.compile(r"^(?:(?P<prefix>.*?)\s?)?(?P<word>class\s?)?(?P<cls>\d{1,2}|tt|ww)$")
_EXCITING = {"exciting", "excitation", "exciter"}
_PAR = {"par", "ispar", "pst", "pars", "regulator", "regulators", "phase", "angle"}
_TRANSFORMER = {"transformer", "transformers", "pt", "xfmr", "trafo"}
#: transient kinds by words in a folder name (sympathetic before the plain inrush)
_TRANSIENT_WORDS: tuple[tuple[tuple[str, ...], str], ...] = (
    (("sympathetic",), "transient_sympathetic_inrush"),
    (("inrush",), "transient_magnetising_inrush"),
    (("magnetising",), "transient_magnetising_inrush"),
    (("magnetizing",), "transient_magnetising_inrush"),
    (("capacitor",), "transient_capacitor_switching"),
    (("ferroresonance",), "transient_ferroresonance"),
    (("ferro", "resonance"), "transient_ferroresonance"),
    (("non", "linear"), "transient_non-linear_load_switching"),
    (("nonlinear",), "transient_non-linear_load_switching"),
    (("external",), "transient_external_fault_with_CT_saturation"),
    (("saturation",), "transient_external_fault_with_CT_saturation"),
)
_EQUIPMENT_PREFIX = {
    "ispar_exciting": "internal_ispar_exciting_transformer_internal_faults_",
    "ispar_series": "internal_ispar_series_transformer_internal_faults_",
    "power_transformer": "internal_power_transformer_internal_faults_",
}
_KIND_TO_SUFFIX = {kind.lower().replace("-", " "): suffix for suffix, kind in FAULT_KINDS.items()}


def _normalise(text: str) -> str:
    return _SEPARATORS.sub(" ", text.strip().lower()).strip()


_NORMALISED_LABELS = {_normalise(label): i for i, label in enumerate(LABELS)}
assert len(_NORMALISED_LABELS) == len(LABELS)


@dataclass
class DatasetTree:
    """What a folder tree held: the windows, their labels and files, and what was skipped."""

    X: np.ndarray  # float32 (n, 3, 726), window unit
    y: np.ndarray  # int64 (n,), label ids 0-44; -1 where the path names no label (require_labels=False)
    files: list[str]  # paths relative to the root, '/'-separated, in the order of X
    skipped: list[tuple[str, str]]  # (relative path, reason)
    root: str
    ignored: int = 0  # files that are not waveforms (e.g. Dataset_Readme.pdf), not listed
    seconds: float = 0.0
    units: dict = field(default_factory=dict)  # the unit conversion of text and .npy files (COMTRADE: its .cfg's)

    def counts(self) -> dict[str, int]:
        """Windows per label string (labelled files only)."""
        ids, counts = np.unique(self.y[self.y >= 0], return_counts=True)
        return {LABELS[int(i)]: int(c) for i, c in zip(ids, counts, strict=True)}

    def summary(self) -> str:
        labelled = int((self.y >= 0).sum())
        text = (f"{self.root}: {len(self.files)} windows ({labelled} labelled, {len(self.counts())} labels) in "
                f"{self.seconds:.1f} s; {len(self.skipped)} skipped")
        if self.skipped:
            text += " (first: " + "; ".join(f"{path}: {reason}" for path, reason in self.skipped[:3]) + ")"
        return text


def label_of_path(relative_folder: str | Path) -> int | None:
    """Label id named by a folder path relative to the tree's root (see the module docstring), or None."""
    parts = tuple(part for part in Path(relative_folder).parts if part not in ("", "."))
    return _label_of_parts(parts)


@lru_cache(maxsize=4096)
def _label_of_parts(parts: tuple[str, ...]) -> int | None:
    if not parts:
        return None
    normalised = [_normalise(part) for part in parts]
    # 1. a label string (any case and separators), as the folder's name or its path's tail
    for start in range(len(normalised) - 1, -1, -1):
        joined = " ".join(normalised[start:])
        if joined in _NORMALISED_LABELS:
            return _NORMALISED_LABELS[joined]
    # 2. a label id as a top-level folder name (the folder-per-label layout)
    if len(parts) == 1 and parts[0].strip().isdigit():
        value = int(parts[0])
        return value if 0 <= value < len(LABELS) else None
    # 3. the data set's tree: the deepest folder that names a fault class or a transient kind
    for depth in range(len(normalised) - 1, -1, -1):
        part = normalised[depth]
        fault = _fault_suffix(part)
        if fault is not None:
            suffix, prefix = fault
            equipment = _equipment(prefix) if prefix else None
            for ancestor in reversed(normalised[:depth]):
                if equipment is not None:
                    break
                equipment = _equipment(ancestor)
            if equipment is None:
                return None  # a fault class with no unit named above it
            return LABEL_TO_ID[_EQUIPMENT_PREFIX[equipment] + suffix]
        transient = _transient(part)
        if transient is not None:
            return LABEL_TO_ID[transient]
    return None


def _fault_suffix(part: str) -> tuple[str, str] | None:
    """(label suffix, what precedes it) when a folder name ends with a fault class: 'Class 10', 'exciting_tt'."""
    for kind, suffix in _KIND_TO_SUFFIX.items():  # 'AG', 'turn to turn', ...
        if part == kind or part.endswith(" " + kind):
            return suffix, part[: -len(kind)].strip()
    match = _CLASS.match(part)
    if match is None:
        return None
    number = match.group("cls")
    if number.isdigit():
        if not match.group("word"):
            return None  # a bare number is a run or set folder, not a class
        index = int(number)
        if not 1 <= index <= 11:
            return None
        suffix = FAULT_SUFFIXES[index - 1]
    else:
        suffix = number
    return suffix, (match.group("prefix") or "").strip()


def _equipment(part: str) -> str | None:
    """The unit a folder name speaks of, or None (no unit, or several: a wrapper like 'transformer and PAR')."""
    tokens = set(part.replace("&", " ").split())
    exciting = bool(tokens & _EXCITING)
    series = "series" in tokens
    if exciting != series:
        return "ispar_exciting" if exciting else "ispar_series"
    if not exciting and tokens & _TRANSFORMER and not tokens & _PAR:
        return "power_transformer"
    return None


def _transient(part: str) -> str | None:
    tokens = part.split()
    for words, label in _TRANSIENT_WORDS:
        if all(any(token.startswith(word) for token in tokens) for word in words):
            return label
    return None


# --- reading the files -----------------------------------------------------------------------------

def _fast_text(data: bytes, name: str) -> np.ndarray | None:
    """(3, 726) float32 from a plain numeric table (time, Ia, Ib, Ic or Ia, Ib, Ic; optional header;
    comma, tab or space separated) parsed by numpy's C reader in one call; None when the file needs
    the careful parser (semicolons, comments, anything irregular), which then gives the precise error."""
    from services.ingest import _check_time_column

    if b"\x00" in data[:4096] or b";" in data or b"#" in data:
        return None
    text = data.removeprefix(b"\xef\xbb\xbf").decode("latin-1")
    lines = text.splitlines()
    while lines and not lines[0].strip():
        lines.pop(0)
    if not lines:
        return None
    header = None
    first = lines[0].replace(",", " ").split()
    try:
        [float(cell) for cell in first]
    except ValueError:
        header, lines = first, lines[1:]
    if not lines:
        return None
    delimiter = "," if "," in lines[0] else None
    try:
        values = np.loadtxt(lines, delimiter=delimiter, dtype=np.float64, ndmin=2)
    except ValueError:
        return None
    n_rows = values.shape[0]
    if n_rows == 0:
        return None
    values = values.ravel() if values.shape[1] in (N_PHASES, N_PHASES + 1) else np.zeros(0)
    if values.size == n_rows * (N_PHASES + 1):
        table = values.reshape(n_rows, N_PHASES + 1)
        if n_rows == N_SAMPLES:
            try:
                _check_time_column(table[:, 0], header[0] if header else None)
            except WaveformError as exc:
                raise WaveformError(f"{name}: {exc}") from None
        phases = table[:, 1:]
    elif values.size == n_rows * N_PHASES:
        phases = values.reshape(n_rows, N_PHASES)
    else:
        return None
    if n_rows != N_SAMPLES:
        raise WaveformError(f"{name}: {n_rows} rows, expected {N_SAMPLES} (72.6 ms at 10 kHz)")
    return validate_waveform(phases.T)


def read_window(path: Path, *, unit: str | None = None, rated_current_a: float | str | None = None
                ) -> tuple[np.ndarray, UnitConversion | None]:
    """One file of a tree in the window unit: fast numpy path for text tables, `services.ingest` otherwise."""
    from services.ingest import MAX_FILE_BYTES, _parse_text, load_waveform_source

    suffix = path.suffix.lower()
    if suffix in TEXT_SUFFIXES:
        try:
            if path.stat().st_size > MAX_FILE_BYTES:
                raise WaveformError(f"{path.name}: larger than {MAX_FILE_BYTES // 2**20} MB")
            data = path.read_bytes()
        except OSError as exc:
            raise WaveformError(f"{path.name}: cannot read the file ({exc.strerror or exc})") from None
        if not data.strip():
            raise WaveformError(f"{path.name}: the file is empty")
        raw = _fast_text(data, path.name)
        if raw is None:
            try:
                raw = _parse_text(data)
            except WaveformError as exc:
                raise WaveformError(f"{path.name}: {exc}") from None
        waveform, units = convert(raw, unit, rated_current_a)
        return validate_waveform(waveform), units
    loaded = load_waveform_source(path, unit=unit, rated_current_a=rated_current_a)
    return loaded.waveform, loaded.units


def _list_files(root: Path) -> tuple[list[tuple[Path, tuple[str, ...]]], int]:
    """(file, its folder's parts relative to root) for every waveform file, sorted; and the count of
    other files (not waveforms). A `.dat` beside a `.cfg` of the same stem is part of that record."""
    found: list[tuple[Path, tuple[str, ...]]] = []
    ignored = 0
    for folder, folders, names in os.walk(root):
        folders[:] = sorted(d for d in folders if not d.startswith(".") and d.lower() not in _IGNORED_FOLDERS)
        relative = Path(folder).relative_to(root).parts
        names = [name for name in names if not name.startswith(".")]
        records = {Path(name).stem.lower() for name in names if Path(name).suffix.lower() == ".cfg"}
        for name in sorted(names):
            suffix = Path(name).suffix.lower()
            if suffix not in WINDOW_SUFFIXES:
                ignored += 1
                continue
            if suffix == ".dat" and Path(name).stem.lower() in records:
                continue
            found.append((Path(folder) / name, relative))
    found.sort(key=lambda item: (item[1], item[0].name))
    return found, ignored


def scan_dataset_tree(root: str | Path, *, progress: bool = False, require_labels: bool = True,
                      unit: str | None = None, rated_current_a: float | str | None = None,
                      log: Callable[[str], None] | None = None) -> DatasetTree:
    """Read every waveform file under `root`; see `load_dataset_tree`.

    With `require_labels=False` (batch analysis) files in folders that name no label are read too,
    with y = -1; otherwise they are skipped with the reason.
    """
    started = time.perf_counter()
    conversion = conversion_for(unit, rated_current_a)  # a bad unit or rating fails before any file is read
    root = Path(root).expanduser()
    if not root.is_dir():
        raise WaveformError(f"{root}: not a folder; expected the data set's folder tree or one sub-folder per label")
    entries, ignored = _list_files(root)
    iterator = entries
    if progress:
        from tqdm import tqdm

        iterator = tqdm(entries, desc="reading", unit="file")
    # filled in place: the whole data set is 100,908 x 3 x 726 float32 (0.9 GB), held once
    X = np.empty((len(entries), N_PHASES, N_SAMPLES), dtype=np.float32)
    targets: list[int] = []
    files: list[str] = []
    skipped: list[tuple[str, str]] = []
    seen: dict[bytes, tuple[str, int]] = {}
    for path, parts in iterator:
        relative = Path(*parts, path.name).as_posix()
        label = _label_of_parts(parts)
        if label is None and require_labels:
            where = "/".join(parts) or "the top folder"
            skipped.append((relative, f"folder {where!r} names no label (expected e.g. 'internal faults/power "
                                      "transformer internal faults/Class1' or a label string)"))
            continue
        try:
            waveform, _ = read_window(path, unit=unit, rated_current_a=rated_current_a)
        except WaveformError as exc:
            message = str(exc)
            prefix = f"{path.name}: "
            skipped.append((relative, message[len(prefix):] if message.startswith(prefix) else message))
            continue
        digest = hashlib.blake2b(waveform.tobytes(), digest_size=16).digest()
        if digest in seen:
            first, first_label = seen[digest]
            conflict = "" if first_label == (label if label is not None else -1) else " under another label"
            skipped.append((relative, f"duplicate of {first}{conflict}"))
            continue
        seen[digest] = (relative, label if label is not None else -1)
        X[len(targets)] = waveform
        targets.append(label if label is not None else -1)
        files.append(relative)
    X = X[:len(targets)]  # a view: the rows of skipped files (a few kB each) stay allocated, nothing is copied
    units = {key: value for key, value in conversion.to_dict().items() if not key.startswith("peak")}
    units["summary"] = conversion.summary()
    tree = DatasetTree(X, np.asarray(targets, dtype=np.int64), files, skipped, str(root), ignored,
                       time.perf_counter() - started, units)
    if log is not None:
        log(tree.summary())
    return tree


def load_dataset_tree(root: str | Path, *, progress: bool = False, unit: str | None = None,
                      rated_current_a: float | str | None = None
                      ) -> tuple[np.ndarray, np.ndarray, list[str], list[tuple[str, str]]]:
    """A labelled tree as (X float32 (n, 3, 726), y int64 (n,), files, skipped).

    Accepts the public data set's tree as downloaded (any wrapper folders) and the folder-per-label
    layout (label strings or ids as folder names, `.npy`, CSV/text or COMTRADE files). `files` are
    the paths relative to `root` in the order of X; `skipped` lists (relative path, reason) for files
    that were not used. Text and `.npy` files are taken as window units (kA on the data set's system)
    unless `unit`/`rated_current_a` say otherwise (services.units). WaveformError when `root` is not
    a folder or holds no usable labelled window (the message gives the first reasons).
    """
    tree = scan_dataset_tree(root, progress=progress, unit=unit, rated_current_a=rated_current_a)
    if not tree.files:
        reasons = "; ".join(f"{path}: {reason}" for path, reason in tree.skipped[:5])
        raise WaveformError(f"{root}: no usable labelled window ({len(tree.skipped)} file(s) skipped"
                            + (f": {reasons}" if reasons else "; no .txt, .csv, .npy or COMTRADE files found") + ")")
    return tree.X, tree.y, tree.files, tree.skipped


__all__ = ["DatasetTree", "label_of_path", "load_dataset_tree", "read_window", "scan_dataset_tree"]
