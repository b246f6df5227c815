"""Find handwritten signatures on a page, a cheque or a form: boxes with a confidence, or none.

`locate(source)` works on a small copy of the page (at most `WORK_SIDE` pixels a side, made by min-pooling
so that thin pen strokes survive, then box-resampling):
1. paper removal that follows uneven light: each pixel is compared with the local paper brightness (a
   max-filter of a coarser copy); ink is what is clearly darker than its paper;
2. ruled lines and box edges (long straight horizontal or vertical runs of ink) are taken out of the ink, so a
   signature written on a line is not one region with the line;
3. candidate regions: the connected components of the ink after closing gaps at three scales (a word, a
   signature with separate strokes, a signature of several words), so a signature near printed text is still
   a candidate of its own at the smallest scale and a signature in pieces is one at a larger one;
4. features of every candidate, computed for all candidates at once from per-pixel maps (`np.bincount` per
   region): size relative to the page and to the page's printed text height, ink density, stroke width and its
   spread, how much of the ink runs straight horizontally, vertically or diagonally, row and column profiles,
   number and size of components, darkness; and the page's own text height and stroke width;
5. a small classifier (standardised features → multilayer perceptron, weights in a JSON file, no pickle;
   `trained_model_parameters/signature_locator.json`, trained by `sigml.locate_train` on `sigml.synthdocs` pages)
   scores each candidate; non-maximum suppression keeps the best of overlapping candidates, and those scoring at
   least the model's threshold are the located signatures.

The located boxes are in the pixels of the (EXIF-rotated) input image.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, Sequence

import numpy as np
from PIL import Image
from scipy import ndimage

from .errors import ImageError, NotASignatureError, TooSmallError
from .preprocessing import DEFAULT_CONFIG, ImageSource, load_image, preprocess_checked

WORK_SIDE = 1024  # the page is judged at most this large
SCALES = (3, 9, 21)  # closing widths (work pixels) that group ink into candidate regions
MIN_REGION_INK = 12  # candidates with less ink (work pixels) are not scored
DEFAULT_MODEL = Path(__file__).resolve().parents[2] / "trained_model_parameters" / "signature_locator.json"

Box = tuple[int, int, int, int]


@dataclass(frozen=True)
class LocatedSignature:
    box: Box  # left, top, right, bottom (exclusive) in input-image pixels
    confidence: float

    def to_dict(self) -> dict:
        return {"box": list(self.box), "confidence": round(self.confidence, 4)}


@dataclass(frozen=True)
class PageAnalysis:
    """What the locator saw: the work-size image, its ink, the candidates and their scores."""

    scale: float  # input pixels per work pixel
    size: tuple[int, int]  # input width, height
    ink: np.ndarray  # work-size ink mask after line removal
    lines: np.ndarray  # work-size mask of removed ruled lines
    boxes: np.ndarray  # n x 4 candidate boxes, work pixels (l, t, r, b exclusive)
    scale_index: np.ndarray  # which of SCALES made each candidate
    ink_count: np.ndarray  # ink pixels of each candidate
    features: np.ndarray  # n x F
    scores: np.ndarray | None = None


# ---------------------------------------------------------------- ink map


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


def page_input(image: Image.Image, side: int = NET_SIDE) -> tuple[np.ndarray, float]:
    """The locator network's input (2 x H x W uint8: darkness against the local paper, and colour saturation, both
    scaled to 0-255; at most `side` pixels a side) and its scale (input-image pixels per network pixel). The one
    function that makes it, for training pages and served pages alike."""
    gray, scale = work_gray(image, side)
    paper = local_paper(gray)
    darkness = (paper - gray) / np.maximum(paper, 1.0)
    if image.mode not in ("1", "L", "I", "I;16", "F"):  # colour: an uploaded PNG is often RGBA or P
        if image.mode in ("RGBA", "LA", "PA") or "transparency" in image.info:  # transparent is paper, not black
            paper = Image.new("RGBA", image.size, (255, 255, 255, 255))
            image = Image.alpha_composite(paper, image.convert("RGBA"))
        rgb = np.asarray(image.convert("RGB"))
        saturation = (rgb.max(axis=2) - rgb.min(axis=2)).astype(np.uint8)
        saturation, _ = _pool_resize(saturation, side, np.maximum)
    else:
        saturation = np.zeros(gray.shape, np.uint8)
    return np.stack([np.clip(darkness * 255.0 + 0.5, 0, 255).astype(np.uint8), saturation]), scale


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


# ---------------------------------------------------------------- candidates and features

FEATURE_NAMES: tuple[str, ...] = (
    "scale", "h_rel_text", "w_rel_text", "h_rel_page", "w_rel_page", "log_aspect", "fill", "ink_rel_page",
    "stroke", "stroke_rel_page", "eroded_frac", "horiz_frac", "vert_frac", "diag_frac", "end_frac",
    "n_comp_log", "largest_comp_frac", "comp_h_rel_text", "dark_mean", "dark_std", "rows_empty", "cols_empty",
    "row_p0", "row_p1", "row_p2", "row_p3", "row_p4", "row_p5", "col_cv", "text_h", "page_stroke", "page_ink",
    "n_regions_log", "neighbours", "line_below",
)
ROW_BINS = 6


def analyse(source: ImageSource | Image.Image, *, max_pixels: int = DEFAULT_CONFIG.max_pixels) -> PageAnalysis:
    """Candidates and features of a page (no scoring)."""
    image = load_image(source, max_pixels)  # a PIL image too: the size guard applies
    size = image.size
    gray, scale = work_gray(image)
    mask, darkness = ink_mask(gray)
    h, w = mask.shape
    line_len = max(25, int(0.05 * max(h, w)))
    ink, lines = remove_lines(mask, line_len)
    return _candidates(ink, lines, darkness, scale, size)


def _candidates(ink: np.ndarray, lines: np.ndarray, darkness: np.ndarray, scale: float, size: tuple[int, int]) -> PageAnalysis:
    h, w = ink.shape
    empty = PageAnalysis(scale, size, ink, lines, np.zeros((0, 4), int), np.zeros(0, int), np.zeros(0, int),
                         np.zeros((0, len(FEATURE_NAMES)), np.float32))
    # base components (8-connected); specks of under 3 pixels are dropped
    comp, n_comp = ndimage.label(ink, structure=np.ones((3, 3)))
    comp_size = np.bincount(comp.ravel(), minlength=n_comp + 1)
    comp_size[0] = 0
    ink = (comp_size >= 3)[comp]
    ys, xs = np.nonzero(ink)
    n_ink = ys.size
    if n_ink < MIN_REGION_INK:
        return PageAnalysis(**{**empty.__dict__, "ink": ink})
    # per-pixel maps, read at the ink pixels
    pad = np.pad(ink, 1)
    left, right = pad[1:-1, :-2][ys, xs], pad[1:-1, 2:][ys, xs]
    up, down = pad[:-2, 1:-1][ys, xs], pad[2:, 1:-1][ys, xs]
    ul, dr = pad[:-2, :-2][ys, xs], pad[2:, 2:][ys, xs]
    ur, dl = pad[:-2, 2:][ys, xs], pad[2:, :-2][ys, xs]
    n4 = left.astype(np.int8) + right + up + down
    n8 = n4 + ul + dr + ur + dl
    boundary = n4 < 4
    horiz = left & right & ~up & ~down
    vert = up & down & ~left & ~right
    diag = ((ul & dr) | (ur & dl)) & ~(left & right) & ~(up & down)
    ends = n8 <= 1
    eroded = ndimage.binary_erosion(ink)[ys, xs]
    dark = darkness[ys, xs]
    # the page's text height (median component height) and stroke width
    comp_px = comp[ys, xs]
    present = np.flatnonzero(comp_size >= 3)
    c_top = np.full(n_comp + 1, h, np.int64); np.minimum.at(c_top, comp_px, ys)
    c_bot = np.zeros(n_comp + 1, np.int64); np.maximum.at(c_bot, comp_px, ys)
    comp_h = (c_bot - c_top + 1)[present].astype(np.float32)
    comp_size = comp_size[present].astype(np.float32)
    plausible = comp_h[(comp_h >= 3) & (comp_size >= 6)]
    text_h = float(np.median(plausible)) if plausible.size else 8.0
    page_stroke = 2.0 * n_ink / max(1, int(boundary.sum()))
    first = np.zeros(n_comp + 1, np.int64)  # one pixel index of every component
    first[comp_px[::-1]] = np.arange(n_ink)[::-1]
    comp_first = first[present]

    all_boxes, all_feats, all_scale, all_count = [], [], [], []
    for si, s in enumerate(SCALES):
        closed = ndimage.maximum_filter(ink.view(np.uint8), size=(max(1, s // 2), s), mode="constant") > 0
        labels, n = ndimage.label(closed)
        if n == 0:
            continue
        lab = labels[ys, xs]
        count = np.bincount(lab, minlength=n + 1).astype(np.float64)
        # tight ink boxes (the closing grows regions)
        top = np.full(n + 1, h, np.int64); np.minimum.at(top, lab, ys)
        bottom = np.zeros(n + 1, np.int64); np.maximum.at(bottom, lab, ys)
        lft = np.full(n + 1, w, np.int64); np.minimum.at(lft, lab, xs)
        rgt = np.zeros(n + 1, np.int64); np.maximum.at(rgt, lab, xs)
        keep = np.flatnonzero(count >= MIN_REGION_INK)
        keep = keep[keep > 0]
        if keep.size == 0:
            continue
        bh = (bottom - top + 1).astype(np.float64)
        bw = (rgt - lft + 1).astype(np.float64)

        def per(values: np.ndarray) -> np.ndarray:
            return np.bincount(lab, weights=values.astype(np.float64), minlength=n + 1)

        c = np.maximum(count, 1)
        n_boundary = per(boundary)
        stroke = 2.0 * count / np.maximum(n_boundary, 1)
        dark_sum, dark_sq = per(dark), per(dark.astype(np.float64) ** 2)
        dark_mean = dark_sum / c
        dark_std = np.sqrt(np.maximum(dark_sq / c - dark_mean ** 2, 0))
        # components per region and the largest one's share
        comp_region = lab[comp_first]
        n_comps = np.bincount(comp_region, minlength=n + 1).astype(np.float64)
        largest = np.zeros(n + 1); np.maximum.at(largest, comp_region, comp_size)
        comp_hsum = np.bincount(comp_region, weights=comp_h, minlength=n + 1)
        # row profile in ROW_BINS bands of each box, rows and columns without ink
        rel = ((ys - top[lab]) * ROW_BINS // np.maximum(bh[lab], 1)).astype(np.int64)
        rows_prof = np.bincount(lab * ROW_BINS + np.minimum(rel, ROW_BINS - 1), minlength=(n + 1) * ROW_BINS)
        rows_prof = rows_prof.reshape(n + 1, ROW_BINS) / c[:, None]
        rows_used = np.bincount(np.unique(lab.astype(np.int64) * h + ys) // h, minlength=n + 1)
        col_keys, col_counts = np.unique(lab.astype(np.int64) * w + xs, return_counts=True)
        col_lab = col_keys // w
        cols_used = np.bincount(col_lab, minlength=n + 1)
        col_mean = count / np.maximum(cols_used, 1)
        col_sq = np.bincount(col_lab, weights=col_counts.astype(np.float64) ** 2, minlength=n + 1)
        col_cv = np.sqrt(np.maximum(col_sq / np.maximum(cols_used, 1) - col_mean ** 2, 0)) / np.maximum(col_mean, 1)
        # neighbours on the same text line: other regions whose vertical centre is within this box's rows
        k = keep
        cy = (top[k] + bottom[k]) / 2.0
        order = np.argsort(cy)
        cy_sorted = cy[order]
        lo = np.searchsorted(cy_sorted, top[k], side="left")
        hi = np.searchsorted(cy_sorted, bottom[k], side="right")
        neighbours = (hi - lo - 1).astype(np.float64)
        # a ruled line just below the box (a signature line)
        line_rows = lines.any(axis=1)
        below = np.zeros(k.size)
        if line_rows.any():
            ii = np.flatnonzero(line_rows)
            pos = np.searchsorted(ii, bottom[k] - bh[k] * 0.5)
            nxt = np.where(pos < ii.size, ii[np.minimum(pos, ii.size - 1)], 10 ** 6)
            below = ((nxt - bottom[k]) < bh[k] * 0.6).astype(np.float64)
        feats = np.column_stack([
            np.full(k.size, si, np.float64),
            bh[k] / text_h, bw[k] / text_h, bh[k] / h, bw[k] / w, np.log(bw[k] / bh[k]), count[k] / (bh[k] * bw[k]),
            count[k] / n_ink, stroke[k], stroke[k] / page_stroke, per(eroded)[k] / c[k], per(horiz)[k] / c[k],
            per(vert)[k] / c[k], per(diag)[k] / c[k], per(ends)[k] / c[k], np.log1p(n_comps[k]),
            largest[k] / c[k], comp_hsum[k] / np.maximum(n_comps[k], 1) / text_h, dark_mean[k], dark_std[k],
            1 - rows_used[k] / bh[k], 1 - cols_used[k] / bw[k], *rows_prof[k].T, col_cv[k],
            np.full(k.size, text_h), np.full(k.size, page_stroke), np.full(k.size, n_ink / (h * w)),
            np.full(k.size, math.log1p(k.size)), np.log1p(neighbours), below,
        ])
        all_feats.append(feats)
        all_boxes.append(np.column_stack([lft[k], top[k], rgt[k] + 1, bottom[k] + 1]))
        all_scale.append(np.full(k.size, si))
        all_count.append(count[k].astype(int))
    if not all_feats:
        return empty
    return PageAnalysis(scale, size, ink, lines, np.concatenate(all_boxes), np.concatenate(all_scale),
                        np.concatenate(all_count), np.concatenate(all_feats).astype(np.float32))


# ---------------------------------------------------------------- model


@dataclass(frozen=True)
class LocatorModel:
    """Standardisation, an MLP's layers (ReLU hidden, logistic output), the decision threshold; JSON, no pickle."""

    mean: np.ndarray
    std: np.ndarray
    weights: tuple[np.ndarray, ...]
    biases: tuple[np.ndarray, ...]
    threshold: float
    card: dict

    def score(self, features: np.ndarray) -> np.ndarray:
        x = (np.asarray(features, np.float64) - self.mean) / self.std
        for i, (wt, b) in enumerate(zip(self.weights, self.biases)):
            x = x @ wt + b
            if i < len(self.weights) - 1:
                x = np.maximum(x, 0)
        return 1.0 / (1.0 + np.exp(-np.clip(x[:, 0], -50, 50)))

    def to_json(self) -> dict:
        return {
            "format": "sigml.locate/mlp-v1", "features": list(FEATURE_NAMES), "threshold": self.threshold,
            "mean": self.mean.tolist(), "std": self.std.tolist(),
            "weights": [w.round(6).tolist() for w in self.weights], "biases": [b.round(6).tolist() for b in self.biases],
            "card": self.card,
        }

    @classmethod
    def from_json(cls, data: dict) -> "LocatorModel":
        if data.get("format") != "sigml.locate/mlp-v1" or list(data.get("features", [])) != list(FEATURE_NAMES):
            raise ValueError("not a signature-locator model of this version (format or feature list differ)")
        return cls(np.array(data["mean"]), np.array(data["std"]), tuple(np.array(w) for w in data["weights"]),
                   tuple(np.array(b) for b in data["biases"]), float(data["threshold"]), data.get("card", {}))

    def save(self, path: str | Path) -> None:
        Path(path).write_text(json.dumps(self.to_json(), separators=(",", ":")) + "\n")


