"""sigml.protocols: pairwise and reference-based scoring on embeddings."""

from __future__ import annotations

from collections import Counter
from math import comb

import numpy as np
import pytest

from sigml.protocols import pairwise, reference_based

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
