"""Callbacks of the permanent page of one analysis (`/analysis/<id>`): the raw / RMS toggle."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

import dash
from dash import Input, Output, State

from components import ids
from components.analysis_panels import waveform_for
from services.analysis import Analysis

log = logging.getLogger(__name__)


def redraw_waveform(stored: Mapping[str, Any] | None, mode: str | None) -> Any:
    """The stored analysis's waveform in `mode` ("raw" or "rms"); unchanged when the store (held by
    the browser, so anything may come back) is not an analysis."""
    try:
        return waveform_for(Analysis.from_json(stored) if stored else None, mode or "raw")
    except Exception:
        log.warning("raw/RMS toggle: the page's analysis store is not an analysis; nothing redrawn")
        return dash.no_update


def register(app: dash.Dash) -> None:
    @app.callback(
        Output(ids.ANALYSIS_WAVEFORM, "figure"),
        Input(ids.ANALYSIS_WAVEFORM_VIEW, "value"),
        State(ids.ANALYSIS_WAVEFORM_STORE, "data"),
        prevent_initial_call=True,
    )
    def on_view_mode(mode, stored):
        """Raw / RMS toggle of the stored waveform."""
        return redraw_waveform(stored, mode)
