"""sigml.protocols: pairwise and reference-based scoring on embeddings."""

from __future__ import annotations

from collections import Counter
from math import comb

import numpy as np
import pytest

from sigml.protocols import pairwise, reference_based, reference_scores, reference_spread, reference_spreads

SPEC = {"1": (5, 2), "2": (4, 0), "3": (3, 3), "4": (1, 2)}  # writer 4: one genuine, no genuine pair


@pytest.fixture
def data(synthetic_records):
    records = synthetic_records(SPEC)
    emb = np.random.default_rng(0).normal(size=(len(records), 8))
    return emb, records


def test_pairwise_counts(data):
    emb, records = data
    s = pairwise(emb, records)
    counts = Counter(zip(s.writers, s.labels.tolist()))
    for w, (g, f) in SPEC.items():
        key = f"D/{w}"
        if g < 2:
            assert counts[(key, 1)] == 0 and counts[(key, 0)] == 0
            continue
        assert counts[(key, 1)] == comb(g, 2)
        assert counts[(key, 0)] == g * f
    assert int((s.labels == 1).sum()) == sum(comb(g, 2) for g, _ in SPEC.values())
    assert int((s.labels == 0).sum()) == sum(g * f for g, f in SPEC.values() if g >= 2)
    assert len(s.distances) == len(s.labels) == len(s.writers) == len(s.index_a) == len(s.index_b)


def test_pairwise_pairs_are_right(data):
    emb, records = data
    s = pairwise(emb, records)
    for d, y, a, b in zip(s.distances, s.labels, s.index_a, s.index_b):
        ra, rb = records[a], records[b]
        assert ra.writer == rb.writer and ra.genuine
        assert rb.genuine == bool(y)
        assert d == pytest.approx(np.linalg.norm(emb[a] - emb[b]))


def test_pairwise_random_forgeries(data):
    emb, records = data
    genuine = [r for r in records if r.genuine]
    idx = [i for i, r in enumerate(records) if r.genuine]
    s = pairwise(emb[idx], genuine, random_per_writer=4, seed=0)
    rnd = s.labels == 0
    assert int(rnd.sum()) == 4 * 3  # three writers with a genuine pair
    for a, b in zip(s.index_a[rnd], s.index_b[rnd]):
        assert genuine[a].writer != genuine[b].writer
    again = pairwise(emb[idx], genuine, random_per_writer=4, seed=0)
    np.testing.assert_array_equal(s.distances, again.distances)


def test_pairwise_keeps_datasets_apart(synthetic_records):
    records = synthetic_records({"1": (2, 1)}, dataset="A") + synthetic_records({"1": (2, 1)}, dataset="B")
    s = pairwise(np.eye(len(records)), records)
    assert Counter(s.labels.tolist()) == {1: 2, 0: 4}  # writer 1 of A and writer 1 of B are different people
    assert set(s.writers) == {"A/1", "B/1"}


def test_pairwise_needs_a_genuine_pair(synthetic_records):
    with pytest.raises(ValueError):
        pairwise(np.zeros((3, 2)), synthetic_records({"1": (1, 2)}))


@pytest.mark.parametrize("k", [1, 2, 3])
def test_reference_based_counts(data, k):
    emb, records = data
    s = reference_based(emb, records, k=k, seed=0)
    counts = Counter(zip(s.writers, s.labels.tolist()))
    for w, (g, f) in SPEC.items():
        key = f"D/{w}"
        if g <= k:
            assert counts[(key, 1)] == 0 and counts[(key, 0)] == 0  # needs K references + a questioned genuine
            continue
        assert counts[(key, 1)] == g - k
        assert counts[(key, 0)] == f
    assert (s.index_b == -1).all()
    assert s.labels.dtype.kind == "i"
    for q, y in zip(s.index_a, s.labels):
        assert records[q].genuine == bool(y)


def test_reference_based_distance_is_the_mean_to_the_references(synthetic_records):
    # every genuine of a writer at one point: genuine questioned are at distance 0 from any references
    records = synthetic_records({"1": (4, 2)})
    emb = np.array([[0.0, 0.0]] * 4 + [[3.0, 4.0], [6.0, 8.0]])
    s = reference_based(emb, records, k=2, seed=0)
    np.testing.assert_allclose(s.distances, [0.0, 0.0, 5.0, 10.0])
    np.testing.assert_array_equal(s.labels, [1, 1, 0, 0])


