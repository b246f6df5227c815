"""The API serves an ONNX export on ONNX Runtime without ever importing torch: a fresh interpreter in which torch
and torchvision cannot be imported starts Django (loading the model as a server does) and calls every endpoint
through the test client (serve_without_torch.py); its answers match the torch Verifier's."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from sigml.export import export_onnx
from sigml.inference import Verifier
from sigml.testing import image_bytes, signature_image

PROBE = Path(__file__).with_name("serve_without_torch.py")


@pytest.fixture(scope="module")
def onnx_model(test_model_path: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("onnx_model")
    for suffix in (".safetensors", ".json"):
        shutil.copy(test_model_path.with_suffix(suffix), folder / f"served{suffix}")
    export_onnx(folder / "served.safetensors")
    return folder / "served.safetensors"


def test_every_endpoint_answers_without_torch(onnx_model: Path, tmp_path: Path):
    images = tmp_path / "images"
    images.mkdir()
    for i in range(6):
        (images / f"{i}.png").write_bytes(image_bytes(signature_image(300 + i)))
    data = tmp_path / "data" / "SYNTH"
    for w in range(1, 4):
        for label, n in (("genuine", 3), ("forged", 2)):
            (data / f"w{w}" / label).mkdir(parents=True)
            for i in range(n):
                (data / f"w{w}" / label / f"w{w}_{i + 1}.png").write_bytes(
                    image_bytes(signature_image(10 * w + i + (5 if label == "forged" else 0), size=(180, 80))))
    work = tmp_path / "work"
    work.mkdir()
    # the probe makes its own test database: SQLite, whatever database this suite runs on (its own PostgreSQL test
    # database would clash with this process's)
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    done = subprocess.run([sys.executable, str(PROBE), str(onnx_model), str(data.parent), str(images), str(work)],
                          capture_output=True, text=True, timeout=900, cwd=tmp_path, env=env)
    assert done.returncode == 0, done.stderr[-3000:]
    out = json.loads(done.stdout.strip().splitlines()[-1])
    assert out["attempts"] == [] and out["torch_loaded"] == [], out
    assert out["runtime"] == "onnx"
    refused = {name: code for name, code in out["status"].items() if code >= 400 and name != "model-plot"}
    assert not refused, json.dumps(out["status"])  # every call answered as it should (no plots in this model's folder: 404)
    for name in ("health", "model", "verify", "verify-same", "profile-verify", "profile-verify-copy",
                 "dataset-pairs-verify", "records", "records-export", "schema", "datasets"):
        assert out["status"][name] == 200, (name, out["status"])
    assert out["status"]["references-create"] == 201, out["status"]
    explanation = out["verify"]["explanation"]
    assert explanation["method"] == "occlusion" and explanation["questioned"].startswith("data:image/png"), explanation

    # the same pair, answered by the torch Verifier of the same weights: the same score and decision
    torch_verifier = Verifier.from_files(onnx_model, runtime="torch", bf16=False)
    expected = torch_verifier.verify(images.joinpath("0.png").read_bytes(), images.joinpath("1.png").read_bytes())
    assert out["verify"]["decision"] == expected.decision
    assert np.isclose(out["verify"]["score"], expected.distance, atol=2e-3)
