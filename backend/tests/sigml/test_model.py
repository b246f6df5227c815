"""sigml.model: the Siamese ResNet-18 tower, its embeddings and distances."""

from __future__ import annotations

import pytest
import torch

from sigml.model import ModelConfig, SiameseResNet18


def distance(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Euclidean distance between matching rows (what the verifier computes between two embeddings)."""
    return torch.linalg.vector_norm(a - b, dim=1)


@pytest.fixture(scope="module")
def model() -> SiameseResNet18:
    torch.manual_seed(0)
    return SiameseResNet18(ModelConfig(embedding_dim=16, hidden_dim=32)).eval()


@pytest.fixture(scope="module")
def batch() -> torch.Tensor:
    torch.manual_seed(1)
    return (torch.rand(3, 1, 64, 96) > 0.8).float()  # small canvases keep the forward pass cheap


def test_one_channel_input(model):
    conv1 = model.backbone.conv1
    assert conv1.in_channels == 1 and conv1.out_channels == 64
    assert isinstance(model.backbone.fc, torch.nn.Identity)


@torch.no_grad()
def test_embedding_shape_and_normalisation(model, batch):
    emb = model.embed(batch)
    assert emb.shape == (3, 16) and emb.dtype == torch.float32
    torch.testing.assert_close(emb.norm(dim=1), torch.ones(3), atol=1e-5, rtol=0)


@torch.no_grad()
def test_unnormalised_embeddings(batch):
    torch.manual_seed(0)
    m = SiameseResNet18(ModelConfig(embedding_dim=8, hidden_dim=16, normalize=False)).eval()
    emb = m.embed(batch)
    assert emb.shape == (3, 8)
    assert not torch.allclose(emb.norm(dim=1), torch.ones(3), atol=1e-3)


@torch.no_grad()
def test_full_canvas_input(model):
    emb = model.embed(torch.zeros(2, 1, 150, 220))
    assert emb.shape == (2, 16) and torch.isfinite(emb).all()


@torch.no_grad()
def test_distance_symmetric_and_zero_for_identical_input(model, batch):
    a, b = model(batch, batch.flip(0))
    d_ab = distance(a, b)
    d_ba = distance(b, a)
    torch.testing.assert_close(d_ab, d_ba)
    assert d_ab.shape == (3,)
    a2, a3 = model(batch, batch)
    torch.testing.assert_close(distance(a2, a3), torch.zeros(3), atol=1e-6, rtol=0)
    assert float(d_ab[0]) > 1e-4  # different images, different embeddings
    assert float(d_ab.max()) <= 2.0 + 1e-5  # unit vectors


@torch.no_grad()
def test_eval_mode_is_batch_independent(model, batch):
    alone = model.embed(batch[:1])
    together = model.embed(batch)[:1]
    torch.testing.assert_close(alone, together, atol=1e-5, rtol=1e-4)


def test_gradients_reach_the_first_layer(batch):
    torch.manual_seed(0)
    m = SiameseResNet18(ModelConfig(embedding_dim=8, hidden_dim=16)).train()
    a, b = m(batch, batch.flip(0))
    distance(a, b).sum().backward()
    grad = m.backbone.conv1.weight.grad
    assert grad is not None and torch.isfinite(grad).all() and grad.abs().sum() > 0


def test_config_round_trip():
    cfg = ModelConfig(embedding_dim=64, hidden_dim=128, normalize=False)
    d = cfg.to_dict()
    assert d["name"] == "siamese_resnet18"
    assert ModelConfig.from_dict(d) == cfg


def test_multiscale_pooling_embeds_any_canvas_and_feeds_the_head_every_region():
    """The regional head: layers 3 and 4, each averaged globally, over 2 horizontal and 3 vertical strips; the same
    weights embed the half-size training canvas and the serving canvas."""
    from sigml.model import HORIZONTAL_STRIPS, VERTICAL_STRIPS

    cfg = ModelConfig(embedding_dim=16, hidden_dim=32, pooling="multiscale")
    assert cfg.feature_dim == (1 + HORIZONTAL_STRIPS + VERTICAL_STRIPS) * (256 + 512) == 4608
    torch.manual_seed(0)
    m = SiameseResNet18(cfg).eval()
    for size in ((75, 110), (150, 220)):
        x = torch.rand(2, 1, *size)
        assert m.features(x).shape == (2, 4608)
        e = m.embed(x)
        assert e.shape == (2, 16) and torch.allclose(e.norm(dim=1), torch.ones(2), atol=1e-5)


def test_region_pool_means_of_whole_map_and_strips():
    from sigml.model import region_pool

    features = torch.zeros(1, 1, 4, 6)
    features[0, 0, :2, :] = 1.0  # the top half lit
    features[0, 0, :, :2] += 2.0  # the first third lit more
    pooled = region_pool(features)[0].tolist()
    whole, top, bottom, left, middle, right = pooled
    assert top == pytest.approx(1 + 2 / 3) and bottom == pytest.approx(2 / 3)
    assert left == pytest.approx(2.5) and middle == pytest.approx(0.5) and right == pytest.approx(0.5)
    assert whole == pytest.approx(features.mean().item())


def test_unknown_pooling_is_refused_and_global_keeps_the_original_head():
    with pytest.raises(ValueError, match="pooling"):
        ModelConfig(pooling="max")
    assert ModelConfig().feature_dim == 512
    assert ModelConfig.from_dict(ModelConfig(pooling="multiscale").to_dict()).pooling == "multiscale"
