"""The signal-analytics card of one analysis: harmonic spectrum, phasors, sequence components, RMS
per cycle and the key figures, at a one-cycle window the user picks with a slider.

Pure builders: the JSON of `services.analytics.Analytics.to_dict()` and a window index in, figure
dicts and components out (no I/O). Units on every axis: currents in the window's unit (kA), RMS
magnitudes, angles in degrees, ratios in % of the fundamental. Each figure shows Plotly's modebar
with its PNG download; the numbers download as CSV (`services.analytics.export`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import dash_bootstrap_components as dbc
from dash import dcc, html

from components import ids
from components.cards import section_title
from components.figures import AXIS, FONT, PHASE_COLOURS, empty_figure
from services.waveform import PHASES

#: figures keep the modebar for the PNG export (Plotly's own "download plot as a png")
EXPORT_CONFIG = {"displaylogo": False, "displayModeBar": "hover",
                 "modeBarButtonsToRemove": ["select2d", "lasso2d", "autoScale2d", "toggleSpikelines"],
                 "toImageButtonOptions": {"format": "png", "scale": 2}}
SEQUENCE_COLOURS = {"i0": "#6c757d", "i1": "#198754", "i2": "#fd7e14"}
CURSOR_COLOUR = "#0d6efd"
RESTRAINT_COLOUR = "#dc3545"
HEIGHT = 300


def _base(data: list[dict], *, height: int = HEIGHT, **layout: Any) -> dict:
    base = {"height": height, "margin": {"l": 55, "r": 15, "t": 40, "b": 45}, "font": FONT,
            "paper_bgcolor": "#ffffff", "plot_bgcolor": "#ffffff", "xaxis": dict(AXIS), "yaxis": dict(AXIS),
            "legend": {"orientation": "h", "yanchor": "bottom", "y": 1.02, "xanchor": "left", "x": 0.0}}
    for key, value in layout.items():
        base[key] = {**base[key], **value} if key in ("xaxis", "yaxis") and isinstance(value, dict) else value
    return {"data": data, "layout": base}


def clamp_position(analytics: Mapping[str, Any], position: Any) -> int:
    """A window index from the browser (anything may come back) inside the analytics' range."""
    count = len(analytics["start_ms"])
    try:
        value = int(position)
    except (TypeError, ValueError):
        value = int(analytics.get("event_position") or 0)
    return min(max(value, 0), count - 1)


def window_text(analytics: Mapping[str, Any], position: int) -> str:
    return f"{analytics['start_ms'][position]:.1f}\u2013{analytics['end_ms'][position]:.1f} ms"


def cursor_shape(analytics: Mapping[str, Any], position: int) -> dict:
    """The one-cycle window `position` as a shaded band on a time axis in ms (waveform, RMS, sequence)."""
    return {"type": "rect", "xref": "x", "yref": "paper", "x0": analytics["start_ms"][position],
            "x1": analytics["end_ms"][position], "y0": 0, "y1": 1, "fillcolor": CURSOR_COLOUR, "opacity": 0.1,
            "line": {"width": 1, "color": CURSOR_COLOUR}, "layer": "below"}


def _event_lines(analytics: Mapping[str, Any]) -> list[dict]:
    lines = []
    for key in ("inception_ms", "clearing_ms"):
        if analytics.get(key) is not None:
            lines.append({"type": "line", "xref": "x", "yref": "paper", "x0": analytics[key], "x1": analytics[key],
                          "y0": 0, "y1": 1, "line": {"color": "#6f42c1", "dash": "dash", "width": 1.2}})
    return lines


