"""Input quality gate: is this image a signature crop the model can judge?

The model was trained on crops holding one signature on plain paper. A phone photo of a page, a dark background,
a form with ruled lines or a letter with several lines of text becomes, after background removal, something the
model never saw, and its score means nothing. `assess` looks at the ink map that preprocessing makes anyway
(`preprocessing.remove_background`: ink > 0, paper exactly 0) and names what it sees:
- `too_much_ink`: more of the image is "ink" than any signature crop has (a page in shadow, a photo, a dark
  background);
- `ink_on_every_border`: ink covers much of all four borders (a frame, a dark background, a photo's edges);
- `several_text_lines`: ink in many separate horizontal bands across the whole width, or in any quarter of it (a
  page, a letter, a cheque's printed fields side by side: not one signature);
- `printed_text`: much of the ink is in marks far smaller than the ink's box (printed characters on a page);
- `many_pieces`: the ink falls into more separate pieces than any signature crop has (a form, a cheque);
- `too_small`: the ink's box is smaller than any real signature's (a thumbnail, a scribble, a stamp's initials): the
  model would judge an upscaled blur;
- `looks_rotated` (a warning only): the ink's box is much taller than wide, which no upright signature of the six
  datasets is (a sideways scan without an orientation tag);
- `ruled_line` (a warning only): a row of ink across most of the width (a form's line; the signature may still
  be judged, but the line is part of what the model compares).
`REFUSE` problems stop the request (422 `not_a_signature`); warnings travel with the answer. The limits are set
from the ink maps of all six datasets' images (`bench/quality_gate.py` prints how many real signatures each would
refuse) with a margin, so the gate refuses what no real crop looks like.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
from PIL import Image
from scipy import ndimage

MAX_SIDE = 512  # the ink map is judged at most this large: the gate costs little on any image
MAX_INK_FRACTION = 0.45
MAX_BORDER_COVERAGE = 0.5  # least-covered of the four borders
MAX_TEXT_LINES = 5  # separate bands of ink rows
# A gap between bands: at least this many empty rows of the reduced ink map (<= MAX_SIDE). A fixed share of the height
# (3% before) merged a page's ordinarily spaced lines into three "lines"; two cells separate lines 12-18 px apart on a
# 3000 px page, while all but 2 of 11,116 real signatures have at most 5 bands (`bench/quality_gate.py --every 3`).
LINE_GAP_CELLS = 2
# Pages whose lines are laid out side by side (a cheque's printed fields, a form's columns) merge into few bands across
# the whole width; counted in each quarter of the width they do not. The three limits below sit above what real crops
# show (every third image of the six datasets and CEDAR-natural, 11,116: at most 10 bands in a quarter
# (SigComp2011-Dutch; 8 elsewhere), 69 pieces, 40% of the ink in small marks: a few refused, `bench/quality_gate.py`) and
# refuse most synthetic pages that the whole-width bands let through (`bench/auto_crop.py`).
MAX_COLUMN_TEXT_LINES = 8  # bands in any quarter of the ink's width
MAX_PIECES = 60  # 8-connected pieces of ink in the reduced map
SMALL_MARK = 0.1  # a mark lower than this share of the ink's box height (and narrower than 0.3 of its width) ...
MAX_SMALL_MARK_SHARE = 0.3  # ... and such marks holding more than this share of the ink: printed text
# The ink's box at full resolution: the smallest of the datasets' signatures is 65 px wide and 28 px high (CNSig;
# `bench/quality_gate.py --every 3` prints the smallest per dataset).
MIN_INK_HEIGHT = 24
MIN_INK_WIDTH = 48
ROTATED_ASPECT = 1.6  # ink box height / width above which a signature looks sideways (real: at most 1.61, 2 of 11,116)
RULED_LINE_FRACTION = 0.85  # a row with ink across this share of the width (of the inked columns' span)

REFUSE = ("too_much_ink", "ink_on_every_border", "several_text_lines", "printed_text", "many_pieces", "too_small")
ADVICE = "Crop the image to the signature alone (the crop step, or `crop` in the API) and send it again."


@dataclass(frozen=True)
class Measures:
    ink_fraction: float
    border_coverage: float
    text_lines: int
    ruled_lines: int
    ink_height: int  # the ink's bounding box, in pixels of the image as sent (after any crop)
    ink_width: int
    column_text_lines: int = 0  # the most bands in any quarter of the ink's width
    pieces: int = 0
    small_mark_share: float = 0.0

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class Problem:
    code: str
    message: str

    @property
    def refuse(self) -> bool:
        return self.code in REFUSE

    def to_dict(self) -> dict:
        return {"code": self.code, "message": self.message}


def _small_mask(ink: np.ndarray) -> np.ndarray:
    mask = np.asarray(ink) > 0
    h, w = mask.shape
    scale = MAX_SIDE / max(h, w)
    if scale >= 1:
        return mask
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    # a cell is ink when any of its pixels is (thin strokes survive the reduction)
    return np.asarray(Image.fromarray(mask.astype(np.uint8) * 255).resize(size, Image.Resampling.BOX)) > 0


def _bands(profile: np.ndarray, min_gap: int) -> int:
    """Runs of True in `profile` separated by at least `min_gap` False entries."""
    rows = np.flatnonzero(profile)
    if rows.size == 0:
        return 0
    return 1 + int(np.count_nonzero(np.diff(rows) > min_gap))


def ink_box_size(ink: np.ndarray) -> tuple[int, int]:
    """(height, width) of the bounding box of the ink (pixels > 0); (0, 0) without ink."""
    inked = np.asarray(ink) > 0
    rows, cols = np.flatnonzero(inked.any(axis=1)), np.flatnonzero(inked.any(axis=0))
    if rows.size == 0:
        return 0, 0
    return int(rows[-1] - rows[0] + 1), int(cols[-1] - cols[0] + 1)


def measure(ink: np.ndarray) -> Measures:
    mask = _small_mask(ink)
    ink_height, ink_width = ink_box_size(ink)
    h, w = mask.shape
    borders = [mask[0, :].mean(), mask[-1, :].mean(), mask[:, 0].mean(), mask[:, -1].mean()]
    rows_with_ink = mask.any(axis=1)
    cols = np.flatnonzero(mask.any(axis=0))
    span = (cols[-1] - cols[0] + 1) if cols.size else 1
    ruled = int(np.count_nonzero(mask.sum(axis=1) >= RULED_LINE_FRACTION * max(span, 0.5 * w)))
    return Measures(
        ink_fraction=float(mask.mean()),
        border_coverage=float(min(borders)),
        text_lines=_bands(rows_with_ink, LINE_GAP_CELLS),
        ruled_lines=ruled,
        ink_height=ink_height,
        ink_width=ink_width,
        column_text_lines=_column_bands(mask, cols),
        **_pieces(mask),
    )


def _column_bands(mask: np.ndarray, cols: np.ndarray, columns: int = 4) -> int:
    """The most text bands in any of `columns` equal vertical slices of the ink's width."""
    if cols.size == 0:
        return 0
    edges = np.linspace(cols[0], cols[-1] + 1, columns + 1).astype(int)
    return max(_bands(mask[:, a:b].any(axis=1), LINE_GAP_CELLS) for a, b in zip(edges[:-1], edges[1:]) if b > a)


