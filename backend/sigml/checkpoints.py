"""Weights and resumable training checkpoints as safetensors + JSON (no pickle anywhere)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from torch import nn

from .errors import ModelLoadError


def save_weights(model: nn.Module, path: str | Path, dtype: torch.dtype = torch.float32) -> None:
    """Model parameters and buffers; floating tensors cast to `dtype` (fp16 keeps the file small)."""
    state = {
        k: (v.detach().to(dtype) if v.is_floating_point() else v.detach()).contiguous().cpu()
        for k, v in model.state_dict().items()
    }
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    save_file(state, str(tmp), metadata={"format": "pt"})
    tmp.replace(path)


def load_weights(model: nn.Module, path: str | Path, prefix: str = "") -> None:
    """Load safetensors weights into `model` (float32), raising `ModelLoadError` with the path; with `prefix`, only
    the file's tensors under it, the prefix removed (a backbone out of a whole network's file)."""
    path = Path(path)
    if not path.is_file():
        raise ModelLoadError(path, "weights file not found")
    try:
        state = load_file(str(path))
    except (SafetensorError, OSError, ValueError, RuntimeError) as exc:
        raise ModelLoadError(path, f"not a valid safetensors file ({exc})") from exc
    state = {k[len(prefix):]: (v.float() if v.is_floating_point() else v) for k, v in state.items() if k.startswith(prefix)}
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        raise ModelLoadError(path, f"weights do not match the architecture in the model card ({str(exc)[:300]})") from exc


def save_training_state(
    directory: str | Path,
    name: str,
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    meta: dict[str, Any],
    writer_classifier: nn.Module | None = None,
    ema: nn.Module | None = None,
) -> None:
    """`name.safetensors` (model + optimizer tensors) and `name.json` (step, scheduler, RNG, history).

    `writer_classifier`: the training-only auxiliary writer classifier, stored under `aux.`;
    `ema`: the moving average of the weights (`torch.optim.swa_utils.AveragedModel`), under `ema.`."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    tensors = {f"model.{k}": v.detach().contiguous().cpu() for k, v in model.state_dict().items()}
    if writer_classifier is not None:
        tensors.update({f"aux.{k}": v.detach().contiguous().cpu() for k, v in writer_classifier.state_dict().items()})
    if ema is not None:
        tensors.update({f"ema.{k}": v.detach().contiguous().cpu() for k, v in ema.state_dict().items()})
    optimizer_state = optimizer.state_dict()
    for param_index, state in optimizer_state["state"].items():
        for key, value in state.items():
            tensors[f"optim.{param_index}.{key}"] = torch.as_tensor(value).detach().contiguous().cpu()
    tensors["rng.torch"] = torch.get_rng_state()
    tmp = directory / f"{name}.safetensors.tmp"
    save_file(tensors, str(tmp))
    tmp.replace(directory / f"{name}.safetensors")
    meta = {**meta, "optimizer_param_groups": optimizer_state["param_groups"]}
    tmp_json = directory / f"{name}.json.tmp"
    tmp_json.write_text(json.dumps(meta, indent=1))
    tmp_json.replace(directory / f"{name}.json")


def load_training_state(
    directory: str | Path, name: str, model: nn.Module, optimizer: torch.optim.Optimizer,
    writer_classifier: nn.Module | None = None, ema: nn.Module | None = None,
) -> dict[str, Any]:
    """Restore what `save_training_state` wrote into `model`, `optimizer`, `writer_classifier`, `ema` and torch's
    random state; returns the `meta` it was given."""
    directory = Path(directory)
    tensors = load_file(str(directory / f"{name}.safetensors"))
    meta = json.loads((directory / f"{name}.json").read_text())
    model.load_state_dict({k[6:]: v for k, v in tensors.items() if k.startswith("model.")}, strict=True)
    if writer_classifier is not None:
        writer_classifier.load_state_dict({k[4:]: v for k, v in tensors.items() if k.startswith("aux.")}, strict=True)
    if ema is not None:
        ema_state = {k[4:]: v for k, v in tensors.items() if k.startswith("ema.")}
        if ema_state:  # else (a checkpoint from a run without it) the average starts from the resumed weights
            ema.load_state_dict(ema_state, strict=True)
    state: dict[int, dict[str, torch.Tensor]] = {}
    for key, value in tensors.items():
        if key.startswith("optim."):
            _, param_index, field = key.split(".", 2)
            state.setdefault(int(param_index), {})[field] = value
    optimizer.load_state_dict({"state": state, "param_groups": meta.pop("optimizer_param_groups")})
    torch.set_rng_state(tensors["rng.torch"])
    return meta
