"""The public data set's folder tree as downloaded: labels from folder paths, bad files listed and
skipped, the folder-per-label layout still read, and the files parsed fast."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest

from services.dataset import label_of_path, load_dataset_tree, scan_dataset_tree
from services.ingest import load_labelled_folder
from services.labels import LABELS
from services.waveform import WaveformError

WRAPPER = Path("Dataset for Transformer & PAR transients") / "data for transformer and par"
FAULTS = WRAPPER / "internal faults"
TRANSIENTS = WRAPPER / "transient disturbances"
T = 15.0 + np.arange(726) / 10_000.0


def _write(path: Path, wave: np.ndarray, *, sep: str = ",", header: str | None = None, time: bool = True) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    table = np.column_stack([T[: wave.shape[1]], wave.T]) if time else wave.T
    lines = [sep.join(f"{value:.7g}" for value in row) for row in table]
    path.write_text(((header + "\n") if header else "") + "\n".join(lines) + "\n")


def _wave(seed: int, rows: int = 726) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(rows) / 10_000.0
    return (rng.uniform(0.05, 3.0, (3, 1)) * np.sin(2 * np.pi * 60 * t + rng.uniform(0, 6.3, (3, 1)))
            + 0.01 * rng.standard_normal((3, rows)))


@pytest.mark.parametrize("path, label", [
    (FAULTS / "ispar exciting transformer internal faults" / "Class1", LABELS[0]),
    (FAULTS / "ispar series transformer internal faults" / "class10", LABELS[22]),
    (FAULTS / "power transformer internal faults" / "Class10", LABELS[35]),
    (FAULTS / "power transformer internal faults" / "Class 11" / "run 3", LABELS[36]),
    (FAULTS / "ispar-series-transformer-internal-faults" / "TT", LABELS[24]),
    (Path("data") / "Power_Transformer_Internal_Faults" / "ww", LABELS[38]),
    (TRANSIENTS / "capacitor switching", "transient_capacitor_switching"),
    (TRANSIENTS / "external fault with CT saturation", "transient_external_fault_with_CT_saturation"),
    (TRANSIENTS / "Magnetising Inrush", "transient_magnetising_inrush"),
    (TRANSIENTS / "magnetizing_inrush", "transient_magnetising_inrush"),
    (TRANSIENTS / "sympathetic inrush", "transient_sympathetic_inrush"),
    (TRANSIENTS / "non-linear load switching", "transient_non-linear_load_switching"),
    (TRANSIENTS / "ferroresonance", "transient_ferroresonance"),
    (Path("Total_Multiclass") / "exciting_Class3", LABELS[2]),
    (Path("internal_power_transformer_internal_faults_Class4"), LABELS[29]),
    (Path("INTERNAL-ispar-series-transformer-internal-faults-CLASS9"), LABELS[21]),
    (Path("transient") / "capacitor_switching", "transient_capacitor_switching"),
    (Path("44"), LABELS[44]),
])
def test_ds001_folder_paths_name_labels_whatever_the_spelling(path, label):
    assert LABELS[label_of_path(path)] == label


@pytest.mark.parametrize("path", [
    FAULTS / "Class1",  # a class with no unit above it
    FAULTS / "power transformer internal faults" / "Class12",
    FAULTS / "power transformer internal faults" / "2",  # a bare number is a run folder, not a class
    Path("Transients and Faults in Power Transformers and Phase Angle Regulators") / "Class1",  # wrapper: no unit
    WRAPPER, Path("not_a_label"), Path("45"), Path("."),
])
def test_ds002_folders_that_name_no_label(path):
    assert label_of_path(path) is None


def _fake_data_set(root: Path) -> dict[str, str]:
    """A small tree in the data set's layout; returns {relative file: expected label or skip reason word}."""
    expected = {}
    seed = 0
    for unit, classes in (("ispar exciting transformer internal faults", ("Class1", "class10", "tt")),
                          ("power transformer internal faults", ("Class4", "ww"))):
        for cls in classes:
            for run in range(3):
                seed += 1
                relative = FAULTS / unit / cls / f"ep_back_tfull20_r{run + 1:05d}_01.txt"
                _write(root / relative, _wave(seed))
                expected[relative.as_posix()] = label_of_path(relative.parent)
    for kind in ("capacitor switching", "magnetising inrush", "sympathetic inrush"):
        for run in range(2):
            seed += 1
            relative = TRANSIENTS / kind / f"{kind.replace(' ', '_')}_{run}.txt"
            _write(root / relative, _wave(seed))
            expected[relative.as_posix()] = label_of_path(relative.parent)
    # variants: a tab-separated file with a header, a space-separated file with only Ia, Ib, Ic
    variant = TRANSIENTS / "ferroresonance" / "with_header.txt"
    _write(root / variant, _wave(100), sep="\t", header="time\tIa\tIb\tIc")
    expected[variant.as_posix()] = label_of_path(variant.parent)
    spaces = TRANSIENTS / "ferroresonance" / "three_columns.txt"
    _write(root / spaces, _wave(101), sep="   ", time=False)
    expected[spaces.as_posix()] = label_of_path(spaces.parent)
    # bad files: too short, not numeric, a folder that names no label, a duplicate, an empty file
    short = FAULTS / "power transformer internal faults" / "Class4" / "short.txt"
    _write(root / short, _wave(200, rows=700))
    expected[short.as_posix()] = "700 rows"
    garbage = TRANSIENTS / "capacitor switching" / "garbage.txt"
    garbage.parent.mkdir(parents=True, exist_ok=True)
    (root / garbage).write_text("time,Ia,Ib,Ic\n" + "0.0,1.0,oops,2.0\n" * 726)
    expected[garbage.as_posix()] = "non-numeric"
    nowhere = FAULTS / "Class2" / "lost.txt"
    _write(root / nowhere, _wave(201))
    expected[nowhere.as_posix()] = "names no label"
    copy = FAULTS / "power transformer internal faults" / "ww" / "run1_copy.txt"  # read after the original
    (root / copy).write_bytes((root / FAULTS / "power transformer internal faults" / "ww" /
                               "ep_back_tfull20_r00001_01.txt").read_bytes())
    expected[copy.as_posix()] = "duplicate of"
    empty = TRANSIENTS / "magnetising inrush" / "empty.txt"
    (root / empty).write_text("")
    expected[empty.as_posix()] = "empty"
    # not waveforms: the read-me, macOS resource forks, hidden files
    (root / WRAPPER.parent / "Dataset_Readme.pdf").write_bytes(b"%PDF-1.4")
    fork = root / "__MACOSX" / FAULTS / "._ep.txt"
    fork.parent.mkdir(parents=True)
    fork.write_bytes(b"\x00\x05\x16\x07")
    (root / FAULTS / ".DS_Store").write_bytes(b"\x00")
    return expected


