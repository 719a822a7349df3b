"""Analyze page callbacks: ONE multi-output callback runs an analysis and updates every panel.

`analyze_page_update` is the pure function behind it (inputs in, a dict of outputs back, the
services handed in through the AnalysisContext) so it is unit-tested and benchmarked without a
browser. The Dash wrapper only maps that dict onto the outputs, `no_update` for the rest.
"""

from __future__ import annotations

import binascii
import hashlib
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import dash
import dash_bootstrap_components as dbc
from dash import ALL, Input, Output, State, ctx, html, no_update

from components import ids
from components.analysis_panels import (
    confidence_for,
    description_for,
    graph_caption,
    graph_for,
    headline_for,
    impact_for,
    waveform_panel,
)
from components.cards import history_unavailable, sim_param_inputs, upload_status
from components.tables import latest_table
from services.analysis import Analysis, AnalysisContext, AnalysisError
from services.comtrade_ingest import checked_window_details, parse_channel_spec
from services.grid import MAX_TRANSFER_KW, default_graph, display_names, transfer_path_edges
from services.history import HistoryUnavailable
from services.ingest import UPLOAD_SUFFIXES, LoadedWaveform, parse_uploaded_files, safe_filename
from services.simulation import parameter_specs, simulate_event
from services.units import checked_conversion
from services.waveform import WaveformError, waveform_from_json

log = logging.getLogger(__name__)

#: what `analyze_page_update` returns, key by key, and where on the page each goes
OUTPUTS: dict[str, tuple[str, str]] = {
    "graph": (ids.MICROGRID, "elements"), "caption": (ids.MICROGRID_CAPTION, "children"),
    "headline": (ids.RESULT_HEADLINE, "children"), "waveform": (ids.WAVEFORM_CONTAINER, "children"),
    "confidence": (ids.CONFIDENCE, "children"), "description": (ids.DESCRIPTION, "children"),
    "impact": (ids.IMPACT, "children"), "latest": (ids.LATEST_TABLE, "children"),
    "alert": (ids.ANALYZE_ALERT, "children"), "result": (ids.ANALYZE_RESULT_STORE, "data"),
    "upload_store": (ids.UPLOAD_STORE, "data"), "upload_status": (ids.UPLOAD_STATUS, "children"),
}
OUTPUT_KEYS: tuple[str, ...] = tuple(OUTPUTS)
#: the page's values the update reads, by their AnalyzeRequest field (the triggers first)
TRIGGERS: dict[str, tuple[str, str]] = {
    "clicks": (ids.ANALYZE_BUTTON, "n_clicks"), "upload_contents": (ids.UPLOAD, "contents"),
    "view_mode": (ids.WAVEFORM_VIEW, "value"), "sender": (ids.SENDER, "value"), "receiver": (ids.RECEIVER, "value"),
}
READS: dict[str, tuple[Any, str]] = {
    "upload_filename": (ids.UPLOAD, "filename"), "source_tab": (ids.EVENT_SOURCE, "data"),
    "sample": (ids.SAMPLE, "value"), "sim_label": (ids.SIM_LABEL, "value"), "sim_seed": (ids.SIM_SEED, "value"),
    "sim_values": ({"type": ids.SIM_PARAM_TYPE, "name": ALL}, "value"),
    "sim_ids": ({"type": ids.SIM_PARAM_TYPE, "name": ALL}, "id"),
    "upload_store": (ids.UPLOAD_STORE, "data"), "upload_channels": (ids.UPLOAD_CHANNELS, "value"),
    "upload_unit": (ids.UPLOAD_UNIT, "value"), "upload_rated_current_a": (ids.UPLOAD_RATED_CURRENT, "value"),
    "transfer_kw": (ids.TRANSFER_KW, "value"), "result": (ids.ANALYZE_RESULT_STORE, "data"),
    "relay_connection": (ids.RELAY_CONNECTION, "value"),
}
#: the panels an analysis fills; a new transfer (sender or receiver) empties them all
RESULT_KEYS: tuple[str, ...] = ("headline", "waveform", "confidence", "description", "impact", "result")
LATEST_ROWS = 8


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
    upload_unit: str | None = None  # unit of a .npy/CSV window's values: window (default), A, kA, pu
    upload_rated_current_a: float | str | None = None  # rated current of the recorded unit, amperes
    sender: str | None = None
    receiver: str | None = None
    transfer_kw: float | None = None
    view_mode: str = "raw"
    relay_connection: str | None = None  # services.inference.connections; "not_stated" or None: not known
    result: Mapping[str, Any] | None = None  # the Analysis shown (`Analysis.to_json`, in the browser)


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
    try:
        spec = parse_channel_spec(text)
    except WaveformError:  # not a channel list: differs from any stored one; reading the files says why
        return str(text)
    return ", ".join(str(item) for item in spec) if spec else None


