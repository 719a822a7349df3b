"""Reading users' files: .npy and CSV/text windows, labelled folders, and clear refusals."""

from __future__ import annotations

import io

import numpy as np
import pytest

from services.ingest import load_labelled_folder, load_waveform_file, parse_waveform_bytes
from services.labels import LABELS
from services.waveform import WaveformError

T = np.arange(726) / 10_000.0
WAVE = np.stack([np.sin(2 * np.pi * 60 * T + k) for k in (0.0, -2.094, 2.094)]).astype(np.float32)


def _npy_bytes(array: np.ndarray, allow_pickle: bool = False) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array, allow_pickle=allow_pickle)
    return buffer.getvalue()


def _csv(time: np.ndarray, phases: np.ndarray, separator: str = ",", header: str | None = "time,Ia,Ib,Ic",
         decimal: str = ".") -> bytes:
    lines = [header] if header else []
    for t, a, b, c in zip(time, *phases, strict=True):
        cells = [f"{v:.9g}".replace(".", decimal) for v in (t, a, b, c)]
        lines.append(separator.join(cells))
    return ("\n".join(lines) + "\n").encode()


def test_ing001_npy_window_is_read_as_float32():
    waveform = parse_waveform_bytes(_npy_bytes(WAVE.astype(np.float64)), "event.npy")
    assert waveform.dtype == np.float32 and waveform.shape == (3, 726)
    np.testing.assert_allclose(waveform, WAVE, rtol=1e-6)


def test_ing002_transposed_npy_is_turned_into_phases_by_samples():
    waveform = parse_waveform_bytes(_npy_bytes(WAVE.T.copy()), "event.npy")
    np.testing.assert_array_equal(waveform, WAVE)


def test_ing003_pickled_npy_is_refused_without_unpickling():
    objects = np.empty(2, dtype=object)
    objects[0], objects[1] = {"a": 1}, [1, 2]
    with pytest.raises(WaveformError, match="pickled"):
        parse_waveform_bytes(_npy_bytes(objects, allow_pickle=True), "evil.npy")


@pytest.mark.parametrize(
    ("data", "name", "message"),
    [
        (_npy_bytes(np.zeros((3, 500), np.float32)), "short.npy", r"\(3, 726\)"),
        (_npy_bytes(np.full((3, 726), np.nan, np.float32)), "nan.npy", "NaN"),
        (b"", "empty.npy", "empty"),
        (b"\x93NUMPY garbage", "broken.npy", "not a valid .npy"),
        (b"PK\x03\x04", "archive.zip", "unsupported file type"),
        (_npy_bytes(np.array(["a", "b"])), "text.npy", "numeric"),
    ],
)
def test_ing004_bad_npy_files_get_clear_errors(data, name, message):
    with pytest.raises(WaveformError, match=message) as info:
        parse_waveform_bytes(data, name)
    assert name in str(info.value)


def test_ing005_csv_with_header_in_seconds():
    waveform = parse_waveform_bytes(_csv(T, WAVE), "event.csv")
    np.testing.assert_allclose(waveform, WAVE, atol=1e-6)


def test_ing006_semicolon_csv_with_decimal_comma_and_time_in_ms():
    data = _csv(T * 1000.0, WAVE, separator=";", header="t_ms;Ia;Ib;Ic", decimal=",")
    np.testing.assert_allclose(parse_waveform_bytes(data, "event.csv"), WAVE, atol=1e-6)


def test_ing007_whitespace_text_without_header_and_three_columns():
    lines = "\n".join(" ".join(f"{v:.9g}" for v in row) for row in WAVE.T).encode()
    np.testing.assert_allclose(parse_waveform_bytes(lines, "event.txt"), WAVE, atol=1e-6)


def test_ing008_other_sample_rate_is_named_in_the_error():
    data = _csv(np.arange(726) / 20_000.0, WAVE)
    with pytest.raises(WaveformError, match="20 kHz") as info:
        parse_waveform_bytes(data, "fast.csv")
    assert "10 kHz" in str(info.value)


def test_ing009_wrong_row_count_and_non_numbers_are_refused():
    with pytest.raises(WaveformError, match="726 rows"):
        parse_waveform_bytes(_csv(T[:700], WAVE[:, :700]), "short.csv")
    broken = _csv(T, WAVE).replace(b"\n0.0001,", b"\n0.0001x,", 1)
    with pytest.raises(WaveformError, match="non-numeric"):
        parse_waveform_bytes(broken, "broken.csv")


def test_ing010_load_waveform_file_reports_missing_file(tmp_path):
    with pytest.raises(WaveformError, match="cannot read"):
        load_waveform_file(tmp_path / "absent.npy")
    path = tmp_path / "ok.npy"
    np.save(path, WAVE)
    np.testing.assert_array_equal(load_waveform_file(path), WAVE)