@lru_cache(maxsize=4)
def load_model(path: str | Path = DEFAULT_MODEL) -> LocatorModel:
    """The locator's classifier (cached: loaded once per process)."""
    from .errors import ModelLoadError

    try:
        return LocatorModel.from_json(json.loads(Path(path).read_text()))
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ModelLoadError(path, str(exc)) from exc


# ---------------------------------------------------------------- locating


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


def _suppress(boxes: np.ndarray, scores: np.ndarray, threshold: float) -> list[int]:
    """Best-first: keep a candidate unless it overlaps a kept one (IoU > 0.2, or mostly inside it / around it)."""
    kept: list[int] = []
    for i in np.argsort(-scores, kind="stable"):
        if scores[i] < threshold:
            break
        if kept:
            k = boxes[kept]
            iw = np.clip(np.minimum(k[:, 2], boxes[i, 2]) - np.maximum(k[:, 0], boxes[i, 0]), 0, None)
            ih = np.clip(np.minimum(k[:, 3], boxes[i, 3]) - np.maximum(k[:, 1], boxes[i, 1]), 0, None)
            inter = iw * ih
            area_i = (boxes[i, 2] - boxes[i, 0]) * (boxes[i, 3] - boxes[i, 1])
            area_k = (k[:, 2] - k[:, 0]) * (k[:, 3] - k[:, 1])
            if np.any(inter / np.maximum(np.minimum(area_i, area_k), 1) > 0.5):
                continue
        kept.append(int(i))
    return kept