def _units_key(request: AnalyzeRequest) -> str:
    return f"{request.upload_unit or 'window'} {request.upload_rated_current_a or ''}".strip()


def decode_uploads(contents: str | Sequence[str] | None, filenames: str | Sequence[str] | None,
                   channels: str | None = None, *, max_bytes: int, unit: str | None = None,
                   rated_current_a: float | str | None = None) -> LoadedWaveform:
    """The window of one upload (a `.npy`/CSV file or a COMTRADE record) in window units, or
    InputProblem saying why not. `max_bytes` is the upload limit (`Settings.max_upload_bytes`)."""
    encoded_files = _as_list(contents)
    if not any(encoded_files):
        raise InputProblem("no file received")
    names = [str(name or "upload") for name in _as_list(filenames)]
    names += [f"upload {k + 1}" for k in range(len(names), len(encoded_files))]
    for name in names:
        if not name.lower().endswith(UPLOAD_SUFFIXES):
            raise InputProblem(f"{name}: expected a .npy array, a CSV/text table (time, Ia, Ib, Ic) or a COMTRADE "
                               f"record (.cfg + .dat, or .cff), one of {', '.join(UPLOAD_SUFFIXES)}")
    files: list[tuple[str, bytes]] = []
    total = 0
    for name, content in zip(names, encoded_files, strict=False):
        _, _, encoded = str(content or "").partition(",")
        total += len(encoded) * 3 // 4
        if total > max_bytes + 3:
            raise InputProblem(f"{name}: the upload is too large (at most {max_bytes / 2**20:g} MB in all)")
        try:  # decoded straight from the text: no ASCII copy and no regex pass over a 13 MB string
            files.append((name, binascii.a2b_base64(encoded, strict_mode=True)))
        except (binascii.Error, ValueError):
            raise InputProblem(f"{name}: the file could not be read (bad encoding)") from None
        del encoded
    try:
        return parse_uploaded_files(files, channels=parse_channel_spec(channels),
                                    unit=None if unit in (None, "", "window") else unit,
                                    rated_current_a=rated_current_a if rated_current_a not in ("", None) else None,
                                    max_bytes=max_bytes)
    except WaveformError as exc:
        message = str(exc)
        raise InputProblem(message if any(message.startswith(name) for name in names)
                           else f"{names[0]}: {message}") from None


def _digest(contents: str | Sequence[str] | None) -> str:
    """Fingerprint of the files in the drop zone, to tell a new drop from the stored one."""
    digest = hashlib.sha256()
    for item in _as_list(contents):
        digest.update(str(item).encode())
        digest.update(b"\0")
    return digest.hexdigest()


def _store_entry(loaded: LoadedWaveform, request: AnalyzeRequest) -> dict[str, Any]:
    """What the browser keeps of a good upload, so Analyze can run it again without the files."""
    return {"filename": loaded.name, "files": list(loaded.files), "digest": _digest(request.upload_contents),
            "waveform": loaded.waveform.tolist(),
            "channels": _channels_key(request.upload_channels) if loaded.comtrade else None,
            "units_key": _units_key(request),
            "comtrade": loaded.comtrade.to_dict() if loaded.comtrade else None,
            "units": loaded.units.to_dict() if loaded.units is not None else None, "summary": loaded.summary}


