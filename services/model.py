"""The 1-D ConvNet of docs/contracts.md, "Artifacts", and its BatchNorm-folded serving form.

The module names (`f`, `cls`) and layer order are the state_dict contract with the original
application: its `best_model.pth` loads into `ConvNet` and ours loads into it.
"""

from __future__ import annotations

import torch
from torch import nn

from services.waveform import N_PHASES, N_SAMPLES

N_CLASSES = 45
FEATURE_CHANNELS = 128
FEATURE_STEPS = N_SAMPLES // 2 // 2 // 2  # three MaxPool1d(2): 726 -> 363 -> 181 -> 90
FEATURE_SIZE = FEATURE_CHANNELS * FEATURE_STEPS  # 11,520
HIDDEN_SIZE = 256
#: multiply-adds x 2 of one window through the network (convolutions + the two linear layers)
FLOPS_PER_WINDOW = 2 * (
    N_PHASES * 32 * 7 * N_SAMPLES
    + 32 * 64 * 5 * (N_SAMPLES // 2)
    + 64 * 128 * 3 * (N_SAMPLES // 4)
    + FEATURE_SIZE * HIDDEN_SIZE
    + HIDDEN_SIZE * N_CLASSES
)


class ConvNet(nn.Module):
    """Three conv blocks (conv, BN, ReLU, max-pool) then Linear-ReLU-Dropout-Linear."""

    def __init__(self, n_classes: int = N_CLASSES) -> None:
        super().__init__()
        self.f = nn.Sequential(
            nn.Conv1d(N_PHASES, 32, 7, padding=3),
            nn.BatchNorm1d(32),
            nn.ReLU(),
            nn.MaxPool1d(2),
            nn.Conv1d(32, 64, 5, padding=2),
            nn.BatchNorm1d(64),
            nn.ReLU(),
            nn.MaxPool1d(2),
            nn.Conv1d(64, FEATURE_CHANNELS, 3, padding=1),
            nn.BatchNorm1d(FEATURE_CHANNELS),
            nn.ReLU(),
            nn.MaxPool1d(2),
        )
        self.cls = nn.Sequential(
            nn.Linear(FEATURE_SIZE, HIDDEN_SIZE),
            nn.ReLU(),
            nn.Dropout(0.4),
            nn.Linear(HIDDEN_SIZE, n_classes),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits (n, n_classes) of normalised windows (n, 3, 726)."""
        return self.cls(torch.flatten(self.f(x), 1))


def n_classes_of(state_dict: dict[str, torch.Tensor]) -> int:
    """Number of outputs of a ConvNet state_dict (rows of the last linear layer)."""
    return int(state_dict["cls.3.weight"].shape[0])


def strip_wrapper_prefix(state_dict: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Drop the `module.` prefix that nn.DataParallel adds, so such checkpoints load too."""
    if state_dict and all(key.startswith("module.") for key in state_dict):
        return {key[len("module."):]: value for key, value in state_dict.items()}
    return dict(state_dict)


def _fold_conv_bn(conv: nn.Conv1d, bn: nn.BatchNorm1d) -> nn.Conv1d:
    """A Conv1d equal to conv followed by BatchNorm1d in eval mode."""
    scale = bn.weight.detach() / torch.sqrt(bn.running_var.detach() + bn.eps)
    folded = nn.Conv1d(
        conv.in_channels, conv.out_channels, conv.kernel_size[0], padding=conv.padding[0], bias=True
    )
    bias = conv.bias.detach() if conv.bias is not None else torch.zeros(conv.out_channels)
    with torch.no_grad():
        folded.weight.copy_(conv.weight.detach() * scale[:, None, None])
        folded.bias.copy_((bias - bn.running_mean.detach()) * scale + bn.bias.detach())
    return folded


#: how windows are scaled after the (x - mean) / std normalisation of the artifact contract
INPUT_SCALINGS = ("none", "window_peak")


def scale_to_window_peak(x: torch.Tensor) -> torch.Tensor:
    """Divide each normalised window by its largest absolute value (all-zero windows stay zero).

    Internal faults span 0.03 to 4 and CT-saturation transients reach 45 in the same units: a
    network fed raw amplitudes sees high-impedance faults as almost nothing. With the network
    made positively homogeneous (`make_scale_invariant`) this scaling changes no decision, only
    puts every window on the same footing for training and for calibrated confidences.
    """
    peak = x.abs().amax(dim=(1, 2), keepdim=True)
    return x / torch.clamp(peak, min=1e-12)


def make_scale_invariant(model: ConvNet) -> ConvNet:
    """Zero and freeze every bias, BatchNorm shift and running mean (BatchNorm variance = 1).

    What remains (convolutions, per-channel BatchNorm gains, ReLU, max-pooling, linear layers
    without bias) is positively homogeneous: model(a * x) = a * model(x) for a > 0, so the
    predicted label does not depend on the window's amplitude. The state_dict keeps the layout
    of docs/contracts.md, "Artifacts" (the biases are just zeros), so the original application loads it and
    reaches the same labels without knowing about the window-peak scaling.
    """
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, nn.Conv1d | nn.Linear) and module.bias is not None:
                module.bias.zero_()
                module.bias.requires_grad_(False)
            elif isinstance(module, nn.BatchNorm1d):
                module.bias.zero_()
                module.bias.requires_grad_(False)
                module.running_mean.zero_()
                module.running_var.fill_(1.0 - module.eps)
    return model


def set_training(model: ConvNet, scale_invariant: bool) -> None:
    """Training mode; a scale-invariant model keeps its BatchNorm layers frozen (eval mode)."""
    model.train()
    if scale_invariant:
        for module in model.modules():
            if isinstance(module, nn.BatchNorm1d):
                module.eval()


class ServingNet(nn.Module):
    """Inference form: normalisation inside, BatchNorm folded into the convolutions, no dropout.

    Returns (logits, hidden, contribution): `hidden` is the post-ReLU 256-vector (used for the
    out-of-distribution score) and `contribution` (n, 90) how much each step of the last conv
    block pushed the predicted class's logit above the mean logit. With the ReLU pattern fixed
    the head is linear, so evidence = sum over channels and steps of G * F with
    G = W1^T ((w2_c - mean_k w2_k) * relu'(h)); `contribution` is that sum per step. Same logits
    as `ConvNet` in eval mode, fewer operations.

    The first linear layer runs per feature step: Q[t] = F[:, t] @ W1[:, :, t]^T (90 products of
    128 x 256), so h = sum_t Q[t] + b1 and contribution[t] = v . Q[t] with
    v = (w2_c - mean_k w2_k) * relu'(h). One pass over W1's 11.8 MB serves both; for a single
    window that pass is memory-bound and was most of the time, paid twice when the explanation
    read W1 again (G = W1^T v).
    """

    def __init__(self, model: ConvNet, mean: torch.Tensor, std: torch.Tensor, input_scaling: str = "none") -> None:
        super().__init__()
        if input_scaling not in INPUT_SCALINGS:
            raise ValueError(f"unknown input scaling {input_scaling!r}: expected one of {INPUT_SCALINGS}")
        self.peak_scaling = input_scaling == "window_peak"
        f = model.f
        self.features = nn.Sequential(
            _fold_conv_bn(f[0], f[1]), nn.ReLU(), nn.MaxPool1d(2),
            _fold_conv_bn(f[4], f[5]), nn.ReLU(), nn.MaxPool1d(2),
            _fold_conv_bn(f[8], f[9]), nn.ReLU(), nn.MaxPool1d(2),
        )
        fc1 = model.cls[0]
        self.fc2 = model.cls[3]
        # (step, channel, hidden unit): W1's columns are laid out channel-major, ch * 90 + t
        per_step = fc1.weight.detach().reshape(fc1.out_features, FEATURE_CHANNELS, FEATURE_STEPS).permute(2, 1, 0)
        self.register_buffer("fc1_per_step", per_step.contiguous().clone())
        self.register_buffer("fc1_bias", fc1.bias.detach().clone())
        self.register_buffer("mean", mean.reshape(1, N_PHASES, 1).float().clone())
        self.register_buffer("inv_std", 1.0 / (std.reshape(1, N_PHASES, 1).float() + 1e-7))
        weight = self.fc2.weight.detach()
        self.register_buffer("contrast", (weight - weight.mean(dim=0, keepdim=True)).clone())

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        normalised = (x - self.mean) * self.inv_std
        if self.peak_scaling:
            normalised = scale_to_window_peak(normalised)
        features = self.features(normalised)  # (n, 128, 90)
        per_step = torch.matmul(features.permute(2, 0, 1), self.fc1_per_step)  # (90, n, 256)
        hidden = torch.relu(per_step.sum(dim=0) + self.fc1_bias)  # (n, 256)
        logits = self.fc2(hidden)
        gate = (hidden > 0).to(hidden.dtype)
        direction = self.contrast[logits.argmax(dim=1)] * gate  # (n, 256)
        contribution = (per_step * direction.unsqueeze(0)).sum(dim=2).transpose(0, 1)  # (n, 90)
        return logits, hidden, contribution
