"""How the inference service runs: threads, backend, ONNX cache, micro-batching.

The service reads no environment variable: the web app's Settings (app/settings.py) build one of
these and hand it in; command-line tools use the defaults or their own flags.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

#: intra-op threads by default: both cores of the 2-core target (measured by benchmarks/bench_inference.py)
DEFAULT_THREADS = 2
#: most concurrent `predict` calls answered by one network call (1 turns micro-batching off)
DEFAULT_MAX_BATCH = 16
BACKENDS = ("onnxruntime", "torch")


@dataclass(frozen=True)
class InferenceOptions:
    """Inference settings; `None` means the default."""

    threads: int | None = None
    backend: str = "onnxruntime"
    cache_dir: Path | None = None
    max_batch: int | None = None
    #: let ONNX Runtime's idle threads spin between calls (off: they would steal the cores numpy
    #: and the web server need right after each call)
    ort_spinning: bool = False

    def __post_init__(self) -> None:
        if self.backend not in BACKENDS:
            raise ValueError(f"unknown backend {self.backend!r}: expected one of {', '.join(BACKENDS)}")
        for name in ("threads", "max_batch"):
            value = getattr(self, name)
            if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
                raise ValueError(f"{name} must be a whole number >= 1, got {value!r}")

    @property
    def resolved_threads(self) -> int:
        return self.threads or max(1, min(DEFAULT_THREADS, os.cpu_count() or 1))

    @property
    def resolved_cache_dir(self) -> Path:
        return Path(self.cache_dir).expanduser() if self.cache_dir else Path.home() / ".cache" / "grid-event-monitor"

    @property
    def resolved_max_batch(self) -> int:
        return self.max_batch or DEFAULT_MAX_BATCH
