"""`python -m services.training.evaluate`: measure an artifacts folder through the serving path.

Classifies a fresh simulated set (a seed that training did not use) and the garbage suite with
the Predictor exactly as the app runs it (ONNX Runtime, calibration, signal checks, unknown
detector), prints the figures, and with `--update-card` stores them under "evaluation" in the
folder's model_card.json, the only file it writes without `--refit-detector` (no retraining). The
figures include the per-bin reliability data (raw and calibrated) that the Model page draws, so an
older card gets its reliability diagram from `--update-card` alone, and the accuracy under
physically plausible departures from the simulator (noise, CT mismatch, polarity, timing, phase
rotation; services.training.robustness). Works on any folder, including
the original application's.

`--refit-detector` (re)fits the feature-space unknown detector (`unknown_detector.npz`) of a
folder on simulated data, the same way the training command does: for a model trained
elsewhere (the original application's has none) or after the detector's code changed. It uses
the seeds of the model card when there is one.

`--data DIR` scores the folder on a labelled folder tree instead of simulated windows: the public
data set's tree as downloaded, or one folder per label (services.dataset; bad files are listed and
skipped). It reports accuracy, per-label recall, category and equipment accuracy, calibration and
the unknown-flag rate; `--update-card` stores them under "evaluation_on_data".
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from services.inference.artifacts import MODEL_CARD_FILE
from services.inference.predictor import Predictor
from services.labels import LABEL_TO_ID, LABELS
from services.training.garbage import flag_rates, garbage_suite
from services.training.metrics import calibration_report, classification_report
from services.training.robustness import robustness_report
from services.units import UNITS
from services.waveform import WaveformError

DEFAULT_SEED = 4_242


def _scored(predictor: Predictor, X: np.ndarray, y: np.ndarray):
    """Predictions (and their time), logits, the classification report on the per-level calibrated
    probabilities, and the targets as the predictor's own columns (a folder may order or omit labels;
    -1 where it lacks the label)."""
    label_ids = np.array([LABEL_TO_ID[label] for label in predictor.labels])
    started = time.perf_counter()
    predictions = predictor.predict_batch(X, explain=False)
    seconds = time.perf_counter() - started
    logits = predictor.logits(X)
    probabilities = np.zeros((len(X), len(LABEL_TO_ID)))
    probabilities[:, label_ids] = predictor.calibrated_probabilities(logits, X)
    report = classification_report(y, probabilities, tuple(LABEL_TO_ID))
    column_of = {int(label_id): column for column, label_id in enumerate(label_ids)}
    targets_as_columns = np.array([column_of.get(int(label_id), -1) for label_id in y])
    return label_ids, predictions, seconds, logits, report, targets_as_columns


def evaluate(predictor: Predictor, per_class: int, seed: int, garbage_per_family: int) -> dict:
    """Figures of one predictor on `per_class` simulated windows per label and the garbage suite."""
    from services.simulation import generate_dataset

    X, y, _ = generate_dataset(per_class, seed=seed)
    label_ids, predictions, seconds, logits, report, targets_as_columns = _scored(predictor, X, y)
    reliability = calibration_report(logits, targets_as_columns, predictor.temperature)
    valid_flagged = np.array([p.unknown for p in predictions])
    garbage, families = garbage_suite(X, garbage_per_family, seed=seed + 1)
    flagged = np.array([p.unknown for p in predictor.predict_batch(garbage, explain=False)])

    def classify(windows: np.ndarray) -> np.ndarray:
        return label_ids[[p.label_id for p in predictor.predict_batch(windows, explain=False)]]

    return {
        "seed": seed,
        "windows": int(len(y)),
        "backend": predictor.backend,
        "accuracy": report["accuracy"],
        "macro_f1": report["macro_f1"],
        "category_accuracy": report["category_accuracy"],
        "equipment_accuracy": report["equipment_accuracy"],
        "ece": reliability["after"]["ece"],
        "ece_before_calibration": reliability["before"]["ece"],
        "reliability": reliability,
        "top_confusions": report["top_confusions"][:10],
        "valid_flag_rate": float(valid_flagged.mean()),
        **flag_rates(flagged, families),
        "predict_batch_windows_per_s": round(len(X) / seconds, 1),
        "robustness": robustness_report(classify, X, y, seed=seed + 2),
    }


def evaluate_labelled(predictor: Predictor, X: np.ndarray, y: np.ndarray) -> dict:
    """Figures of one predictor on labelled windows (label ids 0-44 of docs/contracts.md): accuracy, macro-F1,
    per-label recall, category and equipment accuracy, calibration, unknown-flag rate."""
    label_ids, predictions, seconds, logits, report, targets_as_columns = _scored(predictor, X, y)
    known = targets_as_columns >= 0
    reliability = (calibration_report(logits[known], targets_as_columns[known], predictor.temperature)
                   if known.any() else None)
    flagged = np.array([p.unknown for p in predictions])
    return {
        "windows": int(len(y)),
        "labels": int(len(np.unique(y))),
        "backend": predictor.backend,
        "accuracy": report["accuracy"],
        "macro_f1": report["macro_f1"],
        "category_accuracy": report["category_accuracy"],
        "equipment_accuracy": report["equipment_accuracy"],
        "per_label_recall": report["per_label_recall"],
        "per_label_windows": {LABELS[int(i)]: int(n) for i, n in zip(*np.unique(y, return_counts=True), strict=True)},
        "ece": reliability["after"]["ece"] if reliability else None,
        "reliability": reliability,
        "unknown_flag_rate": float(flagged.mean()) if len(flagged) else 0.0,
        "top_confusions": report["top_confusions"][:10],
        "predict_batch_windows_per_s": round(len(X) / max(seconds, 1e-9), 1),
    }


def evaluate_folder(predictor: Predictor, folder: str | Path, *, unit: str | None = None,
                    rated_current_a: float | None = None, progress: bool = False) -> dict:
    """`evaluate_labelled` on a labelled folder tree (services.dataset.load_dataset_tree), with what was read."""
    from services.dataset import scan_dataset_tree

    tree = scan_dataset_tree(folder, progress=progress, unit=unit, rated_current_a=rated_current_a)
    if not tree.files:
        reasons = "; ".join(f"{path}: {reason}" for path, reason in tree.skipped[:5])
        raise WaveformError(f"{folder}: no usable labelled window ({len(tree.skipped)} skipped{': ' if reasons else ''}"
                            f"{reasons})")
    figures = evaluate_labelled(predictor, tree.X, tree.y)
    figures["data"] = {
        "folder": str(folder),
        "files_used": len(tree.files),
        "files_skipped": len(tree.skipped),
        "skipped": [{"file": path, "reason": reason} for path, reason in tree.skipped[:50]],
        "other_files_ignored": tree.ignored,
        "read_seconds": round(tree.seconds, 2),
        "units": tree.units.get("summary"),
    }
    return figures


def refit_detector(folder: Path, garbage_per_family: int, command: str) -> dict:
    """Fit and write the folder's unknown detector; update the model card's figures if there is one."""
    from services.inference.artifacts import load_artifacts
    from services.inference.unknown import DETECTOR_FILE
    from services.simulation import generate_dataset
    from services.training.pipeline import (
        TEST_SEED_OFFSET,
        VALIDATION_SEED_OFFSET,
        Dataset,
        TrainingConfig,
        calibrate_unknown_detector,
    )

    artifacts = load_artifacts(Path(folder))
    card = artifacts.model_card or {}
    defaults = TrainingConfig()
    data = card.get("data") or {}
    seed = int(card.get("seed", defaults.seed))
    test_seed = int(card.get("test_seed") or seed + TEST_SEED_OFFSET)
    config = TrainingConfig(seed=seed, test_seed=test_seed, garbage_per_family=garbage_per_family)
    sets = []
    for per_class, set_seed in (
        (int(data.get("per_class", defaults.per_class)), seed),
        (int(data.get("validation_per_class", defaults.validation_per_class)), seed + VALIDATION_SEED_OFFSET),
        (int(data.get("test_per_class", defaults.test_per_class)), test_seed),
    ):
        X, y, _ = generate_dataset(per_class, seed=set_seed, classes=data.get("classes"))
        sets.append(Dataset(X.astype(np.float32), y))
    detector, figures = calibrate_unknown_detector(artifacts.model, artifacts.mean, artifacts.std, *sets, config,
                                                   artifacts.logit_offsets)
    detector.save(Path(folder) / DETECTOR_FILE)
    figures["fitted_by"] = command
    path = Path(folder) / MODEL_CARD_FILE
    if path.is_file():
        stored = json.loads(path.read_text())
        stored["unknown_detection"] = figures
        path.write_text(json.dumps(stored, indent=2))
    print(json.dumps({key: value for key, value in figures.items() if "by_label" not in key}, indent=2))
    return figures


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m services.training.evaluate", description=__doc__.splitlines()[0])
    parser.add_argument("--artifacts", default=None, help="artifacts folder (default: the repository's artifacts/)")
    parser.add_argument("--per-class", type=int, default=100)
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED)
    parser.add_argument("--garbage-per-family", type=int, default=100)
    parser.add_argument("--update-card", action="store_true", help="store the figures in model_card.json")
    parser.add_argument("--refit-detector", action="store_true",
                        help="fit unknown_detector.npz on simulated data first (seeds from the model card)")
    parser.add_argument("--data", type=Path, default=None,
                        help="score on a labelled folder tree (the data set as downloaded, or one folder per label) "
                             "instead of simulated windows")
    parser.add_argument("--unit", default=None, choices=UNITS,
                        help="with --data: units of the files (default window: kA on the data set's system)")
    parser.add_argument("--rated-current", type=float, default=None, metavar="A",
                        help="with --data: the unit's rated current in amperes for --unit A or kA")
    args = parser.parse_args(argv)
    arguments = list(sys.argv[1:] if argv is None else argv)
    command = " ".join(["python -m services.training.evaluate", shlex.join(arguments)]).strip()
    if args.refit_detector:
        refit_detector(Predictor(args.artifacts).artifacts_dir, args.garbage_per_family, command)
    predictor = Predictor(args.artifacts)
    if args.data is not None:
        try:
            figures = evaluate_folder(predictor, args.data, unit=args.unit, rated_current_a=args.rated_current)
        except WaveformError as exc:
            parser.error(str(exc))
        figures["command"] = command
        print(json.dumps({key: value for key, value in figures.items() if key != "reliability"}, indent=2))
        if args.update_card:
            _store_in_card(parser, predictor, "evaluation_on_data", figures)
        return 0
    card = predictor.model_card or {}
    used = {card.get("seed"), card.get("test_seed")}
    if card.get("seed") is not None:
        used.add(card["seed"] + 1)
    if args.seed in used:
        parser.error(f"seed {args.seed} was used to train, validate or test this model; pick another")
    figures = evaluate(predictor, args.per_class, args.seed, args.garbage_per_family)
    figures["command"] = command
    print(json.dumps(figures, indent=2))
    if args.update_card:
        _store_in_card(parser, predictor, "evaluation", figures)
    return 0


def _store_in_card(parser: argparse.ArgumentParser, predictor: Predictor, key: str, figures: dict) -> None:
    path = Path(predictor.artifacts_dir) / MODEL_CARD_FILE
    if not path.is_file():
        parser.error(f"{path} does not exist; --update-card needs a model card")
    stored = json.loads(path.read_text())
    stored[key] = figures
    path.write_text(json.dumps(stored, indent=2))


if __name__ == "__main__":
    sys.exit(main())
