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


# --- bands fitted to hold on new writers ---------------------------------------------------------------------------


def writer_scores(seed: int, datasets: dict[str, int], per_writer: int = 10, spread: float = 0.15):
    """Forgery scores of writers in datasets: each writer's scores share an offset (some writers are forged well),
    so the rate on new writers varies more than the pooled count suggests."""
    rng = np.random.default_rng(seed)
    scores, writers = [], []
    for name, n_writers in datasets.items():
        for w in range(n_writers):
            offset = rng.normal(0, spread)
            scores.extend(rng.normal(0.8 + offset, 0.1, per_writer))
            writers.extend([f"{name}/{w}"] * per_writer)
    return np.asarray(scores), np.asarray(writers)


def test_weighted_cut_with_equal_weights_is_the_plain_cut():
    forged = np.sort(np.random.default_rng(4).normal(0.8, 0.2, 300))
    for target in (0.0, 0.02, 0.3, 1.0):
        assert decision.weighted_cut(forged, np.full(300, 1 / 300), target) == decision.genuine_cut(forged, target)


def test_writer_weights_make_every_dataset_weigh_the_same():
    writers = np.asarray([f"A/{i % 2}" for i in range(10)] + [f"B/{i % 9}" for i in range(90)])
    weights = decision.writer_weights(writers)
    assert weights[:10].sum() == pytest.approx(0.5) and weights[10:].sum() == pytest.approx(0.5)
    # a resample: writers drawn with replacement within each dataset, reproducible from the generator's seed
    drawn = decision.writer_weights(writers, np.random.default_rng(0))
    assert drawn.sum() == pytest.approx(1.0) and drawn[:10].sum() == pytest.approx(0.5)
    np.testing.assert_array_equal(drawn, decision.writer_weights(writers, np.random.default_rng(0)))
    by_writer = {w: drawn[writers == w] for w in np.unique(writers)}
    assert any(v.sum() == 0 for v in by_writer.values())  # with 11 writers, some are not drawn
    assert all(len(set(v)) == 1 for v in by_writer.values())  # a writer's scores weigh alike


def test_held_cut_averages_rates_over_datasets():
    # dataset A: few forgeries, scoring low (hard); B: many, scoring high. Pooled, A's are 1/11 of the forgeries.
    rng = np.random.default_rng(5)
    a, b = rng.normal(0.5, 0.05, 20), rng.normal(1.0, 0.05, 200)
    scores = np.r_[a, b]
    writers = np.asarray([f"A/{i % 4}" for i in range(20)] + [f"B/{i % 40}" for i in range(200)])
    cut = decision.held_cut(scores, writers, 0.05, level=0.0, n_boot=0, seed=0)
    assert (np.mean(a <= cut) + np.mean(b <= cut)) / 2 <= 0.05
    assert cut < decision.genuine_cut(scores, 0.05)  # pooled, A's low forgeries would pass in bulk
    assert np.mean(scores <= decision.genuine_cut(scores, 0.05)) <= 0.05 < np.mean(a <= decision.genuine_cut(scores, 0.05))


def test_held_cut_is_stricter_at_a_higher_level_and_reproducible():
    scores, writers = writer_scores(6, {"A": 30, "B": 40})
    plain = decision.held_cut(scores, writers, 0.02, level=0.0, n_boot=100, seed=1)
    cuts = [decision.held_cut(scores, writers, 0.02, level=level, n_boot=100, seed=1) for level in (0.5, 0.9, 0.95)]
    assert cuts[0] > cuts[1] >= cuts[2] and cuts[1] < plain  # the median resample's cut may lie either side of plain
    assert cuts[1] == decision.held_cut(scores, writers, 0.02, level=0.9, n_boot=100, seed=1)


def test_a_band_held_over_writer_resamples_holds_more_often_on_new_writers():
    over = {"pooled": 0, "held": 0}
    for seed in range(12):
        fit_scores, fit_writers = writer_scores(100 + seed, {"A": 20, "B": 40})
        new_scores, _ = writer_scores(200 + seed, {"A": 20, "B": 40})
        pooled = decision.genuine_cut(fit_scores, 0.02)
        held = decision.held_cut(fit_scores, fit_writers, 0.02, level=0.9, n_boot=100, seed=seed)
        over["pooled"] += np.mean(new_scores <= pooled) > 0.02
        over["held"] += np.mean(new_scores <= held) > 0.02
    assert 2 * over["held"] <= over["pooled"]  # 3 of 12 against 8 of 12 with these seeds


def test_fit_band_with_writers_records_its_fit_and_brackets_the_threshold():
    forged, forged_writers = writer_scores(7, {"A": 15, "B": 25})
    rng = np.random.default_rng(8)
    genuine = rng.normal(0.4, 0.12, 400)
    genuine_writers = np.asarray([f"{'A' if i < 150 else 'B'}/{i % 15}" for i in range(400)])
    scores, labels = np.r_[genuine, forged], np.r_[np.ones(400, int), np.zeros(len(forged), int)]
    writers = np.r_[genuine_writers, forged_writers]
    plain = decision.fit_band(scores, labels, 0.6)
    held = decision.fit_band(scores, labels, 0.6, writers=writers, level=0.9, n_boot=100, seed=0)
    assert plain["fit"] == {"rates": "pooled"}
    assert held["fit"] == {"rates": "mean over datasets", "level": 0.9, "n_boot": 100}
    assert held["genuine_below"] <= 0.6 <= held["forged_above"]
    assert held["genuine_below"] <= plain["genuine_below"] and held["forged_above"] >= plain["forged_above"]
    card_data = card(decision_bands={"pairwise": held}).to_dict()
    assert ModelCard.from_dict(card_data).band("pairwise")["fit"]["level"] == 0.9
