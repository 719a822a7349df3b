"""A stated relay connection: its check, its heads, the answer read through them, and the way in (API, page)."""

from __future__ import annotations

import numpy as np
import pytest

from services.analysis import AnalysisError, analyze
from services.inference import ModelUnavailable, get_predictor
from services.inference.connections import (
    CONNECTION_HEADS_FILE,
    RELAY_CONNECTIONS,
    ConnectionHead,
    ConnectionHeads,
    check_relay_connection,
)
from services.labels import LABELS, label_parts
from services.training.connection_heads import connection_windows, fit_connection_heads, fit_head
from services.training.levels_report import CONNECTION_FIELDS, format_connections, measure_connections


@pytest.fixture(autouse=True)
def _cache_in_tmp(tmp_path_factory, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path_factory.getbasetemp() / "home"))


@pytest.fixture(scope="module")
def predictor():
    return get_predictor()


def test_con001_a_connection_is_stated_by_its_id_or_left_unstated():
    assert check_relay_connection(None) is None
    for unstated in ("", "  ", "unknown", "Not_Stated", "none"):
        assert check_relay_connection(unstated) is None
    for connection in RELAY_CONNECTIONS:
        assert check_relay_connection(f" {connection} ") == connection
    with pytest.raises(ValueError, match="unknown relay_connection 'delta'.*yd_ia_minus_ib"):
        check_relay_connection("delta")
    with pytest.raises(ValueError, match="must be a string"):
        check_relay_connection(3)
    with pytest.raises(ValueError) as raised:
        check_relay_connection("x" * 500)
    assert len(str(raised.value)) < 300  # a long value is not echoed whole


def test_con002_heads_round_trip_and_a_head_that_does_not_fit_the_model_is_refused(tmp_path):
    rng = np.random.default_rng(0)
    heads = ConnectionHeads({"zero_sequence_removed": ConnectionHead("zero_sequence_removed", rng.normal(size=(45, 256)).astype(np.float32),
                                                                     1.1, 3.0)})
    heads.save(tmp_path / CONNECTION_HEADS_FILE)
    loaded = ConnectionHeads.load(tmp_path / CONNECTION_HEADS_FILE, 45, 256)
    assert set(loaded.heads) == {"zero_sequence_removed"}
    head = loaded.heads["zero_sequence_removed"]
    np.testing.assert_array_equal(head.weight, heads.heads["zero_sequence_removed"].weight)
    assert (head.temperature_kind, head.temperature_equipment) == (1.1, 3.0)
    with pytest.raises(ValueError, match="does not fit a model of 45 labels and 128 hidden units"):
        ConnectionHeads.load(tmp_path / CONNECTION_HEADS_FILE, 45, 128)
    (tmp_path / "broken.npz").write_bytes(b"not a zip")
    with pytest.raises(ValueError, match="cannot read broken.npz"):
        ConnectionHeads.load(tmp_path / "broken.npz", 45, 256)


def test_con003_a_corrupt_heads_file_makes_the_model_unavailable_with_the_reason(artifacts_copy):
    path = artifacts_copy / CONNECTION_HEADS_FILE
    kept = path.read_bytes()
    path.write_bytes(b"garbage")
    try:
        with pytest.raises(ModelUnavailable, match="connection_heads.npz is corrupt"):
            get_predictor(artifacts_copy)
    finally:
        path.write_bytes(kept)


def test_con004_a_stated_connection_reads_the_same_network_through_its_own_head(predictor):
    X, y, _ = connection_windows("zero_sequence_removed", 1, seed=4)
    unstated = predictor.predict(X[0])
    stated = predictor.predict(X[0], relay_connection="zero_sequence_removed")
    assert unstated.relay_connection is None and stated.relay_connection == "zero_sequence_removed"
    assert stated.to_dict()["relay_connection"] == "zero_sequence_removed"
    assert sum(stated.category.values()) == pytest.approx(1.0, abs=1e-6)
    assert stated.top5 != unstated.top5  # another head, another answer
    in_batch = predictor.predict_batch(X[:1], relay_connection="zero_sequence_removed")[0]
    assert [label for label, _ in in_batch.top5] == [label for label, _ in stated.top5]
    assert [p for _, p in in_batch.top5] == pytest.approx([p for _, p in stated.top5], abs=1e-6)
    with pytest.raises(ValueError, match="unknown relay_connection"):
        predictor.predict(X[0], relay_connection="delta")


