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


def expected_calibration_error(probabilities: np.ndarray, targets: np.ndarray, bins: int = 15) -> float:
    """ECE: weighted mean |accuracy - confidence| over equal-width confidence bins."""
    confidence = probabilities.max(axis=1)
    correct = probabilities.argmax(axis=1) == targets
    edges = np.linspace(0.0, 1.0, bins + 1)
    which = np.clip(np.digitize(confidence, edges[1:-1], right=True), 0, bins - 1)
    error = 0.0
    for b in range(bins):
        members = which == b
        if members.any():
            error += members.mean() * abs(correct[members].mean() - confidence[members].mean())
    return float(error)


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