def stored_upload(stored: Mapping[str, Any]) -> tuple[Any, dict[str, Any]]:
    """(waveform, analyze() keyword arguments) of the last upload as the browser kept it, checked
    again: the store lives in the browser, which can send anything, and what is used here goes into
    the history. The window must be 3 x 726 numbers, the record's description the exact fields of a
    COMTRADE window (bounded, printable), the unit conversion is recomputed from its unit and rating,
    the file name is sanitised; InputProblem otherwise."""
    try:
        waveform = waveform_from_json(stored.get("waveform"))
        comtrade = stored.get("comtrade")
        recording = checked_window_details(comtrade) if comtrade is not None else None
        units = stored.get("units")
        units = checked_conversion(units, waveform).to_dict() if units is not None else None
    except WaveformError as exc:
        raise InputProblem(f"the kept upload cannot be used: {exc}") from None
    filename = stored.get("filename")
    name = safe_filename(filename) if isinstance(filename, str) else "upload"
    return waveform, {"source": "upload", "sample_name": name, "recording": recording, "units": units}


def _upload_is_new(request: AnalyzeRequest) -> bool:
    """True when the files in the drop zone are not the stored upload (a failed drop, new COMTRADE
    channels, or a new unit or rated current)."""
    if not _as_list(request.upload_contents):
        return False
    stored = request.upload_store if isinstance(request.upload_store, Mapping) else {}
    if not stored.get("waveform"):
        return True
    if stored.get("digest") and stored["digest"] != _digest(request.upload_contents):
        return True
    if stored.get("units_key", "window") != _units_key(request):
        return True
    return bool(stored.get("comtrade")) and stored.get("channels") != _channels_key(request.upload_channels)


def check_sim_params(label: str, given: Mapping[str, Any]) -> dict[str, float]:
    """The simulation parameters the operator typed, checked against the simulator's own ranges
    (`services.simulation.parameter_specs`); InputProblem naming the parameter and its range."""
    try:
        specs = {spec["name"]: spec for spec in parameter_specs(label)}
    except ValueError as exc:
        raise InputProblem(f"simulation: {exc}") from None
    params: dict[str, float] = {}
    for name, value in given.items():
        if value in (None, ""):
            continue
        spec = specs.get(name)
        if spec is None:
            raise InputProblem(f"simulation: {label} has no parameter {name!r}")
        title = f"{spec.get('title') or name} ({name})"
        unit = f" {spec['unit']}" if spec.get("unit") else ""
        try:
            number = float(value)
        except (TypeError, ValueError):
            raise InputProblem(f"simulation: {title} must be a number") from None
        if not spec["min"] <= number <= spec["max"]:
            raise InputProblem(f"simulation: {title} must be between {spec['min']:g} and {spec['max']:g}{unit}, "
                               f"got {number:g}")
        params[name] = number
    return params


def _simulated(request: AnalyzeRequest) -> tuple[Any, dict[str, Any]]:
    """(waveform, analyze() keyword arguments) of the event to simulate; the history keeps its parameters."""
    if not request.sim_label:
        raise InputProblem("choose an event to simulate")
    params = check_sim_params(request.sim_label, request.sim_params)
    seed = int(request.sim_seed) if request.sim_seed not in (None, "") else None
    try:
        waveform, used = simulate_event(request.sim_label, seed, **params)
    except ValueError as exc:
        raise InputProblem(f"simulation: {exc}") from None
    details = ([f"seed {seed}"] if seed is not None else []) + [f"{key} {value:g}" for key, value in params.items()]
    simulation = {"label": request.sim_label, "seed": seed, "parameters": params, "used": dict(used)}
    return waveform, {"source": "simulated", "sample_name": f"simulated ({'; '.join(details)})" if details
                      else "simulated", "true_label": used.get("label"), "simulation": simulation}


