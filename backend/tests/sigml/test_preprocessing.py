"""sigml.preprocessing: every input kind and mode, the output contract, refusals, and the CEDAR paper bias."""

from __future__ import annotations

import io
import struct
import time
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from PIL import Image
from sklearn.metrics import roc_auc_score

from sigml.errors import BlankImageError, ImageError, ImageTooLargeError, UnreadableImageError
from sigml.preprocessing import (
    DEFAULT_CONFIG,
    PreprocessConfig,
    gray_histogram,
    otsu_threshold,
    preprocess,
    preprocess_array,
    to_grayscale,
    to_png,
)
from sigml.testing import image_bytes, signature_image

H, W = DEFAULT_CONFIG.canvas_height, DEFAULT_CONFIG.canvas_width
MARGIN = DEFAULT_CONFIG.margin


# --- helpers ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def sig() -> Image.Image:
    return signature_image(seed=3, size=(300, 120))


@pytest.fixture(scope="module")
def reference(sig: Image.Image) -> np.ndarray:
    return preprocess_array(image_bytes(sig, "PNG"))


def assert_valid(t: torch.Tensor) -> None:
    assert isinstance(t, torch.Tensor)
    assert t.shape == (1, H, W)
    assert t.dtype == torch.float32
    assert torch.isfinite(t).all()
    assert float(t.min()) == 0.0
    assert 0.0 < float(t.max()) <= 1.0
    # background exactly zero: the margin frame is empty and most of the canvas is exact zeros
    a = t[0]
    assert a[:MARGIN].max() == 0 and a[-MARGIN:].max() == 0 and a[:, :MARGIN].max() == 0 and a[:, -MARGIN:].max() == 0
    assert float((a == 0).float().mean()) > 0.5


def ink_bbox(mask: np.ndarray) -> tuple[int, int, int, int]:
    rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
    return rows[0], rows[-1] + 1, cols[0], cols[-1] + 1


def assert_close(a: np.ndarray, b: np.ndarray, mean_tol: float = 0.03, iou_min: float = 0.8) -> None:
    """Nearly the same preprocessed signature: small mean difference and overlapping ink."""
    a, b = np.squeeze(np.asarray(a)), np.squeeze(np.asarray(b))
    assert a.shape == b.shape == (H, W)
    assert float(np.abs(a - b).mean()) < mean_tol
    ia, ib = a > 0.2, b > 0.2
    iou = (ia & ib).sum() / max(1, (ia | ib).sum())
    assert iou > iou_min, f"ink overlap (IoU) {iou:.2f}"