def to_input_box(box: Sequence[float], analysis: PageAnalysis, pad: float = 0.0) -> Box:
    l, t, r, b = (float(v) * analysis.scale for v in box)
    p = pad * max(r - l, b - t)
    w, h = analysis.size
    return (max(0, int(l - p)), max(0, int(t - p)), min(w, int(math.ceil(r + p))), min(h, int(math.ceil(b + p))))


def locate(source: ImageSource | Image.Image, *, model: LocatorModel | None = None, threshold: float | None = None,
           max_pixels: int = DEFAULT_CONFIG.max_pixels) -> list[LocatedSignature]:
    """The handwritten signatures on a page, best first (an empty list: none found)."""
    found, _ = locate_with_analysis(source, model=model, threshold=threshold, max_pixels=max_pixels)
    return found


def locate_with_analysis(source: ImageSource | Image.Image, *, model: LocatorModel | None = None,
                         threshold: float | None = None, max_pixels: int = DEFAULT_CONFIG.max_pixels
                         ) -> tuple[list[LocatedSignature], PageAnalysis]:
    model = model or load_model()
    analysis = analyse(source, max_pixels=max_pixels)
    if analysis.features.shape[0] == 0:
        return [], analysis
    scores = model.score(analysis.features)
    analysis = PageAnalysis(**{**analysis.__dict__, "scores": scores})
    cut = model.threshold if threshold is None else threshold
    kept = _suppress(analysis.boxes, scores, cut)
    return [LocatedSignature(to_input_box(analysis.boxes[i], analysis), float(scores[i])) for i in kept], analysis


