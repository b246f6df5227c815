"""Augmentation suited to signatures, applied to preprocessed 1 x H x W tensors (ink bright on 0).

Small rotation / shear / scale / translation, stroke-width change (grey dilation or erosion), mild
elastic jitter, ink-intensity jitter and an optional change of the ink's aspect ratio. Every image gets its own random parameters.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torchvision.transforms import v2


@dataclass(frozen=True)
class AugmentConfig:
    enabled: bool = True
    degrees: float = 5.0
    shear: float = 8.0
    scale: tuple[float, float] = (0.88, 1.05)
    translate: float = 0.04
    stroke_prob: float = 0.3  # probability of a stroke-width change (half thicker, half thinner)
    elastic_prob: float = 0.2
    elastic_alpha: float = 6.0
    intensity_jitter: float = 0.15
    # Largest log change of the ink's aspect ratio: the height (or the width) is squeezed by up to exp(aspect), so
    # the squashed 256x256 scans of CEDAR and GPDS and natural-shape scans of the same hand meet. 0: off.
    aspect: float = 0.0

    def to_dict(self) -> dict:
        return asdict(self)


class SignatureAugment:
    def __init__(self, cfg: AugmentConfig = AugmentConfig()) -> None:
        self.cfg = cfg
        self.affine = v2.RandomAffine(
            degrees=cfg.degrees,
            translate=(cfg.translate, cfg.translate),
            scale=cfg.scale,
            shear=(-cfg.shear, cfg.shear),
            interpolation=v2.InterpolationMode.BILINEAR,
            fill=0.0,
        )
        self.elastic = v2.ElasticTransform(alpha=cfg.elastic_alpha, sigma=5.0, fill=0.0)

    def __call__(self, image: torch.Tensor) -> torch.Tensor:
        """Augment one 1 x H x W image (torchvision's transforms draw from torch's global RNG)."""
        cfg = self.cfg
        if not cfg.enabled:
            return image
        out = self.affine(squeeze(image, float(torch.empty(1).uniform_(-cfg.aspect, cfg.aspect))) if cfg.aspect > 0 else image)
        if float(torch.rand(1)) < cfg.elastic_prob:
            out = self.elastic(out)
        if float(torch.rand(1)) < cfg.stroke_prob:
            x = out.unsqueeze(0)
            if float(torch.rand(1)) < 0.5:
                x = F.max_pool2d(x, 3, stride=1, padding=1)  # thicker strokes
            else:
                x = 0.5 * (x - F.max_pool2d(-x, 3, stride=1, padding=1))  # thinner (half-eroded) strokes
            out = x.squeeze(0)
        if cfg.intensity_jitter > 0:
            factor = 1.0 + cfg.intensity_jitter * (2 * float(torch.rand(1)) - 1)
            out = out * factor
        return out.clamp_(0.0, 1.0)


def squeeze(image: torch.Tensor, log_ratio: float) -> torch.Tensor:
    """`image` (1 x H x W) with its content squeezed about the centre: the height by exp(-log_ratio) when
    `log_ratio` > 0, else the width by exp(log_ratio). Squeezing (never stretching) keeps all the ink on the canvas."""
    sx, sy = (1.0, math.exp(-log_ratio)) if log_ratio > 0 else (math.exp(log_ratio), 1.0)
    theta = torch.tensor([[[1.0 / sx, 0.0, 0.0], [0.0, 1.0 / sy, 0.0]]], dtype=image.dtype)
    grid = F.affine_grid(theta, [1, *image.shape], align_corners=False)
    return F.grid_sample(image.unsqueeze(0), grid, mode="bilinear", padding_mode="zeros", align_corners=False).squeeze(0)
