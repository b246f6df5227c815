"""Embedders: what turns preprocessed images into embeddings for `sigml.inference.Verifier`.

- `OnnxEmbedder`: the ONNX export of the network (`sigml.export`) on an ONNX Runtime session; what the API serves
  with, and it never imports torch.
- `TorchEmbedder`: the torch model (`sigml.embedding.embed_tensors`: channels-last, bf16 where the CPU runs it
  fast); training, evaluation and the notebooks.

Both take N x 1 x H x W preprocessed images (float in [0, 1], or uint8 = value x 255; numpy arrays or torch
tensors) and return N x D float32 numpy embeddings; the export agrees with torch's float32 embeddings within 1e-3
(tests). Torch and ONNX Runtime are imported only when an embedder of theirs is made.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any, Protocol

import numpy as np

log = logging.getLogger(__name__)

RUNTIMES = ("onnx", "torch")


def as_array(images: Any) -> np.ndarray:
    """Preprocessed images (numpy, or a torch tensor) as a float32 numpy array in [0, 1] (uint8 ones / 255)."""
    if hasattr(images, "detach"):  # a torch tensor: its values, without importing torch here
        images = images.detach().cpu().numpy()
    images = np.asarray(images)
    if images.dtype == np.uint8:
        return images.astype(np.float32) / 255
    return images.astype(np.float32, copy=False)


class Embedder(Protocol):
    runtime: str  # "onnx" or "torch"
    embedding_dim: int

    def embed(self, images: Any, *, batch_size: int = 64, progress: bool = False) -> np.ndarray:
        """N x 1 x H x W preprocessed images -> N x D float32 embeddings."""

    def wrap(self, image: np.ndarray) -> Any:
        """A preprocessed 1 x H x W float32 array as this embedder's image type (a tensor for torch)."""


def session_options(threads: int | None = None, *, low_memory: bool = True):
    """ONNX Runtime session options for a serving process: `threads` intra-op threads (None: ONNX Runtime's
    default, one per core), one inter-op thread, sequential execution, no spinning threads between requests, and
    with `low_memory` no memory arena or memory pattern (freed buffers go back to the allocator, and a batch of a
    new size does not keep a plan of its own)."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    opts.inter_op_num_threads = 1
    if threads:
        opts.intra_op_num_threads = int(threads)
    opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
    if low_memory:
        opts.enable_cpu_mem_arena = False
        opts.enable_mem_pattern = False
    opts.log_severity_level = 3  # errors only
    return opts


class OnnxEmbedder:
    """The exported network on one ONNX Runtime CPU session (make one per process: `sigml.inference.load_verifier`
    caches the Verifier that holds it)."""

    runtime = "onnx"

    def __init__(self, path: str | Path, *, threads: int | None = None, low_memory: bool = True) -> None:
        import onnxruntime as ort

        self.path = Path(path)
        self.session = ort.InferenceSession(str(self.path), sess_options=session_options(threads, low_memory=low_memory),
                                            providers=["CPUExecutionProvider"])
        self.input_name = self.session.get_inputs()[0].name
        dim = self.session.get_outputs()[0].shape[-1]
        self.embedding_dim = int(dim) if isinstance(dim, int) else 0

    def embed(self, images: Any, *, batch_size: int = 64, progress: bool = False) -> np.ndarray:
        images = as_array(images)
        if len(images) == 0:
            return np.zeros((0, self.embedding_dim), np.float32)
        out = [self.session.run(None, {self.input_name: np.ascontiguousarray(images[i : i + batch_size])})[0]
               for i in range(0, len(images), batch_size)]
        return np.concatenate(out).astype(np.float32, copy=False)

    def wrap(self, image: np.ndarray) -> np.ndarray:
        return image


class TorchEmbedder:
    """A `sigml.model.SiameseResNet18` in eval mode, channels-last; `bf16`: None = SIGVER_BF16, else where the CPU
    runs it fast (`sigml.embedding.bf16_native`)."""

    runtime = "torch"

    def __init__(self, model: Any, *, bf16: bool | None = None) -> None:
        import torch

        from .embedding import bf16_native
        from .env import env_flag

        self.model = model.eval().to(memory_format=torch.channels_last)
        self.bf16 = env_flag("SIGVER_BF16", bf16_native()) if bf16 is None else bool(bf16)
        self.embedding_dim = int(model.cfg.embedding_dim)

    def embed(self, images: Any, *, batch_size: int = 64, progress: bool = False) -> np.ndarray:
        import torch

        from .embedding import embed_tensors

        if not isinstance(images, torch.Tensor):
            images = torch.from_numpy(np.ascontiguousarray(images))
        return embed_tensors(self.model, images, bf16=self.bf16, batch_size=batch_size, progress=progress)

    def wrap(self, image: np.ndarray) -> Any:
        import torch

        return torch.from_numpy(image)


def default_runtime() -> str:
    """SIGVER_RUNTIME: "onnx", "torch" or "auto" (the default: the ONNX export when the model card names one)."""
    value = os.environ.get("SIGVER_RUNTIME", "auto").strip().lower() or "auto"
    if value not in (*RUNTIMES, "auto"):
        raise ValueError(f"SIGVER_RUNTIME must be one of onnx, torch, auto, not {value!r}")
    return value


def torch_available() -> bool:
    import importlib.util

    return importlib.util.find_spec("torch") is not None
