"""Plotly figure builders: pure functions from plain data to figure dicts, no I/O.

Every builder accepts JSON-shaped input (lists, dicts) so that the same function draws a fresh
analysis, a stored one from the history and the model card. Figures are plain dicts in Plotly's
JSON schema, not `go.Figure`: building and validating graph objects cost ~100 ms per analysis,
dicts cost well under 1 ms, and `dcc.Graph` takes either.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np

from services.labels import LABELS, pretty_label
from services.waveform import PHASES, SAMPLES_PER_CYCLE, time_axis_ms

#: phase colours of the usual IEC convention (brown, black, grey would vanish on white; these read)
PHASE_COLOURS: dict[str, str] = {"A": "#d62728", "B": "#1f1f1f", "C": "#1f77b4"}
ACCENT = "#0d6efd"
MUTED = "#adb5bd"
FONT = dict(family="system-ui, -apple-system, 'Segoe UI', Roboto, sans-serif", size=12)


AXIS = {"gridcolor": "#e9ecef", "linecolor": "#ced4da", "zerolinecolor": "#dee2e6", "automargin": True}


def _figure(data: list[dict], *, height: int, title: str | None = None, **layout: object) -> dict:
    """A figure dict with the shared look: white background, light grid, system font."""
    base = {
        "height": height,
        "margin": {"l": 50, "r": 15, "t": 40 if title else 15, "b": 40},
        "font": FONT,
        "paper_bgcolor": "#ffffff",
        "plot_bgcolor": "#ffffff",
        "hoverlabel": {"font": {"size": 11}},
        "xaxis": dict(AXIS),
        "yaxis": dict(AXIS),
    }
    if title:
        base["title"] = {"text": title, "x": 0.01, "font": {"size": 14}}
    for key, value in layout.items():
        if key in ("xaxis", "yaxis") and isinstance(value, dict):
            base[key] = {**base[key], **value}
        else:
            base[key] = value
    return {"data": data, "layout": base}


def empty_figure(message: str, *, height: int = 300) -> dict:
    """A blank figure that says why there is nothing to draw."""
    return _figure(
        [], height=height,
        xaxis={"visible": False}, yaxis={"visible": False},
        annotations=[{"text": message, "showarrow": False, "x": 0.5, "y": 0.5, "xref": "paper", "yref": "paper",
                      "font": {"size": 14, "color": "#6c757d"}}],
    )


def rolling_rms(waveform: np.ndarray, window: int | None = None) -> np.ndarray:
    """One-cycle sliding RMS of each phase, same length as the input (the protection view)."""
    window = int(round(window or SAMPLES_PER_CYCLE))
    squared = np.asarray(waveform, dtype=np.float64) ** 2
    cumulative = np.cumsum(np.pad(squared, ((0, 0), (1, 0))), axis=1)
    ends = np.arange(1, squared.shape[1] + 1)
    starts = np.maximum(0, ends - window)
    return np.sqrt((cumulative[:, ends] - cumulative[:, starts]) / (ends - starts))


def _rounded(values: np.ndarray) -> list[float]:
    """Values for the browser: 5 significant digits keep the payload small and exact enough."""
    return [float(f"{v:.5g}") for v in values]


def waveform_figure(
    waveform: Sequence[Sequence[float]] | np.ndarray,
    *,
    view: str = "raw",
    inception_ms: float | None = None,
    explanation: Sequence[Sequence[float]] = (),
    height: int = 330,
    title: str | None = None,
) -> dict:
    """Three-phase differential currents over time in ms.

    `view` "rms" shows the one-cycle sliding RMS instead of the instantaneous values. The estimated
    event inception is a dashed vertical line; the spans that drove the model's decision are shaded.
    """
    data = np.asarray(waveform, dtype=np.float64)
    time_ms = [round(t, 2) for t in time_axis_ms().tolist()]
    values = rolling_rms(data) if view == "rms" else data
    traces = [
        {"type": "scatter", "x": time_ms, "y": _rounded(values[index]), "name": f"Phase {phase}", "mode": "lines",
         "line": {"color": PHASE_COLOURS[phase], "width": 1.6}, "hovertemplate": "%{y:.4g}"}
        for index, phase in enumerate(PHASES)
    ]
    shapes, annotations = [], []
    for number, span in enumerate(explanation or ()):
        start, end = float(span[0]), float(span[1])
        shapes.append({"type": "rect", "xref": "x", "yref": "paper", "x0": start, "x1": end, "y0": 0, "y1": 1,
                       "fillcolor": "#ffc107", "opacity": 0.18, "line": {"width": 0}, "layer": "below"})
        if number == 0:  # inside the plot at the bottom: clear of the legend and the inception label
            annotations.append({"x": start, "y": 0, "xref": "x", "yref": "paper", "text": "decision span",
                                "showarrow": False, "xanchor": "left", "yanchor": "bottom",
                                "font": {"size": 11, "color": "#7a5c00"}, "bgcolor": "rgba(255,255,255,0.8)"})
    if inception_ms is not None:
        x = float(inception_ms)
        shapes.append({"type": "line", "xref": "x", "yref": "paper", "x0": x, "x1": x, "y0": 0, "y1": 1,
                       "line": {"color": "#6f42c1", "dash": "dash", "width": 1.5}})
        annotations.append({"x": x, "y": 1, "xref": "x", "yref": "paper", "text": f"inception {x:.1f} ms",
                            "showarrow": False, "xanchor": "left", "yanchor": "top",
                            "font": {"size": 11, "color": "#6f42c1"}, "bgcolor": "rgba(255,255,255,0.8)"})
    return _figure(
        traces, height=height, title=title,
        hovermode="x unified",
        legend={"orientation": "h", "yanchor": "bottom", "y": 1.02, "xanchor": "left", "x": 0.0},
        uirevision=view,
        shapes=shapes,
        annotations=annotations,
        xaxis={"title": {"text": "time (ms)"}, "range": [0, time_ms[-1]], "showspikes": True},
        # short titles: a long one does not fit along the 270 px of the y axis and is clipped
        yaxis={"title": {"text": "1-cycle RMS (kA)" if view == "rms" else "current (kA)"}, "zeroline": True},
    )


def _short_label(label: str) -> str:
    """A readable label for axes; unknown strings are passed through."""
    try:
        return pretty_label(label)
    except ValueError:
        return label


def top5_figure(top5: Sequence[Sequence], *, height: int = 250) -> dict:
    """Horizontal bars of the five most likely labels, the winner on top and highlighted."""
    if not top5:
        return empty_figure("No prediction yet", height=height)
    names = [_short_label(str(item[0])).replace(" - ", "<br>") for item in top5][::-1]
    probabilities = [float(item[1]) for item in top5][::-1]
    colours = [MUTED] * (len(names) - 1) + [ACCENT]
    bar = {"type": "bar", "x": probabilities, "y": names, "orientation": "h", "marker": {"color": colours},
           "text": [f"{p:.1%}" for p in probabilities], "textposition": "auto",
           "hovertemplate": "%{y}: %{x:.2%}<extra></extra>", "customdata": [str(item[0]) for item in top5][::-1]}
    return _figure([bar], height=height, margin={"l": 10, "r": 24, "t": 10, "b": 30},
                   xaxis={"range": [0, 1], "tickformat": ".0%", "dtick": 0.5},
                   yaxis={"automargin": True, "tickfont": {"size": 11}})


def marginals_figure(
    marginals: Mapping[str, Mapping[str, float]], *, height: int = 260, top: int = 4
) -> dict:
    """Grouped bars of the category / equipment / kind probabilities (each a sum over labels)."""
    panels = [(name, values) for name, values in marginals.items() if values]
    if not panels:
        return empty_figure("No prediction yet", height=height)
    palette = {"category": "#198754", "equipment": "#0d6efd", "kind": "#6f42c1"}
    traces = []
    for name, values in panels:
        ranked = sorted(values.items(), key=lambda item: item[1], reverse=True)[:top]
        traces.append({
            "type": "bar", "orientation": "h", "name": name, "marker": {"color": palette.get(name, ACCENT)},
            "x": [float(p) for _, p in ranked],
            "y": [f"{name}: {key.replace('_', ' ')}" for key, _ in ranked],
            "text": [f"{float(p):.1%}" for _, p in ranked], "textposition": "auto",
            "hovertemplate": "%{y}: %{x:.2%}<extra></extra>",
        })
    return _figure(traces, height=height, margin={"l": 10, "r": 24, "t": 10, "b": 30}, showlegend=False,
                   bargap=0.25, xaxis={"range": [0, 1], "tickformat": ".0%", "dtick": 0.5},
                   yaxis={"automargin": True, "autorange": "reversed"})


def confusion_figure(
    matrix: Sequence[Sequence[float]], labels: Sequence[str] | None = None, *, height: int = 640
) -> dict:
    """Row-normalised confusion matrix heatmap (true label rows, predicted label columns).

    Lean for the browser: the axes are categories named "id · readable label" (sent once each, ticked
    with the bare ids), so the hover template names both labels from %{y} and %{x};
    each cell carries only its share (z) and its count (customdata), no per-cell hover string.
    """
    counts = np.asarray(matrix, dtype=np.float64) if matrix is not None and len(matrix) else np.zeros((0, 0))
    if counts.ndim != 2 or counts.size == 0:
        return empty_figure("No confusion matrix in the model card", height=height)
    labels = list(labels or LABELS[: counts.shape[0]])
    if len(labels) < counts.shape[0]:
        labels += [str(i) for i in range(len(labels), counts.shape[0])]
    names = [f"{i} · {_short_label(str(labels[i]))}" for i in range(counts.shape[0])]
    positions = list(range(counts.shape[0]))  # a category axis also takes category positions as tick values
    ticks = {"tickmode": "array", "tickvals": positions, "ticktext": [str(i) for i in positions]}
    totals = counts.sum(axis=1, keepdims=True)
    share = np.divide(counts, totals, out=np.zeros_like(counts), where=totals > 0)
    heatmap = {"type": "heatmap", "z": np.round(share, 4).tolist(), "x": names, "y": names,
               "customdata": counts.astype(np.int64).tolist(),
               "hovertemplate": "true %{y}<br>predicted %{x}<br>%{customdata:,} windows, %{z:.1%} of the row"
                                "<extra></extra>",
               "colorscale": [[0.0, "#f8f9fa"], [0.02, "#dbe9f6"], [0.3, "#6baed6"], [1.0, "#08306b"]],
               "zmin": 0, "zmax": 1, "colorbar": {"title": {"text": "share"}, "tickformat": ".0%"}}
    return _figure([heatmap], height=height,
                   xaxis={"title": {"text": "predicted label id"}, "tickfont": {"size": 9}, "gridcolor": "#ffffff",
                          **ticks},
                   yaxis={"title": {"text": "true label id"}, "tickfont": {"size": 9}, "autorange": "reversed",
                          "gridcolor": "#ffffff", **ticks})


def recall_figure(per_label_recall: Mapping[str, float], *, height: int = 640) -> dict:
    """Per-label recall bars, worst first so the weak classes stand out."""
    if not per_label_recall:
        return empty_figure("No per-label recall in the model card", height=height)
    ranked = sorted(per_label_recall.items(), key=lambda item: item[1])
    colours = ["#dc3545" if v < 0.8 else "#ffc107" if v < 0.95 else "#198754" for _, v in ranked]
    bar = {"type": "bar", "orientation": "h", "x": [float(v) for _, v in ranked],
           "y": [_short_label(k) for k, _ in ranked], "marker": {"color": colours},
           "hovertemplate": "%{y}: %{x:.1%}<extra></extra>"}
    return _figure([bar], height=height, margin={"l": 10, "r": 24, "t": 10, "b": 40},
                   xaxis={"range": [0, 1.0], "tickformat": ".0%", "title": {"text": "recall on the test set"}},
                   yaxis={"automargin": True, "tickfont": {"size": 9}, "autorange": "reversed"})


#: the two curves of a reliability diagram: card key, legend name, colour, marker (both stay visible
#: where they coincide, as they do for a model whose temperature is close to 1)
RELIABILITY_CURVES = (("before", "uncalibrated (T = 1)", "#dc3545", {"symbol": "circle-open", "size": 11}),
                      ("after", "calibrated (T = {t:.3g})", "#198754", {"symbol": "circle", "size": 6}))


def _bin_series(curve: object, bins: int) -> list[tuple[int, float, float, int]] | None:
    """(bin, mean confidence, accuracy, count) of the non-empty bins, or None if the curve is malformed."""
    if not isinstance(curve, Mapping):
        return None
    columns = [curve.get(key) for key in ("confidence", "accuracy", "count")]
    if not all(isinstance(column, Sequence) and len(column) == bins for column in columns):
        return None
    try:
        return [(index, float(c), float(a), int(n)) for index, (c, a, n) in enumerate(zip(*columns, strict=True))
                if n and c is not None and a is not None]
    except (TypeError, ValueError):
        return None


def reliability_figure(reliability: Mapping, *, height: int = 440) -> dict:
    """Reliability diagram, uncalibrated vs calibrated: accuracy against mean confidence per bin
    (above, with the diagonal of perfect calibration) and the windows per bin (below, log scale:
    a good model puts nearly every window in the top bin, so the few below it need the log to show).

    `reliability` is the structure of `services.training.metrics.calibration_report` (model card,
    "evaluation" or "test" -> "reliability"): "edges", "temperature" and per-bin "count",
    "confidence" and "accuracy" lists under "before" and "after". Empty bins are left out.
    """
    edges = [float(edge) for edge in reliability.get("edges") or []]
    bins = len(edges) - 1
    temperature = reliability.get("temperature")
    traces = [{"type": "scatter", "x": [0, 1], "y": [0, 1], "mode": "lines", "name": "perfectly calibrated",
               "line": {"color": MUTED, "dash": "dot"}, "hoverinfo": "skip"}]
    bar_width = 0.42 / bins if bins > 0 else 0.0
    largest_count = 1
    for side, (key, name, colour, marker) in enumerate(RELIABILITY_CURVES):
        series = _bin_series(reliability.get(key), bins) if bins > 0 else None
        if not series:
            continue
        curve = reliability[key]
        if key == "after":
            name = name.format(t=float(temperature)) if temperature is not None else "calibrated"
        if curve.get("ece") is not None:
            name += f", ECE {float(curve['ece']):.4f}"
        ranges = [[round(edges[i], 3), round(edges[i + 1], 3)] for i, *_ in series]
        largest_count = max(largest_count, *(n for *_, n in series))
        traces.append({
            "type": "scatter", "mode": "lines+markers", "name": name, "legendgroup": key,
            "x": [round(c, 5) for _, c, _, _ in series], "y": [round(a, 5) for _, _, a, _ in series],
            "customdata": [[*span, n] for span, (*_, n) in zip(ranges, series, strict=True)],
            "line": {"color": colour, "width": 2},
            "marker": {**marker, "color": colour, "line": {"width": 2, "color": colour}},
            "hovertemplate": "confidence bin %{customdata[0]:.3f}-%{customdata[1]:.3f}<br>mean confidence %{x:.4f}"
                             "<br>accuracy %{y:.4f}<br>%{customdata[2]:,} windows<extra>" + key + "</extra>",
        })
        traces.append({
            "type": "bar", "name": name, "legendgroup": key, "showlegend": False, "xaxis": "x2", "yaxis": "y2",
            "x": [round((edges[i] + edges[i + 1]) / 2, 5) for i, *_ in series], "y": [n for *_, n in series],
            "width": bar_width, "offset": (side - 1) * bar_width,  # side by side around the bin centre
            "customdata": ranges, "marker": {"color": colour, "opacity": 0.75},
            "hovertemplate": "confidence bin %{customdata[0]:.3f}-%{customdata[1]:.3f}<br>%{y:,} windows"
                             "<extra>" + key + "</extra>",
        })
    if len(traces) == 1:
        return empty_figure("No per-bin calibration data in the model card", height=height)
    return _figure(
        traces, height=height, barmode="overlay", legend={"orientation": "h", "y": -0.16},
        xaxis={"range": [0, 1.0], "domain": [0, 1], "anchor": "y", "showticklabels": False},
        yaxis={"range": [0, 1.04], "domain": [0.34, 1], "title": {"text": "observed accuracy"}},
        xaxis2={**AXIS, "range": [0, 1.0], "domain": [0, 1], "anchor": "y2", "matches": "x",
                "title": {"text": "stated confidence (top-1 probability)"}},
        yaxis2={**AXIS, "type": "log", "dtick": 1, "domain": [0, 0.26], "anchor": "x2", "title": {"text": "windows"},
                "range": [-0.3, math.log10(largest_count) + 0.15]},  # from below 1, so a bin of one window shows
    )


def bar_figure(
    names: Sequence[str], values: Sequence[float], *, title: str, unit: str, limit: float | None = None,
    height: int = 260, warn_above: float | None = None, warn_below: float | None = None,
    y_range: Sequence[float] | None = None,
) -> dict:
    """Simple vertical bars (bus voltages, line loadings) with an optional limit line."""
    if not names:
        return empty_figure(f"No {title.lower()}", height=height)
    colours = []
    for value in values:
        outside = (warn_above is not None and value > warn_above) or (
            warn_below is not None and value < warn_below
        )
        colours.append("#dc3545" if outside else "#198754")
    bar = {"type": "bar", "x": list(names), "y": [float(v) for v in values], "marker": {"color": colours},
           "hovertemplate": "%{x}: %{y:.3f} " + unit + "<extra></extra>"}
    shapes = []
    if limit is not None:
        shapes.append({"type": "line", "xref": "paper", "yref": "y", "x0": 0, "x1": 1, "y0": limit, "y1": limit,
                       "line": {"color": "#dc3545", "dash": "dash", "width": 1}})
    yaxis: dict = {"title": {"text": unit}}
    if y_range is not None:
        yaxis["range"] = [float(y_range[0]), float(y_range[1])]
    return _figure([bar], height=height, title=title, shapes=shapes, yaxis=yaxis, xaxis={"tickangle": -35},
                   margin={"l": 50, "r": 15, "t": 40, "b": 90})


def calibration_summary_figure(facts: Mapping[str, float], *, height: int = 360) -> dict:
    """ECE and NLL before and after temperature scaling (one panel each, own scales).

    Used when the model card has no reliability bins (a card written before they existed).
    """
    pairs = []
    for metric, title in (("ece", "Expected calibration error"), ("nll", "Negative log-likelihood")):
        before = next((v for k, v in facts.items() if metric in k and "before" in k), None)
        after = next((v for k, v in facts.items() if metric in k and "after" in k), None)
        if before is not None and after is not None:
            pairs.append((title, float(before), float(after)))
    if not pairs:
        return empty_figure("No calibration data in the model card", height=height)
    traces, layout = [], {}
    width = 1.0 / len(pairs)
    for index, (title, before, after) in enumerate(pairs):
        suffix = "" if index == 0 else str(index + 1)
        traces.append({"type": "bar", "x": ["before", "after"], "y": [before, after], "name": title,
                       "xaxis": f"x{suffix}", "yaxis": f"y{suffix}", "showlegend": False,
                       "marker": {"color": ["#dc3545", "#198754"]}, "text": [f"{before:.4f}", f"{after:.4f}"],
                       "textposition": "auto", "hovertemplate": "%{x} temperature scaling: %{y:.4f}<extra></extra>"})
        layout[f"xaxis{suffix}"] = {**AXIS, "domain": [index * width + 0.04, (index + 1) * width - 0.04],
                                    "anchor": f"y{suffix}", "title": {"text": title}}
        layout[f"yaxis{suffix}"] = {**AXIS, "anchor": f"x{suffix}", "rangemode": "tozero"}
    layout["yaxis"]["title"] = {"text": "lower is better"}
    return _figure(traces, height=height, **layout)


def training_curve_figure(history: Sequence[Mapping[str, float]], *, height: int = 300) -> dict:
    """Accuracy per epoch on the training and validation splits (losses on a second axis)."""
    epochs = [row.get("epoch") for row in history if isinstance(row, Mapping) and row.get("epoch") is not None]
    if not epochs:
        return empty_figure("No training history in the model card", height=height)
    traces = []
    series = (("train_accuracy", "training accuracy", "#0d6efd", "solid", "y"),
              ("validation_accuracy", "validation accuracy", "#198754", "solid", "y"),
              ("train_loss", "training loss", "#0d6efd", "dot", "y2"),
              ("validation_loss", "validation loss", "#198754", "dot", "y2"))
    for key, name, colour, dash, axis in series:
        values = [row.get(key) for row in history if isinstance(row, Mapping) and row.get("epoch") is not None]
        if any(v is not None for v in values):
            traces.append({"type": "scatter", "mode": "lines+markers", "x": epochs, "y": values, "name": name,
                           "yaxis": axis, "line": {"color": colour, "dash": dash, "width": 2}, "marker": {"size": 4}})
    return _figure(traces, height=height, legend={"orientation": "h", "y": -0.25},
                   margin={"l": 50, "r": 55, "t": 15, "b": 40},  # room for the loss axis on the right
                   xaxis={"title": {"text": "epoch"}},
                   yaxis={"title": {"text": "accuracy"}, "range": [0, 1.02], "tickformat": ".0%"},
                   yaxis2={"title": {"text": "loss"}, "overlaying": "y", "side": "right", "showgrid": False,
                           "rangemode": "tozero", "automargin": True})
