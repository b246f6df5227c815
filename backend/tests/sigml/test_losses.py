"""sigml.losses: the batch-wise contrastive loss (with mining) and the triplet and writer-classification terms, by hand."""

from __future__ import annotations

import pytest
import torch

from sigml.losses import (
    CosineWriterClassifier,
    batch_contrastive_loss,
    batch_multi_similarity_loss,
    writer_classification_loss,
)


def _toy():
    """Writer 0: two identical genuine at the origin and a forgery 0.5 away; writer 1: two genuine 3 away."""
    emb = torch.tensor([[0.0, 0.0], [0.0, 0.0], [0.5, 0.0], [3.0, 0.0], [3.0, 0.0]])
    writers = torch.tensor([0, 0, 0, 1, 1])
    genuine = torch.tensor([True, True, False, True, True])
    return emb, writers, genuine


def test_batch_loss_by_hand():
    emb, writers, genuine = _toy()
    loss, stats = batch_contrastive_loss(emb, writers, genuine, margin=1.0)
    # positives: (0,1) and (3,4) at distance 0 -> 0; negatives: 2 skilled at 0.5 -> 0.25 each, 4 random at 3 -> 0
    assert float(loss) == pytest.approx((0.25 * 2) / 6, abs=1e-6)
    assert stats["pos_dist"] == pytest.approx(0.0, abs=1e-6)
    assert stats["skilled_dist"] == pytest.approx(0.5, abs=1e-6)
    assert stats["random_dist"] == pytest.approx(3.0, abs=1e-6)


def test_zero_positive_loss_when_positives_coincide():
    emb, writers, genuine = _toy()
    emb = emb * 10  # every negative beyond the margin as well
    loss, stats = batch_contrastive_loss(emb, writers, genuine, margin=1.0)
    assert float(loss) == pytest.approx(0.0, abs=1e-6)
    assert stats["pos_dist"] == pytest.approx(0.0, abs=1e-6)


def test_skilled_weight():
    emb, writers, genuine = _toy()
    loss, _ = batch_contrastive_loss(emb, writers, genuine, margin=1.0, skilled_weight=2.0)
    assert float(loss) == pytest.approx((0.5 * 2) / 6, abs=1e-6)


def test_hard_fraction_keeps_the_top_share():
    emb, writers, genuine = _toy()
    loss, _ = batch_contrastive_loss(emb, writers, genuine, margin=1.0, hard_fraction=0.5)
    # negatives [0.25, 0.25, 0, 0, 0, 0]: the hardest 3 -> mean 1/6; positives [0, 0]: hardest 1 -> 0
    assert float(loss) == pytest.approx(0.25 * 2 / 3, abs=1e-6)
    torch.manual_seed(0)
    emb = torch.nn.functional.normalize(torch.randn(12, 8), dim=1)
    w = torch.arange(4).repeat_interleave(3)
    g = torch.tensor([True, True, False] * 4)
    full, _ = batch_contrastive_loss(emb, w, g, margin=1.5, hard_fraction=1.0)
    hard, _ = batch_contrastive_loss(emb, w, g, margin=1.5, hard_fraction=0.25)
    assert float(hard) > float(full)  # the mean of the hardest share exceeds the overall mean


def test_forgery_pairs_of_two_forgeries_are_ignored():
    emb = torch.tensor([[0.0, 0.0], [0.0, 0.0]])
    loss, stats = batch_contrastive_loss(emb, torch.tensor([0, 0]), torch.tensor([False, False]), margin=1.0)
    assert float(loss) == 0.0
    assert all(v != v for v in stats.values())  # NaN: no pair of any kind


def test_gradients_flow():
    torch.manual_seed(0)
    raw = torch.randn(48, 16, requires_grad=True)  # > 25 rows: cdist's matrix-multiplication path
    emb = torch.nn.functional.normalize(raw, dim=1)
    writers = torch.arange(8).repeat_interleave(6)
    genuine = torch.tensor([True] * 4 + [False] * 2).repeat(8)
    loss, _ = batch_contrastive_loss(emb, writers, genuine, margin=1.0, hard_fraction=0.5)
    loss.backward()
    assert raw.grad is not None and torch.isfinite(raw.grad).all() and raw.grad.abs().sum() > 0