def test_reference_based_deterministic_per_seed(synthetic_records):
    records = synthetic_records({str(w): (12, 3) for w in range(1, 5)})
    emb = np.random.default_rng(1).normal(size=(len(records), 8))
    a = reference_based(emb, records, k=5, seed=3)
    b = reference_based(emb, records, k=5, seed=3)
    c = reference_based(emb, records, k=5, seed=4)
    np.testing.assert_array_equal(a.distances, b.distances)
    np.testing.assert_array_equal(a.index_a, b.index_a)
    assert not np.array_equal(a.distances, c.distances)


def test_reference_based_needs_more_than_k(synthetic_records):
    with pytest.raises(ValueError, match="K=3"):
        reference_based(np.zeros((5, 2)), synthetic_records({"1": (3, 2)}), k=3)


def test_pairwise_random_only_indexes_the_full_record_list(data):
    """Regression: evaluate scored random forgeries with indices into the genuine-only list against the
    embeddings of all records, so its distances belonged to other images."""
    emb, records = data
    s = pairwise(emb, records, skilled=False, random_per_writer=4, seed=0)
    assert set(s.labels.tolist()) == {0, 1}
    for d, y, a, b in zip(s.distances, s.labels, s.index_a, s.index_b):
        assert records[a].genuine and records[b].genuine  # no skilled forgery in this protocol
        assert (records[a].writer == records[b].writer) == bool(y)
        assert d == pytest.approx(np.linalg.norm(emb[a] - emb[b]))


def test_reference_spread_is_the_mean_pairwise_distance():
    refs = np.array([[0.0, 0.0], [3.0, 4.0], [0.0, 8.0]])  # pair distances 5, 8, 5
    assert reference_spread(refs) == pytest.approx(6.0)
    assert reference_spread(refs[:1]) is None


def test_normalized_score_divides_by_the_spread():
    refs = np.array([[0.0, 0.0], [3.0, 4.0]])  # spread 5
    q = np.array([[0.0, 0.0], [6.0, 8.0]])  # mean distances 2.5 and 7.5
    np.testing.assert_allclose(reference_scores(q, refs, "mean"), [2.5, 7.5])
    np.testing.assert_allclose(reference_scores(q, refs, "normalized"), [0.5, 1.5])
    # a floor stops near-identical references from inflating every score
    np.testing.assert_allclose(reference_scores(q, refs, "normalized", spread_floor=10.0), [0.25, 0.75])


def test_normalized_score_puts_writers_on_one_scale(synthetic_records):
    """A variable writer (spread 10) and a consistent one (spread 1), each with a forgery twice as far as its
    genuine signatures: raw mean distances cannot be separated by one threshold, normalised scores can."""
    records = synthetic_records({"1": (3, 1), "2": (3, 1)})
    emb = np.array([[0.0], [10.0], [5.0], [30.0], [100.0], [101.0], [100.5], [103.0]])
    raw = reference_based(emb, records, k=2, seed=0, score="mean")
    norm = reference_based(emb, records, k=2, seed=0, score="normalized")
    assert raw.distances[raw.labels == 1].max() > raw.distances[raw.labels == 0].min()  # overlap
    assert norm.distances[norm.labels == 1].max() < norm.distances[norm.labels == 0].min()  # separated


def test_normalized_score_needs_two_references(data):
    emb, records = data
    with pytest.raises(ValueError, match="K >= 2"):
        reference_based(emb, records, k=1, score="normalized")
    with pytest.raises(ValueError, match="at least two"):
        reference_scores(emb[:1], emb[1:2], "normalized")
    with pytest.raises(ValueError, match="unknown reference score"):
        reference_scores(emb[:1], emb[1:3], "median")


def test_reference_spreads_match_the_drawn_references(synthetic_records):
    records = synthetic_records({str(w): (6, 2) for w in range(1, 4)})
    emb = np.random.default_rng(2).normal(size=(len(records), 4))
    spreads = reference_spreads(emb, records, k=3, seed=5)
    mean = reference_based(emb, records, k=3, seed=5, score="mean")
    norm = reference_based(emb, records, k=3, seed=5, score="normalized")
    per_writer = [np.unique(np.round(mean.distances[np.asarray(mean.writers) == w] / norm.distances[np.asarray(norm.writers) == w], 9))
                  for w in sorted(set(mean.writers))]
    assert all(len(p) == 1 for p in per_writer)  # one divisor per writer ...
    np.testing.assert_allclose([p[0] for p in per_writer], spreads)  # ... and it is that writer's spread
