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


SIGNED_LETTER_BOX = (450, 950, 750, 1070)  # where signed_letter_png() pastes its signature


def signed_letter_png(seed: int = 9) -> bytes:
    """The letter above with a signature at the bottom (SIGNED_LETTER_BOX): three smooth strokes drawn as the
    backend's tests draw theirs (`sigml.testing.signature_image`, which the interface may not import), a page the
    server refuses and on which its locator finds the signature."""
    import numpy as np

    page = Image.open(io.BytesIO(letter_page_png())).convert("L")
    rng = np.random.default_rng(seed)
    w, h = SIGNED_LETTER_BOX[2] - SIGNED_LETTER_BOX[0], SIGNED_LETTER_BOX[3] - SIGNED_LETTER_BOX[1]
    signature = Image.new("L", (w, h), 245)
    draw = ImageDraw.Draw(signature)
    for _ in range(3):
        xs = np.sort(rng.uniform(0.1 * w, 0.9 * w, 8))
        ys = rng.uniform(0.25 * h, 0.75 * h, 8)
        draw.line(list(zip(xs.tolist(), ys.tolist())), fill=30, width=max(2, h // 40), joint="curve")
    page.paste(signature, SIGNED_LETTER_BOX[:2])
    buf = io.BytesIO()
    page.save(buf, format="PNG")
    return buf.getvalue()
