"""The model card of the artifacts (model_card.json), read into what the Model page draws.

The card is `Predictor.model_card` (artifacts/model_card.json, written by services.training). When
the model cannot load, the card file is still read directly so the page can say what was shipped.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from services.analysis import AnalysisContext
from services.labels import LABELS

log = logging.getLogger(__name__)

MODEL_CARD_FILE = "model_card.json"
#: the test metrics shown first on the Model page, in this order
HEADLINE_ORDER = ("accuracy", "macro_f1", "category_accuracy", "equipment_accuracy", "ece_after_calibration",
                  "ece_before_calibration", "windows")
#: top-level card entries listed under Identity
IDENTITY_FACTS = ("model", "labels", "seed", "test_seed", "epochs_run", "best_epoch", "stopped_because",
                  "training_s", "device")


def _first(mapping: Mapping[str, Any], *keys: str) -> Any:
    for key in keys:
        if isinstance(mapping, Mapping) and mapping.get(key) is not None:
            return mapping[key]
    return None


def read_card_file(artifacts_dir: Path) -> dict[str, Any] | None:
    """model_card.json of the folder, or None when absent or unreadable."""
    path = Path(artifacts_dir) / MODEL_CARD_FILE
    try:
        with open(path, encoding="utf-8") as handle:
            loaded = json.load(handle)
    except (OSError, ValueError):
        return None
    return loaded if isinstance(loaded, dict) else None


def load_card(context: AnalysisContext, *, loaded: bool) -> dict[str, Any] | None:
    """The model card: from the loaded predictor (`loaded`), else from the file."""
    if loaded:
        try:
            card = context.predictor().model_card
            if card:
                return dict(card)
        except Exception:
            log.exception("model card unavailable from the predictor")
    return read_card_file(context.artifacts_dir)


def _recall_map(value: Any) -> dict[str, float]:
    """label -> recall from a dict, a list of numbers (label order) or a list of records."""
    if isinstance(value, Mapping):
        return {str(k): float(v if not isinstance(v, Mapping) else _first(v, "recall", "value") or 0.0)
                for k, v in value.items()}
    if isinstance(value, Sequence) and not isinstance(value, str):
        result: dict[str, float] = {}
        for index, item in enumerate(value):
            if isinstance(item, Mapping):
                label = str(_first(item, "label", "name") or index)
                result[label] = float(_first(item, "recall", "value") or 0.0)
            elif index < len(LABELS):
                result[LABELS[index]] = float(item)
        return result
    return {}


def _reliability(card: Mapping[str, Any]) -> tuple[dict[str, Any] | None, str]:
    """(reliability-diagram data, which windows it was measured on), preferring the fresh
    evaluation set of `services.training.evaluate` over the training run's test split.

    A card written before the bins existed, or with bins of an unexpected shape, gives (None, "").
    """
    for section, name, seed_key in (("evaluation", "fresh evaluation set (serving path)", "seed"),
                                    ("test", "test split", None)):
        block = card.get(section)
        reliability = block.get("reliability") if isinstance(block, Mapping) else None
        if not _is_reliability(reliability):
            continue
        seed = block.get(seed_key) if seed_key else card.get("test_seed")
        seed_text = f", seed {seed}" if seed is not None else ""
        source = (f"Measured on the {name}: {int(reliability.get('windows') or 0):,} windows{seed_text}, "
                  f"{len(reliability['edges']) - 1} equal-width confidence bins (the ECE's).")
        return dict(reliability), source
    return None, ""


def _is_number(value: object) -> bool:
    """A JSON number (a bool is not one, though Python counts it as an int)."""
    return isinstance(value, int | float) and not isinstance(value, bool)


def _robustness(card: Mapping[str, Any]) -> dict[str, dict[str, float]]:
    """Accuracy under each departure from the simulator (`evaluation.robustness`); empty if absent."""
    evaluation = card.get("evaluation")
    figures = evaluation.get("robustness") if isinstance(evaluation, Mapping) else None
    if not isinstance(figures, Mapping):
        return {}
    return {
        str(name): {"accuracy": float(row["accuracy"]), "category_accuracy": float(row["category_accuracy"])}
        for name, row in figures.items()
        if isinstance(row, Mapping) and all(_is_number(row.get(key))
                                            for key in ("accuracy", "category_accuracy"))
    }


#: the test sets of `levels_report` (the lead's model card contract), in the order they are shown
LEVEL_SETS = ("simulator", "shift", "independent_transients")


def _levels_report(card: Mapping[str, Any]) -> dict[str, Any]:
    """`levels_report`: {"sets": {source: {figure: value}}, "notes": [str]}; empty when absent."""
    report = card.get("levels_report")
    if not isinstance(report, Mapping):
        return {"sets": {}, "notes": []}
    sets = {name: {key: value for key, value in report[name].items()
                   if isinstance(value, int | float | str) and not isinstance(value, bool) or value is None}
            for name in LEVEL_SETS if isinstance(report.get(name), Mapping)}
    notes = [str(note) for note in report.get("notes") or [] if note]
    return {"sets": sets, "notes": notes}


#: the figures of `levels_report["stated_connection"]` the Model page and the README compare,
#: unstated -> stated: (field, title)
STATED_CONNECTION_FIGURES: tuple[tuple[str, str], ...] = (
    ("phases_accuracy", "Faulted phases"), ("phases_sure_share", "Phases named as sure"),
    ("confidently_wrong_phases_all", "Confidently wrong phases"), ("category_accuracy", "Category"),
    ("transient_kind_accuracy", "Which transient"))


def _stated_connection(card: Mapping[str, Any]) -> list[dict[str, Any]]:
    """`levels_report["stated_connection"]` as rows: {"connection", "set", "windows", figure:
    (not stated, stated)}; empty when absent or malformed."""
    report = card.get("levels_report")
    measured = report.get("stated_connection") if isinstance(report, Mapping) else None
    if not isinstance(measured, Mapping):
        return []
    rows = []
    for connection, sets in measured.items():
        for name, scored in (sets.items() if isinstance(sets, Mapping) else ()):
            sides = [scored.get(side) if isinstance(scored, Mapping) else None for side in ("not_stated", "stated")]
            if not all(isinstance(side, Mapping) for side in sides):
                continue
            rows.append({"connection": str(connection), "set": str(name), "windows": scored.get("windows"),
                         **{figure: tuple(side.get(figure) if _is_number(side.get(figure)) else None for side in sides)
                            for figure, _ in STATED_CONNECTION_FIGURES}})
    return rows


def _is_reliability(value: Any) -> bool:
    """True for `calibration_report`'s structure: edges, and equal-length bin lists per curve."""
    edges = value.get("edges") if isinstance(value, Mapping) else None
    if not isinstance(edges, list | tuple) or len(edges) < 2:
        return False
    bins = len(edges) - 1
    for key in ("before", "after"):
        curve = value.get(key)
        if not isinstance(curve, Mapping) or not all(
                isinstance(curve.get(column), list | tuple) and len(curve[column]) == bins
                for column in ("count", "confidence", "accuracy")):
            return False
    return True


