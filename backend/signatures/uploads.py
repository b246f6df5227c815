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
- time: no image is decoded once the request's deadline (set by config.middleware, passed in by the view) has
  passed: `server_busy`.

Each upload is read, checked and hashed once into an `UploadedImage` (`upload_read`, called by the view) and
decoded once (`image_preprocess`, by the service); the checks of the header and the decoding are the ML core's
(`sigml.preprocessing.read_header`, `load_image`). A refusal is translated once (`ImageRejected.of`) into
`config.errors.ImageRejected`, naming the field and the `sigml.errors` class that says why, whose status
config.exceptions' one table gives (413, 415, 422, 400).
"""

from __future__ import annotations

import base64
import ctypes
import ctypes.util
import dataclasses
import hashlib
import logging
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Iterator

from django.conf import settings
from django.core.files.uploadedfile import UploadedFile

from config.errors import ImageRejected, ServerBusy, UploadTooLarge
from sigml.errors import ImageError, NotASignatureError, UnreadableImageError
from sigml.inference import PreprocessedImage, Verifier
from sigml.locate import CUT_FROM_A_PAGE, LocatedSignature, locate, preprocess_located
from sigml.preprocessing import CropBox, read_header, to_png

from .model_loader import locator_get

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
    """An uploaded image, read once (`upload_read`): its bytes, the name the client gave it, the format its
    header was accepted as, its size and its sha256, computed here once. It travels from the view through the
    services to the case record; nothing reads the request's file or hashes the bytes again."""

    field: str
    data: bytes = dataclasses.field(repr=False)
    format: str
    width: int
    height: int
    name: str = ""
    sha256: str = dataclasses.field(init=False)
    warnings: list = dataclasses.field(default_factory=list, compare=False)  # the quality gate's, once preprocessed
    # the located signature judged instead of a refused page (`auto_crop`): its box and confidence, once preprocessed
    auto_crop: dict = dataclasses.field(default_factory=dict, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "sha256", hashlib.sha256(self.data).hexdigest())

    @property
    def extension(self) -> str:
        return EXTENSIONS[self.format]

    @property
    def content_type(self) -> str:
        return CONTENT_TYPES[self.format]


def max_pixels_for(verifier: Verifier) -> int:
    """The serving pixel limit: SIGVER_MAX_IMAGE_PIXELS, or the model card's limit if that is lower."""
    return min(int(settings.SIGVER_MAX_IMAGE_PIXELS), int(verifier.card.preprocessing.max_pixels))


def client_file_name(upload: UploadedFile) -> str:
    """The file name the client sent, without any folder, at most 200 characters (a label, never a path)."""
    name = str(getattr(upload, "name", "") or "").replace("\\", "/").rsplit("/", 1)[-1]
    return "".join(c for c in name if c.isprintable())[:200]


def upload_read(*, upload: UploadedFile, field: str) -> UploadedImage:
    """The bytes of an uploaded image after the size check and the header's checks
    (`sigml.preprocessing.read_header`: an allowed format, SIGVER_MAX_IMAGE_PIXELS, SIGVER_MAX_ASPECT_RATIO, the
    JPEG scan count); nothing is decoded yet. The model card's own pixel limit, if lower, is applied at decoding."""
    limit = settings.SIGVER_MAX_UPLOAD_BYTES
    if upload.size is not None and upload.size > limit:
        raise UploadTooLarge(f"{field}: the file is {upload.size} bytes; at most {limit} bytes are accepted.",
                             details={"field": field, "limit_bytes": limit})
    upload.seek(0)
    data = upload.read(limit + 1)
    if len(data) > limit:  # size was not reported truthfully
        raise UploadTooLarge(f"{field}: the file is larger than {limit} bytes.",
                             details={"field": field, "limit_bytes": limit})
    try:
        header = read_header(data, int(settings.SIGVER_MAX_IMAGE_PIXELS), formats=ALLOWED_FORMATS,
                             max_aspect_ratio=float(settings.SIGVER_MAX_ASPECT_RATIO))
    except ImageError as exc:
        raise ImageRejected.of(exc, field=field) from exc
    if header.format not in EXTENSIONS:
        raise ImageRejected(f"{field}: not a usable image.", kind=UnreadableImageError, details={"field": field})
    return UploadedImage(field=field, data=data, format=header.format, width=header.width, height=header.height,
                         name=client_file_name(upload))


