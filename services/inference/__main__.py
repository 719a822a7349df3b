"""`python -m services.inference PATH [PATH ...] [--artifacts DIR] [--json] [--out TABLE.csv]`: classify waveform files and folders.

PATH is a `.npy` (3, 726) window, a CSV/text table, a COMTRADE record (`.cfg` with its `.dat`
beside it, or `.cff`), or a folder: every window file in its tree is classified in one batch
(services.dataset), and where the folder path names a label (the public data set's tree as
downloaded, or one folder per label) the true label is given next to the prediction, with the
accuracy at the end. `--relay-connection` reads every window through that connection's head
(services.inference.connections). `--unit` and `--rated-current` say what the values are in (services.units:
`.npy`/text files default to the window unit, kA on the data set's 500 MVA, 230 kV system;
COMTRADE records carry their unit in the `.cfg`). `--out` writes the table as CSV.

One result per file, in order. A file that cannot be read prints an error for that file while
the others are still classified; the exit code is 1 if any file failed, 2 if the model is
unavailable or the arguments are wrong.
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from services.comtrade_ingest import parse_channel_spec
from services.inference import ModelUnavailable, Prediction, get_predictor
from services.inference.connections import RELAY_CONNECTIONS
from services.ingest import load_waveform_source
from services.labels import LABELS, label_parts, pretty_label
from services.units import UNITS, conversion_for
from services.waveform import WaveformError

TABLE_COLUMNS = ("file", "true_label", "predicted_label", "correct", "confidence", "category", "equipment",
                 "kind", "unknown", "unknown_reason", "units", "error")


def _record(path: str, prediction: Prediction) -> dict:
    parts = label_parts(prediction.label)
    return {
        "file": path,
        "predicted_label": prediction.label,
        "label_id": prediction.label_id,
        "confidence": round(prediction.confidence, 6),
        "top5": [[label, round(p, 6)] for label, p in prediction.top5],
        "category": parts.category,
        "equipment": parts.equipment,
        "kind": parts.kind,
        "unknown": prediction.unknown,
        "unknown_reason": prediction.unknown_reason,
        "relay_connection": prediction.relay_connection,
        "marginals": {
            "category": {k: round(v, 6) for k, v in prediction.category.items()},
            "equipment": {k: round(v, 6) for k, v in prediction.equipment.items()},
            "kind": {k: round(v, 6) for k, v in prediction.kind.items() if v >= 1e-6},
        },
        "inception_ms": prediction.inception_ms,
        "explanation_ms": [[start, end] for start, end in prediction.explanation],
    }


def _text(record: dict) -> str:
    if "error" in record:
        return f"{record['file']}: ERROR {record['error']}"
    flag = f"  UNKNOWN ({record['unknown_reason']})" if record["unknown"] else ""
    line = f"{record['file']}: {pretty_label(record['predicted_label'])} [{record['label_id']}] {record['confidence']:.1%}{flag}"
    if record.get("true_label"):
        line += f"  (true: {pretty_label(record['true_label'])}{'' if record['correct'] else ' - WRONG'})"
    if "comtrade_summary" in record:
        line += f"\n  analysed {record['comtrade_summary']}"
    units = record.get("units")
    if units and units.get("source") != "default" and "comtrade_summary" not in record:
        line += f"\n  units: {units['summary']}"
    return line


def _with_truth(record: dict, true_id: int) -> dict:
    if true_id >= 0:
        truth = LABELS[true_id]
        record["true_label"] = truth
        record["correct"] = record["predicted_label"] == truth
    return record


def summarise(records: Sequence[dict]) -> dict | None:
    """Accuracy (exact, category, equipment) over the records that carry a true label; None if none do."""
    known = [r for r in records if r.get("true_label") and "error" not in r]
    if not known:
        return None
    truth = [label_parts(r["true_label"]) for r in known]
    predicted = [label_parts(r["predicted_label"]) for r in known]
    per_label: dict[str, list[int]] = {}
    for record in known:
        hits = per_label.setdefault(record["true_label"], [0, 0])
        hits[0] += int(record["correct"])
        hits[1] += 1
    return {
        "windows": len(known),
        "accuracy": float(np.mean([r["correct"] for r in known])),
        "category_accuracy": float(np.mean([t.category == p.category for t, p in zip(truth, predicted, strict=True)])),
        "equipment_accuracy": float(np.mean([t.equipment == p.equipment
                                             for t, p in zip(truth, predicted, strict=True)])),
        "unknown_rate": float(np.mean([bool(r["unknown"]) for r in known])),
        "per_label_recall": {label: hits / total for label, (hits, total) in sorted(per_label.items())},
        "failed_files": sum(1 for r in records if "error" in r),
    }


def _folder_records(folder: Path, predictor, unit: str | None, rated: float | None,
                    emit: Callable[[dict], None], relay_connection: str | None = None) -> tuple[list[dict], bool]:
    """Classify every window of a folder tree in one batch; skipped files become error records."""
    from services.dataset import scan_dataset_tree

    tree = scan_dataset_tree(folder, require_labels=False, unit=unit, rated_current_a=rated)
    records: list[dict] = []
    predictions = (predictor.predict_batch(tree.X, explain=False, relay_connection=relay_connection)
                   if len(tree.X) else [])
    for relative, true_id, prediction in zip(tree.files, tree.y.tolist(), predictions, strict=True):
        record = _with_truth(_record(str(folder / relative), prediction), true_id)
        record["units_summary"] = tree.units.get("summary")
        records.append(record)
        emit(record)
    for relative, reason in tree.skipped:
        record = {"file": str(folder / relative), "error": reason}
        records.append(record)
        emit(record)
    return records, bool(tree.skipped)


def write_table(records: Sequence[dict], path: Path) -> None:
    """The results as CSV, one row per file (TABLE_COLUMNS)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=TABLE_COLUMNS, extrasaction="ignore")
        writer.writeheader()
        for record in records:
            row = {key: record.get(key, "") for key in TABLE_COLUMNS}
            row["units"] = record.get("units_summary") or ""
            writer.writerow(row)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m services.inference", description=__doc__.splitlines()[0])
    parser.add_argument("files", nargs="+", metavar="PATH",
                        help=".npy (3, 726), CSV/text (time, Ia, Ib, Ic) or COMTRADE .cfg (with its .dat) / .cff "
                             "files, or folders of them (labels from the folder names where they give one)")
    parser.add_argument("--artifacts", default=None, help="artifacts folder (default: the repository's artifacts/)")
    parser.add_argument("--json", action="store_true", help="one JSON object per line (and a summary line for folders)")
    parser.add_argument("--out", type=Path, default=None, help="also write the results as a CSV table")
    parser.add_argument("--backend", choices=("onnxruntime", "torch"), default=None, help="force a backend")
    parser.add_argument("--channels", default=None,
                        help="COMTRADE channels for phases A, B, C: names or analog channel numbers, e.g. IdA,IdB,IdC "
                             "(default: the differential currents found by name)")
    parser.add_argument("--unit", default=None, choices=UNITS,
                        help="units of .npy/text values: window (default: kA on the data set's 500 MVA, 230 kV "
                             "system), A, kA or pu; COMTRADE records use their .cfg's")
    parser.add_argument("--rated-current", type=float, default=None, metavar="A",
                        help="rated current of the protected unit in amperes (default 1255.1 A, the data set's)")
    parser.add_argument("--relay-connection", default=None, choices=RELAY_CONNECTIONS,
                        help="how the relay compares the currents, when known: read every window through that "
                             "connection's head (default: not known, every connection weighed)")
    args = parser.parse_args(argv)
    try:
        conversion_for(args.unit, args.rated_current)
    except WaveformError as exc:
        parser.error(str(exc))
    connection = args.relay_connection

    if args.json:
        def emit(record: dict) -> None:
            print(json.dumps(record))
    else:
        def emit(record: dict) -> None:
            print(_text(record))
    try:
        predictor = get_predictor(args.artifacts, backend=args.backend)
    except ModelUnavailable as exc:
        for path in args.files:
            emit({"file": path, "error": f"model unavailable: {exc}"})
        return 2
    if connection is not None:
        try:
            predictor.connection_head(connection)
        except ValueError as exc:
            for path in args.files:
                emit({"file": path, "error": str(exc)})
            return 2
    failed = False
    records: list[dict] = []
    for path in args.files:
        if Path(path).is_dir():
            try:
                folder_records, folder_failed = _folder_records(Path(path), predictor, args.unit,
                                                                args.rated_current, emit, connection)
            except WaveformError as exc:
                folder_records, folder_failed = [{"file": path, "error": str(exc)}], True
                emit(folder_records[0])
            records += folder_records
            failed |= folder_failed
            continue
        try:
            loaded = load_waveform_source(path, channels=parse_channel_spec(args.channels),
                                          rated_current_a=args.rated_current, unit=args.unit)
        except WaveformError as exc:
            record = {"file": path, "error": str(exc)}
            emit(record)
            records.append(record)
            failed = True
            continue
        record = _record(path, predictor.predict(loaded.waveform, relay_connection=connection))
        if loaded.units is not None:
            record["units"] = loaded.units.to_dict()
            record["units_summary"] = loaded.units.summary()
        if loaded.comtrade is not None:
            record["comtrade"] = loaded.comtrade.to_dict()
            record["comtrade_summary"] = loaded.summary
        emit(record)
        records.append(record)
    summary = summarise(records)
    if summary is not None:
        if args.json:
            print(json.dumps({"summary": summary}))
        else:
            print(f"{summary['windows']} labelled windows: accuracy {summary['accuracy']:.1%}, category "
                  f"{summary['category_accuracy']:.1%}, equipment {summary['equipment_accuracy']:.1%}, flagged "
                  f"unknown {summary['unknown_rate']:.1%}")
    if args.out is not None:
        write_table(records, args.out)
        if not args.json:
            print(f"wrote {len(records)} rows to {args.out}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