# ---------------------------------------------------------------- the network locator

DEFAULT_NET = Path(__file__).resolve().parents[2] / "trained_model_parameters" / "signature_locator_net.json"


@lru_cache(maxsize=4)
def _onnx_session(path: str):
    import onnxruntime as ort

    from .embedders import session_options

    return ort.InferenceSession(path, sess_options=session_options(low_memory=True), providers=["CPUExecutionProvider"])


def run_onnx(path: str | Path, x: np.ndarray) -> np.ndarray:
    """The locator network's logits (N x 1 x H/4 x W/4) for inputs N x 2 x H x W in [0, 1], on ONNX Runtime."""
    session = _onnx_session(str(path))
    return session.run(None, {session.get_inputs()[0].name: np.ascontiguousarray(x, np.float32)})[0]


@dataclass(frozen=True)
class NetLocator:
    """The network locator: its ONNX file, the map threshold that makes a box, and its card (how it was trained
    and measured). Stored as JSON beside the ONNX file, whose SHA-256 it holds (a mismatch is refused)."""

    onnx: Path
    threshold: float
    card: dict

    def heat(self, x: np.ndarray) -> np.ndarray:
        """Probability per 4 x 4 cell of the input that it lies in a signature's box."""
        logits = run_onnx(self.onnx, (x[None].astype(np.float32) / 255.0))[0, 0]
        return 1.0 / (1.0 + np.exp(-np.clip(logits, -50, 50)))


