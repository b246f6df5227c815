"""bench/fusion.py: the fused embedding's squared distance is the mean of the models' squared distances."""

from __future__ import annotations


import numpy as np
import pytest

from sigml.datasets import SignatureRecord


@pytest.fixture(scope="module")
def fusion(bench_script):
    return bench_script("fusion")


def _unit(rows: np.ndarray) -> np.ndarray:
    return rows / np.linalg.norm(rows, axis=1, keepdims=True)


def test_fused_distance_is_the_mean_of_squared_distances_over_the_common_records(fusion):
    records = [SignatureRecord("D", "w1", "genuine", f"w1/{i}.png") for i in range(4)]
    rng = np.random.default_rng(0)
    a, b = _unit(rng.normal(size=(4, 8))), _unit(rng.normal(size=(3, 5)))
    # the second model could not read record 2: the fusion keeps only what both embedded, in the first's order
    common, fused = fusion.fused_embeddings([(records, a), ([records[3], records[0], records[1]], b[[0, 1, 2]])])
    assert [r.path for r in common] == ["w1/0.png", "w1/1.png", "w1/3.png"]
    assert fused.shape == (3, 13)
    np.testing.assert_allclose(np.linalg.norm(fused, axis=1), 1.0, rtol=1e-6)
    d_fused = np.sum((fused[0] - fused[2]) ** 2)
    d_a = np.sum((a[0] - a[3]) ** 2)
    d_b = np.sum((b[1] - b[0]) ** 2)
    assert d_fused == pytest.approx((d_a + d_b) / 2)
