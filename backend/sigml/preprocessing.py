"""The one preprocessing function used by training, evaluation, the CLI and the API.

`preprocess(source, cfg)` turns any PIL-readable input into a 1 x H x W float tensor with the
ink bright (up to 1.0) on an exact-zero background; `preprocess_array` is the same as an H x W float32 numpy
array, which `preprocess` wraps for torch: serving (ONNX Runtime) uses it and never imports torch (this module
imports torch only inside the functions that return tensors):

1. load safely (size guard against decompression bombs, first frame of multi-page files,
   EXIF orientation, transparency composited on white, 16-bit and float modes rescaled);
2. grayscale in [0, 1] (1 = white paper);
3. remove the paper background with Otsu's threshold: everything that is not ink becomes 0;
4. normalise the ink intensity (so scanner/paper darkness differences, e.g. CEDAR's darker
   genuine scans, carry no signal), drop isolated specks;
5. crop to the ink's bounding box, fit it to the canvas (keeping the aspect ratio, or stretched to fill
   it with `fit="stretch"`), centre it.
"""

from __future__ import annotations

import io
import struct
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import IO, TYPE_CHECKING, Literal, Sequence, Union, get_args

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError
from scipy import ndimage

from .errors import (BlankImageError, CropError, ImageTooLargeError, NotASignatureError, TooSmallError,
                     UnreadableImageError)

if TYPE_CHECKING:
    import torch

ImageSource = Union[str, os.PathLike, bytes, bytearray, IO[bytes], Image.Image, np.ndarray]

InkMode = Literal["binary", "normalized", "gray"]
FitMode = Literal["aspect", "stretch"]


@dataclass(frozen=True)
class PreprocessConfig:
    """Everything that decides what the network sees; stored in the model card."""

    canvas_height: int = 150
    canvas_width: int = 220
    margin: int = 3  # pixels of empty border kept around the ink on the canvas
    ink: InkMode = "normalized"  # how ink pixels are valued after background removal
    min_component_fraction: float = 2e-5  # specks smaller than this share of the image are dropped
    min_ink_fraction: float = 5e-4  # less ink than this share of the image: blank
    min_contrast: float = 0.12  # ink must be this much darker than the paper (gray levels in [0,1])
    max_pixels: int = 40_000_000  # larger images are refused before decoding
    # "aspect": the ink box keeps its shape; "stretch": it fills the canvas, so a wide Latin signature and
    # a squashed 256x256 scan of one give the network the same shape.
    fit: FitMode = "aspect"

    def __post_init__(self) -> None:
        if self.ink not in get_args(InkMode):
            raise ValueError(f"unknown ink mode {self.ink!r}: expected one of {', '.join(get_args(InkMode))}")
        if self.fit not in get_args(FitMode):
            raise ValueError(f"unknown fit mode {self.fit!r}: expected one of {', '.join(get_args(FitMode))}")

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "PreprocessConfig":
        known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        return cls(**known)


DEFAULT_CONFIG = PreprocessConfig()


_PILLOW_DECODER_ERRORS = (TypeError, KeyError, IndexError, struct.error, NotImplementedError, ZeroDivisionError, AttributeError)

# A baseline JPEG has one scan per component (at most 4), libjpeg's progressive scripts 10 and mozjpeg's
# some 20. libjpeg decodes every scan over the whole image (about 4.5 ms each at 40 MP), so a few hundred
# KB of empty refinement scans cost minutes of CPU: more scans than this are refused before decoding.
MAX_JPEG_SCANS = 100


