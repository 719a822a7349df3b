"""The training pipeline behind `python -m services.training`.

data (simulated or a labelled folder) -> normalisation from the training split -> training with
augmentation and early stopping on the validation split -> temperature scaling on the validation
split -> unknown-detector calibration -> evaluation on a test set drawn with a seed never used in
training -> artifacts (docs/contracts.md, "Artifacts" plus extras) written atomically into the output folder.
"""

from __future__ import annotations

import copy
import json
import math
import os
import platform
import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from services.inference.artifacts import (
    CALIBRATION_FILE,
    DESCRIPTIONS_FILE,
    LABELS_FILE,
    MODEL_CARD_FILE,
    MODEL_FILE,
    NORMALIZATION_FILE,
)
from services.inference.connections import CONNECTION_HEADS_FILE
from services.inference.dc_evidence import CALIBRATION_KEY as DC_EVIDENCE_KEY
from services.inference.dc_evidence import DcEvidence, fit_dc_evidence
from services.inference.descriptions import fault_descriptions
from services.inference.levels import (
    LOGIT_OFFSETS_KEY,
    LOGIT_OFFSETS_NOTE_KEY,
    fit_equipment_temperature,
    fit_kind_temperature,
    prior_correction,
)
from services.inference.unknown import DETECTOR_FILE, FeatureDetector, fit_feature_detector, signal_checks
from services.labels import LABELS, TRANSIENT_LABELS, label_parts
from services.model import ConvNet, ServingNet, make_scale_invariant, scale_to_window_peak, set_training
from services.training.augment import AugmentConfig, augment_batch
from services.training.garbage import flag_rates, garbage_suite
from services.training.metrics import (
    calibration_report,
    classification_report,
    fit_temperature,
    negative_log_likelihood,
    softmax,
)

#: test windows are drawn with seed + this offset (never used for training or validation)
TEST_SEED_OFFSET = 7_919
VALIDATION_SEED_OFFSET = 1
#: simulated windows per label and stated relay connection for the connection heads (about 90 s in all)
CONNECTION_HEADS_PER_CLASS = 150
#: seconds the connection heads take per window per label (85 s for 150 on a 2-core machine at load
#: about 1), kept free by the time limit
CONNECTION_HEADS_S_PER_CLASS = 0.6


@dataclass
class TrainingConfig:
    """Every knob of one training run; defaults are the shipped recipe (about 25 minutes on 2 CPU
    cores; the time limit keeps it inside 30 on a slower machine)."""

    out_dir: Path = Path("artifacts")
    data_dir: Path | None = None  # a labelled folder instead of the simulator
    per_class: int = 1000  # simulated training windows per label
    #: training windows per transient label (None: per_class). A fault kind has three labels (one
    #: per unit) and so three times the windows of a transient kind, while the six transients carry
    #: more variety each (ferroresonance modes, energised and in-progress inrush, CT saturation kinds)
    transient_per_class: int | None = 3000
    validation_per_class: int = 60
    test_per_class: int = 100
    classes: list[int] | None = None  # label ids to simulate (default all 45)
    epochs: int = 24
    batch_size: int = 128
    learning_rate: float = 3e-3
    weight_decay: float = 1e-4
    patience: int = 6  # epochs without validation improvement before stopping
    seed: int = 20_261_124
    test_seed: int | None = None  # default seed + TEST_SEED_OFFSET
    device: str = "auto"
    threads: int | None = None
    time_limit_min: float | None = 28.0  # stop starting epochs that would end past this
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    garbage_per_family: int = 100
    #: simulated windows per label and stated relay connection for the connection heads; 0: none fitted
    connection_heads_per_class: int = CONNECTION_HEADS_PER_CLASS
    progress: bool = True
    #: amplitude-free network (zero biases, frozen BatchNorm shifts) fed window-peak-scaled inputs:
    #: a 0.05 high-impedance fault and a 45 CT-saturation transient weigh the same in training
    scale_invariant: bool = True


@dataclass
class Dataset:
    X: np.ndarray  # float32 (n, 3, 726)
    y: np.ndarray  # int64 (n,)


@dataclass
class Splits:
    train: Dataset
    validation: Dataset
    test: Dataset
    description: str


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise ValueError("--device cuda was asked for but no CUDA GPU is available")
    if name not in ("cpu", "cuda"):
        raise ValueError(f"unknown device {name!r}: expected auto, cpu or cuda")
    return torch.device(name)


