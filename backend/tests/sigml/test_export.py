"""sigml.export and the ONNX serving path: the export agrees with torch's float32 embeddings within 1e-3 (both
poolings, synthetic images always, real test writers' images where the datasets are), is recorded in the model
card and checked at load, and a Verifier on ONNX Runtime answers as the torch one does."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from sigml import export
from sigml.checkpoints import save_weights
from sigml.errors import ModelLoadError
from sigml.inference import Verifier
from sigml.model import ModelConfig, SiameseResNet18
from sigml.modelcard import CardError, ModelCard, card_path_for, file_sha256, validate_card
from sigml.preprocessing import preprocess_array
from sigml.testing import image_bytes, make_test_model, signature_image

TOLERANCE = 1e-3
REPO = Path(__file__).resolve().parents[3]
SHIPPED = REPO / "trained_model_parameters" / "siamese_resnet18.safetensors"
DATASETS = ("CEDAR", "GPDS", "BHSig260-Bengali", "BHSig260-Hindi", "SigComp2011-Dutch", "CNSig")


def model_with_pooling(folder: Path, pooling: str) -> Path:
    """make_test_model's model and card, with `pooling` (a trained-looking head: random BatchNorm statistics)."""
    path = make_test_model(folder)
    card = ModelCard.load(card_path_for(path))
    cfg = ModelConfig(embedding_dim=card.architecture.embedding_dim, hidden_dim=card.architecture.hidden_dim,
                      pooling=pooling)
    torch.manual_seed(1)
    model = SiameseResNet18(cfg).eval()
    for module in model.modules():
        if isinstance(module, (torch.nn.BatchNorm1d, torch.nn.BatchNorm2d)):
            module.running_mean.uniform_(-0.2, 0.2)
            module.running_var.uniform_(0.5, 2.0)
    save_weights(model, path, dtype=torch.float16)
    card.architecture = cfg
    card.weights = {**card.weights, "sha256": file_sha256(path)}
    card.save(card_path_for(path))
    return path


def synthetic_batch(n: int = 5) -> np.ndarray:
    return np.stack([preprocess_array(signature_image(40 + i, size=(260 + 30 * i, 100 + 12 * i)))
                     for i in range(n)])[:, None]


@pytest.fixture(scope="module", params=["global", "multiscale"])
def exported(request, tmp_path_factory) -> Path:
    path = model_with_pooling(tmp_path_factory.mktemp(f"onnx_{request.param}"), request.param)
    export.export_onnx(path)
    return path


def test_export_agrees_with_torch_and_is_in_the_card(exported: Path):
    onnx_path = exported.with_suffix(".onnx")
    card = json.loads(card_path_for(exported).read_text())
    assert card["onnx"] == {"file": onnx_path.name, "sha256": file_sha256(onnx_path),
                            "weights_sha256": card["weights"]["sha256"], "opset": export.OPSET}
    assert list(card).index("onnx") == list(card).index("weights") + 1
    model = export.load_torch_model(exported)
    images = synthetic_batch()
    expected = export.torch_embeddings(model, images)
    for part in (slice(0, 1), slice(1, 3), slice(None)):  # the batch axis is dynamic
        got = export.onnx_embeddings(onnx_path, images[part], threads=1)
        assert got.shape == (len(images[part]), card["architecture"]["embedding_dim"]) and got.dtype == np.float32
        assert np.abs(got - expected[part]).max() < TOLERANCE
    assert np.allclose(np.linalg.norm(got, axis=1), 1.0, atol=1e-5)


def test_onnx_and_torch_verifiers_give_the_same_answers(exported: Path, png_signatures):
    onnx = Verifier.from_files(exported, runtime="onnx", threads=1)
    torch_ = Verifier.from_files(exported, runtime="torch", bf16=False)
    assert (onnx.runtime, torch_.runtime) == ("onnx", "torch") and onnx.model_version == torch_.model_version
    assert isinstance(onnx.preprocess(png_signatures[0]), np.ndarray)
    for a, b in ((0, 1), (2, 3), (0, 0)):
        r_onnx, r_torch = onnx.verify(png_signatures[a], png_signatures[b]), torch_.verify(png_signatures[a], png_signatures[b])
        assert r_onnx.distance == pytest.approx(r_torch.distance, abs=2 * TOLERANCE)
        assert (r_onnx.decision, r_onnx.flags) == (r_torch.decision, r_torch.flags)
    refs = onnx.embed_tensors([onnx.preprocess(s) for s in png_signatures[:3]])
    assert np.abs(refs - torch_.embed_tensors([torch_.preprocess(s) for s in png_signatures[:3]])).max() < TOLERANCE
    p_onnx, p_torch = onnx.verify_against(refs, png_signatures[4]), torch_.verify_against(refs, png_signatures[4])
    assert p_onnx.score == pytest.approx(p_torch.score, abs=1e-2) and p_onnx.decision == p_torch.decision
    copy_onnx = onnx.verify_against(refs, png_signatures[1], same_bytes_as=1)
    assert copy_onnx.copy_of == torch_.verify_against(refs, png_signatures[1], same_bytes_as=1).copy_of == 1
    ref, q = onnx.preprocess(png_signatures[0]), onnx.preprocess(png_signatures[1])
    maps_onnx = onnx.explain(ref, q, patch=50)
    maps_torch = torch_.explain(torch.from_numpy(ref), torch.from_numpy(q), patch=50)
    for name in ("reference", "questioned"):
        assert maps_onnx[name].shape == ref.shape[1:] and np.abs(maps_onnx[name] - maps_torch[name]).max() < 0.05


