"""Inference service: `get_predictor()` -> `Predictor` -> `Prediction` (docs/ARCHITECTURE.md).

Artifacts come from the folder given, else env GEM_ARTIFACTS_DIR, else `<repo>/artifacts`; the
original application's folder (best_model.pth, labels.json, normalization_stats.npz) works as is.
Env GEM_THREADS sets the inference threads, GEM_CACHE_DIR where the exported ONNX graph is
cached, GEM_BACKEND=torch forces the torch fallback.
"""

from services.inference.artifacts import ModelUnavailable
from services.inference.predictor import Prediction, Predictor, get_predictor

__all__ = ["ModelUnavailable", "Prediction", "Predictor", "get_predictor"]
