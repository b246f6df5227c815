"""Training speed of one optimisation step, eager vs torch.compile: images per second.

    .venv/bin/python bench/train_speed.py [--config configs/all6_continue.json] [--steps 20] [--warmup 3]
        [--modes eager compile] [--scales 1 0.5] [--pooling global multiscale] [--bf16 auto on off] [--threads N]

Runs `sigml.train.train_step` (bf16 autocast, channels-last, the writer classifier and triplet term of the config)
on random batches of the config's size (writers_per_batch x (genuine + forged) images of the preprocessing canvas),
first `--warmup` steps untimed (for torch.compile they include the compilation, printed separately), then `--steps`
timed ones. `--scales` times each canvas scale of progressive resizing (`low_res_scale`: 0.5 is the 75x110 canvas
of the low-resolution epochs), `--pooling` each embedding head, `--bf16` autocast on, off or where native (an
AVX2-only CPU emulates bf16 many times slower than float32). Prints one line per combination. Nothing is written.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "backend"))

from sigml.distributed import DistContext  # noqa: E402
from sigml.train import build_learner, load_train_config, train_step  # noqa: E402


def random_batch(cfg, generator: torch.Generator, scale: float = 1.0):
    per_writer = cfg.genuine_per_writer + cfg.forged_per_writer
    n = cfg.writers_per_batch * per_writer
    height, width = round(cfg.preprocessing.canvas_height * scale), round(cfg.preprocessing.canvas_width * scale)
    images = torch.rand(n, 1, height, width, generator=generator)
    images = images.contiguous(memory_format=torch.channels_last)
    writer_slot = [i // per_writer for i in range(n)]
    is_genuine = [i % per_writer < cfg.genuine_per_writer for i in range(n)]
    return images, writer_slot, is_genuine, list(writer_slot)


def measure(mode: str, cfg, steps: int, warmup: int, scale: float = 1.0) -> tuple[float, float]:
    """(seconds of the warm-up steps, timed images per second)."""
    torch.manual_seed(cfg.seed)
    learner = build_learner(cfg, n_writer_classes=cfg.writers_per_batch, ctx=DistContext())
    net = torch.compile(learner.net) if mode == "compile" else learner.net
    generator = torch.Generator().manual_seed(cfg.seed)
    learner.model.train()

    def run(n: int) -> tuple[float, int]:
        started, images = time.perf_counter(), 0
        for _ in range(n):
            batch, writer_slot, is_genuine, labels = random_batch(cfg, generator, scale)
            train_step(net, learner.optimizer, batch, writer_slot, is_genuine, cfg, labels)
            images += len(batch)
        return time.perf_counter() - started, images

    warm_s, _ = run(warmup)
    timed_s, images = run(steps)
    return warm_s, images / timed_s


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default=str(ROOT / "configs" / "all6_continue.json"))
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--modes", nargs="+", default=["eager", "compile"], choices=["eager", "compile"])
    parser.add_argument("--scales", nargs="+", type=float, default=[1.0], help="canvas scales (0.5: half height and width)")
    parser.add_argument("--pooling", nargs="+", default=None, choices=["global", "multiscale"],
                        help="embedding heads to time (default: the config's)")
    parser.add_argument("--bf16", nargs="+", default=["auto"], choices=["auto", "on", "off"],
                        help="bfloat16 autocast: auto (where the processor runs it natively), on, off")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    cfg = load_train_config(args.config)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, batch "
          f"{cfg.writers_per_batch * (cfg.genuine_per_writer + cfg.forged_per_writer)} images of "
          f"{cfg.preprocessing.canvas_height}x{cfg.preprocessing.canvas_width}, bf16 {cfg.bf16}")
    for pooling in args.pooling or [cfg.model.pooling]:
        for bf16 in args.bf16:
            variant = dataclasses.replace(cfg, model=dataclasses.replace(cfg.model, pooling=pooling),
                                          bf16={"auto": None, "on": True, "off": False}[bf16])
            for scale in args.scales:
                for mode in args.modes:
                    warm_s, images_per_s = measure(mode, variant, args.steps, args.warmup, scale)
                    print(f"{mode}, {pooling} pooling, bf16 {bf16}, canvas x{scale:g}: {images_per_s:.1f} images/s over "
                          f"{args.steps} steps (warm-up {args.warmup} steps: {warm_s:.0f} s)", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
