"""Inference service: `get_predictor()` -> `Predictor` -> `Prediction` (docs/ARCHITECTURE.md).

Artifacts come from the folder given, else `<repo>/artifacts`; the original application's folder
(best_model.pth, labels.json, normalization_stats.npz) works as is. `InferenceOptions` (threads,
backend, ONNX cache folder, micro-batch size) is handed in by the caller: the service reads no
environment variable (the web app's Settings build the options).

Importing this package does not import torch or ONNX Runtime: `get_predictor`, `Predictor` and
`Prediction` load them on first access (so web workers load the model after forking, and
`ModelUnavailable` or `descriptions` are cheap to import).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from services.inference.errors import ModelUnavailable
from services.inference.options import InferenceOptions

if TYPE_CHECKING:
    from services.inference.predictor import Prediction, Predictor, get_predictor

__all__ = ["InferenceOptions", "ModelUnavailable", "Prediction", "Predictor", "get_predictor"]


def __getattr__(name: str) -> object:
    if name in ("Prediction", "Predictor", "get_predictor"):
        from services.inference import predictor

        return getattr(predictor, name)
    raise AttributeError(f"module 'services.inference' has no attribute {name!r}")
