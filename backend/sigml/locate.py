"""Find handwritten signatures on a page, a cheque or a form: boxes with a confidence, or none; and tell a page from
a signature crop.

`locate(source)` runs a small fully convolutional network (`sigml.locate_net`, trained from scratch on
`sigml.synthdocs` documents and real crops of the training writers; served as ONNX on ONNX Runtime, no torch):
1. `page_input`: the page at most `NET_SIDE` pixels a side (min-pooled so thin pen strokes survive), as two
   channels: how much darker than the local paper each pixel is (uneven light is followed), and colour saturation;
2. the network's map, one probability per 4 x 4 pixels that the cell lies in a handwritten signature's box;
3. `heat_boxes`: connected regions of the map above the card's region cut whose peak reaches its threshold, each
   tightened to the ink inside it (ruled lines taken out of the ink first, so a signature line does not widen it).

`look(source)` adds the page check: how much of the ink lies outside the map's signature regions. A crop is mostly
signature; a page is mostly printed text, fields and lines (`PAGE_*` below). `preprocess_located` is the one rule
serving follows: an uncropped image that is a page, or that the quality gate refuses, is never judged whole.

The model is `trained_model_parameters/signature_locator.json` (threshold, card) beside its ONNX file, whose
SHA-256 the card holds. The located boxes are in the pixels of the (EXIF-rotated) input image.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any, Sequence

import numpy as np
from PIL import Image, ImageChops
from scipy import ndimage

from .errors import BlankImageError, NotASignatureError, TooSmallError
from .preprocessing import DEFAULT_CONFIG, ImageSource, load_image, preprocess_checked
from .quality import ADVICE

WORK_SIDE = 1024  # `work_gray`'s default size (the quality gate's own map is smaller)
LOW_HEAT = 0.3  # the page check's signature regions: cells above this (and a box's region, unless its card says)
MIN_REGION_INK = 12  # a region with less ink (network-input pixels) keeps its cells' box
DEFAULT_MODEL = Path(__file__).resolve().parents[2] / "trained_model_parameters" / "signature_locator.json"

Box = tuple[int, int, int, int]


@dataclass(frozen=True)
class LocatedSignature:
    box: Box  # left, top, right, bottom (exclusive) in input-image pixels
    confidence: float
    # the same signature's box at stricter region cuts (STRICTER_CUTS), widest first: what `auto_crop` tries when
    # `box` takes in so much of a stamp or printed text beside the signature that the quality gate refuses it
    tighter: tuple[Box, ...] = field(default=(), compare=False)

    def to_dict(self) -> dict:
        return {"box": list(self.box), "confidence": round(self.confidence, 4)}


# ---------------------------------------------------------------- the network's input


def work_gray(image: Image.Image, side: int = WORK_SIDE) -> tuple[np.ndarray, float]:
    """The page as a work-size float32 gray array in [0, 255] (min-pooled then box-resampled: at most `side`
    pixels a side) and its scale."""
    if image.mode not in ("L", "RGB"):
        from .preprocessing import _grayscale_8bit

        gray8 = _grayscale_8bit(image)
        image = gray8 if isinstance(gray8, Image.Image) else Image.fromarray((gray8 * 255).astype(np.uint8))
    if image.mode == "RGB":
        image = image.convert("L")
    arr, scale = _pool_resize(np.asarray(image), side, np.minimum)
    return arr.astype(np.float32), scale


def _pool_resize(arr: np.ndarray, side: int, reduce) -> tuple[np.ndarray, float]:
    """A uint8 2-D array at most `side` pixels a side: pooled by `reduce` (np.minimum keeps a thin dark stroke,
    np.maximum a thin coloured one) over whole-pixel blocks, then box-resampled; and the scale (input/output)."""
    h, w = arr.shape
    scale = max(w, h) / side
    k = int(scale)
    if k >= 2:
        hh, ww = h // k, w // k
        pooled = arr[:hh * k:k, :ww * k:k].copy()
        for dy in range(k):
            for dx in range(k):
                if dy or dx:
                    reduce(pooled, arr[dy:hh * k:k, dx:ww * k:k], out=pooled)
        arr = pooled
    if scale > 1:
        size = (max(1, round(w / scale)), max(1, round(h / scale)))
        return np.asarray(Image.fromarray(arr).resize(size, Image.Resampling.BOX)), float(scale)
    return arr, 1.0


def local_paper(gray: np.ndarray) -> np.ndarray:
    """The paper's brightness around each pixel (a max-filter of a coarser copy, so uneven light is followed),
    never darker than the pixel itself."""
    h, w = gray.shape
    f = 4
    small = gray[: h // f * f or h, : w // f * f or w]
    if small.shape[0] >= f and small.shape[1] >= f:
        small = small.reshape(small.shape[0] // f, f, small.shape[1] // f, f).max(axis=(1, 3))
    paper = ndimage.maximum_filter(small, size=7, mode="nearest")
    paper = ndimage.uniform_filter(paper, size=5, mode="nearest")
    paper = np.asarray(Image.fromarray(paper).resize((w, h), Image.Resampling.BILINEAR))
    return np.maximum(paper, gray)


def ink_mask(gray: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Ink (clearly darker than the local paper) and its darkness relative to the paper, in [0, 1]."""
    paper = local_paper(gray)
    darkness = (paper - gray) / np.maximum(paper, 1.0)
    mask = (darkness > 0.28) & (paper - gray > 35)
    return mask, darkness


