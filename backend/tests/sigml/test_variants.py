"""Stroke-level enrolment variants (`sigml.variants`) on a small drawn signature."""

from __future__ import annotations

import numpy as np
import pytest

from sigml.variants import elastic, stroke_variants, thicker, thinner


@pytest.fixture
def strokes() -> np.ndarray:
    """1 x 60 x 90: a horizontal and a vertical stroke, 3 pixels wide, ink 1 on 0."""
    image = np.zeros((1, 60, 90), np.float32)
    image[0, 28:31, 10:80] = 1.0
    image[0, 10:50, 44:47] = 1.0
    return image


def test_variants_are_deterministic_from_the_seed(strokes):
    first = stroke_variants(strokes, 4, seed=7)
    assert first.shape == (4, 1, 60, 90) and first.dtype == strokes.dtype
    assert np.array_equal(first, stroke_variants(strokes, 4, seed=7))
    assert not np.array_equal(first[2:], stroke_variants(strokes, 4, seed=8)[2:])  # the elastic ones follow the seed
    assert not np.array_equal(first[2], first[3])  # two elastic variants, two fields
    assert np.array_equal(first[0], thicker(strokes)) and np.array_equal(first[1], thinner(strokes))


def test_thicker_and_thinner_change_the_ink_the_stroke_holds(strokes):
    assert thicker(strokes).sum() > 1.5 * strokes.sum()  # 3 pixels wide become 5
    assert thicker(strokes)[0, 27, 40] == 1.0 and strokes[0, 27, 40] == 0.0
    thin = thinner(strokes)
    assert thin.sum() < strokes.sum() and thin[0, 29, 40] == 1.0  # the stroke's middle stays, its edges fade
    assert thin[0, 28, 40] == 0.5


def test_elastic_bends_the_strokes_by_about_its_shift(strokes):
    bent = elastic(strokes, np.random.default_rng(0), shift=2.0)
    assert bent.shape == strokes.shape and not np.array_equal(bent, strokes)
    assert abs(bent.sum() - strokes.sum()) < 0.2 * strokes.sum()  # the ink moves; it is not added or lost
    rows = np.nonzero(bent[0, :, 15:40].max(axis=1) > 0.5)[0]  # the horizontal stroke, away from the vertical one
    assert 20 <= rows.min() and rows.max() <= 38  # within a few pixels of rows 28-30
    assert np.array_equal(elastic(strokes, np.random.default_rng(0), shift=0.0), strokes)


def test_kinds_choose_the_variants_the_last_repeated(strokes):
    bent = stroke_variants(strokes, 3, seed=1, kinds=("elastic",))
    assert not np.array_equal(bent[0], bent[1]) and not np.array_equal(bent[0], thicker(strokes))
    assert np.array_equal(stroke_variants(strokes, 2, kinds=("thinner",))[1], thinner(strokes))


def test_a_batch_a_2d_image_or_an_unknown_kind_is_refused(strokes):
    with pytest.raises(ValueError, match="1 x H x W"):
        stroke_variants(np.zeros((2, 1, 10, 10), np.float32))
    with pytest.raises(ValueError, match="kinds"):
        stroke_variants(strokes, 2, kinds=("blur",))
