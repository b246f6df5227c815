"""Uploaded images: size limits, an allowlist of formats, preprocessing errors tied to their field."""

from __future__ import annotations

import base64
import hashlib
import io
from dataclasses import dataclass

import torch
from django.conf import settings
from django.core.files.uploadedfile import UploadedFile
from PIL import Image, UnidentifiedImageError

from config.exceptions import ApplicationError, image_error_status
from sigml.errors import ImageError
from sigml.inference import Verifier

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

    @property
    def extension(self) -> str:
        return EXTENSIONS[self.format]

    @property
    def content_type(self) -> str:
        return CONTENT_TYPES[self.format]

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.data).hexdigest()


def upload_read(*, upload: UploadedFile, field: str, max_pixels: int) -> UploadedImage:
    """The bytes of an uploaded image after the size, format and pixel-count checks (no decoding yet)."""
    limit = settings.SIGVER_MAX_UPLOAD_BYTES
    if upload.size is not None and upload.size > limit:
        raise ApplicationError(
            f"{field}: the file is {upload.size} bytes; at most {limit} bytes are accepted.",
            code="file_too_large", status_code=413, details={"field": field, "limit_bytes": limit},
        )
    upload.seek(0)
    data = upload.read(limit + 1)
    if len(data) > limit:  # size was not reported truthfully
        raise ApplicationError(
            f"{field}: the file is larger than {limit} bytes.",
            code="file_too_large", status_code=413, details={"field": field, "limit_bytes": limit},
        )
    if not data:
        raise ApplicationError(f"{field}: the file is empty (zero bytes).", code="invalid_image", status_code=415,
                               details={"field": field})
    try:
        with Image.open(io.BytesIO(data), formats=ALLOWED_FORMATS) as image:
            fmt, (width, height) = image.format, image.size
    except Image.DecompressionBombError:
        raise ApplicationError(f"{field}: the image has far too many pixels.", code="image_too_large",
                               status_code=413, details={"field": field, "max_pixels": max_pixels}) from None
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError, EOFError):
        raise ApplicationError(
            f"{field}: not an image, or not one of the accepted formats (PNG, JPEG, TIFF, BMP, GIF, WebP, PNM).",
            code="invalid_image", status_code=415, details={"field": field},
        ) from None
    if fmt not in EXTENSIONS or width <= 0 or height <= 0:
        raise ApplicationError(f"{field}: not a usable image.", code="invalid_image", status_code=415,
                               details={"field": field})
    if width * height > max_pixels:
        raise ApplicationError(
            f"{field}: the image is {width}x{height} pixels; at most {max_pixels} pixels are accepted.",
            code="image_too_large", status_code=413, details={"field": field, "max_pixels": max_pixels},
        )
    return UploadedImage(field=field, data=data, format=fmt, width=width, height=height)


def image_preprocess(*, verifier: Verifier, image: UploadedImage) -> torch.Tensor:
    """The model's input tensor; a blank, truncated or unreadable image raises an error naming the field."""
    try:
        return verifier.preprocess(image.data)
    except ImageError as exc:
        raise ApplicationError(f"{image.field}: {exc}", code=exc.code, status_code=image_error_status(exc),
                               details={"field": image.field}) from exc


def uploads_preprocess(*, verifier: Verifier, uploads: list[tuple[str, UploadedFile]]) -> tuple[list[UploadedImage], list[torch.Tensor]]:
    max_pixels = verifier.card.preprocessing.max_pixels
    images = [upload_read(upload=upload, field=field, max_pixels=max_pixels) for field, upload in uploads]
    return images, [image_preprocess(verifier=verifier, image=image) for image in images]


def png_data_uri(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")
