"""Shift set: labelled test windows for all 45 labels from a second, independent generator.

Issue 10, item 3: windows written under different but plausible assumptions (other relay views of
each unit, standing-current levels, DC time constants, CT errors, noise, sampling jitter,
quantisation; transients from textbook physics), to measure how the trained model behaves under a
change of physics. **Never use these windows for training**: they exist to report per-level
accuracy and the confidently-wrong rate honestly.

The package imports nothing from ``services.simulation``, ``services.training`` or
``services.inference`` (a test checks the source); only the label strings and the waveform
conventions are shared. Amplitudes are in kA on the data set's 500 MVA, 230 kV base
(rated 1.2551 kA rms). See docs/shift_set.md.

    X, y, params = generate_shift_set(per_class=100, seed=7)
    X, y, params = generate_independent_transients(per_class=100, seed=7)
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from services.labels import LABELS, TRANSIENT_LABELS, resolve_label
from services.shiftset.common import VIEWS
from services.shiftset.faults import fault_windows
from services.shiftset.transients import transient_windows

TRANSIENT_IDS: tuple[int, ...] = tuple(LABELS.index(label) for label in TRANSIENT_LABELS)

__all__ = ["TRANSIENT_IDS", "VIEWS", "generate_class", "generate_independent_transients", "generate_shift_set"]


def generate_class(label_id: int, n: int, seed: int, views: Iterable[str] | None = None
                   ) -> tuple[np.ndarray, list[dict]]:
    """n windows of one label. The random stream depends only on (seed, label_id), so a class's
    windows are the same whichever other classes are generated with it."""
    rng = np.random.default_rng([int(seed), int(label_id), 0x5A17])
    allowed = None if views is None else tuple(views)
    if label_id in TRANSIENT_IDS:
        return transient_windows(label_id, n, rng, allowed)
    return fault_windows(label_id, n, rng, allowed)


def generate_shift_set(per_class: int, seed: int, classes: Iterable[int | str] | None = None,
                       views: Iterable[str] | None = None) -> tuple[np.ndarray, np.ndarray, list[dict]]:
    """Shift-set windows: X float32 (n, 3, 726) in kA, y int64 (n,), params (one dict per window).

    ``classes``: label ids or label strings (default: all 45), generated in the order given.
    ``views``: limit the relay views (names in ``common.VIEWS``; default all six). For example
    ``views=["windings"]`` gives windows whose faulted phases are readable from the currents.
    Deterministic for a given (per_class, seed, classes, views).
    """
    if per_class < 1:
        raise ValueError("per_class must be at least 1")
    ids = list(range(len(LABELS))) if classes is None else [resolve_label(c) for c in classes]
    xs, ys, params = [], [], []
    for label_id in ids:
        x, p = generate_class(label_id, per_class, seed, views)
        xs.append(x)
        ys.append(np.full(per_class, label_id, dtype=np.int64))
        params.extend(p)
    return np.concatenate(xs).astype(np.float32), np.concatenate(ys), params


def generate_independent_transients(per_class: int, seed: int, views: Iterable[str] | None = None
                                    ) -> tuple[np.ndarray, np.ndarray, list[dict]]:
    """The six transient labels (ids 39-44) only, from the textbook-physics generators."""
    return generate_shift_set(per_class, seed, classes=TRANSIENT_IDS, views=views)
