"""`python -m services.training.recalibrate --artifacts DIR`: refit the level temperatures of a model.

The kind and equipment temperatures (services.inference.levels) are fitted, as in training
(`services.training.pipeline.level_calibration_set`), on simulated validation windows plus every
label re-simulated under each relay view. The weights are not touched; calibration.json and the
model card's `level_temperatures` are rewritten. Use it after a change of the simulator's relay
views, or on a model trained before the level temperatures existed.
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from services.training.pipeline import (
    VALIDATION_SEED_OFFSET,
    Dataset,
    TrainingConfig,
    fit_level_temperatures,
    level_calibration_set,
)


def recalibrate(folder: Path, seed: int = TrainingConfig.seed, per_class: int = 60) -> dict:
    """Refit and write the kind and equipment temperatures of the model in `folder`."""
    from services.inference.predictor import Predictor
    from services.simulation import generate_dataset

    predictor = Predictor(folder)
    config = TrainingConfig(seed=seed, validation_per_class=per_class)
    X, y, _ = generate_dataset(per_class, seed=seed + VALIDATION_SEED_OFFSET)
    calibration_set, description = level_calibration_set(config, Dataset(X.astype(np.float32), y.astype(np.int64)))
    kind, equipment = fit_level_temperatures(predictor.logits(calibration_set.X), calibration_set.y)
    calibration_path = folder / "calibration.json"
    calibration = json.loads(calibration_path.read_text()) if calibration_path.is_file() else {}
    calibration.update({"temperature_kind": kind, "temperature_equipment": equipment})
    calibration_path.write_text(json.dumps(calibration, indent=2))
    card_path = folder / "model_card.json"
    if card_path.is_file():
        card = json.loads(card_path.read_text())
        card["level_temperatures"] = {"kind": kind, "equipment": equipment, "calibration_set": description}
        card_path.write_text(json.dumps(card, indent=2))
    return {"kind": kind, "equipment": equipment, "calibration_set": description,
            "before": {"kind": predictor.temperature_kind, "equipment": predictor.temperature_equipment}}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m services.training.recalibrate", description=__doc__.split("\n")[0])
    parser.add_argument("--artifacts", type=Path, default=Path("artifacts"), help="artifacts folder (default: artifacts)")
    parser.add_argument("--seed", type=int, default=TrainingConfig.seed, help="training seed of the model")
    parser.add_argument("--per-class", type=int, default=60, help="validation windows per label (default 60)")
    args = parser.parse_args(argv)
    if args.per_class < 2:
        parser.error("--per-class must be at least 2")
    if not (args.artifacts / "best_model.pth").is_file():
        parser.error(f"{args.artifacts} holds no best_model.pth")
    started = time.perf_counter()
    result = recalibrate(args.artifacts, args.seed, args.per_class)
    print(f"temperatures: kind {result['before']['kind']:.3f} -> {result['kind']:.3f}, equipment "
          f"{result['before']['equipment']:.3f} -> {result['equipment']:.3f} ({result['calibration_set']}; "
          f"{time.perf_counter() - started:.0f} s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
