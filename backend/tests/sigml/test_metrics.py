"""sigml.metrics: EER, its threshold, FAR/FRR/accuracy at a threshold, AUC, curves."""

from __future__ import annotations

import math

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from sigml.metrics import curves, eer, rates_at, summary


def test_eer_perfectly_separable():
    d = [0.1, 0.2, 0.3, 0.8, 0.9]
    y = [1, 1, 1, 0, 0]
    rate, thr = eer(d, y)
    assert rate == 0.0
    assert 0.3 <= thr < 0.8  # between the distributions: accepts every genuine, no forgery
    assert rates_at(d, y, thr) == {"accuracy": 1.0, "far": 0.0, "frr": 0.0}


def test_eer_perfectly_wrong():
    rate, _ = eer([0.9, 0.8, 0.1, 0.2], [1, 1, 0, 0])
    assert rate == 1.0


def test_eer_identical_distributions():
    rng = np.random.default_rng(0)
    values = rng.uniform(0, 1, 2000)
    d = np.concatenate([values, values])
    y = np.concatenate([np.ones(2000), np.zeros(2000)])
    rate, thr = eer(d, y)
    assert rate == pytest.approx(0.5, abs=0.01)
    assert 0.0 <= thr <= 1.0


def test_eer_hand_made_case():
    # sorted: .1G .2G .3G .4F .5F .6G .7F .8F; at t=.4 one genuine rejected (.6) and one forgery accepted (.4)
    d = [0.1, 0.2, 0.3, 0.6, 0.4, 0.5, 0.7, 0.8]
    y = [1, 1, 1, 1, 0, 0, 0, 0]
    rate, thr = eer(d, y)
    assert rate == pytest.approx(0.25)
    assert 0.3 <= thr <= 0.4
    r = rates_at(d, y, 0.4)
    assert r["far"] == pytest.approx(0.25) and r["frr"] == pytest.approx(0.25)


def test_eer_threshold_lies_between_overlapping_distributions():
    rng = np.random.default_rng(1)
    gen, forg = rng.normal(0.4, 0.1, 500), rng.normal(0.9, 0.1, 500)
    d = np.concatenate([gen, forg])
    y = np.concatenate([np.ones(500), np.zeros(500)])
    rate, thr = eer(d, y)
    assert 0.4 < thr < 0.9
    assert thr == pytest.approx(0.65, abs=0.03)
    r = rates_at(d, y, thr)
    assert abs(r["far"] - r["frr"]) < 0.01
    assert rate == pytest.approx((r["far"] + r["frr"]) / 2, abs=0.01)
    assert 0.0 < rate < 0.03  # expected ~0.6 %: the tails beyond 2.5 sigma


def test_rates_at_by_hand():
    d = [0.1, 0.5, 0.9, 0.2, 0.6, 1.2]
    y = [1, 1, 1, 0, 0, 0]
    r = rates_at(d, y, 0.55)
    # accepted: .1 .5 (genuine) and .2 (forged); rejected genuine: .9
    assert r["far"] == pytest.approx(1 / 3)
    assert r["frr"] == pytest.approx(1 / 3)
    assert r["accuracy"] == pytest.approx(4 / 6)
    assert rates_at(d, y, 0.5)["frr"] == pytest.approx(1 / 3)  # distance == threshold is accepted
    assert rates_at(d, y, 10.0) == {"accuracy": 0.5, "far": 1.0, "frr": 0.0}
    assert rates_at(d, y, -1.0) == {"accuracy": 0.5, "far": 0.0, "frr": 1.0}


def test_rates_with_one_class_are_nan_for_the_other():
    r = rates_at([0.1, 0.2], [1, 1], 0.15)
    assert math.isnan(r["far"]) and r["frr"] == 0.5


def test_auc_matches_sklearn():
    rng = np.random.default_rng(2)
    d = rng.uniform(0, 2, 300)
    y = (rng.uniform(0, 1, 300) < 1 / (1 + np.exp(4 * (d - 1)))).astype(int)
    s = summary(d, y, None)
    assert s["auc"] == pytest.approx(roc_auc_score(y, -d))
    assert 0.5 < s["auc"] < 1.0


def test_summary_fields():
    d = [0.1, 0.2, 0.3, 0.6, 0.4, 0.5, 0.7, 0.8]
    y = [1, 1, 1, 1, 0, 0, 0, 0]
    s = summary(d, y, None)
    assert set(s) == {"eer", "eer_threshold", "auc", "threshold", "accuracy", "far", "frr", "n_genuine", "n_forged"}
    assert s["threshold"] == s["eer_threshold"]  # None: at the EER threshold
    assert (s["n_genuine"], s["n_forged"]) == (4, 4)
    fixed = summary(d, y, 0.35)
    assert fixed["threshold"] == 0.35 and fixed["far"] == 0.0 and fixed["frr"] == 0.25
    assert fixed["eer"] == s["eer"]  # the EER does not depend on the threshold