def _pieces(mask: np.ndarray) -> dict:
    """How many 8-connected pieces the reduced ink has, and the share of its ink in marks small against the ink's box
    (printed characters are tiny beside a page's extent; a signature's strokes are not beside its own)."""
    labels, count = ndimage.label(mask, np.ones((3, 3), bool))
    if count == 0:
        return {"pieces": 0, "small_mark_share": 0.0}
    rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
    box_h, box_w = rows[-1] - rows[0] + 1, cols[-1] - cols[0] + 1
    sizes = np.bincount(labels.ravel())[1:]
    slices = ndimage.find_objects(labels)
    heights = np.array([s[0].stop - s[0].start for s in slices])
    widths = np.array([s[1].stop - s[1].start for s in slices])
    small = (heights < SMALL_MARK * box_h) & (widths < 3 * SMALL_MARK * box_w)
    return {"pieces": int(count), "small_mark_share": float(sizes[small].sum() / sizes.sum())}


def problems_of(m: Measures) -> list[Problem]:
    found = []
    if m.ink_fraction > MAX_INK_FRACTION:
        found.append(Problem("too_much_ink", f"{m.ink_fraction:.0%} of the image reads as ink after the paper is "
                             "removed (a signature crop has far less): it looks like a photo, a shaded page or a "
                             "dark background."))
    if m.border_coverage > MAX_BORDER_COVERAGE:
        found.append(Problem("ink_on_every_border", "ink covers much of all four edges of the image: a frame, a dark "
                             "background or a photo's surroundings, not a signature on paper."))
    if m.text_lines > MAX_TEXT_LINES:
        found.append(Problem("several_text_lines", f"the ink lies in {m.text_lines} separate lines, like a page of "
                             "text, not one signature."))
    elif m.column_text_lines > MAX_COLUMN_TEXT_LINES:
        found.append(Problem("several_text_lines", f"part of the image holds {m.column_text_lines} separate lines of "
                             "ink, like a page, a form or a cheque, not one signature."))
    if m.small_mark_share > MAX_SMALL_MARK_SHARE:
        found.append(Problem("printed_text", f"{m.small_mark_share:.0%} of the ink is in small separate marks, like "
                             "printed text on a page, not one signature."))
    if m.pieces > MAX_PIECES:
        found.append(Problem("many_pieces", f"the ink falls into {m.pieces} separate pieces, like a form or a cheque, "
                             "not one signature."))
    if 0 < m.ink_height < MIN_INK_HEIGHT or 0 < m.ink_width < MIN_INK_WIDTH:
        found.append(Problem("too_small", f"the signature's ink spans {m.ink_width}x{m.ink_height} pixels; at least "
                             f"{MIN_INK_WIDTH}x{MIN_INK_HEIGHT} (width x height) is needed to judge it. Send a larger "
                             "scan or photo of the signature."))
    if m.ink_width and m.ink_height > ROTATED_ASPECT * m.ink_width:
        found.append(Problem("looks_rotated", "the signature is much taller than wide, as if the scan were sideways: "
                             "rotate the image so the signature reads left to right and send it again."))
    if m.ruled_lines:
        found.append(Problem("ruled_line", "a line runs across the whole image (a form's ruled line?): it is compared "
                             "as part of the signature; crop above it if you can."))
    return found


def assess(ink: np.ndarray) -> tuple[Measures, list[Problem]]:
    """The measures of an ink map (`preprocessing.remove_background`) and the problems they show."""
    m = measure(ink)
    return m, problems_of(m)