def test_gradients_stay_finite_with_duplicate_images():
    base = torch.randn(24, 16)
    raw = base.repeat_interleave(2, dim=0).clone().requires_grad_()  # sampling with replacement, no augmentation
    emb = torch.nn.functional.normalize(raw, dim=1)
    loss, _ = batch_contrastive_loss(emb, torch.arange(24).repeat_interleave(2), torch.ones(48, dtype=torch.bool), margin=1.0)
    loss.backward()
    assert torch.isfinite(loss) and torch.isfinite(raw.grad).all()


def test_cosine_writer_classifier_scores_are_scaled_cosines():
    clf = CosineWriterClassifier(embedding_dim=2, n_writers=3, scale=10.0)
    with torch.no_grad():
        clf.weight.copy_(torch.tensor([[1.0, 0.0], [0.0, 5.0], [-1.0, 0.0]]))
    logits = clf(torch.tensor([[2.0, 0.0], [0.0, -0.5]]))
    torch.testing.assert_close(logits, torch.tensor([[10.0, 0.0, -10.0], [0.0, -10.0, 0.0]]))


def test_writer_classification_loss_ignores_forgeries():
    logits = torch.tensor([[5.0, 0.0], [0.0, 5.0], [5.0, 0.0]])
    labels = torch.tensor([0, 1, 1])
    genuine = torch.tensor([True, True, False])  # the third row is a forgery of writer 1 that looks like writer 0
    got = writer_classification_loss(logits, labels, genuine)
    expected = torch.nn.functional.cross_entropy(logits[:2], labels[:2])
    assert float(got) == pytest.approx(float(expected))
    assert float(got) < 0.01
    all_forged = writer_classification_loss(logits, labels, torch.zeros(3, dtype=torch.bool))
    assert float(all_forged) == 0.0


def test_writer_classification_pulls_a_writer_together():
    """A few steps of the auxiliary loss alone move each writer's embeddings towards its class direction."""
    torch.manual_seed(0)
    emb = torch.nn.Parameter(torch.randn(6, 4))
    clf = CosineWriterClassifier(4, 2, scale=16.0)
    labels = torch.tensor([0, 0, 0, 1, 1, 1])
    genuine = torch.ones(6, dtype=torch.bool)
    opt = torch.optim.SGD([emb, *clf.parameters()], lr=0.5)
    before = writer_classification_loss(clf(emb), labels, genuine).item()
    for _ in range(50):
        opt.zero_grad()
        writer_classification_loss(clf(emb), labels, genuine).backward()
        opt.step()
    after = writer_classification_loss(clf(emb), labels, genuine).item()
    assert after < before / 4
    n = torch.nn.functional.normalize(emb.detach(), dim=1)
    within = (n[:3] @ n[:3].t()).mean()
    across = (n[:3] @ n[3:].t()).mean()
    assert within > across


def test_triplet_loss_by_hand():
    from sigml.losses import batch_triplet_loss

    # one writer: genuine at 0 and 1 (1-d), a skilled forgery at 0.5 (between them: every triplet costs)
    emb = torch.tensor([[0.0], [1.0], [0.5]])
    loss, stats = batch_triplet_loss(emb, torch.tensor([0, 0, 0]), torch.tensor([True, True, False]), margin=0.2)
    # (a=0, p=1, n=2): 1 - 0.5 + 0.2 = 0.7; (a=1, p=0, n=2): the same
    assert float(loss) == pytest.approx(0.7)
    assert stats["triplet_active"] == 1.0


def test_triplet_loss_is_zero_when_forgeries_are_far_enough():
    from sigml.losses import batch_triplet_loss

    emb = torch.tensor([[0.0], [0.1], [5.0], [10.0], [10.1], [20.0]])
    writers = torch.tensor([0, 0, 0, 1, 1, 1])
    genuine = torch.tensor([True, True, False, True, True, False])
    loss, stats = batch_triplet_loss(emb, writers, genuine, margin=0.2)
    assert float(loss) == 0.0 and stats["triplet_active"] == 0.0