def jpeg_scan_count(data: bytes, stop_after: int | None = None) -> int:
    """The number of scans (SOS markers) libjpeg would decode in JPEG `data`, without decoding: walks
    the marker segments, skipping each segment by its length (an SOS byte pair inside APPn or COM data
    is not a scan) and each scan's entropy-coded data up to the next marker, as libjpeg does (stuffed
    0xFF00 and RSTn markers belong to the scan, garbage between markers is skipped); stops at EOI, or
    once `stop_after` is passed. Linear in the file size."""
    count, i, n = 0, 2, len(data)
    while True:
        i = data.find(b"\xff", i)
        if i < 0 or i + 1 >= n:
            return count
        marker = data[i + 1]
        if marker == 0xFF:  # fill byte
            i += 1
            continue
        i += 2
        if marker == 0xD9:  # EOI
            return count
        if marker in (0x00, 0x01, 0xD8) or 0xD0 <= marker <= 0xD7:  # stuffing, TEM, SOI, RSTn: no length
            continue
        if i + 2 > n:
            return count
        if marker == 0xDA:
            count += 1
            if stop_after is not None and count > stop_after:
                return count
        i += int.from_bytes(data[i : i + 2], "big")


@dataclass(frozen=True)
class ImageHeader:
    """What an image's header says, checked (`read_header`): the format that identified it, and its size."""

    format: str
    width: int
    height: int


def _stream_of(source: ImageSource) -> IO[bytes]:
    if isinstance(source, (bytes, bytearray)):
        if len(source) == 0:
            raise UnreadableImageError("the file is empty (zero bytes)")
        return io.BytesIO(bytes(source))
    if isinstance(source, (str, os.PathLike)):
        path = Path(source)
        if not path.is_file():
            raise UnreadableImageError(f"no such image file: {path}")
        if path.stat().st_size == 0:
            raise UnreadableImageError(f"the file is empty (zero bytes): {path}")
        return io.BytesIO(path.read_bytes())
    return io.BytesIO(source.read())  # type: ignore[union-attr]


def _open_checked(stream: IO[bytes], max_pixels: int, *, formats: Sequence[str] | None, max_jpeg_scans: int,
                  max_aspect_ratio: float | None) -> Image.Image:
    """The image's header, read and checked before any pixel is decoded: a format `formats` allows, at most
    `max_pixels` pixels and `max_aspect_ratio` : 1, a JPEG of at most `max_jpeg_scans` scans."""
    try:
        image = Image.open(stream, formats=formats)
    except UnidentifiedImageError as exc:
        raise UnreadableImageError("not an image, or an image format that cannot be read") from exc
    except Image.DecompressionBombError as exc:
        raise ImageTooLargeError(f"image dimensions exceed the limit of {max_pixels} pixels",
                                 {"max_pixels": max_pixels}) from exc
    except (OSError, ValueError, SyntaxError, EOFError, *_PILLOW_DECODER_ERRORS) as exc:
        # Pillow's plugins let TypeError/IndexError/... escape on some corrupt files: all mean "unreadable".
        raise UnreadableImageError(f"the image cannot be read: {type(exc).__name__}") from exc
    _check_size(image.size, max_pixels)
    if max_aspect_ratio is not None:
        width, height = image.size
        if max(width, height) > max_aspect_ratio * min(width, height):
            raise ImageTooLargeError(f"the image is {width}x{height} pixels; a signature is at most "
                                     f"{max_aspect_ratio:g} times wider than high (or higher than wide)",
                                     {"max_aspect_ratio": max_aspect_ratio})
    if image.format in ("JPEG", "MPO"):
        scans = jpeg_scan_count(stream.getvalue(), stop_after=max_jpeg_scans)  # type: ignore[attr-defined]
        if scans > max_jpeg_scans:
            raise ImageTooLargeError(f"the JPEG has more than {max_jpeg_scans} scans (progressive refinements); "
                                     "decoding it would take far too long", {"max_jpeg_scans": max_jpeg_scans})
    return image


def read_header(source: ImageSource, max_pixels: int = DEFAULT_CONFIG.max_pixels, *,
                formats: Sequence[str] | None = None, max_jpeg_scans: int = MAX_JPEG_SCANS,
                max_aspect_ratio: float | None = None) -> ImageHeader:
    """The checks of `load_image` on the header alone (nothing is decoded): what a server runs when an upload
    arrives, to refuse it and to size its decode before spending memory on it. A phone's multi-picture JPEG
    (MPO) is a JPEG whose first picture is the photo, and is reported as one."""
    with _open_checked(_stream_of(source), max_pixels, formats=formats, max_jpeg_scans=max_jpeg_scans,
                       max_aspect_ratio=max_aspect_ratio) as image:
        fmt, (width, height) = image.format, image.size
    return ImageHeader(format="JPEG" if fmt == "MPO" else str(fmt), width=width, height=height)


