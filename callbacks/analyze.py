"""Analyze page callbacks: ONE multi-output callback runs an analysis and updates every panel.

`analyze_page_update` is the pure function behind it (inputs in, a dict of outputs back, the
services handed in through the AnalysisContext) so it is unit-tested and benchmarked without a
browser. The Dash wrapper only maps that dict onto the outputs, `no_update` for the rest.
"""

from __future__ import annotations

import base64
import binascii
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import dash_bootstrap_components as dbc
from dash import ALL, Input, Output, State, callback, ctx, html, no_update

from callbacks import data
from callbacks.views import (
    confidence_for,
    description_for,
    graph_caption,
    graph_for,
    headline_for,
    impact_for,
    view_from_result,
    waveform_panel,
)
from components import ids
from components.cards import sim_param_inputs
from components.tables import latest_table
from services.analysis import AnalysisContext, AnalysisError
from services.ingest import DATA_SUFFIXES, parse_waveform_bytes
from services.simulation import parameter_specs, simulate_event
from services.waveform import WaveformError

log = logging.getLogger(__name__)

MAX_UPLOAD_BYTES = 2 * 1024 * 1024
OUTPUT_KEYS: tuple[str, ...] = ("graph", "caption", "headline", "waveform", "confidence", "description", "impact", "latest", "alert",
                                "result", "upload_store", "upload_status")


@dataclass(frozen=True)
class AnalyzeRequest:
    """Everything the Analyze page sends for one update; `trigger` is `ctx.triggered_id`."""

    trigger: str | None
    source_tab: str | None = ids.SOURCE_SAMPLE
    sample: str | None = None
    sim_label: str | None = None
    sim_seed: int | float | None = None
    sim_params: Mapping[str, Any] = field(default_factory=dict)
    upload_contents: str | None = None
    upload_filename: str | None = None
    upload_store: Mapping[str, Any] | None = None
    sender: str | None = None
    receiver: str | None = None
    transfer_kw: float | None = None
    view_mode: str = "raw"
    result: Mapping[str, Any] | None = None


class InputProblem(ValueError):
    """Something the operator can fix; the message goes in the page's alert."""


def _alert(message: str, color: str = "danger", title: str = "Cannot analyse") -> dbc.Alert:
    return dbc.Alert([html.Strong(f"{title}: "), message], color=color, dismissable=True, className="py-2 small",
                     fade=False, id={"type": "analyze-alert-message", "color": color})


def decode_upload(contents: str | None, filename: str | None) -> Any:
    """The (3, 726) waveform of an uploaded file, or InputProblem saying what is wrong with it."""
    if not contents:
        raise InputProblem("no file received")
    name = str(filename or "upload")
    if not name.lower().endswith(DATA_SUFFIXES):
        raise InputProblem(f"{name}: expected a .npy array or a CSV/text table (time, Ia, Ib, Ic), "
                           f"one of {', '.join(DATA_SUFFIXES)}")
    _, _, encoded = contents.partition(",")
    try:
        raw = base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError):
        raise InputProblem(f"{name}: the file could not be read (bad encoding)") from None
    if len(raw) > MAX_UPLOAD_BYTES:
        raise InputProblem(f"{name}: {len(raw) / 1e6:.1f} MB is too large (at most {MAX_UPLOAD_BYTES // 1_000_000} MB)")
    try:
        return parse_waveform_bytes(raw, name)
    except WaveformError as exc:
        message = str(exc)
        raise InputProblem(message if message.startswith(name) else f"{name}: {message}") from None


def _event(request: AnalyzeRequest, context: AnalysisContext) -> tuple[Any, dict[str, Any]]:
    """(waveform, analyze() keyword arguments) for the event the request asks for."""
    if request.trigger == ids.UPLOAD:
        waveform = decode_upload(request.upload_contents, request.upload_filename)
        return waveform, {"source": "upload", "sample_name": request.upload_filename}
    if request.source_tab == ids.SOURCE_UPLOAD:
        stored = request.upload_store or {}
        if not stored.get("waveform"):
            raise InputProblem("upload a .npy or CSV recording first (Upload tab)")
        return stored["waveform"], {"source": "upload", "sample_name": stored.get("filename")}
    if request.source_tab == ids.SOURCE_SIMULATE:
        if not request.sim_label:
            raise InputProblem("choose an event to simulate")
        params = {name: value for name, value in request.sim_params.items() if value not in (None, "")}
        seed = int(request.sim_seed) if request.sim_seed not in (None, "") else None
        try:
            waveform, used = simulate_event(request.sim_label, seed, **params)
        except ValueError as exc:
            raise InputProblem(f"simulation: {exc}") from None
        name = f"simulated (seed {seed})" if seed is not None else "simulated"
        return waveform, {"source": "simulated", "sample_name": name, "true_label": used.get("label")}
    if not request.sample or str(request.sample).startswith("__group__"):
        raise InputProblem("choose a recorded event")
    try:
        waveform, entry = context.load_sample(request.sample)
    except AnalysisError as exc:
        raise InputProblem(str(exc)) from None
    return waveform, {"source": "sample", "sample_name": entry.name, "true_label": entry.true_label}


def _refusal(request: AnalyzeRequest, alert: dbc.Alert, status: str) -> dict[str, Any]:
    """Outputs when nothing could be analysed: only the alert (and, for an upload, its status line)."""
    outputs: dict[str, Any] = {"alert": alert}
    if request.trigger == ids.UPLOAD:
        outputs["upload_status"] = html.Span(status, className="text-danger")
    return outputs


