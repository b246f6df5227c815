"""The three-way decision: genuine / inconclusive / forged, and the error rates measured where a score falls.

A single EER threshold forces an answer on every score, even where genuine signatures and skilled forgeries
overlap. Two cuts per protocol, both fitted on validation writers, say only what was measured:
- `genuine_below`: scores at or below it are "genuine"; at most `target_far` of validation skilled forgeries
  score that low (the false-accept rate of a GENUINE answer);
- `forged_above`: scores above it are "forged"; at most `target_frr` of validation genuine signatures score that
  high (the false-reject rate of a FORGED answer);
- in between: "inconclusive", refer to a specialist.
The cuts are clipped around the EER threshold (`genuine_below <= threshold <= forged_above`), so a "genuine"
decision is never above the threshold and a "forged" one never at or below it (the threshold answers nothing).

A `rate curve` (score → share of skilled forgeries scoring at most that, share of genuine signatures scoring
more) is stored beside the cuts so that any served score can say "N in 100 skilled forgeries of writers never
seen score this low". Scores are distances: smaller = more alike. Every function here is pure.
"""

from __future__ import annotations

from typing import Any, Mapping

import numpy as np

DECISIONS = ("genuine", "inconclusive", "forged")
DEFAULT_TARGET_FAR = 0.02
DEFAULT_TARGET_FRR = 0.02
CURVE_POINTS = 101


def _split(scores: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    scores, labels = np.asarray(scores, dtype=np.float64), np.asarray(labels)
    genuine, forged = np.sort(scores[labels == 1]), np.sort(scores[labels == 0])
    if len(genuine) == 0 or len(forged) == 0:
        raise ValueError("decision bands need both genuine and forged scores")
    return genuine, forged


def genuine_cut(forged_scores: np.ndarray, target_far: float) -> float:
    """The largest cut at which at most `target_far` of the forged scores are at or below it: halfway between the
    m-th and (m+1)-th smallest forged score, m = floor(target_far * n) (below the smallest when m = 0)."""
    forged = np.sort(np.asarray(forged_scores, dtype=np.float64))
    m = int(np.floor(target_far * len(forged) + 1e-9))
    if m == 0:
        return float(forged[0] - 1e-6)
    if m >= len(forged):
        return float(forged[-1])
    return float((forged[m - 1] + forged[m]) / 2)


def forged_cut(genuine_scores: np.ndarray, target_frr: float) -> float:
    """The smallest cut at which at most `target_frr` of the genuine scores are above it (mirror of `genuine_cut`)."""
    return -genuine_cut(-np.asarray(genuine_scores, dtype=np.float64), target_frr)


def decide(score: float, band: Mapping[str, float]) -> str:
    """The one rule of the three-way decision."""
    if score <= band["genuine_below"]:
        return "genuine"
    if score > band["forged_above"]:
        return "forged"
    return "inconclusive"


def band_split(scores: np.ndarray, labels: np.ndarray, band: Mapping[str, float]) -> dict[str, dict[str, float]]:
    """How the band sorts genuine and forged scores: {"genuine": {decision: share}, "forged": {decision: share}}."""
    scores, labels = np.asarray(scores, dtype=np.float64), np.asarray(labels)
    out: dict[str, dict[str, float]] = {}
    for truth, label in (("genuine", 1), ("forged", 0)):
        sub = scores[labels == label]
        decisions = [decide(float(s), band) for s in sub]
        out[truth] = {d: (decisions.count(d) / len(sub) if len(sub) else float("nan")) for d in DECISIONS}
    out["n_genuine"], out["n_forged"] = int((labels == 1).sum()), int((labels == 0).sum())  # type: ignore[assignment]
    return out


def fit_band(scores: np.ndarray, labels: np.ndarray, eer_threshold: float, *, target_far: float = DEFAULT_TARGET_FAR,
             target_frr: float = DEFAULT_TARGET_FRR) -> dict[str, Any]:
    """The two cuts from validation scores (labels 1 = genuine, 0 = skilled forgery), clipped around the EER
    threshold, with the rates and the three-way split they give on those same scores."""
    genuine, forged = _split(scores, labels)
    band: dict[str, Any] = {
        "genuine_below": min(genuine_cut(forged, target_far), float(eer_threshold)),
        "forged_above": max(forged_cut(genuine, target_frr), float(eer_threshold)),
        "target_far": float(target_far),
        "target_frr": float(target_frr),
    }
    band["validation"] = band_split(scores, labels, band)
    return band


def rate_curve(scores: np.ndarray, labels: np.ndarray, points: int = CURVE_POINTS) -> dict[str, list[float]]:
    """Score grid (quantiles of all scores) with, at each score s, `far` = share of forged scores <= s and
    `frr` = share of genuine scores > s. Compact enough for the model card; `rates_at` interpolates it."""
    genuine, forged = _split(scores, labels)
    grid = np.unique(np.quantile(np.concatenate([genuine, forged]), np.linspace(0, 1, points)))
    far = np.searchsorted(forged, grid, side="right") / len(forged)
    frr = 1 - np.searchsorted(genuine, grid, side="right") / len(genuine)
    return {"score": [round(float(x), 6) for x in grid], "far": [round(float(x), 4) for x in far],
            "frr": [round(float(x), 4) for x in frr]}


def rates_at(curve: Mapping[str, list[float]], score: float) -> dict[str, float]:
    """The measured rates at `score`: `forgeries_scoring_this_low` (share of skilled forgeries whose score is at
    most this one) and `genuine_scoring_this_high` (share of genuine signatures scoring more)."""
    grid = np.asarray(curve["score"], dtype=np.float64)
    far = float(np.interp(score, grid, curve["far"], left=0.0, right=1.0))
    frr = float(np.interp(score, grid, curve["frr"], left=1.0, right=0.0))
    return {"forgeries_scoring_this_low": round(far, 4), "genuine_scoring_this_high": round(frr, 4)}
