"""Analyze page callbacks: ONE multi-output callback runs an analysis and updates every panel.

`analyze_page_update` is the pure function behind it (inputs in, a dict of outputs back, the
services handed in through the AnalysisContext) so it is unit-tested and benchmarked without a
browser. The Dash wrapper only maps that dict onto the outputs, `no_update` for the rest.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import logging
from collections.abc import Mapping, Sequence
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
from components.cards import sim_param_inputs, upload_status
from components.tables import latest_table
from services.analysis import AnalysisContext, AnalysisError
from services.comtrade_ingest import MAX_RECORD_BYTES, is_comtrade_name, parse_channel_spec
from services.ingest import UPLOAD_SUFFIXES, LoadedWaveform, parse_uploaded_files
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
    upload_contents: str | Sequence[str] | None = None  # one data URL, or a list (dcc.Upload multiple=True)
    upload_filename: str | Sequence[str] | None = None
    upload_store: Mapping[str, Any] | None = None
    upload_channels: str | None = None  # COMTRADE channels typed by the user, e.g. "IdA, IdB, IdC"
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


def _as_list(value: str | Sequence[str] | None) -> list:
    if value is None:
        return []
    return [value] if isinstance(value, str) else list(value)


def _channels_key(text: str | None) -> str | None:
    """The typed COMTRADE channels in one canonical form (None when blank), to compare with the store's."""
    spec = parse_channel_spec(text)
    return ", ".join(str(item) for item in spec) if spec else None


def decode_uploads(contents: str | Sequence[str] | None, filenames: str | Sequence[str] | None,
                   channels: str | None = None) -> LoadedWaveform:
    """The window of one upload (a `.npy`/CSV file or a COMTRADE record), or InputProblem saying why not."""
    encoded_files = _as_list(contents)
    if not any(encoded_files):
        raise InputProblem("no file received")
    names = [str(name or "upload") for name in _as_list(filenames)]
    names += [f"upload {k + 1}" for k in range(len(names), len(encoded_files))]
    for name in names:
        if not name.lower().endswith(UPLOAD_SUFFIXES):
            raise InputProblem(f"{name}: expected a .npy array, a CSV/text table (time, Ia, Ib, Ic) or a COMTRADE "
                               f"record (.cfg + .dat, or .cff), one of {', '.join(UPLOAD_SUFFIXES)}")
    record = len(names) > 1 or any(is_comtrade_name(name) for name in names)
    limit = MAX_RECORD_BYTES if record else MAX_UPLOAD_BYTES
    files: list[tuple[str, bytes]] = []
    total = 0
    for name, content in zip(names, encoded_files, strict=False):
        _, _, encoded = str(content or "").partition(",")
        total += len(encoded) * 3 // 4
        if total > limit + 3:
            raise InputProblem(f"{name}: the upload is too large (at most {limit / 1e6:.0f} MB"
                               f"{' for a whole COMTRADE record' if record else ''})")
        try:
            files.append((name, base64.b64decode(encoded, validate=True)))
        except (binascii.Error, ValueError):
            raise InputProblem(f"{name}: the file could not be read (bad encoding)") from None
    try:
        return parse_uploaded_files(files, channels=parse_channel_spec(channels))
    except WaveformError as exc:
        message = str(exc)
        raise InputProblem(message if any(message.startswith(name) for name in names)
                           else f"{names[0]}: {message}") from None


def decode_upload(contents: str | None, filename: str | None) -> Any:
    """The (3, 726) waveform of one uploaded file, or InputProblem saying what is wrong with it."""
    return decode_uploads(contents, filename).waveform


def _digest(contents: str | Sequence[str] | None) -> str:
    """Fingerprint of the files in the drop zone, to tell a new drop from the stored one."""
    digest = hashlib.sha256()
    for item in _as_list(contents):
        digest.update(str(item).encode())
        digest.update(b"\0")
    return digest.hexdigest()


def _store_entry(loaded: LoadedWaveform, contents: str | Sequence[str] | None, channels: str | None
                 ) -> dict[str, Any]:
    """What the browser keeps of a good upload, so Analyze can run it again without the files."""
    return {"filename": loaded.name, "files": list(loaded.files), "digest": _digest(contents),
            "waveform": loaded.waveform.tolist(),
            "channels": _channels_key(channels) if loaded.comtrade else None,
            "comtrade": loaded.comtrade.to_dict() if loaded.comtrade else None, "summary": loaded.summary}


