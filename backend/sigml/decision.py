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

Fitted to the pooled validation scores alone, a cut meets its target on those writers and misses it on new ones:
a few validation writers hold most of the low-scoring forgeries, and a large dataset outweighs a small one. Given
each score's writer (`"dataset/writer"`), `fit_band` therefore (a) counts rates per dataset and averages them
(the macro rate the benchmark reports) and (b) resamples writers within each dataset (`n_boot` times) and keeps
a cut that meets the target in `level` of the resamples: a cut meant to hold on writers not yet seen.

A `rate curve` (score → share of skilled forgeries scoring at most that, share of genuine signatures scoring
more) is stored beside the cuts so that any served score can say "N in 100 skilled forgeries of writers never
seen score this low". Scores are distances: smaller = more alike. Every function here is pure.
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

import numpy as np

DECISIONS = ("genuine", "inconclusive", "forged")
DEFAULT_TARGET_FAR = 0.02
DEFAULT_TARGET_FRR = 0.02
CURVE_POINTS = 101
DEFAULT_BOOT = 200
DEFAULT_LEVEL = 0.9  # chosen on validation writers by bench/band_holdout.py (docs/results.md)


def _split(scores: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    scores, labels = np.asarray(scores, dtype=np.float64), np.asarray(labels)
    genuine, forged = np.sort(scores[labels == 1]), np.sort(scores[labels == 0])
    if len(genuine) == 0 or len(forged) == 0:
        raise ValueError("decision bands need both genuine and forged scores")
    return genuine, forged


def weighted_cut(sorted_scores: np.ndarray, weights: np.ndarray, target: float) -> float:
    """The largest cut at which the scores at or below it weigh at most `target` (weights sum to 1, scores sorted
    ascending): halfway between the m-th and (m+1)-th score, m the longest prefix within the target (below the
    smallest score when m = 0)."""
    m = int(np.searchsorted(np.cumsum(weights), target + 1e-9, side="right"))
    if m == 0:
        return float(sorted_scores[0] - 1e-6)
    if m >= len(sorted_scores):
        return float(sorted_scores[-1])
    return float((sorted_scores[m - 1] + sorted_scores[m]) / 2)


def genuine_cut(forged_scores: np.ndarray, target_far: float) -> float:
    """The largest cut at which at most `target_far` of the forged scores are at or below it: halfway between the
    m-th and (m+1)-th smallest forged score, m = floor(target_far * n) (below the smallest when m = 0)."""
    forged = np.sort(np.asarray(forged_scores, dtype=np.float64))
    return weighted_cut(forged, np.full(len(forged), 1 / len(forged)), target_far)


def forged_cut(genuine_scores: np.ndarray, target_frr: float) -> float:
    """The smallest cut at which at most `target_frr` of the genuine scores are above it (mirror of `genuine_cut`)."""
    return -genuine_cut(-np.asarray(genuine_scores, dtype=np.float64), target_frr)


def writer_weights(writers: Sequence[str], rng: np.random.Generator | None = None) -> np.ndarray:
    """Per-score weights that make a share of them the mean over datasets (the part of `"dataset/writer"` before the
    slash) of each dataset's share. With `rng`, writers are drawn with replacement within each dataset first (one
    bootstrap resample: a writer drawn twice counts twice, one not drawn not at all)."""
    writers = np.asarray(writers)
    datasets = np.asarray([w.split("/", 1)[0] for w in writers])
    weights = np.zeros(len(writers))
    names = np.unique(datasets)
    for name in names:
        in_dataset = datasets == name
        ids, index = np.unique(writers[in_dataset], return_inverse=True)
        counts = np.ones(len(ids)) if rng is None else np.bincount(rng.integers(0, len(ids), len(ids)),
                                                                    minlength=len(ids)).astype(float)
        per_score = counts[index]
        weights[in_dataset] = per_score / per_score.sum() / len(names) if per_score.sum() else 0.0
    return weights / weights.sum()


def held_cut(scores: np.ndarray, writers: Sequence[str], target: float, *, level: float, n_boot: int,
             seed: int) -> float:
    """The cut of `weighted_cut` (scores at or below it weigh at most `target`, each dataset weighing the same)
    that holds in `level` of `n_boot` writer resamples: the (1 - level) quantile of the resamples' cuts
    (`level` 0: the cut on the writers as they are)."""
    order = np.argsort(np.asarray(scores, dtype=np.float64), kind="stable")
    sorted_scores, sorted_writers = np.asarray(scores, dtype=np.float64)[order], np.asarray(writers)[order]
    cut = weighted_cut(sorted_scores, writer_weights(sorted_writers), target)
    if level <= 0 or n_boot <= 0:
        return cut
    rng = np.random.default_rng(seed)
    cuts = [weighted_cut(sorted_scores, writer_weights(sorted_writers, rng), target) for _ in range(n_boot)]
    return float(np.quantile(cuts, 1 - level))


def decide(score: float, band: Mapping[str, float]) -> str:
    """The one rule of the three-way decision."""
    if score <= band["genuine_below"]:
        return "genuine"
    if score > band["forged_above"]:
        return "forged"
    return "inconclusive"


PAGE_FLAG = "cut_from_a_page"


def on_a_page(decided: str) -> str:
    """The decision for a signature cut from a page (a box given or located on an image the page check calls a
    page, `sigml.locate.preprocess_located`): never "forged". On the test documents of `bench/auto_crop.py` a genuine
    signature cut from the page was decided forged many times more often than a genuine scan is, while skilled
    forgeries cut from a page were decided genuine about as rarely as on scans (`docs/results.md`); the measured
    rates of a forged answer do not hold there, so it is left to a specialist."""
    return "inconclusive" if decided == "forged" else decided


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
             target_frr: float = DEFAULT_TARGET_FRR, writers: Sequence[str] | None = None, level: float = 0.0,
             n_boot: int = DEFAULT_BOOT, seed: int = 0) -> dict[str, Any]:
    """The two cuts from validation scores (labels 1 = genuine, 0 = skilled forgery), clipped around the EER
    threshold, with the rates and the three-way split they give on those same scores.

    Without `writers`, rates are shares of the pooled scores. With them (`"dataset/writer"` per score), rates are
    averaged over datasets and each cut is the one that meets its target in `level` of `n_boot` writer resamples
    (`held_cut`); the band records how it was fitted under `fit`."""
    genuine, forged = _split(scores, labels)
    if writers is None:
        low, high = genuine_cut(forged, target_far), forged_cut(genuine, target_frr)
        fit: dict[str, Any] = {"rates": "pooled"}
    else:
        scores, labels, writers = np.asarray(scores, dtype=np.float64), np.asarray(labels), np.asarray(writers)
        low = held_cut(scores[labels == 0], writers[labels == 0], target_far, level=level, n_boot=n_boot, seed=seed)
        high = -held_cut(-scores[labels == 1], writers[labels == 1], target_frr, level=level, n_boot=n_boot,
                         seed=seed + 1)
        fit = {"rates": "mean over datasets", "level": float(level), "n_boot": int(n_boot) if level > 0 else 0}
    band: dict[str, Any] = {
        "genuine_below": min(low, float(eer_threshold)),
        "forged_above": max(high, float(eer_threshold)),
        "target_far": float(target_far),
        "target_frr": float(target_frr),
        "fit": fit,
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
