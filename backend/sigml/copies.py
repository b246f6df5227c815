"""Copy detection: a questioned signature that is the reference itself (or a near-identical copy of it).

A genuine hand never repeats exactly: two genuine signatures of one writer always differ by more than re-encoding,
rescaling or re-scanning one image does. A questioned image that is byte-identical (sha256) to a reference, or
whose embedding lies closer to it than `copy_threshold`, is flagged `identical_to_reference` (a photocopy, a scan
of the same sheet, or a replayed image) and is never answered genuine.

The embedding is made to forget how an image was taken, so near copies are also compared as pictures: the
`fingerprint` of what the model sees (its input averaged over 4x4 cells), whose `pixel_difference` is small for a
re-encoded or rescaled copy and large for two signatures written twice. Both thresholds belong to the model card
(`copy_threshold`, `copy_pixel_threshold`): `fit_copy_threshold` sets each from real genuine pairs of writers never
seen in training (half the 0.1% quantile of such pairs: only pictures filed twice in a dataset fall below), and
`bench/copy_threshold.py` measures them and how many made-up copies (`near_copies`) they catch. A card without them
flags byte-identical images and embedding distances of (numerically) zero only.
"""

from __future__ import annotations

import io
from typing import Callable

import numpy as np
from PIL import Image, ImageEnhance, ImageFilter

COPY_FLAG = "identical_to_reference"
ZERO_DISTANCE = 1e-4  # the same pixels embed to the same point up to bf16 rounding
GENUINE_MARGIN = 0.5  # the threshold is this fraction of the closest genuine pair measured


def _jpeg(image: Image.Image, quality: int) -> Image.Image:
    buf = io.BytesIO()
    image.convert("L").save(buf, format="JPEG", quality=quality)
    return Image.open(io.BytesIO(buf.getvalue())).convert("L")


def _rescale(image: Image.Image, factor: float) -> Image.Image:
    return image.resize((max(1, round(image.width * factor)), max(1, round(image.height * factor))), Image.BILINEAR)


def _rescan(image: Image.Image) -> Image.Image:
    """A second scan of the same sheet: a little rotation, blur, contrast and brightness change, sensor noise."""
    grey = image.convert("L").rotate(1.5, resample=Image.BILINEAR, expand=True, fillcolor=255)
    grey = ImageEnhance.Contrast(grey.filter(ImageFilter.GaussianBlur(0.6))).enhance(0.85)
    grey = ImageEnhance.Brightness(grey).enhance(1.05)
    noise = np.random.default_rng(0).normal(0, 6, (grey.height, grey.width))
    return Image.fromarray(np.clip(np.asarray(grey, dtype=np.float64) + noise, 0, 255).astype(np.uint8))


NEAR_COPIES: dict[str, Callable[[Image.Image], Image.Image]] = {
    "jpeg_q60": lambda im: _jpeg(im, 60),
    "rescaled_0.7": lambda im: _rescale(im, 0.7),
    "rescaled_1.5_jpeg_q85": lambda im: _jpeg(_rescale(im, 1.5), 85),
    "rescanned": _rescan,
}


def near_copies(image: Image.Image) -> dict[str, Image.Image]:
    """Made-up copies of one signature image, as a photocopy, a re-encoding or a second scan would make them."""
    return {name: make(image) for name, make in NEAR_COPIES.items()}


FINGERPRINT_POOL = 4  # the model's input averaged over 4x4 cells: re-encoding and rescaling wash out, strokes stay


def fingerprint(preprocessed: np.ndarray) -> np.ndarray:
    """A small picture of what the model sees (the preprocessed 1 x H x W or H x W image, ink bright, paper 0)."""
    a = np.asarray(preprocessed, dtype=np.float32)
    a = a.reshape(a.shape[-2], a.shape[-1])
    h, w = (a.shape[0] // FINGERPRINT_POOL) * FINGERPRINT_POOL, (a.shape[1] // FINGERPRINT_POOL) * FINGERPRINT_POOL
    return a[:h, :w].reshape(h // FINGERPRINT_POOL, FINGERPRINT_POOL, w // FINGERPRINT_POOL, FINGERPRINT_POOL).mean(axis=(1, 3))


def pixel_difference(a: np.ndarray, b: np.ndarray) -> float:
    """Mean absolute difference of two fingerprints relative to their mean ink: 0 for the same picture, about 1 or
    more for two signatures written twice (different strokes land on different cells)."""
    ink = float((a.mean() + b.mean()) / 2)
    return float(np.abs(a - b).mean() / max(ink, 1e-6))


GENUINE_QUANTILE = 0.001  # datasets hold a few images filed twice (BHSig260-Hindi): they must not set the limit


def fit_copy_threshold(genuine: np.ndarray, quantile: float = GENUINE_QUANTILE) -> float:
    """`GENUINE_MARGIN` times the `quantile` of the differences between two genuine signatures of one writer
    (embedding distances or pixel differences): half of how close two signatures written twice come, leaving out
    the closest 0.1%, which in the datasets are the same picture filed twice (a copy, rightly flagged)."""
    values = np.asarray(genuine, dtype=np.float64)
    if values.size == 0:
        raise ValueError("no genuine pair to measure")
    return float(GENUINE_MARGIN * np.quantile(values, quantile))


def is_copy(distance: float, *, same_bytes: bool = False, threshold: float | None = None,
            pixels: float | None = None, pixel_threshold: float | None = None) -> bool:
    """The one rule: byte-identical, closer in the embedding than the card's `copy_threshold` (zero distance without
    one), or a fingerprint `pixel_difference` at most the card's `copy_pixel_threshold`."""
    if same_bytes or distance <= max(ZERO_DISTANCE, threshold or 0.0):
        return True
    return pixels is not None and pixel_threshold is not None and pixels <= pixel_threshold
