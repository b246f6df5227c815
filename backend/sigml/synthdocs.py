"""Synthetic documents with handwritten signatures on them, for training and measuring `sigml.locate`.

`make_page(seed, signatures, split=...)` draws a letter, a cheque or a form: printed text in several fonts and
sizes (Latin, Devanagari and Bengali scripts), headings, ruled lines, boxes and form fields, tables, logos,
barcodes, stamps, a cheque-like security background, then zero to three real signatures (scanned crops, their
paper removed, laid on the page in black or blue ink, usually on a signature line), and finally what a scanner
or a phone does to a page: small rotation and perspective, uneven lighting, blur, noise, JPEG. The page comes
back with the ground-truth box of every signature in its own pixel coordinates. Everything is drawn from
`numpy.random.default_rng(seed)`: the same seed and inputs give the same page.

`split` chooses the fonts and security backgrounds: "train" pages use DejaVu and Noto fonts and the
backgrounds in `BACKGROUNDS["train"]`; "test" pages use Liberation and FreeFont fonts and backgrounds never
seen in training, so a locator is measured on documents that differ from its training documents in more than
the signatures (which come from disjoint writers: `signature_pool`). Where a split's fonts are not installed
(Debian: fonts-dejavu-core fonts-noto-core fonts-liberation fonts-freefont-ttf), Pillow's built-in font is used.
"""

from __future__ import annotations

import io
import math
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Literal, Sequence

import numpy as np
from PIL import Image, ImageDraw, ImageFilter, ImageFont
from scipy import ndimage

from .preprocessing import ImageSource, load_image, otsu_threshold, to_grayscale

Split = Literal["train", "test"]
Box = tuple[int, int, int, int]  # left, top, right, bottom (right/bottom exclusive), page pixels

FONT_DIRS = ("/usr/share/fonts/truetype", "/usr/share/fonts/opentype")
# font files by split: file-name prefixes (a family is in one split only)
FONT_FAMILIES: dict[str, tuple[str, ...]] = {
    "train": ("DejaVuSans", "DejaVuSerif", "NotoSans-", "NotoSerif-", "NotoSansDisplay", "NotoSerifDisplay",
              "NotoSansMono", "NotoSansDevanagari", "NotoSerifDevanagari", "NotoSansBengali", "NotoSerifBengali"),
    "test": ("Liberation", "Free"),
}
BACKGROUNDS: dict[str, tuple[str, ...]] = {
    "train": ("plain", "guilloche", "tint", "dots"),
    "test": ("plain", "crosshatch", "rings", "microtext"),
}
# datasets whose crops were squashed to 256x256: widened back to a signature's usual shape before use
SQUASHED = {"CEDAR", "GPDS"}

WORDS = ("the of and to in is for on that with as by this be are from at or an it we our your will not have has "
         "payment account invoice date amount total balance customer order number agreement contract party "
         "services period terms conditions shall herein hereby signed witness company limited bank branch "
         "address street city road house floor please sincerely regards dear sir madam received thank you "
         "reference details above below following notice copy original issued valid until name title "
         "department office manager director approved authorised signature employee tenant landlord").split()
SCRIPTS = {"devanagari": (0x0905, 0x0939), "bengali": (0x0985, 0x09B9)}


# ---------------------------------------------------------------- inputs


@dataclass(frozen=True)
class SignatureSource:
    """One scanned signature crop; `widen`: the crop was squashed to a square and is widened back."""

    path: str
    widen: bool = False


def signature_pool(datasets_root: str | Path, splits_dir: str | Path, split: str,
                   datasets: Sequence[str] | None = None) -> list[SignatureSource]:
    """Every signature image (genuine and forged: both are handwriting) of the writers in `split`
    ("train", "validation", "test") of each dataset under `datasets_root` that has `<splits_dir>/<NAME>/splits.csv`."""
    from .datasets import read_dataset
    from .splits import read_splits_csv

    root, out = Path(datasets_root), []
    names = datasets or sorted(p.name for p in root.iterdir() if (Path(splits_dir) / p.name / "splits.csv").is_file())
    for name in names:
        assignment = read_splits_csv(Path(splits_dir) / name / "splits.csv")
        for record in read_dataset(root / name, "auto", name):
            if assignment.get(record.writer) == split:
                out.append(SignatureSource(str(root / name / record.path), widen=name in SQUASHED))
    return out


