"""Helpers of the API tests: synthetic images, uploads, the one error shape."""

from __future__ import annotations

import struct
import zlib

from django.core.files.uploadedfile import SimpleUploadedFile
from PIL import Image

from sigml.testing import image_bytes, signature_image


SYNTH_SPLITS = {"1": "train", "2": "train", "3": "validation", "4": "test", "5": "test"}  # of the SYNTH dataset


# --- images -----------------------------------------------------------------------------------------

def png(seed: int = 0, size: tuple[int, int] = (300, 120)) -> bytes:
    return image_bytes(signature_image(seed, size=size), "PNG")


def upload(data: bytes, name: str = "signature.png", content_type: str = "image/png") -> SimpleUploadedFile:
    return SimpleUploadedFile(name, data, content_type=content_type)


def blank_png() -> bytes:
    return image_bytes(Image.new("L", (200, 100), 255), "PNG")


def bomb_png(width: int = 50_000, height: int = 50_000) -> bytes:
    """A tiny PNG whose header claims width x height pixels (a decompression bomb), built by hand."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\x00" * 64)) + chunk(b"IEND", b"")


def error_of(response) -> dict:
    """The `error` object of a JSON error response (asserting the one error shape)."""
    body = response.json()
    assert set(body) == {"error"}, body
    assert set(body["error"]) == {"code", "message", "details"}, body
    assert isinstance(body["error"]["message"], str) and body["error"]["message"]
    return body["error"]


# the endpoints that take an uploaded signature, and the field each names in its errors
UPLOAD_ENDPOINTS = ("verify", "references", "profile-verify")
UPLOAD_FIELD = {"verify": "questioned", "references": "image", "profile-verify": "questioned"}


def upload_send(endpoint: str, api, profile_id: int, upload: SimpleUploadedFile):
    """POST `upload` to one of UPLOAD_ENDPOINTS (/api/verify/ with a good reference beside it)."""
    if endpoint == "verify":
        reference = SimpleUploadedFile("ref.png", png(1), "image/png")
        return api.post("/api/verify/", {"reference": reference, "questioned": upload}, format="multipart")
    if endpoint == "references":
        return api.post(f"/api/profiles/{profile_id}/references/", {"image": upload}, format="multipart")
    return api.post(f"/api/profiles/{profile_id}/verify/", {"questioned": upload}, format="multipart")


def close_response(response) -> None:
    """Close a test client's response as the WSGI server would (a streamed CSV export gives its slot back), without
    the request_finished signal closing the database connection the test's transaction runs on (PostgreSQL)."""
    from django.core.signals import request_finished
    from django.db import close_old_connections

    request_finished.disconnect(close_old_connections)
    try:
        response.close()
    finally:
        request_finished.connect(close_old_connections)


def letter_page(signature_seed: int = 9) -> bytes:
    """A handwritten letter: many lines of joined-up writing, a signature at the bottom (450..750, 950..1070)."""
    from PIL import ImageDraw
    import numpy as np

    page = Image.new("L", (850, 1100), 245)
    draw = ImageDraw.Draw(page)
    for i in range(12):
        xs = np.arange(60, 790, 4)
        draw.line(list(zip(xs.tolist(), (60 + 70 * i + 8 * np.sin(xs / 9.0)).tolist())), fill=20, width=3)
    page.paste(signature_image(signature_seed, size=(300, 120), paper=245), (450, 950))
    return image_bytes(page)
