"""A corpus of hostile and broken uploads, all made here (no file is committed), each with the
statuses the API may answer with: the documented 4xx error, or 200/201 where the input is a
legitimately valid image (16-bit TIFF, animated GIF, CMYK JPEG, ...)."""

from __future__ import annotations

import io
import struct
import zlib
from dataclasses import dataclass

import numpy as np
from PIL import Image

from sigml.testing import image_bytes, signature_image

OK = "ok"  # 200 for verify, 201 for references


@dataclass(frozen=True)
class Hostile:
    name: str
    data: bytes
    expect: tuple  # allowed statuses: ints, or OK
    filename: str = "upload.png"
    content_type: str = "image/png"
    code: str | None = None  # the expected error code, where exactly one is right


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def png_with_header(width: int, height: int, extra_chunks: bytes = b"", bit_depth: int = 8, color: int = 0) -> bytes:
    """A PNG whose IHDR claims width x height (a decompression bomb when large), with a tiny IDAT."""
    ihdr = struct.pack(">IIBBBBB", width, height, bit_depth, color, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", ihdr) + extra_chunks
            + _png_chunk(b"IDAT", zlib.compress(b"\x00" * 64)) + _png_chunk(b"IEND", b""))


def gif_with_header(width: int, height: int) -> bytes:
    return (b"GIF89a" + struct.pack("<HHBBB", width, height, 0, 0, 0)
            + b",\x00\x00\x00\x00" + struct.pack("<HH", width, height) + b"\x00\x02\x02D\x01\x00;")


def tiff_with_header(width: int, height: int) -> bytes:
    """A little-endian TIFF claiming width x height 8-bit gray pixels, with a few bytes of strip."""
    entries = [(256, 4, 1, width), (257, 4, 1, height), (258, 3, 1, 8), (259, 3, 1, 1), (262, 3, 1, 1),
               (273, 4, 1, 8 + 2 + 12 * 9 + 4), (277, 3, 1, 1), (278, 4, 1, height), (279, 4, 1, 16)]
    ifd = struct.pack("<H", len(entries)) + b"".join(
        struct.pack("<HHII", tag, typ, count, value) if typ == 4 else struct.pack("<HHIHH", tag, typ, count, value, 0)
        for tag, typ, count, value in entries) + struct.pack("<I", 0)
    return b"II*\x00" + struct.pack("<I", 8) + ifd + b"\x00" * 16


def jpeg_with_header(width: int, height: int) -> bytes:
    """A real small JPEG whose SOF0 frame header is patched to claim width x height."""
    data = bytearray(image_bytes(signature_image(3, size=(64, 32)), "JPEG"))
    sof = data.find(b"\xff\xc0")
    struct.pack_into(">HH", data, sof + 5, height, width)
    return bytes(data)


def _save(image: Image.Image, fmt: str, **kwargs) -> bytes:
    buf = io.BytesIO()
    image.save(buf, format=fmt, **kwargs)
    return buf.getvalue()


