"""Made-up pages for the interface tests of the quality gate (no sigml: the interface never imports it)."""

from __future__ import annotations

import io
import math

from PIL import Image, ImageDraw


def letter_page_png() -> bytes:
    """A handwritten letter: twelve lines of joined-up writing on a page."""
    page = Image.new("L", (850, 1100), 245)
    draw = ImageDraw.Draw(page)
    for i in range(12):
        points = [(x, 60 + 70 * i + 8 * math.sin(x / 9.0)) for x in range(60, 790, 4)]
        draw.line(points, fill=20, width=3)
    buf = io.BytesIO()
    page.save(buf, format="PNG")
    return buf.getvalue()