@lru_cache(maxsize=None)
def font_files(split: Split) -> tuple[str, ...]:
    """The installed font files of a split, sorted (empty: Pillow's built-in font stands in)."""
    found = []
    for directory in FONT_DIRS:
        for path in Path(directory).rglob("*.[ot]tf") if Path(directory).is_dir() else ():
            if path.name.startswith(FONT_FAMILIES[split]):
                found.append(str(path))
    return tuple(sorted(found))


# the Debian packages that hold FONT_FAMILIES (`make browser-deps` installs them as root)
FONT_PACKAGES = ("fonts-dejavu-core", "fonts-noto-core", "fonts-liberation", "fonts-freefont-ttf")
# one family per script / package that a split's pages need: without it the pages are not the documented ones
REQUIRED_FAMILIES: dict[str, tuple[str, ...]] = {
    "train": ("DejaVuSans", "NotoSans-", "NotoSansDevanagari", "NotoSansBengali"),
    "test": ("Liberation", "Free"),
}


def missing_font_families(split: Split) -> list[str]:
    """The font families a split's documents are drawn with that are not installed (empty: all there)."""
    names = [Path(f).name for f in font_files(split)]
    return [family for family in REQUIRED_FAMILIES[split] if not any(n.startswith(family) for n in names)]


def require_fonts(*splits: Split) -> None:
    """Stop (SystemExit, naming the packages) when a split's documents would be drawn without their fonts: Pillow's
    built-in font would stand in, and the pages (and every figure measured on them) would not be the documented ones."""
    missing = sorted({family for split in splits for family in missing_font_families(split)})
    if missing:
        raise SystemExit(f"fonts missing for synthetic documents: {', '.join(missing)}; install the Debian packages "
                         f"{' '.join(FONT_PACKAGES)} (`make browser-deps` as root)")


