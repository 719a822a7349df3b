"""Label-preserving augmentation of raw (unnormalised) training windows, one batch at a time.

Every transform is something a real recording of the same event could show, so the model learns
the physics rather than the simulator's fingerprints:
- time shift of the whole event (inception anywhere in the first half of the window), with the
  missing edge filled by the neighbouring cycle (the pre-event and post-event currents repeat
  every cycle);
- overall amplitude (fault resistance, loading, CT ratio), a small per-phase gain mismatch and a
  fractional per-phase delay (CT and recorder channel mismatch);
- measurement noise and a per-phase DC offset of the recorder;
- breaker clearing inside the window for faults (the current falls to zero within a millisecond);
- sign flip of all three phases: a 180-degree shift of the whole system (inception half a cycle
  later, opposite remanence), which changes no label. Phases are never permuted or flipped one
  by one: which phase is faulted is part of the label.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from services.waveform import N_SAMPLES, SAMPLES_PER_CYCLE

_CYCLE = int(round(SAMPLES_PER_CYCLE))  # 167 samples


@dataclass(frozen=True)
class AugmentConfig:
    """Probabilities and ranges of each transform (defaults used by the training command)."""

    shift_probability: float = 0.5
    max_shift: int = 100  # samples (10 ms), less than a cycle
    amplitude_range: tuple[float, float] = (0.6, 1.6)
    gain_mismatch: float = 0.02  # per-phase relative gain standard deviation
    max_delay: float = 0.5  # per-phase fractional delay, samples (1.1 degrees at 60 Hz)
    noise_range: tuple[float, float] = (3e-4, 5e-3)  # noise std relative to the window peak
    dc_offset: float = 0.01  # per-phase offset, relative to the window peak
    #: 0: the simulator clears faults by the data set's protocol and the current returns to the
    #: standing level, which this transform (a fall to zero) would erase
    clearing_probability: float = 0.0
    flip_probability: float = 0.5


def augment_batch(
    x: torch.Tensor, clearable: torch.Tensor, generator: torch.Generator, config: AugmentConfig | None = None
) -> torch.Tensor:
    """Augmented copy of raw windows `x` (B, 3, 726). `clearable` (B,) bool: may a breaker clear it."""
    config = config or AugmentConfig()
    batch = x.shape[0]
    x = _time_shift(x, generator, config)
    x = _clearing(x, clearable, generator, config)

    def uniform(*shape: int, low: float = 0.0, high: float = 1.0) -> torch.Tensor:
        return low + (high - low) * torch.rand(*shape, generator=generator)

    low, high = config.amplitude_range
    scale = torch.exp(uniform(batch, 1, 1, low=float(torch.log(torch.tensor(low))), high=float(torch.log(torch.tensor(high)))))
    gains = 1.0 + config.gain_mismatch * torch.randn(batch, 3, 1, generator=generator)
    x = x * scale * gains

    delay = uniform(batch, 3, 1, low=-config.max_delay, high=config.max_delay)
    ahead = torch.cat([x[:, :, 1:], x[:, :, -1:]], dim=2)
    behind = torch.cat([x[:, :, :1], x[:, :, :-1]], dim=2)
    x = x + torch.clamp(delay, min=0) * (behind - x) + torch.clamp(-delay, min=0) * (ahead - x)

    peak = x.abs().amax(dim=(1, 2), keepdim=True)
    low_noise, high_noise = config.noise_range
    noise_level = torch.exp(uniform(batch, 1, 1, low=float(torch.log(torch.tensor(low_noise))),
                                    high=float(torch.log(torch.tensor(high_noise)))))
    x = x + noise_level * peak * torch.randn(x.shape, generator=generator)
    x = x + config.dc_offset * peak * uniform(batch, 3, 1, low=-1.0, high=1.0)

    flip = torch.where(uniform(batch, 1, 1) < config.flip_probability, -1.0, 1.0)
    return x * flip


def _time_shift(x: torch.Tensor, generator: torch.Generator, config: AugmentConfig) -> torch.Tensor:
    """Shift each window by up to `max_shift` samples, filling the edge from the adjacent cycle.

    A right shift (later event) is only applied to windows whose first cycle is quiet, so the
    filled-in samples are pre-event current; a left shift fills the end from the last cycle.
    """
    batch = x.shape[0]
    shift = torch.randint(-config.max_shift, config.max_shift + 1, (batch,), generator=generator)
    apply = torch.rand(batch, generator=generator) < config.shift_probability
    envelope = x.abs().amax(dim=1)
    quiet_start = envelope[:, :_CYCLE].amax(dim=1) < 0.1 * envelope.amax(dim=1)
    shift = torch.where(apply & ((shift < 0) | quiet_start), shift, torch.zeros_like(shift))
    if not bool((shift != 0).any()):
        return x
    index = torch.arange(N_SAMPLES)[None, :] - shift[:, None]
    index = torch.where(index < 0, index + _CYCLE, index)
    index = torch.where(index >= N_SAMPLES, index - _CYCLE, index)
    return torch.gather(x, 2, index[:, None, :].expand(-1, x.shape[1], -1))


def _clearing(x: torch.Tensor, clearable: torch.Tensor, generator: torch.Generator, config: AugmentConfig) -> torch.Tensor:
    """Breaker opening 1.5-3.5 cycles after the event starts: exponential fall to zero (0.3-1.2 ms)."""
    batch = x.shape[0]
    chosen = clearable & (torch.rand(batch, generator=generator) < config.clearing_probability)
    if not bool(chosen.any()):
        return x
    envelope = x.abs().amax(dim=1)
    start = torch.argmax((envelope >= 0.2 * envelope.amax(dim=1, keepdim=True)).to(torch.int8), dim=1)
    delay = (1.5 + 2.0 * torch.rand(batch, generator=generator)) * SAMPLES_PER_CYCLE
    opening = start.to(torch.float32) + delay
    tau = 3.0 + 9.0 * torch.rand(batch, generator=generator)  # samples
    after = torch.clamp(torch.arange(N_SAMPLES)[None, :] - opening[:, None], min=0.0)
    factor = torch.where(chosen[:, None], torch.exp(-after / tau[:, None]), torch.ones_like(after))
    return x * factor[:, None, :]
