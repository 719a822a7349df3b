"""Training pipeline: simulated (or a user's labelled) windows -> shipped artifacts.

`python -m services.training --help` lists the options; `train(TrainingConfig(...))` is the same
from Python.
"""

from services.training.pipeline import TrainingConfig, train

__all__ = ["TrainingConfig", "train"]
