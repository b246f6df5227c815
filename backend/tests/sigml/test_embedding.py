"""sigml.embedding: preprocessing many records (bad images skipped) and embedding them in eval mode."""

from __future__ import annotations

import numpy as np
import torch

from sigml.datasets import read_dataset
from sigml.embedding import embed_tensors, preprocess_records
from sigml.preprocessing import PreprocessConfig


def test_preprocess_records_skips_unreadable_and_blank(make_generic_dataset):
    root = make_generic_dataset("E", writers=2, genuine=2, forged=1)
    (root / "1" / "genuine" / "1_9.png").write_bytes(b"broken")
    from PIL import Image

    Image.new("L", (80, 40), 255).save(root / "2" / "forged" / "2_9.png")  # blank page
    records = read_dataset(root, name="E")
    assert len(records) == 8
    images, kept = preprocess_records(records, {"E": root}, PreprocessConfig(), progress=False)
    assert images.shape == (6, 1, 150, 220) and images.dtype == torch.float32
    assert len(kept) == 6
    assert {r.path for r in records} - {r.path for r in kept} == {"1/genuine/1_9.png", "2/forged/2_9.png"}
    assert all(float(img.max()) > 0 for img in images)


def test_preprocess_no_records():
    images, kept = preprocess_records([], {}, PreprocessConfig(), progress=False)
    assert images.shape == (0, 1, 150, 220) and kept == []


def test_embed_tensors_restores_the_mode(verifier):
    model = verifier.model
    images = torch.zeros(3, 1, 150, 220)
    images[:, :, 60:90, 40:180] = 1.0
    model.train()
    try:
        emb = embed_tensors(model, images, bf16=True, batch_size=2)
        assert model.training  # restored
    finally:
        model.eval()
    assert emb.shape == (3, 32) and emb.dtype == np.float32
    np.testing.assert_allclose(emb[0], emb[1], atol=1e-6)  # eval mode: identical images, identical embeddings
    fp32 = embed_tensors(model, images, bf16=False)
    np.testing.assert_allclose(emb, fp32, atol=0.05)


def test_bf16_is_used_only_where_requested_or_native(monkeypatch):
    """None asks for bf16 where the CPU runs it fast (AVX-512); an AVX2-only CPU emulates it many times slower."""
    import torch

    from sigml import embedding

    monkeypatch.setattr(torch.backends.cpu, "get_cpu_capability", lambda: "AVX2")
    assert embedding.use_bf16(None) is False and embedding.use_bf16(True) is True
    monkeypatch.setattr(torch.backends.cpu, "get_cpu_capability", lambda: "AVX512")
    assert embedding.use_bf16(None) is True and embedding.use_bf16(False) is False
