"""Input quality gate: is this image a signature crop the model can judge?

The model was trained on crops holding one signature on plain paper. A phone photo of a page, a dark background,
a form with ruled lines or a letter with several lines of text becomes, after background removal, something the
model never saw, and its score means nothing. `assess` looks at the ink map that preprocessing makes anyway
(`preprocessing.remove_background`: ink > 0, paper exactly 0) and names what it sees:
- `too_much_ink`: more of the image is "ink" than any signature crop has (a page in shadow, a photo, a dark
  background);
- `ink_on_every_border`: ink covers much of all four borders (a frame, a dark background, a photo's edges);
- `several_text_lines`: ink in many separate horizontal bands (a page or a letter, not one signature);
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

MAX_SIDE = 512  # the ink map is judged at most this large: the gate costs little on any image
MAX_INK_FRACTION = 0.45
MAX_BORDER_COVERAGE = 0.5  # least-covered of the four borders
MAX_TEXT_LINES = 5  # separate bands of ink rows
# A gap between bands: at least this many empty rows of the reduced ink map (<= MAX_SIDE). A fixed share of the height
# (3% before) merged a page's ordinarily spaced lines into three "lines"; two cells separate lines 12-18 px apart on a
# 3000 px page, while all but 2 of 11,116 real signatures have at most 5 bands (`bench/quality_gate.py --every 3`).
LINE_GAP_CELLS = 2
# The ink's box at full resolution: the smallest of the datasets' signatures is 65 px wide and 28 px high (CNSig;
# `bench/quality_gate.py --every 3` prints the smallest per dataset).
MIN_INK_HEIGHT = 24
MIN_INK_WIDTH = 48
ROTATED_ASPECT = 1.6  # ink box height / width above which a signature looks sideways (real: at most 1.61, 2 of 11,116)
RULED_LINE_FRACTION = 0.85  # a row with ink across this share of the width (of the inked columns' span)

REFUSE = ("too_much_ink", "ink_on_every_border", "several_text_lines", "too_small")
ADVICE = "Crop the image to the signature alone (the crop step, or `crop` in the API) and send it again."


@dataclass(frozen=True)
class Measures:
    ink_fraction: float
    border_coverage: float
    text_lines: int
    ruled_lines: int
    ink_height: int  # the ink's bounding box, in pixels of the image as sent (after any crop)
    ink_width: int

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
    )


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
