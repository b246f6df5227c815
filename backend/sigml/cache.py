"""A preprocessed-image cache on disk, so a training run or a resume starts in seconds instead of minutes.

One safetensors file per dataset and split (uint8 pixels and which records were readable, no pickle), named by a
key that covers everything that decides the pixels: the preprocessing config and each image's path, size and
modification time. Change any of them and the key changes, so a stale cache is never read; it is simply made anew.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from pathlib import Path
from typing import Sequence

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from .datasets import SignatureRecord
from .embedding import preprocess_records
from .preprocessing import PreprocessConfig

log = logging.getLogger(__name__)

CACHE_VERSION = 1  # bump when preprocessing code changes what a config produces


def cache_key(records: Sequence[SignatureRecord], roots: dict[str, Path], cfg: PreprocessConfig) -> str:
    """Hex digest of the preprocessing config and every record's file (path, size, mtime), in order."""
    digest = hashlib.sha256(json.dumps({"version": CACHE_VERSION, "preprocessing": cfg.to_dict()}, sort_keys=True).encode())
    for r in records:
        stat = (roots[r.dataset] / r.path).stat()
        digest.update(f"\n{r.dataset}/{r.path}\t{stat.st_size}\t{stat.st_mtime_ns}".encode())
    return digest.hexdigest()


def cached_preprocess(
    records: Sequence[SignatureRecord], roots: dict[str, Path], cfg: PreprocessConfig, cache_dir: str | Path, *,
    name: str, workers: int = 0, progress: bool = True,
) -> tuple[torch.Tensor, list[SignatureRecord]]:
    """`preprocess_records(..., as_uint8=True)` of `records`, read from `cache_dir/<name>-<key>.safetensors` when
    present, else computed and stored there."""
    path = Path(cache_dir) / f"{name}-{cache_key(records, roots, cfg)[:24]}.safetensors"
    if path.is_file():
        try:
            stored = load_file(str(path))
            kept = stored["kept"].bool().tolist()
            if len(kept) == len(records):
                log.info("preprocessed images of %s from %s", name, path)
                return stored["pixels"], [r for r, k in zip(records, kept) if k]
        except (SafetensorError, OSError, KeyError, RuntimeError) as exc:
            log.warning("cache %s unreadable (%s): preprocessing again", path, exc)
    pixels, kept_records = preprocess_records(records, roots, cfg, workers=workers, desc=f"preprocess {name}",
                                              progress=progress, as_uint8=True)
    kept_ids = {id(r) for r in kept_records}
    kept = torch.tensor([id(r) in kept_ids for r in records], dtype=torch.uint8)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".{os.getpid()}.tmp")  # one per process: ranks of a torchrun may write it at once
    save_file({"pixels": pixels.contiguous(), "kept": kept}, str(tmp))
    tmp.replace(path)
    return pixels, kept_records
