"""`python -m services.inference FILE [FILE ...] [--artifacts DIR] [--json] [--channels A,B,C]`: classify waveform files.

FILE is a `.npy` (3, 726) window, a CSV/text table, or a COMTRADE record (`.cfg` with its `.dat`
beside it, or `.cff`); for a record the output also says which channels and window were used.
One result per file, in order. A file that cannot be read prints an error for that file while
the others are still classified; the exit code is 1 if any file failed, 2 if the model is
unavailable.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence

from services.comtrade_ingest import parse_channel_spec
from services.inference import ModelUnavailable, Prediction, get_predictor
from services.ingest import load_waveform_source
from services.labels import label_parts, pretty_label
from services.waveform import WaveformError


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
    if "comtrade_summary" in record:
        line += f"\n  analysed {record['comtrade_summary']}"
    return line


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m services.inference", description=__doc__.splitlines()[0])
    parser.add_argument("files", nargs="+",
                        help=".npy (3, 726), CSV/text (time, Ia, Ib, Ic) or COMTRADE .cfg (with its .dat) / .cff files")
    parser.add_argument("--artifacts", default=None, help="artifacts folder (default: env GEM_ARTIFACTS_DIR, else artifacts/)")
    parser.add_argument("--json", action="store_true", help="one JSON object per line")
    parser.add_argument("--backend", choices=("onnxruntime", "torch"), default=None, help="force a backend")
    parser.add_argument("--channels", default=None,
                        help="COMTRADE channels for phases A, B, C: names or analog channel numbers, e.g. IdA,IdB,IdC "
                             "(default: the differential currents found by name)")
    args = parser.parse_args(argv)

    emit = (lambda record: print(json.dumps(record))) if args.json else (lambda record: print(_text(record)))
    try:
        predictor = get_predictor(args.artifacts, backend=args.backend)
    except ModelUnavailable as exc:
        for path in args.files:
            emit({"file": path, "error": f"model unavailable: {exc}"})
        return 2
    failed = False
    for path in args.files:
        try:
            loaded = load_waveform_source(path, channels=parse_channel_spec(args.channels))
        except WaveformError as exc:
            emit({"file": path, "error": str(exc)})
            failed = True
            continue
        record = _record(path, predictor.predict(loaded.waveform))
        if loaded.comtrade is not None:
            record["comtrade"] = loaded.comtrade.to_dict()
            record["comtrade_summary"] = loaded.comtrade.summary()
        emit(record)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
