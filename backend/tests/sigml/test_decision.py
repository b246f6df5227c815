"""The three-way decision: cuts at the target rates, the one decision rule, rate curves, the card's bands."""

import numpy as np
import pytest

from sigml import decision
from sigml.modelcard import ModelCard
from sigml.model import ModelConfig
from sigml.preprocessing import PreprocessConfig


def scores_and_labels(seed: int = 0, n_genuine: int = 400, n_forged: int = 300):
    rng = np.random.default_rng(seed)
    genuine = rng.normal(0.4, 0.15, n_genuine)  # distances: genuine small, forgeries large, overlapping
    forged = rng.normal(0.8, 0.2, n_forged)
    return np.concatenate([genuine, forged]), np.r_[np.ones(n_genuine, int), np.zeros(n_forged, int)]


@pytest.mark.parametrize("target", [0.0, 0.02, 0.1, 0.5])
def test_genuine_cut_is_the_largest_cut_within_the_target_far(target):
    forged = np.random.default_rng(1).normal(0.8, 0.2, 250)
    cut = decision.genuine_cut(forged, target)
    far = np.mean(forged <= cut)
    assert far <= target + 1e-12
    # one more forgery accepted would exceed the target: the next forged score above the cut breaks it
    nxt = np.sort(forged[forged > cut])[0]
    assert np.mean(forged <= nxt) > target


@pytest.mark.parametrize("target", [0.0, 0.02, 0.1])
def test_forged_cut_is_the_smallest_cut_within_the_target_frr(target):
    genuine = np.random.default_rng(2).normal(0.4, 0.15, 300)
    cut = decision.forged_cut(genuine, target)
    assert np.mean(genuine > cut) <= target + 1e-12
    prev = np.sort(genuine[genuine <= cut])[-1]
    assert np.mean(genuine >= prev) > target


def test_decide_boundaries():
    band = {"genuine_below": 0.3, "forged_above": 0.7}
    assert decision.decide(0.3, band) == "genuine"
    assert decision.decide(0.30001, band) == "inconclusive"
    assert decision.decide(0.7, band) == "inconclusive"
    assert decision.decide(0.70001, band) == "forged"


def test_fit_band_meets_targets_and_brackets_the_eer_threshold():
    scores, labels = scores_and_labels()
    band = decision.fit_band(scores, labels, eer_threshold=0.6, target_far=0.02, target_frr=0.02)
    assert band["genuine_below"] <= 0.6 <= band["forged_above"]
    forged, genuine = scores[labels == 0], scores[labels == 1]
    assert np.mean(forged <= band["genuine_below"]) <= 0.02
    assert np.mean(genuine > band["forged_above"]) <= 0.02
    split = band["validation"]
    for truth in ("genuine", "forged"):
        assert sum(split[truth].values()) == pytest.approx(1.0)
    assert split["forged"]["genuine"] <= 0.02 and split["genuine"]["forged"] <= 0.02
    assert split["genuine"]["inconclusive"] > 0  # the overlap is honestly left undecided
    assert (split["n_genuine"], split["n_forged"]) == (400, 300)


def test_fit_band_collapses_to_the_eer_threshold_when_classes_separate():
    scores = np.r_[np.linspace(0.1, 0.3, 50), np.linspace(0.9, 1.2, 50)]
    labels = np.r_[np.ones(50, int), np.zeros(50, int)]
    band = decision.fit_band(scores, labels, eer_threshold=0.6)
    # both cuts would cross each other; clipping at the EER threshold leaves no inconclusive scores
    assert band["genuine_below"] == band["forged_above"] == 0.6
    assert band["validation"]["genuine"]["genuine"] == 1.0 and band["validation"]["forged"]["forged"] == 1.0


def test_fit_band_needs_both_classes():
    with pytest.raises(ValueError):
        decision.fit_band(np.array([0.1, 0.2]), np.array([1, 1]), eer_threshold=0.5)


def test_rate_curve_and_rates_at_match_the_empirical_rates():
    scores, labels = scores_and_labels(3)
    curve = decision.rate_curve(scores, labels)
    assert len(curve["score"]) <= decision.CURVE_POINTS
    assert np.all(np.diff(curve["far"]) >= 0) and np.all(np.diff(curve["frr"]) <= 0)
    forged, genuine = scores[labels == 0], scores[labels == 1]
    for s in curve["score"][::10]:
        rates = decision.rates_at(curve, s)
        assert rates["forgeries_scoring_this_low"] == pytest.approx(np.mean(forged <= s), abs=1e-4)
        assert rates["genuine_scoring_this_high"] == pytest.approx(np.mean(genuine > s), abs=1e-4)
    assert decision.rates_at(curve, -5.0) == {"forgeries_scoring_this_low": 0.0, "genuine_scoring_this_high": 1.0}
    assert decision.rates_at(curve, 50.0) == {"forgeries_scoring_this_low": 1.0, "genuine_scoring_this_high": 0.0}


def card(**kwargs) -> ModelCard:
    return ModelCard(architecture=ModelConfig(), preprocessing=PreprocessConfig(), threshold=0.5,
                     thresholds={"pairwise": 0.5, "reference_based": 1.2}, **kwargs)


def test_card_bands_round_trip_and_fallback():
    old = card()
    # a card from before the bands decides two-way at its EER thresholds
    assert old.band("pairwise") == {"genuine_below": 0.5, "forged_above": 0.5}
    assert old.band("reference_based") == {"genuine_below": 1.2, "forged_above": 1.2}
    scores, labels = scores_and_labels()
    new = card(decision_bands={"pairwise": decision.fit_band(scores, labels, 0.5)},
               rate_curves={"pairwise": decision.rate_curve(scores, labels)})
    again = ModelCard.from_dict(new.to_dict())
    assert again.band("pairwise") == new.band("pairwise")
    assert again.rate_curves == new.rate_curves
    assert again.band("reference_based") == {"genuine_below": 1.2, "forged_above": 1.2}


def test_card_with_a_broken_band_is_refused():
    data = card().to_dict()
    data["decision_bands"] = {"pairwise": {"genuine_below": "low"}}
    with pytest.raises((ValueError, KeyError)):
        ModelCard.from_dict(data)
