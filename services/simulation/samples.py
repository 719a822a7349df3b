"""Write the bundled example events: python -m services.simulation.samples [--artifacts DIR].

For every label two windows: one at the default parameters of `parameter_specs` (a typical,
clearly visible event) and one with randomly drawn parameters. Files are
`sample_data/sample_NN_<label>.npy` (float32 (3, 726)) and `samples_info.json` maps each file name
to {"true_label_id", "true_label_str"}, the format of the original application. The seed is fixed
and distinct from any training seed, so the samples are reproducible and never seen in training.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from services.labels import LABELS
from services.simulation.core import parameter_specs, simulate_event

SAMPLES_SEED = 9_000_001
DEFAULT_ARTIFACTS = Path(__file__).resolve().parents[2] / "artifacts"


def write_samples(artifacts_dir: Path = DEFAULT_ARTIFACTS, seed: int = SAMPLES_SEED) -> dict[str, dict]:
    """(Re)write sample_data/*.npy and samples_info.json; returns the info mapping."""
    folder = artifacts_dir / "sample_data"
    folder.mkdir(parents=True, exist_ok=True)
    for old in folder.glob("sample_*.npy"):
        old.unlink()
    info: dict[str, dict] = {}
    number = 0
    for label_id, label in enumerate(LABELS):
        defaults = {spec["name"]: spec["default"] for spec in parameter_specs(label)}
        for overrides, sample_seed in ((defaults, seed + label_id), ({}, seed + 1000 + label_id)):
            number += 1
            wave, _ = simulate_event(label, seed=sample_seed, **overrides)
            name = f"sample_{number:02d}_{label}.npy"
            np.save(folder / name, wave.astype(np.float32))
            info[name] = {"true_label_id": label_id, "true_label_str": label}
    (artifacts_dir / "samples_info.json").write_text(json.dumps(info, indent=2) + "\n", encoding="utf-8")
    return info


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m services.simulation.samples", description=__doc__)
    parser.add_argument("--artifacts", type=Path, default=DEFAULT_ARTIFACTS, help="artifacts folder")
    args = parser.parse_args(argv)
    info = write_samples(args.artifacts)
    print(f"wrote {len(info)} samples to {args.artifacts / 'sample_data'} and samples_info.json")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
