"""The signature locator (`sigml.locate`) on pages drawn here, its page-or-crop check, its model file and CLI."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageFont

from sigml import locate as loc
from sigml.synthdocs import make_page


def cursive_signature(seed: int, size: tuple[int, int] = (420, 150)) -> Image.Image:
    """Handwriting-like ink: two words of looping pen trace (a prolate cycloid on a wandering baseline)."""
    rng = np.random.default_rng(seed)
    w, h = size
    image = Image.new("L", size, 240)
    draw = ImageDraw.Draw(image)
    for word, (x0, x1) in enumerate([(0.08, 0.5), (0.58, 0.92)]):
        t = np.linspace(0, rng.uniform(4, 6) * 2 * np.pi, 300)
        loops = rng.uniform(0.12, 0.2) * h * (1 + 0.4 * np.sin(t / rng.uniform(2, 4)))
        x = x0 * w + (x1 - x0) * w * t / t[-1] + loops * 0.5 * np.sin(t)
        y = 0.5 * h + loops * np.cos(t) - 0.1 * h * np.sin(t / 5 + word)
        draw.line(list(zip(x.tolist(), y.tolist())), fill=25, width=3, joint="curve")
    return image


def matched(found: list[loc.LocatedSignature], truth: list[tuple[int, int, int, int]]) -> int:
    if not found or not truth:
        return 0
    iou = loc.box_iou(np.array([f.box for f in found]), np.array(truth))
    return int((iou.max(axis=0) >= 0.5).sum())


def text_page(with_signature: bool = True, size: tuple[int, int] = (2000, 3000)) -> tuple[Image.Image, tuple]:
    """A letter: ten printed lines at ordinary spacing, a ruled line, a signature on it."""
    page = Image.new("L", size, 250)
    draw = ImageDraw.Draw(page)
    try:
        font = ImageFont.truetype("DejaVuSans.ttf", 40)
    except OSError:
        font = ImageFont.load_default(size=40)
    for i in range(10):
        draw.text((200, 300 + i * 62), "Payment of the amount below is due within thirty days of the date", font=font, fill=20)
    draw.line([(1100, 1400), (1800, 1400)], fill=30, width=4)
    box = ()
    if with_signature:
        signature = cursive_signature(3, (560, 200))
        page.paste(Image.fromarray(np.minimum(np.asarray(page.crop((1150, 1230, 1710, 1430))), np.asarray(signature))), (1150, 1230))
        ink = np.argwhere(np.asarray(signature) < 128)
        box = (1150 + ink[:, 1].min(), 1230 + ink[:, 0].min(), 1150 + ink[:, 1].max() + 1, 1230 + ink[:, 0].max() + 1)
    return page, box


@pytest.fixture(scope="module")
def signatures() -> list[Image.Image]:
    return [cursive_signature(seed) for seed in range(6)]


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_signatures_on_a_synthetic_page_are_located(signatures, seed):
    page = make_page(seed, signatures, split="test", n_signatures=2, width=1100, kind="letter")
    found = loc.locate(page.image)
    assert matched(found, page.boxes) == len(page.boxes) >= 1
    assert len(found) == len(page.boxes)
    assert all(0 < f.confidence <= 1 for f in found)


@pytest.mark.parametrize("seed", [4, 5, 6])
def test_nothing_on_a_page_without_a_signature(signatures, seed):
    page = make_page(seed, signatures, split="test", n_signatures=0, width=1100)
    assert loc.locate(page.image) == []


def test_blank_page_has_no_signature():
    assert loc.locate(Image.new("RGB", (800, 1100), (255, 255, 255))) == []
    assert not loc.look(Image.new("L", (300, 120), 255)).is_page


def test_the_letter_page_is_refused_with_the_signature_as_suggested_crop():
    page, box = text_page()
    check = loc.look(page)
    assert check.is_page and "page" in check.reason
    assert check.found and loc.box_iou(np.array([check.found[0].box]), np.array([box]))[0, 0] >= 0.5
    assert check.to_dict()["suggested_crops"][0]["box"] == list(check.found[0].box)


def page_bytes(page: Image.Image) -> bytes:
    import io

    buf = io.BytesIO()
    page.save(buf, format="PNG")
    return buf.getvalue()


def test_a_page_is_never_judged_whole_but_with_auto_crop_on_its_signature():
    from sigml.errors import NotASignatureError

    page, box = text_page()
    data = page_bytes(page)
    with pytest.raises(NotASignatureError) as refused:
        loc.preprocess_located(data, array=True)
    suggested = refused.value.details["suggested_crops"]
    assert 1 <= len(suggested) <= loc.SUGGESTED_CROPS
    judged = loc.preprocess_located(data, auto_crop=True, array=True)
    assert judged.located is not None and list(judged.located.box) == suggested[0]["box"]
    assert loc.box_iou(np.array([judged.located.box]), np.array([box]))[0, 0] >= 0.5
    by_hand = loc.preprocess_located(data, crop=judged.located.box, array=True)
    assert by_hand.located is None and np.array_equal(by_hand.image, judged.image)  # the same box, the same input
    # a box of a page, located or given, is warned of alike
    assert loc.CUT_FROM_A_PAGE in judged.problems and loc.CUT_FROM_A_PAGE in by_hand.problems


def test_auto_crop_skips_a_box_the_gate_refuses_and_refuses_when_none_passes(monkeypatch):
    from sigml.errors import NotASignatureError

    page, box = text_page()
    data = page_bytes(page)
    text = loc.LocatedSignature((150, 250, 1900, 950), 0.9)  # the ten printed lines
    signature = loc.LocatedSignature(tuple(int(v) for v in box), 0.5)
    monkeypatch.setattr(loc, "look", lambda *a, **k: loc.PageLook((text, signature), 0.1, 0.1, True))
    assert loc.preprocess_located(data, auto_crop=True, array=True).located == signature
    monkeypatch.setattr(loc, "look", lambda *a, **k: loc.PageLook((text,), 0.1, 0.1, True))
    with pytest.raises(NotASignatureError) as refused:
        loc.preprocess_located(data, auto_crop=True, array=True)
    assert refused.value.details["suggested_crops"] == [text.to_dict()]


def test_auto_crop_tries_a_refused_box_s_tighter_boxes_before_the_next_box(monkeypatch):
    page, box = text_page()
    data = page_bytes(page)
    signature = tuple(int(v) for v in box)
    with_the_text = (150, 250, 1900, signature[3])  # the signature and the ten printed lines above it
    located = loc.LocatedSignature(with_the_text, 0.9, ((150, 600, 1900, signature[3]), signature))
    monkeypatch.setattr(loc, "look", lambda *a, **k: loc.PageLook((located,), 0.1, 0.1, True))
    judged = loc.preprocess_located(data, auto_crop=True, array=True)
    assert judged.located == loc.LocatedSignature(signature, 0.9)  # the first tighter box the gate lets through
    assert loc.CUT_FROM_A_PAGE in judged.problems


def test_a_page_that_reads_blank_as_a_whole_is_refused_as_a_page_and_judged_on_its_box(monkeypatch):
    """A small signature on a wide pale sheet can read as blank as a whole: the page's boxes still answer it."""
    from sigml.errors import BlankImageError, NotASignatureError

    page, box = text_page()
    data = page_bytes(page)
    checked = loc.preprocess_checked

    def blank_as_a_whole(image, cfg, crop=None, array=False):
        if crop is None:
            raise BlankImageError("no signature found: the image has too little contrast to contain ink")
        return checked(image, cfg, crop=crop, array=array)

    monkeypatch.setattr(loc, "preprocess_checked", blank_as_a_whole)
    with pytest.raises(NotASignatureError) as refused:
        loc.preprocess_located(data, array=True)
    assert refused.value.details["suggested_crops"]
    judged = loc.preprocess_located(data, auto_crop=True, array=True)
    assert loc.box_iou(np.array([judged.located.box]), np.array([box]))[0, 0] >= 0.5
    with pytest.raises(BlankImageError):  # an image that is no page stays blank
        loc.preprocess_located(page_bytes(Image.new("L", (300, 120), 250)), auto_crop=True, array=True)