def png_header_only(width: int, height: int) -> bytes:
    """A tiny PNG whose header claims width x height (the pixels are never allocated)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)  # 8-bit grayscale
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\x00" * 64)) + chunk(b"IEND", b"")


# --- formats and modes ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "mode,fmt,kwargs",
    [
        ("L", "PNG", {}),
        ("RGB", "PNG", {}),
        ("L", "JPEG", {"quality": 95}),
        ("RGB", "JPEG", {"quality": 95}),
        ("L", "TIFF", {}),
        ("RGB", "BMP", {}),
        ("L", "GIF", {}),
        ("P", "PNG", {}),
        ("LA", "PNG", {}),
        ("1", "PNG", {}),
        ("L", "WEBP", {"lossless": True}),
    ],
)
def test_formats_and_modes_give_the_same_signature(sig, reference, mode, fmt, kwargs):
    data = image_bytes(sig.convert(mode), fmt, **kwargs)
    out = preprocess(data)
    assert_valid(out)
    assert_close(out.numpy(), reference)


def test_tiff_16_bit(sig, reference):
    arr16 = np.asarray(sig).astype(np.uint16) * 257
    image16 = Image.fromarray(arr16)
    assert image16.mode == "I;16"
    data = image_bytes(image16, "TIFF")
    assert Image.open(io.BytesIO(data)).mode.startswith("I;16")
    out = preprocess(data)
    assert_valid(out)
    np.testing.assert_allclose(out.numpy()[0], reference, atol=1e-5)


def test_png_16_bit(sig, reference):
    data = image_bytes(Image.fromarray(np.asarray(sig).astype(np.uint16) * 257), "PNG")
    assert_close(preprocess(data).numpy(), reference, mean_tol=1e-4, iou_min=0.99)


def test_multipage_tiff_uses_the_first_page(sig, reference):
    other = signature_image(seed=99, size=(300, 120))
    buf = io.BytesIO()
    sig.save(buf, "TIFF", save_all=True, append_images=[other, Image.new("L", (300, 120), 255)])
    data = buf.getvalue()
    assert Image.open(io.BytesIO(data)).n_frames == 3
    out = preprocess(data).numpy()[0]
    np.testing.assert_array_equal(out, reference)
    assert np.abs(out - preprocess_array(image_bytes(other))).mean() > 0.05  # not the second page


def test_rgba_transparent_background_is_paper(sig, reference):
    ink = np.asarray(sig) < 128
    rgba = np.zeros((*ink.shape, 4), np.uint8)  # transparent *black*: ignoring alpha would make it all ink
    rgba[ink] = (30, 30, 30, 255)
    out = preprocess(image_bytes(Image.fromarray(rgba, "RGBA"), "PNG"))
    assert_valid(out)
    np.testing.assert_array_equal(out.numpy()[0], reference)


def test_palette_with_transparent_index_is_paper(sig, reference):
    ink = np.asarray(sig) < 128
    pal = Image.fromarray(ink.astype(np.uint8), "P")
    pal.putpalette([0, 0, 0, 30, 30, 30] + [0] * (256 * 3 - 6))  # index 0 (paper) is black but transparent
    out = preprocess(image_bytes(pal, "PNG", transparency=0))
    np.testing.assert_array_equal(out.numpy()[0], reference)


def test_fully_transparent_image_is_blank():
    with pytest.raises(BlankImageError):
        preprocess(image_bytes(Image.new("RGBA", (200, 100), (0, 0, 0, 0)), "PNG"))


def test_cmyk_jpeg(sig):
    cmyk = sig.convert("CMYK")
    data = image_bytes(cmyk, "JPEG", quality=95)
    assert Image.open(io.BytesIO(data)).mode == "CMYK"
    out = preprocess(data)
    assert_valid(out)
    assert_close(out.numpy(), preprocess_array(image_bytes(sig, "JPEG", quality=95)))


@pytest.mark.parametrize("orientation,stored_rotation", [(6, 90), (8, -90)])
def test_exif_orientation_is_applied(sig, orientation, stored_rotation):
    """A camera stores the image rotated and says so in the EXIF tag; the output must be upright."""
    stored = sig.rotate(stored_rotation, expand=True)  # tall: 120 x 300
    exif = Image.Exif()
    exif[0x0112] = orientation
    data = image_bytes(stored, "JPEG", quality=95, exif=exif.tobytes())
    upright = preprocess_array(image_bytes(sig, "JPEG", quality=95))
    out = preprocess_array(data)
    assert_close(out, upright)
    sideways = preprocess_array(image_bytes(stored, "JPEG", quality=95))  # same pixels, no EXIF tag
    assert np.abs(sideways - upright).mean() > 2 * np.abs(out - upright).mean()


# --- input kinds ------------------------------------------------------------------------------------


def test_all_input_kinds_give_identical_tensors(tmp_path, sig, reference):
    data = image_bytes(sig, "PNG")
    path = tmp_path / "sig.png"
    path.write_bytes(data)
    with path.open("rb") as fh:
        from_file_object = preprocess(fh)
    outputs = {
        "bytes": preprocess(data),
        "bytearray": preprocess(bytearray(data)),
        "str path": preprocess(str(path)),
        "Path": preprocess(path),
        "file object": from_file_object,
        "BytesIO": preprocess(io.BytesIO(data)),
        "PIL image": preprocess(Image.open(io.BytesIO(data))),
        "numpy array": preprocess(np.asarray(sig)),
    }
    for kind, out in outputs.items():
        assert_valid(out)
        assert np.array_equal(out.numpy()[0], reference), kind


def test_deterministic(sig):
    data = image_bytes(sig, "JPEG")
    assert torch.equal(preprocess(data), preprocess(data))


def test_preprocess_array_matches_preprocess(sig):
    np.testing.assert_array_equal(preprocess(sig).numpy()[0], preprocess_array(sig))


# --- output geometry -------------------------------------------------------------------------------------


def _bar_signature(size: tuple[int, int], box: tuple[int, int, int, int]) -> Image.Image:
    """A 'signature' whose ink bounding box is exactly `box` (left, top, right, bottom): a zig-zag."""
    image = Image.new("L", size, 240)
    from PIL import ImageDraw

    draw = ImageDraw.Draw(image)
    l, t, r, b = box
    xs = np.linspace(l, r - 1, 9)
    ys = [t if i % 2 == 0 else b - 1 for i in range(9)]
    draw.line(list(zip(xs.tolist(), ys)), fill=20, width=3)
    return image


@pytest.mark.parametrize(
    "size,box",
    [
        ((800, 200), (100, 60, 700, 140)),  # wide: 600 x 80 (7.5:1)
        ((300, 600), (120, 50, 180, 550)),  # tall: 60 x 500
        ((400, 400), (50, 100, 350, 300)),  # 3:2
    ],
)
def test_aspect_ratio_is_kept_and_ink_centred(size, box):
    image = _bar_signature(size, box)
    src = np.asarray(image) < 128
    t0, b0, l0, r0 = ink_bbox(src)
    src_aspect = (r0 - l0) / (b0 - t0)
    out = preprocess_array(image)
    t1, b1, l1, r1 = ink_bbox(out > 0)
    out_aspect = (r1 - l1) / (b1 - t1)
    assert out_aspect == pytest.approx(src_aspect, rel=0.1)
    # the constraining side fills the canvas (minus the margin)
    assert (r1 - l1) >= W - 2 * MARGIN - 2 or (b1 - t1) >= H - 2 * MARGIN - 2
    # centred on the canvas
    assert abs((t1 + b1) / 2 - H / 2) <= 1.5
    assert abs((l1 + r1) / 2 - W / 2) <= 1.5


def test_wide_signature_stays_wide():
    out = preprocess_array(_bar_signature((1000, 120), (50, 30, 950, 90)))  # 15:1
    t, b, l, r = ink_bbox(out > 0)
    assert (r - l) / (b - t) > 10  # not stretched to the 220:150 canvas


@pytest.mark.parametrize("size,box", [((1000, 120), (50, 30, 950, 90)), ((300, 600), (120, 50, 180, 550))])
def test_stretch_fills_the_canvas(size, box):
    out = preprocess_array(_bar_signature(size, box), PreprocessConfig(fit="stretch"))
    t, b, l, r = ink_bbox(out > 0)
    assert (r - l) >= W - 2 * MARGIN - 2 and (b - t) >= H - 2 * MARGIN - 2  # both sides fill it, whatever the shape


def test_unknown_fit_mode_is_refused():
    with pytest.raises(ValueError, match="fit mode"):
        PreprocessConfig(fit="crop")


def test_off_centre_signature_is_centred(sig):
    page = Image.new("L", (1200, 900), 235)
    page.paste(sig, (20, 15))  # top-left corner of a big page
    out = preprocess_array(page)
    t, b, l, r = ink_bbox(out > 0)
    assert abs((t + b) / 2 - H / 2) <= 1.5 and abs((l + r) / 2 - W / 2) <= 1.5
    assert_close(out, preprocess_array(sig), mean_tol=0.02)


@pytest.mark.parametrize("ink_mode", ["binary", "normalized", "gray"])
def test_ink_modes(sig, ink_mode):
    out = preprocess(sig, PreprocessConfig(ink=ink_mode))
    assert_valid(out)


def test_custom_canvas():
    out = preprocess(signature_image(seed=1), PreprocessConfig(canvas_height=64, canvas_width=96))
    assert out.shape == (1, 64, 96)


def test_isolated_specks_are_dropped(sig, reference):
    arr = np.asarray(sig).copy()
    for i, x in enumerate(range(10, 300, 20)):  # isolated single dark pixels near the top and bottom edges
        arr[3 + 2 * (i % 3), x] = 0
        arr[115 - 2 * (i % 3), x + 7] = 0
    out = preprocess_array(arr)
    assert_close(out, reference, mean_tol=0.01, iou_min=0.95)


# --- paper colour -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("paper", [255, 200, 170])
def test_grey_and_white_paper_give_the_same_tensor(paper):
    white = preprocess_array(signature_image(seed=4, paper=235, ink=40))
    other = preprocess_array(signature_image(seed=4, paper=paper, ink=40))
    assert_close(other, white, mean_tol=0.005, iou_min=0.98)


def test_noisy_grey_paper_gives_nearly_the_same_tensor():
    rng = np.random.default_rng(1)
    clean = np.asarray(signature_image(seed=4, paper=240, ink=40)).astype(np.float32)
    grey = np.where(clean > 128, 175.0, 40.0) + rng.normal(0, 4, clean.shape)  # darker, noisy paper scan
    out = preprocess_array(np.clip(grey, 0, 255).astype(np.uint8))
    assert_close(out, preprocess_array(clean.astype(np.uint8)), mean_tol=0.02, iou_min=0.9)


# --- blank pages -------------------------------------------------------------------------------------------


def _specks() -> np.ndarray:
    arr = np.full((200, 200), 245, np.uint8)
    for y, x in ((20, 30), (150, 40), (90, 170), (180, 180)):
        arr[y : y + 2, x : x + 2] = 10
    return arr


@pytest.mark.parametrize(
    "image",
    [
        pytest.param(Image.new("L", (300, 120), 255), id="white"),
        pytest.param(Image.new("L", (300, 120), 0), id="black"),
        pytest.param(Image.new("L", (300, 120), 128), id="uniform-gray"),
        pytest.param(Image.new("RGB", (300, 120), (200, 190, 170)), id="uniform-colour"),
        pytest.param(Image.fromarray(_specks()), id="a-few-specks"),
        pytest.param(signature_image(seed=2, paper=200, ink=185), id="low-contrast"),
        pytest.param(Image.new("F", (50, 50), 0.5), id="float-uniform"),
    ],
)
def test_blank_images_raise(image):
    with pytest.raises(BlankImageError) as info:
        preprocess(image)
    assert isinstance(info.value, ValueError) and isinstance(info.value, ImageError)
    assert info.value.code == "blank_image"


def test_blank_png_bytes_raise():
    with pytest.raises(BlankImageError):
        preprocess(image_bytes(Image.new("L", (640, 480), 250), "PNG"))


# --- unreadable inputs ----------------------------------------------------------------------------------------


def test_zero_bytes(tmp_path):
    with pytest.raises(UnreadableImageError):
        preprocess(b"")
    empty = tmp_path / "empty.png"
    empty.write_bytes(b"")
    with pytest.raises(UnreadableImageError, match="empty"):
        preprocess(empty)


def test_random_bytes():
    data = np.random.default_rng(0).integers(0, 256, 5000, dtype=np.uint8).tobytes()
    with pytest.raises(UnreadableImageError):
        preprocess(data)


def test_text_file_and_missing_path(tmp_path):
    text = tmp_path / "notes.png"
    text.write_text("this is not an image\n" * 20)
    with pytest.raises(UnreadableImageError):
        preprocess(text)
    with pytest.raises(UnreadableImageError, match="no such image file"):
        preprocess(tmp_path / "missing.png")
    with pytest.raises(UnreadableImageError):
        preprocess(tmp_path)  # a directory


@pytest.mark.parametrize("fmt", ["PNG", "JPEG"])
@pytest.mark.parametrize("keep", [0.3, 0.6, 0.9])
def test_truncated_files(sig, fmt, keep):
    data = image_bytes(signature_image(seed=5, size=(600, 240)), fmt)
    with pytest.raises(UnreadableImageError) as info:
        preprocess(data[: int(len(data) * keep)])
    assert info.value.code == "invalid_image"


def _outcome(data: bytes) -> str:
    """'ok' (with a valid tensor) or 'image_error'; any other exception propagates and fails the test."""
    try:
        out = preprocess(data)
    except ImageError:
        return "image_error"
    assert out.shape == (1, H, W) and torch.isfinite(out).all()
    return "ok"


@pytest.mark.filterwarnings("ignore::UserWarning")
@pytest.mark.parametrize("fmt", ["PNG", "JPEG", "BMP", "TIFF", "GIF", "WEBP"])
def test_every_truncation_of_a_single_frame_image_raises_image_error(fmt):
    data = image_bytes(signature_image(seed=1, size=(40, 20)), fmt)
    outcomes = [_outcome(data[:n]) for n in range(len(data))]
    assert set(outcomes) <= {"ok", "image_error"}
    assert outcomes[: len(data) // 2].count("image_error") >= len(data) // 4  # most short prefixes are refused
    assert _outcome(data) == "ok"


# --- Pillow plugins raising TypeError/IndexError/... on corrupt files must surface as ImageError --------


def _multiframe(fmt: str) -> bytes:
    buf = io.BytesIO()
    signature_image(seed=0, size=(40, 20)).save(
        buf, fmt, save_all=True, append_images=[signature_image(seed=1, size=(40, 20))]
    )
    return buf.getvalue()


def _tiff_with_bogus_second_page() -> bytes:
    """A valid one-page TIFF whose 'next IFD' pointer leads to a page without dimensions."""
    data = bytearray(image_bytes(signature_image(seed=0, size=(40, 20)), "TIFF"))
    assert data[:4] == b"II*\x00"
    ifd = struct.unpack_from("<I", data, 4)[0]
    n_entries = struct.unpack_from("<H", data, ifd)[0]
    next_pointer = ifd + 2 + 12 * n_entries
    data += b"\x00" * (len(data) % 2)
    bogus = len(data)
    data += struct.pack("<H", 1) + struct.pack("<HHII", 259, 3, 1, 1) + struct.pack("<I", 0)  # only Compression=1
    struct.pack_into("<I", data, next_pointer, bogus)
    return bytes(data)


def _dds_with_unknown_pixel_format() -> bytes:
    data = bytearray(image_bytes(signature_image(seed=0, size=(40, 20)), "DDS"))
    struct.pack_into("<I", data, 80, 0x40000)  # DDS_PIXELFORMAT.dwFlags: no known format bit
    return bytes(data)


def test_tiff_with_corrupt_second_page_reads_its_first_page():
    """Only the first page is the signature and the pages are never walked (walking chained pages cost quadratic
    time): a corrupt second page is never read, so the first page's signature is judged."""
    tensor = preprocess(_tiff_with_bogus_second_page())
    assert tensor.shape[0] == 1 and float(tensor.max()) > 0


