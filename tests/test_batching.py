"""Micro-batching: concurrent predictions share network calls, and each caller gets its own answer."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest

from services.inference.batching import MicroBatcher


class RecordingModel:
    """A stand-in network: answers each window with its first value, records batch sizes, is slow."""

    def __init__(self, delay_s: float = 0.005, fail_on: float | None = None) -> None:
        self.delay_s = delay_s
        self.fail_on = fail_on
        self.batch_sizes: list[int] = []
        self._lock = threading.Lock()

    def __call__(self, batch: np.ndarray) -> list[float]:
        with self._lock:
            self.batch_sizes.append(len(batch))
        time.sleep(self.delay_s)  # releases the GIL, as ONNX Runtime does
        if self.fail_on is not None and np.any(batch[:, 0] == self.fail_on):
            raise RuntimeError("backend failed")
        return [float(window[0]) for window in batch]


def _submit_all(batcher: MicroBatcher, values: list[float]) -> tuple[dict[int, float], dict[int, BaseException]]:
    answers: dict[int, float] = {}
    errors: dict[int, BaseException] = {}
    start = threading.Barrier(len(values))

    def call(index: int) -> None:
        start.wait()
        try:
            answers[index] = batcher.submit(np.full(4, values[index]))
        except BaseException as exc:  # noqa: BLE001 - recorded for the assertions
            errors[index] = exc

    threads = [threading.Thread(target=call, args=(i,)) for i in range(len(values))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=10)
    assert not any(thread.is_alive() for thread in threads), "a caller hung"
    return answers, errors


def test_batch001_a_lone_request_runs_alone_and_at_once():
    model = RecordingModel(delay_s=0.0)
    batcher = MicroBatcher(model, max_batch=8)
    assert batcher.submit(np.full(4, 7.0)) == 7.0
    assert batcher.submit(np.full(4, 3.0)) == 3.0
    assert model.batch_sizes == [1, 1]


def test_batch002_concurrent_callers_share_calls_and_each_gets_its_own_answer():
    model = RecordingModel(delay_s=0.01)
    batcher = MicroBatcher(model, max_batch=64)
    values = [float(i) for i in range(24)]
    answers, errors = _submit_all(batcher, values)
    assert errors == {}
    assert answers == {i: values[i] for i in range(len(values))}
    assert sum(model.batch_sizes) == len(values)
    assert len(model.batch_sizes) < len(values)  # some windows shared a call
    assert max(model.batch_sizes) > 1


def test_batch003_batches_never_exceed_the_limit():
    model = RecordingModel(delay_s=0.01)
    batcher = MicroBatcher(model, max_batch=3)
    answers, errors = _submit_all(batcher, [float(i) for i in range(20)])
    assert errors == {} and len(answers) == 20
    assert max(model.batch_sizes) <= 3
    assert sum(model.batch_sizes) == 20


def test_batch004_a_failing_call_fails_its_callers_and_the_batcher_keeps_working():
    model = RecordingModel(delay_s=0.01, fail_on=5.0)
    batcher = MicroBatcher(model, max_batch=64)
    answers, errors = _submit_all(batcher, [float(i) for i in range(12)])
    assert 5 in errors and isinstance(errors[5], RuntimeError)
    assert all(answers[i] == float(i) for i in answers)  # no one got another window's answer
    assert len(answers) + len(errors) == 12
    model.fail_on = None
    assert batcher.submit(np.full(4, 9.0)) == 9.0  # the lead was released


def test_batch005_a_wrong_number_of_answers_is_an_error_not_a_mismatch():
    batcher = MicroBatcher(lambda batch: [0.0] * (len(batch) + 1), max_batch=4)
    with pytest.raises(RuntimeError, match="answers"):
        batcher.submit(np.zeros(4))


def test_batch006_max_batch_must_be_positive():
    with pytest.raises(ValueError):
        MicroBatcher(lambda batch: list(batch), max_batch=0)


def test_batch007_concurrent_predictions_equal_one_by_one_predictions(predictor_and_windows):
    """Through the real Predictor: windows answered in shared calls match the lone answers."""
    predictor, windows = predictor_and_windows
    alone = [predictor.predict(window) for window in windows]
    together: dict[int, object] = {}
    start = threading.Barrier(len(windows))

    def call(index: int) -> None:
        start.wait()
        together[index] = predictor.predict(windows[index])

    threads = [threading.Thread(target=call, args=(i,)) for i in range(len(windows))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    for index, expected in enumerate(alone):
        got = together[index]
        assert got.label == expected.label
        assert got.confidence == pytest.approx(expected.confidence, abs=1e-5)
        assert got.unknown == expected.unknown
        assert got.saliency == pytest.approx(expected.saliency, abs=2e-3)


@pytest.fixture(scope="module")
def predictor_and_windows():
    from services.inference import get_predictor
    from services.simulation import generate_dataset

    predictor = get_predictor()
    windows, _, _ = generate_dataset(per_class=1, seed=77, classes=list(range(0, 45, 4)))
    return predictor, [np.asarray(window, dtype=np.float64) for window in windows]
