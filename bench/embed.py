"""Images/s of batch embedding: fp32 vs bfloat16 autocast vs channels-last vs TorchScript vs ONNX Runtime.

    .venv/bin/python bench/embed.py [--model M] [--data ../shared/datasets] [--batches 1,8,32,64]
        [--seconds 3] [--threads 2] [--variants ...] [--quick]

Real CEDAR/GPDS signatures, preprocessed once (150x220 canvas), embedded in batches of 1, 8, 32 and 64
for about `--seconds` per cell. Variants: `fp32`, `fp32-cl` (channels-last), `bf16` (autocast),
`bf16-cl` (autocast + channels-last: what `Verifier` does by default), `torchscript` (traced + frozen,
fp32) and `onnxruntime` (exported to ONNX, fp32; skipped when onnxruntime is not installed).
Correctness: the distances of 64 real pairs from each variant against PyTorch fp32 (exported models
must match within 1e-3; bf16 is reported, not held to it).
"""

from __future__ import annotations

import argparse
import tempfile
import time
import warnings
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from torch import nn

from _common import add_common_args, cpu_note, load_pairs, resolve_model

from sigml.inference import Verifier

TOLERANCE = 1e-3
warnings.filterwarnings("ignore", category=FutureWarning, module=r"torch\.jit")  # trace/freeze: deprecated, still work
warnings.filterwarnings("ignore", category=DeprecationWarning, message=r".*legacy TorchScript-based ONNX export")


class EmbedModule(nn.Module):
    """`model.embed` as `forward`, for tracing and export."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, batch: torch.Tensor) -> torch.Tensor:
        return self.model.embed(batch)


def torch_variant(model: nn.Module, *, bf16: bool, channels_last: bool) -> Callable[[torch.Tensor], np.ndarray]:
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    model = model.to(memory_format=fmt)

    @torch.inference_mode()
    def run(batch: torch.Tensor) -> np.ndarray:
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            return model.embed(batch.contiguous(memory_format=fmt)).float().numpy()

    return run


def torchscript_variant(model: nn.Module, example: torch.Tensor) -> Callable[[torch.Tensor], np.ndarray]:
    with torch.no_grad():
        scripted = torch.jit.optimize_for_inference(torch.jit.freeze(torch.jit.trace(EmbedModule(model).eval(), example)))

    @torch.inference_mode()
    def run(batch: torch.Tensor) -> np.ndarray:
        return scripted(batch).numpy()

    return run


def onnxruntime_variant(model: nn.Module, example: torch.Tensor, threads: int, directory: Path) -> Callable[[torch.Tensor], np.ndarray] | None:
    try:
        import onnxruntime as ort
    except ImportError:
        print("onnxruntime: not installed (pip install onnxruntime), skipped")
        return None
    path = directory / "embed.onnx"
    torch.onnx.export(EmbedModule(model).eval(), (example,), str(path), input_names=["images"], output_names=["embeddings"],
                      dynamic_axes={"images": {0: "n"}, "embeddings": {0: "n"}}, opset_version=17, dynamo=False)
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])

    def run(batch: torch.Tensor) -> np.ndarray:
        return session.run(["embeddings"], {"images": batch.numpy()})[0]

    return run


def images_per_s(run: Callable[[torch.Tensor], np.ndarray], images: torch.Tensor, batch: int, seconds: float) -> float:
    chunk = images[:batch].contiguous()
    run(chunk)  # warm-up: first call of a shape builds kernels / plans
    run(chunk)
    done, started = 0, time.perf_counter()
    while True:
        run(chunk)
        done += batch
        elapsed = time.perf_counter() - started
        if elapsed >= seconds and done >= 2 * batch:
            return done / elapsed


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_common_args(p)
    p.add_argument("--batches", default="1,8,32,64")
    p.add_argument("--seconds", type=float, default=3.0, help="timing per batch size and variant")
    p.add_argument("--threads", type=int, default=2, help="torch intra-op threads (and ONNX Runtime's)")
    p.add_argument("--variants", default="fp32,fp32-cl,bf16,bf16-cl,torchscript,onnxruntime")
    args = p.parse_args()
    if args.quick:
        args.batches, args.seconds = "1,8", 0.3
    torch.set_num_threads(args.threads)
    model_path = resolve_model(args.model)
    print(cpu_note())
    verifier = Verifier.from_files(model_path)
    model = verifier.model.to(memory_format=torch.contiguous_format).eval()
    batches = [int(b) for b in args.batches.split(",")]
    pairs = load_pairs(args.data, 64)
    refs = torch.stack([verifier.preprocess(pr.reference) for pr in pairs])
    qs = torch.stack([verifier.preprocess(pr.questioned) for pr in pairs])
    images = torch.cat([refs, qs])  # 128 real preprocessed signatures
    print(f"{len(images)} real signatures preprocessed to {tuple(images.shape[1:])}; torch threads {torch.get_num_threads()}")

    def distances(run: Callable[[torch.Tensor], np.ndarray]) -> np.ndarray:
        emb = np.concatenate([run(images[i : i + 32]) for i in range(0, len(images), 32)])
        return np.linalg.norm(emb[: len(pairs)] - emb[len(pairs) :], axis=1)

    with tempfile.TemporaryDirectory() as tmp:
        example = images[:2].contiguous()
        builders: dict[str, Callable[[], Callable | None]] = {
            "fp32": lambda: torch_variant(model, bf16=False, channels_last=False),
            "fp32-cl": lambda: torch_variant(model, bf16=False, channels_last=True),
            "bf16": lambda: torch_variant(model, bf16=True, channels_last=False),
            "bf16-cl": lambda: torch_variant(model, bf16=True, channels_last=True),
            "torchscript": lambda: torchscript_variant(model.to(memory_format=torch.contiguous_format), example),
            "onnxruntime": lambda: onnxruntime_variant(model.to(memory_format=torch.contiguous_format), example, args.threads, Path(tmp)),
        }
        reference = distances(torch_variant(model, bf16=False, channels_last=False))
        header = "variant".ljust(12) + "".join(f"batch {b:>3}".rjust(12) for b in batches) + "   max |distance - fp32|"
        print("images/s")
        print(header)
        for name in args.variants.split(","):
            run = builders[name]()
            if run is None:
                continue
            rates = [images_per_s(run, images, b, args.seconds) for b in batches]
            diff = float(np.abs(distances(run) - reference).max())
            check = "" if name.startswith(("fp32", "bf16")) else ("  OK (<= 1e-3)" if diff <= TOLERANCE else "  FAIL (> 1e-3)")
            print(name.ljust(12) + "".join(f"{r:12.1f}" for r in rates) + f"   {diff:.2e}{check}")


if __name__ == "__main__":
    main()
