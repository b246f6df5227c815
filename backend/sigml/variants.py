"""Stroke-level variants of an enrolled reference: the same signature with thicker or thinner strokes, or with its
strokes gently bent (an elastic field), embedded beside the reference so that one enrolled signature stands for a
little more of its writer's variation (Diaz et al., TPAMI 2017: synthetic duplicates at enrolment).

Works on preprocessed images (1 x H x W floats, ink bright on 0) in numpy and scipy, as serving does, and draws
every random field from its own seed: the same reference and seed give the same variants.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
from scipy import ndimage

KINDS = ("thicker", "thinner", "elastic")
ELASTIC_SIGMA = 8.0  # pixels: the smoothness of the bending field (a stroke bends, the signature keeps its layout)
ELASTIC_SHIFT = 2.0  # pixels: the field's standard deviation (about a stroke's width at 150 x 220)


def thicker(image: np.ndarray) -> np.ndarray:
    """Strokes about two pixels wider: a 3 x 3 grey dilation."""
    return ndimage.grey_dilation(image, size=(1, 3, 3))


def thinner(image: np.ndarray) -> np.ndarray:
    """Strokes thinner and fainter at their edges: the mean of the image and its 3 x 3 grey erosion (the thinning
    training's augmentation uses)."""
    return 0.5 * (image + ndimage.grey_erosion(image, size=(1, 3, 3)))


def elastic(image: np.ndarray, rng: np.random.Generator, *, sigma: float = ELASTIC_SIGMA,
            shift: float = ELASTIC_SHIFT) -> np.ndarray:
    """The strokes moved along a smooth random field whose shifts have standard deviation `shift` pixels."""
    _, h, w = image.shape
    fields = []
    for _ in range(2):
        field = ndimage.gaussian_filter(rng.uniform(-1.0, 1.0, (h, w)), sigma)
        fields.append(field * (shift / max(float(field.std()), 1e-12)))
    ys, xs = np.meshgrid(np.arange(h, dtype=np.float64), np.arange(w, dtype=np.float64), indexing="ij")
    moved = ndimage.map_coordinates(image[0], [ys + fields[0], xs + fields[1]], order=1, mode="constant", cval=0.0)
    return moved[None].astype(image.dtype)


def stroke_variants(image: np.ndarray, n: int = 4, seed: int = 0, kinds: Sequence[str] = KINDS) -> np.ndarray:
    """`n` variants of one preprocessed image (n x 1 x H x W, same dtype): the i-th of kind `kinds[i]`, the last
    kind repeated (by default thicker, thinner, then elastic ones), each elastic field from the seed's generator
    (deterministic)."""
    image = np.asarray(image)
    if image.ndim != 3 or image.shape[0] != 1:
        raise ValueError(f"expected a 1 x H x W image, got shape {image.shape}")
    unknown = set(kinds) - set(KINDS)
    if not kinds or unknown:
        raise ValueError(f"variant kinds are {KINDS}, got {list(kinds)}")
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        kind = kinds[min(i, len(kinds) - 1)]
        if kind == "thicker":
            out.append(thicker(image))
        elif kind == "thinner":
            out.append(thinner(image))
        else:
            out.append(elastic(image, rng))
    return np.clip(np.stack(out), 0.0, 1.0).astype(image.dtype)