def test_auto_prefers_the_export_and_a_stale_or_damaged_one_is_refused(exported: Path, tmp_path: Path):
    folder = tmp_path / "m"
    folder.mkdir()
    for suffix in (".safetensors", ".json", ".onnx"):
        shutil.copy(exported.with_suffix(suffix), folder)
    weights, card_file, onnx_file = (folder / exported.with_suffix(s).name for s in (".safetensors", ".json", ".onnx"))
    assert Verifier.from_files(weights, runtime="auto").runtime == "onnx"
    assert Verifier.from_files(weights).runtime == "torch"  # evaluation's default

    card = json.loads(card_file.read_text())
    stale = {**card, "onnx": {**card["onnx"], "weights_sha256": "0" * 64}}  # exported from other weights
    card_file.write_text(json.dumps(stale))
    with pytest.raises(ModelLoadError, match="exported from other weights"):
        Verifier.from_files(weights, runtime="onnx")
    assert Verifier.from_files(weights, runtime="auto").runtime == "torch"  # torch is here: it serves instead

    card_file.write_text(json.dumps(card))
    data = bytearray(onnx_file.read_bytes())
    data[len(data) // 2] ^= 0xFF
    onnx_file.write_bytes(bytes(data))
    with pytest.raises(ModelLoadError, match="sha256"):
        Verifier.from_files(weights, runtime="auto")


def test_the_card_schema_checks_the_onnx_entry(exported: Path):
    card = json.loads(card_path_for(exported).read_text())
    validate_card(card)
    validate_card({k: v for k, v in card.items() if k != "onnx"})  # cards without an export load
    for field, value in (("file", "../elsewhere.onnx"), ("file", "m.bin"), ("sha256", "abc"), ("opset", 2.5)):
        with pytest.raises(CardError, match=f"onnx.{field}"):
            validate_card({**card, "onnx": {**card["onnx"], field: value}})
    assert ModelCard.from_dict(card).to_dict()["onnx"] == card["onnx"]
    assert "onnx" not in ModelCard.from_dict({k: v for k, v in card.items() if k != "onnx"}).to_dict()


def test_int8_quantisation_runs(exported: Path, tmp_path: Path):
    out = export.quantize_int8(exported.with_suffix(".onnx"), synthetic_batch(4), tmp_path / "int8.onnx")
    emb = export.onnx_embeddings(out, synthetic_batch(3), threads=1)
    assert emb.shape[0] == 3 and np.isfinite(emb).all()
    assert out.stat().st_size < exported.with_suffix(".onnx").stat().st_size / 2


def test_the_shipped_model_has_its_onnx_export():
    """`make run` serves the shipped model's export without torch: a new shipped model needs
    `python -m sigml export --model trained_model_parameters/siamese_resnet18.safetensors` (and both files committed)."""
    if not SHIPPED.is_file():
        pytest.skip("no shipped model")
    card = json.loads(card_path_for(SHIPPED).read_text())
    assert card.get("onnx"), "the shipped model card names no ONNX export: run python -m sigml export"
    assert Verifier.from_files(SHIPPED, runtime="onnx", threads=1).runtime == "onnx"  # its sha256 and weights match


def _test_writer_images(root: Path, name: str, n: int) -> list[Path]:
    from sigml.datasets import read_dataset
    from sigml.splits import read_splits_csv, select

    splits = REPO / "image_pairs" / name / "splits.csv"
    if not splits.is_file():
        return []
    records = select(read_dataset(root, name=name), read_splits_csv(splits), "test")
    genuine = [r for r in records if r.genuine][:n // 2]
    forged = [r for r in records if not r.genuine][: n - len(genuine)]
    return [root / r.path for r in genuine + forged]


@pytest.mark.parametrize("name", DATASETS)
def test_shipped_export_agrees_with_torch_on_real_test_writers(name: str, shared_datasets: Path):
    """The shipped model's export, on a few images of each dataset's test writers."""
    card_path = card_path_for(SHIPPED)
    if not SHIPPED.is_file() or not json.loads(card_path.read_text()).get("onnx"):
        pytest.skip("the shipped model has no ONNX export in its card (python -m sigml export)")
    root = shared_datasets / name
    if not root.is_dir():
        pytest.skip(f"{name} not found at {root}")
    paths = _test_writer_images(root, name, 4)
    if not paths:
        pytest.skip(f"no test writers of {name} (image_pairs/{name}/splits.csv)")
    onnx = Verifier.from_files(SHIPPED, runtime="onnx", threads=1)
    model = export.load_torch_model(SHIPPED)
    images = np.stack([preprocess_array(p, onnx.card.preprocessing) for p in paths])[:, None]
    assert np.abs(onnx.embed_tensors(images) - export.torch_embeddings(model, images)).max() < TOLERANCE


def test_cli_export(tmp_path: Path):
    from sigml.cli import main

    path = make_test_model(tmp_path)
    assert main(["export", "--model", str(path)]) == 0
    assert json.loads(card_path_for(path).read_text())["onnx"]["file"] == "test_model.onnx"
    assert Verifier.from_files(path, runtime="auto").verify(image_bytes(signature_image(1)),
                                                             image_bytes(signature_image(2))).decision