def spectrum_figure(analytics: Mapping[str, Any], position: int) -> dict:
    """Harmonics 2-15 of each phase in % of its fundamental at window `position`, with the typical
    2nd (inrush) and 5th (overexcitation) restraint thresholds marked over their bars."""
    orders = list(range(2, 16))
    traces = []
    for phase in PHASES:
        ratios = analytics["phases"][phase]["harmonic_ratios"][position]
        traces.append({"type": "bar", "name": f"Phase {phase}", "x": orders,
                       "y": [None if r is None else round(100.0 * r, 3) for r in ratios],
                       "marker": {"color": PHASE_COLOURS[phase]}, "hovertemplate": "H%{x}: %{y:.2f} %"})
    thresholds = analytics.get("restraint_thresholds") or {}
    shapes, annotations = [], []
    for order, key in ((2, "second_harmonic"), (5, "fifth_harmonic")):
        level = 100.0 * float(thresholds.get(key, 0.15 if order == 2 else 0.35))
        shapes.append({"type": "line", "xref": "x", "yref": "y", "x0": order - 0.45, "x1": order + 0.45,
                       "y0": level, "y1": level, "line": {"color": RESTRAINT_COLOUR, "dash": "dash", "width": 2}})
        annotations.append({"x": order, "y": level, "xref": "x", "yref": "y", "yanchor": "bottom", "showarrow": False,
                            "text": f"{'2nd' if order == 2 else '5th'} restraint {level:g} %",
                            "font": {"size": 10, "color": RESTRAINT_COLOUR}, "bgcolor": "rgba(255,255,255,0.85)"})
    return _base(traces, barmode="group", shapes=shapes, annotations=annotations,
                 title={"text": f"Harmonic spectrum, window {window_text(analytics, position)}", "x": 0.01,
                        "font": {"size": 13}},
                 xaxis={"title": {"text": "harmonic order (\u00d7 60 Hz)"}, "tickmode": "linear", "dtick": 1},
                 yaxis={"title": {"text": "ratio to fundamental (%)"}, "rangemode": "tozero"})


def phasor_figure(analytics: Mapping[str, Any], position: int) -> dict:
    """Fundamental phasors of the three phases (solid) and the sequence magnitudes at window `position`."""
    traces = []
    for phase in PHASES:
        data = analytics["phases"][phase]
        magnitude, angle = data["fundamental_rms"][position], data["fundamental_angle_deg"][position]
        traces.append({"type": "scatterpolar", "mode": "lines+markers", "name": f"I{phase.lower()}",
                       "r": [0, magnitude], "theta": [0, angle],
                       "line": {"color": PHASE_COLOURS[phase], "width": 3},
                       "marker": {"size": [0, 9], "color": PHASE_COLOURS[phase]},
                       "hovertemplate": f"I{phase.lower()}: %{{r:.4g}} kA rms \u2220 %{{theta:.1f}}\u00b0<extra></extra>"})
    sequence = analytics["sequence"]
    facts = ", ".join(f"I{key[1]} {sequence[key][position]:.3g}" for key in ("i1", "i2", "i0"))
    return _base(traces, height=HEIGHT + 20,
                 title={"text": f"Phasors (kA rms) at {window_text(analytics, position)}<br>"
                                f"<sup>sequence: {facts} kA rms</sup>", "x": 0.01, "font": {"size": 13}},
                 polar={"radialaxis": {"angle": 90, "tickangle": 90, "ticksuffix": " kA", "gridcolor": "#e9ecef",
                                       "tickfont": {"size": 10}},
                        "angularaxis": {"direction": "counterclockwise", "rotation": 0, "ticksuffix": "\u00b0",
                                        "gridcolor": "#e9ecef"}},
                 legend={"orientation": "v", "x": 1.0, "xanchor": "right", "y": 0.0, "yanchor": "bottom"},
                 margin={"l": 30, "r": 30, "t": 60, "b": 30})