def load_image(source: ImageSource, max_pixels: int = DEFAULT_CONFIG.max_pixels, *,
               formats: Sequence[str] | None = None, max_jpeg_scans: int = MAX_JPEG_SCANS) -> Image.Image:
    """Open `source` as a decoded PIL image, refusing broken and oversized inputs clearly: the one place
    where an image is opened, checked (`read_header`'s checks) and decoded.

    `formats` restricts the decoders Pillow may use (the API passes exactly the format it accepted, so
    a file is never decoded by another plugin than the one that identified it); JPEGs with more than
    `max_jpeg_scans` scans are refused before decoding."""
    if isinstance(source, Image.Image):
        image = source
        _check_size(image.size, max_pixels)
        return image
    if isinstance(source, np.ndarray):
        return Image.fromarray(source)
    image = _open_checked(_stream_of(source), max_pixels, formats=formats, max_jpeg_scans=max_jpeg_scans,
                          max_aspect_ratio=None)
    try:
        # Multi-page TIFF / animated GIF: the first page is the signature, and Image.open leaves the file on
        # it. Never ask for n_frames or is_animated: counting walks every page (90,000 chained 1x1 TIFF
        # pages took 48 s, quadratic in the page count).
        image.load()
        ImageOps.exif_transpose(image, in_place=True)  # in place: not a second copy of every pixel
    except Image.DecompressionBombError as exc:
        raise ImageTooLargeError(f"image dimensions exceed the limit of {max_pixels} pixels",
                                 {"max_pixels": max_pixels}) from exc
    except (OSError, ValueError, SyntaxError, EOFError, *_PILLOW_DECODER_ERRORS) as exc:
        raise UnreadableImageError(f"the image is truncated or corrupt: {type(exc).__name__}") from exc
    return image


def _check_size(size: tuple[int, int], max_pixels: int) -> None:
    width, height = size
    if width <= 0 or height <= 0:
        raise UnreadableImageError("the image has no pixels")
    if width * height > max_pixels:
        raise ImageTooLargeError(
            f"image is {width}x{height} pixels; at most {max_pixels} pixels are accepted", {"max_pixels": max_pixels}
        )


def to_grayscale(image: Image.Image) -> np.ndarray:
    """Grayscale float32 array in [0, 1], 1 = white paper; transparency becomes paper."""
    gray = _grayscale_8bit(image)
    return gray if isinstance(gray, np.ndarray) else np.asarray(gray, dtype=np.float32) / 255.0


def _grayscale_8bit(image: Image.Image) -> Image.Image | np.ndarray:
    """The "L" image of `to_grayscale`, or already its float array for 16-bit, 32-bit and float modes."""
    mode = image.mode
    if mode in ("I;16", "I;16B", "I;16L", "I;16N", "I", "F"):
        arr = np.asarray(image, dtype=np.float32)
        finite = np.isfinite(arr)
        if not finite.all():  # NaN/inf pixels of float images are paper, and must not set the range
            arr = np.where(finite, arr, np.float32(arr[finite].max()) if finite.any() else np.float32(1.0))
        lo, hi = float(arr.min()), float(arr.max())
        if mode.startswith("I;16"):
            lo, hi = 0.0, 65535.0
        elif hi - lo < 1e-12:
            return np.ones(arr.shape, dtype=np.float32)
        return np.clip((arr - lo) / (hi - lo), 0.0, 1.0)
    if mode == "P":
        image = image.convert("RGBA")
    elif mode in ("La", "RGBa"):  # premultiplied (TIFF "associated") alpha: Pillow cannot make "L" of "La"
        image = image.convert(mode.upper())
    elif mode in ("1", "CMYK", "YCbCr", "LAB", "HSV", "RGBX"):
        image = image.convert("RGB")
    if image.mode in ("RGBA", "LA", "PA") or "transparency" in image.info:
        rgba = image if image.mode == "RGBA" and "transparency" not in image.info else image.convert("RGBA")
        image = Image.new("RGBA", rgba.size, (255, 255, 255, 255))  # white paper under it
        image.alpha_composite(rgba)
        del rgba
    try:
        return image.convert("L")
    except ValueError as exc:  # a pixel mode Pillow cannot convert: unreadable, never a 500
        raise UnreadableImageError(f"images of pixel mode {mode!r} cannot be read") from exc


