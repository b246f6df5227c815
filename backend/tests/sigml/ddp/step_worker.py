"""Run under torchrun (2 ranks): one DDP training step with sigml's own wrap() and train_step(), then
each rank writes its parameters to <out>/rank<R>.safetensors. Batches come from make_batch(rank)."""

from __future__ import annotations

import sys
from pathlib import Path

import torch
from safetensors.torch import save_file

from sigml.distributed import init_from_env, shutdown, wrap
from sigml.model import ModelConfig, SiameseResNet18
from sigml.train import TrainConfig, train_step

CFG = TrainConfig(bf16=False, hard_fraction=1.0, model=ModelConfig(embedding_dim=16, hidden_dim=32))
SHAPE = (1, 48, 64)


def make_batch(rank: int) -> tuple[torch.Tensor, list[int], list[bool]]:
    """3 writers x (2 genuine + 1 forged), different for each rank."""
    g = torch.Generator().manual_seed(100 + rank)
    images = torch.rand((9, *SHAPE), generator=g)
    writer_slot = [0, 0, 0, 1, 1, 1, 2, 2, 2]
    is_genuine = [True, True, False] * 3
    return images, writer_slot, is_genuine


def make_model() -> SiameseResNet18:
    torch.manual_seed(0)
    return SiameseResNet18(CFG.model)


def main(out: Path) -> None:
    torch.set_num_threads(1)
    ctx = init_from_env()
    model = make_model()
    net = wrap(model, ctx)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    images, writer_slot, is_genuine = make_batch(ctx.rank)
    train_step(net, optimizer, images, writer_slot, is_genuine, CFG)
    save_file({k: v.detach().contiguous() for k, v in model.named_parameters()}, str(out / f"rank{ctx.rank}.safetensors"))
    shutdown(ctx)


if __name__ == "__main__":
    main(Path(sys.argv[1]))
