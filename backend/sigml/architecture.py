"""The network's architecture hyper-parameters (`ModelConfig`), with no torch: the model card and the serving
path (ONNX Runtime) read them without importing the network (`sigml.model` builds it)."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Literal, get_args

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
