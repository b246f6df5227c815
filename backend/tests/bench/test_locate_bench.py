"""bench/locate.py: the page bootstrap's intervals hold the figures and resample whole pages."""

from __future__ import annotations

import numpy as np
import pytest


@pytest.fixture(scope="module")
def bench_locate(bench_script):
    return bench_script("locate")


def test_page_bootstrap_of_identical_pages_is_a_point(bench_locate):
    per_page = np.array([[1, 1, 0]] * 10, float)  # every page: its one signature located, no false box
    located, false = bench_locate.page_bootstrap(per_page, n_boot=200)
    assert located == [1.0, 1.0] and false == [0.0, 0.0]


def test_page_bootstrap_interval_holds_the_figure(bench_locate):
    rng = np.random.default_rng(3)
    signatures = rng.integers(0, 3, 200)
    per_page = np.stack([np.minimum(signatures, rng.integers(0, 3, 200)), signatures, rng.integers(0, 2, 200)], 1)
    located, false = bench_locate.page_bootstrap(per_page.astype(float), n_boot=500)
    rate = per_page[:, 0].sum() / per_page[:, 1].sum()
    assert located[0] < rate < located[1] and 0 < located[0] and located[1] < 1
    assert false[0] < per_page[:, 2].mean() < false[1]


def test_page_bootstrap_of_no_pages(bench_locate):
    assert bench_locate.page_bootstrap(np.zeros((0, 3))) == ([0.0, 0.0], [0.0, 0.0])