def test_dds_with_unknown_pixel_format_raises_image_error():
    with pytest.raises(ImageError):
        preprocess(_dds_with_unknown_pixel_format())


@pytest.mark.filterwarnings("ignore::UserWarning")
@pytest.mark.parametrize(
    "fmt",
    [
        "GIF",
        "TIFF",
        "PNG",
        "WEBP",
    ],
)
def test_every_truncation_of_a_multiframe_image_raises_image_error(fmt):
    data = _multiframe(fmt)
    outcomes = [_outcome(data[:n]) for n in range(len(data))]
    assert set(outcomes) <= {"ok", "image_error"}
    assert _outcome(data) == "ok"


# --- oversized inputs --------------------------------------------------------------------------------------------


def test_decompression_bomb_is_refused_fast():
    data = png_header_only(50_000, 50_000)
    assert len(data) < 200
    started = time.perf_counter()
    with pytest.raises(ImageTooLargeError) as info:
        preprocess(data)
    assert time.perf_counter() - started < 2.0
    assert info.value.code == "image_too_large"
    assert isinstance(info.value, ValueError)


@pytest.mark.filterwarnings("ignore::PIL.Image.DecompressionBombWarning")
def test_image_above_the_configured_limit_but_below_pillows(tmp_path):
    data = png_header_only(8_000, 8_000)  # 64 Mpx: > max_pixels (40 M) but < Pillow's bomb error limit
    path = tmp_path / "big.png"
    path.write_bytes(data)
    with pytest.raises(ImageTooLargeError, match="8000x8000"):
        preprocess(path)


