"""The analytics card's pure builders and callback functions: units on every axis, the restraint
thresholds marked, the cursor at the chosen window, the CSV, and forged browser stores refused."""

from __future__ import annotations

import csv
import io

import numpy as np
import pytest

from callbacks.analytics import NotAnAnalysis, analytics_of, card_update, window_update
from components import ids
from components.analytics_panels import (
    analytics_card,
    clamp_position,
    key_figures_rows,
    panels_at,
    phasor_figure,
    spectrum_figure,
    with_cursor,
)
from services.analytics import compute_analytics
from services.analytics.export import HEADER, analytics_csv

TIME = np.arange(726) / 10_000.0


def _analytics() -> dict:
    """Phase A: 1 kA rms with 0.2 kA 2nd and 0.4 kA 5th harmonic from 20 ms over a balanced 0.1 kA."""
    x = np.stack([np.sqrt(2) * 0.1 * np.cos(2 * np.pi * 60 * TIME + shift) for shift in (0, -2.0944, 2.0944)])
    on = TIME >= 0.02
    x[0] += on * np.sqrt(2) * (np.cos(2 * np.pi * 60 * TIME) + 0.2 * np.cos(2 * np.pi * 120 * TIME)
                               + 0.4 * np.cos(2 * np.pi * 300 * TIME))
    return compute_analytics(x).to_dict()


def _stored(analytics_id: int | None = 7) -> dict:
    x = np.stack([np.cos(2 * np.pi * 60 * TIME + shift) for shift in (0, -2.0944, 2.0944)])
    x[1] += (TIME >= 0.03) * 2 * np.cos(2 * np.pi * 60 * TIME)
    return {"analysis_id": analytics_id, "waveform": x.tolist(), "source": "sample", "sender": "prosumer-a",
            "receiver": "consumer-home", "transfer_kw": 5.0, "label": "transient_ferroresonance",
            "inception_ms": 30.0, "explanation": [[30.0, 40.0]]}


def test_every_axis_says_its_unit():
    panels = panels_at(_analytics(), 25)
    for name in ("spectrum", "sequence", "rms"):
        layout = panels[name]["layout"]
        assert "(" in layout["xaxis"]["title"]["text"] and "(" in layout["yaxis"]["title"]["text"], name
    assert panels["sequence"]["layout"]["yaxis2"]["title"]["text"] == "I2/I1 (%)"
    assert panels["phasors"]["layout"]["polar"]["radialaxis"]["ticksuffix"] == " kA"
    assert "(kA rms)" in panels["phasors"]["layout"]["title"]["text"]
    assert panels["spectrum"]["layout"]["xaxis"]["title"]["text"].startswith("harmonic order")


def test_spectrum_marks_the_restraint_thresholds_and_shows_the_ratios():
    analytics = _analytics()
    k = analytics["event_position"]
    figure = spectrum_figure(analytics, k)
    levels = {round(shape["x0"] + 0.45): shape["y0"] for shape in figure["layout"]["shapes"]}
    assert levels == {2: 15.0, 5: 35.0}
    phase_a = figure["data"][0]
    # the fundamental is 1 + 0.1 kA (the standing current in phase): 0.2 / 1.1 and 0.4 / 1.1
    assert phase_a["x"][0] == 2 and phase_a["y"][0] == pytest.approx(100 * 0.2 / 1.1, rel=1e-3)
    assert phase_a["y"][3] == pytest.approx(100 * 0.4 / 1.1, rel=1e-3)  # order 5
    rows = dict(key_figures_rows(analytics))
    assert rows["2nd harmonic / fundamental"] == "18.2 % (above 15 %)"
    assert rows["5th harmonic / fundamental"] == "36.4 % (above 35 %)"
    assert rows["Inception"] == "20 ms"
    assert rows["Read at window"].endswith("(first full cycle after inception)")
    steady = compute_analytics(np.stack([np.cos(2 * np.pi * 60 * TIME + s) for s in (0, -2.0944, 2.0944)])).to_dict()
    assert dict(key_figures_rows(steady))["Read at window"] == "0.0\u201316.7 ms (the record's first cycle: no inception found)"


def test_phasors_are_those_of_the_chosen_window():
    analytics = _analytics()
    early, late = phasor_figure(analytics, 0), phasor_figure(analytics, 30)
    assert early["data"][0]["r"][1] == pytest.approx(0.1, rel=1e-3)  # before the event
    assert late["data"][0]["r"][1] == pytest.approx(1.1, rel=1e-3)
    assert "30.0" in late["layout"]["title"]["text"]