@lru_cache(maxsize=4)
def load_net(path: str | Path = DEFAULT_NET) -> NetLocator:
    from .errors import ModelLoadError
    from .modelcard import file_sha256

    try:
        data = json.loads(Path(path).read_text())
        if data.get("format") != "sigml.locate/net-v1":
            raise ValueError("not a network-locator card of this version")
        onnx = Path(path).resolve().parent / data["onnx"]["file"]
        if file_sha256(onnx) != data["onnx"]["sha256"]:
            raise ValueError(f"{onnx.name} is not the file this card was written for (SHA-256 differs)")
        return NetLocator(onnx, float(data["threshold"]), data.get("card", {}))
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ModelLoadError(path, str(exc)) from exc


LOW_HEAT = 0.3  # a located region spans the cells above this around a peak above the threshold


def heat_boxes(heat: np.ndarray, ink: np.ndarray, threshold: float) -> list[tuple[np.ndarray, float]]:
    """Boxes (network-input pixels, l t r b exclusive) and confidences from a heat map: connected regions of cells
    above LOW_HEAT whose peak reaches `threshold`, each tightened to the ink inside it (its cells, grown by one)."""
    regions, n = ndimage.label(heat >= LOW_HEAT, structure=np.ones((3, 3)))
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


def input_boxes(x: np.ndarray, heat: np.ndarray, threshold: float) -> list[tuple[np.ndarray, float]]:
    """`heat_boxes` on the network input's ink (darkness above the ink cut, ruled lines taken out)."""
    h, w = x.shape[1:]
    ink, _ = remove_lines(x[0] >= round(0.28 * 255), max(25, int(0.05 * max(h, w))))
    return heat_boxes(heat, ink, threshold)


