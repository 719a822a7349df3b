"""The two ways to run the network: ONNX Runtime (served) and torch (fallback), same numbers.

Both run `ServingNet` (normalisation inside, BatchNorm folded) and return logits, the hidden
vector and the per-step contribution used by the explanation. The ONNX graph is exported from the state_dict when the
service loads (`dynamo=False`, well under a second) and cached outside the repository, under
`InferenceOptions.cache_dir` (default `~/.cache/grid-event-monitor`), keyed by the weights' fingerprint; written
atomically so several workers can share it.
"""

from __future__ import annotations

import io
import logging
import os
import tempfile
import warnings
from pathlib import Path

import numpy as np
import torch

from services.inference.options import InferenceOptions
from services.model import ConvNet, ServingNet

log = logging.getLogger(__name__)

#: bumped whenever the exported graph changes, so stale cached files are not reused
EXPORT_VERSION = 3
OUTPUT_NAMES = ("logits", "hidden", "contribution")


class TorchBackend:
    """Runs ServingNet with torch (CPU)."""

    name = "torch"

    def __init__(self, net: ServingNet) -> None:
        self.net = net.eval()

    def run(self, batch: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        with torch.inference_mode():
            logits, hidden, contribution = self.net(torch.from_numpy(np.ascontiguousarray(batch, dtype=np.float32)))
        return logits.numpy(), hidden.numpy(), contribution.numpy()


class OrtBackend:
    """Runs the exported graph with ONNX Runtime (CPU, all graph optimisations, sequential)."""

    name = "onnxruntime"

    def __init__(self, onnx_model: bytes | str, threads: int, spinning: bool = False) -> None:
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.log_severity_level = 3
        if not spinning:
            # idle ORT threads would otherwise spin and steal the cores numpy (signal checks,
            # explanation) and the web server need right after each call
            options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        self.session = ort.InferenceSession(onnx_model, options, providers=["CPUExecutionProvider"])

    def run(self, batch: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        logits, hidden, contribution = self.session.run(
            list(OUTPUT_NAMES), {"waveform": np.ascontiguousarray(batch, dtype=np.float32)}
        )
        return logits, hidden, contribution


def serving_net(model: ConvNet, mean: np.ndarray, std: np.ndarray, input_scaling: str = "none") -> ServingNet:
    return ServingNet(model, torch.from_numpy(mean), torch.from_numpy(std), input_scaling).eval()


def export_onnx(net: ServingNet) -> bytes:
    """The ONNX graph of `net` with a dynamic batch axis (TorchScript exporter, opset 17)."""
    buffer = io.BytesIO()
    example = torch.zeros(1, 3, 726)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            net,
            (example,),
            buffer,
            input_names=["waveform"],
            output_names=list(OUTPUT_NAMES),
            dynamic_axes={name: {0: "batch"} for name in ("waveform", *OUTPUT_NAMES)},
            opset_version=17,
            dynamo=False,
        )
    return buffer.getvalue()


def _cached_onnx(net: ServingNet, model_fingerprint: str, cache_dir: Path) -> bytes | str:
    """Path of the cached graph (exported now if absent), or the bytes if the cache is unwritable."""
    path = cache_dir / f"convnet-{model_fingerprint}-v{EXPORT_VERSION}.onnx"
    if path.is_file() and path.stat().st_size > 0:
        return str(path)
    graph = export_onnx(net)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=path.parent, suffix=".tmp", delete=False) as handle:
            handle.write(graph)
        os.replace(handle.name, path)
    except OSError as exc:
        log.warning("cannot cache the ONNX graph in %s (%s); keeping it in memory", path.parent, exc)
    return graph


def make_backend(net: ServingNet, model_fingerprint: str, preferred: str | None = None,
                 options: InferenceOptions | None = None) -> TorchBackend | OrtBackend:
    """ONNX Runtime unless `preferred` (or `options.backend`) says torch or it fails; then torch."""
    options = options or InferenceOptions()
    choice = (preferred or options.backend).strip().lower()
    if choice not in ("onnxruntime", "onnx", "ort", "torch"):
        raise ValueError(f"unknown backend {choice!r}: expected 'onnxruntime' or 'torch'")
    threads = options.resolved_threads
    if choice != "torch":
        try:
            source = _cached_onnx(net, model_fingerprint, options.resolved_cache_dir)
            try:
                return OrtBackend(source, threads, options.ort_spinning)
            except Exception:  # a corrupt cached file: export afresh into memory
                if isinstance(source, str):
                    return OrtBackend(export_onnx(net), threads, options.ort_spinning)
                raise
        except Exception as exc:  # noqa: BLE001 - any ORT/export failure falls back to torch
            log.warning("ONNX Runtime backend unavailable (%s); serving with torch", exc)
    torch.set_num_threads(threads)
    return TorchBackend(net)
