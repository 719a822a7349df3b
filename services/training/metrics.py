"""Evaluation figures for the model card: accuracy, macro-F1, recall, confusion, calibration.

Temperature scaling (Guo et al., 2017) divides the logits by one number T > 0 fitted to minimise
the negative log-likelihood on the validation split: the ranking (so the label) is unchanged,
only the confidence is made honest.
"""

from __future__ import annotations

import numpy as np
from scipy.optimize import minimize_scalar

from services.labels import label_parts


def softmax(logits: np.ndarray) -> np.ndarray:
    shifted = np.asarray(logits, dtype=np.float64)
    shifted = shifted - shifted.max(axis=1, keepdims=True)
    exp = np.exp(shifted)
    return exp / exp.sum(axis=1, keepdims=True)


def negative_log_likelihood(logits: np.ndarray, targets: np.ndarray, temperature: float = 1.0) -> float:
    scaled = np.asarray(logits, dtype=np.float64) / temperature
    scaled = scaled - scaled.max(axis=1, keepdims=True)
    log_probabilities = scaled - np.log(np.exp(scaled).sum(axis=1, keepdims=True))
    return float(-log_probabilities[np.arange(len(targets)), targets].mean())


def fit_temperature(logits: np.ndarray, targets: np.ndarray) -> float:
    """T in [0.05, 20] minimising the validation NLL of softmax(logits / T)."""
    result = minimize_scalar(
        lambda log_t: negative_log_likelihood(logits, targets, float(np.exp(log_t))),
        bounds=(np.log(0.05), np.log(20.0)),
        method="bounded",
        options={"xatol": 1e-4},
    )
    return float(np.exp(result.x))


#: equal-width confidence bins on [0, 1] of the ECE and of the reliability diagram
CALIBRATION_BINS = 15
CALIBRATION_BINNING = (
    "equal-width bins of the top-1 confidence on [0, 1], right-closed (the first also holds 0); "
    "the ECE is the count-weighted mean |accuracy - confidence| over them"
)


def confidence_bins(confidence: np.ndarray, bins: int = CALIBRATION_BINS) -> np.ndarray:
    """Bin index (0 .. bins - 1) of each confidence: one binning for the ECE and the diagram."""
    edges = np.linspace(0.0, 1.0, bins + 1)
    return np.clip(np.digitize(confidence, edges[1:-1], right=True), 0, bins - 1)


def reliability_bins(probabilities: np.ndarray, targets: np.ndarray, bins: int = CALIBRATION_BINS) -> dict:
    """Per confidence bin: window count, mean top-1 confidence and accuracy (None when empty), and
    the ECE they add up to. JSON-able, so the model card can draw a reliability diagram."""
    confidence = np.asarray(probabilities, dtype=np.float64).max(axis=1)
    return reliability_of(confidence, np.asarray(probabilities).argmax(axis=1) == np.asarray(targets), bins)


def reliability_of(confidence: np.ndarray, correct: np.ndarray, bins: int = CALIBRATION_BINS) -> dict:
    """`reliability_bins` of any stated confidence and whether each answer was right (a level's
    probability, not only the top label's)."""
    confidence = np.asarray(confidence, dtype=np.float64)
    correct = np.asarray(correct, dtype=bool)
    which = confidence_bins(confidence, bins)
    counts = np.bincount(which, minlength=bins)
    confidence_sum = np.bincount(which, weights=confidence, minlength=bins)
    correct_sum = np.bincount(which, weights=correct.astype(np.float64), minlength=bins)
    mean_confidence = [float(s / n) if n else None for s, n in zip(confidence_sum, counts, strict=True)]
    accuracy = [float(s / n) if n else None for s, n in zip(correct_sum, counts, strict=True)]
    total = max(int(counts.sum()), 1)
    ece = sum(n / total * abs(a - c) for n, a, c in zip(counts, accuracy, mean_confidence, strict=True) if n)
    return {"count": counts.tolist(), "confidence": mean_confidence, "accuracy": accuracy, "ece": float(ece)}


def expected_calibration_error(probabilities: np.ndarray, targets: np.ndarray, bins: int = CALIBRATION_BINS) -> float:
    """ECE: weighted mean |accuracy - confidence| over equal-width confidence bins."""
    return reliability_bins(probabilities, targets, bins)["ece"]


def calibration_report(
    logits: np.ndarray, targets: np.ndarray, temperature: float, bins: int = CALIBRATION_BINS
) -> dict:
    """Reliability-diagram data before (T = 1) and after temperature scaling, for the model card.

    The one helper behind both the training pipeline (test split) and `services.training.evaluate`
    (fresh set), so the Model page reads the same structure from either.
    """
    return {
        "bins": bins,
        "binning": CALIBRATION_BINNING,
        "edges": np.linspace(0.0, 1.0, bins + 1).round(6).tolist(),
        "windows": int(len(targets)),
        "temperature": float(temperature),
        "before": reliability_bins(softmax(logits), targets, bins),
        "after": reliability_bins(softmax(np.asarray(logits, dtype=np.float64) / temperature), targets, bins),
    }


def confusion_matrix(targets: np.ndarray, predicted: np.ndarray, n_classes: int) -> np.ndarray:
    matrix = np.zeros((n_classes, n_classes), dtype=np.int64)
    np.add.at(matrix, (targets, predicted), 1)
    return matrix


def classification_report(
    targets: np.ndarray, probabilities: np.ndarray, labels: tuple[str, ...]
) -> dict:
    """Accuracy, macro-F1 (over labels present), per-label recall, confusion, category accuracy."""
    predicted = probabilities.argmax(axis=1)
    matrix = confusion_matrix(targets, predicted, len(labels))
    present = np.flatnonzero(matrix.sum(axis=1) > 0)
    true_positive = np.diag(matrix).astype(np.float64)
    support = matrix.sum(axis=1).astype(np.float64)
    predicted_count = matrix.sum(axis=0).astype(np.float64)
    recall = np.divide(true_positive, support, out=np.zeros_like(true_positive), where=support > 0)
    precision = np.divide(true_positive, predicted_count, out=np.zeros_like(true_positive), where=predicted_count > 0)
    f1 = np.divide(2 * precision * recall, precision + recall, out=np.zeros_like(recall), where=(precision + recall) > 0)
    categories = np.array([label_parts(label).category for label in labels])
    equipment = np.array([label_parts(label).equipment for label in labels])
    confusions = [
        {"true": labels[i], "predicted": labels[j], "count": int(matrix[i, j])}
        for i, j in zip(*np.nonzero(matrix), strict=True)
        if i != j
    ]
    confusions.sort(key=lambda item: -item["count"])
    return {
        "n_windows": int(len(targets)),
        "accuracy": float((predicted == targets).mean()),
        "macro_f1": float(f1[present].mean()),
        "category_accuracy": float((categories[predicted] == categories[targets]).mean()),
        "equipment_accuracy": float((equipment[predicted] == equipment[targets]).mean()),
        "per_label_recall": {labels[i]: float(recall[i]) for i in present},
        "per_label_f1": {labels[i]: float(f1[i]) for i in present},
        "top_confusions": confusions[:20],
        "confusion_matrix": matrix.tolist(),
    }
