"""Synthetic documents (`sigml.synthdocs`): deterministic from the seed, true boxes on the signatures' ink."""

from __future__ import annotations

import numpy as np
import pytest

from sigml.synthdocs import BACKGROUNDS, FONT_FAMILIES, font_files, make_page, signature_alpha, strokes_box
from sigml.testing import signature_image


@pytest.fixture(scope="module")
def signatures():
    return [signature_image(seed, size=(360, 140)) for seed in range(4)]


def test_same_seed_same_page(signatures):
    a = make_page(3, signatures, width=600, n_signatures=2)
    b = make_page(3, signatures, width=600, n_signatures=2)
    assert a.boxes == b.boxes and a.kind == b.kind
    assert np.array_equal(np.asarray(a.image), np.asarray(b.image))
    c = make_page(4, signatures, width=600, n_signatures=2)
    assert not (np.asarray(c.image).shape == np.asarray(a.image).shape and np.array_equal(np.asarray(c.image), np.asarray(a.image)))


@pytest.mark.parametrize("kind", ["letter", "cheque", "form"])
def test_boxes_hold_the_signature_ink(signatures, kind):
    page = make_page(11, signatures, kind=kind, width=700, n_signatures=1, capture=0.0)
    assert page.kind == kind and len(page.boxes) == 1
    l, t, r, b = page.boxes[0]
    w, h = page.image.size
    assert 0 <= l < r <= w and 0 <= t < b <= h
    assert r - l >= 0.1 * w  # about a fifth of the page wide
    gray = np.asarray(page.image.convert("L"), np.float32)
    assert gray[t:b, l:r].min() < 120  # dark ink inside the box


def test_the_page_says_which_signature_each_box_holds(signatures):
    page = make_page(11, signatures, width=700, n_signatures=2, capture=0.0)
    assert len(page.meta["signatures"]) == len(page.boxes)
    assert all(0 <= i < len(signatures) for i in page.meta["signatures"])


def test_page_without_signature(signatures):
    assert make_page(5, signatures, width=500, n_signatures=0).boxes == []


def test_signature_alpha_is_cropped_coverage():
    alpha = signature_alpha(signature_image(1, size=(300, 120)))
    assert alpha.dtype == np.float32 and 0 <= alpha.min() and alpha.max() <= 1
    assert alpha[0].any() and alpha[-1].any() and alpha[:, 0].any() and alpha[:, -1].any()


def test_a_signature_s_box_leaves_out_stray_specks_and_keeps_its_dots_and_words():
    ink = np.zeros((100, 400), bool)
    ink[40:60, 100:180] = True  # a word
    ink[40:60, 195:200] = True  # a small piece beside it: a faint stroke's bit ...
    ink[45:55, 205:210] = True  # ... and the next one, chained to the word through the first
    ink[30:33, 120:123] = True  # a dot above the word
    ink[40:60, 230:300] = True  # a second word
    ink[90:92, 10:12] = True  # a scanner speck far below and to the left
    ink[5:7, 390:392] = True  # and one far right
    assert strokes_box(ink) == (100, 30, 300, 60)
    specks_only = np.zeros((100, 100), bool)
    specks_only[::5, ::5] = True  # 400 pieces of 0.25% each: none leads, so all the ink counts
    assert strokes_box(specks_only) == (0, 0, 96, 96)
    with pytest.raises(ValueError):
        strokes_box(np.zeros((5, 5), bool))


def test_fonts_and_backgrounds_of_train_and_test_differ():
    assert not set(font_files("train")) & set(font_files("test"))
    assert not set(BACKGROUNDS["train"]) - {"plain"} & set(BACKGROUNDS["test"])
    assert not any(f.startswith(FONT_FAMILIES["test"]) for f in FONT_FAMILIES["train"])


def test_missing_font_families_names_what_is_not_installed(monkeypatch):
    from sigml import synthdocs

    monkeypatch.setattr(synthdocs, "font_files", lambda split: ("/fonts/DejaVuSans.ttf", "/fonts/NotoSans-Regular.ttf")
                        if split == "train" else ())
    assert synthdocs.missing_font_families("train") == ["NotoSansDevanagari", "NotoSansBengali"]
    assert synthdocs.missing_font_families("test") == ["Liberation", "Free"]
    with pytest.raises(SystemExit, match="fonts-liberation"):
        synthdocs.require_fonts("train", "test")
    monkeypatch.setattr(synthdocs, "font_files", lambda split: ("/f/DejaVuSans.ttf", "/f/NotoSans-Regular.ttf",
                                                                "/f/NotoSansDevanagari-Regular.ttf",
                                                                "/f/NotoSansBengali-Regular.ttf", "/f/LiberationSans.ttf",
                                                                "/f/FreeSerif.ttf"))
    synthdocs.require_fonts("train", "test")  # all there: no exit