def test_con005_stated_yd_compensation_makes_the_phases_of_a_line_fault_readable(predictor):
    """An A-B fault through a Yd compensation of rows I_A - I_B shows (2, -1, -1): the same currents
    as an A-G fault with the zero sequence removed. Unstated, the model cannot tell them apart;
    stated, the connection can."""
    label = next(i for i, name in enumerate(LABELS)
                 if label_parts(name).kind == "AB" and label_parts(name).equipment == "power_transformer")
    X, y, _ = connection_windows("yd_ia_minus_ib", 20, seed=11, classes=[label])
    assert len(X) >= 12

    def right(predictions) -> int:
        return sum(p.levels["phases"] is not None and p.levels["phases"]["value"] == "AB" for p in predictions)

    unstated = right(predictor.predict_batch(X, explain=False))
    stated = right(predictor.predict_batch(X, explain=False, relay_connection="yd_ia_minus_ib"))
    assert stated >= 0.9 * len(X)
    assert unstated <= 0.6 * len(X)


def test_con006_a_model_without_heads_says_so_and_the_analysis_changes_nothing(artifacts_copy):
    moved = artifacts_copy / CONNECTION_HEADS_FILE
    kept = moved.read_bytes()
    moved.unlink()
    try:
        bare = get_predictor(artifacts_copy)
        assert bare.connection_heads is None
        window = connection_windows("delta_tied", 1, seed=3)[0][0]
        with pytest.raises(ValueError, match="no head for the relay connection 'delta_tied'"):
            bare.predict(window, relay_connection="delta_tied")
        with pytest.raises(AnalysisError, match="no head for the relay connection"):
            analyze(window, source="api", sender="prosumer-a", receiver="ev-hub", predictor=bare, store=None,
                    relay_connection="delta_tied")
        answer = analyze(window, source="api", sender="prosumer-a", receiver="ev-hub", predictor=bare, store=None,
                         relay_connection="")
        assert answer.relay_connection is None
    finally:
        moved.write_bytes(kept)


def test_con007_the_analysis_keeps_the_connection_and_refuses_an_unknown_one(predictor):
    window = connection_windows("faulted_windings", 1, seed=5)[0][0]
    with pytest.raises(AnalysisError, match="unknown relay_connection"):
        analyze(window, source="api", sender="prosumer-a", receiver="ev-hub", predictor=predictor, store=None,
                relay_connection="wye")
    analysis = analyze(window, source="api", sender="prosumer-a", receiver="ev-hub", predictor=predictor, store=None,
                       relay_connection="faulted_windings")
    assert analysis.relay_connection == "faulted_windings"
    assert type(analysis).from_json(analysis.to_json()).relay_connection == "faulted_windings"
    record = analysis.to_record()
    assert record["prediction"]["relay_connection"] == "faulted_windings"
    reopened = type(analysis).from_record({**record, "id": 7, "waveform": record["waveform"].tolist()})  # as read back
    assert reopened.relay_connection == "faulted_windings" and reopened.analysis_id == 7


def test_con008_a_fitted_head_learns_what_its_windows_teach():
    rng = np.random.default_rng(1)
    hidden = np.abs(rng.normal(size=(600, 16))).astype(np.float32)
    truth = rng.normal(size=(3, 16)).astype(np.float32)
    y = (hidden @ truth.T).argmax(axis=1)
    start = np.zeros((3, 16), np.float32)
    weight = fit_head(hidden, y, start, l2=1e-4)
    assert ((hidden @ weight.T).argmax(axis=1) == y).mean() > 0.95
    held = fit_head(hidden, y, start, l2=10.0)  # a strong pull keeps it near the start
    assert np.abs(held).max() < np.abs(weight).max() / 5


def test_con009_fitting_and_measuring_every_connection_on_a_few_windows(predictor):
    heads, report = fit_connection_heads(predictor, per_class=1, connections=("zero_sequence_removed", "yd_ia_minus_ic"))
    assert set(heads.heads) == set(report) == {"zero_sequence_removed", "yd_ia_minus_ic"}
    for head in heads.heads.values():
        assert head.weight.shape == (len(LABELS), 256) and head.temperature_kind > 0 and head.temperature_equipment > 0
    measured = measure_connections(predictor, per_class=1)
    assert set(measured) == set(RELAY_CONNECTIONS)
    assert set(measured["yd_ia_minus_ib"]) == {"simulator", "shift"} and set(measured["delta_tied"]) == {"simulator"}
    for sets in measured.values():
        for scored in sets.values():
            assert set(scored["stated"]) == set(scored["not_stated"]) == set(CONNECTION_FIELDS)
    assert "yd_ia_minus_ib / shift" in format_connections(measured)


def test_con010_the_readmes_stated_connection_table_is_the_shipped_cards():
    """The README's figures are the ones the shipped card holds (levels_report --markdown prints them)."""
    import json
    from pathlib import Path

    from services.training.levels_report import markdown_connections

    root = Path(__file__).resolve().parents[1]
    card = json.loads((root / "artifacts" / "model_card.json").read_text())
    table = markdown_connections(card["levels_report"]["stated_connection"])
    assert table.count("\n") == 10  # header, rule, four connections on two sets and the delta tie on one
    assert table in (root / "README.md").read_text(encoding="utf-8")