def sequence_figure(analytics: Mapping[str, Any], position: int) -> dict:
    """|I0|, |I1|, |I2| of the fundamental over time (kA rms) and I2/I1 (%, right axis)."""
    x = analytics["end_ms"]
    sequence = analytics["sequence"]
    traces = [{"type": "scatter", "mode": "lines", "name": f"I{key[1]}", "x": x, "y": sequence[key],
               "line": {"color": SEQUENCE_COLOURS[key], "width": 2}, "hovertemplate": "%{y:.4g} kA"}
              for key in ("i1", "i2", "i0")]
    traces.append({"type": "scatter", "mode": "lines", "name": "I2/I1", "x": x, "yaxis": "y2",
                   "y": [None if r is None else round(100.0 * r, 3) for r in sequence["i2_i1"]],
                   "line": {"color": SEQUENCE_COLOURS["i2"], "dash": "dot", "width": 1.5},
                   "hovertemplate": "%{y:.1f} %"})
    return _base(traces, shapes=[cursor_shape(analytics, position), *_event_lines(analytics)],
                 margin={"l": 55, "r": 55, "t": 40, "b": 45},
                 title={"text": "Symmetrical components", "x": 0.01, "font": {"size": 13}},
                 hovermode="x unified",
                 xaxis={"title": {"text": "end of the one-cycle window (ms)"}},
                 yaxis={"title": {"text": "magnitude (kA rms)"}, "rangemode": "tozero"},
                 yaxis2={"title": {"text": "I2/I1 (%)"}, "overlaying": "y", "side": "right", "rangemode": "tozero",
                         "showgrid": False})


def rms_figure(analytics: Mapping[str, Any], position: int) -> dict:
    """True RMS over each one-cycle window, per phase (kA)."""
    x = analytics["end_ms"]
    traces = [{"type": "scatter", "mode": "lines", "name": f"Phase {phase}", "x": x,
               "y": analytics["phases"][phase]["rms"], "line": {"color": PHASE_COLOURS[phase], "width": 2},
               "hovertemplate": "%{y:.4g} kA"} for phase in PHASES]
    return _base(traces, shapes=[cursor_shape(analytics, position), *_event_lines(analytics)],
                 title={"text": "RMS per cycle", "x": 0.01, "font": {"size": 13}}, hovermode="x unified",
                 xaxis={"title": {"text": "end of the one-cycle window (ms)"}},
                 yaxis={"title": {"text": "RMS over one cycle (kA)"}, "rangemode": "tozero"})


def _fmt(value: Any, unit: str = "", percent: bool = False, digits: int = 3) -> str:
    if value is None:
        return "\u2014"
    if percent:
        return f"{100.0 * float(value):.1f} %"
    return f"{float(value):.{digits}g}{(' ' + unit) if unit else ''}"


def key_figures_rows(analytics: Mapping[str, Any]) -> list[tuple[str, str]]:
    """(figure, value) pairs of the key-figures table, as text."""
    key = analytics["key_figures"]
    thresholds = analytics.get("restraint_thresholds") or {}

    def versus(ratio: Any, threshold: float) -> str:
        if ratio is None:
            return "\u2014"
        side = "above" if ratio >= threshold else "below"
        return f"{_fmt(ratio, percent=True)} ({side} {threshold * 100:g} %)"

    dc_ratio = f", {_fmt(key['dc_offset_ratio'], percent=True)} of the fundamental peak" \
        if key.get("dc_offset_ratio") is not None else ""
    return [
        ("Peak", f"{_fmt(key['peak_ka'], 'kA')} (phase {key['peak_phase']}, {_fmt(key['peak_ms'], 'ms')})"),
        ("DC offset", f"{_fmt(key['dc_offset_ka'], 'kA')} (phase {key['dc_phase']}{dc_ratio})"),
        ("DC time constant \u03c4", _fmt(key["tau_ms"], "ms")),
        ("2nd harmonic / fundamental", versus(key["second_harmonic_ratio"], thresholds.get("second_harmonic", 0.15))),
        ("5th harmonic / fundamental", versus(key["fifth_harmonic_ratio"], thresholds.get("fifth_harmonic", 0.35))),
        ("THD (to the 15th)", _fmt(key["thd"], percent=True)),
        ("I2/I1", _fmt(key["i2_i1"], percent=True)),
        ("I0/I1", _fmt(key["i0_i1"], percent=True)),
        ("Inception", _fmt(key["inception_ms"], "ms") if key["inception_ms"] is not None
         else "not in the signal (none, or under way from the start)"),
        ("Clearing", _fmt(key["clearing_ms"], "ms") if key["clearing_ms"] is not None
         else "not within the window"),
        ("Read at window", f"{key['at_ms'][0]:.1f}\u2013{key['at_ms'][1]:.1f} ms "
         + ("(first full cycle after inception)" if key["inception_ms"] is not None
            else "(the record's first cycle: no inception found)")),
    ]