def load_splits(config: TrainingConfig, log: Callable[[str], None]) -> Splits:
    """Training, validation and test sets: simulated with three seeds, or split from a folder."""
    test_seed = config.test_seed if config.test_seed is not None else config.seed + TEST_SEED_OFFSET
    if config.data_dir is not None:
        from services.dataset import load_dataset_tree

        X, y, _, skipped = load_dataset_tree(config.data_dir)
        for path, reason in skipped[:20]:
            log(f"skipped {path}: {reason}")
        if len(skipped) > 20:
            log(f"... and {len(skipped) - 20} more skipped files")
        train, validation, test = _stratified_split(X, y, config.seed)
        return Splits(train, validation, test, f"labelled folder {config.data_dir} ({len(y)} windows, "
                      f"{len(np.unique(y))} labels, {len(skipped)} files skipped), stratified 70/15/15 split "
                      f"with seed {config.seed}")
    if test_seed in (config.seed, config.seed + VALIDATION_SEED_OFFSET):
        raise ValueError("the test seed must differ from the training and validation seeds")
    from services.simulation import generate_dataset

    started = time.perf_counter()
    parts = [_training_windows(config)]
    for per_class, seed in (
        (config.validation_per_class, config.seed + VALIDATION_SEED_OFFSET),
        (config.test_per_class, test_seed),
    ):
        X, y, _ = generate_dataset(per_class, seed=seed, classes=config.classes, progress=config.progress)
        parts.append(Dataset(X.astype(np.float32), y.astype(np.int64)))
    log(f"simulated {sum(len(p.y) for p in parts)} windows in {time.perf_counter() - started:.1f} s")
    n_labels = len(np.unique(parts[0].y))
    transients = (f" ({transient_windows_per_label(config)} per transient label)"
                  if transient_windows_per_label(config) != config.per_class else "")
    return Splits(*parts, description=(
        f"services.simulation.generate_dataset: {config.per_class} windows per label{transients} x {n_labels} labels "
        f"(seed {config.seed}) for training, {config.validation_per_class} per label (seed "
        f"{config.seed + VALIDATION_SEED_OFFSET}) for validation, {config.test_per_class} per label "
        f"(seed {test_seed}) for the test"
    ))


def transient_windows_per_label(config: TrainingConfig) -> int:
    """Training windows simulated for each transient label."""
    return config.per_class if config.transient_per_class is None else config.transient_per_class


def simulated_training_counts(config: TrainingConfig) -> np.ndarray:
    """Training windows simulated per label id (0 for a label not simulated): `per_class` per fault
    label, `transient_windows_per_label` per transient label."""
    from services.simulation.core import resolve_classes

    counts = np.zeros(len(LABELS), dtype=np.int64)
    for label_id in resolve_classes(config.classes):
        counts[label_id] = (transient_windows_per_label(config) if LABELS[label_id] in TRANSIENT_LABELS
                            else config.per_class)
    return counts


def _training_windows(config: TrainingConfig) -> Dataset:
    """The training split, `simulated_training_counts` windows of each label (each class has its own
    generator, so a label's windows do not depend on the other labels' counts)."""
    from services.simulation import generate_dataset

    counts = simulated_training_counts(config)
    arrays = [generate_dataset(int(count), seed=config.seed, classes=np.flatnonzero(counts == count).tolist(),
                               progress=config.progress)[:2]
              for count in np.unique(counts[counts > 0])]
    return Dataset(np.concatenate([X for X, _ in arrays]).astype(np.float32),
                   np.concatenate([y for _, y in arrays]).astype(np.int64))


def _stratified_split(X: np.ndarray, y: np.ndarray, seed: int) -> tuple[Dataset, Dataset, Dataset]:
    rng = np.random.default_rng(seed)
    chosen: list[list[int]] = [[], [], []]
    for label in np.unique(y):
        members = rng.permutation(np.flatnonzero(y == label))
        n = len(members)
        n_test = max(1, round(0.15 * n)) if n >= 3 else 0
        n_validation = max(1, round(0.15 * n)) if n >= 3 else 0
        chosen[2].extend(members[:n_test])
        chosen[1].extend(members[n_test:n_test + n_validation])
        chosen[0].extend(members[n_test + n_validation:])
    if not chosen[1] or not chosen[2]:
        raise ValueError("the labelled folder needs at least 3 windows per label (train, validation, test)")
    return tuple(Dataset(X[np.array(c)], y[np.array(c)]) for c in chosen)  # type: ignore[return-value]