def locate_net(source: ImageSource | Image.Image, *, net: NetLocator | None = None, threshold: float | None = None,
               max_pixels: int = DEFAULT_CONFIG.max_pixels) -> list[LocatedSignature]:
    """The handwritten signatures on a page found by the network locator, best first."""
    net = net or load_net()
    image = load_image(source, max_pixels)
    x, scale = page_input(image)
    found = []
    for box, conf in input_boxes(x, net.heat(x), net.threshold if threshold is None else threshold):
        l, t, r, b = (float(v) * scale for v in box)
        found.append(LocatedSignature((max(0, int(l)), max(0, int(t)), min(image.size[0], int(math.ceil(r))),
                                       min(image.size[1], int(math.ceil(b)))), conf))
    return found


# ---------------------------------------------------------------- a page judged on its signature

SUGGESTED_CROPS = 3  # the located boxes a refused page is answered with, and that `auto_crop` tries


@dataclass(frozen=True)
class Judged:
    """What the model will compare (`preprocess_located`): the preprocessed image, the quality gate's warnings, and
    the located box it was cut from instead of the page sent (None: the image as sent, or the crop given)."""

    image: Any  # 1 x H x W: a numpy array (`array=True`) or a tensor
    problems: list
    located: LocatedSignature | None = None


def preprocess_located(source: bytes, cfg=DEFAULT_CONFIG, *, formats: Sequence[str] | None = None,
                       crop: tuple[int, int, int, int] | None = None, auto_crop: bool = False,
                       array: bool = False, model: LocatorModel | None = None) -> Judged:
    """`preprocessing.preprocess_checked` of an upload, and the one rule for a page: an uncropped image the quality
    gate refuses as a page (not as merely too small) raises `NotASignatureError` whose `details["suggested_crops"]`
    holds the locator's best boxes (at most SUGGESTED_CROPS); with `auto_crop`, the first of those boxes that passes
    the gate is judged instead, and returned as `located`. Never a decision on the whole page."""
    try:
        return Judged(*preprocess_checked(source, cfg, formats=formats, crop=crop, array=array))
    except NotASignatureError as exc:
        if crop is not None or isinstance(exc, TooSmallError):  # not a page: nothing to locate
            raise
        # the page decoded once more, for the locator and every box tried (not once per box)
        page = load_image(source, cfg.max_pixels, formats=formats)
        try:
            found = locate(page, model=model, max_pixels=cfg.max_pixels)[:SUGGESTED_CROPS]
        except ImageError:
            found = []
        for candidate in found if auto_crop else []:
            try:
                image, problems = preprocess_checked(page, cfg, crop=candidate.box, array=array)
            except NotASignatureError:
                continue
            return Judged(image, problems, candidate)
        exc.details["suggested_crops"] = [f.to_dict() for f in found]
        raise