def test_position_from_the_browser_is_clamped():
    analytics = _analytics()
    assert clamp_position(analytics, "3") == 3
    assert clamp_position(analytics, 10_000) == len(analytics["start_ms"]) - 1
    assert clamp_position(analytics, -5) == 0
    assert clamp_position(analytics, None) == analytics["event_position"]


def test_cursor_band_on_the_waveform_at_the_window():
    analytics = _analytics()
    figure = with_cursor({"data": [], "layout": {"shapes": [{"type": "line"}]}}, analytics, 12)
    band = figure["layout"]["shapes"][-1]
    assert (band["x0"], band["x1"]) == (analytics["start_ms"][12], analytics["end_ms"][12])
    assert len(figure["layout"]["shapes"]) == 2


def test_csv_has_one_row_per_window_and_phase():
    analytics = _analytics()
    rows = list(csv.reader(io.StringIO(analytics_csv(analytics))))
    assert rows[0] == HEADER
    assert len(rows) == 1 + 3 * len(analytics["start_ms"])
    assert rows[1][2] == "A" and float(rows[1][3]) == pytest.approx(0.1, rel=1e-3)


def test_callbacks_functions_follow_the_store_and_refuse_forgeries():
    stored = _stored()
    update = card_update(stored)
    assert update["style"] == {} and update["max"] == 55
    assert update["value"] == analytics_of(stored)["event_position"]
    redrawn = window_update(stored, 40, "raw")
    assert "40.0" in redrawn["text"] and "40.0" in redrawn["phasors"]["layout"]["title"]["text"]
    assert card_update(None)["style"] == {"display": "none"}
    for forged in ("text", [1, 2], {"waveform": [[1, 2]]}, {"waveform": [["a"] * 726] * 3}):
        with pytest.raises(NotAnAnalysis):
            analytics_of(forged)


def test_card_starts_hidden_without_an_analysis_and_at_the_event_with_one():
    hidden = analytics_card(ids.ANALYZE_ANALYTICS)
    assert hidden.style == {"display": "none"}
    analytics = _analytics()
    shown = analytics_card(ids.ANALYSIS_ANALYTICS, analytics)
    assert shown.style == {} and shown.id == ids.ANALYSIS_ANALYTICS


def test_compare_ids_are_parsed_strictly():
    from app.pages.compare import CompareRequestError, parse_ids

    assert parse_ids("3, 7,9") == [3, 7, 9]
    assert parse_ids("4,4,2") == [4, 2]  # duplicates dropped, order kept
    for bad in (None, "", "1", "1,2,3,4,5", "1,x", "1,-2", "0,1", "1,\u00b9"):
        with pytest.raises(CompareRequestError):
            parse_ids(bad)


def test_compare_links_take_two_to_four_ids():
    from callbacks.analytics import compare_href, selected_ids

    assert compare_href([3, "#7"], "/p/compare") == "/p/compare?ids=3,7"
    assert compare_href([3]) is None and compare_href([1, 2, 3, 4, 5]) is None
    assert compare_href([3, 3, "x", None, 8]) == "/compare?ids=3,8"
    assert selected_ids([{"analysis_id": 2, "id": "[#2](/analysis/2)"}, "junk"]) == [2]
    assert selected_ids("forged") == []


def test_compare_figure_aligns_on_inception_and_table_csv():
    from components.analytics_panels import compare_figure, compare_rows
    from services.analytics.export import COMPARE_FIELDS, compare_csv

    entries = []
    for number, shift in ((1, 10.0), (2, 25.0)):
        waveform = np.zeros((3, 726))
        entries.append({"analysis_id": number, "title": f"#{number}", "title_label": "x", "label": "x",
                        "confidence": 0.5, "waveform": waveform.tolist(), "time_ms": (TIME * 1000).tolist(),
                        "shift_ms": shift, "analytics": compute_analytics(waveform).to_dict()})
    figure = compare_figure(entries)
    assert len(figure["data"]) == 6
    assert figure["data"][0]["x"][0] == -10.0 and figure["data"][1]["x"][0] == -25.0  # time from inception
    assert figure["layout"]["xaxis3"]["title"]["text"] == "time from inception (ms)"
    assert [figure["layout"][f"yaxis{a}"]["title"]["text"] for a in ("", "2", "3")] == \
        ["phase A (kA)", "phase B (kA)", "phase C (kA)"]
    rows = list(csv.reader(io.StringIO(compare_csv(compare_rows(entries)))))
    assert rows[0] == [header for _, header in COMPARE_FIELDS] and [row[0] for row in rows[1:]] == ["1", "2"]
