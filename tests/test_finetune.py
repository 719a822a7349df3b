"""Commands on a user's labelled folder tree: fine-tuning the shipped model, evaluate --data, and
batch analysis (python -m services.inference DIR), on a tiny tree in the data set's layout."""

from __future__ import annotations

import csv
import hashlib
import json
import os
from pathlib import Path

import numpy as np
import pytest
import torch

from services.labels import LABELS
from services.simulation import simulate_event

ROOT = Path(__file__).resolve().parents[1]
ARTIFACTS = Path(os.environ.get("GEM_ARTIFACTS_DIR") or ROOT / "artifacts")
UNITS = {"internal_ispar_exciting_transformer_internal_faults_": "ispar exciting transformer internal faults",
         "internal_power_transformer_internal_faults_": "power transformer internal faults"}
CHOSEN = ("internal_power_transformer_internal_faults_Class1", "internal_ispar_exciting_transformer_internal_faults_tt",
          "transient_magnetising_inrush", "transient_capacitor_switching")
PER_LABEL = 8


def _folder_of(label: str) -> Path:
    top = Path("Dataset for Transformer & PAR transients") / "data for transformer and par"
    for prefix, unit in UNITS.items():
        if label.startswith(prefix):
            return top / "internal faults" / unit / label[len(prefix):]
    return top / "transient disturbances" / label[len("transient_"):].replace("_", " ")


@pytest.fixture(scope="module")
def tree(tmp_path_factory) -> Path:
    """PER_LABEL simulated windows of each CHOSEN label as the data set's text files, plus one bad file."""
    root = tmp_path_factory.mktemp("records")
    time = 15.0 + np.arange(726) / 10_000.0
    for label in CHOSEN:
        folder = root / _folder_of(label)
        folder.mkdir(parents=True)
        for run in range(PER_LABEL):
            window, _ = simulate_event(label, 100 + run)
            np.savetxt(folder / f"r{run + 1:05d}_01.txt", np.column_stack([time, window.T]), delimiter=",", fmt="%.7g")
    (root / _folder_of(CHOSEN[0]) / "broken.txt").write_text("time,Ia,Ib,Ic\n1,2,3\n")
    return root


def _digest(folder: Path) -> str:
    digest = hashlib.sha256()
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        digest.update(path.relative_to(folder).as_posix().encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()


def test_ft001_finetune_writes_a_complete_folder_the_predictor_loads_with_before_and_after(tree, tmp_path):
    from services.inference import Predictor
    from services.inference.artifacts import load_artifacts
    from services.training.finetune import FinetuneConfig, finetune

    source_digest = _digest(ARTIFACTS)
    out = tmp_path / "adapted"
    lines: list[str] = []
    block = finetune(FinetuneConfig(data=tree, out=out, artifacts=ARTIFACTS, epochs=2, seed=3, threads=1,
                                    rehearsal=2, detector_simulated=2), log=lines.append, command="test")
    assert _digest(ARTIFACTS) == source_digest  # the source folder is untouched
    # every file of the source folder is there (sample data included)
    source_files = {p.relative_to(ARTIFACTS).as_posix() for p in ARTIFACTS.rglob("*") if p.is_file()
                    and not p.name.startswith(".")}
    written = {p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file()}
    # but the relay-connection heads, which read the hidden vector the refitted head changed
    assert source_files - written == {"connection_heads.npz"}
    assert "connection_heads" in json.loads((out / "model_card.json").read_text())["finetune"]
    # before/after on the held-out part, in the card and printed
    card = json.loads((out / "model_card.json").read_text())
    held = card["finetune"]["held_out"]
    assert held["windows"] == len(CHOSEN) * round(0.3 * PER_LABEL) == block["held_out"]["windows"]
    for side in ("before", "after"):
        assert {"accuracy", "category_accuracy", "equipment_accuracy", "unknown_flag_rate", "ece"} <= set(held[side])
    assert card["finetune"]["records"]["files_skipped"] == 1 and card["finetune"]["command"] == "test"
    assert any("exact label" in line for line in lines)
    calibration = json.loads((out / "calibration.json").read_text())
    assert calibration["temperature"] == card["finetune"]["temperature"]["after"] == card["temperature"]
    assert calibration["input_scaling"] == "window_peak"
    # features frozen, head changed, biases still zero (scale invariance kept)
    before, after = load_artifacts(ARTIFACTS), load_artifacts(out)
    for key, value in before.model.f.state_dict().items():
        assert torch.equal(value, after.model.f.state_dict()[key]), key
    assert not torch.equal(before.model.cls[0].weight, after.model.cls[0].weight)
    assert not after.model.cls[0].bias.detach().any() and not after.model.cls[3].bias.detach().any()
    predictor = Predictor(out)
    window, _ = simulate_event(CHOSEN[2], 999)
    assert predictor.predict(window).label in LABELS
    scaled = predictor.logits(np.stack([window, 40.0 * window]))  # amplitude-free after fine-tuning too
    np.testing.assert_allclose(scaled[1], scaled[0], rtol=1e-3, atol=1e-3)


def test_ft002_finetune_refuses_to_overwrite_its_source_or_a_full_folder(tree, tmp_path, capsys):
    from services.training.finetune import main

    assert main(["--artifacts", str(ARTIFACTS), "--data", str(tree), "--out", str(ARTIFACTS)]) == 2
    assert "is the source folder" in capsys.readouterr().err
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "x").write_text("x")
    assert main(["--artifacts", str(ARTIFACTS), "--data", str(tree), "--out", str(tmp_path / "full")]) == 2
    assert "not empty" in capsys.readouterr().err
    assert main(["--data", str(tree), "--out", str(tmp_path / "new"), "--holdout", "1.5"]) == 2
    assert "--holdout" in capsys.readouterr().err


def test_ft003_evaluate_scores_a_labelled_tree(tree, capsys):
    from services.training.evaluate import main

    assert main(["--artifacts", str(ARTIFACTS), "--data", str(tree)]) == 0
    figures = json.loads(capsys.readouterr().out)
    assert figures["windows"] == len(CHOSEN) * PER_LABEL and figures["labels"] == len(CHOSEN)
    assert set(figures["per_label_recall"]) == set(CHOSEN)
    assert 0.0 <= figures["equipment_accuracy"] <= 1.0 and 0.0 <= figures["category_accuracy"] <= 1.0
    assert figures["data"]["files_skipped"] == 1 and "broken.txt" in figures["data"]["skipped"][0]["file"]


def test_ft004_batch_analysis_of_a_tree_gives_true_labels_and_a_table(tree, tmp_path, capsys):
    from services.inference.__main__ import main

    table = tmp_path / "results.csv"
    assert main([str(tree), "--artifacts", str(ARTIFACTS), "--json", "--out", str(table)]) == 1  # the broken file
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    records = [line for line in lines if "predicted_label" in line]
    assert len(records) == len(CHOSEN) * PER_LABEL
    assert {record["true_label"] for record in records} == set(CHOSEN)
    assert all(record["correct"] == (record["predicted_label"] == record["true_label"]) for record in records)
    assert any("broken.txt" in line.get("file", "") and "error" in line for line in lines)
    summary = lines[-1]["summary"]
    assert summary["windows"] == len(records) and summary["failed_files"] == 1
    with table.open() as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == len(records) + 1 and {row["true_label"] for row in rows if not row["error"]} == set(CHOSEN)