def test_custom_max_pixels(sig):
    cfg = PreprocessConfig(max_pixels=10_000)
    with pytest.raises(ImageTooLargeError):
        preprocess(image_bytes(sig), cfg)
    with pytest.raises(ImageTooLargeError):
        preprocess(sig, cfg)  # PIL images are checked too
    assert_valid(preprocess(signature_image(seed=3, size=(120, 60)), cfg))


# --- building blocks ---------------------------------------------------------------------------------------------


def test_otsu_threshold_separates_two_levels():
    gray = np.concatenate([np.full(900, 0.9), np.full(100, 0.1)]).astype(np.float32)
    t = otsu_threshold(gray)
    assert 0.1 < t <= 0.9
    assert ((gray < t) == (gray < 0.5)).all()


@given(arrays(np.uint8, st.tuples(st.integers(1, 40), st.integers(1, 40))))
@settings(max_examples=60, deadline=None)
def test_gray_histogram_from_8bit_levels_is_numpys_histogram(pixels):
    image = Image.fromarray(pixels, mode="L")
    gray = to_grayscale(image)
    counts, edges = np.histogram(gray, bins=256, range=(0.0, 1.0))
    fast_counts, fast_edges = gray_histogram(gray, image.histogram())
    assert np.array_equal(fast_counts, counts) and np.array_equal(fast_edges, edges)
    assert fast_edges.dtype == edges.dtype
    assert otsu_threshold(gray, image.histogram()) == otsu_threshold(gray)


