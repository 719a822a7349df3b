"""The analytics' numbers as CSV (one row per one-cycle window and phase), for the pages' download."""

from __future__ import annotations

import csv
import io
from collections.abc import Mapping
from typing import Any

from services.waveform import PHASES

HEADER = (["window_start_ms", "window_end_ms", "phase", "fundamental_rms_ka", "fundamental_angle_deg", "rms_ka",
           "dc_ka", "thd"] + [f"h{order}_ratio" for order in range(2, 16)]
          + ["i0_ka", "i1_ka", "i2_ka", "i2_i1", "i0_i1"])


def analytics_csv(analytics: Mapping[str, Any]) -> str:
    """CSV text of `Analytics.to_dict()`: windows x phases, with the sequence components repeated on
    each phase's row (they belong to the window); empty cells where a ratio has no fundamental."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(HEADER)
    sequence = analytics["sequence"]
    for k, (start, end) in enumerate(zip(analytics["start_ms"], analytics["end_ms"], strict=True)):
        seq = [sequence[key][k] for key in ("i0", "i1", "i2", "i2_i1", "i0_i1")]
        for phase in PHASES:
            data = analytics["phases"][phase]
            row = [start, end, phase, data["fundamental_rms"][k], data["fundamental_angle_deg"][k], data["rms"][k],
                   data["dc"][k], data["thd"][k], *data["harmonic_ratios"][k], *seq]
            writer.writerow(["" if value is None else value for value in row])
    return out.getvalue()


#: the key figures of the comparison table, in its order: (field, header)
COMPARE_FIELDS = (("analysis_id", "analysis_id"), ("label", "label"), ("confidence", "confidence"),
                  ("inception_ms", "inception_ms"), ("clearing_ms", "clearing_ms"), ("peak_ka", "peak_ka"),
                  ("dc_offset_ka", "dc_offset_ka"), ("tau_ms", "tau_ms"),
                  ("second_harmonic_ratio", "second_harmonic_ratio"), ("fifth_harmonic_ratio", "fifth_harmonic_ratio"),
                  ("thd", "thd"), ("i2_i1", "i2_i1"), ("i0_i1", "i0_i1"))


def compare_csv(rows: list[Mapping[str, Any]]) -> str:
    """CSV text of the comparison table's rows (one per analysis), empty cells for missing figures."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow([header for _, header in COMPARE_FIELDS])
    for row in rows:
        writer.writerow(["" if row.get(field) is None else row.get(field) for field, _ in COMPARE_FIELDS])
    return out.getvalue()
