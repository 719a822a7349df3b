"""Per-level figures of a model on three kinds of test windows, for the model card and the Model page.

- "simulator": fresh windows of our own simulator (a seed never used in training). They measure
  how well the network learned the generator, not the grid.
- "shift": windows of `services.shiftset`, a second generator written apart from the simulator
  under other plausible assumptions (relay views, standing currents, DC constants, CT errors,
  noise, sampling jitter); never used for training or calibration.
- "independent_transients": the six transients written from textbook physics in
  `services.shiftset.transients`.

For each: accuracy per level (category; for internal faults the faulted phases, i.e. which of A, B,
C are involved, and the fault kind, which adds whether ground is involved; which transient;
equipment), the exact label, and the confidently wrong rates: wrong at p >= 0.8 and not flagged
unknown, for the equipment of internal faults and for the label. Ground involvement is scored
apart from the phases because a relay view that removes the zero sequence (delta CTs, numerical
zero-sequence elimination) makes a three-phase fault to ground without ground current look
exactly like a three-phase fault.

It also measures what stating the relay connection changes (`measure_connections`: the same
windows read without and with that connection's head, services.inference.connections).

`python -m services.training.levels_report --artifacts artifacts --update-card` measures all
of it and writes `levels_report` into the folder's model_card.json.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from services.inference.levels import PHASES_CERTAIN
from services.labels import EQUIPMENT_CERTAIN, LABELS, label_parts, phase_group
from services.training.metrics import reliability_of

#: default seeds: none of them is used by training (20261124 + offsets 0, 1, 7919)
SIMULATOR_SEED = 5_151
SHIFT_SEED = 6_262
TRANSIENTS_SEED = 7_373

NOTES = (
    "The simulator figures measure how well the network learned our own generator; the shift set and "
    "the independent transients were written apart from it and are never used for training or calibration.",
    "Which currents each unit's differential relay compares (CT placement, connections as the relay sees them) "
    "is not publicly documented. The model therefore cannot know the faulted unit from the waveform alone: "
    "below 80 % it reports the unit as uncertain and the impact report isolates every plausible unit.",
    "Faulted phases, fault kind and fault-versus-transient rest on physics that public sources fix "
    "(sequence components, harmonics of inrush and rectifiers, CT saturation); these levels carry over.",
)


def true_phase_set(kind: str, row: dict) -> str:
    """The phases a fault involves (ground not counted), from its parameters where the label does
    not say them: a turn-to-turn fault in phase B involves B, a winding-to-winding fault from B to C
    involves B and C, one between the two windings of phase B involves B only."""
    if kind == "turn-to-turn" and row.get("faulted_phase"):
        return str(row["faulted_phase"])
    if kind == "winding-to-winding":
        first = row.get("faulted_phase") or row.get("from_phase")
        second = row.get("second_phase") or row.get("to_phase")
        if first and second:
            return "".join(sorted(set(f"{first}{second}")))
    return phase_group(kind)


def score_levels(predictions: Sequence, y: np.ndarray, labels: Sequence[str] = LABELS,
                 phases_identifiable: np.ndarray | None = None, true_phases: Sequence[str] | None = None) -> dict:
    """Per-level accuracy and confidently-wrong rates of `predictions` (services.inference.Prediction).

    `phases_identifiable` (bool per window) marks the fault windows whose relay view leaves the
    faulted phases readable at all (a Yd-compensated relay shows an AG fault in A and C, exactly
    like an AC fault; through a delta tie a line-to-line fault can be exactly another pair:
    services.simulation.faults.phases_identifiable); faulted phases and fault kind are scored on
    those only. `true_phases` (per
    window, see `true_phase_set`) lets a turn-to-turn or winding-to-winding fault count as read
    when its phases are named right, e.g. a turn-to-turn fault in B read as a BG fault.
    """
    y = np.asarray(y)
    truth = [label_parts(labels[int(i)]) for i in y]
    n = len(y)
    internal = np.array([t.category == "internal_fault" for t in truth])
    readable = internal if phases_identifiable is None else internal & np.asarray(phases_identifiable, dtype=bool)
    category_right = np.array([p.levels["category"]["value"] == t.category for p, t in zip(predictions, truth,
                                                                                               strict=True)])
    kind_right = np.array([p.levels["kind"]["value"] == t.kind for p, t in zip(predictions, truth, strict=True)])
    expected = list(true_phases) if true_phases is not None else [phase_group(t.kind) for t in truth]
    phases = [p.levels["phases"] or {"value": None, "probability": 0.0} for p in predictions]  # None: a transient
    phases_right = np.array([p.levels["kind"]["value"] == t.kind or read["value"] == want
                             for p, t, want, read in zip(predictions, truth, expected, phases, strict=True)])
    phases_p = np.array([float(read["probability"]) for read in phases])
    phases_sure = phases_p >= PHASES_CERTAIN  # named as sure: an internal-fault reading reaching the bar
    equipment_value = [p.levels["equipment"]["value"] for p in predictions]
    equipment_p = np.array([p.levels["equipment"]["probability"] for p in predictions])
    equipment_right = np.array([e == t.equipment for e, t in zip(equipment_value, truth, strict=True)])
    unknown = np.array([bool(p.unknown) for p in predictions])
    exact = np.array([p.label_id == int(i) for p, i in zip(predictions, y, strict=True)])
    confidence = np.array([p.confidence for p in predictions])

    def share(mask: np.ndarray, among: np.ndarray | None = None) -> float | None:
        among = np.ones(n, dtype=bool) if among is None else among
        return float(mask[among].mean()) if among.any() else None

    sure_unit = (equipment_p >= EQUIPMENT_CERTAIN) & ~unknown
    return {
        "windows": int(n),
        "internal_fault_windows": int(internal.sum()),
        "category_accuracy": share(category_right),
        "phases_accuracy": share(phases_right, readable),
        "fault_kind_accuracy": share(kind_right, readable),
        "phases_readable_share": share(readable, internal),
        "phases_sure_share": share(phases_sure & ~unknown, readable),
        "phases_sure_accuracy": share(phases_right, readable & phases_sure & ~unknown),
        "confidently_wrong_phases": share(~phases_right & phases_sure & ~unknown, readable),
        "confidently_wrong_phases_all": share(~phases_right & phases_sure & ~unknown, internal),
        # does "phases A-B, 80 %" mean right 80 % of the time, over every fault window as served?
        "phases_ece": reliability_of(phases_p[internal], phases_right[internal])["ece"] if internal.any() else None,
        "transient_kind_accuracy": share(kind_right, ~internal),
        "equipment_accuracy": share(equipment_right, internal),
        "exact_accuracy": share(exact),
        "confidently_wrong_equipment": share(~equipment_right & sure_unit, internal),
        "confidently_wrong_label": share(~exact & (confidence >= EQUIPMENT_CERTAIN) & ~unknown),
        "unknown_rate": share(unknown),
        "equipment_uncertain_rate": share(equipment_p < EQUIPMENT_CERTAIN, internal),
    }


def measure(predictor, *, per_class: int = 40, seeds: tuple[int, int, int] = (SIMULATOR_SEED, SHIFT_SEED,
                                                                              TRANSIENTS_SEED)) -> dict:
    """The three reports (simulator, shift set, independent transients) for one predictor."""
    from services.shiftset import generate_independent_transients, generate_shift_set
    from services.simulation import generate_dataset

    report: dict = {}
    sets = (
        ("simulator", seeds[0], "services.simulation.generate_dataset (our own generator)",
         lambda: generate_dataset(per_class, seed=seeds[0])),
        ("shift", seeds[1], "services.shiftset.generate_shift_set (written apart; other assumptions)",
         lambda: generate_shift_set(per_class, seeds[1])),
        ("independent_transients", seeds[2], "services.shiftset.generate_independent_transients (textbook physics)",
         lambda: generate_independent_transients(per_class * 3, seeds[2])),
    )
    for name, seed, source, make in sets:
        X, y, params = make()
        rows = [json.loads(row) if isinstance(row, str) else row for row in params]
        # the Yd-compensated view (ours) shows an AG fault in A and its partner phase alike
        readable = np.array([bool(row.get("phases_identifiable", row.get("relay_view") != "yd_compensated"))
                             for row in rows])
        phases = [true_phase_set(label_parts(predictor.labels[int(i)]).kind, row) for i, row in zip(y, rows,
                                                                                                   strict=True)]
        predictions = predictor.predict_batch(X, explain=False)
        report[name] = {"seed": seed, "source": source, "per_class": per_class if name != "independent_transients"
                        else per_class * 3, **score_levels(predictions, y, predictor.labels, readable, phases),
                        "by_relay_view": _by_view(predictions, y, predictor.labels, rows, phases)}
    report["notes"] = list(NOTES)
    return report


#: a stated connection -> the shift set's view that is the same connection (its own naming: its
#: "yd_lag" compares I_A - I_B); the delta tie has no counterpart there
SHIFT_VIEW_OF_CONNECTION = {"faulted_windings": "windings", "zero_sequence_removed": "zero_seq_filtered",
                            "yd_ia_minus_ib": "yd_lag", "yd_ia_minus_ic": "yd_lead"}
#: the levels compared with and without a stated connection
CONNECTION_FIELDS = ("category_accuracy", "phases_accuracy", "phases_sure_share", "confidently_wrong_phases_all",
                     "fault_kind_accuracy", "transient_kind_accuracy", "confidently_wrong_equipment",
                     "confidently_wrong_label", "unknown_rate")


def measure_connections(predictor, *, per_class: int = 40, seeds: tuple[int, int] = (SIMULATOR_SEED, SHIFT_SEED)) -> dict:
    """What stating the relay connection changes: per connection, the same windows (all seen through
    it) read without and with its head, on our simulator and on the shift set's matching view.

    Stated, the connection makes the phases readable wherever they are inside that connection (a Yd
    pairing known, AG and AC no longer look alike); the delta tie's own aliases stay unreadable.
    """
    from services.inference.connections import RELAY_CONNECTIONS
    from services.shiftset import generate_shift_set
    from services.training.connection_heads import connection_windows

    report: dict = {}
    for connection in RELAY_CONNECTIONS:
        if predictor.connection_heads is None or connection not in predictor.connection_heads.heads:
            continue
        sets = {"simulator": connection_windows(connection, per_class, seeds[0])}
        if connection in SHIFT_VIEW_OF_CONNECTION:
            X, y, params = generate_shift_set(per_class, seeds[1], views=[SHIFT_VIEW_OF_CONNECTION[connection]])
            sets["shift"] = X, y, params
        report[connection] = {}
        for name, (X, y, rows) in sets.items():
            readable = np.array([connection != "delta_tied" or bool(row.get("phases_identifiable", True)) for row in rows])
            phases = [true_phase_set(label_parts(predictor.labels[int(i)]).kind, row) for i, row in zip(y, rows, strict=True)]
            scored = {}
            for stated in (None, connection):
                predictions = predictor.predict_batch(X, explain=False, relay_connection=stated)
                levels = score_levels(predictions, y, predictor.labels, readable, phases)
                scored["stated" if stated else "not_stated"] = {field: levels[field] for field in CONNECTION_FIELDS}
            report[connection][name] = {"windows": int(len(y)), **scored}
    return report


def format_connections(report: dict) -> str:
    """The stated-connection report as plain text: one line per connection, set and level."""
    lines = []
    for connection, sets in report.items():
        for name, scored in sets.items():
            lines.append(f"{connection} / {name} ({scored['windows']} windows)")
            for field in CONNECTION_FIELDS:
                lines.append(f"    {field:30} {_percent(scored['not_stated'][field]):>10} -> "
                             f"{_percent(scored['stated'][field]):>10}")
    return "\n".join(lines)


def _by_view(predictions: Sequence, y: np.ndarray, labels: Sequence[str], rows: list[dict],
             phases: list[str]) -> dict:
    """Category and faulted-phases accuracy per relay view (how the relay sees the currents)."""
    views = np.array([str(row.get("relay_view", row.get("view", "-"))) for row in rows])
    result = {}
    for view in sorted(set(views.tolist())):
        chosen = np.flatnonzero(views == view)
        scored = score_levels([predictions[i] for i in chosen], np.asarray(y)[chosen], labels,
                              true_phases=[phases[i] for i in chosen])
        result[view] = {"windows": int(len(chosen)), "category_accuracy": scored["category_accuracy"],
                        "phases_accuracy": scored["phases_accuracy"],
                        "transient_kind_accuracy": scored["transient_kind_accuracy"]}
    return result


def _percent(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.2f} %"


def format_table(report: dict) -> str:
    """The report as a plain-text table (columns: the three sets)."""
    sets = [name for name in ("simulator", "shift", "independent_transients") if name in report]
    rows = ("category_accuracy", "phases_accuracy", "phases_sure_share", "phases_sure_accuracy", "confidently_wrong_phases",
            "confidently_wrong_phases_all", "phases_ece", "fault_kind_accuracy", "transient_kind_accuracy", "phases_readable_share",
            "equipment_accuracy", "exact_accuracy", "confidently_wrong_equipment", "confidently_wrong_label", "equipment_uncertain_rate",
            "unknown_rate")
    lines = [f"{'':32}" + "".join(f"{name:>26}" for name in sets),
             f"{'windows':32}" + "".join(f"{report[name]['windows']:>26}" for name in sets)]
    for row in rows:
        lines.append(f"{row:32}" + "".join(f"{_percent(report[name].get(row)):>26}" for name in sets))
    for name in sets:
        for view, scored in report[name].get("by_relay_view", {}).items():
            lines.append(f"{name} / {view} ({scored['windows']} windows): category "
                         f"{_percent(scored['category_accuracy'])}, phases {_percent(scored['phases_accuracy'])}, "
                         f"transient kind {_percent(scored['transient_kind_accuracy'])}")
    return "\n".join(lines)


#: the README's table rows: (field, title); "windows" is a count, the rest fractions
MARKDOWN_ROWS: tuple[tuple[str, str], ...] = (
    ("windows", "Windows"),
    ("category_accuracy", "Fault vs transient (category)"),
    ("phases_accuracy", "Faulted phases (A/B/C involved), readable views"),
    ("phases_sure_share", "Phases named as sure (p >= 0.8), readable views"),
    ("phases_sure_accuracy", "Faulted phases where named as sure"),
    ("confidently_wrong_phases_all", "Confidently wrong phases, all fault windows"),
    ("phases_ece", "Phases calibration error (ECE), all fault windows"),
    ("fault_kind_accuracy", "Fault kind (phases and ground)"),
    ("transient_kind_accuracy", "Which transient"),
    ("equipment_accuracy", "Equipment (unit)"),
    ("exact_accuracy", "Exact label (45 classes)"),
    ("confidently_wrong_equipment", "Confidently wrong unit (p >= 0.8, not flagged)"),
    ("confidently_wrong_label", "Confidently wrong label"),
    ("equipment_uncertain_rate", "Unit reported uncertain"),
    ("unknown_rate", "Flagged unknown"),
)
MARKDOWN_SETS = (("simulator", "Our simulator"), ("shift", "Shift set"), ("independent_transients", "Independent transients"))


def markdown_table(report: dict) -> str:
    """The report as the README's Markdown table (the three sets side by side)."""
    sets = [(key, title) for key, title in MARKDOWN_SETS if key in report]
    lines = ["| Level | " + " | ".join(title for _, title in sets) + " |", "| --- |" + " --- |" * len(sets)]
    for field, title in MARKDOWN_ROWS:
        cells = []
        for key, _ in sets:
            value = report[key].get(field)
            cells.append(f"{value:,}" if field == "windows" and value is not None else _percent(value))
        lines.append(f"| {title} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def markdown_connections(report: dict) -> str:
    """The stated-connection report as the README's Markdown table: each level unstated -> stated."""
    from services.model_card import STATED_CONNECTION_FIGURES as fields

    lines = ["| Relay connection | Test set | " + " | ".join(title for _, title in fields) + " |",
             "| --- | --- |" + " --- |" * len(fields)]
    titles = dict(MARKDOWN_SETS)
    for connection, sets in report.items():
        for name, scored in sets.items():
            cells = [f"{_percent(scored['not_stated'][field])} -> {_percent(scored['stated'][field])}"
                     for field, _ in fields]
            lines.append(f"| `{connection}` | {titles.get(name, name)} ({scored['windows']:,}) | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m services.training.levels_report", description=__doc__.split("\n")[0])
    parser.add_argument("--artifacts", default="artifacts", help="artifacts folder (default: artifacts)")
    parser.add_argument("--per-class", type=int, default=40, help="windows per label of each set (default 40)")
    parser.add_argument("--update-card", action="store_true", help="write levels_report into model_card.json")
    parser.add_argument("--markdown", action="store_true",
                        help="print the report stored in the card as the README's Markdown table; measure nothing")
    args = parser.parse_args(argv)
    if args.per_class < 1:
        parser.error("--per-class must be at least 1")
    if args.markdown:
        from services.model_card import MODEL_CARD_FILE, read_card_file

        stored = (read_card_file(Path(args.artifacts)) or {}).get("levels_report")
        if not stored:
            print(f"{Path(args.artifacts) / MODEL_CARD_FILE} holds no levels_report: run with --update-card first",
                  file=sys.stderr)
            return 1
        print(markdown_table(stored))
        if stored.get("stated_connection"):
            print()
            print(markdown_connections(stored["stated_connection"]))
        return 0
    from services.inference import get_predictor

    started = time.perf_counter()
    predictor = get_predictor(args.artifacts)
    report = measure(predictor, per_class=args.per_class)
    report["stated_connection"] = measure_connections(predictor, per_class=args.per_class)
    report["command"] = "python -m services.training.levels_report " + " ".join(sys.argv[1:] if argv is None else argv)
    print(format_table(report))
    print(format_connections(report["stated_connection"]))
    print(f"({time.perf_counter() - started:.0f} s)")
    if args.update_card:
        card_path = Path(args.artifacts) / "model_card.json"
        card = json.loads(card_path.read_text()) if card_path.is_file() else {}
        card["levels_report"] = report
        card_path.write_text(json.dumps(card, indent=2))
        print(f"wrote levels_report into {card_path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
