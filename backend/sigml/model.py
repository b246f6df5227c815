"""Siamese network: a torchvision ResNet-18 (from scratch, 1-channel input) and an embedding head."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Literal, get_args

import torch
import torch.nn.functional as F
import torchvision
from torch import nn

Pooling = Literal["global", "multiscale"]

# Regions of the multi-scale embedding: the whole map, horizontal strips (top / bottom: ascenders, descenders,
# the baseline) and vertical strips (start / middle / end of the signature), on layer 3 and layer 4.
HORIZONTAL_STRIPS = 2
VERTICAL_STRIPS = 3
LAYER_CHANNELS = {"layer3": 256, "layer4": 512}


@dataclass(frozen=True)
class ModelConfig:
    """Architecture hyper-parameters; stored in the model card."""

    embedding_dim: int = 128
    hidden_dim: int = 256
    normalize: bool = True  # L2-normalised embeddings: distances lie in [0, 2]
    # "global": layer 4 averaged over the whole map (the original network); "multiscale": layers 3 and 4 each
    # averaged globally and over strips (MS-SigNet's regional features), concatenated before the head.
    pooling: Pooling = "global"

    def __post_init__(self) -> None:
        if self.pooling not in get_args(Pooling):
            raise ValueError(f"unknown pooling {self.pooling!r}: expected one of {', '.join(get_args(Pooling))}")

    def to_dict(self) -> dict:
        return {"name": "siamese_resnet18", **asdict(self)}

    @classmethod
    def from_dict(cls, data: dict) -> "ModelConfig":
        return cls(**{k: v for k, v in data.items() if k in cls.__dataclass_fields__})

    @property
    def feature_dim(self) -> int:
        """Width of what the head receives."""
        if self.pooling == "global":
            return LAYER_CHANNELS["layer4"]
        return (1 + HORIZONTAL_STRIPS + VERTICAL_STRIPS) * sum(LAYER_CHANNELS.values())


def region_pool(features: torch.Tensor) -> torch.Tensor:
    """N x C x H x W -> N x (1 + HORIZONTAL_STRIPS + VERTICAL_STRIPS) * C: the mean over the whole map, then over
    each horizontal and each vertical strip (near-equal strips, `tensor_split`; static slices export to ONNX)."""
    regions = [features.mean(dim=(2, 3))]
    regions += [strip.mean(dim=(2, 3)) for strip in torch.tensor_split(features, HORIZONTAL_STRIPS, dim=2)]
    regions += [strip.mean(dim=(2, 3)) for strip in torch.tensor_split(features, VERTICAL_STRIPS, dim=3)]
    return torch.cat(regions, dim=1)


class SiameseResNet18(nn.Module):
    """One shared ResNet-18 tower; `embed` maps N x 1 x H x W signatures to N x D embeddings."""

    def __init__(self, cfg: ModelConfig = ModelConfig()) -> None:
        super().__init__()
        self.cfg = cfg
        backbone = torchvision.models.resnet18(weights=None)
        backbone.conv1 = nn.Conv2d(1, 64, kernel_size=7, stride=2, padding=3, bias=False)
        backbone.fc = nn.Identity()
        self.backbone = backbone
        self.head = nn.Sequential(
            nn.Linear(cfg.feature_dim, cfg.hidden_dim),
            nn.BatchNorm1d(cfg.hidden_dim),
            nn.ReLU(inplace=True),
            nn.Linear(cfg.hidden_dim, cfg.embedding_dim),
        )

    def features(self, batch: torch.Tensor) -> torch.Tensor:
        """What the head receives (N x `cfg.feature_dim`)."""
        if self.cfg.pooling == "global":
            return self.backbone(batch)
        b = self.backbone
        x = b.maxpool(b.relu(b.bn1(b.conv1(batch))))
        layer3 = b.layer3(b.layer2(b.layer1(x)))
        layer4 = b.layer4(layer3)
        return torch.cat([region_pool(layer3), region_pool(layer4)], dim=1)

    def embed(self, batch: torch.Tensor) -> torch.Tensor:
        out = self.head(self.features(batch)).float()
        return F.normalize(out, dim=1) if self.cfg.normalize else out

    def forward(self, a: torch.Tensor, b: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.embed(a), self.embed(b)