def test_gray_histogram_every_level_and_without_levels():
    levels = np.arange(256, dtype=np.uint8).reshape(16, 16)
    image = Image.fromarray(levels, mode="L")
    gray = to_grayscale(image)
    expected = np.histogram(gray, bins=256, range=(0.0, 1.0))
    for got in (gray_histogram(gray, image.histogram()), gray_histogram(gray)):
        assert np.array_equal(got[0], expected[0]) and np.array_equal(got[1], expected[1])


def test_preprocess_fast_histogram_path_unchanged_on_real_sizes(sig):
    """preprocess_array takes Otsu's histogram from PIL for 8-bit images: same output as from np.histogram."""
    from sigml.preprocessing import crop_to_ink, fit_to_canvas, remove_background

    for image in (sig, sig.resize((1000, 300)), sig.convert("RGB"), sig.convert("P")):
        slow = fit_to_canvas(crop_to_ink(remove_background(to_grayscale(image), DEFAULT_CONFIG)), DEFAULT_CONFIG)
        assert np.array_equal(preprocess_array(image), slow)


def test_to_grayscale_range_and_polarity(sig):
    gray = to_grayscale(sig.convert("RGB"))
    assert gray.dtype == np.float32 and gray.min() >= 0 and gray.max() <= 1
    assert gray.max() > 0.9 > 0.2 > gray.min()  # paper bright, ink dark


