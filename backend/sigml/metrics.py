"""Verification metrics on distances (small = same writer). Pure functions over numpy arrays.

Labels are 1 for genuine (same-writer) comparisons and 0 for forgeries. A comparison is accepted as
genuine when its distance is <= the threshold. FAR = accepted forgeries / forgeries,
FRR = rejected genuine / genuine. ROC quantities come from scikit-learn on the score -distance.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from sklearn.metrics import det_curve, roc_auc_score, roc_curve


def _arrays(distances, labels) -> tuple[np.ndarray, np.ndarray]:
    """(d, y): distances as float64 and labels as int64, flat, checked to match and be finite."""
    d = np.asarray(distances, dtype=np.float64).ravel()
    y = np.asarray(labels, dtype=np.int64).ravel()
    if d.shape != y.shape:
        raise ValueError("distances and labels differ in length")
    if not np.isfinite(d).all():
        raise ValueError("distances contain NaN or infinity")
    return d, y


def eer(distances, labels) -> tuple[float, float]:
    """Equal error rate and the distance threshold where FAR and FRR meet (linear interpolation)."""
    d, y = _arrays(distances, labels)
    if y.min() == y.max():
        raise ValueError("EER needs both genuine and forged comparisons")
    fpr, tpr, thresholds = roc_curve(y, -d, drop_intermediate=False)
    fnr = 1 - tpr
    diff = fpr - fnr  # increases along the curve
    i = int(np.argmax(diff >= 0))
    if i == 0:
        return float(fpr[0]), float(-thresholds[1] if len(thresholds) > 1 else d.max())
    d0, d1 = diff[i - 1], diff[i]
    t = 0.0 if d1 == d0 else -d0 / (d1 - d0)
    rate = float(fpr[i - 1] + t * (fpr[i] - fpr[i - 1]))
    rate_fnr = float(fnr[i - 1] + t * (fnr[i] - fnr[i - 1]))
    thr_hi = -thresholds[i] if np.isfinite(thresholds[i]) else d.max()
    thr_lo = -thresholds[i - 1] if np.isfinite(thresholds[i - 1]) else d.min()
    threshold = float(thr_lo + t * (thr_hi - thr_lo))
    return (rate + rate_fnr) / 2, threshold


def rates_at(distances, labels, threshold: float) -> dict[str, float]:
    """Accuracy, FAR and FRR when a distance <= `threshold` is accepted as genuine (NaN: no comparison of that class)."""
    d, y = _arrays(distances, labels)
    accept = d <= threshold
    genuine, forged = y == 1, y == 0
    far = float(accept[forged].mean()) if forged.any() else math.nan
    frr = float((~accept[genuine]).mean()) if genuine.any() else math.nan
    return {"accuracy": float((accept == genuine).mean()), "far": far, "frr": frr}


def summary(distances, labels, threshold: float | None) -> dict[str, Any]:
    """EER, AUC and accuracy/FAR/FRR at `threshold` (at the EER threshold when None)."""
    d, y = _arrays(distances, labels)
    rate, eer_threshold = eer(d, y)
    at = eer_threshold if threshold is None else float(threshold)
    return {
        "eer": rate,
        "eer_threshold": eer_threshold,
        "auc": float(roc_auc_score(y, -d)),
        "threshold": at,
        **rates_at(d, y, at),
        "n_genuine": int((y == 1).sum()),
        "n_forged": int((y == 0).sum()),
    }


def curves(distances, labels) -> dict[str, np.ndarray]:
    """ROC (fpr, tpr) and DET (far, frr) points for plotting."""
    d, y = _arrays(distances, labels)
    fpr, tpr, _ = roc_curve(y, -d)
    far, frr, _ = det_curve(y, -d)
    return {"fpr": fpr, "tpr": tpr, "det_far": far, "det_frr": frr}


def percentile_interval(draws, level: float = 0.95) -> list[float]:
    """The central `level` percentile interval [lo, hi] of bootstrap draws (NaN draws ignored)."""
    values = np.asarray(draws, dtype=np.float64)
    values = values[~np.isnan(values)]
    if not len(values):
        raise ValueError("no bootstrap draw to take an interval of")
    alpha = (1 - level) / 2
    return [float(np.quantile(values, alpha)), float(np.quantile(values, 1 - alpha))]


def writer_bootstrap(distances, labels, writers, *, other=None, n_boot: int = 1000, seed: int = 0,
                     level: float = 0.95, return_draws: bool = False) -> dict[str, Any]:
    """EER with a percentile confidence interval from resampling *writers* with replacement.

    Why writers and not comparisons: comparisons of one writer are not independent (one easy or hard person
    moves all of theirs), and the question a test set answers is how the system does on new people; with 10
    CEDAR test writers the interval is wide, which is what tells two close models apart or not. `other`: a
    second model's distances for the same comparisons (same order); then the interval of the EER difference
    (other - this), paired by writer (both models see the same resampled people). `return_draws`: also
    `draws`, the EER of every resample in draw order (n_boot values, NaN where a resample lacked one of
    the two classes), so resamples of several datasets can be combined draw by draw (a stratified bootstrap).
    """
    d, y = _arrays(distances, labels)
    writer_of = np.asarray(writers)
    if writer_of.shape != d.shape:
        raise ValueError("writers and distances differ in length")
    other_d = None if other is None else _arrays(other, labels)[0]
    names = np.unique(writer_of)
    members = [np.flatnonzero(writer_of == name) for name in names]
    rng = np.random.default_rng(seed)
    every_draw = np.full(n_boot, np.nan)
    draws, diffs = [], []
    for draw in range(n_boot):
        resample = np.concatenate([members[i] for i in rng.integers(0, len(names), len(names))])
        if y[resample].min() == y[resample].max():
            continue  # a resample without one of the two classes has no EER
        draw_eer = eer(d[resample], y[resample])[0]
        draws.append(draw_eer)
        every_draw[draw] = draw_eer
        if other_d is not None:
            diffs.append(eer(other_d[resample], y[resample])[0] - draw_eer)
    if not draws:
        raise ValueError("no bootstrap resample holds both genuine and forged comparisons")
    out: dict[str, Any] = {"eer": eer(d, y)[0], "ci": percentile_interval(draws, level),
                           "level": level, "n_writers": len(names), "n_boot": len(draws)}
    if other_d is not None:
        out["other_eer"] = eer(other_d, y)[0]
        out["difference"] = out["other_eer"] - out["eer"]
        out["difference_ci"] = percentile_interval(diffs, level)
    if return_draws:
        out["draws"] = every_draw
    return out