def test_look_keeps_the_stricter_cuts_boxes_inside_each_box():
    """A heat map that spreads at 0.7 from a signature (0.95) onto printed marks beside it: the box at the card's cut
    takes both in; its tighter box (the stricter cuts agree here, so one) the signature alone."""
    from types import SimpleNamespace

    image = Image.new("L", (768, 256), 250)
    draw = ImageDraw.Draw(image)
    for x in range(100, 300, 14):  # the "signature": short strokes (long ones would read as ruled lines)
        draw.rectangle([x, 105 + (x % 3) * 4, x + 8, 135], fill=20)
    for x in range(320, 420, 14):  # the "printed marks" beside it
        draw.rectangle([x, 112, x + 8, 140], fill=20)
    heat = np.zeros((64, 192))
    heat[24:39, 24:76] = 0.95
    heat[26:37, 76:107] = 0.7
    model = SimpleNamespace(heat=lambda x: heat, threshold=0.88, region_cut=0.6)
    (found,) = loc.look(image, model=model).found
    assert found.box[0] <= 100 and found.box[2] >= 420
    (tighter,) = found.tighter
    assert tighter[0] <= 100 and 300 <= tighter[2] < 320  # the strokes, not the marks
    assert (tighter[1], tighter[3]) == (105, 136)  # the strokes' top and bottom (the marks reach 141)
    assert found.to_dict() == {"box": list(found.box), "confidence": 0.95}  # the API's box is the card's


