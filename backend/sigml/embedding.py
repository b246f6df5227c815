"""Turning many records into preprocessed tensors and embeddings, each image once."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset
from tqdm.auto import tqdm

from .datasets import SignatureRecord
from .errors import ImageError
from .preprocessing import PreprocessConfig, preprocess

log = logging.getLogger(__name__)


class RecordImages(Dataset):
    """Preprocessed images of `records`; unreadable or blank ones yield an empty tensor and are reported."""

    def __init__(self, records: Sequence[SignatureRecord], roots: dict[str, Path], cfg: PreprocessConfig) -> None:
        self.records, self.roots, self.cfg = records, roots, cfg

    def __len__(self) -> int:
        return len(self.records)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, bool]:
        r = self.records[i]
        try:
            return preprocess(self.roots[r.dataset] / r.path, self.cfg), True
        except ImageError as exc:
            log.warning("skipping %s/%s: %s", r.dataset, r.path, exc)
            return torch.zeros(1, self.cfg.canvas_height, self.cfg.canvas_width), False


def preprocess_records(
    records: Sequence[SignatureRecord],
    roots: dict[str, Path],
    cfg: PreprocessConfig,
    *,
    workers: int = 0,
    desc: str = "preprocess",
    progress: bool = True,
    as_uint8: bool = False,
) -> tuple[torch.Tensor, list[SignatureRecord]]:
    """N x 1 x H x W float tensor of the readable records (and those records), with DataLoader workers.

    `as_uint8`: each batch is stored as uint8 (value x 255) as soon as it is made, so tens of thousands of
    images fit in a quarter of the memory (the quantisation is < 0.2% of the range); `embed_tensors` takes both."""
    loader = DataLoader(RecordImages(records, roots, cfg), batch_size=32, num_workers=workers, shuffle=False)
    tensors, oks = [], []
    for batch, ok in tqdm(loader, desc=desc, unit="batch", disable=not progress, leave=False):
        tensors.append(to_uint8(batch) if as_uint8 else batch)
        oks.append(ok)
    if not tensors:
        return torch.zeros(0, 1, cfg.canvas_height, cfg.canvas_width, dtype=torch.uint8 if as_uint8 else torch.float32), []
    keep = torch.cat(oks).bool()
    kept = [r for r, k in zip(records, keep.tolist()) if k]
    return torch.cat(tensors)[keep], kept


def bf16_native(device_type: str = "cpu") -> bool:
    """Whether bfloat16 autocast speeds up this device: on a CPU, only with AVX-512 (oneDNN's bf16 kernels; about 4x
    float32 on ResNet-18). An AVX2-only CPU emulates bf16 about 17x slower than float32
    (`bench/train_speed.py --bf16 on off`), so it runs float32."""
    if device_type == "cuda":
        return torch.cuda.is_available() and torch.cuda.is_bf16_supported()
    return torch.backends.cpu.get_cpu_capability().startswith("AVX512")


def use_bf16(requested: bool | None, device_type: str = "cpu") -> bool:
    """`requested` when it is True or False; None (the default everywhere) means "where the device runs it fast"."""
    return bf16_native(device_type) if requested is None else bool(requested)


def to_uint8(images: torch.Tensor) -> torch.Tensor:
    """Preprocessed images in [0, 1] as uint8 (x 255, rounded)."""
    return (images * 255 + 0.5).to(torch.uint8)


def as_float(images: torch.Tensor) -> torch.Tensor:
    """Preprocessed images as float in [0, 1], whether stored as float or as uint8."""
    return images.float() / 255 if images.dtype == torch.uint8 else images.float()


@torch.inference_mode()
def embed_tensors(
    model: torch.nn.Module, images: torch.Tensor, *, bf16: bool | None = None, batch_size: int = 64,
    progress: bool = False,
) -> np.ndarray:
    """N x 1 x H x W preprocessed images (float, or uint8 from `to_uint8`) → N x D float32 embeddings, in eval mode,
    channels-last, bfloat16 autocast where the device runs it fast (`use_bf16`): the one batch-embedding loop
    (training, evaluation and `Verifier`)."""
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    bf16 = use_bf16(bf16, device.type)
    out = []
    try:
        for start in tqdm(range(0, len(images), batch_size), desc="embed", disable=not progress, leave=False):
            chunk = as_float(images[start : start + batch_size]).to(device).contiguous(memory_format=torch.channels_last)
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
                out.append(model.embed(chunk).float().cpu())
    finally:
        model.train(was_training)
    if not out:
        return np.zeros((0, int(getattr(getattr(model, "cfg", None), "embedding_dim", 0))), np.float32)
    return torch.cat(out).numpy()