def _upload_is_new(request: AnalyzeRequest) -> bool:
    """True when the files in the drop zone are not the stored upload (a failed drop, or new COMTRADE channels)."""
    if not _as_list(request.upload_contents):
        return False
    stored = request.upload_store or {}
    if not stored.get("waveform"):
        return True
    if stored.get("digest") and stored["digest"] != _digest(request.upload_contents):
        return True
    return bool(stored.get("comtrade")) and stored.get("channels") != _channels_key(request.upload_channels)


def _event(request: AnalyzeRequest, context: AnalysisContext
           ) -> tuple[Any, dict[str, Any], LoadedWaveform | None]:
    """(waveform, analyze() keyword arguments, the upload read for it if any) for the event asked for."""
    if request.trigger == ids.UPLOAD or (request.source_tab == ids.SOURCE_UPLOAD and _upload_is_new(request)):
        loaded = decode_uploads(request.upload_contents, request.upload_filename, request.upload_channels)
        recording = loaded.comtrade.to_dict() if loaded.comtrade else None
        return loaded.waveform, {"source": "upload", "sample_name": loaded.name, "recording": recording}, loaded
    if request.source_tab == ids.SOURCE_UPLOAD:
        stored = request.upload_store or {}
        if not stored.get("waveform"):
            raise InputProblem("upload a .npy or CSV recording or a COMTRADE record first (Upload tab)")
        return stored["waveform"], {"source": "upload", "sample_name": stored.get("filename"),
                                    "recording": stored.get("comtrade")}, None
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
        return waveform, {"source": "simulated", "sample_name": name, "true_label": used.get("label")}, None
    if not request.sample or str(request.sample).startswith("__group__"):
        raise InputProblem("choose a recorded event")
    try:
        waveform, entry = context.load_sample(request.sample)
    except AnalysisError as exc:
        raise InputProblem(str(exc)) from None
    return waveform, {"source": "sample", "sample_name": entry.name, "true_label": entry.true_label}, None


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
      confidence, description, impact and the latest-analyses table together; with the Upload tab
      open it reads the files in the drop zone again when they are not the stored upload (the last
      drop failed) or when the COMTRADE channels typed since differ.
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
        waveform, event, loaded = _event(request, context)
        if loaded is not None:
            outputs["upload_store"] = _store_entry(loaded, request.upload_contents, request.upload_channels)
            outputs["upload_status"] = upload_status(" + ".join(loaded.files), outputs["upload_store"]["comtrade"],
                                                     loaded.summary)
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
    State(ids.UPLOAD_CHANNELS, "value"),
    State(ids.TRANSFER_KW, "value"),
    State(ids.ANALYZE_RESULT_STORE, "data"),
    prevent_initial_call=True,
)
def on_analyze(_clicks, upload_contents, view_mode, sender, receiver, upload_filename, source_tab, sample,
               sim_label, sim_seed, sim_values, sim_ids, upload_store, upload_channels, transfer_kw, result):
    """Analyze button, upload, RMS toggle and peer changes: one callback, told apart by ctx.triggered_id."""
    request = AnalyzeRequest(
        trigger=ctx.triggered_id, source_tab=source_tab, sample=sample, sim_label=sim_label, sim_seed=sim_seed,
        sim_params={item["name"]: value for item, value in zip(sim_ids or [], sim_values or [], strict=False)},
        upload_contents=upload_contents, upload_filename=upload_filename, upload_store=upload_store,
        upload_channels=upload_channels,
        sender=sender, receiver=receiver, transfer_kw=transfer_kw, view_mode=view_mode or "raw", result=result,
    )
    outputs = analyze_page_update(request, data.context())
    return tuple(outputs.get(key, no_update) for key in OUTPUT_KEYS)


@callback(Output(ids.SIM_PARAMS, "children"), Input(ids.SIM_LABEL, "value"), prevent_initial_call=True)
def on_sim_label(label):
    """Show the chosen label's physical parameters."""
    return sim_params_for(label)
