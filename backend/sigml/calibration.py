"""Thresholds, decision bands and Platt fits from validation writers' embeddings.

Used at the end of training (`train.finalize`) and by `sigml calibrate` (`cli.recalibrate`), which
re-derives a shipped card's thresholds from its own validation writers without retraining (e.g. after a
new reference score). Test writers never reach this module.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np
from sklearn.linear_model import LogisticRegression

from . import decision, metrics, protocols
from .datasets import SignatureRecord

DEFAULT_REFERENCE_SCORE = "normalized"


def protocol_text(reference_score: str = DEFAULT_REFERENCE_SCORE) -> str:
    """The model card's one-line description of how its thresholds and metrics were obtained."""
    reference = "mean distance to K genuine references"
    if reference_score == "normalized":
        reference += " divided by the references' own spread (their mean pairwise distance)"
    return ("writer-disjoint splits; thresholds and calibration on validation writers only; "
            f"pairwise = genuine-genuine vs genuine-skilled pairs of each writer; reference_based = {reference}")


def platt(scores: np.ndarray, labels: np.ndarray) -> dict[str, float]:
    """Platt scaling of score → P(genuine) (balanced classes): sigmoid(slope * score + intercept). The card keeps it
    as a record of the validation scores; no answer reads it."""
    model = LogisticRegression(class_weight="balanced")
    model.fit(np.asarray(scores, dtype=np.float64).reshape(-1, 1), np.asarray(labels))
    return {"slope": float(model.coef_[0, 0]), "intercept": float(model.intercept_[0])}


@dataclass(frozen=True)
class ValidationResult:
    """What the validation writers say about a model.

    `metrics`: the figures a model card keeps under `metrics["validation"]`: "pairwise" and, when every writer has
    K references to spare, "reference_based" (`metrics.summary` blocks; "reference_based" adds `k` and `score`),
    and with several datasets "pairwise_<dataset>" for each. `pairwise_scores` / `reference_scores` (None when K
    references do not fit): the scored pairs and questioned signatures the thresholds and calibration are fitted to.
    """

    metrics: dict[str, Any]
    pairwise_scores: protocols.Scored
    reference_scores: protocols.Scored | None


def validation_metrics(emb: np.ndarray, records: Sequence[SignatureRecord], *, k: int, seed: int,
                       reference_score: str = DEFAULT_REFERENCE_SCORE) -> ValidationResult:
    """Pairwise and reference-based EERs (and their EER thresholds) of validation writers, per dataset too,
    with the scores they were measured on."""
    pairwise = protocols.pairwise(emb, records)
    figures: dict[str, Any] = {"pairwise": metrics.summary(pairwise.distances, pairwise.labels, None)}
    try:
        reference_based = protocols.reference_based(emb, records, k=k, seed=seed, score=reference_score)
    except ValueError:
        reference_based = None
    if reference_based is not None:
        figures["reference_based"] = {**metrics.summary(reference_based.distances, reference_based.labels, None),
                                      "k": k, "score": reference_score}
    datasets = sorted({r.dataset for r in records})
    if len(datasets) > 1:
        for name in datasets:
            keep = np.asarray([w.split("/", 1)[0] == name for w in pairwise.writers])
            if keep.any() and len(set(pairwise.labels[keep])) == 2:
                figures[f"pairwise_{name}"] = metrics.summary(pairwise.distances[keep], pairwise.labels[keep], None)
    return ValidationResult(figures, pairwise, reference_based)


def card_calibration(emb: np.ndarray, records: Sequence[SignatureRecord], *, k: int, seed: int,
                     reference_score: str = DEFAULT_REFERENCE_SCORE) -> tuple[dict[str, Any], dict[str, Any]]:
    """(fields for the model card, validation metrics) from validation writers' embeddings.

    The card fields: `threshold` and `thresholds` at the validation EER, Platt `calibration` of pair
    distances, `reference_score` and its own `reference_calibration` (Platt + `spread_floor`, half the
    smallest spread of K references among validation writers), and per protocol the three-way
    `decision_bands` and the `rate_curves` they were read from (`sigml.decision`)."""
    validation = validation_metrics(emb, records, k=k, seed=seed, reference_score=reference_score)
    val, pairwise, reference_based = validation.metrics, validation.pairwise_scores, validation.reference_scores
    fields: dict[str, Any] = {
        "threshold": val["pairwise"]["eer_threshold"],
        "thresholds": {"pairwise": val["pairwise"]["eer_threshold"]},
        "calibration": platt(pairwise.distances, pairwise.labels),
        "reference_score": reference_score,
        "reference_calibration": {},
    }
    if reference_based is not None:
        fields["thresholds"]["reference_based"] = val["reference_based"]["eer_threshold"]
        reference_calibration = platt(reference_based.distances, reference_based.labels)
        if reference_score == "normalized":
            # a guard against degenerate enrolments (one image enrolled twice), not a tuning knob: half the
            # smallest spread of any validation writer, so no real writer's score is changed by it
            spreads = protocols.reference_spreads(emb, records, k=k, seed=seed)
            reference_calibration["spread_floor"] = 0.5 * float(spreads.min())
        fields["reference_calibration"] = reference_calibration
    fields.update(decision_fields(pairwise, reference_based, fields["thresholds"], seed=seed))
    return fields, val


def decision_fields(pairwise: protocols.Scored, reference_based: protocols.Scored | None,
                    thresholds: dict[str, float], *, seed: int = 0) -> dict[str, Any]:
    """The card's `decision_bands` and `rate_curves` per protocol from validation scores, the cuts clipped around
    the protocol's EER threshold in `thresholds`. The cuts are fitted to hold on new writers (rates averaged over
    datasets, kept in `decision.DEFAULT_LEVEL` of writer resamples: `decision.fit_band`)."""
    bands, curves = {}, {}
    for protocol, scored in (("pairwise", pairwise), ("reference_based", reference_based)):
        if scored is not None:
            bands[protocol] = decision.fit_band(scored.distances, scored.labels, thresholds[protocol],
                                                writers=scored.writers, level=decision.DEFAULT_LEVEL, seed=seed)
            curves[protocol] = decision.rate_curve(scored.distances, scored.labels)
    return {"decision_bands": bands, "rate_curves": curves}
