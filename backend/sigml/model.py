"""Siamese network: a torchvision ResNet-18 (from scratch, 1-channel input) and an embedding head."""

from __future__ import annotations

import torch
import torch.nn.functional as F
import torchvision
from torch import nn

from .architecture import HORIZONTAL_STRIPS, LAYER_CHANNELS, VERTICAL_STRIPS, ModelConfig, Pooling  # noqa: F401  (torch-free)


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