def test_ds003_the_data_sets_tree_is_read_with_labels_and_a_list_of_skipped_files(tmp_path):
    expected = _fake_data_set(tmp_path)
    X, y, files, skipped = load_dataset_tree(tmp_path)
    labelled = {path: label for path, label in expected.items() if isinstance(label, int)}
    assert X.shape == (len(labelled), 3, 726) and X.dtype == np.float32 and y.dtype == np.int64
    assert dict(zip(files, y.tolist(), strict=True)) == labelled
    reasons = dict(skipped)
    assert set(reasons) == set(expected) - set(labelled)
    for path, reason in reasons.items():
        assert expected[path] in reason, (path, reason)
    assert "expected 726" in reasons[(FAULTS / "power transformer internal faults" / "Class4" / "short.txt").as_posix()]
    # the values are the file's, in the window unit, phases as rows
    first = files.index((FAULTS / "ispar exciting transformer internal faults" / "Class1" /
                         "ep_back_tfull20_r00001_01.txt").as_posix())
    np.testing.assert_allclose(X[first], _wave(1), rtol=1e-5, atol=1e-6)
    header_variant = files.index((TRANSIENTS / "ferroresonance" / "with_header.txt").as_posix())
    np.testing.assert_allclose(X[header_variant], _wave(100), rtol=1e-5, atol=1e-6)
    tree = scan_dataset_tree(tmp_path)
    assert tree.ignored == 1  # the read-me (hidden files and __MACOSX are not even counted)
    assert tree.counts()["transient_ferroresonance"] == 2


def test_ds004_folder_per_label_layout_still_works_and_the_strict_loader_names_bad_files(tmp_path):
    np.save(tmp_path / "x.npy", np.zeros(3))  # a file at the top: no label
    (tmp_path / LABELS[5]).mkdir()
    np.save(tmp_path / LABELS[5] / "a.npy", _wave(1).astype(np.float32))
    _write(tmp_path / "40" / "b.csv", _wave(2), header="time,Ia,Ib,Ic")
    X, y, files, skipped = load_dataset_tree(tmp_path)
    assert files == ["40/b.csv", f"{LABELS[5]}/a.npy"] and y.tolist() == [40, 5]
    assert skipped == [("x.npy", skipped[0][1])] and "names no label" in skipped[0][1]
    with pytest.raises(WaveformError, match="x.npy"):
        load_labelled_folder(tmp_path)
    (tmp_path / "x.npy").unlink()
    X_strict, y_strict = load_labelled_folder(tmp_path)
    np.testing.assert_array_equal(X_strict, X)


def test_ds005_units_apply_to_every_file_and_bad_ones_fail_before_reading(tmp_path):
    wave = _wave(3) * 1000.0  # amperes
    _write(tmp_path / "internal faults" / "power transformer internal faults" / "Class1" / "a.txt", wave)
    X, _, _, _ = load_dataset_tree(tmp_path, unit="A", rated_current_a=1200.0)
    np.testing.assert_allclose(X[0], wave / 1200.0 * 1.2551, rtol=1e-5)
    with pytest.raises(WaveformError, match="rated current must be positive"):
        load_dataset_tree(tmp_path, unit="A", rated_current_a=0)


def test_ds006_empty_or_missing_trees_are_refused_clearly(tmp_path):
    with pytest.raises(WaveformError, match="not a folder"):
        load_dataset_tree(tmp_path / "absent")
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "a.txt").write_text("1,2,3,4\n")
    with pytest.raises(WaveformError, match="no usable labelled window"):
        load_dataset_tree(tmp_path)


def test_ds007_text_files_are_parsed_fast(tmp_path):
    n = 300
    for k in range(n):
        _write(tmp_path / "transient disturbances" / "capacitor switching" / f"r{k:05d}.txt", _wave(k))
    started = time.perf_counter()
    X, _, _, skipped = load_dataset_tree(tmp_path)
    seconds = time.perf_counter() - started
    assert len(X) == n and not skipped
    assert seconds / n < 0.01, f"{seconds / n * 1e3:.2f} ms per file"  # about 1 ms on a shared 2-core machine