def key_figures_table(analytics: Mapping[str, Any] | None) -> Any:
    if not analytics:
        return html.Div("No waveform: nothing to analyse.", className="text-muted small")
    rows = [html.Tr([html.Th(name, scope="row", className="fw-normal text-muted"), html.Td(value)])
            for name, value in key_figures_rows(analytics)]
    return dbc.Table(html.Tbody(rows), size="sm", className="small mb-0", borderless=True)


def panels_at(analytics: Mapping[str, Any] | None, position: Any) -> dict[str, Any]:
    """Every figure of the card at window `position` (keys spectrum, phasors, sequence, rms, text)."""
    if not analytics:
        blank = empty_figure("No analysis yet", height=HEIGHT)
        return {"spectrum": blank, "phasors": blank, "sequence": blank, "rms": blank, "text": ""}
    k = clamp_position(analytics, position)
    return {"spectrum": spectrum_figure(analytics, k), "phasors": phasor_figure(analytics, k),
            "sequence": sequence_figure(analytics, k), "rms": rms_figure(analytics, k),
            "text": f"One-cycle window {window_text(analytics, k)} (the cursor on the waveform)"}


#: the figures of a card, in the order "Figures (PNG)" downloads them
FIGURE_SUFFIXES = (ids.ANALYTICS_PHASORS, ids.ANALYTICS_SPECTRUM, ids.ANALYTICS_SEQUENCE, ids.ANALYTICS_RMS)


def _graph(prefix: str, suffix: str, figure: dict, name: str, modebar: bool) -> dcc.Graph:
    config = {**EXPORT_CONFIG, "toImageButtonOptions": {**EXPORT_CONFIG["toImageButtonOptions"], "filename": name}}
    if not modebar:
        config["displayModeBar"] = False
    return dcc.Graph(id=ids.analytics_id(prefix, suffix), figure=figure, config=config)


def analytics_card(prefix: str, analytics: Mapping[str, Any] | None = None, *, modebar: bool = True) -> dbc.Card:
    """The card: a window slider, the phasor / spectrum / sequence / RMS figures and the key figures.

    `prefix` is the page's (ids.ANALYZE_ANALYTICS or ids.ANALYSIS_ANALYTICS); with `analytics`
    the card is drawn at its event window, without it the callbacks fill it. Without `modebar`
    (the Analyze page keeps its charts free of toolbars) the "Figures (PNG)" button is the export."""
    position = int(analytics.get("event_position") or 0) if analytics else 0
    panels = panels_at(analytics, position)
    count = len(analytics["start_ms"]) if analytics else 1
    # a native range input: labelled, keyboard-operable (arrow keys step one window of 1 ms)
    slider = dcc.Input(id=ids.analytics_id(prefix, ids.ANALYTICS_SLIDER), type="range", min=0,
                       max=max(count - 1, 0), step=1, value=position, className="form-range", debounce=False)
    graphs = dbc.Row([
        dbc.Col(_graph(prefix, ids.ANALYTICS_PHASORS, panels["phasors"], "phasors", modebar), lg=6),
        dbc.Col(_graph(prefix, ids.ANALYTICS_SPECTRUM, panels["spectrum"], "harmonic-spectrum", modebar), lg=6),
        dbc.Col(_graph(prefix, ids.ANALYTICS_SEQUENCE, panels["sequence"], "sequence-components", modebar), lg=6),
        dbc.Col(_graph(prefix, ids.ANALYTICS_RMS, panels["rms"], "rms-per-cycle", modebar), lg=6),
    ], className="g-2")
    return dbc.Card(
        [
            html.Div([section_title("Signal analytics"),
                      html.Div([dbc.Button("Figures (PNG)", id=ids.analytics_id(prefix, ids.ANALYTICS_PNG_BUTTON),
                                           size="sm", color="secondary", outline=True, className="me-2"),
                                dcc.Store(id=ids.analytics_id(prefix, ids.ANALYTICS_PNG_DONE)),
                                dbc.Button("Numbers (CSV)", id=ids.analytics_id(prefix, ids.ANALYTICS_CSV_BUTTON),
                                           size="sm", color="secondary", outline=True),
                                dcc.Download(id=ids.analytics_id(prefix, ids.ANALYTICS_CSV))])],
                     className="d-flex justify-content-between"),
            html.Label("One-cycle window (cursor on the waveform)", htmlFor=ids.analytics_id(prefix, ids.ANALYTICS_SLIDER),
                       className="small text-muted"),
            slider,
            html.Div(panels["text"], id=ids.analytics_id(prefix, ids.ANALYTICS_CYCLE_TEXT), className="small mb-2"),
            dbc.Row([
                dbc.Col(graphs, xl=9),
                dbc.Col([html.Div("Key figures", className="small fw-bold mb-1"),
                         html.Div(key_figures_table(analytics), id=ids.analytics_id(prefix, ids.ANALYTICS_TABLE))],
                        xl=3),
            ], className="g-3"),
            html.Div("Least-squares one-cycle DFT with exact 60 Hz kernels, a window every 1 ms; magnitudes RMS, "
                     "angles at the record's first sample; restraint thresholds are typical settings "
                     "(IEEE C37.91; SEL-387 defaults 15 % and 35 %).", className="text-muted small mt-2"),
        ],
        body=True, className="mb-3 shadow-sm", id=prefix, style={} if analytics else {"display": "none"},
    )


