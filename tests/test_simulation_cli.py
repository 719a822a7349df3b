"""The simulator's command line: a tiny successful run and the error paths (exit 2, one line)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from services.labels import LABELS

ROOT = Path(__file__).resolve().parents[1]


def _run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "services.simulation", *args],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
    )


def test_simcli001_tiny_run_writes_x_y_labels_params(tmp_path):
    out = tmp_path / "events.npz"
    result = _run("--per-class", "2", "--seed", "5", "--out", str(out),
                  "--classes", "transient_ferroresonance", "0")
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    with np.load(out) as data:
        assert data["X"].shape == (4, 3, 726) and data["X"].dtype == np.float32
        assert data["y"].tolist() == [0, 0, 41, 41] and data["y"].dtype == np.int64
        assert data["labels"].tolist() == list(LABELS)
        assert len(data["params"]) == 4 and '"inception_ms"' in str(data["params"][0])
    again = tmp_path / "again.npz"
    assert _run("--per-class", "2", "--seed", "5", "--out", str(again),
                "--classes", "41", "transient_ferroresonance", "0").returncode == 0
    assert out.read_bytes() == again.read_bytes()


def test_simcli004_relay_view_flag_forces_the_view_of_every_fault(tmp_path):
    out = tmp_path / "views.npz"
    result = _run("--per-class", "3", "--seed", "2", "--out", str(out), "--classes", "0", "27",
                  "--relay-view", "zero_sequence_removed")
    assert result.returncode == 0, result.stderr
    with np.load(out) as data:
        rows = [json.loads(str(row)) for row in data["params"]]
    assert [row["relay_view"] for row in rows] == ["zero_sequence_removed"] * 6


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--per-class", "2", "--seed", "1", "--classes", "no_such_event"], "unknown label"),
        (["--per-class", "2", "--seed", "1", "--classes", "45"], "unknown label"),
        (["--per-class", "0", "--seed", "1"], "--per-class"),
        (["--per-class", "-3", "--seed", "1"], "--per-class"),
        (["--per-class", "two", "--seed", "1"], "--per-class"),
        (["--per-class", "1", "--seed", "1", "--relay-view", "sideways"], "--relay-view"),
    ],
)
def test_simcli002_bad_arguments_exit_2_with_one_line(tmp_path, args, needle):
    out = tmp_path / "x.npz"
    result = _run(*args, "--out", str(out))
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and needle in lines[0] and "Traceback" not in result.stderr
    assert not out.exists()


def test_simcli003_unwritable_path_exits_2_with_one_line(tmp_path):
    for out in (tmp_path / "missing-folder" / "x.npz", tmp_path):
        result = _run("--per-class", "1", "--seed", "1", "--out", str(out))
        assert result.returncode == 2
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and "cannot write" in lines[0]