@lru_cache(maxsize=512)
def _font(path: str | None, size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    if path is None:
        return ImageFont.load_default(size=size)
    return ImageFont.truetype(path, size=size)


def signature_alpha(source: ImageSource | SignatureSource) -> np.ndarray:
    """A signature crop as ink coverage in [0, 1] (paper 0), cropped to the ink."""
    widen = isinstance(source, SignatureSource) and source.widen
    image = load_image(source.path if isinstance(source, SignatureSource) else source)
    gray = to_grayscale(image)
    threshold = otsu_threshold(gray)
    ink = gray < threshold
    if not ink.any() or ink.all():
        raise ValueError("no ink in the signature image")
    paper = float(np.median(gray[~ink]))
    dark = float(np.percentile(gray[ink], 10))
    alpha = np.clip((paper - gray) / max(paper - dark, 0.05), 0.0, 1.0)
    alpha[alpha < 0.25] = 0.0
    rows, cols = np.flatnonzero(alpha.any(axis=1)), np.flatnonzero(alpha.any(axis=0))
    alpha = alpha[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]
    if widen:
        h, w = alpha.shape
        alpha = np.asarray(Image.fromarray(alpha, mode="F").resize((int(w * 1.8), h), Image.Resampling.BILINEAR))
    return alpha.astype(np.float32)


# ---------------------------------------------------------------- page


@dataclass
class SynthPage:
    image: Image.Image  # RGB or L
    boxes: list[Box]  # one per signature, in `image` pixels
    kind: str
    meta: dict = field(default_factory=dict)


class _Canvas:
    """A page being drawn: RGB pixels, the boxes already used (so blocks do not overlap), the signature boxes."""

    def __init__(self, rng: np.random.Generator, size: tuple[int, int], split: Split) -> None:
        self.rng, self.split = rng, split
        self.w, self.h = size
        paper = rng.uniform(238, 255, 3) if rng.random() < 0.5 else np.full(3, rng.uniform(240, 255))
        self.image = Image.new("RGB", size, tuple(int(v) for v in paper))
        self.draw = ImageDraw.Draw(self.image)
        self.used: list[Box] = []
        self.signatures: list[Box] = []
        self.fonts = font_files(split)
        self.text_px = int(self.w * rng.uniform(0.011, 0.022))  # body text size

    # fonts and colours
    def font(self, size: int, script: str = "latin", bold: bool | None = None):
        if script == "latin":
            names = [f for f in self.fonts if "Devanagari" not in f and "Bengali" not in f]
        else:  # FreeSerif has both Indic scripts
            key = "Devanagari" if script == "devanagari" else "Bengali"
            names = [f for f in self.fonts if key in f or Path(f).name.startswith("FreeSerif")]
        if bold is not None and names:
            names = [f for f in names if ("Bold" in f) == bold] or names
        return _font(str(self.rng.choice(names)) if names else None, max(6, int(size)))

    def ink(self) -> tuple[int, int, int]:
        r = self.rng.random()
        if r < 0.8:
            v = int(self.rng.uniform(0, 60))
            return (v, v, v)
        if r < 0.9:
            return (int(self.rng.uniform(0, 40)), int(self.rng.uniform(30, 80)), int(self.rng.uniform(90, 160)))
        return (int(self.rng.uniform(100, 160)), int(self.rng.uniform(0, 40)), int(self.rng.uniform(0, 40)))

    # layout
    def free(self, box: Box, margin: int = 4) -> bool:
        l, t, r, b = box
        if l < 0 or t < 0 or r > self.w or b > self.h:
            return False
        return all(r + margin <= u[0] or u[2] + margin <= l or b + margin <= u[1] or u[3] + margin <= t for u in self.used)

    def place(self, bw: int, bh: int, region: Box | None = None, tries: int = 30) -> Box | None:
        l0, t0, r0, b0 = region or (0, 0, self.w, self.h)
        for _ in range(tries):
            if r0 - l0 - bw < 1 or b0 - t0 - bh < 1:
                return None
            x, y = int(self.rng.integers(l0, r0 - bw)), int(self.rng.integers(t0, b0 - bh))
            box = (x, y, x + bw, y + bh)
            if self.free(box):
                return box
        return None

    def words(self, n: int, script: str = "latin") -> str:
        if script != "latin":
            lo, hi = SCRIPTS[script]
            return " ".join("".join(chr(int(c)) for c in self.rng.integers(lo, hi + 1, self.rng.integers(2, 7)))
                            for _ in range(n))
        out = []
        for _ in range(n):
            r = self.rng.random()
            if r < 0.08:
                out.append(f"{self.rng.integers(1, 99999):,}")
            elif r < 0.12:
                out.append(f"{self.rng.integers(1, 29):02d}/{self.rng.integers(1, 13):02d}/{self.rng.integers(1990, 2030)}")
            else:
                word = str(self.rng.choice(WORDS))
                out.append(word.capitalize() if self.rng.random() < 0.15 else word.upper() if self.rng.random() < 0.03 else word)
        return " ".join(out)

    def text(self, xy: tuple[int, int], text: str, font, fill=None) -> Box:
        fill = fill or self.ink()
        self.draw.text(xy, text, font=font, fill=fill)
        l, t, r, b = self.draw.textbbox(xy, text, font=font)
        return (int(l), int(t), int(r) + 1, int(b) + 1)


# ---------------------------------------------------------------- backgrounds


def _background(c: _Canvas, kind: str, box: Box) -> None:
    l, t, r, b = box
    w, h = r - l, b - t
    if kind == "plain" or w < 4 or h < 4:
        return
    rng = c.rng
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    colour = rng.uniform(120, 235, 3)
    strength = rng.uniform(0.12, 0.4)
    if kind == "guilloche":
        f = rng.uniform(0.02, 0.08)
        pattern = np.zeros((h, w), np.float32)
        for _ in range(int(rng.integers(2, 4))):
            a, p = rng.uniform(10, 40), rng.uniform(0.005, 0.03)
            phase = rng.uniform(0, 6.3)
            pattern = np.maximum(pattern, np.abs(np.sin(f * y + a * np.sin(p * x + phase) * f)) > 0.93)
    elif kind == "tint":
        gx, gy = rng.uniform(-1, 1, 2)
        pattern = (gx * x / w + gy * y / h)
        pattern = (pattern - pattern.min()) / max(float(np.ptp(pattern)), 1e-6)
        strength *= 0.6
    elif kind == "dots":
        step = rng.uniform(4, 12)
        pattern = ((np.sin(x * np.pi / step) * np.sin(y * np.pi / step)) > 0.75).astype(np.float32)
    elif kind == "crosshatch":
        step = rng.uniform(5, 14)
        pattern = ((np.abs(((x + y) % step) - step / 2) < 0.8) | (np.abs(((x - y) % step) - step / 2) < 0.8)).astype(np.float32)
    elif kind == "rings":
        cx, cy = rng.uniform(0, w), rng.uniform(0, h)
        step = rng.uniform(5, 15)
        d = np.hypot(x - cx, y - cy)
        pattern = (np.abs((d % step) - step / 2) < 0.9).astype(np.float32)
    elif kind == "microtext":
        layer = Image.new("L", (w, h), 0)
        draw = ImageDraw.Draw(layer)
        size = max(6, int(rng.uniform(6, 10)))
        font = c.font(size)
        line = (c.words(40) + " ") * 3
        for yy in range(0, h, int(size * 1.3)):
            draw.text((-int(rng.integers(0, 200)), yy), line, font=font, fill=255)
        pattern = np.asarray(layer, np.float32) / 255.0
    else:
        raise ValueError(f"unknown background {kind!r}")
    region = np.asarray(c.image.crop(box), np.float32)
    region = region * (1 - strength * pattern[..., None]) + colour * strength * pattern[..., None]
    c.image.paste(Image.fromarray(np.clip(region, 0, 255).astype(np.uint8)), box[:2])
    c.draw = ImageDraw.Draw(c.image)


# ---------------------------------------------------------------- blocks


def _paragraph(c: _Canvas, region: Box, script: str = "latin") -> None:
    l, t, r, b = region
    size = int(c.text_px * c.rng.uniform(0.85, 1.15))
    font = c.font(size, script)
    spacing = size * c.rng.uniform(1.15, 1.8)
    y = t
    fill = c.ink()
    while y + size * 1.5 < b:
        n = int(c.rng.integers(3, 14))
        line = c.words(n, script)
        width = c.draw.textlength(line, font=font)
        while width > r - l and n > 1:
            n -= 1
            line = c.words(n, script)
            width = c.draw.textlength(line, font=font)
        box = (l, int(y), int(l + width) + 1, int(y + size * 1.4))
        if width <= r - l and c.free(box):
            c.used.append(c.text((l, int(y)), line, font, fill))
        y += spacing
        if c.rng.random() < 0.12:
            y += spacing  # paragraph break


def _heading(c: _Canvas, region: Box) -> None:
    size = int(c.text_px * c.rng.uniform(1.4, 3.0))
    font = c.font(size, bold=c.rng.random() < 0.7)
    text = c.words(int(c.rng.integers(1, 5))).upper() if c.rng.random() < 0.5 else c.words(int(c.rng.integers(1, 5))).title()
    width = c.draw.textlength(text, font=font)
    box = c.place(int(width) + 2, int(size * 1.4), region)
    if box:
        c.used.append(c.text(box[:2], text, font))


def _field_row(c: _Canvas, region: Box) -> None:
    """A label and an answer line or box, some filled with typed text."""
    size = int(c.text_px * c.rng.uniform(0.85, 1.1))
    font = c.font(size, bold=c.rng.random() < 0.3)
    label = c.words(int(c.rng.integers(1, 4))).capitalize() + ":"
    lw = int(c.draw.textlength(label, font=font))
    fw = int(c.rng.uniform(0.15, 0.5) * c.w)
    box = c.place(lw + fw + size, int(size * 2.2), region)
    if not box:
        return
    l, t, r, b = box
    c.text((l, t + size // 3), label, font)
    x0 = l + lw + size // 2
    colour = c.ink()
    if c.rng.random() < 0.5:
        c.draw.line([(x0, b - 2), (r, b - 2)], fill=colour, width=max(1, size // 14))
    else:
        c.draw.rectangle([x0, t, r, b - 1], outline=colour, width=max(1, size // 14))
    if c.rng.random() < 0.6:
        c.text((x0 + size // 3, t + size // 3), c.words(int(c.rng.integers(1, 4))), c.font(size))
    c.used.append(box)


def _table(c: _Canvas, region: Box) -> None:
    rows, cols = int(c.rng.integers(2, 7)), int(c.rng.integers(2, 6))
    size = int(c.text_px * c.rng.uniform(0.8, 1.0))
    rh, tw = int(size * c.rng.uniform(1.8, 2.6)), int(c.rng.uniform(0.4, 0.9) * (region[2] - region[0]))
    box = c.place(tw, rh * rows + 2, region)
    if not box:
        return
    l, t, r, b = box
    colour, lw = c.ink(), max(1, size // 15)
    font = c.font(size)
    xs = np.linspace(l, r - 1, cols + 1).astype(int)
    for i in range(rows + 1):
        c.draw.line([(l, t + i * rh), (r - 1, t + i * rh)], fill=colour, width=lw)
    if c.rng.random() < 0.7:
        for x in xs:
            c.draw.line([(x, t), (x, t + rows * rh)], fill=colour, width=lw)
    for i in range(rows):
        for j in range(cols):
            if c.rng.random() < 0.8:
                text = c.words(int(c.rng.integers(1, 3)))
                while text and c.draw.textlength(text, font=font) > xs[j + 1] - xs[j] - size:
                    text = text[:-1]
                c.text((xs[j] + size // 3, t + i * rh + (rh - size) // 2), text, font)
    c.used.append(box)


def _logo(c: _Canvas, region: Box) -> None:
    s = int(c.text_px * c.rng.uniform(2, 5))
    box = c.place(s * 4, s, region)
    if not box:
        return
    l, t, r, b = box
    colour = c.ink() if c.rng.random() < 0.5 else tuple(int(v) for v in c.rng.uniform(0, 200, 3))
    shape = c.rng.integers(0, 3)
    if shape == 0:
        c.draw.ellipse([l, t, l + s, b], fill=colour)
    elif shape == 1:
        c.draw.rectangle([l, t, l + s, b], fill=colour)
    else:
        c.draw.polygon([(l, b), (l + s // 2, t), (l + s, b)], fill=colour)
    c.text((l + int(s * 1.2), t + s // 5), c.words(int(c.rng.integers(1, 3))).upper(), c.font(int(s * 0.55), bold=True), colour)
    c.used.append(box)


def _barcode(c: _Canvas, region: Box) -> None:
    h = int(c.text_px * c.rng.uniform(1.5, 4))
    if c.rng.random() < 0.5:  # 1-D barcode
        widths = c.rng.integers(1, 4, int(c.rng.integers(30, 70))) * max(1, c.w // 900)
        box = c.place(int(widths.sum() * 2), h, region)
        if not box:
            return
        x = box[0]
        for i, bw in enumerate(widths):
            if i % 2 == 0:
                c.draw.rectangle([x, box[1], x + int(bw) - 1, box[3]], fill=(0, 0, 0))
            x += int(bw) * 2
    else:  # 2-D code
        n = int(c.rng.integers(15, 30))
        cell = max(2, h // n + 1)
        box = c.place(n * cell, n * cell, region)
        if not box:
            return
        cells = c.rng.random((n, n)) < 0.5
        for i, j in zip(*np.nonzero(cells)):
            x, y = box[0] + j * cell, box[1] + i * cell
            c.draw.rectangle([x, y, x + cell - 1, y + cell - 1], fill=(0, 0, 0))
    c.used.append(box)


def _stamp(c: _Canvas, near: Box | None = None) -> None:
    """A rubber stamp (ring or frame of text), rotated, in a stamp colour, multiplied onto the page."""
    s = int(c.text_px * c.rng.uniform(5, 10))
    layer = Image.new("L", (s * 2, s), 0)
    draw = ImageDraw.Draw(layer)
    width = max(2, s // 40)
    font = _font(str(c.rng.choice(c.fonts)) if c.fonts else None, max(8, s // 7))
    if c.rng.random() < 0.5:
        layer = Image.new("L", (s, s), 0)
        draw = ImageDraw.Draw(layer)
        draw.ellipse([1, 1, s - 2, s - 2], outline=255, width=width)
        draw.ellipse([s // 6, s // 6, s - s // 6, s - s // 6], outline=255, width=max(1, width // 2))
        draw.text((s // 4, s // 2 - s // 12), c.words(1).upper()[:8], font=font, fill=255)
    else:
        draw.rectangle([1, 1, 2 * s - 2, s - 2], outline=255, width=width)
        draw.text((s // 8, s // 6), c.words(2).upper(), font=font, fill=255)
        draw.text((s // 8, s // 2), c.words(2).upper(), font=font, fill=255)
    layer = layer.rotate(float(c.rng.uniform(-30, 30)), expand=True, resample=Image.Resampling.BILINEAR)
    wear = np.asarray(layer, np.float32) / 255.0 * c.rng.uniform(0.5, 0.95)
    wear *= c.rng.random(wear.shape) > c.rng.uniform(0.0, 0.3)
    colour = np.array([(30, 60, 170), (170, 30, 40), (110, 40, 140)][int(c.rng.integers(0, 3))], np.float32)
    lh, lw = wear.shape
    if near is not None:
        x = int(near[0] + c.rng.uniform(-0.5, 0.8) * (near[2] - near[0]))
        y = int(near[1] + c.rng.uniform(-0.8, 0.6) * (near[3] - near[1]))
    else:
        box = c.place(lw, lh)
        if box is None:
            return
        x, y = box[:2]
        c.used.append(box)
    _multiply(c, wear, colour, x, y)


def _multiply(c: _Canvas, alpha: np.ndarray, colour: np.ndarray, x: int, y: int) -> Box | None:
    """Lay ink of `alpha` coverage and `colour` onto the page at (x, y); the box actually drawn on."""
    h, w = alpha.shape
    l, t, r, b = max(0, x), max(0, y), min(c.w, x + w), min(c.h, y + h)
    if r <= l or b <= t:
        return None
    a = alpha[t - y : b - y, l - x : r - x, None]
    region = np.asarray(c.image.crop((l, t, r, b)), np.float32)
    region = region * (1 - a) + np.minimum(region, colour) * a
    c.image.paste(Image.fromarray(np.clip(region, 0, 255).astype(np.uint8)), (l, t))
    c.draw = ImageDraw.Draw(c.image)
    return (l, t, r, b)


def _signature(c: _Canvas, alpha: np.ndarray, region: Box | None) -> Box | None:
    """A signature of about a fifth of the page width, on a signature line with a typed name (usually)."""
    ah, aw = alpha.shape
    width = c.w * c.rng.uniform(0.13, 0.32)
    scale = min(width / aw, c.text_px * c.rng.uniform(3.0, 7.0) / ah)
    sw, sh = max(8, int(aw * scale)), max(4, int(ah * scale))
    alpha = np.asarray(Image.fromarray(alpha, mode="F").resize((sw, sh), Image.Resampling.BILINEAR))
    alpha = np.clip(alpha * c.rng.uniform(0.8, 1.1), 0, 1)
    size = int(c.text_px * c.rng.uniform(0.85, 1.1))
    extra = size * 3
    box = c.place(sw + extra, sh + extra, region)
    if box is None:
        return None
    l, t = box[0] + int(c.rng.integers(0, extra // 2 + 1)), box[1] + size
    line_y = t + int(sh * c.rng.uniform(0.55, 1.0))
    colour = c.ink()
    r = c.rng.random()
    if r < 0.6:
        c.draw.line([(box[0], line_y), (box[2], line_y)], fill=colour, width=max(1, size // 14))
        if c.rng.random() < 0.7:
            c.text((box[0], line_y + size // 3), c.words(int(c.rng.integers(1, 4))).title(), c.font(size), colour)
    elif r < 0.8:
        c.draw.rectangle([box[0], box[1], box[2] - 1, box[3] - 1], outline=colour, width=max(1, size // 14))
    blue = c.rng.random() < 0.5
    ink = np.array((c.rng.uniform(0, 40), c.rng.uniform(20, 70), c.rng.uniform(100, 190)) if blue
                   else np.full(3, c.rng.uniform(0, 50)), np.float32)
    drawn = _multiply(c, alpha, ink, l, t)
    c.used.append(box)
    if drawn is None:
        return None
    bl, bt, br, bb = strokes_box(alpha > 0.3)
    return (l + bl, t + bt, l + br, t + bb)


STRAY_SHARE = 0.01  # a piece of ink with less than this share of the signature's ink ...
STRAY_GAP = 0.5  # ... lying farther than this many times the strokes' height outside their box is a stray mark


def strokes_box(ink: np.ndarray) -> Box:
    """The box (l t r b, exclusive) of a signature's strokes in an ink mask: its pieces of ink, less the stray marks
    a scan carries (specks and dots far from the writing: a clerk's crop leaves them out, and they would stretch the
    box across printing beside the signature). A mask without a piece large enough to lead keeps all its ink."""
    pieces, n = ndimage.label(ink, structure=np.ones((3, 3)))
    if n == 0:
        raise ValueError("no ink")
    areas = np.bincount(pieces.ravel(), minlength=n + 1)[1:]
    major = areas >= STRAY_SHARE * areas.sum()
    if not major.any():
        major[:] = True
    boxes = ndimage.find_objects(pieces)
    lead = [boxes[i] for i in np.flatnonzero(major)]
    l, t = min(b[1].start for b in lead), min(b[0].start for b in lead)
    r, bottom = max(b[1].stop for b in lead), max(b[0].stop for b in lead)
    margin = STRAY_GAP * (bottom - t)
    small = [boxes[i] for i in np.flatnonzero(~major)]
    grown = True
    while grown:  # small pieces near the strokes (dots, accents, a faint stroke in bits) belong to them, in a chain
        grown = False
        for sl in list(small):
            if (sl[1].stop >= l - margin and sl[1].start <= r + margin and sl[0].stop >= t - margin
                    and sl[0].start <= bottom + margin):
                l, t = min(l, sl[1].start), min(t, sl[0].start)
                r, bottom = max(r, sl[1].stop), max(bottom, sl[0].stop)
                small.remove(sl)
                grown = True
    return int(l), int(t), int(r), int(bottom)


# ---------------------------------------------------------------- capture


def _capture(c: _Canvas, boxes: list[Box], strength: float) -> tuple[Image.Image, list[Box]]:
    """Rotation, perspective, lighting, blur, noise and JPEG of a scan or a photo; the boxes follow the page."""
    rng, image = c.rng, c.image
    w, h = image.size
    if rng.random() < 0.7 * strength:
        angle = math.radians(rng.uniform(-2.5, 2.5))
        jitter = rng.uniform(-0.025, 0.025, (4, 2)) * (w, h) * (rng.random() < 0.5)
        src = np.array([(0, 0), (w, 0), (w, h), (0, h)], np.float64)
        centre = np.array([w / 2, h / 2])
        rot = np.array([[math.cos(angle), -math.sin(angle)], [math.sin(angle), math.cos(angle)]])
        dst = (src - centre) @ rot.T + centre + jitter
        forward = _homography(src, dst)
        inverse = np.linalg.inv(forward)
        fill = (int(rng.uniform(200, 255)),) * 3 if rng.random() < 0.8 else (int(rng.uniform(20, 90)),) * 3
        image = image.transform((w, h), Image.Transform.PERSPECTIVE, tuple((inverse / inverse[2, 2]).ravel()[:8]),
                                resample=Image.Resampling.BILINEAR, fillcolor=fill)
        moved = []
        for l, t, r, b in boxes:
            pts = np.array([(l, t, 1), (r, t, 1), (r, b, 1), (l, b, 1)], np.float64) @ forward.T
            pts = pts[:, :2] / pts[:, 2:]
            moved.append((int(pts[:, 0].min()), int(pts[:, 1].min()), int(math.ceil(pts[:, 0].max())), int(math.ceil(pts[:, 1].max()))))
        boxes = moved
    arr = np.asarray(image, np.float32)
    if rng.random() < 0.5 * strength:  # uneven light: a tilted plane and a vignette
        y, x = np.mgrid[0:h:8, 0:w:8].astype(np.float32)
        gx, gy = rng.uniform(-0.25, 0.25, 2)
        light = 1 + gx * (x / w - 0.5) + gy * (y / h - 0.5)
        light -= rng.uniform(0, 0.3) * (((x / w - 0.5) ** 2 + (y / h - 0.5) ** 2) * 2)
        light = np.asarray(Image.fromarray(light.astype(np.float32), mode="F").resize((w, h), Image.Resampling.BILINEAR))
        arr = arr * np.clip(light, 0.5, 1.2)[..., None]
    if rng.random() < 0.5 * strength:
        arr = arr + rng.normal(0, rng.uniform(1, 6), arr.shape[:2])[..., None]
    image = Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8))
    if rng.random() < 0.4 * strength:
        image = image.filter(ImageFilter.GaussianBlur(rng.uniform(0.3, 1.2)))
    if rng.random() < 0.3:
        image = image.convert("L")
    if rng.random() < 0.7:
        buf = io.BytesIO()
        image.save(buf, format="JPEG", quality=int(rng.uniform(35, 95)))
        image = Image.open(io.BytesIO(buf.getvalue()))
        image.load()
    return image, [(max(0, l), max(0, t), min(w, r), min(h, b)) for l, t, r, b in boxes]


def _homography(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    rows = []
    for (x, y), (u, v) in zip(src, dst):
        rows.append([x, y, 1, 0, 0, 0, -u * x, -u * y, -u])
        rows.append([0, 0, 0, x, y, 1, -v * x, -v * y, -v])
    _, _, vt = np.linalg.svd(np.array(rows))
    return vt[-1].reshape(3, 3) / vt[-1, -1]


# ---------------------------------------------------------------- pages

KINDS = ("letter", "cheque", "form")


def make_page(seed: int, signatures: Sequence[ImageSource | SignatureSource], *, split: Split = "train",
              n_signatures: int | None = None, kind: str | None = None, width: int | None = None,
              capture: float = 1.0) -> SynthPage:
    """One synthetic document with `n_signatures` (default: 0-3 at random) drawn from `signatures`.

    `kind`: "letter", "cheque" or "form" (default: at random); `width`: page width in pixels (default:
    1200-2600); `capture`: how likely the scan/photo distortions are (0: a clean rendering)."""
    rng = np.random.default_rng(seed)
    kind = kind or str(rng.choice(KINDS, p=[0.4, 0.3, 0.3]))
    if width is None:
        width = int(rng.uniform(1200, 2600))
    aspect = {"letter": rng.uniform(1.29, 1.42), "form": rng.uniform(1.29, 1.42) if rng.random() < 0.8 else rng.uniform(0.7, 0.77),
              "cheque": rng.uniform(0.36, 0.47)}[kind]
    c = _Canvas(rng, (width, int(width * aspect)), split)
    background = str(rng.choice(BACKGROUNDS[split])) if kind == "cheque" or rng.random() < 0.3 else "plain"
    _background(c, background, (0, 0, c.w, c.h))
    if n_signatures is None:
        n_signatures = int(rng.choice([0, 1, 2, 3], p=[0.2, 0.5, 0.2, 0.1]))
    margin = int(c.w * rng.uniform(0.04, 0.1))
    content = (margin, margin, c.w - margin, c.h - margin)
    boxes: list[Box] = []
    drawn: list[int] = []  # which of `signatures` each box holds
    # signatures first, in the lower part of the page (where they usually are) or anywhere
    for i in range(n_signatures):
        if not signatures:
            break
        index = int(rng.integers(0, len(signatures)))
        alpha = signature_alpha(signatures[index])
        low = (content[0], int(content[1] + (content[3] - content[1]) * rng.uniform(0.3, 0.6)), content[2], content[3])
        box = _signature(c, alpha, low if rng.random() < 0.7 else content) or _signature(c, alpha, content)
        if box:
            boxes.append(box)
            drawn.append(index)
    script = "latin" if rng.random() < 0.75 else str(rng.choice(list(SCRIPTS)))
    if rng.random() < 0.6:
        _logo(c, (content[0], content[1], content[2], content[1] + (content[3] - content[1]) // 4))
    for _ in range(int(rng.integers(1, 3))):
        _heading(c, content)
    blocks = {"letter": ["paragraph"] * 5 + ["field", "table"], "form": ["field"] * 5 + ["table", "paragraph", "barcode"],
              "cheque": ["field"] * 4 + ["barcode", "paragraph"]}[kind]
    for _ in range(int(rng.integers(6, 16))):
        block = blocks[int(rng.integers(0, len(blocks)))]
        if block == "paragraph":
            bw, bh = int(c.w * rng.uniform(0.3, 0.85)), int(c.h * rng.uniform(0.08, 0.4))
            region = c.place(bw, bh, content, tries=10)
            if region:
                _paragraph(c, region, script)
        elif block == "field":
            _field_row(c, content)
        elif block == "table":
            _table(c, content)
        elif block == "barcode":
            _barcode(c, content)
    if rng.random() < 0.3:
        _barcode(c, content)
    if rng.random() < 0.35:
        _stamp(c, boxes[int(rng.integers(0, len(boxes)))] if boxes and rng.random() < 0.3 else None)
    image, boxes = _capture(c, boxes, capture)
    return SynthPage(image=image, boxes=boxes, kind=kind, meta={"background": background, "script": script, "seed": seed,
                                                             "signatures": drawn})
