"""Is a window a credible grid event? Signal checks and an out-of-distribution score.

The classifier always answers one of 45 labels, so garbage would get a confident-looking label.
Two layers say "unknown" instead:
- signal checks that need no model: NaN/Inf, a flat line, a trace clipped at a constant level
  (not a block waveform such as an idealised rectifier current, which dwells at zero between its
  extremes), no 60 Hz content (DC only, a steady high-frequency tone), stationary broadband noise
  (not a capacitor bank's kHz ringing, which dies out), or a dominant frequency near 50 Hz or at
  120 Hz (a 60 Hz record sampled at 5 kHz);
- a feature-space score: the Mahalanobis distance of the network's 256-wide hidden vector to the
  nearest class centre (shared covariance), whose threshold, and the amplitude range seen in
  training, are calibrated on validation data by the training command and stored in
  `unknown_detector.npz`. Folders without that file (the original application's) get the
  signal checks only.
All functions work on a batch (n, 3, 726) at once: the checks cost tens of microseconds a window.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property, lru_cache
from pathlib import Path

import numpy as np

from services.waveform import N_SAMPLES, SAMPLE_RATE_HZ, SAMPLES_PER_CYCLE, SYSTEM_FREQUENCY_HZ

DETECTOR_FILE = "unknown_detector.npz"
#: frequencies scanned for the dominant fundamental (Hz); 50 Hz systems sit well inside
_SCAN_HZ = np.concatenate([np.arange(40.0, 81.0, 1.0), [120.0]])
_WRONG_FREQUENCY_HZ = (40.0, 55.0)
#: a 60 Hz event recorded at 5 kHz looks like 120 Hz; inrush reaches about 1.5x second harmonic
_DOUBLED_FREQUENCY_RATIO = 3.0
_CLIP_RUN = 8  # samples (0.8 ms) held at one extreme level
_DWELL = 14  # samples (1.4 ms, 30 deg) held at another level between the extremes: a block waveform
#: quarter-to-quarter energy ratio above which high-frequency content counts as stationary
_STATIONARY_EVENNESS = 0.3
_CLIP_TOLERANCE = 1e-5
_LOW_FREQUENCY_HZ = 30.0
_HIGH_FREQUENCY_HZ = 1500.0
_TONE_HZ = 250.0
_FREQUENCIES_HZ = np.fft.rfftfreq(N_SAMPLES, 1.0 / SAMPLE_RATE_HZ)
# the bands are contiguous runs of rfft bins: slices (views) instead of boolean masks (copies)
_LOW_END = int(np.searchsorted(_FREQUENCIES_HZ, _LOW_FREQUENCY_HZ))  # bins [:_LOW_END] lie below 30 Hz
_HIGH_START = int(np.searchsorted(_FREQUENCIES_HZ, _HIGH_FREQUENCY_HZ, side="right"))  # above 1.5 kHz
_TONE_START = int(np.searchsorted(_FREQUENCIES_HZ, _TONE_HZ))  # bins [_TONE_START:] from 250 Hz up
_AT_60_HZ = int(np.flatnonzero(_SCAN_HZ == SYSTEM_FREQUENCY_HZ)[0])
#: each class's radius is this quantile of its validation windows' distances (heavy-tailed classes
#: such as CT saturation get a radius that covers their tail)
_SCALE_QUANTILE = 0.9


@lru_cache(maxsize=1)
def _scan_basis() -> np.ndarray:
    """(726, 2 * len(_SCAN_HZ)) orthonormal sin/cos pairs per frequency, orthogonal to a quadratic trend."""
    t = np.arange(N_SAMPLES) / SAMPLE_RATE_HZ
    trend = np.stack([np.ones_like(t), t - t.mean(), (t - t.mean()) ** 2], axis=1)
    q_trend, _ = np.linalg.qr(trend)
    columns = []
    for frequency in _SCAN_HZ:
        pair = np.stack([np.cos(2 * np.pi * frequency * t), np.sin(2 * np.pi * frequency * t)], axis=1)
        pair -= q_trend @ (q_trend.T @ pair)
        q_pair, _ = np.linalg.qr(pair)
        columns.append(q_pair)
    return np.concatenate(columns, axis=1)


@lru_cache(maxsize=1)
def _trend_basis() -> np.ndarray:
    t = np.arange(N_SAMPLES) / SAMPLE_RATE_HZ
    trend = np.stack([np.ones_like(t), t - t.mean(), (t - t.mean()) ** 2], axis=1)
    return np.linalg.qr(trend)[0]


@lru_cache(maxsize=1)
def _trend_spectrum() -> np.ndarray:
    """(3, 364) spectra of the trend basis: the detrended window's spectrum is the window's minus
    these weighted by its trend coefficients (the FFT is linear), one FFT instead of two."""
    return np.fft.rfft(_trend_basis().T, axis=1)


@lru_cache(maxsize=1)
def _parseval_weights() -> np.ndarray:
    """Weight of each rfft bin in the signal's energy: sum(x**2) = sum(w * |X|**2)."""
    weights = np.full(N_SAMPLES // 2 + 1, 2.0 / N_SAMPLES)
    weights[0] = 1.0 / N_SAMPLES
    if N_SAMPLES % 2 == 0:
        weights[-1] = 1.0 / N_SAMPLES
    return weights


def signal_checks(batch: np.ndarray) -> list[str | None]:
    """Per window, the reason it is not a credible 60 Hz event, or None if it passes.

    `batch`: (n, 3, 726) raw (unnormalised) values; may contain NaN/Inf.
    """
    x = np.asarray(batch, dtype=np.float64)
    n = x.shape[0]
    reasons: list[str | None] = [None] * n
    finite_samples = np.isfinite(x)
    finite = finite_samples.all(axis=(1, 2))
    if finite.all():
        clean = x
    else:
        for i in np.flatnonzero(~finite):
            bad = int((~finite_samples[i]).sum())
            reasons[i] = f"the waveform contains {bad} NaN or Inf sample(s); the recording is corrupt"
        clean = np.where(finite_samples, x, 0.0)
    highest, lowest = clean.max(axis=2), clean.min(axis=2)  # (n, 3)
    spread = highest - lowest
    peak = np.maximum(np.abs(highest), np.abs(lowest)).max(axis=1)

    flat = spread.max(axis=1) <= 1e-9 + 1e-7 * peak
    _assign(reasons, flat, "flat signal: all three phases are constant, no event is recorded")

    _assign(reasons, _clipped(clean, highest, lowest, spread), "the trace is clipped: it holds a constant extreme "
            "level for several samples, as a saturated recorder or CT input does")

    trend = _trend_basis()
    coefficients = clean @ trend  # (n, 3, 3)
    ac = clean - coefficients @ trend.T
    transform = np.fft.rfft(clean, axis=2)
    spectrum = transform.real**2 + transform.imag**2  # (n, 3, 364)
    total = spectrum.sum(axis=(1, 2)) + 1e-30
    low = spectrum[:, :, :_LOW_END].sum(axis=(1, 2))
    ac_energy = (ac**2).sum(axis=(1, 2))
    dc_only = (low / total > 0.97) & (ac_energy < 1e-3 * (clean**2).sum(axis=(1, 2)) + 1e-30)
    _assign(reasons, dc_only, "only a DC level or a slow drift: no 60 Hz content, not a power-system event")

    high = spectrum[:, :, _HIGH_START:].sum(axis=(1, 2))
    # noise is stationary; a capacitor bank's kHz ringing dies out
    broadband = _stationary(high / (spectrum[:, :, 1:].sum(axis=(1, 2)) + 1e-30) > 0.35, transform, _HIGH_START)
    _assign(reasons, broadband, "broadband noise: most of the energy is above 1.5 kHz, with no "
            "dominant 60 Hz component")

    ac_transform = transform - coefficients @ _trend_spectrum()
    _assign(reasons, _steady_tone(ac_transform, ac_energy), "a steady tone with no 60 Hz content: most of the energy "
            "is above 250 Hz and stays constant over the whole window, unlike switching transients that decay")

    scan = (ac @ _scan_basis()) ** 2
    scan = scan.reshape(n, 3, len(_SCAN_HZ), 2).sum(axis=(1, 3))  # (n, frequencies)
    best = scan[:, :-1].argmax(axis=1)
    best_hz = _SCAN_HZ[best]
    share = scan[np.arange(n), best] / (ac_energy + 1e-30)
    at_60 = scan[:, _AT_60_HZ]
    wrong = (
        (best_hz >= _WRONG_FREQUENCY_HZ[0]) & (best_hz <= _WRONG_FREQUENCY_HZ[1])
        & (share > 0.3) & (scan[np.arange(n), best] > 1.5 * at_60)
    )
    for i in np.flatnonzero(wrong) if wrong.any() else ():
        if reasons[i] is None:
            reasons[i] = (
                f"wrong frequency: the dominant component is about {best_hz[i]:.0f} Hz, not "
                f"{SYSTEM_FREQUENCY_HZ:.0f} Hz; the model only knows 60 Hz systems sampled at 10 kHz"
            )
    at_120 = scan[:, -1]
    doubled = (at_120 > _DOUBLED_FREQUENCY_RATIO * at_60) & (at_120 / (ac_energy + 1e-30) > 0.3)
    _assign(reasons, doubled, "wrong sample rate or frequency: the dominant component is 120 Hz, as a 60 Hz "
            "recording sampled at 5 kHz (not 10 kHz) would look")
    return reasons


def _steady_tone(ac_transform: np.ndarray, ac_energy: np.ndarray) -> np.ndarray:
    """(n,) True where > 60 % of the AC energy is above 250 Hz and it is spread evenly over the window.

    Capacitor-switching ringing is also high-frequency but dies out within milliseconds, so one
    quarter of the window always holds much less of it than another. The share comes from the
    spectrum (Parseval); only windows over 60 % go back to the time domain for the quarters.
    """
    power = ac_transform.real**2 + ac_transform.imag**2
    high_energy = (power[:, :, _TONE_START:] @ _parseval_weights()[_TONE_START:]).sum(axis=1)
    return _stationary(high_energy / (ac_energy + 1e-30) > 0.6, ac_transform, _TONE_START)


def _stationary(candidates: np.ndarray, transform: np.ndarray, start_bin: int) -> np.ndarray:
    """`candidates` (n,) kept only where the energy above rfft bin `start_bin` is spread evenly over
    the window's four quarters (smallest over largest above _STATIONARY_EVENNESS): noise or a steady
    tone, not a ringing that dies out. Only the candidates go back to the time domain."""
    result = candidates.copy()
    if not result.any():
        return result
    chosen = np.flatnonzero(result)
    spectrum = transform[chosen].copy()
    spectrum[:, :, :start_bin] = 0.0
    high = np.fft.irfft(spectrum, n=N_SAMPLES, axis=2) ** 2
    quarter = N_SAMPLES // 4
    quarters = high.sum(axis=1)[:, : 4 * quarter].reshape(-1, 4, quarter).sum(axis=2)
    result[chosen] = quarters.min(axis=1) / (quarters.max(axis=1) + 1e-30) > _STATIONARY_EVENNESS
    return result


def _assign(reasons: list[str | None], mask: np.ndarray, reason: str) -> None:
    if not mask.any():
        return
    for i in np.flatnonzero(mask):
        if reasons[i] is None:
            reasons[i] = reason


def _clipped(x: np.ndarray, highest: np.ndarray, lowest: np.ndarray, spread: np.ndarray) -> np.ndarray:
    """(n,) True where some phase holds its max or min level, far from zero, for a run of samples.

    `highest`, `lowest`, `spread`: (n, 3) per-phase max, min and max - min of `x`. A phase that
    also dwells at another level *between* its top and bottom plateaus (the zero between the
    blocks of an idealised rectifier current, a step of a 12-pulse staircase: Mohan, Undeland &
    Robbins, "Power Electronics", ch. 5-6) is a block waveform, not a clipped one: a recorder's
    clipping flattens only the extremes of a current that keeps moving in between.
    """
    result = np.zeros(x.shape[0], dtype=bool)
    peak = np.maximum(np.abs(highest), np.abs(lowest))  # (n, 3)
    tolerance = (_CLIP_TOLERANCE * spread + 1e-12)[:, :, None]
    at_top, at_bottom = x >= highest[:, :, None] - tolerance, x <= lowest[:, :, None] + tolerance
    for extreme, at_level in ((highest, at_top), (lowest, at_bottom)):
        far_from_zero = (np.abs(extreme) >= 0.3 * peak) & (spread > 0)
        candidates = (at_level.sum(axis=2) >= _CLIP_RUN) & far_from_zero
        if candidates.any():
            run = np.zeros(candidates.shape, dtype=np.int64)
            run[candidates] = _longest_run(at_level[candidates])
            held = run >= _CLIP_RUN
            for i, phase in zip(*np.nonzero(held), strict=True):
                held[i, phase] = not _dwells_between_extremes(x[i, phase], at_top[i, phase], at_bottom[i, phase],
                                                              float(tolerance[i, phase, 0]))
            result |= held.any(axis=1)
    return result


def _dwells_between_extremes(trace: np.ndarray, at_top: np.ndarray, at_bottom: np.ndarray, tolerance: float) -> bool:
    """Does `trace` hold a level (not an extreme) for _DWELL samples with its top plateau on one
    side and its bottom plateau on the other, each within a cycle?"""
    steady = (np.abs(np.diff(trace)) <= tolerance) & ~(at_top[1:] | at_bottom[1:]) & ~(at_top[:-1] | at_bottom[:-1])
    if not steady.any():
        return False
    cycle = int(round(SAMPLES_PER_CYCLE))
    for start, end in zip(*_runs(steady), strict=True):
        if end - start + 1 < _DWELL:
            continue
        before, after = slice(max(start - cycle, 0), start), slice(end + 1, end + 1 + cycle)
        if (at_top[before].any() and at_bottom[after].any()) or (at_bottom[before].any() and at_top[after].any()):
            return True
    return False


def _longest_run(mask: np.ndarray) -> np.ndarray:
    """Longest run of True along the last axis, for every leading index (vectorised)."""
    flat = mask.reshape(-1, mask.shape[-1])
    longest = np.zeros(flat.shape[0], dtype=np.int64)
    for row in np.flatnonzero(flat.any(axis=1)):
        starts, ends = _runs(flat[row])
        longest[row] = int((ends - starts).max())
    return longest.reshape(mask.shape[:-1])


def _runs(mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Starts and (exclusive) ends of the runs of True in a 1-D mask."""
    edges = np.diff(np.concatenate([[0], mask.astype(np.int8), [0]]))
    return np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)


@dataclass(frozen=True)
class FeatureDetector:
    """Is the hidden vector typical of the class the network chose? Plus the amplitude range.

    `whitening` maps hidden vectors to a space where the shared within-class covariance is the
    identity; `centres` are the class means there (rows for `class_ids`) and `scales` each
    class's radius (90th percentile distance of its own validation windows, so wide classes
    such as CT saturation get a wide radius). The score is the distance to the predicted
    class's centre divided by its radius; `threshold` is a high quantile of validation scores.
    """

    whitening: np.ndarray  # (256, 256)
    centres: np.ndarray  # (n_classes, 256), whitened
    scales: np.ndarray  # (n_classes,)
    class_ids: np.ndarray  # (n_classes,) label id of each row
    threshold: float
    peak_range: tuple[float, float]  # smallest and largest window peak |x| seen in training

    @cached_property
    def _row_of_label(self) -> np.ndarray:
        """Row of each label id in `centres` (-1 for a label without a centre), built once."""
        rows = np.full(int(self.class_ids.max(initial=-1)) + 1, -1, dtype=np.int64)
        rows[self.class_ids] = np.arange(len(self.class_ids))
        return rows

    def _distances(self, hidden: np.ndarray) -> np.ndarray:
        z = np.asarray(hidden, dtype=np.float64) @ self.whitening
        squared = (z**2).sum(1)[:, None] - 2.0 * z @ self.centres.T + (self.centres**2).sum(1)[None, :]
        return np.sqrt(np.maximum(squared, 0.0))  # (n, n_classes)

    def scores(self, hidden: np.ndarray, predicted: np.ndarray | None = None) -> np.ndarray:
        """(n,) distance of each hidden vector (n, 256) to its predicted class's centre, in radii.

        Without `predicted` the nearest centre stands in for the predicted class; a label without
        a centre (not in the training data) is scored against the nearest centre too.
        """
        distances = self._distances(hidden)
        scaled = distances / self.scales[None, :]
        if predicted is None:
            predicted = self.class_ids[distances.argmin(axis=1)]
        labels = np.asarray(predicted, dtype=np.int64)
        known = (labels >= 0) & (labels < len(self._row_of_label))
        row_of = np.where(known, self._row_of_label[np.clip(labels, 0, len(self._row_of_label) - 1)], -1)
        nearest = scaled.min(axis=1)
        picked = scaled[np.arange(len(row_of)), np.maximum(row_of, 0)]
        return np.where(row_of >= 0, picked, nearest)

    def reasons(self, raw: np.ndarray, hidden: np.ndarray, predicted: np.ndarray | None = None) -> list[str | None]:
        """Per window, why it is out of the training distribution, or None."""
        peak = np.abs(np.where(np.isfinite(raw), raw, 0.0)).max(axis=(1, 2))
        score = self.scores(hidden, predicted)
        low, high = self.peak_range
        reasons: list[str | None] = []
        for window_peak, window_score in zip(peak, score, strict=True):
            if window_peak < 0.25 * low:
                reasons.append(
                    f"amplitude too small: peak {window_peak:.3g}, while events the model knows peak "
                    f"at {low:.3g} or more; check the units and CT ratio"
                )
            elif window_peak > 10.0 * high:
                reasons.append(
                    f"amplitude too large: peak {window_peak:.3g}, beyond the {high:.3g} of any event "
                    "the model knows; check the units and CT ratio"
                )
            elif window_score > self.threshold:
                reasons.append(
                    f"unlike the training events of the predicted class: feature distance "
                    f"{window_score:.2f} exceeds the calibrated limit {self.threshold:.2f}"
                )
            else:
                reasons.append(None)
        return reasons

    def save(self, path: Path) -> None:
        np.savez(
            path,
            whitening=self.whitening.astype(np.float64),
            centres=self.centres.astype(np.float64),
            scales=self.scales.astype(np.float64),
            class_ids=self.class_ids.astype(np.int64),
            threshold=np.float64(self.threshold),
            peak_range=np.asarray(self.peak_range, dtype=np.float64),
        )

    @classmethod
    def load(cls, path: Path) -> FeatureDetector:
        with np.load(path, allow_pickle=False) as data:
            centres = np.asarray(data["centres"], dtype=np.float64)
            return cls(
                whitening=np.asarray(data["whitening"], dtype=np.float64),
                centres=centres,
                scales=np.asarray(data["scales"], dtype=np.float64),
                class_ids=np.asarray(data["class_ids"], dtype=np.int64),
                threshold=float(data["threshold"]),
                peak_range=(float(data["peak_range"][0]), float(data["peak_range"][1])),
            )


def fit_feature_detector(
    hidden_train: np.ndarray,
    y_train: np.ndarray,
    hidden_validation: np.ndarray,
    y_validation: np.ndarray,
    raw_train: np.ndarray,
    quantile: float = 0.995,
    predicted_validation: np.ndarray | None = None,
) -> FeatureDetector:
    """Class centres and shared covariance from training vectors; class radii and threshold from validation.

    Radii come from windows the network did not train on (training windows sit closer to their
    centres than new ones, most of all for wide classes). The threshold is the `quantile` of the
    validation scores (against the predicted class), so about (1 - quantile) of valid events are
    flagged by this score.
    """
    hidden_train = np.asarray(hidden_train, dtype=np.float64)
    classes = np.unique(y_train)
    index = np.searchsorted(classes, y_train)
    means = np.stack([hidden_train[y_train == c].mean(axis=0) for c in classes])
    centred = hidden_train - means[index]
    covariance = centred.T @ centred / max(len(centred) - len(classes), 1)
    # shrinkage keeps dead ReLU units (zero variance) from blowing up the inverse
    covariance += np.eye(covariance.shape[0]) * (1e-3 * np.trace(covariance) / covariance.shape[0] + 1e-9)
    eigenvalues, eigenvectors = np.linalg.eigh(covariance)
    whitening = eigenvectors / np.sqrt(eigenvalues)[None, :]
    centres = means @ whitening
    unscaled = FeatureDetector(whitening, centres, np.ones(len(classes)), classes, np.inf, (0.0, np.inf))
    distances = unscaled._distances(hidden_validation)
    scales = np.ones(len(classes))
    for k, label in enumerate(classes):
        members = np.asarray(y_validation) == label
        if members.any():
            scales[k] = max(float(np.quantile(distances[members, k], _SCALE_QUANTILE)), 1e-6)
        else:  # no validation window of this class: its training windows, widened
            own = unscaled._distances(hidden_train[index == k])[:, k]
            scales[k] = max(1.2 * float(np.quantile(own, _SCALE_QUANTILE)), 1e-6)
    scaled = FeatureDetector(whitening, centres, scales, classes, np.inf, (0.0, np.inf))
    if predicted_validation is None:  # the classifier's labels, when given, else the true ones
        predicted_validation = np.asarray(y_validation)
    threshold = float(np.quantile(scaled.scores(hidden_validation, predicted_validation), quantile))
    peaks = np.abs(np.asarray(raw_train)).max(axis=(1, 2))
    return FeatureDetector(whitening, centres, scales, classes, threshold, (float(peaks.min()), float(peaks.max())))