def with_cursor(figure: dict, analytics: Mapping[str, Any] | None, position: Any = None) -> dict:
    """A waveform figure with the analytics' window `position` (default: the event's) as a band."""
    if not analytics or "layout" not in figure:
        return figure
    k = clamp_position(analytics, analytics.get("event_position") if position is None else position)
    layout = {**figure["layout"], "shapes": [*(figure["layout"].get("shapes") or []), cursor_shape(analytics, k)]}
    return {**figure, "layout": layout}


# --- comparison of two to four analyses ("/compare") ------------------------------------------------
#: one colour per compared analysis (colour-blind safe, Okabe-Ito)
COMPARE_COLOURS = ("#0072B2", "#D55E00", "#009E73", "#CC79A7")


def compare_figure(entries: list[Mapping[str, Any]], *, height: int = 620) -> dict:
    """The waveforms of 2-4 analyses overlaid, one row per phase, time measured from each one's
    inception (`entries`: {"analysis_id", "title", "waveform" (3 x N), "time_ms" (N), "shift_ms"})."""
    traces = []
    gap = 0.04
    row_height = (1.0 - 2 * gap) / 3
    layout: dict[str, Any] = {}
    for row, phase in enumerate(PHASES):
        axis = "" if row == 0 else str(row + 1)
        top = 1.0 - row * (row_height + gap)
        layout[f"yaxis{axis}"] = {**AXIS, "domain": [top - row_height, top],
                                  "title": {"text": f"phase {phase} (kA)"}, "zeroline": True}
        layout[f"xaxis{axis}"] = {**AXIS, "anchor": f"y{axis}", "matches": "x" if row else None,
                                  "showticklabels": row == 2,
                                  "title": {"text": "time from inception (ms)"} if row == 2 else None}
        for index, entry in enumerate(entries):
            shift = float(entry.get("shift_ms") or 0.0)
            traces.append({
                "type": "scatter", "mode": "lines", "xaxis": f"x{axis}", "yaxis": f"y{axis}",
                "x": [round(t - shift, 2) for t in entry["time_ms"]], "y": list(entry["waveform"][row]),
                "name": entry["title"], "legendgroup": str(entry["analysis_id"]), "showlegend": row == 0,
                "line": {"color": COMPARE_COLOURS[index % len(COMPARE_COLOURS)], "width": 1.5},
                "hovertemplate": f"#{entry['analysis_id']} {phase}: %{{y:.4g}} kA<extra></extra>",
            })
    for key in list(layout):
        layout[key] = {name: value for name, value in layout[key].items() if value is not None}
    shapes = [{"type": "line", "xref": f"x{'' if row == 0 else row + 1}", "yref": f"y{'' if row == 0 else row + 1} domain",
               "x0": 0, "x1": 0, "y0": 0, "y1": 1, "line": {"color": "#6f42c1", "dash": "dash", "width": 1}}
              for row in range(3)]
    return {"data": traces, "layout": {
        "height": height, "margin": {"l": 60, "r": 15, "t": 30, "b": 45}, "font": FONT, "paper_bgcolor": "#ffffff",
        "plot_bgcolor": "#ffffff", "hovermode": "x unified", "shapes": shapes,
        "legend": {"orientation": "h", "yanchor": "bottom", "y": 1.01, "xanchor": "left", "x": 0.0}, **layout}}


