"""The permanent page of one analysis (`/analysis/<id>`): the stored record drawn as on Analyze."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from dash import Input, Output, State, callback

from callbacks.views import view_from_record, waveform_for
from components import ids
from services.analysis import AnalysisContext

log = logging.getLogger(__name__)


def parse_analysis_id(value: object) -> int | None:
    """A positive integer id from the URL, or None for anything else."""
    text = str(value or "").strip()
    if not text.isdigit() or len(text) > 18:
        return None
    number = int(text)
    return number if number > 0 else None


def describe(context: AnalysisContext, label: str | None) -> dict[str, Any]:
    """The description of a label from the model's artifacts, or the built-in one without a model."""
    if not label:
        return {}
    try:
        return dict(context.predictor().describe(label))
    except Exception:  # model missing: the stored analysis must still open
        from services.inference.descriptions import describe_label

        return describe_label(label)


def load_view(context: AnalysisContext, analysis_id: object) -> dict[str, Any] | None:
    """The view of a stored analysis, or None when the id is malformed or unknown."""
    number = parse_analysis_id(analysis_id)
    if number is None:
        return None
    record = context.store.get(number)
    if record is None:
        return None
    return view_from_record(record, describe(context, record.get("label")))


@callback(
    Output(ids.ANALYSIS_WAVEFORM, "figure"),
    Input(ids.ANALYSIS_WAVEFORM_VIEW, "value"),
    State(ids.ANALYSIS_WAVEFORM_STORE, "data"),
    prevent_initial_call=True,
)
def on_view_mode(mode: str, view: Mapping[str, Any] | None):
    """Raw / RMS toggle of the stored waveform."""
    return waveform_for(view, mode or "raw")
