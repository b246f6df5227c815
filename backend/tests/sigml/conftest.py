"""Fixtures of the sigml tests: tiny in-memory signatures, synthetic dataset folders, a test model."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Callable

import pytest
import torch

from sigml.datasets import SignatureRecord
from sigml.inference import Verifier
from sigml.testing import image_bytes, make_test_model, signature_image

CANVAS = (150, 220)  # preprocessed height, width


@pytest.fixture(autouse=True, scope="session")
def _torch_threads():
    """Few intra-op threads: the batches here are tiny, and oversubscribed cores (CI, a training job
    running beside the tests) make multi-threaded forward passes many times slower, not faster."""
    previous = torch.get_num_threads()
    default = max(1, min(2, (os.cpu_count() or 1) - 1))
    torch.set_num_threads(int(os.environ.get("SIGML_TEST_THREADS", default)))
    yield
    torch.set_num_threads(previous)


@pytest.fixture(scope="session")
def cedar_root(shared_datasets: Path) -> Path:
    root = shared_datasets / "CEDAR"
    if not root.is_dir():
        pytest.skip(f"CEDAR not found at {root}")
    return root


@pytest.fixture(scope="session")
def gpds_root(shared_datasets: Path) -> Path:
    root = shared_datasets / "GPDS"
    if not root.is_dir():
        pytest.skip(f"GPDS not found at {root}")
    return root


@pytest.fixture(scope="session")
def png_signatures() -> list[bytes]:
    """Five distinct synthetic signatures as PNG bytes."""
    return [image_bytes(signature_image(seed=s)) for s in range(5)]


def _write_signature(path: Path, seed: int, size: tuple[int, int] = (120, 48)) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    fmt = {".jpg": "JPEG", ".jpeg": "JPEG", ".tif": "TIFF", ".tiff": "TIFF", ".bmp": "BMP"}.get(path.suffix.lower(), "PNG")
    path.write_bytes(image_bytes(signature_image(seed=seed, size=size), fmt))
    return path


@pytest.fixture
def write_signature() -> Callable[..., Path]:
    """write_signature(path, seed): a small synthetic signature image file (format from the suffix)."""
    return _write_signature


@pytest.fixture
def make_generic_dataset(tmp_path: Path) -> Callable[..., Path]:
    """make_generic_dataset(name, writers=6, genuine=4, forged=2): `<writer>/genuine|forged/*.png` under tmp_path."""

    def make(name: str = "SYN", writers: int = 6, genuine: int = 4, forged: int = 2) -> Path:
        root = tmp_path / name
        for w in range(1, writers + 1):
            for i in range(genuine):
                _write_signature(root / str(w) / "genuine" / f"{w}_{i + 1}.png", seed=1000 * w + i)
            for i in range(forged):
                _write_signature(root / str(w) / "forged" / f"{w}_{i + 1}.png", seed=1000 * w + 500 + i)
        return root

    return make


@pytest.fixture
def synthetic_records() -> Callable[..., list[SignatureRecord]]:
    """synthetic_records({writer: (n_genuine, n_forged)}, dataset="D"): records without files."""

    def make(spec: dict[str, tuple[int, int]], dataset: str = "D") -> list[SignatureRecord]:
        out = []
        for w, (g, f) in spec.items():
            out += [SignatureRecord(dataset, w, "genuine", f"{w}/genuine/{i}.png") for i in range(g)]
            out += [SignatureRecord(dataset, w, "forged", f"{w}/forged/{i}.png") for i in range(f)]
        return out

    return make


@pytest.fixture(scope="session")
def test_model_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An untrained model + model card (sigml.testing.make_test_model), made once per session."""
    return make_test_model(tmp_path_factory.mktemp("model"), seed=0, threshold=0.5, embedding_dim=32)


@pytest.fixture(scope="session")
def verifier(test_model_path: Path) -> Verifier:
    return Verifier.from_files(test_model_path)  # bf16 where the CPU runs it fast