def test_a_signature_crop_is_judged_as_sent_even_with_auto_crop(signatures):
    judged = loc.preprocess_located(page_bytes(signatures[0]), auto_crop=True, array=True)
    assert judged.located is None and judged.image.shape[0] == 1


def test_a_signature_crop_passes(signatures):
    for image in signatures[:3]:
        assert not loc.look(image).is_page


def test_boxes_are_in_input_pixels_whatever_the_page_size(signatures):
    page = make_page(8, signatures, split="test", n_signatures=1, width=2400, kind="cheque", capture=0.0)
    found = loc.locate(page.image, threshold=0.3)
    w, h = page.image.size
    assert all(0 <= f.box[0] < f.box[2] <= w and 0 <= f.box[1] < f.box[3] <= h for f in found)


def test_model_files_are_small_with_their_card():
    from sigml.modelcard import file_sha256

    path = loc.DEFAULT_MODEL
    data = json.loads(path.read_text())
    assert data["format"] == "sigml.locate/net-v1"
    onnx, weights = path.parent / data["onnx"]["file"], path.parent / data["card"]["weights"]["file"]
    assert onnx.stat().st_size < 2_000_000 and weights.stat().st_size < 1_000_000
    assert file_sha256(weights) == data["card"]["weights"]["sha256"]
    assert {"trained", "validation"} <= set(data["card"])
    model = loc.load_model(path)
    assert 0 < model.threshold < 1


def test_a_card_of_the_old_feature_classifier_is_refused(tmp_path: Path):
    from sigml.errors import ModelLoadError

    bad = tmp_path / "old.json"
    bad.write_text(json.dumps({"format": "sigml.locate/mlp-v1", "features": ["scale"], "threshold": 0.5}))
    with pytest.raises(ModelLoadError):
        loc.load_model(bad)


def test_oversized_image_is_refused_before_decoding():
    from sigml.errors import ImageTooLargeError

    with pytest.raises(ImageTooLargeError):
        loc.locate(Image.new("L", (5000, 5000), 255), max_pixels=1_000_000)


def test_cli_locate_prints_json(tmp_path: Path, capsys, signatures):
    from sigml.cli import main

    page = make_page(1, signatures, split="test", n_signatures=1, width=1000, kind="form")
    path = tmp_path / "page.png"
    page.image.save(path)
    assert main(["locate", str(path), "--json", "--crops", str(tmp_path / "crops")]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["size"] == list(page.image.size)
    assert len(list((tmp_path / "crops").glob("page_*.png"))) == len(out["signatures"])


def test_real_crops_pass_as_signature_crops(shared_datasets: Path):
    from sigml.datasets import read_dataset

    refused = []
    n = 0
    for name in ("CEDAR-natural", "BHSig260-Hindi", "SigComp2011-Dutch", "CNSig", "GPDS"):
        if not (shared_datasets / name).is_dir():
            continue
        for record in read_dataset(shared_datasets / name, "auto", name)[::400]:
            n += 1
            if loc.look(shared_datasets / name / record.path).is_page:
                refused.append(f"{name}/{record.path}")
    if n == 0:
        pytest.skip("no dataset images found")
    assert not refused


@pytest.mark.parametrize("kind", ["letter", "cheque", "form"])
def test_documents_are_never_judged_whole(signatures, kind):
    """Every kind of test document, with a signature on it, is refused as a page (by the page check or the quality
    gate) and comes with the located boxes to crop to."""
    from sigml.errors import NotASignatureError

    for seed in range(3):
        page = make_page(100 + seed, signatures, split="test", n_signatures=1, kind=kind, width=1400)
        with pytest.raises(NotASignatureError) as refused:
            loc.preprocess_located(page_bytes(page.image), array=True)
        assert "suggested_crops" in refused.value.details