def test_triplet_loss_pushes_the_forgery_away_and_ignores_forgery_anchors():
    from sigml.losses import batch_triplet_loss

    emb = torch.tensor([[0.0, 0.0], [1.0, 0.0], [0.5, 0.1], [0.6, 0.0]], requires_grad=True)
    writers = torch.tensor([0, 0, 0, 0])
    genuine = torch.tensor([True, True, False, False])
    loss, _ = batch_triplet_loss(emb, writers, genuine, margin=0.2)
    loss.backward()
    # moving the forgery at (0.5, 0.1) upwards (away from both genuine) lowers the loss
    assert emb.grad[2, 1] < 0
    # no genuine pair, or no negative: nothing to rank, a zero loss that still backpropagates
    alone, _ = batch_triplet_loss(emb[:1], writers[:1], genuine[:1], margin=0.2)
    assert float(alone.detach()) == 0.0 and alone.requires_grad


def _ms_toy():
    """Writer 0: two genuine at (1, 0) and a skilled forgery at (0, 1); writer 1: two genuine at (-1, 0)."""
    emb = torch.tensor([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0], [-1.0, 0.0], [-1.0, 0.0]])
    return emb, torch.tensor([0, 0, 0, 1, 1]), torch.tensor([True, True, False, True, True])


def test_multi_similarity_mines_nothing_when_every_negative_is_far():
    emb, writers, genuine = _ms_toy()
    loss, stats = batch_multi_similarity_loss(emb, writers, genuine, epsilon=0.1)
    # each anchor's positive (S=1) is more than epsilon above its hardest negative (S<=0): no pair is mined
    assert float(loss) == pytest.approx(0.0, abs=1e-7)
    assert stats["ms_active"] == 0.0
    assert stats["skilled_dist"] == pytest.approx(2 ** 0.5, abs=1e-6)


def test_multi_similarity_by_hand_with_every_pair_mined():
    import math

    emb, writers, genuine = _ms_toy()
    loss, stats = batch_multi_similarity_loss(emb, writers, genuine, alpha=2.0, beta=4.0, base=0.5, epsilon=5.0,
                                             skilled_weight=3.0)
    # anchor (1,0): positive S=1; negatives: its writer's forgery S=0 (weight 3), the other writer's two S=-1
    own = math.log1p(math.exp(-2 * 0.5)) / 2 + math.log1p(3 * math.exp(4 * -0.5) + 2 * math.exp(4 * -1.5)) / 4
    # anchor (-1,0): positive S=1; negatives: writer 0's two genuine S=-1 (a forgery of another writer is no negative)
    other = math.log1p(math.exp(-2 * 0.5)) / 2 + math.log1p(2 * math.exp(4 * -1.5)) / 4
    assert float(loss) == pytest.approx((2 * own + 2 * other) / 4, rel=1e-5)
    assert stats["ms_active"] == 1.0


def test_multi_similarity_pushes_the_skilled_forgery_away():
    emb, writers, genuine = _ms_toy()
    emb = emb.clone()
    emb[2] = torch.tensor([0.9, 0.3])  # a close forgery: a hard negative for writer 0's anchors
    emb.requires_grad_(True)
    before, _ = batch_multi_similarity_loss(emb, writers, genuine)
    before.backward()
    with torch.no_grad():
        moved = emb - 0.1 * emb.grad
    after, stats = batch_multi_similarity_loss(moved, writers, genuine)
    cos = torch.nn.functional.cosine_similarity
    assert float(after) < float(before.detach())
    assert float(cos(moved[2:3], moved[0:1])) < float(cos(emb[2:3], emb[0:1]).detach())


def test_training_loss_follows_the_config():
    from sigml.train import TrainConfig, training_loss

    emb, writers, genuine = _ms_toy()
    ms, ms_stats = training_loss(emb, writers.tolist(), genuine.tolist(), TrainConfig(loss="multi_similarity"))
    contrastive, _ = training_loss(emb, writers.tolist(), genuine.tolist(), TrainConfig())
    assert "ms_active" in ms_stats
    assert float(ms) == pytest.approx(float(batch_multi_similarity_loss(emb, writers, genuine)[0]))
    assert float(contrastive) == pytest.approx(float(batch_contrastive_loss(emb, writers, genuine, margin=1.0,
                                                                            hard_fraction=0.5)[0]))
    with pytest.raises(ValueError, match="loss must be one of"):
        TrainConfig(loss="arcface")
