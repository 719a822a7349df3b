"""`python -m services.training.connection_heads --artifacts DIR`: fit one head per stated relay connection.

For each connection of services.inference.connections.RELAY_CONNECTIONS:

1. simulated windows seen through that connection only (`generate_dataset(relay_view=...)`, the
   Yd pairings apart), every label equally often;
2. the network's hidden vectors of them (the network is frozen: the heads change no answer given
   without a stated connection);
3. a bias-free linear head fitted by cross-entropy, started from the shipped head's weights and
   pulled towards them (L2-SP: Li, Grandvalet, Davis, ICML 2018), so what the network knew about
   the other levels stays;
4. its kind temperature fitted on fresh windows of the connection, its unit temperature on windows
   whose unit physics is pooled (the unit stays uncertain: every unit draws the same connections),
   as the pipeline calibrates the shipped head (services.training.pipeline).

Writes `connection_heads.npz` into the folder and a `connection_heads` block into its model card.
`python -m services.training.levels_report` measures what stating a connection changes.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from services.inference.artifacts import MODEL_CARD_FILE, load_artifacts
from services.inference.connections import (
    CONNECTION_HEADS_FILE,
    RELAY_CONNECTIONS,
    SIMULATOR_VIEW,
    ConnectionHead,
    ConnectionHeads,
)
from services.inference.levels import fit_equipment_temperature, fit_kind_temperature
from services.labels import LABELS, TRANSIENT_LABELS
from services.simulation import generate_dataset

#: seeds of the heads' windows, apart from training (20261124 + ...) and the levels report's
SEED = 31_337
#: pull towards the shipped head's weights (per window, on the summed squared difference)
L2_TO_SHIPPED = 1e-3


def connection_windows(connection: str, per_class: int, seed: int, pooled_units: bool = False,
                       classes: Sequence[int] | None = None) -> tuple[np.ndarray, np.ndarray, list[dict]]:
    """(X, y, params) of simulated windows seen through one stated connection, about `per_class` per label."""
    view, pairing = SIMULATOR_VIEW[connection]
    drawn = per_class if pairing is None else 2 * per_class  # the Yd pairings are drawn half and half
    X, y, params = generate_dataset(drawn, seed=seed, relay_view=view, pooled_units=pooled_units, classes=classes)
    rows = [json.loads(row) if isinstance(row, str) else row for row in params]
    if pairing is None:
        return X, y, rows
    keep = np.array([row.get("yd_pairing") == pairing for row in rows])
    return X[keep], y[keep], [row for row, kept in zip(rows, keep, strict=True) if kept]


def fit_head(hidden: np.ndarray, y: np.ndarray, start: np.ndarray, l2: float = L2_TO_SHIPPED,
             max_iter: int = 200) -> np.ndarray:
    """Bias-free head weights (n_labels, hidden) minimising cross-entropy + l2 |W - start|^2."""
    features = torch.from_numpy(np.ascontiguousarray(hidden, dtype=np.float32))
    target = torch.from_numpy(np.asarray(y, dtype=np.int64))
    origin = torch.from_numpy(np.asarray(start, dtype=np.float32))
    weight = origin.clone().requires_grad_(True)
    optimiser = torch.optim.LBFGS([weight], max_iter=max_iter, line_search_fn="strong_wolfe")

    def loss_of() -> torch.Tensor:
        optimiser.zero_grad()
        loss = torch.nn.functional.cross_entropy(features @ weight.T, target) + l2 * ((weight - origin) ** 2).sum()
        loss.backward()
        return loss

    optimiser.step(loss_of)
    return weight.detach().numpy().astype(np.float32)


def fit_connection_heads(predictor, per_class: int = 150, seed: int = SEED,
                         connections: Sequence[str] = tuple(RELAY_CONNECTIONS)) -> tuple[ConnectionHeads, dict]:
    """Every connection's head over one predictor's network, with what each fit measured."""
    start = load_artifacts(predictor.artifacts_dir).model.cls[3].weight.detach().numpy()
    faults = [i for i, label in enumerate(LABELS) if label not in TRANSIENT_LABELS]
    heads, report = {}, {}
    for offset, connection in enumerate(connections):
        began = time.perf_counter()
        X, y, _ = connection_windows(connection, per_class, seed + 10 * offset)
        weight = fit_head(predictor.hidden(X), y, start)
        check_X, check_y, _ = connection_windows(connection, max(per_class // 3, 1), seed + 10 * offset + 1)
        check_logits = predictor.hidden(check_X) @ weight.T
        t_kind = fit_kind_temperature(check_logits, check_y, predictor.labels)
        pooled_X, pooled_y, _ = connection_windows(connection, max(per_class // 3, 1), seed + 10 * offset + 2,
                                                pooled_units=True, classes=faults)
        t_equipment = fit_equipment_temperature(predictor.hidden(pooled_X) @ weight.T, pooled_y, predictor.labels)
        heads[connection] = ConnectionHead(connection, weight, t_kind, t_equipment)
        report[connection] = {"windows": int(len(y)), "temperature_kind": round(t_kind, 4),
                              "temperature_equipment": round(t_equipment, 4),
                              "seconds": round(time.perf_counter() - began, 1)}
    return ConnectionHeads(heads), report


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m services.training.connection_heads",
                                     description=__doc__.split("\n")[0])
    parser.add_argument("--artifacts", default="artifacts", help="artifacts folder (default: artifacts)")
    parser.add_argument("--per-class", type=int, default=150, help="windows per label and connection (default 150)")
    parser.add_argument("--seed", type=int, default=SEED, help=f"simulation seed (default {SEED})")
    args = parser.parse_args(argv)
    if args.per_class < 1:
        parser.error("--per-class must be at least 1")
    from services.inference import get_predictor

    folder = Path(args.artifacts)
    predictor = get_predictor(folder)
    heads, report = fit_connection_heads(predictor, args.per_class, args.seed)
    heads.save(folder / CONNECTION_HEADS_FILE)
    for connection, fitted in report.items():
        print(f"{connection:24} {fitted['windows']:6} windows  t_kind {fitted['temperature_kind']:.3f}  "
              f"t_equipment {fitted['temperature_equipment']:.3f}  ({fitted['seconds']:.0f} s)")
    card_path = folder / MODEL_CARD_FILE
    card = json.loads(card_path.read_text()) if card_path.is_file() else {}
    card["connection_heads"] = {
        "command": "python -m services.training.connection_heads " + " ".join(sys.argv[1:] if argv is None else argv),
        "per_class": args.per_class, "seed": args.seed, "l2_to_shipped": L2_TO_SHIPPED, "heads": report}
    card_path.write_text(json.dumps(card, indent=2))
    print(f"wrote {folder / CONNECTION_HEADS_FILE} and the connection_heads block of {card_path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
