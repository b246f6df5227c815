"""bench/enrolment_variants.py: the score with variants on toy embeddings whose answer is known."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from sigml import protocols
from sigml.datasets import SignatureRecord


@pytest.fixture(scope="module")
def bench(bench_script):
    return bench_script("enrolment_variants")


def card(method: str = "normalized"):
    policy = SimpleNamespace(reference_score=method, spread_floor=0.0)
    return SimpleNamespace(reference_policy=lambda k: policy)


def one_writer(n_genuine: int = 4):
    """One writer: genuine signatures along the first axis (0, 1, 2, ...), one forgery far on the second."""
    records = [SignatureRecord("D", "w", "genuine", f"g{i}.png") for i in range(n_genuine)]
    records.append(SignatureRecord("D", "w", "forged", "f.png"))
    emb = np.zeros((n_genuine + 1, 2))
    emb[:n_genuine, 0] = np.arange(n_genuine)
    emb[n_genuine] = (0.0, 10.0)
    return records, emb


def test_variants_on_their_references_change_no_score(bench):
    records, emb = one_writer()
    same = {i: np.repeat(emb[i][None], 3, axis=0) for i in range(len(emb))}
    for k in (1, 2):
        served, varied, labels, writers = bench.scores(card(), records, emb, same, k)
        assert np.allclose(served, varied) and labels.tolist()[-1] == 0 and set(writers) == {"D/w"}


def test_one_reference_is_scored_by_the_mean_distance_to_it_and_its_variants(bench):
    records, emb = one_writer()
    (_, refs, genuine, forged), = protocols.reference_draws(records, 1, 0)
    ref = int(refs[0])
    variants = {ref: emb[ref] + np.array([[0.0, 1.0], [0.0, -1.0]])}  # one above, one below the reference
    served, varied, _, _ = bench.scores(card(), records, emb, variants, 1)
    questioned = np.concatenate([genuine, forged])
    d = lambda a, b: float(np.linalg.norm(a - b))  # noqa: E731
    for q, s, v in zip(questioned, served, varied):
        assert s == pytest.approx(d(emb[q], emb[ref]))
        expected = (d(emb[q], emb[ref]) + d(emb[q], variants[ref][0]) + d(emb[q], variants[ref][1])) / 3
        assert v == pytest.approx(expected)


def test_with_k_references_the_spread_is_the_references_alone(bench):
    records, emb = one_writer(5)
    far = {i: np.repeat(emb[i][None] + 100.0, 2, axis=0) for i in range(len(emb))}  # variants far away
    _, varied_normalized, _, _ = bench.scores(card("normalized"), records, emb, far, 2)
    _, varied_mean, _, _ = bench.scores(card("mean"), records, emb, far, 2)
    (_, refs, _, _), = protocols.reference_draws(records, 2, 0)
    spread = float(np.linalg.norm(emb[refs[0]] - emb[refs[1]]))
    assert np.allclose(varied_normalized, varied_mean / spread)


def test_k_beyond_every_writer_s_signatures_scores_nothing(bench):
    records, emb = one_writer(4)
    served, varied, labels, writers = bench.scores(card(), records, emb, {}, 10)
    assert len(served) == len(varied) == len(labels) == 0 and writers == []
