"""Uploaded images: size limits, an allowlist of formats, preprocessing errors tied to their field.

Every upload costs a bounded amount of CPU, memory and time before anything decodes it:
- bytes: SIGVER_MAX_UPLOAD_BYTES per file;
- header: one of ALLOWED_FORMATS, at most SIGVER_MAX_IMAGE_PIXELS pixels (and the model card's limit
  if lower), an aspect ratio of at most SIGVER_MAX_ASPECT_RATIO : 1;
- decoding: with exactly the format that was accepted (`formats=[fmt]`), the first page only, JPEGs
  with at most sigml.preprocessing.MAX_JPEG_SCANS scans;
- memory: decodes in one process share a budget of SIGVER_DECODE_BUDGET_PIXELS pixels (about 11-20
  bytes each at the peak of preprocessing); a request waits at most SIGVER_DECODE_WAIT_SECONDS for its
  share, else `server_busy` (503 with Retry-After); memory freed by large decodes is handed back;
- time: no image is decoded once the request's deadline (config.middleware) has passed: `server_busy`.

Each upload is read and checked once (`upload_read`) and decoded once (`image_preprocess`); refusals are
`config.errors.ImageRejected` naming the `sigml.errors` class that says why, which config.exceptions maps to
the status (413, 415, 422, 400).
"""

from __future__ import annotations

import base64
import ctypes
import ctypes.util
import dataclasses
import hashlib
import io
import logging
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Iterator

from django.conf import settings
from django.core.files.uploadedfile import UploadedFile
from PIL import Image, UnidentifiedImageError

from config.errors import ImageRejected, PayloadTooLarge, Unavailable
from config.middleware import request_deadline
from sigml.errors import ImageError, ImageTooLargeError, NotASignatureError, UnreadableImageError
from sigml.inference import PreprocessedImage, Verifier
from sigml.preprocessing import CropBox, preprocess_checked

log = logging.getLogger(__name__)

# Formats PIL may decode for the API; everything else (EPS through Ghostscript, PSD, ...) is refused.
ALLOWED_FORMATS = ("PNG", "JPEG", "TIFF", "BMP", "GIF", "WEBP", "PPM")
EXTENSIONS = {"PNG": "png", "JPEG": "jpg", "TIFF": "tif", "BMP": "bmp", "GIF": "gif", "WEBP": "webp", "PPM": "pnm"}
CONTENT_TYPES = {
    "PNG": "image/png", "JPEG": "image/jpeg", "TIFF": "image/tiff", "BMP": "image/bmp", "GIF": "image/gif",
    "WEBP": "image/webp", "PPM": "image/x-portable-anymap",
}


@dataclass(frozen=True)
class UploadedImage:
    field: str
    data: bytes
    format: str
    width: int
    height: int
    warnings: list = dataclasses.field(default_factory=list, compare=False)  # the quality gate's, once preprocessed

    @property
    def extension(self) -> str:
        return EXTENSIONS[self.format]

    @property
    def content_type(self) -> str:
        return CONTENT_TYPES[self.format]

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.data).hexdigest()


def max_pixels_for(verifier: Verifier) -> int:
    """The serving pixel limit: SIGVER_MAX_IMAGE_PIXELS, or the model card's limit if that is lower."""
    return min(int(settings.SIGVER_MAX_IMAGE_PIXELS), int(verifier.card.preprocessing.max_pixels))


def upload_read(*, upload: UploadedFile, field: str, max_pixels: int) -> UploadedImage:
    """The bytes of an uploaded image after the size, format and pixel-count checks (no decoding yet)."""
    limit = settings.SIGVER_MAX_UPLOAD_BYTES
    if upload.size is not None and upload.size > limit:
        raise PayloadTooLarge(f"{field}: the file is {upload.size} bytes; at most {limit} bytes are accepted.",
                              details={"field": field, "limit_bytes": limit})
    upload.seek(0)
    data = upload.read(limit + 1)
    if len(data) > limit:  # size was not reported truthfully
        raise PayloadTooLarge(f"{field}: the file is larger than {limit} bytes.",
                              details={"field": field, "limit_bytes": limit})
    if not data:
        raise ImageRejected(f"{field}: the file is empty (zero bytes).", kind=UnreadableImageError,
                            details={"field": field})
    try:
        with Image.open(io.BytesIO(data), formats=ALLOWED_FORMATS) as image:
            fmt, (width, height) = image.format, image.size
    except Image.DecompressionBombError:
        raise ImageRejected(f"{field}: the image has far too many pixels.", kind=ImageTooLargeError,
                            details={"field": field, "max_pixels": max_pixels}) from None
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError, EOFError):
        raise ImageRejected(
            f"{field}: not an image, or not one of the accepted formats (PNG, JPEG, TIFF, BMP, GIF, WebP, PNM).",
            kind=UnreadableImageError, details={"field": field},
        ) from None
    if fmt == "MPO":  # a phone's multi-picture JPEG: a JPEG whose first picture is the photo (decoded as such)
        fmt = "JPEG"
    if fmt not in EXTENSIONS or width <= 0 or height <= 0:
        raise ImageRejected(f"{field}: not a usable image.", kind=UnreadableImageError, details={"field": field})
    if width * height > max_pixels:
        raise ImageRejected(
            f"{field}: the image is {width}x{height} pixels; at most {max_pixels} pixels are accepted.",
            kind=ImageTooLargeError, details={"field": field, "max_pixels": max_pixels},
        )
    max_ratio = float(settings.SIGVER_MAX_ASPECT_RATIO)
    if max(width, height) > max_ratio * min(width, height):
        raise ImageRejected(
            f"{field}: the image is {width}x{height} pixels; a signature is at most {max_ratio:g} times wider "
            "than high (or higher than wide).",
            kind=ImageTooLargeError, details={"field": field, "max_aspect_ratio": max_ratio},
        )
    return UploadedImage(field=field, data=data, format=fmt, width=width, height=height)


