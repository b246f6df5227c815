"""Siamese network: a torchvision ResNet-18 (from scratch, 1-channel input) and an embedding head."""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
import torchvision
from torch import nn


@dataclass(frozen=True)
class ModelConfig:
    """Architecture hyper-parameters; stored in the model card."""

    embedding_dim: int = 128
    hidden_dim: int = 256
    normalize: bool = True  # L2-normalised embeddings: distances lie in [0, 2]

    def to_dict(self) -> dict:
        return {"name": "siamese_resnet18", **asdict(self)}

    @classmethod
    def from_dict(cls, data: dict) -> "ModelConfig":
        return cls(**{k: v for k, v in data.items() if k in cls.__dataclass_fields__})


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
            nn.Linear(512, cfg.hidden_dim),
            nn.BatchNorm1d(cfg.hidden_dim),
            nn.ReLU(inplace=True),
            nn.Linear(cfg.hidden_dim, cfg.embedding_dim),
        )

    def embed(self, batch: torch.Tensor) -> torch.Tensor:
        out = self.head(self.backbone(batch)).float()
        return F.normalize(out, dim=1) if self.cfg.normalize else out

    def forward(self, a: torch.Tensor, b: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.embed(a), self.embed(b)