# ---------------------------------------------------------------- page or crop?

PAGE_MIN_OTHER_REGIONS = 6  # this many regions of ink that is not a signature (printed words, lines of text) ...
PAGE_MIN_OTHER_INK = 0.25  # ... holding this share of the ink ...
PAGE_MIN_TEXT_LINES = 4  # ... and word-sized regions in at least this many rows of three or more: a page, not a crop
OTHER_SCORE = 0.2  # a region scoring below this is "not a signature"


@dataclass(frozen=True)
class CropCheck:
    """Is an image a signature crop the verifier can judge, or a page with signatures (and other things) on it?"""

    is_page: bool
    reason: str  # "" when it is a crop; else a sentence saying what was seen
    suggested_crops: tuple[LocatedSignature, ...]  # the located signatures, best first
    other_regions: int  # regions of ink that do not look like a signature
    other_ink_fraction: float  # their share of the ink

    def to_dict(self) -> dict:
        return {"is_page": self.is_page, "reason": self.reason,
                "suggested_crops": [s.to_dict() for s in self.suggested_crops],
                "other_regions": self.other_regions, "other_ink_fraction": round(self.other_ink_fraction, 4)}


def check_crop(source: ImageSource | Image.Image, *, model: LocatorModel | None = None,
               max_pixels: int = DEFAULT_CONFIG.max_pixels) -> CropCheck:
    """A page (printed text, form fields and the like beside the signature) or a signature crop?

    The ink is grouped into word-sized regions (the middle of `SCALES`); regions that score as "not a signature"
    and lie outside every located signature are the page's other content. Many of them, holding a good share of
    the ink, make the image a page; its located signatures are the crops to suggest."""
    found, analysis = locate_with_analysis(source, model=model, max_pixels=max_pixels)
    if analysis.scores is None:
        return CropCheck(False, "", tuple(found), 0, 0.0)
    other = (analysis.scale_index == 1) & (analysis.scores < OTHER_SCORE)
    if found:
        work_boxes = np.array([[v / analysis.scale for v in s.box] for s in found])
        other &= ~_inside(analysis.boxes, work_boxes)
    total = int(analysis.ink.sum()) + int(analysis.lines.sum())
    other_ink = (int(analysis.ink_count[other].sum()) + int(analysis.lines.sum())) / max(total, 1)
    n_other = int(other.sum())
    words = (analysis.scale_index == 0) & (analysis.scores < OTHER_SCORE)
    if found:
        words &= ~_inside(analysis.boxes, work_boxes)
    rows = _text_rows(analysis.boxes[words])
    is_page = n_other >= PAGE_MIN_OTHER_REGIONS and other_ink >= PAGE_MIN_OTHER_INK and rows >= PAGE_MIN_TEXT_LINES
    reason = ""
    if is_page:
        reason = (f"this looks like a page, not a signature crop: {rows} lines of printed text ({n_other} regions "
                  f"holding {other_ink:.0%} of the ink)" + (f"; {len(found)} signature(s) located on it" if found
                                                              else "; no signature was located on it"))
    return CropCheck(is_page, reason, tuple(found), n_other, other_ink)


def _text_rows(boxes: np.ndarray) -> int:
    """Rows of at least three regions whose vertical centres lie within half a region height of the next."""
    if len(boxes) < 3:
        return 0
    centre = np.sort((boxes[:, 1] + boxes[:, 3]) / 2.0)
    gap = 0.5 * float(np.median(boxes[:, 3] - boxes[:, 1]))
    groups = np.split(centre, np.flatnonzero(np.diff(centre) > gap) + 1)
    return sum(len(g) >= 3 for g in groups)


def _inside(b: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    """Which of boxes `b` lie mostly (over half their area) inside one of `boxes`."""
    iw = np.clip(np.minimum(b[:, None, 2], boxes[None, :, 2]) - np.maximum(b[:, None, 0], boxes[None, :, 0]), 0, None)
    ih = np.clip(np.minimum(b[:, None, 3], boxes[None, :, 3]) - np.maximum(b[:, None, 1], boxes[None, :, 1]), 0, None)
    return (iw * ih).max(axis=1) / np.maximum((b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1]), 1) > 0.5