def compare_rows(entries: list[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """One row of key figures per analysis (the table and its CSV)."""
    rows = []
    for entry in entries:
        key = entry["analytics"]["key_figures"]
        rows.append({"analysis_id": entry["analysis_id"], "label": entry["label"], "confidence": entry["confidence"],
                     **{name: key.get(name) for name in (
                         "inception_ms", "clearing_ms", "peak_ka", "dc_offset_ka", "tau_ms", "second_harmonic_ratio",
                         "fifth_harmonic_ratio", "thd", "i2_i1", "i0_i1")}})
    return rows


def compare_table(entries: list[Mapping[str, Any]], href_for: Any) -> dbc.Table:
    """Labels, confidences and key figures side by side, each row linked to its analysis."""
    header = ["", "Analysis", "Event", "Confidence", "Inception", "Clearing", "Peak", "DC offset", "\u03c4",
              "2nd / fund.", "5th / fund.", "THD", "I2/I1"]
    body = []
    for index, (entry, row) in enumerate(zip(entries, compare_rows(entries), strict=True)):
        colour = COMPARE_COLOURS[index % len(COMPARE_COLOURS)]
        body.append(html.Tr([
            html.Td(html.Span(className="legend-line", style={"borderColor": colour, "backgroundColor": colour})),
            html.Td(dcc.Link(f"#{row['analysis_id']}", href=href_for(row["analysis_id"]))),
            html.Td(entry["title_label"]), html.Td(_fmt(row["confidence"], percent=True)),
            html.Td(_fmt(row["inception_ms"], "ms") if entry.get("inception_source") == "signal"
                    else f"{_fmt(entry.get('shift_ms'), 'ms')} ({entry.get('inception_source')})"),
            html.Td(_fmt(row["clearing_ms"], "ms")), html.Td(_fmt(row["peak_ka"], "kA")),
            html.Td(_fmt(row["dc_offset_ka"], "kA")), html.Td(_fmt(row["tau_ms"], "ms")),
            html.Td(_fmt(row["second_harmonic_ratio"], percent=True)),
            html.Td(_fmt(row["fifth_harmonic_ratio"], percent=True)),
            html.Td(_fmt(row["thd"], percent=True)), html.Td(_fmt(row["i2_i1"], percent=True)),
        ]))
    return dbc.Table([html.Thead(html.Tr([html.Th(text, scope="col") for text in header])), html.Tbody(body)],
                     size="sm", responsive=True, className="small mb-0", id=ids.COMPARE_TABLE)


def compare_with_form(analysis_id: int, href: str) -> html.Div:
    """'Compare with ...' on an analysis page: ids typed in, a link to the comparison."""
    return html.Div([
        html.Label("Compare with analyses #", htmlFor=ids.ANALYSIS_COMPARE_WITH, className="small text-muted me-1"),
        dcc.Input(id=ids.ANALYSIS_COMPARE_WITH, type="text", placeholder="e.g. 3, 7", debounce=False,
                  className="form-control form-control-sm d-inline-block me-2", style={"width": "9rem"}),
        dcc.Link("Compare \u2192", id=ids.ANALYSIS_COMPARE_LINK, href=href, className="small"),
    ], className="d-flex align-items-center mb-2", **{"data-analysis-id": str(analysis_id)})