class LearningRateSchedule:
    """One-cycle learning rate: linear warm-up over 20 % of the steps, then cosine annealing.

    `shorten` re-plans the remaining steps (when the time limit would be passed) as a cosine from
    the current rate down to the floor, so a slow machine still ends on a fully annealed model.
    """

    def __init__(self, peak: float, total_steps: int, warmup_fraction: float = 0.2) -> None:
        self.peak = peak
        self.total = max(1, total_steps)
        self.warmup = max(1, int(warmup_fraction * self.total))
        self.floor = peak * 1e-3
        self.restart: tuple[int, float] | None = None  # (step, rate) where a shortened plan starts

    def _planned(self, step: int) -> float:
        if step < self.warmup:
            return self.peak * (0.04 + 0.96 * step / self.warmup)
        progress = min(1.0, (step - self.warmup) / max(1, self.total - self.warmup))
        return self.floor + 0.5 * (self.peak - self.floor) * (1.0 + math.cos(math.pi * progress))

    def rate(self, step: int) -> float:
        if self.restart is None:
            return self._planned(step)
        start, start_rate = self.restart
        progress = min(1.0, (step - start) / max(1, self.total - start))
        return self.floor + 0.5 * (start_rate - self.floor) * (1.0 + math.cos(math.pi * progress))

    def shorten(self, step: int, total_steps: int) -> None:
        self.restart = (step, self.rate(step))
        self.total = max(step + 1, total_steps)


