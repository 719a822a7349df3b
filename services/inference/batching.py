"""Micro-batching: concurrent single-window predictions of one process share one network call.

One window costs the network about 1.1 ms on one core; eight windows in one call cost about
0.3 ms each (benchmarks/bench_inference.py). A threaded web worker holds several requests at
once, so instead of each thread calling the network on its own window, the first thread to
arrive becomes the *leader*: it takes every window queued so far, runs them as one batch and
hands each thread its answer. Threads that arrive while a batch runs queue up for the next one,
which the leader hands to one of them (so no thread serves others forever). There is no waiting
for a batch to fill: a lone request runs at once, alone.

The queue lives in the process that owns the predictor (one per gunicorn worker); nothing is
shared between workers.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from typing import Generic, TypeVar

import numpy as np

Result = TypeVar("Result")


class _Ticket(Generic[Result]):
    """One queued window: its answer (or error), and the event its thread waits on."""

    __slots__ = ("window", "result", "error", "answered", "lead", "wake")

    def __init__(self, window: np.ndarray) -> None:
        self.window = window
        self.result: Result | None = None
        self.error: BaseException | None = None
        self.answered = False
        self.lead = False  # set when this ticket's thread must run the next batch
        self.wake = threading.Event()

    def outcome(self) -> Result:
        if self.error is not None:
            raise self.error
        return self.result  # type: ignore[return-value]


class MicroBatcher(Generic[Result]):
    """Runs `run_batch` on the windows of concurrent `submit` calls, at most `max_batch` at a time."""

    def __init__(self, run_batch: Callable[[np.ndarray], Sequence[Result]], max_batch: int = 32) -> None:
        if max_batch < 1:
            raise ValueError("max_batch must be at least 1")
        self._run_batch = run_batch
        self.max_batch = max_batch
        self._lock = threading.Lock()
        self._queue: list[_Ticket[Result]] = []
        self._running = False

    def submit(self, window: np.ndarray) -> Result:
        """The answer for one window (shape as `run_batch` expects per item); raises its error."""
        ticket: _Ticket[Result] = _Ticket(window)
        with self._lock:
            self._queue.append(ticket)
            lead = not self._running
            self._running = True
        if not lead:
            ticket.wake.wait()
            if ticket.answered:
                return ticket.outcome()
        self._lead_until_answered(ticket)
        return ticket.outcome()

    def _lead_until_answered(self, own: _Ticket[Result]) -> None:
        """Run batches until `own` is answered, then pass the lead on (or stop if nothing waits)."""
        try:
            while not own.answered:
                with self._lock:
                    batch = self._queue[: self.max_batch]
                    del self._queue[: self.max_batch]
                self._answer(batch)
        finally:
            with self._lock:
                if self._queue:
                    successor = self._queue[0]
                    successor.lead = True
                    successor.wake.set()
                else:
                    self._running = False

    def _answer(self, batch: list[_Ticket[Result]]) -> None:
        try:
            results = self._run_batch(np.stack([ticket.window for ticket in batch]))
            if len(results) != len(batch):
                raise RuntimeError(f"batch of {len(batch)} windows gave {len(results)} answers")
        except BaseException as exc:  # every waiting thread gets the error, none hangs
            for ticket in batch:
                ticket.error = exc
                self._release(ticket)
            if not isinstance(exc, Exception):
                raise
            return
        for ticket, result in zip(batch, results, strict=True):
            ticket.result = result
            self._release(ticket)

    @staticmethod
    def _release(ticket: _Ticket[Result]) -> None:
        ticket.answered = True
        ticket.wake.set()
