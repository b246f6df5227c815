"""Helpers for tests of the core, the API and the interface: small synthetic signatures and models."""

from __future__ import annotations

import io
import socket
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw

from .checkpoints import save_weights
from .model import ModelConfig, SiameseResNet18
from .modelcard import ModelCard, card_path_for, file_sha256, now_iso
from .preprocessing import PreprocessConfig


def signature_image(seed: int = 0, size: tuple[int, int] = (300, 120), paper: int = 235, ink: int = 30, mode: str = "L") -> Image.Image:
    """A synthetic 'signature': a few random smooth strokes of dark ink on light paper."""
    rng = np.random.default_rng(seed)
    w, h = size
    image = Image.new("L", size, paper)
    draw = ImageDraw.Draw(image)
    for _ in range(3):
        xs = np.sort(rng.uniform(0.1 * w, 0.9 * w, 8))
        ys = rng.uniform(0.25 * h, 0.75 * h, 8)
        draw.line(list(zip(xs.tolist(), ys.tolist())), fill=ink, width=max(2, h // 40), joint="curve")
    return image.convert(mode) if mode != "L" else image


def image_bytes(image: Image.Image, fmt: str = "PNG", **save_kwargs) -> bytes:
    buf = io.BytesIO()
    image.save(buf, format=fmt, **save_kwargs)
    return buf.getvalue()


def make_test_model(directory: str | Path, *, seed: int = 0, threshold: float = 0.5, embedding_dim: int = 32,
                    reference_score: str = "normalized", reference_threshold: float = 1.5) -> Path:
    """A randomly initialised (untrained) model + card, for tests that need a loadable model, not real verdicts.
    Like a card written by training, references are scored "normalized" unless `reference_score` says "mean"
    (a card from before that score; its reference threshold is then `threshold`)."""
    torch.manual_seed(seed)
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    cfg = ModelConfig(embedding_dim=embedding_dim, hidden_dim=64)
    model = SiameseResNet18(cfg).eval()
    path = directory / "test_model.safetensors"
    save_weights(model, path, dtype=torch.float16)
    ModelCard(
        architecture=cfg,
        preprocessing=PreprocessConfig(),
        threshold=threshold,
        thresholds={"pairwise": threshold,
                    "reference_based": reference_threshold if reference_score == "normalized" else threshold},
        reference_score=reference_score,
        metrics={},
        data={"sources": [], "note": "untrained test model"},
        weights={"file": path.name, "sha256": file_sha256(path), "dtype": "float16"},
        created=now_iso(),
        notes="untrained model made by sigml.testing for tests",
    ).save(card_path_for(path))
    return path


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on (at the time of asking), for servers a test starts."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]
