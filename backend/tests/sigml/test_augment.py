"""sigml.augment: shape, range and background are kept."""

from __future__ import annotations

import pytest
import torch

from sigml.augment import AugmentConfig, SignatureAugment
from sigml.preprocessing import preprocess
from sigml.testing import signature_image


@pytest.fixture(scope="module")
def image() -> torch.Tensor:
    return preprocess(signature_image(seed=2))


@pytest.mark.parametrize("seed", range(6))
def test_shape_range_and_background(image, seed):
    torch.manual_seed(seed)
    cfg = AugmentConfig(stroke_prob=1.0 if seed % 2 else 0.0, elastic_prob=1.0 if seed < 3 else 0.0)
    out = SignatureAugment(cfg)(image.clone())
    assert out.shape == image.shape and out.dtype == torch.float32
    assert float(out.min()) >= 0.0 and float(out.max()) <= 1.0
    assert float(out.max()) > 0.2  # the signature survives
    background = float((out == 0).float().mean())
    assert background > 0.6, f"only {background:.0%} of the canvas is exact background"
    assert float(out[:, :2].max()) == 0 or float(out[:, -2:].max()) == 0  # no ink smeared over the frame


def test_augmentation_changes_the_image(image):
    torch.manual_seed(0)
    out = SignatureAugment()(image.clone())
    assert not torch.equal(out, image)


def test_disabled_is_identity(image):
    out = SignatureAugment(AugmentConfig(enabled=False))(image)
    assert torch.equal(out, image)


def test_seeded(image):
    aug = SignatureAugment()
    torch.manual_seed(5)
    a = aug(image.clone())
    torch.manual_seed(5)
    b = aug(image.clone())
    assert torch.equal(a, b)


def test_config_to_dict():
    d = AugmentConfig().to_dict()
    assert d["enabled"] is True and tuple(d["scale"]) == (0.88, 1.05)


def test_squeeze_changes_the_aspect_and_keeps_the_ink_on_the_canvas():
    """Aspect jitter squeezes the height (log ratio > 0) or the width (< 0) about the centre, never stretching ink
    off the canvas; 0 changes nothing."""
    from sigml.augment import squeeze

    image = torch.zeros(1, 40, 60)
    image[:, 5:35, 5:55] = 1.0  # an ink box almost filling the canvas

    def extent(img, dim):
        lit = (img[0] > 0.5).any(dim=dim).nonzero()
        return int(lit.max() - lit.min() + 1)

    assert torch.allclose(squeeze(image, 0.0), image, atol=1e-6)
    taller, wider = extent(image, 1), extent(image, 0)
    flat = squeeze(image, 0.4)
    assert extent(flat, 1) < taller * 0.75 and abs(extent(flat, 0) - wider) <= 1
    narrow = squeeze(image, -0.4)
    assert extent(narrow, 0) < wider * 0.75 and abs(extent(narrow, 1) - taller) <= 1
    torch.manual_seed(0)
    out = SignatureAugment(AugmentConfig(aspect=0.4))(image)
    assert out.shape == image.shape and out.min() >= 0 and out.max() <= 1
