"""Plotly figure builders: pure functions from plain data to `go.Figure`, no I/O.

Every builder accepts JSON-shaped input (lists, dicts) so that the same function draws a fresh
analysis, a stored one from the history and the model card.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import plotly.graph_objects as go

from services.labels import LABELS, pretty_label
from services.waveform import PHASES, SAMPLES_PER_CYCLE, time_axis_ms

#: phase colours of the usual IEC convention (brown, black, grey would vanish on white; these read)
PHASE_COLOURS: dict[str, str] = {"A": "#d62728", "B": "#1f1f1f", "C": "#1f77b4"}
ACCENT = "#0d6efd"
MUTED = "#adb5bd"
FONT = dict(family="system-ui, -apple-system, 'Segoe UI', Roboto, sans-serif", size=12)


def _base_layout(fig: go.Figure, *, height: int, title: str | None = None) -> go.Figure:
    """Shared look: white template, tight margins, system font."""
    fig.update_layout(
        template="plotly_white",
        height=height,
        margin=dict(l=50, r=15, t=40 if title else 15, b=40),
        font=FONT,
        title=dict(text=title, x=0.01, font=dict(size=14)) if title else None,
    )
    return fig


def empty_figure(message: str, *, height: int = 300) -> go.Figure:
    """A blank figure that says why there is nothing to draw."""
    fig = go.Figure()
    fig.add_annotation(
        text=message, showarrow=False, x=0.5, y=0.5, xref="paper", yref="paper",
        font=dict(size=14, color="#6c757d"),
    )
    fig.update_xaxes(visible=False)
    fig.update_yaxes(visible=False)
    return _base_layout(fig, height=height)


def rolling_rms(waveform: np.ndarray, window: int | None = None) -> np.ndarray:
    """One-cycle sliding RMS of each phase, same length as the input (the protection view)."""
    window = int(round(window or SAMPLES_PER_CYCLE))
    squared = np.asarray(waveform, dtype=np.float64) ** 2
    kernel = np.ones(window) / window
    padded = np.pad(squared, ((0, 0), (window - 1, 0)), mode="edge")
    rms = np.sqrt(np.stack([np.convolve(row, kernel, mode="valid") for row in padded]))
    return rms


def waveform_figure(
    waveform: Sequence[Sequence[float]] | np.ndarray,
    *,
    view: str = "raw",
    inception_ms: float | None = None,
    explanation: Sequence[Sequence[float]] = (),
    height: int = 330,
    title: str | None = None,
) -> go.Figure:
    """Three-phase differential currents over time in ms.

    `view` "rms" shows the one-cycle sliding RMS instead of the instantaneous values. The estimated
    event inception is a dashed vertical line; the spans that drove the model's decision are shaded.
    """
    data = np.asarray(waveform, dtype=np.float64)
    time_ms = time_axis_ms()
    values = rolling_rms(data) if view == "rms" else data
    fig = go.Figure()
    for index, phase in enumerate(PHASES):
        fig.add_trace(
            go.Scattergl(
                x=time_ms, y=values[index], name=f"Phase {phase}", mode="lines",
                line=dict(color=PHASE_COLOURS[phase], width=1.6),
                hovertemplate="%{y:.4g}",
            )
        )
    for number, span in enumerate(explanation or ()):
        start, end = float(span[0]), float(span[1])
        fig.add_vrect(
            x0=start, x1=end, fillcolor="#ffc107", opacity=0.18, line_width=0, layer="below",
            annotation_text="decision span" if number == 0 else None,
            annotation_position="top left", annotation_font_size=10,
        )
    if inception_ms is not None:
        fig.add_vline(
            x=float(inception_ms), line=dict(color="#6f42c1", dash="dash", width=1.5),
            annotation_text=f"inception {float(inception_ms):.1f} ms",
            annotation_position="top right", annotation_font_size=10,
        )
    fig.update_layout(
        hovermode="x unified",
        legend=dict(orientation="h", yanchor="bottom", y=1.0, xanchor="right", x=1.0),
        uirevision=view,
    )
    fig.update_xaxes(title_text="time (ms)", range=[0, float(time_ms[-1])], showspikes=True)
    fig.update_yaxes(
        title_text="one-cycle RMS differential current" if view == "rms" else "differential current",
        zeroline=True, zerolinecolor="#dee2e6",
    )
    return _base_layout(fig, height=height, title=title)


def _short_label(label: str) -> str:
    """A readable label for axes; unknown strings are passed through."""
    try:
        return pretty_label(label)
    except ValueError:
        return label


def top5_figure(top5: Sequence[Sequence], *, height: int = 210) -> go.Figure:
    """Horizontal bars of the five most likely labels, the winner on top and highlighted."""
    if not top5:
        return empty_figure("No prediction yet", height=height)
    names = [_short_label(str(item[0])) for item in top5][::-1]
    probabilities = [float(item[1]) for item in top5][::-1]
    colours = [MUTED] * (len(names) - 1) + [ACCENT]
    fig = go.Figure(
        go.Bar(
            x=probabilities, y=names, orientation="h", marker_color=colours,
            text=[f"{p:.1%}" for p in probabilities], textposition="auto",
            hovertemplate="%{y}: %{x:.2%}<extra></extra>",
            customdata=[str(item[0]) for item in top5][::-1],
        )
    )
    fig.update_xaxes(range=[0, 1], tickformat=".0%")
    fig.update_yaxes(automargin=True)
    fig = _base_layout(fig, height=height)
    fig.update_layout(margin=dict(l=10, r=10, t=10, b=30))
    return fig


def marginals_figure(
    marginals: Mapping[str, Mapping[str, float]], *, height: int = 260, top: int = 4
) -> go.Figure:
    """Grouped bars of the category / equipment / kind probabilities (each a sum over labels)."""
    panels = [(name, values) for name, values in marginals.items() if values]
    if not panels:
        return empty_figure("No prediction yet", height=height)
    fig = go.Figure()
    palette = {"category": "#198754", "equipment": "#0d6efd", "kind": "#6f42c1"}
    for name, values in panels:
        ranked = sorted(values.items(), key=lambda item: item[1], reverse=True)[:top]
        fig.add_trace(
            go.Bar(
                x=[float(p) for _, p in ranked],
                y=[f"{name}: {key.replace('_', ' ')}" for key, _ in ranked],
                orientation="h", name=name, marker_color=palette.get(name, ACCENT),
                text=[f"{float(p):.1%}" for _, p in ranked], textposition="auto",
                hovertemplate="%{y}: %{x:.2%}<extra></extra>",
            )
        )
    fig.update_xaxes(range=[0, 1], tickformat=".0%")
    fig.update_yaxes(automargin=True, autorange="reversed")
    fig = _base_layout(fig, height=height)
    fig.update_layout(margin=dict(l=10, r=10, t=10, b=30), showlegend=False, bargap=0.25)
    return fig


def confusion_figure(
    matrix: Sequence[Sequence[float]], labels: Sequence[str] | None = None, *, height: int = 640
) -> go.Figure:
    """Row-normalised confusion matrix heatmap (true label rows, predicted label columns)."""
    counts = np.asarray(matrix, dtype=np.float64)
    if counts.ndim != 2 or counts.size == 0:
        return empty_figure("No confusion matrix in the model card", height=height)
    labels = list(labels or LABELS[: counts.shape[0]])
    names = [f"{i}" for i in range(len(labels))]
    totals = counts.sum(axis=1, keepdims=True)
    share = np.divide(counts, totals, out=np.zeros_like(counts), where=totals > 0)
    hover = [[f"true {labels[r]}<br>predicted {labels[c]}<br>{counts[r, c]:.0f} ({share[r, c]:.1%})"
              for c in range(counts.shape[1])] for r in range(counts.shape[0])]
    fig = go.Figure(
        go.Heatmap(
            z=share, x=names, y=names, colorscale="Blues", zmin=0, zmax=1,
            text=hover, hoverinfo="text", colorbar=dict(title="share", tickformat=".0%"),
        )
    )
    fig.update_xaxes(title_text="predicted label id", tickfont=dict(size=9), side="bottom")
    fig.update_yaxes(title_text="true label id", tickfont=dict(size=9), autorange="reversed")
    return _base_layout(fig, height=height)


def recall_figure(per_label_recall: Mapping[str, float], *, height: int = 640) -> go.Figure:
    """Per-label recall bars, worst first so the weak classes stand out."""
    if not per_label_recall:
        return empty_figure("No per-label recall in the model card", height=height)
    ranked = sorted(per_label_recall.items(), key=lambda item: item[1])
    colours = ["#dc3545" if v < 0.8 else "#ffc107" if v < 0.95 else "#198754" for _, v in ranked]
    fig = go.Figure(
        go.Bar(
            x=[float(v) for _, v in ranked], y=[_short_label(k) for k, _ in ranked], orientation="h",
            marker_color=colours, hovertemplate="%{y}: %{x:.1%}<extra></extra>",
        )
    )
    fig.update_xaxes(range=[0, 1.0], tickformat=".0%", title_text="recall on the test set")
    fig.update_yaxes(automargin=True, tickfont=dict(size=9))
    fig = _base_layout(fig, height=height)
    fig.update_layout(margin=dict(l=10, r=10, t=10, b=40))
    return fig


def calibration_figure(curves: Mapping[str, Mapping[str, Sequence[float]]], *, height: int = 360) -> go.Figure:
    """Reliability diagram: observed accuracy against stated confidence, one line per curve.

    `curves` maps a name ("before", "after") to {"confidence": [...], "accuracy": [...]}; optional
    "count" per bin sizes the markers. The diagonal is perfect calibration.
    """
    fig = go.Figure()
    fig.add_trace(
        go.Scatter(x=[0, 1], y=[0, 1], mode="lines", name="perfectly calibrated",
                   line=dict(color=MUTED, dash="dot"), hoverinfo="skip")
    )
    colours = {"before": "#dc3545", "after": "#198754"}
    drawn = 0
    for name, curve in curves.items():
        confidence = list(curve.get("confidence") or [])
        accuracy = list(curve.get("accuracy") or [])
        if not confidence or len(confidence) != len(accuracy):
            continue
        counts = curve.get("count")
        sizes = None
        if counts and len(counts) == len(confidence):
            biggest = max(max(counts), 1)
            sizes = [6 + 14 * (c / biggest) ** 0.5 for c in counts]
        fig.add_trace(
            go.Scatter(
                x=confidence, y=accuracy, mode="lines+markers", name=str(name),
                line=dict(color=colours.get(str(name), ACCENT), width=2),
                marker=dict(size=sizes or 8),
                hovertemplate="confidence %{x:.2f}<br>accuracy %{y:.2f}<extra>" + str(name) + "</extra>",
            )
        )
        drawn += 1
    if not drawn:
        return empty_figure("No calibration data in the model card", height=height)
    fig.update_xaxes(range=[0, 1.02], title_text="stated confidence")
    fig.update_yaxes(range=[0, 1.02], title_text="observed accuracy")
    fig.update_layout(legend=dict(orientation="h", y=-0.25))
    return _base_layout(fig, height=height)


def bar_figure(
    names: Sequence[str], values: Sequence[float], *, title: str, unit: str, limit: float | None = None,
    height: int = 260, warn_above: float | None = None, warn_below: float | None = None,
) -> go.Figure:
    """Simple vertical bars (bus voltages, line loadings) with an optional limit line."""
    if not names:
        return empty_figure(f"No {title.lower()}", height=height)
    colours = []
    for value in values:
        outside = (warn_above is not None and value > warn_above) or (
            warn_below is not None and value < warn_below
        )
        colours.append("#dc3545" if outside else "#198754")
    fig = go.Figure(
        go.Bar(x=list(names), y=[float(v) for v in values], marker_color=colours,
               hovertemplate="%{x}: %{y:.3f} " + unit + "<extra></extra>")
    )
    if limit is not None:
        fig.add_hline(y=limit, line=dict(color="#dc3545", dash="dash", width=1))
    fig.update_yaxes(title_text=unit)
    fig.update_xaxes(tickangle=-30, automargin=True)
    return _base_layout(fig, height=height, title=title)