def safe_card_view(card: Mapping[str, Any] | None) -> tuple[dict[str, Any], str | None]:
    """(view, problem): a card of an unexpected shape gives an empty view and says so."""
    try:
        return card_view(card), None
    except (TypeError, ValueError, KeyError, IndexError) as exc:
        log.warning("model card unreadable: %s", exc)
        return card_view(None), f"The model card could not be read ({type(exc).__name__}: {exc})."


def card_view(card: Mapping[str, Any] | None) -> dict[str, Any]:
    """What the Model page draws, read from a model card (missing parts come back empty)."""
    card = card or {}
    metrics = _first(card, "test_metrics", "metrics", "test") or {}
    headline = {}
    if isinstance(metrics, Mapping):
        headline = {k: v for k, v in metrics.items() if _is_number(v)}
    recall = _recall_map(_first(card, "per_label_recall", "recall_per_label")
                         or (_first(metrics, "per_label_recall", "recall_per_label") if isinstance(metrics, Mapping)
                             else None))
    confusion = _first(card, "confusion_matrix", "confusion") or (
        _first(metrics, "confusion_matrix", "confusion") if isinstance(metrics, Mapping) else None)
    if isinstance(confusion, Mapping):
        confusion = _first(confusion, "matrix", "counts")
    calibration = _first(card, "calibration") or {}
    reliability, reliability_source = _reliability(card)
    calibration_facts: dict[str, Any] = {}
    if card.get("temperature") is not None:
        calibration_facts["temperature"] = card["temperature"]
    if isinstance(metrics, Mapping):
        calibration_facts.update({k: v for k, v in metrics.items() if _is_number(v) and ("ece" in k or "nll" in k)})
    if isinstance(calibration, Mapping):
        calibration_facts.update({k: v for k, v in calibration.items()
                                  if isinstance(v, int | float | str) and not isinstance(v, bool)})
    levels = card.get("level_temperatures")
    if isinstance(levels, Mapping):
        calibration_facts.update({f"temperature_{level}": levels[level] for level in ("kind", "equipment")
                                  if _is_number(levels.get(level))})
    evidence = card.get("dc_evidence")
    if isinstance(evidence, Mapping) and isinstance(evidence.get("fitted_on"), str):
        calibration_facts["dc_evidence"] = f"whole-cycle DC share weighs the transient kinds; {evidence['fitted_on']}"
    offsets = card.get("logit_offsets")
    if isinstance(offsets, Mapping) and _is_number(offsets.get("smallest")) and _is_number(offsets.get("labels_corrected")):
        calibration_facts["prior_correction"] = (f"{offsets['labels_corrected']} labels trained on more windows get "
                                                 f"{offsets['smallest']:+.2f} on their logits "
                                                 "(post-hoc logit adjustment)")
    training = _first(card, "training_data", "data", "dataset") or {}
    ordered = [name for name in HEADLINE_ORDER if name in headline] + [n for n in headline if n not in HEADLINE_ORDER]
    training_details = {key: card[key] for key in ("augmentation", "normalization", "test_seed", "epochs_run",
                                                   "batch_size", "learning_rate") if card.get(key) is not None}
    history = card.get("history") if isinstance(card.get("history"), list) else []
    unknown = card.get("unknown_detection") if isinstance(card.get("unknown_detection"), Mapping) else {}
    return {
        "robustness": _robustness(card),
        "levels_report": _levels_report(card),
        "stated_connection": _stated_connection(card),
        "history": history,
        "unknown": {k: v for k, v in unknown.items() if isinstance(v, int | float | str) and not isinstance(v, bool)},
        "training_details": training_details,
        "metrics": {name: headline[name] for name in ordered},
        "recall": recall,
        "confusion": confusion if isinstance(confusion, Sequence) else None,
        "labels": [str(label) for label in card["labels"]] if isinstance(card.get("labels"), list) else list(LABELS),
        "reliability": reliability,
        "reliability_source": reliability_source,
        "calibration_facts": calibration_facts,
        "training": training,
        "facts": {k: card[k] for k in IDENTITY_FACTS if isinstance(card.get(k), int | float | str)}
        or {k: v for k, v in card.items() if isinstance(v, int | float | str) and not isinstance(v, bool)},
    }
