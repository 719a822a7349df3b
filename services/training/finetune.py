"""`python -m services.training.finetune --artifacts DIR --data DIR --out NEWDIR`: adapt a model to your records.

Adapts a trained artifacts folder (ours or the original application's) to a user's own labelled
records (the public data set's tree as downloaded, or one folder per label; services.dataset):

1. the records are split per label into an adapt part and a held-out part (`--holdout`, default
   30 %, stratified, `--seed`); a label with a single record has nothing to hold out;
2. the convolutional features (`f`, BatchNorm statistics included) are frozen; the classifier head
   (the `cls` Linear layers) is refitted on most of the adapt part for a few epochs on the CPU,
   starting from the shipped weights, with light augmentation (time shift, gain, noise, sign;
   services.training.augment) and an L2 pull towards the starting weights (L2-SP: Li, Grandvalet,
   Davis, "Explicit inductive bias for transfer learning with convolutional networks", ICML 2018)
   so that a few records do not erase what the model knew. Labels the records do not cover are
   rehearsed with a few simulated windows each (`--rehearsal`, services.simulation);
3. the temperature (Guo et al., "On calibration of modern neural networks", ICML 2017) is refitted
   on a slice of the adapt part that the head did not train on (on the whole adapt part when
   there are too few records for a slice), never on the held-out part;
4. the unknown detector (if the folder has one) is refitted in the new hidden space;
5. a complete new artifacts folder is written: every file of the source folder copied, then
   `best_model.pth`, `calibration.json`'s temperature, `unknown_detector.npz` and a `finetune`
   block in `model_card.json` replaced or added. The state_dict keeps the layout of docs/contracts.md
   ("Artifacts"), so the original application loads the result too.

Scale invariance: a model trained with `input_scaling: window_peak` has every bias at zero (so that
its decision does not depend on the window's amplitude, services.model.make_scale_invariant); the
head's biases stay at zero and frozen here, so that property holds after fine-tuning. A model
without it (the original application's) has its head biases refitted too.

Before/after accuracy (exact label, category, equipment), calibration and the unknown-flag rate
on the held-out part are printed and stored in the card, measured through the serving path
(services.inference.Predictor) exactly as the app runs it.
"""

from __future__ import annotations

import argparse
import copy
import json
import math
import os
import shlex
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import torch
from torch import nn

from services.inference.artifacts import (
    CALIBRATION_FILE,
    MODEL_CARD_FILE,
    MODEL_FILE,
    Artifacts,
    load_artifacts,
    resolve_artifacts_dir,
)
from services.inference.connections import CONNECTION_HEADS_FILE
from services.inference.levels import LOGIT_OFFSET_KEYS, fit_equipment_temperature, fit_kind_temperature
from services.inference.unknown import DETECTOR_FILE, fit_feature_detector
from services.labels import LABEL_TO_ID, label_parts
from services.model import ConvNet, scale_to_window_peak
from services.training.augment import AugmentConfig, augment_batch
from services.training.metrics import fit_temperature, negative_log_likelihood
from services.units import UNITS
from services.waveform import WaveformError

#: light augmentation: the records are real; only what a recorder could change about them
LIGHT_AUGMENT = AugmentConfig(shift_probability=0.3, max_shift=50, amplitude_range=(0.8, 1.25),
                              gain_mismatch=0.01, max_delay=0.25, noise_range=(3e-4, 2e-3), dc_offset=0.005,
                              clearing_probability=0.0, flip_probability=0.5)


@dataclass
class FinetuneConfig:
    """Every knob of one fine-tuning run (defaults: the command's)."""

    data: Path
    out: Path
    artifacts: Path | None = None  # default: the repository's artifacts/
    holdout: float = 0.3
    seed: int = 0
    epochs: int = 8
    batch_size: int = 32
    learning_rate: float = 1e-2
    anchor: float = 1e-2  # L2-SP strength: sum of squared departures from the starting head
    calibration_share: float = 0.2  # of the adapt part, kept out of head training for the temperature
    rehearsal: int = 10  # simulated windows per label the records lack (0: none)
    rehearsal_weight: float = 0.25  # their total share of the loss, at most
    detector_simulated: int = 12  # simulated windows per label added to the unknown detector's refit
    max_per_label: int | None = None  # use at most this many records per label (a random subset), for speed
    unit: str | None = None
    rated_current_a: float | None = None
    threads: int | None = None
    force: bool = False  # write into an existing non-empty --out
    progress: bool = False
    augment: AugmentConfig = field(default_factory=lambda: LIGHT_AUGMENT)