def test_to_png_round_trip(sig):
    t = preprocess(sig)
    png = to_png(t)
    back = np.asarray(Image.open(io.BytesIO(png)))
    assert back.shape == (H, W)
    assert back[0, 0] == 255  # background shown white
    assert back.min() < 50  # ink dark


def test_config_round_trip():
    cfg = PreprocessConfig(canvas_height=100, ink="binary")
    assert PreprocessConfig.from_dict({**cfg.to_dict(), "unknown_key": 1}) == cfg


# --- properties ---------------------------------------------------------------------------------------------------

MAGIC = [b"", b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff\xe0", b"GIF89a", b"BM", b"P5\n", b"RIFF"]


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow], derandomize=True)
@given(prefix=st.sampled_from(MAGIC), body=st.binary(max_size=1024))
def test_random_bytes_raise_only_image_errors(prefix, body):
    try:
        out = preprocess(prefix + body)
    except ImageError:
        return
    assert out.shape == (1, H, W)


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow], derandomize=True)
@given(arrays(np.uint8, st.tuples(st.integers(1, 64), st.integers(1, 64))))
def test_random_small_arrays_give_a_valid_tensor_or_image_error(arr):
    try:
        out = preprocess(arr)
    except ImageError:
        return
    assert out.shape == (1, H, W) and out.dtype == torch.float32
    assert torch.isfinite(out).all()
    assert float(out.min()) == 0.0 and 0.0 < float(out.max()) <= 1.0


