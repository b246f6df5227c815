"""sigml.checkpoints: safetensors weights (fp16 or fp32) and resumable training state; errors name the path."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from safetensors import safe_open
from torch import nn

from sigml.checkpoints import load_training_state, load_weights, save_training_state, save_weights
from sigml.errors import ModelLoadError, SigmlError
from sigml.model import ModelConfig, SiameseResNet18


def small_model(seed: int = 0, embedding_dim: int = 16) -> SiameseResNet18:
    torch.manual_seed(seed)
    return SiameseResNet18(ModelConfig(embedding_dim=embedding_dim, hidden_dim=32))


@pytest.fixture(scope="module")
def trained_like() -> SiameseResNet18:
    """A model whose BatchNorm running statistics differ from their defaults."""
    m = small_model(0).train()
    with torch.no_grad():
        m.embed(torch.rand(4, 1, 64, 64))
    return m.eval()


def test_fp16_round_trip(tmp_path, trained_like):
    path = tmp_path / "w.safetensors"
    save_weights(trained_like, path, dtype=torch.float16)
    assert not list(tmp_path.glob("*.tmp"))  # written atomically
    with safe_open(str(path), framework="pt") as f:
        dtypes = {f.get_tensor(k).dtype for k in f.keys()}
        tracked = f.get_tensor("backbone.bn1.num_batches_tracked")
    assert dtypes == {torch.float16, torch.int64}  # integer buffers are not cast
    assert int(tracked) == 1
    loaded = small_model(seed=123)
    load_weights(loaded, path)
    original = trained_like.state_dict()
    for name, value in loaded.state_dict().items():
        if value.is_floating_point():
            assert value.dtype == torch.float32
            torch.testing.assert_close(value, original[name].half().float(), atol=0, rtol=0)  # exactly the fp16 cast
            torch.testing.assert_close(value, original[name], atol=1e-3, rtol=1e-3)
        else:
            assert torch.equal(value, original[name])


def test_fp32_round_trip_is_exact(tmp_path, trained_like):
    path = tmp_path / "w32.safetensors"
    save_weights(trained_like, path)
    loaded = small_model(seed=5)
    load_weights(loaded, path)
    for name, value in loaded.state_dict().items():
        assert torch.equal(value, trained_like.state_dict()[name]), name
    x = torch.rand(2, 1, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(loaded.eval().embed(x), trained_like.embed(x))


def test_missing_file(tmp_path):
    path = tmp_path / "nope.safetensors"
    with pytest.raises(ModelLoadError) as info:
        load_weights(small_model(), path)
    assert info.value.path == path and str(path) in str(info.value)
    assert "not found" in str(info.value)
    assert isinstance(info.value, SigmlError) and info.value.code == "model_unavailable"


@pytest.mark.parametrize(
    "content",
    [
        pytest.param(np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8).tobytes(), id="random-bytes"),
        pytest.param(b"", id="empty"),
        pytest.param(b"\x10\x00\x00\x00\x00\x00\x00\x00{not json}", id="bad-header"),
    ],
)
def test_corrupt_file(tmp_path, content):
    path = tmp_path / "corrupt.safetensors"
    path.write_bytes(content)
    with pytest.raises(ModelLoadError) as info:
        load_weights(small_model(), path)
    assert str(path) in str(info.value)


def test_truncated_file(tmp_path, trained_like):
    path = tmp_path / "w.safetensors"
    save_weights(trained_like, path, dtype=torch.float16)
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(ModelLoadError, match="safetensors"):
        load_weights(small_model(), path)


def test_mismatched_architecture(tmp_path, trained_like):
    path = tmp_path / "w.safetensors"
    save_weights(trained_like, path, dtype=torch.float16)
    with pytest.raises(ModelLoadError) as info:
        load_weights(small_model(embedding_dim=32), path)
    assert str(path) in str(info.value) and "architecture" in str(info.value)
    with pytest.raises(ModelLoadError):
        load_weights(nn.Linear(3, 2), path)


# --- resumable training state ---------------------------------------------------------------------------------


class Tiny(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(6, 5), nn.BatchNorm1d(5), nn.ReLU(), nn.Linear(5, 3))

    def forward(self, x):
        return self.net(x)


def _step(model, optimizer, x):
    optimizer.zero_grad()
    model(x).pow(2).mean().backward()
    optimizer.step()


def test_training_state_round_trip(tmp_path):
    torch.manual_seed(0)
    x = torch.randn(8, 6)
    model = Tiny()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2, weight_decay=1e-4)
    for _ in range(3):
        _step(model, optimizer, x)
    optimizer.param_groups[0]["lr"] = 3e-3  # a scheduler moved it
    meta = {"step": 3, "epoch": 0, "best_eer": 0.25, "history": [{"epoch": 1, "loss": 0.5}]}
    save_training_state(tmp_path, "last", model, optimizer, meta)
    expected_rand = torch.rand(4)  # the RNG state was stored before this draw

    assert sorted(p.name for p in tmp_path.iterdir()) == ["last.json", "last.safetensors"]  # no pickle
    assert json.loads((tmp_path / "last.json").read_text())["step"] == 3

    torch.manual_seed(99)
    restored = Tiny()
    restored_opt = torch.optim.AdamW(restored.parameters(), lr=1e-2, weight_decay=1e-4)
    got = load_training_state(tmp_path, "last", restored, restored_opt)
    assert got == meta
    assert torch.equal(torch.rand(4), expected_rand)  # RNG restored
    for (name, a), b in zip(model.state_dict().items(), restored.state_dict().values()):
        assert torch.equal(a, b), name
    assert restored_opt.param_groups[0]["lr"] == 3e-3
    for p_orig, p_rest in zip(model.parameters(), restored.parameters()):
        s_orig, s_rest = optimizer.state[p_orig], restored_opt.state[p_rest]
        assert set(s_orig) == set(s_rest)
        for key in s_orig:
            assert torch.equal(torch.as_tensor(s_orig[key]), torch.as_tensor(s_rest[key])), key

    # resuming continues exactly as the uninterrupted run would
    _step(model, optimizer, x)
    _step(restored, restored_opt, x)
    for a, b in zip(model.parameters(), restored.parameters()):
        torch.testing.assert_close(a, b, atol=0, rtol=0)


def test_training_state_with_an_auxiliary_module(tmp_path):
    """The training-only writer classifier is stored under `aux.` and restored with its optimiser state."""
    torch.manual_seed(0)
    x = torch.randn(8, 6)
    model, aux = Tiny(), torch.nn.Linear(6, 3)
    optimizer = torch.optim.AdamW(list(model.parameters()) + list(aux.parameters()), lr=1e-2)

    def step(m, a, opt):
        opt.zero_grad()
        (m(x).pow(2).mean() + a(x).pow(2).mean()).backward()
        opt.step()

    step(model, aux, optimizer)
    save_training_state(tmp_path, "last", model, optimizer, {"step": 1}, writer_classifier=aux)
    torch.manual_seed(5)
    model2, aux2 = Tiny(), torch.nn.Linear(6, 3)
    opt2 = torch.optim.AdamW(list(model2.parameters()) + list(aux2.parameters()), lr=1e-2)
    assert load_training_state(tmp_path, "last", model2, opt2, writer_classifier=aux2) == {"step": 1}
    torch.testing.assert_close(aux2.weight, aux.weight, atol=0, rtol=0)
    step(model, aux, optimizer)
    step(model2, aux2, opt2)
    for a, b in zip(list(model.parameters()) + list(aux.parameters()), list(model2.parameters()) + list(aux2.parameters())):
        torch.testing.assert_close(a, b, atol=0, rtol=0)