def stratified_split(y: np.ndarray, share: float, seed: int, *, min_left: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """(kept, taken) indices: per label round(share * n) taken (at least 1 when n > min_left), the rest kept."""
    rng = np.random.default_rng(seed)
    kept: list[int] = []
    taken: list[int] = []
    for label in np.unique(y):
        members = rng.permutation(np.flatnonzero(y == label))
        n = len(members)
        count = 0 if n <= min_left else min(n - min_left, max(1, round(share * n)))
        taken.extend(members[:count].tolist())
        kept.extend(members[count:].tolist())
    return np.sort(np.asarray(kept, dtype=np.int64)), np.sort(np.asarray(taken, dtype=np.int64))


def _inputs(raw: torch.Tensor, artifacts: Artifacts) -> torch.Tensor:
    """The contract's normalisation, then the window-peak scaling of a scale-invariant model."""
    mean = torch.from_numpy(artifacts.mean)
    std = torch.from_numpy(artifacts.std)
    normalised = ((raw - mean) / (std + 1e-7)).float()
    return scale_to_window_peak(normalised) if artifacts.input_scaling == "window_peak" else normalised


def _features(model: ConvNet, raw: np.ndarray | torch.Tensor, artifacts: Artifacts, batch: int = 256) -> torch.Tensor:
    """Flattened outputs of the frozen convolutional features (n, 11520)."""
    model.f.eval()
    tensor = torch.as_tensor(np.ascontiguousarray(raw, dtype=np.float32)) if isinstance(raw, np.ndarray) else raw
    outputs = []
    with torch.no_grad():
        for start in range(0, len(tensor), batch):
            outputs.append(torch.flatten(model.f(_inputs(tensor[start:start + batch], artifacts)), 1))
    return torch.cat(outputs) if outputs else torch.zeros((0, model.cls[0].in_features))


def _head_outputs(model: ConvNet, features: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
    """(logits, post-ReLU hidden vectors) of the head in eval mode."""
    model.cls.eval()
    with torch.no_grad():
        hidden = model.cls[1](model.cls[0](features))
        logits = model.cls[3](hidden)
    return logits.numpy().astype(np.float64), hidden.numpy().astype(np.float64)


def _is_scale_invariant(artifacts: Artifacts) -> bool:
    biases = [module.bias for module in artifacts.model.cls if isinstance(module, nn.Linear)]
    return artifacts.input_scaling == "window_peak" and all(
        bias is None or float(bias.detach().abs().max()) == 0.0 for bias in biases)


def _score(predictor, X: np.ndarray, y: np.ndarray) -> dict:
    from services.training.evaluate import evaluate_labelled

    figures = evaluate_labelled(predictor, X, y)
    keep = ("windows", "labels", "accuracy", "macro_f1", "category_accuracy", "equipment_accuracy", "ece",
            "unknown_flag_rate", "per_label_recall", "top_confusions")
    scored = {key: figures[key] for key in keep}
    label_ids = np.array([LABEL_TO_ID[label] for label in predictor.labels])
    column_of = {int(label_id): column for column, label_id in enumerate(label_ids)}
    columns = np.array([column_of[int(label)] for label in y])
    scored["nll"] = negative_log_likelihood(predictor.logits(X), columns, predictor.temperature)
    return scored


def finetune(config: FinetuneConfig, log: Callable[[str], None] = print, command: str | None = None) -> dict:
    """Run the whole adaptation and write `config.out`; returns the card's `finetune` block."""
    from services.dataset import scan_dataset_tree
    from services.inference.predictor import Predictor

    started = time.perf_counter()
    if not 0.0 < config.holdout < 1.0:
        raise ValueError(f"--holdout must be between 0 and 1 (a share of each label's records), got {config.holdout:g}")
    if config.epochs < 1 or config.batch_size < 1 or (config.max_per_label is not None and config.max_per_label < 2):
        raise ValueError("--epochs and --batch-size must be at least 1, --max-per-label at least 2")
    source = resolve_artifacts_dir(config.artifacts)
    out = Path(config.out).expanduser().resolve()
    if out == source:
        raise ValueError(f"--out {out} is the source folder; write the adapted model to a new folder")
    if out.exists() and (not out.is_dir() or (any(out.iterdir()) and not config.force)):
        raise ValueError(f"--out {out} exists and is not empty; choose a new folder (or --force to overwrite its files)")
    if config.threads:
        torch.set_num_threads(config.threads)
    torch.manual_seed(config.seed)
    generator = torch.Generator().manual_seed(config.seed)
    artifacts = load_artifacts(source)

    tree = scan_dataset_tree(config.data, progress=config.progress, unit=config.unit,
                             rated_current_a=config.rated_current_a)
    log(tree.summary())
    if not tree.files:
        raise WaveformError(f"{config.data}: no usable labelled record")
    column_of = {LABEL_TO_ID[label]: column for column, label in enumerate(artifacts.labels)}
    usable = np.array([int(label) in column_of for label in tree.y])
    if not usable.all():
        log(f"{int((~usable).sum())} record(s) carry labels the model does not know; left out")
    X_all, y_all = tree.X[usable], tree.y[usable]
    if config.max_per_label is not None:
        rng = np.random.default_rng(config.seed + 5)
        chosen = np.sort(np.concatenate([rng.permutation(np.flatnonzero(y_all == label))[:config.max_per_label]
                                         for label in np.unique(y_all)]))
        log(f"using {len(chosen)} of {len(y_all)} records (at most {config.max_per_label} per label)")
        X_all, y_all = X_all[chosen], y_all[chosen]
    adapt, held = stratified_split(y_all, config.holdout, config.seed)
    if len(held) == 0:
        raise ValueError("too few records to hold any out: each label needs at least 2 records for a before/after")
    X_adapt, y_adapt = X_all[adapt], y_all[adapt]
    X_held, y_held = X_all[held], y_all[held]
    fit_part, calibration_part = stratified_split(y_adapt, config.calibration_share, config.seed + 1, min_left=2)
    temperature_on = "a calibration slice of the adapt part (not used to fit the head)"
    if len(calibration_part) == 0:
        fit_part, calibration_part = np.arange(len(y_adapt)), np.arange(len(y_adapt))
        temperature_on = "the whole adapt part (too few records for a separate calibration slice)"
    log(f"records: {len(y_adapt)} adapt ({len(fit_part)} for the head, {len(calibration_part)} for the temperature), "
        f"{len(y_held)} held out, {len(np.unique(y_all))} labels")

    # rehearsal: simulated windows of the labels the records do not cover, so they are not forgotten
    X_fit, y_fit = X_adapt[fit_part], y_adapt[fit_part]
    weights = np.ones(len(y_fit))
    missing = sorted(set(column_of) - set(np.unique(y_adapt).tolist()))
    rehearsed = 0
    if config.rehearsal > 0 and missing:
        from services.simulation import generate_dataset

        X_sim, y_sim, _ = generate_dataset(config.rehearsal, seed=config.seed + 17, classes=missing)
        rehearsed = len(y_sim)
        # the records lead: the simulated windows together weigh at most `rehearsal_weight` of the loss
        share = config.rehearsal_weight / (1.0 - config.rehearsal_weight) * len(y_fit) / rehearsed
        weights = np.concatenate([weights, np.full(rehearsed, min(1.0, share))])
        X_fit = np.concatenate([X_fit, X_sim.astype(np.float32)])
        y_fit = np.concatenate([y_fit, y_sim.astype(np.int64)])
        log(f"rehearsal: {rehearsed} simulated windows of the {len(missing)} labels the records lack "
            f"(weight {min(1.0, share):.3g} each)")

    model = copy.deepcopy(artifacts.model).cpu()
    scale_invariant = _is_scale_invariant(artifacts)
    for parameter in model.f.parameters():
        parameter.requires_grad_(False)
    trainable: list[nn.Parameter] = []
    for module in model.cls:
        if isinstance(module, nn.Linear):
            module.weight.requires_grad_(True)
            trainable.append(module.weight)
            if module.bias is not None:
                module.bias.requires_grad_(not scale_invariant)
                if not scale_invariant:
                    trainable.append(module.bias)
    anchors = [parameter.detach().clone() for parameter in trainable]
    optimizer = torch.optim.AdamW(trainable, lr=config.learning_rate, weight_decay=0.0)
    loss_function = nn.CrossEntropyLoss(reduction="none")
    weights_fit = torch.from_numpy(weights.astype(np.float32))
    targets_fit = torch.tensor([column_of[int(label)] for label in y_fit])
    clearable = torch.tensor([label_parts(label).category == "internal_fault" or "external_fault" in label
                              for label in artifacts.labels])
    X_fit_tensor = torch.from_numpy(np.ascontiguousarray(X_fit, dtype=np.float32))
    steps = math.ceil(len(y_fit) / config.batch_size)
    history = []
    for epoch in range(1, config.epochs + 1):
        epoch_started = time.perf_counter()
        order = torch.randperm(len(y_fit), generator=generator)
        total_loss, correct = 0.0, 0
        for step in range(steps):
            index = order[step * config.batch_size:(step + 1) * config.batch_size]
            targets = targets_fit[index]
            raw = augment_batch(X_fit_tensor[index], clearable[targets], generator, config.augment)
            features = _features(model, raw, artifacts)
            model.cls.train()
            logits = model.cls(features)
            loss = (loss_function(logits, targets) * weights_fit[index]).sum() / weights_fit[index].sum()
            penalty = sum(((p - a) ** 2).sum() for p, a in zip(trainable, anchors, strict=True))
            optimizer.zero_grad(set_to_none=True)
            (loss + config.anchor * penalty).backward()
            optimizer.step()
            total_loss += loss.item() * len(index)
            correct += int((logits.argmax(1) == targets).sum())
        history.append({"epoch": epoch, "loss": total_loss / len(y_fit), "accuracy": correct / len(y_fit),
                        "seconds": round(time.perf_counter() - epoch_started, 2)})
        log(f"epoch {epoch}/{config.epochs}: loss {history[-1]['loss']:.4f}, accuracy {history[-1]['accuracy']:.4f} "
            f"({history[-1]['seconds']:.1f} s)")
    model.eval()
    if scale_invariant:  # the biases never moved; make it exact
        for module in model.cls:
            if isinstance(module, nn.Linear) and module.bias is not None:
                module.bias.data.zero_()

    calibration_features = _features(model, X_adapt[calibration_part], artifacts)
    calibration_logits, _ = _head_outputs(model, calibration_features)
    calibration_targets = np.array([column_of[int(label)] for label in y_adapt[calibration_part]])
    temperature = fit_temperature(calibration_logits, calibration_targets)
    # the per-level temperatures (services.inference.levels) belong to the new head as well
    temperature_kind = fit_kind_temperature(calibration_logits, calibration_targets, tuple(artifacts.labels))
    temperature_equipment = fit_equipment_temperature(calibration_logits, calibration_targets, tuple(artifacts.labels))

    detector = None
    if artifacts.detector is not None:
        detector = _refit_detector(model, artifacts, X_fit, y_fit, X_adapt[calibration_part],
                                   y_adapt[calibration_part], column_of, config)

    card_block = {
        "source_artifacts": str(source),
        "data": str(config.data),
        "records": {"used": int(len(y_all)), "files_skipped": len(tree.skipped),
                    "skipped": [{"file": path, "reason": reason} for path, reason in tree.skipped[:20]],
                    "labels": int(len(np.unique(y_all))), "adapt": int(len(y_adapt)),
                    "head_training": int(len(fit_part)), "calibration": int(len(calibration_part)),
                    "held_out": int(len(y_held)), "rehearsal_simulated": rehearsed,
                    "max_per_label": config.max_per_label,
                    "units": tree.units.get("summary")},
        "holdout": config.holdout,
        "seed": config.seed,
        "epochs": config.epochs,
        "batch_size": config.batch_size,
        "learning_rate": config.learning_rate,
        "l2_sp_anchor": config.anchor,
        "augmentation": {key: value for key, value in config.augment.__dict__.items()},
        "trained": "classifier head (cls.0 and cls.3 weights"
                   + (", biases kept at zero: scale-invariant model)" if scale_invariant else " and biases)"),
        "frozen": "convolutional features f (weights and BatchNorm statistics)",
        "temperature": {"before": artifacts.temperature, "after": temperature, "fitted_on": temperature_on},
        "unknown_detector": ("refitted on the new hidden vectors of the head-training records and "
                             f"{config.detector_simulated} simulated windows per label; threshold on the calibration "
                             "slice" if detector is not None else "none in the source folder"),
        "history": history,
        "note": "figures elsewhere in this card describe the source model; this block describes the adaptation",
        "connection_heads": "not copied: they read the hidden vector the refitted head changed; refit them with "
                            "python -m services.training.connection_heads --artifacts <this folder>",
        "command": command,
    }

    staging = Path(tempfile.mkdtemp(prefix=".finetune-", dir=out.parent if out.parent.exists() else None))
    try:
        folder = staging / "artifacts"
        # the connection heads read the hidden vector this run changes: they would be stale
        shutil.copytree(source, folder, ignore=shutil.ignore_patterns(".*", CONNECTION_HEADS_FILE))
        state = {key: value.detach().cpu().float().contiguous() if value.is_floating_point() else value.cpu()
                 for key, value in model.state_dict().items()}
        torch.save(state, folder / MODEL_FILE)
        calibration = _read_json(folder / CALIBRATION_FILE) or {"input_scaling": artifacts.input_scaling}
        # the new head learned the user's records, not the simulator's counts: no prior correction
        for key in LOGIT_OFFSET_KEYS:
            calibration.pop(key, None)
        calibration.update({"temperature": temperature, "temperature_kind": temperature_kind,
                            "temperature_equipment": temperature_equipment,
                            "method": f"temperature scaling refitted by services.training.finetune on {temperature_on}",
                            "finetuned_from_temperature": artifacts.temperature})
        (folder / CALIBRATION_FILE).write_text(json.dumps(calibration, indent=2))
        if detector is not None:
            detector.save(folder / DETECTOR_FILE)
        card = _read_json(folder / MODEL_CARD_FILE) or {}
        card["temperature"] = temperature
        card["finetune"] = card_block
        (folder / MODEL_CARD_FILE).write_text(json.dumps(card, indent=2))

        before = _score(Predictor(source, backend="torch"), X_held, y_held)
        after = _score(Predictor(folder, backend="torch"), X_held, y_held)
        card_block["held_out"] = {"windows": int(len(y_held)), "before": before, "after": after}
        card_block["duration_s"] = round(time.perf_counter() - started, 1)
        (folder / MODEL_CARD_FILE).write_text(json.dumps(card, indent=2))
        _move_into(folder, out)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    log(report_lines(card_block))
    log(f"wrote {out}")
    return card_block


def report_lines(block: dict) -> str:
    """The before/after table of a `finetune` card block, as printed."""
    held = block["held_out"]
    rows = [f"held-out records: {held['windows']} ({held['after']['labels']} labels)", "                 before   after"]
    for key, name in (("accuracy", "exact label"), ("category_accuracy", "category"),
                      ("equipment_accuracy", "equipment"), ("unknown_flag_rate", "flagged unknown")):
        rows.append(f"{name:<16} {held['before'][key]:7.1%} {held['after'][key]:7.1%}")
    rows.append(f"{'ECE':<16} {held['before']['ece']:7.4f} {held['after']['ece']:7.4f}")
    rows.append(f"temperature      {block['temperature']['before']:7.3f} {block['temperature']['after']:7.3f}")
    return "\n".join(rows)


def _refit_detector(model: ConvNet, artifacts: Artifacts, X_fit: np.ndarray, y_fit: np.ndarray,
                    X_calibration: np.ndarray, y_calibration: np.ndarray, column_of: dict[int, int],
                    config: FinetuneConfig):
    """The feature-space unknown detector in the new head's hidden space (centres from the
    head-training records plus simulated windows of every label, radii and threshold from the
    calibration slice plus other simulated windows); the amplitude range widened to the records'."""
    from services.simulation import generate_dataset

    parts_fit, parts_validation = [(X_fit, y_fit)], [(X_calibration, y_calibration)]
    if config.detector_simulated > 0:
        classes = sorted(column_of)
        X_sim, y_sim, _ = generate_dataset(config.detector_simulated, seed=config.seed + 29, classes=classes)
        X_val, y_val, _ = generate_dataset(max(2, config.detector_simulated // 2), seed=config.seed + 31,
                                           classes=classes)
        parts_fit.append((X_sim.astype(np.float32), y_sim))
        parts_validation.append((X_val.astype(np.float32), y_val))
    X_train = np.concatenate([x for x, _ in parts_fit])
    y_train = np.concatenate([np.array([column_of[int(v)] for v in y]) for _, y in parts_fit])
    X_validation = np.concatenate([x for x, _ in parts_validation])
    y_validation = np.concatenate([np.array([column_of[int(v)] for v in y]) for _, y in parts_validation])
    _, hidden_train = _head_outputs(model, _features(model, X_train, artifacts))
    validation_logits, hidden_validation = _head_outputs(model, _features(model, X_validation, artifacts))
    detector = fit_feature_detector(hidden_train, y_train, hidden_validation, y_validation, X_train,
                                    predicted_validation=validation_logits.argmax(1))
    low, high = detector.peak_range
    old_low, old_high = artifacts.detector.peak_range
    return replace(detector, peak_range=(min(low, old_low), max(high, old_high)))


def _read_json(path: Path) -> dict | None:
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return None
    return data if isinstance(data, dict) else None


def _move_into(folder: Path, out: Path) -> None:
    """The staged folder becomes `out` (renamed when `out` does not exist, else file by file)."""
    if not out.exists():
        out.parent.mkdir(parents=True, exist_ok=True)
        shutil.move(str(folder), str(out))
        return
    for path in folder.iterdir():
        target = out / path.name
        if target.is_dir() and not target.is_symlink():
            shutil.rmtree(target)
        os.replace(path, target)


def _parser() -> argparse.ArgumentParser:
    defaults = FinetuneConfig(data=Path("."), out=Path("."))
    parser = argparse.ArgumentParser(prog="python -m services.training.finetune", description=__doc__.splitlines()[0])
    parser.add_argument("--artifacts", type=Path, default=None,
                        help="source artifacts folder (default: the repository's artifacts/)")
    parser.add_argument("--data", type=Path, required=True,
                        help="your labelled records: the data set's tree as downloaded, or one folder per label")
    parser.add_argument("--out", type=Path, required=True, help="new artifacts folder to write")
    parser.add_argument("--holdout", type=float, default=defaults.holdout, help="share of each label's records held out")
    parser.add_argument("--seed", type=int, default=defaults.seed)
    parser.add_argument("--epochs", type=int, default=defaults.epochs)
    parser.add_argument("--batch-size", type=int, default=defaults.batch_size)
    parser.add_argument("--lr", type=float, default=defaults.learning_rate)
    parser.add_argument("--anchor", type=float, default=defaults.anchor,
                        help="L2-SP strength pulling the head towards the source weights")
    parser.add_argument("--rehearsal", type=int, default=defaults.rehearsal,
                        help="simulated windows per label the records lack (0: none)")
    parser.add_argument("--detector-simulated", type=int, default=defaults.detector_simulated,
                        help="simulated windows per label added to the unknown detector's refit (0: records only)")
    parser.add_argument("--max-per-label", type=int, default=None,
                        help="use at most this many records per label (a random subset; faster on the full data set)")
    parser.add_argument("--unit", default=None, choices=UNITS, help="units of the files (default window: kA on the "
                                                                    "data set's 500 MVA, 230 kV system)")
    parser.add_argument("--rated-current", type=float, default=None, metavar="A",
                        help="the unit's rated current in amperes, for --unit A or kA")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    parser.add_argument("--force", action="store_true", help="write into an existing non-empty --out")
    parser.add_argument("--progress", action="store_true", help="progress bar while reading the files")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    arguments = list(sys.argv[1:] if argv is None else argv)
    command = " ".join(["python -m services.training.finetune", shlex.join(arguments)]).strip()
    config = FinetuneConfig(data=args.data, out=args.out, artifacts=args.artifacts, holdout=args.holdout,
                            seed=args.seed, epochs=args.epochs, batch_size=args.batch_size, learning_rate=args.lr,
                            anchor=args.anchor, rehearsal=args.rehearsal,
                            detector_simulated=args.detector_simulated, max_per_label=args.max_per_label,
                            unit=args.unit,
                            rated_current_a=args.rated_current, threads=args.threads, force=args.force,
                            progress=args.progress)
    try:
        finetune(config, command=command)
    except (WaveformError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
