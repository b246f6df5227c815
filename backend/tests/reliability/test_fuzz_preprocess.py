"""Property-based fuzzing of sigml's `preprocess` beyond backend/tests/sigml/test_preprocessing.py
(which feeds random bytes behind magic prefixes and random uint8 arrays): here random small images
of every mode are *encoded* in every accepted format, valid files are mutated byte by byte, image
headers claim random dimensions, and float images carry NaN/inf pixels. Each input gives a finite
1x150x220 tensor in [0, 1] or raises an ImageError; nothing else escapes."""

from __future__ import annotations

import io
import time

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from PIL import Image

from hostile_inputs import gif_with_header, png_with_header, tiff_with_header
from sigml.errors import ImageError, ImageTooLargeError
from sigml.preprocessing import DEFAULT_CONFIG, preprocess
from sigml.testing import image_bytes, signature_image

H, W = DEFAULT_CONFIG.canvas_height, DEFAULT_CONFIG.canvas_width
def fuzz(max_examples: int) -> settings:
    return settings(max_examples=max_examples, deadline=None, derandomize=True, database=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])

FORMATS = {"PNG": {}, "JPEG": {"quality": 75}, "TIFF": {}, "BMP": {}, "GIF": {}, "WEBP": {"lossless": True}}
# the modes each format can store (PIL converts nothing silently here)
MODES = {"PNG": ["L", "LA", "RGB", "RGBA", "P", "1", "I;16"], "JPEG": ["L", "RGB", "CMYK"],
         "TIFF": ["L", "LA", "RGB", "RGBA", "P", "1", "I;16", "F", "CMYK"], "BMP": ["L", "RGB", "P", "1"],
         "GIF": ["L", "P"], "WEBP": ["RGB", "RGBA"]}


def check(out: torch.Tensor) -> None:
    assert out.shape == (1, H, W) and out.dtype == torch.float32
    assert torch.isfinite(out).all()
    assert float(out.min()) == 0.0 and float(out.max()) <= 1.0


def outcome(data) -> str:
    try:
        check(preprocess(data))
        return "ok"
    except ImageError as exc:
        return type(exc).__name__


@st.composite
def encoded_images(draw):
    fmt = draw(st.sampled_from(sorted(FORMATS)))
    mode = draw(st.sampled_from(MODES[fmt]))
    h, w = draw(st.integers(1, 48)), draw(st.integers(1, 48))
    pixels = draw(arrays(np.uint8, (h, w), elements=st.integers(0, 255)))
    image = Image.fromarray(pixels)
    if mode == "I;16":
        image = Image.fromarray(pixels.astype(np.uint16) * 257)
    elif mode == "F":
        image = Image.fromarray(pixels.astype(np.float32) / 255.0)
    else:
        image = image.convert(mode)
    return image_bytes(image, fmt, **FORMATS[fmt])


@fuzz(120)
@given(encoded_images())
def test_random_small_images_in_every_format_and_mode(data):
    outcome(data)


def _valid_files() -> list[bytes]:
    sig = signature_image(5, size=(120, 48))
    return [image_bytes(sig if fmt not in ("WEBP",) else sig.convert("RGB"), fmt, **FORMATS[fmt]) for fmt in FORMATS]


VALID = _valid_files()


@fuzz(150)
@given(st.sampled_from(range(len(VALID))),
       st.lists(st.tuples(st.floats(0, 1, exclude_max=True), st.integers(0, 255), st.sampled_from(["set", "insert", "delete"])),
                min_size=1, max_size=8))
def test_mutated_valid_files(index, edits):
    data = bytearray(VALID[index])
    for where, value, how in edits:
        i = int(where * len(data))
        if how == "set":
            data[i] = value
        elif how == "insert":
            data[i:i] = bytes([value])
        elif len(data) > 1:
            del data[i]
    outcome(bytes(data))


@fuzz(60)
@given(st.sampled_from([png_with_header, gif_with_header, tiff_with_header]),
       st.integers(0, 70_000), st.integers(0, 70_000))
def test_headers_claiming_any_dimensions_are_refused_fast(make, width, height):
    if make is gif_with_header:
        width, height = min(width, 65_535), min(height, 65_535)
    started = time.perf_counter()
    result = outcome(make(width, height))
    assert time.perf_counter() - started < 2.0  # never decodes the claimed pixels
    if width * height > DEFAULT_CONFIG.max_pixels:
        assert result == ImageTooLargeError.__name__


@fuzz(40)
@given(st.lists(st.tuples(st.integers(0, 119), st.integers(0, 299), st.sampled_from([np.nan, np.inf, -np.inf])),
                min_size=1, max_size=30))
def test_non_finite_pixels_of_float_images_are_paper(bad_pixels):
    """A float TIFF with NaN/inf pixels on its paper gives the tensor of the clean image (these pixels
    once turned the whole image blank, or, with one inf pixel, into a solid block of 'ink')."""
    clean = np.asarray(signature_image(9, size=(300, 120)), dtype=np.float32) / 255.0
    dirty = clean.copy()
    for y, x, value in bad_pixels:
        if clean[y, x] > 0.5:  # on paper: the signature itself is unchanged
            dirty[y, x] = value
    expected = preprocess(image_bytes(Image.fromarray(clean), "TIFF"))
    got = preprocess(image_bytes(Image.fromarray(dirty), "TIFF"))
    assert torch.allclose(got, expected, atol=1e-5)


@pytest.mark.parametrize("value", [np.nan, np.inf, -np.inf])
def test_a_float_image_that_is_all_non_finite_is_blank(value):
    with pytest.raises(ImageError):
        preprocess(image_bytes(Image.fromarray(np.full((40, 60), value, dtype=np.float32)), "TIFF"))