# --- real data: CEDAR's paper colour must carry no signal after preprocessing ------------------------------------

CEDAR_WRITERS = list(range(1, 56, 5))  # 11 writers, 528 images


@pytest.fixture(scope="module")
def cedar_stats(cedar_root: Path) -> dict[str, np.ndarray]:
    labels, raw_mean, bg_median, pre_mean, ink_mean, frame_max = [], [], [], [], [], []
    for w in CEDAR_WRITERS:
        for sub, label in (("original", 1), ("forged", 0)):
            paths = sorted((cedar_root / f"person_{w}" / sub).glob("*.png"))
            assert paths, f"no images in person_{w}/{sub}"
            for p in paths:
                raw = to_grayscale(Image.open(p))
                out = preprocess_array(p)
                labels.append(label)
                raw_mean.append(raw.mean())
                bg_median.append(np.median(out))  # a background statistic (the page is mostly background)
                pre_mean.append(out.mean())
                ink_mean.append(out[out > 0].mean())
                frame_max.append(max(out[:MARGIN].max(), out[-MARGIN:].max(), out[:, :MARGIN].max(), out[:, -MARGIN:].max()))
    return {k: np.asarray(v) for k, v in dict(
        labels=labels, raw_mean=raw_mean, bg_median=bg_median, pre_mean=pre_mean, ink_mean=ink_mean, frame_max=frame_max
    ).items()}


def _separability(labels: np.ndarray, score: np.ndarray) -> float:
    """ROC AUC of the better direction: 0.5 = no signal, 1.0 = perfect separation."""
    auc = roc_auc_score(labels, score)
    return max(auc, 1 - auc)


def test_cedar_raw_mean_separates_genuine_from_forged(cedar_stats):
    # the bias the preprocessing must remove: the paper alone tells genuine from forged
    assert _separability(cedar_stats["labels"], cedar_stats["raw_mean"]) > 0.9


def test_cedar_background_is_exactly_zero_for_genuine_and_forged(cedar_stats):
    labels = cedar_stats["labels"]
    assert (cedar_stats["frame_max"] == 0).all()
    assert (cedar_stats["bg_median"] == 0).all()
    assert set(labels) == {0, 1}
    # a classifier on background statistics has nothing left to use
    assert roc_auc_score(labels, cedar_stats["bg_median"]) == 0.5


def test_cedar_preprocessed_means_no_longer_separate(cedar_stats):
    # measured on these 11 writers: ~0.56 for the whole-image mean and ~0.61 for the mean ink value
    assert _separability(cedar_stats["labels"], cedar_stats["pre_mean"]) < 0.75
    assert _separability(cedar_stats["labels"], cedar_stats["ink_mean"]) < 0.75


def test_gpds_images_preprocess(gpds_root: Path):
    paths = sorted((gpds_root / "train" / "1" / "genuine").glob("*.jpg"))[:3] + sorted(
        (gpds_root / "test" / "1" / "forge").glob("*.jpg")
    )[:3]
    assert len(paths) == 6
    for p in paths:
        assert_valid(preprocess(p))
