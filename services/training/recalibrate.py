"""`python -m services.training.recalibrate --artifacts DIR`: refit the calibration of a model.

- The prior correction of the training run's windows per label (`logit_offsets`, from the model
  card's counts) is written first, as training does.
- The kind and equipment temperatures (services.inference.levels) are fitted, as in training
  (`services.training.pipeline.level_calibration_set`), on simulated validation windows plus every
  label re-simulated under each relay view.
- The DC evidence (services.inference.dc_evidence) is fitted, as in training, on the transient
  windows of the training set: the simulator's windows with the model's training seed and windows
  per label, read from its model card (or given).

The weights are not touched; calibration.json and the model card are rewritten. Use it after a
change of the simulator, or on a model trained before these calibrations existed;
`--dc-evidence-only` leaves the temperatures as they are.
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from services.inference.levels import LOGIT_OFFSET_KEYS, prior_correction
from services.training.pipeline import (
    VALIDATION_SEED_OFFSET,
    Dataset,
    TrainingConfig,
    dc_evidence_entries,
    dc_evidence_summary,
    fit_level_temperatures,
    level_calibration_set,
    logit_offset_entries,
    logit_offsets_summary,
    simulated_training_counts,
    transient_windows_per_label,
)


def _update_json(path: Path, entries: dict) -> None:
    data = json.loads(path.read_text()) if path.is_file() else {}
    data.update(entries)
    path.write_text(json.dumps(data, indent=2))


def card_logit_offsets(folder: Path) -> np.ndarray | None:
    """The prior correction of a simulated training run's windows per label, from its model card
    (None for a model trained on a labelled folder, whose counts the card does not keep per label)."""
    from services.model_card import read_card_file

    data = (read_card_file(folder) or {}).get("data") or {}
    if not isinstance(data, dict) or data.get("source") != "simulation":
        return None
    try:
        config = TrainingConfig(per_class=int(data["per_class"]),
                                transient_per_class=int(data.get("transient_per_class") or data["per_class"]),
                                classes=data.get("classes"))
    except (KeyError, TypeError, ValueError):
        return None
    return prior_correction(simulated_training_counts(config))


def _write_logit_offsets(folder: Path, offsets: np.ndarray) -> None:
    """calibration.json and the card get the offsets (or lose them when every count is equal)."""
    path = folder / "calibration.json"
    data = json.loads(path.read_text()) if path.is_file() else {}
    for key in LOGIT_OFFSET_KEYS:
        data.pop(key, None)
    data.update(logit_offset_entries(offsets))
    path.write_text(json.dumps(data, indent=2))
    if (folder / "model_card.json").is_file():
        _update_json(folder / "model_card.json", {"logit_offsets": logit_offsets_summary(offsets)})


def recalibrate(folder: Path, seed: int = TrainingConfig.seed, per_class: int = 60) -> dict:
    """Refit and write the kind and equipment temperatures of the model in `folder` (after the
    prior correction of its training counts, which the temperatures are fitted on top of)."""
    from services.inference.predictor import Predictor
    from services.simulation import generate_dataset

    offsets = card_logit_offsets(folder)
    if offsets is not None:
        _write_logit_offsets(folder, offsets)
    predictor = Predictor(folder)
    config = TrainingConfig(seed=seed, validation_per_class=per_class)
    X, y, _ = generate_dataset(per_class, seed=seed + VALIDATION_SEED_OFFSET)
    calibration_set, description = level_calibration_set(config, Dataset(X.astype(np.float32), y.astype(np.int64)))
    kind, equipment = fit_level_temperatures(predictor.logits(calibration_set.X), calibration_set.y)
    _update_json(folder / "calibration.json", {"temperature_kind": kind, "temperature_equipment": equipment})
    if (folder / "model_card.json").is_file():
        _update_json(folder / "model_card.json", {"level_temperatures": {
            "kind": kind, "equipment": equipment, "calibration_set": description}})
    return {"kind": kind, "equipment": equipment, "calibration_set": description,
            "before": {"kind": predictor.temperature_kind, "equipment": predictor.temperature_equipment}}


def refit_dc_evidence(folder: Path, seed: int, per_class: int) -> dict:
    """Fit and write the DC evidence on the simulator's transient windows of the training set."""
    from services.inference.dc_evidence import fit_dc_evidence
    from services.labels import LABELS, TRANSIENT_LABELS
    from services.simulation import generate_dataset

    X, y, _ = generate_dataset(per_class, seed=seed, classes=list(TRANSIENT_LABELS))
    evidence = fit_dc_evidence(X, [LABELS[int(i)] for i in y])
    source = f"services.simulation.generate_dataset ({per_class} windows per transient label, seed {seed})"
    _update_json(folder / "calibration.json", dc_evidence_entries(evidence))
    if (folder / "model_card.json").is_file():
        _update_json(folder / "model_card.json", {"dc_evidence": dc_evidence_summary(evidence, source)})
    return dc_evidence_summary(evidence, source)


def _card_training(folder: Path) -> tuple[int | None, int | None]:
    """(seed, windows per transient label) of a simulated training run, from the model card."""
    from services.model_card import read_card_file

    card = read_card_file(folder) or {}
    try:
        data = card.get("data", {})
        per_label = data.get("transient_per_class") or data["per_class"]
        return int(card["seed"]), int(per_label) if data.get("source") == "simulation" else None
    except (ValueError, KeyError, TypeError, AttributeError):
        return None, None


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m services.training.recalibrate", description=__doc__.split("\n")[0])
    parser.add_argument("--artifacts", type=Path, default=Path("artifacts"), help="artifacts folder (default: artifacts)")
    parser.add_argument("--seed", type=int, default=None,
                        help="training seed of the model (default: the model card's, else TrainingConfig's)")
    parser.add_argument("--per-class", type=int, default=60, help="validation windows per label (default 60)")
    parser.add_argument("--training-per-class", type=int, default=None,
                        help="training windows per transient label for the DC evidence (default: the model "
                             "card's, else TrainingConfig's)")
    parser.add_argument("--dc-evidence-only", action="store_true", help="refit the DC evidence only")
    args = parser.parse_args(argv)
    if args.per_class < 2:
        parser.error("--per-class must be at least 2")
    if args.training_per_class is not None and args.training_per_class < 1:
        parser.error("--training-per-class must be at least 1")
    if not (args.artifacts / "best_model.pth").is_file():
        parser.error(f"{args.artifacts} holds no best_model.pth")
    card_seed, card_per_class = _card_training(args.artifacts)
    seed = args.seed if args.seed is not None else card_seed if card_seed is not None else TrainingConfig.seed
    training_per_class = args.training_per_class or card_per_class or transient_windows_per_label(TrainingConfig())
    started = time.perf_counter()
    if not args.dc_evidence_only:
        result = recalibrate(args.artifacts, seed, args.per_class)
        print(f"temperatures: kind {result['before']['kind']:.3f} -> {result['kind']:.3f}, equipment "
              f"{result['before']['equipment']:.3f} -> {result['equipment']:.3f} ({result['calibration_set']})")
    summary = refit_dc_evidence(args.artifacts, seed, training_per_class)
    print(f"DC evidence fitted on {summary['fitted_on']} ({time.perf_counter() - started:.0f} s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