def analyze_page_update(request: AnalyzeRequest, context: AnalysisContext,
                        grid: Mapping[str, list[dict]] | None = None) -> dict[str, Any]:
    """The outputs to change for one trigger of the Analyze page (keys of OUTPUT_KEYS).

    - the RMS/raw toggle redraws the waveform of the result already shown;
    - a sender/receiver change redraws the transfer path on the graph;
    - Analyze (or a new upload) runs `services.analysis.analyze` once and updates graph, waveform,
      confidence, description, impact and the latest-analyses table together.
    Bad input returns only an alert (and the upload status): nothing else changes.
    """
    grid = grid or data.grid_data()
    if request.trigger == ids.WAVEFORM_VIEW:
        return {"waveform": waveform_panel(request.result, request.view_mode, ids.WAVEFORM)}
    if request.trigger in (ids.SENDER, ids.RECEIVER):
        return {"graph": graph_for(grid, None, sender=request.sender, receiver=request.receiver),
                "caption": graph_caption(None, data.node_names(), sender=request.sender, receiver=request.receiver),
                "alert": None}

    from services.inference import ModelUnavailable  # torch loads in the worker, not at import

    outputs: dict[str, Any] = {}
    try:
        if request.transfer_kw in (None, ""):
            raise InputProblem("enter the P2P transfer power in kW (a number above 0)")
        waveform, event = _event(request, context)
        if request.trigger == ids.UPLOAD:
            outputs["upload_store"] = {"filename": request.upload_filename, "waveform": waveform.tolist()}
            outputs["upload_status"] = html.Span(f"Loaded {request.upload_filename}", className="text-success")
        result = context.analyze(waveform, sender=request.sender, receiver=request.receiver,
                                 transfer_kw=request.transfer_kw, **event)
    except (InputProblem, AnalysisError) as exc:
        return _refusal(request, _alert(str(exc)), str(exc))
    except ModelUnavailable as exc:
        return _refusal(request, _alert(f"{exc}; install a valid artifacts folder (see README)",
                                        title="Model unavailable"), "not analysed: the model is unavailable")
    except Exception:
        log.exception("analysis failed")
        return _refusal(request, _alert("an internal error stopped the analysis; it has been logged",
                                        title="Analysis failed"), "not analysed: internal error")

    view = view_from_result(result)
    names = data.node_names()
    return {
        **outputs,
        "graph": graph_for(grid, view),
        "caption": graph_caption(view, names),
        "waveform": waveform_panel(view, request.view_mode, ids.WAVEFORM),
        "confidence": confidence_for(view),
        "description": description_for(view),
        "impact": impact_for(view, names),
        "headline": headline_for(view, names, data.analysis_href),
        "latest": latest_table(data.latest_rows(context), data.analysis_href),
        "alert": None,
        "result": view,
    }


def sim_params_for(label: str | None) -> list:
    """The parameter inputs of the label to simulate (its main physical parameters)."""
    if not label:
        return sim_param_inputs([])
    try:
        return sim_param_inputs(parameter_specs(label))
    except ValueError as exc:
        return [html.Div(str(exc), className="text-danger small")]


# --- Dash wiring ------------------------------------------------------------------------------------

@callback(
    Output(ids.MICROGRID, "elements"),
    Output(ids.MICROGRID_CAPTION, "children"),
    Output(ids.RESULT_HEADLINE, "children"),
    Output(ids.WAVEFORM_CONTAINER, "children"),
    Output(ids.CONFIDENCE, "children"),
    Output(ids.DESCRIPTION, "children"),
    Output(ids.IMPACT, "children"),
    Output(ids.LATEST_TABLE, "children"),
    Output(ids.ANALYZE_ALERT, "children"),
    Output(ids.ANALYZE_RESULT_STORE, "data"),
    Output(ids.UPLOAD_STORE, "data"),
    Output(ids.UPLOAD_STATUS, "children"),
    Input(ids.ANALYZE_BUTTON, "n_clicks"),
    Input(ids.UPLOAD, "contents"),
    Input(ids.WAVEFORM_VIEW, "value"),
    Input(ids.SENDER, "value"),
    Input(ids.RECEIVER, "value"),
    State(ids.UPLOAD, "filename"),
    State(ids.EVENT_SOURCE_TABS, "active_tab"),
    State(ids.SAMPLE, "value"),
    State(ids.SIM_LABEL, "value"),
    State(ids.SIM_SEED, "value"),
    State({"type": ids.SIM_PARAM_TYPE, "name": ALL}, "value"),
    State({"type": ids.SIM_PARAM_TYPE, "name": ALL}, "id"),
    State(ids.UPLOAD_STORE, "data"),
    State(ids.TRANSFER_KW, "value"),
    State(ids.ANALYZE_RESULT_STORE, "data"),
    prevent_initial_call=True,
)
def on_analyze(_clicks, upload_contents, view_mode, sender, receiver, upload_filename, source_tab, sample,
               sim_label, sim_seed, sim_values, sim_ids, upload_store, transfer_kw, result):
    """Analyze button, upload, RMS toggle and peer changes: one callback, told apart by ctx.triggered_id."""
    request = AnalyzeRequest(
        trigger=ctx.triggered_id, source_tab=source_tab, sample=sample, sim_label=sim_label, sim_seed=sim_seed,
        sim_params={item["name"]: value for item, value in zip(sim_ids or [], sim_values or [], strict=False)},
        upload_contents=upload_contents, upload_filename=upload_filename, upload_store=upload_store,
        sender=sender, receiver=receiver, transfer_kw=transfer_kw, view_mode=view_mode or "raw", result=result,
    )
    outputs = analyze_page_update(request, data.context())
    return tuple(outputs.get(key, no_update) for key in OUTPUT_KEYS)


@callback(Output(ids.SIM_PARAMS, "children"), Input(ids.SIM_LABEL, "value"), prevent_initial_call=True)
def on_sim_label(label):
    """Show the chosen label's physical parameters."""
    return sim_params_for(label)
