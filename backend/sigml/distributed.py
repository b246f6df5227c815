"""torch.distributed plumbing for `python -m sigml train` under torchrun (DistributedDataParallel).

torchrun sets RANK / WORLD_SIZE / LOCAL_RANK / MASTER_ADDR / MASTER_PORT; without them training is a
plain single process. Backend: gloo on CPU, nccl when CUDA is available. Each rank samples its
batches from its own share of the training writers (a `DistributedSampler` over the writer list,
re-shuffled every epoch), DDP averages the gradients, and only rank 0 logs, validates and writes
checkpoints.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import timedelta

import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DistributedSampler


@dataclass(frozen=True)
class DistContext:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    device: torch.device = torch.device("cpu")

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def init_from_env() -> DistContext:
    """Join the process group torchrun describes in the environment (no-op for a single process)."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    if world_size <= 1:
        return DistContext()
    rank, local_rank = int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", "0"))
    if torch.cuda.is_available():
        device = torch.device("cuda", local_rank)
        torch.cuda.set_device(device)
        backend = "nccl"
    else:
        device, backend = torch.device("cpu"), "gloo"
    if not dist.is_initialized():
        # Rank 0 validates alone after each epoch while the others wait: allow a long barrier.
        dist.init_process_group(backend=backend, timeout=timedelta(hours=2))
    return DistContext(rank=rank, world_size=world_size, local_rank=local_rank, device=device)


def shutdown(ctx: DistContext) -> None:
    if ctx.enabled and dist.is_initialized():
        dist.destroy_process_group()


def barrier(ctx: DistContext) -> None:
    if ctx.enabled:
        dist.barrier()


class Embedder(nn.Module):
    """`forward = model.embed`, so DDP's forward hook (gradient sync) wraps the embedding call.

    With a training-only `classifier` (auxiliary writer classification) forward returns
    (embeddings, logits), so DDP syncs the classifier's gradients too.
    """

    def __init__(self, model: nn.Module, classifier: nn.Module | None = None) -> None:
        super().__init__()
        self.model = model
        self.classifier = classifier

    def forward(self, batch: torch.Tensor):
        emb = self.model.embed(batch)
        if self.classifier is None:
            return emb
        return emb, self.classifier(emb)


def wrap(model: nn.Module, ctx: DistContext, classifier: nn.Module | None = None) -> nn.Module:
    """The module the training step calls: DDP over `Embedder(model, classifier)` when distributed."""
    embedder = Embedder(model, classifier)
    if not ctx.enabled:
        return embedder
    device_ids = [ctx.device.index] if ctx.device.type == "cuda" else None
    return DistributedDataParallel(embedder, device_ids=device_ids)


def writer_share(n_writers: int, ctx: DistContext, *, seed: int, epoch: int) -> list[int]:
    """This rank's writer indices for `epoch` (disjoint across ranks, reshuffled every epoch)."""
    if not ctx.enabled:
        return list(range(n_writers))
    sampler = DistributedSampler(range(n_writers), num_replicas=ctx.world_size, rank=ctx.rank, shuffle=True, seed=seed)
    sampler.set_epoch(epoch)
    return list(iter(sampler))