def uploads_read(uploads: list[tuple[str, UploadedFile]]) -> list[UploadedImage]:
    """`upload_read` of each (field, file) of a request, in order."""
    return [upload_read(upload=upload, field=field) for field, upload in uploads]


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
                raise ServerBusy("The server is busy decoding other large images; try again shortly.",
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


@contextmanager
def decoding(image: UploadedImage, deadline: float | None = None) -> Iterator[None]:
    """Where an upload is decoded: not after the request's `deadline` (time.monotonic(); a 503), within the decode
    budget (waiting at most SIGVER_DECODE_WAIT_SECONDS for it), memory handed back after a large image, and an
    `ImageError` of the ML core translated once into the API's refusal naming the field."""
    pixels = image.width * image.height
    wait = float(settings.SIGVER_DECODE_WAIT_SECONDS)
    if deadline is not None:
        left = deadline - time.monotonic()
        if left <= 0:
            raise ServerBusy(
                f"{image.field}: the request took longer than {settings.SIGVER_REQUEST_DEADLINE_SECONDS} s; "
                "send fewer or smaller images.", details={"field": image.field}, retry_after=RETRY_AFTER_S,
            )
        wait = min(wait, left)
    try:
        with DECODE_BUDGET.reserve(pixels, budget=int(settings.SIGVER_DECODE_BUDGET_PIXELS), timeout=wait):
            try:
                yield
            finally:
                if pixels >= LARGE_DECODE_PIXELS:
                    memory_release()
    except ImageError as exc:
        raise ImageRejected.of(exc, field=image.field) from exc


def image_preprocess(*, verifier: Verifier, image: UploadedImage, crop: CropBox | None = None,
                     auto_crop: bool = False, deadline: float | None = None) -> PreprocessedImage:
    """The model's input tensor; a blank, truncated or unreadable image raises an error naming the field.

    Decoded with exactly the accepted format and the serving pixel limit (`decoding`), cropped to `crop` when given,
    and past the quality gate; a page is refused with `suggested_crops` or, with `auto_crop`, judged on its best
    located signature (`sigml.locate.preprocess_located`), kept in `image.auto_crop` for the answer. The gate's
    warnings are appended to `image.warnings`."""
    cfg = dataclasses.replace(verifier.card.preprocessing, max_pixels=max_pixels_for(verifier))
    with decoding(image, deadline):
        try:
            judged = preprocess_located(image.data, cfg, formats=(image.format,), crop=crop, auto_crop=auto_crop,
                                        array=True, model=locator_get())
        except NotASignatureError as exc:
            if "suggested_crops" in exc.details:
                exc.details["suggested_crops"] = [with_crop_value(d) for d in exc.details["suggested_crops"]]
            raise
    if judged.located is not None:
        image.auto_crop.update(located_dict(judged.located))
    image.warnings.extend({"field": image.field, **p} for p in judged.problems)
    return judged.image


def with_crop_value(located: dict) -> dict:
    """A located signature's dict (`box`, `confidence`) with the same box as a `crop` value for the endpoints."""
    return {**located, "crop": ",".join(str(v) for v in located["box"])}


def located_dict(found: LocatedSignature) -> dict:
    """A located signature as the API gives it: its box, the same box as a `crop` value, and its confidence."""
    return with_crop_value(found.to_dict())


def image_locate(*, verifier: Verifier, image: UploadedImage, deadline: float | None = None) -> list[dict]:
    """The handwritten signatures the locator finds on an uploaded page, best first (`decoding`)."""
    with decoding(image, deadline):
        found = locate(image.data, model=locator_get(), max_pixels=max_pixels_for(verifier))
    return [located_dict(f) for f in found]


LARGE_DECODE_PIXELS = 2_000_000  # after decoding an image this large, memory is handed back (malloc_trim)


def uploads_preprocess(*, verifier: Verifier, images: list[UploadedImage], crops: dict[str, CropBox] | None = None,
                       auto_crop: bool = False, deadline: float | None = None) -> list[PreprocessedImage]:
    """Every upload preprocessed; `crops` maps a field name to the box to crop it to; `auto_crop`: a page is judged on
    its best located signature (`image_preprocess`)."""
    return [image_preprocess(verifier=verifier, image=image, crop=(crops or {}).get(image.field), auto_crop=auto_crop,
                             deadline=deadline)
            for image in images]


def upload_auto_crops(images: list[UploadedImage], tensors: list[PreprocessedImage]) -> list[dict]:
    """For the answer (`auto_crops`): each upload judged on a located box instead of the page sent, with the box, its
    `crop` value, the locator's confidence and a thumbnail of what the model compared."""
    return [{"field": image.field, **image.auto_crop, "thumbnail": png_data_uri(to_png(tensor))}
            for image, tensor in zip(images, tensors) if image.auto_crop]


def used_crop(image: UploadedImage, crops: dict[str, CropBox] | None) -> CropBox | None:
    """The box an upload was judged on: the one sent, or the one `auto_crop` chose; None for the whole image."""
    given = (crops or {}).get(image.field)
    return given if given is not None else (tuple(image.auto_crop["box"]) if image.auto_crop else None)


def from_a_page(image: UploadedImage) -> bool:
    """Whether an upload, once preprocessed, was judged on a box cut from a page (given or located): its warnings
    hold `cut_from_a_page`, and its answer is never forged (`sigml.decision.on_a_page`)."""
    return any(w.get("code") == CUT_FROM_A_PAGE["code"] for w in image.warnings)


def upload_warnings(images: list[UploadedImage]) -> list[dict]:
    """The quality gate's warnings of every upload, for the answer (`warnings`)."""
    return [w for image in images for w in image.warnings]


def png_data_uri(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")