def normalization_stats(X: np.ndarray, centre: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """Per-phase mean and std of the training windows, shape (1, 3, 1) float32.

    With `centre=False` the mean is stored as zero: differential currents are zero-mean AC, and a
    non-zero centre would break the amplitude invariance of a scale-invariant network.
    """
    mean = X.astype(np.float64).mean(axis=(0, 2)).reshape(1, 3, 1)
    if not centre:
        mean = np.zeros_like(mean)
    std = X.astype(np.float64).std(axis=(0, 2)).reshape(1, 3, 1)
    return mean.astype(np.float32), std.astype(np.float32)


def _logits(model: nn.Module, X: np.ndarray, mean: torch.Tensor, std: torch.Tensor, device: torch.device,
            input_scaling: str, batch: int = 512) -> np.ndarray:
    model.eval()
    outputs = []
    with torch.inference_mode():
        for start in range(0, len(X), batch):
            chunk = torch.from_numpy(X[start:start + batch]).to(device)
            outputs.append(model(_model_input(chunk, mean, std, input_scaling)).float().cpu().numpy())
    return np.concatenate(outputs)


def input_scaling_of(config: TrainingConfig) -> str:
    """The input scaling the trained model expects (stored in calibration.json)."""
    return "window_peak" if config.scale_invariant else "none"


def _model_input(raw: torch.Tensor, mean: torch.Tensor, std: torch.Tensor, input_scaling: str) -> torch.Tensor:
    """The contract's normalisation, then the window-peak scaling of a scale-invariant model."""
    normalised = ((raw - mean) / (std + 1e-7)).float()
    return scale_to_window_peak(normalised) if input_scaling == "window_peak" else normalised


def _serving_outputs(model: ConvNet, mean: np.ndarray, std: np.ndarray, X: np.ndarray,
                     input_scaling: str, offsets: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Logits and hidden vectors of the serving network (CPU), as the predictor will see them
    (`offsets`: the training prior's correction added to the logits, as calibration.json's)."""
    net = ServingNet(copy.deepcopy(model).cpu().eval(), torch.from_numpy(mean), torch.from_numpy(std),
                     input_scaling).eval()
    logits, hidden = [], []
    with torch.inference_mode():
        for start in range(0, len(X), 512):
            out = net(torch.from_numpy(np.ascontiguousarray(X[start:start + 512], dtype=np.float32)))
            logits.append(out[0].numpy())
            hidden.append(out[1].numpy())
    adjusted = np.concatenate(logits)
    return (adjusted if offsets is None else adjusted + offsets[None, :]), np.concatenate(hidden)


def training_logit_offsets(y_train: np.ndarray) -> np.ndarray:
    """The prior correction of a training split's label counts (services.inference.levels)."""
    return prior_correction(np.bincount(np.asarray(y_train, dtype=np.int64), minlength=len(LABELS)))


def train(config: TrainingConfig, log: Callable[[str], None] = print, command: str | None = None) -> dict:
    """Run the whole pipeline and write the artifacts into `config.out_dir`; returns the model card."""
    started = time.perf_counter()
    device = resolve_device(config.device)
    if config.threads:
        torch.set_num_threads(config.threads)
    torch.manual_seed(config.seed)
    np.random.seed(config.seed % 2**32)
    generator = torch.Generator().manual_seed(config.seed)

    splits = load_splits(config, log)
    train_set, validation, test = splits.train, splits.validation, splits.test
    input_scaling = input_scaling_of(config)
    mean_np, std_np = normalization_stats(train_set.X, centre=not config.scale_invariant)
    mean = torch.from_numpy(mean_np).to(device)
    std = torch.from_numpy(std_np).to(device)
    clearable_by_label = torch.tensor(
        [label_parts(label).category == "internal_fault" or "external_fault" in label for label in LABELS]
    )

    model = ConvNet(len(LABELS))
    if config.scale_invariant:
        make_scale_invariant(model)
    model = model.to(device)
    decay, no_decay = [], []
    for parameter in model.parameters():
        if not parameter.requires_grad:
            continue
        (no_decay if parameter.ndim == 1 else decay).append(parameter)
    optimizer = torch.optim.AdamW(
        [{"params": decay, "weight_decay": config.weight_decay}, {"params": no_decay, "weight_decay": 0.0}],
        lr=config.learning_rate,
    )
    steps_per_epoch = math.ceil(len(train_set.y) / config.batch_size)
    schedule = LearningRateSchedule(config.learning_rate, config.epochs * steps_per_epoch)
    loss_function = nn.CrossEntropyLoss()
    X_train = torch.from_numpy(train_set.X)
    y_train = torch.from_numpy(train_set.y)

    best = {"loss": math.inf, "epoch": 0, "state": copy.deepcopy(model.state_dict()), "accuracy": 0.0}
    history = []
    stopped_because = "completed all epochs"
    epoch_seconds: list[float] = []
    planned_epochs = config.epochs
    step_count = 0
    for epoch in range(1, config.epochs + 1):
        if epoch > planned_epochs:
            break
        if config.time_limit_min is not None and epoch_seconds:
            per_epoch = min(epoch_seconds[-2:])  # a one-off stall (another process) does not cut the plan
            left = (config.time_limit_min * 60.0 - (time.perf_counter() - started) - 45.0  # evaluation + writing
                    - CONNECTION_HEADS_S_PER_CLASS * config.connection_heads_per_class)
            fitting = epoch - 1 + int(left // per_epoch)
            if fitting < planned_epochs:
                planned_epochs = fitting
                if planned_epochs < epoch:
                    stopped_because = f"time limit of {config.time_limit_min:g} min"
                    log(f"stopping before epoch {epoch}: the {config.time_limit_min:g} min limit would be passed")
                    break
                schedule.shorten(step_count, planned_epochs * steps_per_epoch)
                stopped_because = f"time limit of {config.time_limit_min:g} min: schedule shortened to {planned_epochs} epochs"
                log(f"the machine is slower than planned: annealing over {planned_epochs} epochs instead of {config.epochs}")
        epoch_started = time.perf_counter()
        set_training(model, config.scale_invariant)
        order = torch.randperm(len(y_train), generator=generator)
        running_loss = 0.0
        correct = 0
        bar = tqdm(range(steps_per_epoch), desc=f"epoch {epoch}/{planned_epochs}", unit="batch",
                   disable=not config.progress, leave=False)
        for step in bar:
            index = order[step * config.batch_size:(step + 1) * config.batch_size]
            targets = y_train[index]
            raw = augment_batch(X_train[index], clearable_by_label[targets], generator, config.augment)
            inputs = _model_input(raw.to(device), mean, std, input_scaling)
            targets = targets.to(device)
            logits = model(inputs)
            loss = loss_function(logits, targets)
            for group in optimizer.param_groups:
                group["lr"] = schedule.rate(step_count)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            step_count += 1
            running_loss += loss.item() * len(index)
            correct += int((logits.argmax(1) == targets).sum())
            if step % 10 == 0:
                bar.set_postfix(loss=f"{loss.item():.3f}")
        bar.close()
        validation_logits = _logits(model, validation.X, mean, std, device, input_scaling)
        validation_loss = negative_log_likelihood(validation_logits, validation.y)
        validation_accuracy = float((validation_logits.argmax(1) == validation.y).mean())
        epoch_seconds.append(time.perf_counter() - epoch_started)
        history.append({
            "epoch": epoch,
            "train_loss": running_loss / len(y_train),
            "train_accuracy": correct / len(y_train),
            "validation_loss": validation_loss,
            "validation_accuracy": validation_accuracy,
            "seconds": epoch_seconds[-1],
        })
        log(f"epoch {epoch}: train loss {running_loss / len(y_train):.4f} acc {correct / len(y_train):.4f} | "
            f"validation loss {validation_loss:.4f} acc {validation_accuracy:.4f} | {epoch_seconds[-1]:.0f} s")
        if validation_loss < best["loss"]:
            best = {"loss": validation_loss, "epoch": epoch, "state": copy.deepcopy(model.state_dict()),
                    "accuracy": validation_accuracy}
        elif epoch - best["epoch"] >= config.patience:
            stopped_because = f"early stopping: no validation improvement for {config.patience} epochs"
            log(stopped_because)
            break

    model.load_state_dict(best["state"])
    model = model.cpu().eval()
    training_seconds = time.perf_counter() - started

    # calibration on the validation split, then the untouched test split; the logits carry the
    # correction of the training split's label counts (more windows per transient label)
    offsets = training_logit_offsets(train_set.y)
    validation_logits, _ = _serving_outputs(model, mean_np, std_np, validation.X, input_scaling, offsets)
    temperature = fit_temperature(validation_logits, validation.y)
    unit_set, unit_set_description = level_calibration_set(config, validation)
    unit_logits, _ = _serving_outputs(model, mean_np, std_np, unit_set.X, input_scaling, offsets)
    temperature_kind, temperature_equipment = fit_level_temperatures(unit_logits, unit_set.y)
    log(f"temperatures: label {temperature:.3f}, kind {temperature_kind:.3f}, equipment {temperature_equipment:.3f} "
        f"({unit_set_description})")
    dc_evidence = fit_dc_evidence(train_set.X, [LABELS[int(i)] for i in train_set.y])
    test_logits, _ = _serving_outputs(model, mean_np, std_np, test.X, input_scaling, offsets)
    calibrated = softmax(test_logits / temperature)
    labels = LABELS
    report = classification_report(test.y, calibrated, labels)
    reliability = calibration_report(test_logits, test.y, temperature)
    ece_before = reliability["before"]["ece"]
    ece_after = reliability["after"]["ece"]

    detector, unknown = calibrate_unknown_detector(model, mean_np, std_np, train_set, validation, test, config,
                                                   offsets)

    card = {
        "model": "ConvNet (docs/contracts.md, Artifacts): 3 conv blocks + Linear(11520, 256) + Linear(256, 45)",
        "labels": len(labels),
        "training_data": splits.description,
        "data": {"source": "simulation" if config.data_dir is None else str(config.data_dir),
                 "per_class": config.per_class, "transient_per_class": transient_windows_per_label(config),
                 "validation_per_class": config.validation_per_class,
                 "test_per_class": config.test_per_class, "classes": config.classes},
        "normalization": {"mean": mean_np.ravel().tolist(), "std": std_np.ravel().tolist()},
        "input_scaling": input_scaling,
        "augmentation": asdict(config.augment),
        "seed": config.seed,
        "test_seed": config.test_seed if config.test_seed is not None else config.seed + TEST_SEED_OFFSET,
        "epochs_run": len(history),
        "epochs_max": config.epochs,
        "best_epoch": best["epoch"],
        "stopped_because": stopped_because,
        "batch_size": config.batch_size,
        "learning_rate": config.learning_rate,
        "device": str(device),
        "threads": torch.get_num_threads(),
        "duration_s": None,  # filled below
        "training_s": round(training_seconds, 1),
        "history": history,
        "test": {
            "windows": report["n_windows"],
            "accuracy": report["accuracy"],
            "macro_f1": report["macro_f1"],
            "category_accuracy": report["category_accuracy"],
            "equipment_accuracy": report["equipment_accuracy"],
            "ece_before_calibration": ece_before,
            "ece_after_calibration": ece_after,
            "nll_before_calibration": negative_log_likelihood(test_logits, test.y),
            "nll_after_calibration": negative_log_likelihood(test_logits, test.y, temperature),
            "reliability": reliability,
            "per_label_recall": report["per_label_recall"],
            "per_label_f1": report["per_label_f1"],
            "top_confusions": report["top_confusions"],
            "confusion_matrix": report["confusion_matrix"],
        },
        "temperature": temperature,
        "level_temperatures": {"kind": temperature_kind, "equipment": temperature_equipment,
                               "calibration_set": unit_set_description},
        "unknown_detection": unknown,
        "dc_evidence": None if dc_evidence is None else dc_evidence_summary(dc_evidence, "the training split"),
        "logit_offsets": logit_offsets_summary(offsets),
        "environment": {"python": platform.python_version(), "torch": torch.__version__, "numpy": np.__version__},
        "command": command,
    }
    card["duration_s"] = round(time.perf_counter() - started, 1)
    _write_artifacts(config.out_dir, model, mean_np, std_np, temperature, detector, card, ece_before, ece_after,
                     input_scaling, {"temperature_kind": temperature_kind,
                                     "temperature_equipment": temperature_equipment,
                                     **logit_offset_entries(offsets),
                                     **dc_evidence_entries(dc_evidence)})
    if config.connection_heads_per_class > 0:
        card["connection_heads"] = _fit_connection_heads(config, log)
        (Path(config.out_dir) / MODEL_CARD_FILE).write_text(json.dumps(card, indent=2))
    else:  # a head file left from an earlier run in this folder would read another network
        (Path(config.out_dir) / CONNECTION_HEADS_FILE).unlink(missing_ok=True)
    log(f"test: accuracy {report['accuracy']:.4f}, macro-F1 {report['macro_f1']:.4f}, category accuracy "
        f"{report['category_accuracy']:.4f}, ECE {ece_before:.4f} -> {ece_after:.4f} (T = {temperature:.3f}); "
        f"unknown: garbage flagged {unknown['garbage_flag_rate']:.3f}, valid flagged {unknown['valid_flag_rate']:.4f}")
    log(f"wrote artifacts to {config.out_dir} in {card['duration_s']:.0f} s")
    return card


def _fit_connection_heads(config: TrainingConfig, log: Callable[[str], None]) -> dict:
    """One head per stated relay connection over the network just written (services.inference.connections),
    saved beside it, on `config.connection_heads_per_class` simulated windows per label and connection."""
    from services.inference.predictor import Predictor
    from services.training.connection_heads import SEED, fit_connection_heads

    began = time.perf_counter()
    per_class = config.connection_heads_per_class
    heads, fitted = fit_connection_heads(Predictor(config.out_dir, backend="torch"), per_class, SEED + config.seed)
    heads.save(Path(config.out_dir) / CONNECTION_HEADS_FILE)
    log(f"connection heads: {len(fitted)} fitted on {per_class} windows per label each "
        f"in {time.perf_counter() - began:.0f} s")
    return {"per_class": per_class, "seed": SEED + config.seed, "heads": fitted}


def level_calibration_set(config: TrainingConfig, validation: Dataset) -> tuple[Dataset, str]:
    """Validation windows for the level temperatures: the plain validation split plus, when the
    simulator is the source, every label re-simulated with each relay view forced in turn.

    Which currents each unit's relay compares, and how the relay compensates them, is not publicly
    documented; the simulator draws it from alternatives (services.simulation RELAY_VIEWS).
    Calibrating p(kind) and p(equipment | kind) on windows where the view is fixed to each
    alternative makes each level's probability reflect how much of its evidence survives a
    different, equally plausible view (a Yd-compensated relay hides the faulted phases; no view
    tells the unit).
    """
    if config.data_dir is not None:
        return validation, "the validation split"
    from services.simulation import RELAY_VIEWS as views
    from services.simulation import generate_dataset

    per_class = max(4, config.validation_per_class // 2)
    parts_X, parts_y = [validation.X], [validation.y]
    for offset, view in enumerate(views):
        X, y, _ = generate_dataset(per_class, seed=config.seed + 101 + offset, classes=config.classes,
                                   relay_view=view)
        parts_X.append(X.astype(np.float32))
        parts_y.append(y.astype(np.int64))
    # the per-unit fault levels and standing currents are our own guesses too: faults once more with
    # a random unit's physics under each label (services.simulation.faults.simulate_faults)
    from services.simulation.core import resolve_classes

    faults = [i for i in resolve_classes(config.classes) if LABELS[i] not in TRANSIENT_LABELS]
    if faults:
        X, y, _ = generate_dataset(per_class, seed=config.seed + 101 + len(views), classes=faults,
                                   pooled_units=True)
        parts_X.append(X.astype(np.float32))
        parts_y.append(y.astype(np.int64))
    description = (f"the validation split plus {per_class} windows per label under each relay view "
                   f"({', '.join(views)}) and {per_class} per fault label with a random unit's fault level "
                   "and standing current")
    return Dataset(np.concatenate(parts_X), np.concatenate(parts_y)), description


def logit_offset_entries(offsets: np.ndarray) -> dict:
    """calibration.json's prior-correction entries (none when every label had as many windows)."""
    if not np.any(offsets):
        return {}
    return {LOGIT_OFFSETS_KEY: np.round(offsets, 6).tolist(),
            LOGIT_OFFSETS_NOTE_KEY: "added to the logits before any temperature: log(n_min / n_label) of the training "
                                  "split's windows per label, so an unequal count (more per transient label) does "
                                  "not tilt the answer (services.inference.levels.prior_correction)"}


def logit_offsets_summary(offsets: np.ndarray) -> dict | None:
    """The model card's note on the prior correction."""
    if not np.any(offsets):
        return None
    return {"labels_corrected": int(np.count_nonzero(offsets)), "smallest": float(offsets.min()),
            "method": "post-hoc logit adjustment, Menon et al., ICLR 2021"}


def dc_evidence_entries(evidence: DcEvidence | None) -> dict:
    """calibration.json's DC-evidence entries (none without transient windows to fit on)."""
    if evidence is None:
        return {}
    return {DC_EVIDENCE_KEY: evidence.to_dict(),
            "dc_evidence_note": "p(whole-cycle DC share | transient kind) fitted on the training windows; it weighs "
                                "how the transient category's probability splits among the six transients "
                                "(services.inference.dc_evidence)"}


def dc_evidence_summary(evidence: DcEvidence, source: str) -> dict:
    """The model card's note on the DC evidence (services.inference.dc_evidence)."""
    return {"fitted_on": f"{evidence.windows} transient windows of {source}", "kinds": list(evidence.kinds),
            "use": "p(transient kind | window) weighed by p(whole-cycle DC share | kind), naive Bayes; "
                   "the category's probability is unchanged"}


def fit_level_temperatures(logits: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """(kind, equipment) temperatures on a level calibration set's logits."""
    return fit_kind_temperature(logits, y, LABELS), fit_equipment_temperature(logits, y, LABELS)


def calibrate_unknown_detector(
    model: ConvNet, mean_np: np.ndarray, std_np: np.ndarray, train_set: Dataset, validation: Dataset,
    test: Dataset, config: TrainingConfig, offsets: np.ndarray | None = None,
) -> tuple[FeatureDetector, dict]:
    """Fit the feature-space detector (centres on training windows, threshold on validation ones)
    and measure the unknown flag on the test set and the garbage suite."""
    input_scaling = input_scaling_of(config)
    subset = np.random.default_rng(config.seed).permutation(len(train_set.y))[:min(len(train_set.y), 9000)]
    _, train_hidden = _serving_outputs(model, mean_np, std_np, train_set.X[subset], input_scaling)
    validation_logits, validation_hidden = _serving_outputs(model, mean_np, std_np, validation.X, input_scaling,
                                                            offsets)
    test_logits, test_hidden = _serving_outputs(model, mean_np, std_np, test.X, input_scaling, offsets)
    detector = fit_feature_detector(train_hidden, train_set.y[subset], validation_hidden, validation.y, train_set.X,
                                    predicted_validation=validation_logits.argmax(1))
    return detector, _unknown_figures(detector, model, mean_np, std_np, test, test_hidden, test_logits.argmax(1),
                                      config, offsets)


def _unknown_figures(detector, model, mean_np, std_np, test: Dataset, test_hidden, test_predicted,
                     config: TrainingConfig, offsets: np.ndarray | None = None) -> dict:
    """Share of garbage flagged and of valid test events flagged, overall and per reason/family."""
    input_scaling = input_scaling_of(config)
    valid_reasons = [a or b for a, b in zip(signal_checks(test.X), detector.reasons(test.X, test_hidden, test_predicted),
                                            strict=True)]
    test_seed = config.test_seed if config.test_seed is not None else config.seed + TEST_SEED_OFFSET
    garbage, families = garbage_suite(test.X, config.garbage_per_family, seed=test_seed + 1)
    finite = np.nan_to_num(garbage, nan=0.0, posinf=0.0, neginf=0.0).astype(np.float32)
    garbage_logits, garbage_hidden = _serving_outputs(model, mean_np, std_np, finite, input_scaling, offsets)
    garbage_reasons = [a or b for a, b in zip(signal_checks(garbage),
                                              detector.reasons(finite, garbage_hidden, garbage_logits.argmax(1)),
                                              strict=True)]
    flagged = np.array([reason is not None for reason in garbage_reasons])
    valid_flagged = np.array([reason is not None for reason in valid_reasons])
    by_label = {
        LABELS[label]: float(valid_flagged[test.y == label].mean()) for label in np.unique(test.y)
        if valid_flagged[test.y == label].any()
    }
    reason_counts: dict[str, int] = {}
    for reason in valid_reasons:
        if reason is not None:
            key = reason.split(":")[0]
            reason_counts[key] = reason_counts.get(key, 0) + 1
    return {
        "method": "signal checks (NaN/Inf, flat, clipped, DC only, broadband noise, steady tone, 50 Hz, "
                  "120 Hz) + Mahalanobis distance of the hidden vector to the predicted class's centre in units "
                  "of that class's radius (threshold: 99.5th percentile of validation scores) + amplitude "
                  "range of the training set",
        "distance_threshold": detector.threshold,
        "peak_range": list(detector.peak_range),
        **flag_rates(flagged, families),
        "valid_windows": int(len(test.y)),
        "valid_flag_rate": float(valid_flagged.mean()),
        "valid_flag_rate_by_label": by_label,
        "valid_flag_reasons": reason_counts,
    }


def _write_artifacts(out_dir: Path, model: ConvNet, mean: np.ndarray, std: np.ndarray, temperature: float,
                     detector, card: dict, ece_before: float, ece_after: float, input_scaling: str,
                     level_temperatures: dict[str, float] | None = None) -> None:
    """Write every file into a temporary folder next to `out_dir`, then move them in one by one."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".training-", dir=out_dir))
    try:
        state = {key: value.detach().cpu().float().contiguous() if value.is_floating_point() else value.cpu()
                 for key, value in model.state_dict().items()}
        torch.save(state, staging / MODEL_FILE)
        (staging / LABELS_FILE).write_text(json.dumps({str(i): label for i, label in enumerate(LABELS)}, indent=2))
        np.savez(staging / NORMALIZATION_FILE, mean=mean.astype(np.float32), std=std.astype(np.float32))
        (staging / DESCRIPTIONS_FILE).write_text(json.dumps(fault_descriptions(), indent=2, ensure_ascii=False))
        (staging / CALIBRATION_FILE).write_text(json.dumps({
            "method": "temperature scaling on the validation split (softmax(logits / temperature))",
            "temperature": temperature,
            "input_scaling": input_scaling,
            "input_scaling_note": "window_peak: after (x - mean) / std each window is divided by its largest "
                                  "absolute value; the network is amplitude-free (zero biases), so the original "
                                  "application, which does not scale, reaches the same labels",
            "ece_before": ece_before,
            "ece_after": ece_after,
            **(level_temperatures or {}),
            "level_note": "temperature_kind and temperature_equipment calibrate p(label) = p(kind) p(equipment | kind) "
                          "(services.inference.levels); both are fitted on windows re-simulated under every relay "
                          "view, so a level is only reported sure when its evidence survives a change of view",
        }, indent=2))
        detector.save(staging / DETECTOR_FILE)
        (staging / MODEL_CARD_FILE).write_text(json.dumps(card, indent=2))
        for path in staging.iterdir():
            os.replace(path, out_dir / path.name)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