NET_SIDE = 768  # the locator network sees the page at most this large
COLOUR_MODES = ("RGB", "RGBA", "RGBX", "RGBa", "P", "PA", "CMYK", "YCbCr", "LAB", "HSV")


def page_input(image: Image.Image, side: int = NET_SIDE) -> tuple[np.ndarray, float]:
    """The locator network's input (2 x H x W uint8: darkness against the local paper, and colour saturation, both
    scaled to 0-255; at most `side` pixels a side) and its scale (input-image pixels per network pixel). The one
    function that makes it, for training pages and served pages alike."""
    gray, scale = work_gray(image, side)
    paper = local_paper(gray)
    darkness = (paper - gray) / np.maximum(paper, 1.0)
    saturation = _saturation(image)
    if saturation is None:
        saturation = np.zeros(gray.shape, np.uint8)
    else:
        saturation, _ = _pool_resize(saturation, side, np.maximum)
    return np.stack([np.clip(darkness * 255.0 + 0.5, 0, 255).astype(np.uint8), saturation]), scale


def _saturation(image: Image.Image) -> np.ndarray | None:
    """Colour saturation (max - min of R, G, B; for a transparent image, of the colour laid on white paper, which is
    alpha times the colour's own), uint8 at the image's size; None for an image without colour."""
    if image.mode not in COLOUR_MODES:
        return None
    try:
        if image.mode not in ("RGB", "RGBA"):  # an uploaded PNG is often P (palette), with or without transparency
            image = image.convert("RGBA" if image.mode in ("PA", "RGBa") or "transparency" in image.info else "RGB")
    except ValueError:  # a mode Pillow cannot turn into RGB: judged on darkness alone
        return None
    w, h = image.size
    out = np.empty((h, w), np.uint8)
    rows = max(1, 1_000_000 // max(w, 1))  # strips of about a megapixel: a large upload costs little beyond itself
    for top in range(0, h, rows):
        bands = image.crop((0, top, w, min(h, top + rows))).split()  # Pillow's own per-band operations
        r, g, b = bands[:3]
        colour = ImageChops.subtract(ImageChops.lighter(ImageChops.lighter(r, g), b),
                                     ImageChops.darker(ImageChops.darker(r, g), b))
        if len(bands) == 4:
            colour = ImageChops.multiply(colour, bands[3])  # colour x alpha / 255
        out[top:top + colour.size[1]] = np.asarray(colour)
    return out


def remove_lines(mask: np.ndarray, length: int) -> tuple[np.ndarray, np.ndarray]:
    """The mask without straight horizontal/vertical runs of at least `length` pixels, and those runs."""
    lines = np.zeros_like(mask)
    for axis in (1, 0):
        thick = ndimage.maximum_filter1d(mask.view(np.uint8), 3, axis=1 - axis) > 0  # tolerate a slight tilt
        run = ndimage.uniform_filter1d(thick.astype(np.float32), length, axis=axis, mode="constant") > 0.97
        if run.any():
            span = ndimage.uniform_filter1d(run.astype(np.float32), length, axis=axis, mode="constant") > 0.5 / length
            lines |= span & mask
    # a line drawn through the signature leaves its strokes: keep ink that is thick across the line
    return mask & ~lines, lines



# ---------------------------------------------------------------- boxes


def box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU matrix of boxes a (n x 4) and b (m x 4), (l, t, r, b) exclusive."""
    a, b = np.asarray(a, np.float64).reshape(-1, 4), np.asarray(b, np.float64).reshape(-1, 4)
    iw = np.clip(np.minimum(a[:, None, 2], b[None, :, 2]) - np.maximum(a[:, None, 0], b[None, :, 0]), 0, None)
    ih = np.clip(np.minimum(a[:, None, 3], b[None, :, 3]) - np.maximum(a[:, None, 1], b[None, :, 1]), 0, None)
    inter = iw * ih
    area_a = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])
    area_b = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    return inter / np.maximum(area_a[:, None] + area_b[None, :] - inter, 1e-9)


def match_boxes(found: np.ndarray, truth: np.ndarray, min_iou: float = 0.5) -> tuple[int, int]:
    """(true boxes located, false boxes): best overlaps first, each true box matched at most once at IoU >= min_iou;
    every found box left unmatched is a false one."""
    found, truth = np.asarray(found, np.float64).reshape(-1, 4), np.asarray(truth, np.float64).reshape(-1, 4)
    if not len(truth):
        return 0, len(found)
    iou = box_iou(found, truth)
    matched: set[int] = set()
    false = 0
    for i in np.argsort(-iou.max(axis=1), kind="stable") if len(found) else []:
        j = int(np.argmax(iou[i]))
        if iou[i, j] >= min_iou and j not in matched:
            matched.add(j)
        else:
            false += 1
    return len(matched), false


# ---------------------------------------------------------------- the network

@lru_cache(maxsize=4)
def _onnx_session(path: str, threads: int | None = None):
    import onnxruntime as ort

    from .embedders import session_options

    return ort.InferenceSession(path, sess_options=session_options(threads, low_memory=True),
                                providers=["CPUExecutionProvider"])


def run_onnx(path: str | Path, x: np.ndarray, threads: int | None = None) -> np.ndarray:
    """The locator network's logits (N x 1 x H/4 x W/4) for inputs N x 2 x H x W in [0, 1], on ONNX Runtime
    (`threads` intra-op threads; None: one per core)."""
    session = _onnx_session(str(path), threads)
    return session.run(None, {session.get_inputs()[0].name: np.ascontiguousarray(x, np.float32)})[0]


@dataclass(frozen=True)
class Locator:
    """The network locator: its ONNX file, the map threshold that makes a box, and its card (how it was trained
    and measured). Stored as JSON beside the ONNX file, whose SHA-256 it holds (a mismatch is refused)."""

    onnx: Path
    threshold: float
    card: dict
    threads: int | None = None  # ONNX Runtime's intra-op threads (serving: the worker's model threads)
    region_cut: float = LOW_HEAT  # a box spans the map's cells above this around its peak (`heat_boxes`)

    def heat(self, x: np.ndarray) -> np.ndarray:
        """Probability per 4 x 4 cell of the input that it lies in a signature's box."""
        logits = run_onnx(self.onnx, (x[None].astype(np.float32) / 255.0), self.threads)[0, 0]
        return 1.0 / (1.0 + np.exp(-np.clip(logits, -50, 50)))


@lru_cache(maxsize=4)
def load_model(path: str | Path = DEFAULT_MODEL, threads: int | None = None) -> Locator:
    """The locator of a card (cached: loaded once per process and thread count); ModelLoadError when the card or its
    ONNX file is missing, of another format, or not the file the card was written for."""
    from .errors import ModelLoadError
    from .modelcard import file_sha256

    try:
        data = json.loads(Path(path).read_text())
        if data.get("format") != "sigml.locate/net-v1":
            raise ValueError("not a network-locator card of this version")
        onnx = Path(path).resolve().parent / data["onnx"]["file"]
        if file_sha256(onnx) != data["onnx"]["sha256"]:
            raise ValueError(f"{onnx.name} is not the file this card was written for (SHA-256 differs)")
        return Locator(onnx, float(data["threshold"]), data.get("card", {}), threads,
                       float(data.get("region_cut", LOW_HEAT)))
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ModelLoadError(path, str(exc)) from exc


def heat_boxes(heat: np.ndarray, ink: np.ndarray, threshold: float, region_cut: float = LOW_HEAT
               ) -> list[tuple[np.ndarray, float]]:
    """Boxes (network-input pixels, l t r b exclusive) and confidences from a heat map: connected regions of cells
    above `region_cut` whose peak reaches `threshold`, each tightened to the ink inside it (its cells, grown by one).
    A higher cut keeps a signature apart from a stamp or typed name the map spreads onto (chosen on validation
    documents with the threshold, `sigml.locate_net.write_card`)."""
    regions, n = ndimage.label(heat >= region_cut, structure=np.ones((3, 3)))
    out = []
    if n == 0:
        return out
    peaks = ndimage.maximum(heat, regions, index=np.arange(1, n + 1))
    slices = ndimage.find_objects(regions)
    for i, (peak, sl) in enumerate(zip(peaks, slices), start=1):
        if peak < threshold or sl is None:
            continue
        own = np.array([sl[1].start * 4, sl[0].start * 4, sl[1].stop * 4, sl[0].stop * 4], np.float64)
        sl = tuple(slice(max(0, a.start - 1), min(n_cells, a.stop + 1)) for a, n_cells in zip(sl, heat.shape))
        cells = ndimage.binary_dilation(regions[sl] == i, iterations=1)  # the region grown by one cell
        t4, l4 = sl[0].start, sl[1].start
        pixels = np.kron(cells, np.ones((4, 4), bool))
        t, l = t4 * 4, l4 * 4
        window = ink[t:t + pixels.shape[0], l:l + pixels.shape[1]]
        inside = window & pixels[:window.shape[0], :window.shape[1]]
        if inside.sum() >= MIN_REGION_INK:
            ys, xs = np.nonzero(inside)
            box = np.array([l + xs.min(), t + ys.min(), l + xs.max() + 1, t + ys.max() + 1], np.float64)
        else:  # too little ink to tighten to: the region's own cells
            box = own
        out.append((box, float(peak)))
    out.sort(key=lambda bc: -bc[1])
    return out


def ink_of_input(x: np.ndarray) -> np.ndarray:
    """The ink of a network input (darkness above the ink cut), ruled lines taken out."""
    h, w = x.shape[1:]
    ink, _ = remove_lines(x[0] >= round(0.28 * 255), max(25, int(0.05 * max(h, w))))
    return ink


# ---------------------------------------------------------------- page or crop?

# Chosen on the validation writers' documents and crops (300 documents, 600 real crops): the share of the ink in
# signatures was at most 0.66 on documents and at least 0.77 on crops; the rest covered at least 0.59% of a document's
# input and at most 0.49% of a crop's. `bench/page_check.py` measures both on fresh validation or test writers.
PAGE_MAX_SIGNATURE_SHARE = 0.72  # the network puts less than this share of the ink in signatures ...
PAGE_MIN_OTHER_INK = 0.003  # ... and the rest covers at least this share of the network input: a page


@dataclass(frozen=True)
class PageLook:
    """What the locator saw on an image: the signatures on it, and whether it is a page rather than a crop."""

    found: tuple[LocatedSignature, ...]  # best first
    signature_share: float  # share of the ink in the map's signature regions
    other_ink: float  # the rest of the ink, as a share of the network input's area
    is_page: bool

    @property
    def reason(self) -> str:
        if not self.is_page:
            return ""
        return (f"this looks like a page, not a signature crop: {1 - self.signature_share:.0%} of its ink looks like "
                f"printed text, lines or fields rather than handwriting; "
                + (f"{len(self.found)} signature(s) located on it" if self.found else "no signature was located on it"))

    def to_dict(self) -> dict:
        return {"is_page": self.is_page, "reason": self.reason, "suggested_crops": [s.to_dict() for s in self.found],
                "signature_share": round(self.signature_share, 4), "other_ink": round(self.other_ink, 5)}


def ink_in_signatures(ink: np.ndarray, heat: np.ndarray) -> tuple[float, float]:
    """What the page check reads: the share of the ink in the map's signature regions (cells above LOW_HEAT), and
    the rest of the ink as a share of the input's area."""
    h, w = ink.shape
    cells = np.kron(heat >= LOW_HEAT, np.ones((4, 4), bool))[:h, :w]
    in_signature = np.zeros_like(ink)
    in_signature[:cells.shape[0], :cells.shape[1]] = cells
    n_ink = int(ink.sum())
    share = float((ink & in_signature).sum()) / n_ink if n_ink else 1.0
    return share, float((ink & ~in_signature).sum()) / ink.size


# Region cuts above the card's, for a box the quality gate refuses: on validation writers' documents
# (`bench/auto_crop.py --writers validation`) the boxes refused for taking in a stamp or printed text beside the
# signature passed at 0.8 or 0.9. The tighter boxes are tried only where the gate refuses the card's box, so a box
# that passed before is judged as before.
STRICTER_CUTS = (0.8, 0.9)


def _nested(inner: np.ndarray, outer: np.ndarray) -> bool:
    """Whether box `inner` (l t r b) lies inside box `outer`, but for at most 10% of its area."""
    area = float((inner[2] - inner[0]) * (inner[3] - inner[1]))
    overlap = max(0.0, min(inner[2], outer[2]) - max(inner[0], outer[0])) * max(
        0.0, min(inner[3], outer[3]) - max(inner[1], outer[1]))
    return area > 0 and overlap >= 0.9 * area


def look(source: ImageSource | Image.Image, *, model: Locator | None = None, threshold: float | None = None,
         max_pixels: int = DEFAULT_CONFIG.max_pixels) -> PageLook:
    """The signatures on an image (a page, or a crop), and the page check, from one run of the network."""
    model = model or load_model()
    image = load_image(source, max_pixels)  # a PIL image too: the size guard applies
    x, scale = page_input(image)
    heat = model.heat(x)
    ink = ink_of_input(x)
    threshold = model.threshold if threshold is None else threshold
    stricter = [heat_boxes(heat, ink, threshold, cut) for cut in STRICTER_CUTS if cut > model.region_cut]

    def in_image(box: np.ndarray) -> Box:
        l, t, r, b = (float(v) * scale for v in box)
        return max(0, int(l)), max(0, int(t)), min(image.size[0], math.ceil(r)), min(image.size[1], math.ceil(b))

    found = []
    for box, confidence in heat_boxes(heat, ink, threshold, model.region_cut):
        tighter = []  # per stricter cut, its best box inside this one that is not this one
        for boxes in stricter:
            inside = [in_image(b) for b, _ in boxes if _nested(b, box)]
            if inside and inside[0] != in_image(box) and inside[0] not in tighter:
                tighter.append(inside[0])
        found.append(LocatedSignature(in_image(box), confidence, tuple(tighter)))
    share, other = ink_in_signatures(ink, heat)
    is_page = share < PAGE_MAX_SIGNATURE_SHARE and other >= PAGE_MIN_OTHER_INK
    return PageLook(tuple(found), share, other, is_page)


def locate(source: ImageSource | Image.Image, *, model: Locator | None = None, threshold: float | None = None,
           max_pixels: int = DEFAULT_CONFIG.max_pixels) -> list[LocatedSignature]:
    """The handwritten signatures on a page, best first (an empty list: none found)."""
    return list(look(source, model=model, threshold=threshold, max_pixels=max_pixels).found)


# ---------------------------------------------------------------- a page judged on its signature

SUGGESTED_CROPS = 3  # the located boxes a refused page is answered with, and that `auto_crop` tries


# The warning every signature cut from a page carries (a crop given or located on an image the page check calls a
# page): the rates an answer gives were measured on signature scans, and a signature cut from a captured page is
# judged less reliably (`bench/auto_crop.py`: the true box of a genuine signature on a test document was decided
# forged far more often than a genuine scan is; such an answer is never forged, `decision.on_a_page`).
CUT_FROM_A_PAGE = {"code": "cut_from_a_page", "message": (
    "judged on a signature cut from a page: the error rates in this answer were measured on signature scans, and on "
    "test documents genuine signatures cut from a page scored as forgeries far more often, so this answer is never "
    "forged. Check the box; for a firm answer, compare a clean scan of the signature.")}


@dataclass(frozen=True)
class Judged:
    """What the model will compare (`preprocess_located`): the preprocessed image, the quality gate's warnings, and
    the located box it was cut from instead of the page sent (None: the image as sent, or the crop given)."""

    image: Any  # 1 x H x W: a numpy array (`array=True`) or a tensor
    problems: list  # a box of an image the page check calls a page carries CUT_FROM_A_PAGE among them
    located: LocatedSignature | None = None


def preprocess_located(source: bytes, cfg=DEFAULT_CONFIG, *, formats: Sequence[str] | None = None,
                       crop: tuple[int, int, int, int] | None = None, auto_crop: bool = False,
                       array: bool = False, model: Locator | None = None) -> Judged:
    """`preprocessing.preprocess_checked` of an upload, and the one rule for a page: an uncropped image that the
    locator's page check (`look`) or the quality gate refuses as a page (not as merely too small) raises
    `NotASignatureError` whose `details["suggested_crops"]` holds the located boxes (at most SUGGESTED_CROPS); with
    `auto_crop`, the first of those boxes that passes the gate is judged instead, and returned as `located`.
    Never a decision on the whole page. A crop the caller gives is judged as given (the caller chose it). A box cut
    from an image the page check calls a page, given or located, is warned of (`CUT_FROM_A_PAGE` among its problems):
    the rates measured on scans do not hold for it."""
    image = load_image(source, cfg.max_pixels, formats=formats)  # decoded once, for the locator and every box tried
    seen = look(image, model=model, max_pixels=cfg.max_pixels)
    if crop is not None:
        judged_image, problems = preprocess_checked(image, cfg, crop=crop, array=array)
        return Judged(judged_image, [*problems, CUT_FROM_A_PAGE] if seen.is_page else problems)
    gate_message, gate_problems = "", []  # the gate's refusal, kept as values: an exception kept in a local of
    try:                                  # this frame would be a reference cycle holding the decoded page
        judged = Judged(*preprocess_checked(image, cfg, array=array))
        if not seen.is_page:
            return judged
    except (TooSmallError, BlankImageError):
        if not seen.is_page:  # a small or blank image, not a page: nothing to locate
            raise  # (a page with a small signature on a wide sheet can read as blank as a whole)
    except NotASignatureError as exc:
        gate_message, gate_problems = str(exc), exc.problems
    found = list(seen.found[:SUGGESTED_CROPS])
    for candidate in found if auto_crop else []:
        for box in (candidate.box, *candidate.tighter):
            try:
                judged_image, problems = preprocess_checked(image, cfg, crop=box, array=array)
            except NotASignatureError:
                continue
            return Judged(judged_image, [*problems, CUT_FROM_A_PAGE], LocatedSignature(box, candidate.confidence))
    if seen.is_page:  # the answer names what the page check saw, and what the quality gate saw too
        gate_message = seen.reason + ". " + ADVICE
        gate_problems = [{"code": "page", "message": seen.reason + "."}, *gate_problems]
    raise _refusal(gate_message, gate_problems, found)


def _refusal(message: str, problems: list, found: list[LocatedSignature]) -> NotASignatureError:
    refusal = NotASignatureError(message, problems)
    refusal.details["suggested_crops"] = [f.to_dict() for f in found]
    return refusal
