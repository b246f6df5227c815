"""Distributed training under torchrun: gloo on CPU, 2 processes on this machine.

The step test checks what DDP promises: after one step both ranks hold identical parameters, equal to
a single process that averages the two ranks' losses (BatchNorm statistics stay per rank, as in DDP).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from sigml.distributed import DistContext, writer_share
from sigml.testing import free_port
from sigml.train import training_loss

DDP_DIR = Path(__file__).resolve().parent / "ddp"
sys.path.insert(0, str(DDP_DIR))

import step_worker  # noqa: E402


def _torchrun(args: list[str], cwd: Path, timeout: int = 300) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": os.pathsep.join(sys.path)}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_addr", "127.0.0.1",
           "--master_port", str(free_port()), *args]
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc


def test_writer_share_partitions_writers_across_ranks_and_epochs():
    shares = [writer_share(10, DistContext(rank=r, world_size=2), seed=0, epoch=0) for r in range(2)]
    assert sorted(shares[0] + shares[1]) == list(range(10))
    assert not set(shares[0]) & set(shares[1])
    assert writer_share(10, DistContext(rank=0, world_size=2), seed=0, epoch=1) != shares[0]
    assert writer_share(5, DistContext(), seed=0, epoch=3) == list(range(5))


def test_one_ddp_step_gives_identical_ranks_equal_to_a_single_process(tmp_path):
    _torchrun([str(DDP_DIR / "step_worker.py"), str(tmp_path)], cwd=tmp_path)
    rank0, rank1 = (load_file(str(tmp_path / f"rank{r}.safetensors")) for r in range(2))
    assert rank0.keys() == rank1.keys()
    for name in rank0:
        torch.testing.assert_close(rank0[name], rank1[name], rtol=0, atol=0, msg=f"ranks differ at {name}")

    # the same step in one process: mean of the two ranks' losses, each batch through the net on its own
    model = step_worker.make_model()
    before = {k: v.detach().clone() for k, v in model.named_parameters()}
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    losses = []
    for rank in range(2):
        images, writer_slot, is_genuine = step_worker.make_batch(rank)
        loss, _ = training_loss(model.embed(images), writer_slot, is_genuine, step_worker.CFG)
        losses.append(loss)
    optimizer.zero_grad()
    (sum(losses) / 2).backward()
    optimizer.step()
    moved = 0
    for name, param in model.named_parameters():
        torch.testing.assert_close(rank0[name], param.detach(), rtol=1e-4, atol=1e-5, msg=f"DDP != single process at {name}")
        moved += int(not torch.equal(param.detach(), before[name]))
    assert moved > 10  # the step really changed the weights


def test_sigml_train_runs_under_torchrun(make_generic_dataset, tmp_path):
    root = make_generic_dataset("DDP", writers=10, genuine=3, forged=1)
    out = tmp_path / "model" / "ddp.safetensors"
    proc = _torchrun([
        "-m", "sigml", "train", "--data", f"DDP={root}", "--splits", str(tmp_path / "splits"),
        "--validation-writers", "2", "--test-writers", "2", "--out", str(out), "--workdir", str(tmp_path / "run"),
        "--epochs", "2", "--steps-per-epoch", "2", "--writers-per-batch", "2", "--genuine-per-writer", "2",
        "--forged-per-writer", "1", "--embedding-dim", "16", "--threads", "1", "--no-progress",
    ], cwd=tmp_path)
    assert out.is_file() and out.with_suffix(".json").is_file()
    card = json.loads(out.with_suffix(".json").read_text())
    assert card["training"]["epochs_run"] == 2
    assert proc.stdout.count("wrote ") == 1  # only rank 0 reports
    assert proc.stderr.count("sigml.train: epoch 2:") == 1  # only rank 0 logs and validates