def _event(request: AnalyzeRequest, context: AnalysisContext
           ) -> tuple[Any, dict[str, Any], LoadedWaveform | None]:
    """(waveform, analyze() keyword arguments, the upload read for it if any) for the event asked for."""
    if request.trigger == ids.UPLOAD or (request.source_tab == ids.SOURCE_UPLOAD and _upload_is_new(request)):
        loaded = decode_uploads(request.upload_contents, request.upload_filename, request.upload_channels,
                                max_bytes=context.settings.max_upload_bytes, unit=request.upload_unit,
                                rated_current_a=request.upload_rated_current_a)
        return loaded.waveform, {"source": "upload", "sample_name": loaded.name,
                                 "recording": loaded.comtrade.to_dict() if loaded.comtrade else None,
                                 "units": loaded.units.to_dict() if loaded.units is not None else None}, loaded
    if request.source_tab == ids.SOURCE_UPLOAD:
        stored = request.upload_store if isinstance(request.upload_store, Mapping) else {}
        if not stored.get("waveform"):
            raise InputProblem("upload a .npy or CSV recording or a COMTRADE record first (Upload tab)")
        return (*stored_upload(stored), None)
    if request.source_tab == ids.SOURCE_SIMULATE:
        return (*_simulated(request), None)
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


def result_panels(analysis: Analysis | None, view_mode: str = "raw", *, sender: str | None = None,
                  receiver: str | None = None, href_for: Callable[[int], str] | None = None) -> dict[str, Any]:
    """Every panel an analysis fills, for `analysis` (None: the empty page for sender -> receiver)."""
    names = display_names()
    if analysis is not None:
        sender, receiver = analysis.sender, analysis.receiver
    return {
        "graph": graph_for(default_graph(), analysis, sender=sender, receiver=receiver,
                           path_edges=transfer_path_edges(sender, receiver)),
        "caption": graph_caption(analysis, names, sender=sender, receiver=receiver),
        "headline": headline_for(analysis, names, href_for),
        "waveform": waveform_panel(analysis, view_mode, ids.WAVEFORM),
        "confidence": confidence_for(analysis),
        "description": description_for(analysis),
        "impact": impact_for(analysis, names),
        "result": analysis.to_json(saliency=False) if analysis is not None else None,
    }


def analyze_page_update(request: AnalyzeRequest, context: AnalysisContext,
                        href_for: Callable[[int], str] = lambda analysis_id: f"/analysis/{analysis_id}"
                        ) -> dict[str, Any]:
    """The outputs to change for one trigger of the Analyze page (keys of OUTPUT_KEYS).

    - the RMS/raw toggle redraws the waveform of the result already shown;
    - a sender/receiver change draws the new transfer path and empties every result panel: the
      analysis shown was assessed for the old transfer, so keeping it would contradict the graph;
    - Analyze (or a new upload) runs `services.analysis.analyze` once and updates graph, waveform,
      confidence, description, impact and the latest-analyses table together; with the Upload tab
      open it reads the files in the drop zone again when they are not the stored upload (the last
      drop failed) or when the COMTRADE channels, the unit or the rated current typed since differ.
    Bad input returns only an alert (and the upload status): nothing else changes. `href_for`
    gives the permanent link of an analysis id (under the app's URL prefix).
    """
    if request.trigger == ids.WAVEFORM_VIEW:
        try:
            shown = Analysis.from_json(request.result) if request.result else None
            return {"waveform": waveform_panel(shown, request.view_mode, ids.WAVEFORM)}
        except Exception:  # the result store lives in the browser: one that is no analysis changes nothing
            log.warning("raw/RMS toggle: the page's result store is not an analysis; nothing redrawn")
            return {}
    if request.trigger in (ids.SENDER, ids.RECEIVER):
        sender, receiver = (peer if isinstance(peer, str) else None for peer in (request.sender, request.receiver))
        return {**result_panels(None, sender=sender, receiver=receiver), "alert": None}

    from services.inference import ModelUnavailable  # torch loads in the worker, not at import

    outputs: dict[str, Any] = {}
    try:
        if request.transfer_kw in (None, ""):
            raise InputProblem(f"enter the P2P transfer power: a number of kW above 0, at most {MAX_TRANSFER_KW:g}")
        waveform, event, loaded = _event(request, context)
        if loaded is not None:
            outputs["upload_store"] = _store_entry(loaded, request)
            outputs["upload_status"] = upload_status(" + ".join(loaded.files), outputs["upload_store"]["comtrade"],
                                                     loaded.summary)
        analysis = context.analyze(waveform, sender=request.sender, receiver=request.receiver,
                                   transfer_kw=request.transfer_kw, relay_connection=request.relay_connection,
                                   **event)
    except (InputProblem, AnalysisError) as exc:
        return _refusal(request, _alert(str(exc)), str(exc))
    except ModelUnavailable as exc:
        return _refusal(request, _alert(f"{exc}; install a valid artifacts folder (see README)",
                                        title="Model unavailable"), "not analysed: the model is unavailable")
    except Exception:
        log.exception("analysis failed")
        return _refusal(request, _alert("an internal error stopped the analysis; it has been logged",
                                        title="Analysis failed"), "not analysed: internal error")

    return {
        **outputs,
        **result_panels(analysis, request.view_mode, href_for=href_for),
        **saved_outputs(analysis, context, href_for),
    }


