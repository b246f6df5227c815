"""Export the embedding network to ONNX, for serving on ONNX Runtime without torch (`python -m sigml export`).

`export_onnx(weights)` writes `<stem>.onnx` next to the weights: preprocessed N x 1 x H x W float32 images (H x W
the model card's canvas, N dynamic) -> N x D embeddings, L2-normalised as the torch model's `embed`. It checks
that ONNX Runtime gives torch's float32 embeddings within `TOLERANCE` and records the file in the model card:
`onnx: {"file", "sha256", "weights_sha256", "opset"}` (`sigml.inference.Verifier.from_files` serves it only while
`weights_sha256` is the card's `weights.sha256`, so new weights under the card are never served by an old export).

`quantize_int8` makes an int8 model by ONNX Runtime's static quantisation, calibrated on preprocessed images
(`bench/onnx_quantize.py` measures what it costs on every dataset's test writers before anyone ships it).
"""

from __future__ import annotations

import json
import logging
import warnings
from pathlib import Path
from typing import Sequence

import numpy as np

from .errors import ModelLoadError
from .modelcard import CardError, ModelCard, card_path_for, file_sha256, require_weights_checksum, validate_card

log = logging.getLogger(__name__)

OPSET = 17
TOLERANCE = 1e-3  # largest |ONNX - torch| of an embedding component accepted at export
INPUT_NAME, OUTPUT_NAME = "images", "embeddings"


def onnx_path_for(weights_path: str | Path) -> Path:
    return Path(weights_path).with_suffix(".onnx")


def load_torch_model(weights_path: str | Path, card: ModelCard | None = None):
    """The float32 torch model of `weights_path` (checked against its card's sha256), in eval mode."""
    from .checkpoints import load_weights
    from .model import SiameseResNet18

    weights_path = Path(weights_path)
    if not weights_path.is_file():
        raise ModelLoadError(weights_path, "weights file not found")
    card = card or ModelCard.load(card_path_for(weights_path))
    try:
        expected = require_weights_checksum(card)
    except CardError as exc:
        raise ModelLoadError(card_path_for(weights_path), f"model card is not valid: {exc}") from exc
    if file_sha256(weights_path) != expected:
        raise ModelLoadError(weights_path, "the file's sha256 is not the one recorded in its model card")
    model = SiameseResNet18(card.architecture)
    load_weights(model, weights_path)
    return model.float().eval()


def sample_images(card: ModelCard, n: int = 4, seed: int = 0) -> np.ndarray:
    """`n` preprocessed synthetic signatures on the card's canvas (N x 1 x H x W float32): export's check."""
    from .preprocessing import preprocess_array
    from .testing import signature_image

    return np.stack([preprocess_array(signature_image(seed + i, size=(300 + 40 * i, 120 + 10 * i)), card.preprocessing)
                     for i in range(n)])[:, None]


def torch_embeddings(model, images: np.ndarray) -> np.ndarray:
    """Float32 embeddings of the torch model, no autocast: the reference the export is checked against."""
    import torch

    with torch.inference_mode():
        return model.embed(torch.from_numpy(np.ascontiguousarray(images, dtype=np.float32))).float().numpy()


def onnx_embeddings(path: str | Path, images: np.ndarray, *, threads: int | None = None) -> np.ndarray:
    from .embedders import OnnxEmbedder

    return OnnxEmbedder(path, threads=threads).embed(images)