def corpus(max_upload_bytes: int) -> list[Hostile]:
    sig = signature_image(11, size=(300, 120))
    good_png = image_bytes(sig, "PNG")
    good_jpeg = image_bytes(sig.convert("RGB"), "JPEG", quality=90)
    gray16 = Image.fromarray((np.asarray(sig, dtype=np.uint16) * 257).astype(np.uint16))
    frames = [signature_image(20 + i, size=(300, 120)) for i in range(3)]
    nan_float = np.asarray(sig, dtype=np.float32) / 255.0
    nan_float[:5, :5] = np.nan
    inf_float = np.asarray(sig, dtype=np.float32) / 255.0
    inf_float[0, 0] = np.inf
    flipped = bytearray(good_jpeg)
    for i in range(len(flipped) // 3, len(flipped) // 3 + 40):
        flipped[i] ^= 0x5A
    bad_crc = bytearray(good_png)
    bad_crc[29] ^= 0xFF  # inside IHDR's CRC
    # over the size limit, yet a valid image: an uncompressed BMP just larger than the limit
    side = int(np.sqrt(max_upload_bytes / 3)) + 64
    huge = _save(Image.new("RGB", (side, side), (250, 250, 250)), "BMP")
    ztxt_bomb = _png_chunk(b"zTXt", b"Comment\x00\x00" + zlib.compress(b"\x00" * (64 * 1024 * 1024), 9))

    cases = [
        Hostile("text file", b"this is a note, not a signature\n" * 20, (415,), "notes.txt", "text/plain", "invalid_image"),
        Hostile("zero bytes", b"", (415,), code="invalid_image"),
        Hostile("one byte", b"\x89", (415,), code="invalid_image"),
        Hostile("PNG signature only", b"\x89PNG\r\n\x1a\n", (415,), code="invalid_image"),
        Hostile("truncated PNG (half)", good_png[: len(good_png) // 2], (415,), code="invalid_image"),
        Hostile("truncated PNG (header only)", good_png[:60], (415,), code="invalid_image"),
        Hostile("truncated JPEG (half)", good_jpeg[: len(good_jpeg) // 2], (415,), "a.jpg", "image/jpeg", "invalid_image"),
        Hostile("JPEG with flipped bytes", bytes(flipped), (OK, 400, 415), "a.jpg", "image/jpeg"),
        Hostile("PNG with a bad CRC", bytes(bad_crc), (415,), code="invalid_image"),
        Hostile("decompression bomb PNG 50000x50000", png_with_header(50_000, 50_000), (413,), code="image_too_large"),
        Hostile("decompression bomb PNG 1x2^31-1", png_with_header(1, 2**31 - 1), (413, 415)),
        Hostile("decompression bomb GIF 65535x65535", gif_with_header(65_535, 65_535), (413,), "a.gif", "image/gif", "image_too_large"),
        Hostile("decompression bomb TIFF 50000x50000", tiff_with_header(50_000, 50_000), (413,), "a.tif", "image/tiff", "image_too_large"),
        Hostile("decompression bomb JPEG 65000x65000", jpeg_with_header(65_000, 65_000), (413,), "a.jpg", "image/jpeg", "image_too_large"),
        Hostile("above the model card's pixel limit (8000x6000 header)", png_with_header(8000, 6000), (413,), code="image_too_large"),
        Hostile("zero-width PNG header", png_with_header(0, 100), (415,), code="invalid_image"),
        Hostile("zTXt chunk inflating to 64 MiB", png_with_header(300, 120, ztxt_bomb), (413, 415)),
        Hostile("huge valid BMP over the size limit", huge, (413,), "huge.bmp", "image/bmp", "file_too_large"),
        Hostile("animated GIF (first frame is used)", _save(frames[0], "GIF", save_all=True, append_images=frames[1:], duration=100, loop=0), (OK,), "a.gif", "image/gif"),
        Hostile("16-bit TIFF", _save(gray16, "TIFF"), (OK,), "a.tif", "image/tiff"),
        Hostile("16-bit PNG", _save(gray16, "PNG"), (OK,)),
        Hostile("multi-page TIFF", _save(frames[0], "TIFF", save_all=True, append_images=frames[1:]), (OK,), "a.tif", "image/tiff"),
        Hostile("CMYK JPEG", _save(sig.convert("CMYK"), "JPEG"), (OK,), "a.jpg", "image/jpeg"),
        Hostile("float TIFF with NaN pixels", _save(Image.fromarray(nan_float), "TIFF"), (OK,), "a.tif", "image/tiff"),
        Hostile("float TIFF with an infinite pixel", _save(Image.fromarray(inf_float), "TIFF"), (OK,), "a.tif", "image/tiff"),
        Hostile("1-bit PNG", _save(sig.point(lambda v: 255 if v > 128 else 0).convert("1"), "PNG"), (OK,)),
        Hostile("RGBA PNG, transparent paper", _save(sig.convert("RGBA"), "PNG"), (OK,)),
        Hostile("WebP", _save(sig, "WEBP", lossless=True), (OK,), "a.webp", "image/webp"),
        Hostile("blank white page", _save(Image.new("L", (300, 120), 255), "PNG"), (400,), code="blank_image"),
        Hostile("one pixel", _save(Image.new("L", (1, 1), 0), "PNG"), (400,), code="blank_image"),
        Hostile("SVG", b'<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>', (415,), "a.svg", "image/svg+xml", "invalid_image"),
        Hostile("HTML with script", b"<html><body><script>alert(document.cookie)</script></body></html>", (415,), "a.html", "text/html", "invalid_image"),
        Hostile("PDF", b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF", (415,), "a.pdf", "application/pdf", "invalid_image"),
        Hostile("EPS (would run Ghostscript)", b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 100 100\nshowpage\n", (415,), "a.eps", "application/postscript", "invalid_image"),
        Hostile("ICO (not an accepted format)", _save(sig.resize((64, 64)), "ICO"), (415,), "a.ico", "image/x-icon", "invalid_image"),
        Hostile("PHP payload named .php", b"<?php system($_GET['c']); ?>", (415,), "shell.php", "application/x-php", "invalid_image"),
        Hostile("valid PNG named shell.php", good_png, (OK,), "shell.php", "application/x-php"),
        Hostile("valid PNG with a path-traversal name", good_png, (OK,), "../../../../etc/cron.d/x.png"),
        Hostile("valid PNG with a unicode name", good_png, (OK,), "подпись ✍️ 署名.png"),
        Hostile("valid PNG with a 4000-character name", good_png, (OK,), "a" * 4000 + ".png"),
        Hostile("valid PNG sent as text/html", good_png, (OK,), "a.html", "text/html"),
        Hostile("valid JPEG named .png", good_jpeg, (OK,), "a.png", "image/png"),
    ]
    return cases


# --- inputs that cost: decoders (each made here, in memory) ------------------------------

def tiff_tag_patch(data: bytes, tag: int, value: int) -> bytes:
    """A little-endian TIFF with the SHORT `tag` of its first IFD set to `value`."""
    out = bytearray(data)
    ifd = struct.unpack_from("<I", out, 4)[0]
    (count,) = struct.unpack_from("<H", out, ifd)
    for k in range(count):
        pos = ifd + 2 + 12 * k
        if struct.unpack_from("<H", out, pos)[0] == tag:
            struct.pack_into("<H", out, pos + 8, value)
            return bytes(out)
    raise ValueError(f"tag {tag} not in the first IFD")


def tiff_gray_associated_alpha(image: Image.Image) -> bytes:
    """A TIFF of gray + associated (premultiplied) alpha, which Pillow opens as mode "La": ink opaque,
    paper transparent. ExtraSamples (tag 338) = 1 instead of the 2 (unassociated) Pillow writes."""
    gray = image.convert("L")
    la = Image.merge("LA", (gray, Image.eval(gray, lambda v: 255 - v)))
    return tiff_tag_patch(_save(la, "TIFF"), 338, 1)


def tiff_page_bomb(first: Image.Image, pages: int) -> bytes:
    """A TIFF whose first page is `first`, followed by `pages` chained 1x1 pages (about 110 bytes each):
    counting the pages walks every IFD, in time quadratic in their number with Pillow."""
    out = bytearray(_save(first.convert("L"), "TIFF"))
    ifd = struct.unpack_from("<I", out, 4)[0]
    next_pos = ifd + 2 + 12 * struct.unpack_from("<H", out, ifd)[0]
    for _ in range(pages):
        pixel = len(out)
        out += b"\xff\x00"
        entries = [(256, 3, 1, 1), (257, 3, 1, 1), (258, 3, 1, 8), (259, 3, 1, 1), (262, 3, 1, 1),
                   (273, 4, 1, pixel), (278, 3, 1, 1), (279, 4, 1, 1)]
        here = len(out)
        out += struct.pack("<H", len(entries)) + b"".join(
            struct.pack("<HHII", t, typ, n, v) if typ == 4 else struct.pack("<HHIHH", t, typ, n, v, 0)
            for t, typ, n, v in entries) + b"\x00\x00\x00\x00"
        struct.pack_into("<I", out, next_pos, here)
        next_pos = here + 2 + 12 * len(entries)
    return bytes(out)


def _jpeg_segments(data: bytes) -> list[tuple[int, int, int]]:
    """(marker, start, end) of a well-formed JPEG's segments, a scan's entropy-coded data included."""
    segments, i = [], 2
    while i < len(data):
        marker = data[i + 1]
        if marker == 0xD9:
            segments.append((marker, i, i + 2))
            break
        end = i + 2 + struct.unpack_from(">H", data, i + 2)[0]
        if marker == 0xDA:
            while not (data[end] == 0xFF and data[end + 1] != 0x00 and not 0xD0 <= data[end + 1] <= 0xD7):
                end += 1
        segments.append((marker, i, end))
        i = end
    return segments


def jpeg_scan_bomb(scans: int, size: tuple[int, int] = (2000, 1500)) -> bytes:
    """A progressive JPEG followed by `scans` empty refinement scans (14 bytes each): libjpeg decodes
    every scan over the whole image."""
    image = Image.new("L", size, 255)
    image.paste(0, (size[0] // 4, size[1] // 2 - 10, 3 * size[0] // 4, size[1] // 2 + 10))
    data = _save(image, "JPEG", progressive=True, quality=90)
    _, start, end = [s for s in _jpeg_segments(data) if s[0] == 0xDA][-1]
    header = data[start : start + 2 + struct.unpack_from(">H", data, start + 2)[0]]
    return data[:end] + (header + b"\x00\x00") * scans + b"\xff\xd9"


def webp_with_pcd_signature(image: Image.Image) -> bytes:
    """A valid lossless WebP with an extra RIFF chunk that puts Kodak PhotoCD's signature ("PCD_") at
    offset 2048: Pillow without a format list tries its PCD plugin before WebP and takes the file for one."""
    webp = _save(image, "WEBP", lossless=True)
    body = webp[12:]
    start = 12 + len(body) + 8
    assert start <= 2048, "the WebP must end before offset 2048"
    payload = b"\x00" * (2048 - start) + b"PCD_" + b"\x00" * 2100
    riff = b"WEBP" + body + b"JUNK" + struct.pack("<I", len(payload)) + payload
    return b"RIFF" + struct.pack("<I", len(riff)) + riff
