"""The network signature locator (`sigml.locate_net` and its serving half in `sigml.locate`), on small synthetic
arrays and pages built here: training targets and crops, the network's shape, the page input it sees, boxes from
its heat map, box matching, the threshold choice, and a tiny train → resume → card → ONNX → locate round trip."""

from __future__ import annotations

import json
import logging
import math
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw
from sigml import locate as loc
from sigml import locate_net as ln
from sigml.errors import ModelLoadError

# ---------------------------------------------------------------- target_map


def test_target_map_is_one_in_cells_of_an_aligned_box_and_zero_elsewhere():
    target = ln.target_map(np.array([[8, 4, 20, 16]], np.float32), (32, 40))
    assert target.shape == (8, 10)
    want = np.zeros((8, 10), np.float32)
    want[1:4, 2:5] = 1.0  # rows 4..16 -> cells 1..3, columns 8..20 -> cells 2..4
    np.testing.assert_array_equal(target, want)


def test_target_map_gives_the_covered_share_of_a_partly_covered_cell():
    target = ln.target_map(np.array([[0, 0, 2, 4]]), (8, 8))  # left half of the first cell
    assert target[0, 0] == pytest.approx(0.5)
    assert target.sum() == pytest.approx(0.5)


def test_target_map_without_boxes_is_all_zero_at_a_quarter_of_the_size():
    target = ln.target_map(np.zeros((0, 4), np.float32), (37, 50))
    assert target.shape == (37 // 4, 50 // 4)
    assert not target.any()


# ---------------------------------------------------------------- sample_crop


def page_with_box(h: int = 512, w: int = 640, box=(200, 120, 320, 200)) -> tuple[np.ndarray, np.ndarray]:
    """A network input with ink exactly inside one 4-aligned box and none elsewhere: channel 0 grows left to right
    (100, 101, ...), channel 1 top to bottom (50, 51, ...), so a crop tells which way it was flipped."""
    x = np.zeros((2, h, w), np.uint8)
    l, t, r, b = box
    x[0, t:b, l:r] = 100 + np.arange(r - l)[None, :]
    x[1, t:b, l:r] = 50 + np.arange(b - t)[:, None]
    return x, np.array([box], np.float32)


def test_sample_crop_shapes_and_types():
    x, boxes = page_with_box()
    crop, target = ln.sample_crop(x, boxes, np.random.default_rng(0))
    assert crop.shape == (2, ln.CROP, ln.CROP) == (2, 384, 384) and crop.dtype == np.uint8
    assert target.shape == (96, 96) and target.dtype == np.float32
    assert crop.flags.c_contiguous and target.flags.c_contiguous


def test_sample_crop_is_deterministic_for_a_seed():
    x, boxes = page_with_box()
    for seed in range(5):
        a = ln.sample_crop(x, boxes, np.random.default_rng(seed))
        b = ln.sample_crop(x, boxes, np.random.default_rng(seed))
        np.testing.assert_array_equal(a[0], b[0])
        np.testing.assert_array_equal(a[1], b[1])


def test_sample_crop_targets_lie_exactly_over_the_box_ink_whatever_the_flips():
    x, boxes = page_with_box()
    rng = np.random.default_rng(1)
    with_signature, flips = 0, {"lr": 0, "ud": 0, "none": 0}
    for _ in range(80):
        crop, target = ln.sample_crop(x, boxes, rng, size=128)
        assert set(np.unique(target)) <= {0.0, 1.0}  # the box and the crop origin are both on the 4-pixel grid
        positive = np.kron(target, np.ones((4, 4), np.float32)) > 0
        np.testing.assert_array_equal(crop[0] > 0, positive)  # ink exactly under the positive cells, both channels
        np.testing.assert_array_equal(crop[1] > 0, positive)
        if not positive.any():
            continue
        with_signature += 1
        assert crop[0][positive].min() >= 100 and crop[1][positive].min() >= 50  # the painted ink values
        rows, cols = np.nonzero(positive)
        steps_x = np.unique(np.diff(crop[0].astype(int)[rows[0], positive[rows[0]]]))
        steps_y = np.unique(np.diff(crop[1].astype(int)[positive[:, cols[0]], cols[0]]))
        assert len(steps_x) <= 1 and len(steps_y) <= 1 and set(steps_x) | set(steps_y) <= {-1, 1}  # unbroken
        flips["lr"] += bool(len(steps_x) and steps_x[0] == -1)
        flips["ud"] += bool(len(steps_y) and steps_y[0] == -1)
        flips["none"] += bool(len(steps_x) and len(steps_y) and steps_x[0] == 1 and steps_y[0] == 1)
    assert with_signature >= 25  # half the draws are centred on the signature
    assert min(flips.values()) >= 1, flips


def test_sample_crop_of_a_page_smaller_than_the_crop_is_padded_with_paper():
    x, boxes = page_with_box(h=100, w=120, box=(20, 20, 60, 40))
    whole = 0
    for seed in range(20):
        crop, target = ln.sample_crop(x, boxes, np.random.default_rng(seed), size=128)
        assert crop.shape == (2, 128, 128)
        assert target.sum() * 16 == pytest.approx((crop[0] > 0).sum())
        whole += int((crop[0] > 0).sum() == 40 * 20)
    assert whole >= 5  # drawn anywhere, a page smaller than the crop lies wholly inside it


# ---------------------------------------------------------------- build_net


@pytest.mark.parametrize("h, w", [(200, 300), (256, 352), (202, 302)])
def test_build_net_maps_to_a_quarter_of_the_input(h, w):
    import torch

    net = ln.build_net(16).eval()
    with torch.no_grad():
        out = net(torch.rand(2, 2, h, w))
    assert tuple(out.shape) == (2, 1, math.ceil(h / 4), math.ceil(w / 4))


def test_build_net_is_small():
    params = sum(p.numel() for p in ln.build_net().parameters())
    assert 10_000 < params < 500_000


# ---------------------------------------------------------------- page_input


def test_page_input_is_two_uint8_channels_at_most_net_side():
    page = Image.new("L", (3000, 2000), 250)
    x, scale = loc.page_input(page)
    assert x.dtype == np.uint8
    assert x.shape == (2, 512, 768)
    assert max(x.shape[1:]) <= loc.NET_SIDE
    assert scale == pytest.approx(3000 / loc.NET_SIDE)


def test_page_input_keeps_small_pages_at_their_size():
    x, scale = loc.page_input(Image.new("L", (300, 200), 250))
    assert x.shape == (2, 200, 300) and scale == 1.0


def test_page_input_keeps_a_one_pixel_line_of_a_large_page_min_pooled():
    page = np.full((2000, 3000), 250, np.uint8)
    page[1001, 200:2800] = 0  # one pixel thin, 3.9 page pixels per network pixel
    x, scale = loc.page_input(Image.fromarray(page))
    dark = x[0]
    row = round(1001 / scale)
    band = dark[row - 2:row + 3, int(300 / scale):int(2700 / scale)].max(axis=0)
    assert band.min() > 0.35 * 255  # dark along all its length (a plain resize would leave about a quarter)
    assert dark[:row - 3].max() < 10 and dark[row + 4:].max() < 10  # nothing elsewhere


def test_page_input_saturation_shows_a_blue_stroke_but_not_a_black_one():
    page = Image.new("RGB", (1600, 1200), (245, 245, 245))
    draw = ImageDraw.Draw(page)
    draw.line([(200, 300), (1400, 300)], fill=(20, 40, 220), width=2)  # blue
    draw.line([(200, 900), (1400, 900)], fill=(0, 0, 0), width=2)  # black
    x, scale = loc.page_input(page)
    blue_row, black_row = int(300 / scale), int(900 / scale)
    saturation = x[1]
    assert saturation[blue_row - 2:blue_row + 3, 150:550].max(axis=0).min() > 150
    assert saturation[black_row - 3:black_row + 4].max() == 0
    assert x[0][black_row - 2:black_row + 3, 150:550].max(axis=0).min() > 150  # the black stroke is dark
    assert saturation.shape == x[0].shape


@pytest.mark.parametrize("mode", ["RGBA", "P"])
def test_page_input_saturation_of_other_colour_modes(mode):
    page = Image.new("RGB", (800, 600), (245, 245, 245))
    ImageDraw.Draw(page).line([(100, 300), (700, 300)], fill=(20, 40, 220), width=2)
    x, _ = loc.page_input(page.convert(mode))
    assert x[1].max() > 150


def test_page_input_of_a_gray_page_has_no_saturation():
    page = Image.new("L", (900, 600), 240)
    ImageDraw.Draw(page).line([(100, 300), (800, 300)], fill=0, width=3)
    x, _ = loc.page_input(page)
    assert not x[1].any()
    assert x[0].max() > 200


def test_page_input_follows_uneven_light():
    ramp = np.linspace(110, 250, 1200, dtype=np.float32)  # dim on the left, bright on the right
    shade = np.linspace(0.85, 1.0, 900, dtype=np.float32)[:, None]
    page = Image.fromarray((ramp[None, :] * shade).astype(np.uint8))
    x, _ = loc.page_input(page)
    assert x[0].max() < 0.1 * 255  # far below the ink cut (0.28): paper, not ink
    assert np.median(x[0]) < 8


# ---------------------------------------------------------------- heat_boxes / ink_of_input


def ink_patch(h: int = 96, w: int = 128, patch=(22, 30, 41, 45)) -> np.ndarray:
    """An input-pixel ink mask with one solid patch (l, t, r, b exclusive)."""
    ink = np.zeros((h, w), bool)
    l, t, r, b = patch
    ink[t:b, l:r] = True
    return ink


def test_heat_boxes_tightens_a_blob_to_the_ink_in_it():
    heat = np.zeros((24, 32), np.float32)
    heat[6:13, 4:12] = 0.5
    heat[8:11, 6:10] = 0.9
    found = loc.heat_boxes(heat, ink_patch(), threshold=0.8)
    assert len(found) == 1
    box, conf = found[0]
    np.testing.assert_array_equal(box, [22, 30, 41, 45])  # input pixels, exclusive ends
    assert conf == pytest.approx(0.9)


def test_heat_boxes_without_enough_ink_gives_the_cells_box():
    heat = np.zeros((24, 32), np.float32)
    heat[6:13, 4:12] = 0.9
    found = loc.heat_boxes(heat, np.zeros((96, 128), bool), threshold=0.5)
    assert len(found) == 1
    np.testing.assert_array_equal(found[0][0], [16, 24, 48, 52])


def test_heat_boxes_needs_the_peak_to_reach_the_threshold():
    heat = np.zeros((24, 32), np.float32)
    heat[6:13, 4:12] = 0.6
    assert loc.heat_boxes(heat, ink_patch(), threshold=0.7) == []
    assert len(loc.heat_boxes(heat, ink_patch(), threshold=0.6)) == 1


def test_heat_boxes_gives_separate_blobs_best_first():
    heat = np.zeros((24, 32), np.float32)
    heat[2:6, 2:8] = 0.7
    heat[14:20, 20:30] = 0.95
    ink = np.zeros((96, 128), bool)
    ink[10:20, 12:28] = True
    ink[60:76, 84:116] = True
    found = loc.heat_boxes(heat, ink, threshold=0.5)
    assert [c for _, c in found] == pytest.approx([0.95, 0.7])
    np.testing.assert_array_equal(found[0][0], [84, 60, 116, 76])
    np.testing.assert_array_equal(found[1][0], [12, 10, 28, 20])


def test_a_higher_region_cut_keeps_a_signature_apart_from_what_the_map_spreads_onto():
    heat = np.zeros((24, 32), np.float32)
    heat[6:13, 4:12] = 0.95  # the signature
    heat[6:13, 12:24] = 0.5  # a stamp beside it, warm but not a signature
    ink = ink_patch()  # the signature's ink: input pixels 22..41 x 30..45
    ink[30:45, 60:90] = True  # the stamp's ink
    merged = loc.heat_boxes(heat, ink, threshold=0.9)  # default cut LOW_HEAT: one region over both
    np.testing.assert_array_equal(merged[0][0], [22, 30, 90, 45])
    apart = loc.heat_boxes(heat, ink, threshold=0.9, region_cut=0.7)
    assert len(apart) == 1
    np.testing.assert_array_equal(apart[0][0], [22, 30, 41, 45])


def test_heat_boxes_of_a_cold_map_is_empty():
    assert loc.heat_boxes(np.zeros((24, 32), np.float32), ink_patch(), threshold=0.5) == []
    assert loc.heat_boxes(np.full((24, 32), loc.LOW_HEAT - 0.01, np.float32), ink_patch(), threshold=0.0) == []


def test_ink_of_input_is_the_darkness_channel_without_ruled_lines():
    x = np.zeros((2, 96, 128), np.uint8)
    x[0, 30:45, 22:41] = 180  # ink (above the 0.28 cut)
    x[0, 50:60, 60:70] = 40  # faint: not ink
    x[0, 47, 0:128] = 255  # a ruled line right under the ink, inside the hot region
    heat = np.zeros((24, 32), np.float32)
    heat[6:13, 4:12] = 0.9
    found = loc.heat_boxes(heat, loc.ink_of_input(x), threshold=0.5)
    assert len(found) == 1
    np.testing.assert_array_equal(found[0][0], [22, 30, 41, 45])


# ---------------------------------------------------------------- match_boxes


def test_match_boxes_known_cases():
    truth = np.array([[10, 10, 50, 30]])
    assert loc.match_boxes(truth.copy(), truth) == (1, 0)  # perfect
    assert loc.match_boxes(np.array([[10, 10, 30, 30]]), truth) == (1, 0)  # IoU 0.5 is enough...
    assert loc.match_boxes(np.array([[10, 10, 28, 30]]), truth) == (0, 1)  # ...0.45 is not
    assert loc.match_boxes(np.array([[10, 10, 50, 30], [12, 10, 50, 30]]), truth) == (1, 1)  # one truth, two found
    assert loc.match_boxes(np.array([[0, 0, 5, 5], [10, 10, 50, 30]]), np.zeros((0, 4))) == (0, 2)  # no truth
    assert loc.match_boxes(np.zeros((0, 4)), truth) == (0, 0)  # nothing found
    two = np.array([[10, 10, 50, 30], [100, 100, 140, 120]])
    assert loc.match_boxes(two[::-1].copy(), two) == (2, 0)


# ---------------------------------------------------------------- figures_at / choose_threshold


def box(l, t, r, b) -> np.ndarray:
    return np.array([l, t, r, b], np.float64)


# page 1: its signature found at 0.9 and a false box at 0.45; page 2: its signature at 0.7, a false box at 0.35
CANDIDATES = [
    ([(box(10, 10, 50, 30), 0.9), (box(200, 200, 240, 220), 0.45)], np.array([[10, 10, 50, 30]], np.float32)),
    ([(box(0, 0, 30, 30), 0.7), (box(100, 0, 130, 30), 0.35)], np.array([[0, 0, 30, 30]], np.float32)),
]


def test_figures_at_counts_located_and_false_boxes():
    assert ln.figures_at(CANDIDATES, 0.3) == {"threshold": 0.3, "located": 1.0, "signatures": 2,
                                              "false_per_page": 1.0, "pages": 2}
    assert ln.figures_at(CANDIDATES, 0.4)["false_per_page"] == 0.5
    assert ln.figures_at(CANDIDATES, 0.8) == {"threshold": 0.8, "located": 0.5, "signatures": 2,
                                              "false_per_page": 0.0, "pages": 2}
    assert ln.figures_at(CANDIDATES, 0.95)["located"] == 0.0
    assert ln.figures_at([], 0.5) == {"threshold": 0.5, "located": 0.0, "signatures": 0, "false_per_page": 0.0,
                                      "pages": 0}


def test_choose_threshold_picks_the_lowest_threshold_within_the_false_boxes_allowed():
    assert ln.choose_threshold(CANDIDATES, 0.0)["threshold"] == pytest.approx(0.46)
    assert ln.choose_threshold(CANDIDATES, 0.0)["located"] == 1.0
    assert ln.choose_threshold(CANDIDATES, 0.5)["threshold"] == pytest.approx(0.36)
    assert ln.choose_threshold(CANDIDATES, 1.0)["threshold"] == pytest.approx(0.30)


def test_choose_operating_point_takes_the_cut_that_locates_most_within_the_false_boxes_allowed():
    # cut 0.3: the signature merged with its neighbour (IoU < 0.5), cut 0.7: found alone
    merged = [([(box(10, 10, 100, 30), 0.9)], np.array([[10, 10, 50, 30]], np.float32))]
    alone = [([(box(10, 10, 50, 30), 0.9)], np.array([[10, 10, 50, 30]], np.float32))]
    chosen = ln.choose_operating_point({0.3: merged, 0.7: alone}, 0.0)
    assert chosen["region_cut"] == 0.7 and chosen["located"] == 1.0 and chosen["false_per_page"] == 0.0
    # a tie in located and false boxes: the lower cut
    assert ln.choose_operating_point({0.3: alone, 0.7: alone}, 0.0)["region_cut"] == 0.3
    # no cut keeps to the false boxes allowed: the strictest threshold of the lowest cut
    sure_false = [([(box(500, 500, 540, 520), 1.0)], np.array([[0, 0, 30, 30]], np.float32))]
    fallback = ln.choose_operating_point({0.5: sure_false, 0.3: sure_false}, 0.0)
    assert fallback["region_cut"] == 0.3 and fallback["threshold"] == pytest.approx(float(ln.THRESHOLDS[-1]))


def test_choose_threshold_falls_back_to_the_highest_threshold():
    sure_false = [([(box(500, 500, 540, 520), 1.0)], np.array([[0, 0, 30, 30]], np.float32))]
    chosen = ln.choose_threshold(sure_false, 0.0)
    assert chosen["threshold"] == pytest.approx(float(ln.THRESHOLDS[-1]))
    assert chosen["false_per_page"] == 1.0


# ---------------------------------------------------------------- train, resume, card, ONNX, locate


def write_pages(folder: Path) -> None:
    """Tiny network inputs as `make_pages` keeps them: a bright scribble inside the box on some pages."""
    rng = np.random.default_rng(0)
    for split, count in (("train", 4), ("validation", 2)):
        for n in range(count):
            x = np.zeros((2, 256, 256), np.uint8)
            boxes = np.zeros((0, 4), np.float32)
            if n % 2 == 0:
                l, t = int(rng.integers(16, 120)), int(rng.integers(16, 160))
                boxes = np.array([[l, t, l + 100, t + 48]], np.float32)
                xs = np.linspace(l + 4, l + 95, 200)
                ys = t + 24 + 16 * np.sin(xs / 5.0)
                x[0, ys.astype(int), xs.astype(int)] = 230
                x[0, ys.astype(int) + 1, xs.astype(int)] = 230
            x[0, 220, 20:230] = 255  # a printed rule on every page
            np.savez_compressed(folder / f"{split}_{n}.npz", x=x, boxes=boxes, kind=np.array("letter"))
    (folder / "train_9.tmp.npz").write_bytes(b"half written")  # never read


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(pages folder, run folder) of a 4-step run with a width-8 network."""
    pages = tmp_path_factory.mktemp("pages")
    write_pages(pages)
    out = pages / "run"
    weights = ln.train(pages, out, steps=4, batch=2, width=8, seed=0)
    assert weights == out / "locnet.safetensors"
    return pages, out


@pytest.fixture(scope="module")
def card(trained, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    pages, out = trained
    path = tmp_path_factory.mktemp("card") / "loc.json"
    return path, ln.write_card(out / "locnet.safetensors", pages, path)


def test_train_writes_weights_config_and_checkpoint(trained):
    _, out = trained
    for name in ("locnet.safetensors", "config.json", "checkpoint.safetensors", "checkpoint.json"):
        assert (out / name).is_file(), name
    assert json.loads((out / "checkpoint.json").read_text())["step"] == 4
    config = json.loads((out / "config.json").read_text())
    assert (config["steps"], config["batch"], config["width"], config["seed"]) == (4, 2, 8, 0)
    net, stored = ln.load_net(out / "locnet.safetensors")
    assert stored["width"] == 8 and stored["pages"] == 4  # the .tmp.npz is not a page
    assert sum(p.numel() for p in net.parameters()) == sum(p.numel() for p in ln.build_net(8).parameters())


def test_train_without_pages_stops(tmp_path):
    with pytest.raises(SystemExit):
        ln.train(tmp_path, tmp_path / "run", steps=2, batch=2, width=8)


def test_train_resumes_from_its_checkpoint(trained, tmp_path, caplog):
    pages, out = trained
    run = tmp_path / "run"
    shutil.copytree(out, run)
    caplog.set_level(logging.INFO, logger=ln.__name__)
    ln.train(pages, run, steps=4, batch=2, width=8, seed=0, resume=True)  # the run was complete: nothing to do
    assert "resumed at step 4" in caplog.text
    # nothing trained: the weights are the checkpoint's
    from safetensors.torch import load_file

    before, after = load_file(str(out / "locnet.safetensors")), load_file(str(run / "locnet.safetensors"))
    assert all(np.array_equal(before[k].numpy(), after[k].numpy()) for k in before)


def test_train_resumes_with_more_steps(trained, tmp_path, caplog):
    pages, out = trained
    run = tmp_path / "run"
    shutil.copytree(out, run)
    caplog.set_level(logging.INFO, logger=ln.__name__)
    ln.train(pages, run, steps=6, batch=2, width=8, seed=0, resume=True)
    assert "resumed at step 4" in caplog.text
    assert json.loads((run / "checkpoint.json").read_text())["step"] == 6


def test_write_card_exports_onnx_and_chooses_a_threshold(card):
    from sigml.modelcard import file_sha256

    path, written = card
    assert json.loads(path.read_text()) == written
    assert written["format"] == "sigml.locate/net-v1"
    onnx = path.parent / written["onnx"]["file"]
    assert onnx == path.with_suffix(".onnx") and onnx.is_file()
    assert written["onnx"]["sha256"] == file_sha256(onnx)
    assert 0.3 <= written["threshold"] <= 0.99
    validation = written["card"]["validation"]
    assert validation["pages"] == 2 and validation["signatures"] == 1
    assert validation["threshold"] == written["threshold"]
    assert written["region_cut"] == validation["region_cut"] and written["region_cut"] in ln.REGION_CUTS
    assert written["card"]["trained"]["width"] == 8


def test_onnx_export_matches_torch_at_another_size(card, trained):
    import torch

    path, written = card
    net, _ = ln.load_net(trained[1] / "locnet.safetensors")
    x = np.random.default_rng(5).random((1, 2, 200, 300)).astype(np.float32)
    with torch.no_grad():
        want = net(torch.from_numpy(x)).numpy()
    got = loc.run_onnx(path.parent / written["onnx"]["file"], x)
    assert got.shape == (1, 1, 50, 75)
    np.testing.assert_allclose(got, want, atol=1e-3)


def test_load_model_reads_the_card_and_the_heat_is_a_probability_map(card):
    path, written = card
    loc.load_model.cache_clear()
    net = loc.load_model(path)
    assert isinstance(net, loc.Locator)
    assert net.threshold == written["threshold"] and net.onnx == path.with_suffix(".onnx").resolve()
    assert net.region_cut == written["region_cut"]
    assert loc.load_model(path) is net  # cached
    heat = net.heat(np.zeros((2, 96, 160), np.uint8))
    assert heat.shape == (24, 40)
    assert np.all((heat >= 0) & (heat <= 1))


def test_locate_returns_boxes_inside_the_page(card):
    path, _ = card
    loc.load_model.cache_clear()
    net = loc.load_model(path)
    page = Image.new("L", (1100, 700), 245)
    draw = ImageDraw.Draw(page)
    xs = np.linspace(600, 900, 300)
    draw.line(list(zip(xs.tolist(), (520 + 40 * np.sin(xs / 12)).tolist())), fill=20, width=3)
    draw.line([(80, 120), (1000, 120)], fill=0, width=2)
    for threshold in (None, 0.0):
        found = loc.locate(page, model=net, threshold=threshold)
        assert isinstance(found, list)
        for f in found:
            assert isinstance(f, loc.LocatedSignature)
            l, t, r, b = f.box
            assert 0 <= l < r <= page.size[0] and 0 <= t < b <= page.size[1]
            assert 0.0 <= f.confidence <= 1.0
        assert [f.confidence for f in found] == sorted((f.confidence for f in found), reverse=True)
    # the same boxes as the map gives, scaled back to the page's pixels
    x, _ = loc.page_input(page)
    want = loc.heat_boxes(net.heat(x), loc.ink_of_input(x), 0.0, net.region_cut)
    assert len(found) == len(want)
    assert [f.confidence for f in found] == pytest.approx([c for _, c in want])


def test_load_model_refuses_a_card_whose_onnx_differs(card, tmp_path):
    path, written = card
    tampered = path.parent / "tampered.json"
    tampered.write_text(json.dumps({**written, "onnx": {**written["onnx"], "sha256": "0" * 64}}))
    loc.load_model.cache_clear()
    with pytest.raises(ModelLoadError, match="SHA-256"):
        loc.load_model(tampered)


def test_load_model_refuses_another_format_and_a_missing_card(card, tmp_path):
    path, written = card
    other = path.parent / "other.json"
    other.write_text(json.dumps({**written, "format": "sigml.locate/net-v0"}))
    loc.load_model.cache_clear()
    with pytest.raises(ModelLoadError):
        loc.load_model(other)
    with pytest.raises(ModelLoadError):
        loc.load_model(tmp_path / "missing.json")
    broken = tmp_path / "broken.json"
    broken.write_text("{not json")
    with pytest.raises(ModelLoadError):
        loc.load_model(broken)