def export_onnx(weights_path: str | Path, out: str | Path | None = None, *, opset: int = OPSET,
                update_card: bool = True, check_images: np.ndarray | None = None) -> Path:
    """Write the ONNX export of `weights_path` (default `<stem>.onnx` next to it), check it against torch on
    `check_images` (default: synthetic signatures; batch of 1 and of several) and, with `update_card`, record it
    in the model card. Raises `ValueError` if ONNX Runtime and torch disagree by more than `TOLERANCE`."""
    import torch

    weights_path = Path(weights_path)
    card_path = card_path_for(weights_path)
    card = ModelCard.load(card_path)
    model = load_torch_model(weights_path, card)
    out = Path(out) if out is not None else onnx_path_for(weights_path)
    cfg = card.preprocessing
    dummy = torch.zeros(2, 1, cfg.canvas_height, cfg.canvas_width)

    class Embed(torch.nn.Module):
        def __init__(self, network) -> None:
            super().__init__()
            self.network = network

        def forward(self, images):
            return self.network.embed(images)

    wrapper = Embed(model).eval()
    tmp = out.with_name(out.name + ".tmp")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the TorchScript exporter's deprecation notices
        kwargs = {"dynamo": False} if _has_dynamo_flag(torch.onnx.export) else {}
        torch.onnx.export(wrapper, (dummy,), str(tmp), opset_version=opset, input_names=[INPUT_NAME],
                          output_names=[OUTPUT_NAME], do_constant_folding=True,
                          dynamic_axes={INPUT_NAME: {0: "batch"}, OUTPUT_NAME: {0: "batch"}}, **kwargs)
    images = sample_images(card) if check_images is None else np.asarray(check_images, dtype=np.float32)
    expected = torch_embeddings(model, images)
    got = np.concatenate([onnx_embeddings(tmp, images[:1]), onnx_embeddings(tmp, images[1:])])
    error = float(np.abs(got - expected).max())
    if not error <= TOLERANCE:
        tmp.unlink(missing_ok=True)
        raise ValueError(f"the ONNX export disagrees with torch by {error:.2e} (> {TOLERANCE}); nothing was written")
    tmp.replace(out)
    log.info("wrote %s (%.1f MB; largest difference from torch %.1e)", out, out.stat().st_size / 1e6, error)
    if update_card:
        record_in_card(card_path, out, opset=opset)
    return out


def _has_dynamo_flag(export) -> bool:
    import inspect

    return "dynamo" in inspect.signature(export).parameters


def record_in_card(card_path: str | Path, onnx_path: str | Path, *, opset: int = OPSET) -> dict:
    """Put `onnx: {file, sha256, weights_sha256, opset}` into the card's JSON (every other key kept as it is, the
    export right after `weights`), checked against the card's schema first. The ONNX file must lie next to the
    card. Returns the entry."""
    card_path, onnx_path = Path(card_path), Path(onnx_path)
    if onnx_path.resolve().parent != card_path.resolve().parent:
        raise ValueError(f"{onnx_path} must lie next to its model card {card_path}")
    data = json.loads(card_path.read_text())
    entry = {"file": onnx_path.name, "sha256": file_sha256(onnx_path),
             "weights_sha256": str(data.get("weights", {}).get("sha256", "")), "opset": int(opset)}
    updated: dict = {}
    for key, value in data.items():
        if key != "onnx":
            updated[key] = value
        if key == "weights":
            updated["onnx"] = entry
    updated.setdefault("onnx", entry)
    validate_card(updated)
    card_path.write_text(json.dumps(updated, indent=2) + "\n")
    return entry


class _Calibration:
    """onnxruntime.quantization's CalibrationDataReader over preprocessed images, `batch` at a time."""

    def __init__(self, images: np.ndarray, batch: int = 16) -> None:
        self.batches = iter([{INPUT_NAME: np.ascontiguousarray(images[i : i + batch], dtype=np.float32)}
                             for i in range(0, len(images), batch)])

    def get_next(self):
        return next(self.batches, None)


def quantize_int8(onnx_path: str | Path, calibration_images: np.ndarray, out: str | Path, *,
                  per_channel: bool = True, method: str = "minmax", exclude: Sequence[str] = ()) -> Path:
    """ONNX Runtime's static int8 quantisation (QDQ, int8 weights and activations) of `onnx_path`, calibrated on
    `calibration_images` (preprocessed N x 1 x H x W, e.g. training writers' signatures); `method`: "minmax",
    "entropy" or "percentile"; `exclude`: node names left in float."""
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    out = Path(out)
    prepared = out.with_name(out.stem + ".prep.onnx")
    quant_pre_process(str(onnx_path), str(prepared), skip_symbolic_shape=True)
    methods = {"minmax": CalibrationMethod.MinMax, "entropy": CalibrationMethod.Entropy,
               "percentile": CalibrationMethod.Percentile}
    try:
        quantize_static(str(prepared), str(out), _Calibration(np.asarray(calibration_images)),
                        quant_format=QuantFormat.QDQ, activation_type=QuantType.QInt8, weight_type=QuantType.QInt8,
                        per_channel=per_channel, calibrate_method=methods[method], nodes_to_exclude=list(exclude))
    finally:
        prepared.unlink(missing_ok=True)
    return out