class DecodeBudget:
    """A process-wide budget of pixels being decoded at once (a counting semaphore weighted by pixels).

    Bounds a worker's memory whatever its thread count: four threads decoding the largest accepted
    image at once would need four times the memory of one."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._in_use = 0

    @property
    def in_use(self) -> int:
        return self._in_use

    @contextmanager
    def reserve(self, pixels: int, *, budget: int, timeout: float) -> Iterator[None]:
        share = max(1, min(pixels, budget))
        with self._cond:
            if not self._cond.wait_for(lambda: self._in_use + share <= budget, timeout=timeout):
                raise Unavailable("The server is busy decoding other large images; try again shortly.",
                                  retry_after=RETRY_AFTER_S)
            self._in_use += share
        try:
            yield
        finally:
            with self._cond:
                self._in_use -= share
                self._cond.notify_all()


DECODE_BUDGET = DecodeBudget()
RETRY_AFTER_S = 5  # what a busy answer asks the client to wait
_LIBC = ctypes.CDLL(ctypes.util.find_library("c") or None)
_MALLOC_TRIM = getattr(_LIBC, "malloc_trim", None)  # glibc only


def memory_release() -> None:
    """Hand memory that malloc keeps after large frees back to the system (glibc's malloc_trim), so a
    worker does not stay at its peak after decoding a large image."""
    if _MALLOC_TRIM is not None:
        _MALLOC_TRIM(0)


def image_preprocess(*, verifier: Verifier, image: UploadedImage, crop: CropBox | None = None) -> PreprocessedImage:
    """The model's input tensor; a blank, truncated or unreadable image raises an error naming the field.

    Decoded with exactly the accepted format and the serving pixel limit, within the decode budget, cropped to
    `crop` when given, and past the quality gate (`sigml.quality`: 422 `not_a_signature`; its warnings are
    appended to `image.warnings`)."""
    cfg = dataclasses.replace(verifier.card.preprocessing, max_pixels=max_pixels_for(verifier))
    pixels = image.width * image.height
    wait = float(settings.SIGVER_DECODE_WAIT_SECONDS)
    deadline = request_deadline()
    if deadline is not None:
        left = deadline - time.monotonic()
        if left <= 0:
            raise Unavailable(
                f"{image.field}: the request took longer than {settings.SIGVER_REQUEST_DEADLINE_SECONDS} s; "
                "send fewer or smaller images.", details={"field": image.field}, retry_after=RETRY_AFTER_S,
            )
        wait = min(wait, left)
    try:
        with DECODE_BUDGET.reserve(pixels, budget=int(settings.SIGVER_DECODE_BUDGET_PIXELS), timeout=wait):
            try:
                tensor, problems = preprocess_checked(image.data, cfg, formats=(image.format,), crop=crop,
                                                      array=True)
                image.warnings.extend({"field": image.field, **p} for p in problems)
                return tensor
            finally:
                if pixels >= LARGE_DECODE_PIXELS:
                    memory_release()
    except ImageError as exc:
        details: dict = {"field": image.field}
        if isinstance(exc, NotASignatureError):
            details["problems"] = exc.problems
        raise ImageRejected(f"{image.field}: {exc}", kind=type(exc), details=details) from exc


LARGE_DECODE_PIXELS = 2_000_000  # after decoding an image this large, memory is handed back (malloc_trim)


def uploads_preprocess(*, verifier: Verifier, uploads: list[tuple[str, UploadedFile]],
                       crops: dict[str, CropBox] | None = None) -> tuple[list[UploadedImage], list[PreprocessedImage]]:
    """Every upload read and preprocessed; `crops` maps a field name to the box to crop it to."""
    max_pixels = max_pixels_for(verifier)
    images = [upload_read(upload=upload, field=field, max_pixels=max_pixels) for field, upload in uploads]
    return images, [image_preprocess(verifier=verifier, image=image, crop=(crops or {}).get(image.field))
                    for image in images]


def upload_warnings(images: list[UploadedImage]) -> list[dict]:
    """The quality gate's warnings of every upload, for the answer (`warnings`)."""
    return [w for image in images for w in image.warnings]


def png_data_uri(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")
