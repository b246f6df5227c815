"""Our verify path against a faithful emulation of the original project's per-request path, same pairs, same run.

    .venv/bin/python bench/vs_original.py [--model M] [--data ../shared/datasets] [--pairs 30] [--no-http] [--quick]

The original built the network and loaded its weights from disk inside every request. Emulated here,
per pair: construct the Siamese ResNet-18 (same architecture as ours), `torch.load(weights_only=True)` a
state dict of the same size from disk (saved once with `torch.save(model.state_dict())`) and load it,
open both images, resize them to 224x224, normalise, and run the Siamese forward pass (fp32, no_grad).

Ours: (a) in-process, `Verifier.verify(reference_bytes, questioned_bytes)` with the model loaded once
(what a request runs after Django has parsed the upload), and (b) through the production server
(`POST /api/verify/` on gunicorn, client-side latency incl. HTTP and Django). Prints the medians and ratios.
"""

from __future__ import annotations

import argparse
import io
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from _common import (ApiServer, add_common_args, cpu_note, format_ms, load_pairs, percentiles_ms, resolve_model,
                     verify_body)

from sigml.inference import Verifier
from sigml.model import ModelConfig, SiameseResNet18

ORIGINAL_SIZE = 224


def original_state_dict_file(cfg: ModelConfig, directory: Path) -> Path:
    """A state dict of the same size as the original's weights, saved the original way (torch.save)."""
    path = directory / "original_siamese_resnet18.pt"
    torch.save(SiameseResNet18(cfg).state_dict(), path)
    return path


def original_image(data: bytes) -> torch.Tensor:
    """The original's per-request image handling: open, grayscale, resize to 224x224, to [0,1], normalise."""
    image = Image.open(io.BytesIO(data)).convert("L").resize((ORIGINAL_SIZE, ORIGINAL_SIZE), Image.Resampling.BILINEAR)
    tensor = torch.from_numpy(np.asarray(image, dtype=np.float32) / 255.0).unsqueeze(0)
    return (tensor - 0.5) / 0.5


def original_verify(reference: bytes, questioned: bytes, weights: Path, cfg: ModelConfig) -> float:
    """One request of the original design: build the network, load the weights from disk, infer."""
    model = SiameseResNet18(cfg)
    model.load_state_dict(torch.load(weights, map_location="cpu", weights_only=True))
    model.eval()
    a, b = original_image(reference).unsqueeze(0), original_image(questioned).unsqueeze(0)
    with torch.no_grad():
        emb_a, emb_b = model(a, b)
    return float(F.pairwise_distance(emb_a, emb_b)[0])


def time_calls(fns, items, warmup: int) -> list[list[float]]:
    """Seconds per call of each function in `fns`, interleaved item by item (both see the same machine state)."""
    times: list[list[float]] = [[] for _ in fns]
    for i, item in enumerate(list(items[:warmup]) + list(items)):
        for fn, out in zip(fns, times):
            started = time.perf_counter()
            fn(item)
            if i >= warmup:
                out.append(time.perf_counter() - started)
    return times


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_common_args(p)
    p.add_argument("--pairs", type=int, default=30)
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--torch-threads", type=int, default=2)
    p.add_argument("--no-http", action="store_true", help="skip the gunicorn measurement of our path")
    args = p.parse_args()
    if args.quick:
        args.pairs, args.warmup = 4, 1
    torch.set_num_threads(args.torch_threads)
    model_path = resolve_model(args.model)
    print(cpu_note())
    pairs = load_pairs(args.data, args.pairs)
    verifier = Verifier.from_files(model_path)
    cfg = verifier.card.architecture
    with tempfile.TemporaryDirectory() as tmp:
        weights = original_state_dict_file(cfg, Path(tmp))
        size_mb = weights.stat().st_size / 2**20
        ours, original = time_calls(
            [lambda pr: verifier.verify(pr.reference, pr.questioned),
             lambda pr: original_verify(pr.reference, pr.questioned, weights, cfg)], pairs, args.warmup)
    ours_s, orig_s = percentiles_ms(ours), percentiles_ms(original)
    print(f"{len(pairs)} real pairs (256x256 files), torch threads {args.torch_threads}")
    print(f"original per-request path (build + torch.load {size_mb:.0f} MB state dict + 224x224 + fp32 forward): {format_ms(orig_s)}")
    print(f"ours, in-process Verifier.verify (model loaded once, preprocessing, one bf16 batch of 2): {format_ms(ours_s)}")
    print(f"median ratio original / ours (in-process): {orig_s['p50'] / ours_s['p50']:.1f}x")
    if not args.no_http:
        with ApiServer(model_path, torch_threads=args.torch_threads) as server:
            bodies = [verify_body(pr) for pr in pairs]
            client = server.client()

            def post(i: int) -> None:
                status, data = client.request("POST", "/api/verify/", *bodies[i])
                if status != 200:
                    raise RuntimeError(f"verify answered {status}: {data[:200]!r}")

            (http,) = time_calls([post], list(range(len(bodies))), args.warmup)
            client.close()
        http_s = percentiles_ms(http)
        print(f"ours, POST /api/verify/ through gunicorn (client-side, incl. HTTP + Django): {format_ms(http_s)}")
        print(f"median ratio original (in-process, no HTTP) / ours (through HTTP): {orig_s['p50'] / http_s['p50']:.1f}x")


if __name__ == "__main__":
    main()