def test_input_validation():
    with pytest.raises(ValueError, match="both"):
        eer([0.1, 0.2], [1, 1])
    with pytest.raises(ValueError, match="length"):
        eer([0.1, 0.2, 0.3], [1, 0])
    with pytest.raises(ValueError, match="NaN"):
        eer([0.1, float("nan")], [1, 0])
    with pytest.raises(ValueError, match="NaN"):
        rates_at([0.1, float("inf")], [1, 0], 0.5)


def test_curves():
    rng = np.random.default_rng(3)
    d = np.concatenate([rng.normal(0.3, 0.1, 50), rng.normal(0.7, 0.1, 50)])
    y = np.concatenate([np.ones(50), np.zeros(50)])
    c = curves(d, y)
    assert set(c) == {"fpr", "tpr", "det_far", "det_frr"}
    assert c["fpr"][0] == 0 and c["fpr"][-1] == 1 and c["tpr"][-1] == 1
    assert (np.diff(c["fpr"]) >= 0).all() and (np.diff(c["tpr"]) >= 0).all()
    assert len(c["det_far"]) == len(c["det_frr"])
    assert np.trapezoid(c["tpr"], c["fpr"]) == pytest.approx(roc_auc_score(y, -d))


def _writer_data(n_writers: int, seed: int = 0, noise: float = 0.25):
    """Per writer 10 genuine (label 1) and 10 forged comparisons; each writer shifts all of its distances."""
    rng = np.random.default_rng(seed)
    d, y, w = [], [], []
    for i in range(n_writers):
        shift = rng.normal(0, 0.3)
        d += list(shift + rng.normal(0.4, noise, 10)) + list(shift + rng.normal(0.9, noise, 10))
        y += [1] * 10 + [0] * 10
        w += [f"w{i}"] * 20
    return np.asarray(d), np.asarray(y), w


def test_writer_bootstrap_interval_contains_the_eer_and_narrows_with_more_writers():
    from sigml.metrics import eer, writer_bootstrap

    few, many = (writer_bootstrap(*_writer_data(n), n_boot=300) for n in (6, 60))
    for b in (few, many):
        assert b["ci"][0] <= b["eer"] <= b["ci"][1]
        assert b["eer"] == pytest.approx(eer(*_writer_data(b["n_writers"])[:2])[0])
    assert few["n_writers"] == 6 and many["n_writers"] == 60
    assert (few["ci"][1] - few["ci"][0]) > 1.5 * (many["ci"][1] - many["ci"][0])


def test_writer_bootstrap_separable_and_paired_difference():
    from sigml.metrics import writer_bootstrap

    d, y, w = _writer_data(20, noise=0.05)
    d = np.where(y == 1, 0.1, 1.0) + np.asarray([int(x[1:]) for x in w]) * 1e-3  # every genuine below every forgery
    sep = writer_bootstrap(d, y, w, n_boot=100)
    assert sep["eer"] == 0.0 and sep["ci"] == [0.0, 0.0]
    d, y, w = _writer_data(20)
    same = writer_bootstrap(d, y, w, other=2 * d + 1, n_boot=200)  # a monotone rescaling: the same ranking
    assert same["difference"] == pytest.approx(0.0, abs=1e-12) and same["difference_ci"] == pytest.approx([0.0, 0.0], abs=1e-12)
    worse = writer_bootstrap(d, y, w, other=d + np.random.default_rng(1).normal(0, 0.5, len(d)), n_boot=200)
    assert worse["difference"] > 0 and worse["difference_ci"][0] > 0  # the noisier model is worse on every resample
    with pytest.raises(ValueError, match="writers"):
        writer_bootstrap(d, y, w[:-1])


def test_writer_bootstrap_returns_its_draws_on_request():
    from sigml.metrics import percentile_interval, writer_bootstrap

    d, y, w = _writer_data(12)
    plain = writer_bootstrap(d, y, w, n_boot=150, seed=3)
    with_draws = writer_bootstrap(d, y, w, n_boot=150, seed=3, return_draws=True)
    assert "draws" not in plain
    draws = with_draws.pop("draws")
    assert with_draws == plain  # the same resamples and figures with or without the draws
    assert draws.shape == (150,) and not np.isnan(draws).any()
    assert percentile_interval(draws) == plain["ci"]
    # a resample without forgeries has no EER: its draw is NaN, in its place, and the interval ignores it
    y_one_writer_genuine = np.where(np.asarray(w) == "w0", 1, y)
    gappy = writer_bootstrap(d[:40], y_one_writer_genuine[:40], w[:40], n_boot=50, seed=0, return_draws=True)
    assert gappy["draws"].shape == (50,) and np.isnan(gappy["draws"]).sum() == 50 - gappy["n_boot"] > 0
    assert percentile_interval(gappy["draws"]) == gappy["ci"]
