"""bench/auto_crop.py: the looser hand crop is the true box widened on each side, kept inside the page."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="module")
def auto_crop(bench_script):
    return bench_script("auto_crop")


def test_widened_adds_the_share_of_width_and_height_on_each_side(auto_crop):
    assert auto_crop.widened((100, 200, 300, 300), 0.05, (1000, 1000)) == (90, 195, 310, 305)
    assert auto_crop.widened((100, 200, 300, 300), 0.0, (1000, 1000)) == (100, 200, 300, 300)


def test_widened_stays_inside_the_page(auto_crop):
    assert auto_crop.widened((2, 3, 398, 99), 0.1, (400, 100)) == (0, 0, 400, 100)


def test_decision_shares_count_every_page_once_per_prefix(auto_crop):
    from collections import Counter

    counts = Counter({"pages": 4, "hand_genuine": 1, "hand_forged": 2, "hand_refused": 1, "auto_inconclusive": 4})
    shares = auto_crop.decision_shares(counts, "hand_", "auto_")
    assert shares["hand"] == {"genuine": 0.25, "inconclusive": 0.0, "forged": 0.5, "refused": 0.25}
    assert shares["auto"]["inconclusive"] == 1.0 and sum(shares["auto"].values()) == 1.0