# The gray levels `to_grayscale` makes of 8-bit images (v / 255 in float32) and the bin of
# np.histogram(bins=256, range=(0, 1)) that each of them falls in, computed with np.histogram itself.
_LEVELS_8BIT = np.arange(256, dtype=np.float32) / 255.0
_BIN_OF_LEVEL = np.array([int(np.argmax(np.histogram(_LEVELS_8BIT[v : v + 1], bins=256, range=(0.0, 1.0))[0]))
                          for v in range(256)], dtype=np.intp)


def gray_histogram(gray: np.ndarray, levels: Sequence[int] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """`np.histogram(gray, bins=256, range=(0, 1))`: counts and edges.

    `levels`, the 256 pixel counts per level of the 8-bit image `gray` was made of (PIL's
    `Image.histogram()`), gives exactly the same counts without np.histogram's pass over the pixels
    (10-15 ms on a 1000x300 image): each level's count goes to the bin np.histogram puts it in.
    """
    if levels is None:
        return np.histogram(gray, bins=256, range=(0.0, 1.0))
    hist = np.zeros(256, dtype=np.int64)
    np.add.at(hist, _BIN_OF_LEVEL, np.asarray(levels, dtype=np.int64))
    return hist, np.histogram_bin_edges(gray, bins=256, range=(0.0, 1.0))


def otsu_threshold(gray: np.ndarray, levels: Sequence[int] | None = None) -> float:
    """Otsu's threshold of a [0, 1] image (256-bin histogram, vectorised; `levels`: see `gray_histogram`)."""
    hist, edges = gray_histogram(gray, levels)
    hist = hist.astype(np.float64)
    centers = (edges[:-1] + edges[1:]) / 2
    weight_lo = np.cumsum(hist)
    weight_hi = weight_lo[-1] - weight_lo
    sum_lo = np.cumsum(hist * centers)
    mean_lo = np.divide(sum_lo, weight_lo, out=np.zeros_like(sum_lo), where=weight_lo > 0)
    mean_hi = np.divide(sum_lo[-1] - sum_lo, weight_hi, out=np.zeros_like(sum_lo), where=weight_hi > 0)
    between = weight_lo * weight_hi * (mean_lo - mean_hi) ** 2
    return float(edges[int(np.argmax(between)) + 1])


def remove_background(gray: np.ndarray, cfg: PreprocessConfig = DEFAULT_CONFIG, levels: Sequence[int] | None = None) -> np.ndarray:
    """Ink map in [0, 1] (1 = darkest ink), background exactly 0; raises on blank pages."""
    threshold = otsu_threshold(gray, levels)
    ink_mask = gray < threshold
    n_ink = int(ink_mask.sum())
    if n_ink < max(8, cfg.min_ink_fraction * gray.size) or n_ink == gray.size:
        raise BlankImageError("no signature found: the image is blank or nearly blank")
    if levels is not None:  # 8-bit: the same medians from the histogram, without copying the pixels
        ink_levels = _LEVELS_8BIT < threshold  # the comparison gray < threshold makes
        counts = np.asarray(levels, dtype=np.int64)
        paper_level = _median_of_levels(np.where(ink_levels, 0, counts))
        ink_level = _median_of_levels(np.where(ink_levels, counts, 0))
    else:
        paper_level = float(np.median(gray[~ink_mask]))
        ink_level = float(np.median(gray[ink_mask]))
    if paper_level - ink_level < cfg.min_contrast:
        raise BlankImageError("no signature found: the image has too little contrast to contain ink")
    ink_mask = _drop_specks(ink_mask, cfg.min_component_fraction)
    if int(ink_mask.sum()) < max(8, cfg.min_ink_fraction * gray.size):
        raise BlankImageError("no signature found: only isolated specks of ink")

    out = np.zeros(gray.shape, dtype=np.float32)
    if cfg.ink == "binary":
        out[ink_mask] = 1.0
    elif cfg.ink == "gray":
        out[ink_mask] = 1.0 - gray[ink_mask]
    else:  # normalized: darkness relative to this image's own paper and ink levels
        darkness = (threshold - gray[ink_mask]) / max(threshold, 1e-6)
        scale = float(np.percentile(darkness, 90)) or 1.0
        out[ink_mask] = 0.35 + 0.65 * np.clip(darkness / scale, 0.0, 1.0)
    return out


def _median_of_levels(counts: np.ndarray) -> float:
    """np.median of the 8-bit gray levels (v / 255 as float32) that occur counts[v] times each: the
    middle one, or np.median of the two middle ones, exactly as np.median of the pixels would give."""
    total = int(counts.sum())
    cumulative = np.cumsum(counts)
    middle = [int(np.searchsorted(cumulative, k, side="right")) for k in ((total - 1) // 2, total // 2)]
    return float(np.median(_LEVELS_8BIT[middle]))


def _drop_specks(mask: np.ndarray, min_fraction: float) -> np.ndarray:
    min_size = max(2, int(round(min_fraction * mask.size)))
    labels, n = ndimage.label(mask)
    if n <= 1:
        return mask
    sizes = np.bincount(labels.ravel())
    keep = sizes >= min_size
    keep[0] = False
    if not keep.any():
        return mask
    return keep[labels]


def crop_to_ink(ink: np.ndarray) -> np.ndarray:
    rows = np.flatnonzero(ink.any(axis=1))
    cols = np.flatnonzero(ink.any(axis=0))
    return ink[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]


def fit_to_canvas(ink: np.ndarray, cfg: PreprocessConfig = DEFAULT_CONFIG) -> np.ndarray:
    """Scale (keeping the aspect ratio unless `cfg.fit` is "stretch") and centre the cropped ink on the canvas."""
    height, width = cfg.canvas_height, cfg.canvas_width
    inner_h, inner_w = height - 2 * cfg.margin, width - 2 * cfg.margin
    h, w = ink.shape
    scale_h, scale_w = inner_h / h, inner_w / w
    if cfg.fit == "aspect":
        scale_h = scale_w = min(scale_h, scale_w)
    new_h, new_w = max(1, round(h * scale_h)), max(1, round(w * scale_w))
    resample = Image.Resampling.BOX if min(scale_h, scale_w) < 1 else Image.Resampling.BILINEAR
    resized = Image.fromarray(ink, mode="F").resize((new_w, new_h), resample=resample)
    canvas = np.zeros((height, width), dtype=np.float32)
    top, left = (height - new_h) // 2, (width - new_w) // 2
    canvas[top : top + new_h, left : left + new_w] = np.clip(np.asarray(resized), 0.0, 1.0)
    return canvas


CropBox = tuple[int, int, int, int]  # left, top, right, bottom, in pixels of the (EXIF-rotated) image


def crop_image(image: Image.Image, box: CropBox) -> Image.Image:
    """The part of `image` inside `box`, clipped to the image; an empty selection is a `CropError`."""
    left, top, right, bottom = (int(v) for v in box)
    left, top = max(0, left), max(0, top)
    right, bottom = min(image.width, right), min(image.height, bottom)
    if right - left < 2 or bottom - top < 2:
        raise CropError(f"the crop box {tuple(box)} selects nothing of the {image.width}x{image.height} image")
    return image.crop((left, top, right, bottom))


def ink_map(source: ImageSource, cfg: PreprocessConfig = DEFAULT_CONFIG, *, formats: Sequence[str] | None = None,
            crop: CropBox | None = None) -> np.ndarray:
    """The image's ink map at full resolution (`remove_background`), after an optional `crop`."""
    image = load_image(source, cfg.max_pixels, formats=formats)
    if crop is not None:
        image = crop_image(image, crop)
    # the decoded image, then the 8-bit one, are dropped as soon as the next stage exists (peak memory)
    gray8 = _grayscale_8bit(image)
    del image
    if isinstance(gray8, np.ndarray):
        gray, levels = gray8, None
    else:  # the same array as to_grayscale's, and the 8-bit histogram for Otsu at no cost
        gray, levels = np.asarray(gray8, dtype=np.float32) / 255.0, gray8.histogram()
    del gray8
    return remove_background(gray, cfg, levels)


def preprocess_array(source: ImageSource, cfg: PreprocessConfig = DEFAULT_CONFIG, *,
                     formats: Sequence[str] | None = None, crop: CropBox | None = None) -> np.ndarray:
    """`preprocess` as a H x W float32 numpy array, after an optional `crop`."""
    return fit_to_canvas(crop_to_ink(ink_map(source, cfg, formats=formats, crop=crop)), cfg)


def preprocess_checked(source: ImageSource, cfg: PreprocessConfig = DEFAULT_CONFIG, *,
                       formats: Sequence[str] | None = None, crop: CropBox | None = None,
                       array: bool = False) -> tuple[torch.Tensor | np.ndarray, list]:
    """Serving's `preprocess`: the same tensor, after an optional `crop`, with the quality gate's warnings
    (`sigml.quality`); an image the gate refuses raises `NotASignatureError` carrying the problems (`TooSmallError`
    when only its size is wrong).
    `array`: the same values as a 1 x H x W float32 numpy array (serving without torch)."""
    from . import quality

    ink = ink_map(source, cfg, formats=formats, crop=crop)
    measures, problems = quality.assess(ink)
    refused = [p for p in problems if p.refuse]
    if refused and all(p.code == "too_small" for p in refused):  # a small signature, not a page: say how small
        raise TooSmallError(refused[0].message, [p.to_dict() for p in problems],
                            minimum={"width": quality.MIN_INK_WIDTH, "height": quality.MIN_INK_HEIGHT},
                            ink_box={"width": measures.ink_width, "height": measures.ink_height})
    if refused:
        raise NotASignatureError("this does not look like a signature crop: " + " ".join(p.message for p in refused)
                                 + " " + quality.ADVICE, [p.to_dict() for p in problems])
    image = fit_to_canvas(crop_to_ink(ink), cfg)[None]
    return (image if array else _as_tensor(image)), [p.to_dict() for p in problems]


def _as_tensor(image: np.ndarray) -> "torch.Tensor":
    import torch

    return torch.from_numpy(image)


def preprocess(source: ImageSource, cfg: PreprocessConfig = DEFAULT_CONFIG, *,
               formats: Sequence[str] | None = None) -> torch.Tensor:
    """Any image → 1 x H x W float tensor, ink bright on an exact-zero background (`formats`: the only
    Pillow formats that may decode it, e.g. exactly the one an upload was accepted as)."""
    return _as_tensor(preprocess_array(source, cfg, formats=formats)[None])


def to_png(tensor_or_array: torch.Tensor | np.ndarray, invert: bool = True) -> bytes:
    """PNG bytes of a preprocessed signature (dark ink on white by default), for previews."""
    arr = tensor_or_array.detach().float().cpu().numpy() if hasattr(tensor_or_array, "detach") else tensor_or_array
    arr = np.squeeze(np.asarray(arr, dtype=np.float32))
    if invert:
        arr = 1.0 - arr
    buf = io.BytesIO()
    Image.fromarray(np.clip(arr * 255.0 + 0.5, 0, 255).astype(np.uint8), mode="L").save(buf, format="PNG")
    return buf.getvalue()