def saved_outputs(analysis: Analysis, context: AnalysisContext,
                  href_for: Callable[[int], str]) -> dict[str, Any]:
    """The latest-analyses table and the alert after an analysis: when the history could not keep
    it, the result stays on the page with a visible "not saved" warning (and the history is not
    asked again, which could wait another deadline)."""
    if not analysis.saved:
        return {"latest": history_unavailable(analysis.save_error),
                "alert": _alert(f"the result below is complete but is not in the history ({analysis.save_error}); "
                                "it is lost when you leave this page", color="warning",
                                title="Not saved to the history")}
    return {"latest": latest_panel(context.store, href_for), "alert": None}


def latest_panel(store: Any, href_for: Callable[[int], str]) -> Any:
    """The latest analyses (the Analyze page's table), or the "history unavailable" warning."""
    try:
        rows, _ = store.query(limit=LATEST_ROWS, offset=0)
    except HistoryUnavailable as exc:
        return history_unavailable(str(exc))
    return latest_table(rows, href_for)


def sim_params_for(label: str | None) -> list:
    """The parameter inputs of the label to simulate (its main physical parameters)."""
    if not label:
        return sim_param_inputs([])
    try:
        return sim_param_inputs(parameter_specs(label))
    except ValueError as exc:
        return [html.Div(str(exc), className="text-danger small")]


# --- Dash wiring ------------------------------------------------------------------------------------

def register(app: dash.Dash, context: AnalysisContext, href_for: Callable[[int], str]) -> None:
    """The Analyze page's callbacks on `app`, with `app`'s context and permanent links."""

    @app.callback(
        output={key: Output(*target) for key, target in OUTPUTS.items()},
        inputs={key: Input(*source) for key, source in TRIGGERS.items()},
        state={key: State(*source) for key, source in READS.items()},
        prevent_initial_call=True,
    )
    def on_analyze(clicks, sim_values, sim_ids, view_mode, **fields):
        """Analyze button, upload, RMS toggle and peer changes: one callback, told apart by ctx.triggered_id."""
        sim_params = {item["name"]: value for item, value in zip(sim_ids or [], sim_values or [], strict=False)}
        request = AnalyzeRequest(trigger=ctx.triggered_id, sim_params=sim_params, view_mode=view_mode or "raw",
                                 **fields)
        outputs = analyze_page_update(request, context, href_for)
        return {key: outputs.get(key, no_update) for key in OUTPUTS}

    @app.callback(Output(ids.SIM_PARAMS, "children"), Input(ids.SIM_LABEL, "value"), prevent_initial_call=True)
    def on_sim_label(label):
        """Show the chosen label's physical parameters."""
        return sim_params_for(label)