def test_ing011_labelled_folder_flat_and_nested_layouts(tmp_path):
    (tmp_path / LABELS[0]).mkdir()
    np.save(tmp_path / LABELS[0] / "a.npy", WAVE)
    (tmp_path / LABELS[0] / "b.csv").write_bytes(_csv(T, 2 * WAVE))
    nested = tmp_path / "transient" / "capacitor_switching"
    nested.mkdir(parents=True)
    np.save(nested / "c.npy", -WAVE)
    X, y = load_labelled_folder(tmp_path)
    assert X.shape == (3, 3, 726) and X.dtype == np.float32
    assert sorted(y.tolist()) == [0, 0, 39]


def test_ing012_labelled_folder_with_unknown_label_is_refused(tmp_path):
    (tmp_path / "not_a_label").mkdir()
    np.save(tmp_path / "not_a_label" / "a.npy", WAVE)
    with pytest.raises(WaveformError, match="not_a_label"):
        load_labelled_folder(tmp_path)


# --- bounded by the input's size (issue 12, items 3-5) ----------------------------------------------

def _npy_header(shape: str, descr: str = "<f4", version: bytes = b"\x01\x00") -> bytes:
    header = "{'descr': '" + descr + "', 'fortran_order': False, 'shape': " + shape + ", }"
    header += " " * (63 - (len(header) + 10) % 64) + "\n"
    size = len(header).to_bytes(2 if version == b"\x01\x00" else 4, "little")
    return b"\x93NUMPY" + version + size + header.encode()


@pytest.mark.parametrize(("data", "message"), [
    (_npy_header("(3, 1000000000000)") + b"\0" * 64, "got shape (3, 1000000000000)"),
    (_npy_header("(1000000000000, 3)") + b"\0" * 64, "got shape (1000000000000, 3)"),
    (_npy_header("(3, 726)") + b"\0" * 100, "truncated"),
    (_npy_header("(3, 726)", descr="<U5") + b"\0" * 64, "expected numeric values"),
    (_npy_header("(3, 726)", version=b"\x03\x00") + b"\0" * 64, "format version 3.0"),
    (b"\x93NUMPY\x01\x00\xff\xff{'descr'", "not a valid .npy file"),
])
def test_ing013_npy_header_is_checked_before_any_array_is_made(data, message):
    with pytest.raises(WaveformError, match=message.replace("(", r"\(").replace(")", r"\)")):
        parse_waveform_bytes(data, "lie.npy")


@pytest.mark.parametrize("array", [WAVE.astype(">f8"), np.asfortranarray(WAVE), WAVE.T.astype("<i4"),
                                   (WAVE > 0)])
def test_ing014_npy_byte_orders_layouts_and_types_read_like_numpy(array):
    expected = np.asarray(array, dtype=np.float64)
    expected = expected.T if expected.shape == (726, 3) else expected
    np.testing.assert_allclose(parse_waveform_bytes(_npy_bytes(array), "a.npy"), expected, rtol=1e-6)


@pytest.mark.parametrize(("data", "message"), [
    (b"0.1234567\n" * 1_000_000, "the file has 1,000,001 lines"),
    (b"0.1\r" * 5_000, "the file has 5,001 lines"),
    (b"time,Ia,Ib,Ic\n" + b"1,2,3,4\n" * 700 + b",".join([b"1"] * 50_000) + b"\n", "got 50,000 in a row"),
    (b"1 2 3 4\n" * 700 + b" ".join([b"1"] * 50_000) + b"\n", "got more than 4 in a row"),
    (b"\x0c" * 1_000_000, "no data rows"),
    (b"\x85\x0b\x1c" * 300_000, "no data rows"),
])
def test_ing015_text_shapes_are_refused_before_the_table_is_split(data, message):
    with pytest.raises(WaveformError, match=message):
        parse_waveform_bytes(data, "big.csv")


def test_ing016_a_window_with_crlf_comments_and_a_wide_header_still_reads():
    body = _csv(T, WAVE, header="time,Ia,Ib,Ic,comment").replace(b"\n", b"\r\n")
    waveform = parse_waveform_bytes(b"# exported\r\n\r\n" + body, "crlf.csv")
    np.testing.assert_allclose(waveform, WAVE, rtol=1e-6)


@pytest.mark.parametrize(("name", "stored"), [
    ("event.npy", "event.npy"),
    ("../../etc/event.npy", "event.npy"),
    ("C:\\Users\\me\\event.npy", "event.npy"),
    ("ev\r\n=cmd|' -C calc'!A0.npy", "ev=cmd|' -C calc'!A0.npy"),
    ("\tev\x00ent.npy", "event.npy"),
    ("gnp\u202e.evil.npy", "gnp.evil.npy"),
    ("", "upload"),
    ("...", "upload"),
    ("x" * 500 + ".npy", "x" * 116 + ".npy"),
])
def test_ing017_uploaded_file_names_are_sanitised_for_storage(name, stored):
    from services.ingest import parse_uploaded_files, safe_filename

    assert safe_filename(name) == stored
    if stored.endswith(".npy"):
        loaded = parse_uploaded_files([(name, _npy_bytes(WAVE))])
        assert loaded.name == stored and loaded.files == (stored,)
