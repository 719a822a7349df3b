"""The relay connection, when the user states it: one head per connection on the network's features.

Why: the network answers for a relay whose connection it does not know, so it weighs every
connection it was trained with (services.simulation.faults.RELAY_VIEWS) and some phase patterns
are exact aliases across them: an AG fault with the zero sequence removed, (2, -1, -1)/3, is an AB
fault through a Yd compensation of rows I_A - I_B, and an AC fault through the other pairing
(docs/contracts.md, "Levels"). The protection engineer knows the relay's connection: delta or wye
CTs, zero-sequence elimination on or off, the compensation matrix set in a numerical relay (IEEE
C37.91-2021, CT connections and phase compensation of transformer differential relays; GE
Multilin 745 / P64x and SEL-487E manuals, the compensation matrices). Stated, it removes those
aliases.

How: a head is a linear layer (no bias: the network is amplitude-free) on the network's hidden
vector, the same 256 features the shipped head reads, fitted on simulated windows seen through that
connection only and calibrated per level like the shipped head
(`python -m services.training.connection_heads`). No second network pass: stating a connection
costs one 256 x 45 product. The unit stays as unknowable as before (every unit draws the same
connections), and its temperature is fitted on windows whose unit physics is pooled.
"""

from __future__ import annotations

import zipfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np

CONNECTION_HEADS_FILE = "connection_heads.npz"

#: stated connection -> what the relay compares, as the form and the API name it
RELAY_CONNECTIONS: dict[str, str] = {
    "faulted_windings": "Winding currents as they are (wye CTs in the winding leads, zero sequence kept)",
    "zero_sequence_removed": "Zero sequence removed (delta-connected CTs or numerical I0 elimination)",
    "delta_tied": "Delta winding seen from line CTs, uncompensated (part of the next phase's winding current)",
    "yd_ia_minus_ib": "Yd compensation I_A - I_B, I_B - I_C, I_C - I_A",
    "yd_ia_minus_ic": "Yd compensation I_A - I_C, I_B - I_A, I_C - I_B",
}
#: stated connection -> (simulator relay view, its Yd pairing or None): the windows a head is fitted on
SIMULATOR_VIEW: dict[str, tuple[str, str | None]] = {
    "faulted_windings": ("faulted_windings", None),
    "zero_sequence_removed": ("zero_sequence_removed", None),
    "delta_tied": ("delta_tied", None),
    "yd_ia_minus_ib": ("yd_compensated", "a-b"),
    "yd_ia_minus_ic": ("yd_compensated", "a-c"),
}
#: what "not stated" may be written as (the default: the shipped head, every connection weighed)
NOT_STATED = ("", "not_stated", "unknown", "none")


def check_relay_connection(value: object) -> str | None:
    """The stated connection's id, None when not stated; ValueError naming the choices otherwise."""
    if value is None:
        return None
    if not isinstance(value, str):
        raise ValueError(f"relay_connection must be a string: one of {', '.join(RELAY_CONNECTIONS)} (or empty)")
    text = value.strip()
    if text.lower() in NOT_STATED:
        return None
    if text not in RELAY_CONNECTIONS:
        shown = text if len(text) <= 40 else text[:40] + "..."
        raise ValueError(f"unknown relay_connection {shown!r}: expected one of {', '.join(RELAY_CONNECTIONS)} "
                         "(or empty when not known)")
    return text


@dataclass(frozen=True)
class ConnectionHead:
    """One stated connection's head: label logits = hidden @ weight.T, calibrated per level."""

    name: str  # the connection's id (RELAY_CONNECTIONS)
    weight: np.ndarray  # (n_labels, hidden) float32
    temperature_kind: float
    temperature_equipment: float

    def logits(self, hidden: np.ndarray) -> np.ndarray:
        return np.asarray(hidden, dtype=np.float32) @ self.weight.T


@dataclass(frozen=True)
class ConnectionHeads:
    """Every fitted head of one model, by connection id."""

    heads: Mapping[str, ConnectionHead]

    def save(self, path: Path) -> None:
        arrays = {}
        for name, head in self.heads.items():
            arrays[f"{name}__weight"] = head.weight.astype(np.float32)
            arrays[f"{name}__temperatures"] = np.array([head.temperature_kind, head.temperature_equipment])
        np.savez(path, **arrays)

    @classmethod
    def load(cls, path: Path, n_labels: int, hidden_size: int) -> ConnectionHeads:
        """The heads of `path`; ValueError when a file does not fit the model."""
        try:
            with np.load(path, allow_pickle=False) as data:
                stored = {key: data[key] for key in data.files}
        except (OSError, ValueError, zipfile.BadZipFile) as exc:
            raise ValueError(f"cannot read {path.name}: {exc}") from None
        heads = {}
        for name in RELAY_CONNECTIONS:
            weight, temperatures = stored.get(f"{name}__weight"), stored.get(f"{name}__temperatures")
            if weight is None or temperatures is None:
                continue
            if weight.shape != (n_labels, hidden_size) or temperatures.shape != (2,) \
                    or not np.all(np.isfinite(weight)) or not np.all(temperatures > 0):
                raise ValueError(f"{path.name}: the {name} head does not fit a model of {n_labels} labels "
                                 f"and {hidden_size} hidden units")
            heads[name] = ConnectionHead(name, weight.astype(np.float32), float(temperatures[0]), float(temperatures[1]))
        return cls(heads)
