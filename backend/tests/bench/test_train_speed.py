"""bench/train_speed.py: its batches have the training layout, and one eager step runs and reports a speed."""

from __future__ import annotations

import dataclasses

import pytest

from sigml.model import ModelConfig
from sigml.preprocessing import PreprocessConfig
from sigml.train import TrainConfig


@pytest.fixture(scope="module")
def train_speed(bench_script):
    return bench_script("train_speed")


def test_random_batch_has_the_samplers_layout(train_speed):
    import torch

    cfg = dataclasses.replace(TrainConfig(), writers_per_batch=3, genuine_per_writer=2, forged_per_writer=1,
                              preprocessing=PreprocessConfig(canvas_height=32, canvas_width=48))
    images, writer_slot, is_genuine, labels = train_speed.random_batch(cfg, torch.Generator().manual_seed(0))
    assert images.shape == (9, 1, 32, 48)
    assert writer_slot == [0, 0, 0, 1, 1, 1, 2, 2, 2] and labels == writer_slot
    assert is_genuine == [True, True, False] * 3


def test_one_eager_step_is_measured(train_speed):
    cfg = dataclasses.replace(TrainConfig(), writers_per_batch=2, genuine_per_writer=2, forged_per_writer=1,
                              model=ModelConfig(embedding_dim=8, hidden_dim=16),
                              preprocessing=PreprocessConfig(canvas_height=32, canvas_width=48))
    warm_s, images_per_s = train_speed.measure("eager", cfg, steps=1, warmup=1)
    assert warm_s > 0 and images_per_s > 0
