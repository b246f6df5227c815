"""Training losses: the batch-wise contrastive loss (Hadsell et al. 2006) with online mining of hard pairs, the
multi-similarity loss (Wang et al. 2019) with the writer's skilled forgeries as hard negatives, a within-writer
triplet term, and the auxiliary cosine-softmax writer classifier."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def batch_contrastive_loss(
    embeddings: torch.Tensor,
    writer_ids: torch.Tensor,
    genuine: torch.Tensor,
    *,
    margin: float,
    hard_fraction: float = 1.0,
    skilled_weight: float = 1.0,
    balance_negatives: bool = False,
) -> tuple[torch.Tensor, dict[str, float]]:
    """Contrastive loss over all useful pairs of a P-writers x K-images batch.

    Positives: two genuine signatures of one writer. Negatives: a writer's genuine signature with a
    skilled forgery of the same writer, or with another writer's genuine signature (random forgery).
    Forgery-forgery pairs say nothing about the writer and are ignored. With `hard_fraction` < 1,
    only the hardest share of positives and negatives (largest loss) is kept (online mining).
    Positive and negative terms are averaged separately so their balance does not depend on the batch.
    With `balance_negatives`, skilled and random negatives are also averaged separately (weighted by
    `skilled_weight`), so the few skilled pairs of a batch are not drowned by the many random ones.
    """
    dist = torch.cdist(embeddings.float(), embeddings.float()).clamp_min(0)
    same_writer = writer_ids[:, None] == writer_ids[None, :]
    g = genuine.bool()
    upper = torch.triu(torch.ones_like(same_writer), diagonal=1)
    pos = same_writer & g[:, None] & g[None, :] & upper
    skilled = same_writer & (g[:, None] ^ g[None, :])
    skilled = skilled & upper
    random_neg = ~same_writer & g[:, None] & g[None, :] & upper

    pos_loss = dist[pos].pow(2)
    neg_d = torch.cat([dist[skilled], dist[random_neg]])
    neg_w = torch.cat(
        [torch.full_like(dist[skilled], skilled_weight), torch.ones_like(dist[random_neg])]
    )
    neg_loss = F.relu(margin - neg_d).pow(2) * neg_w

    def _mine(values: torch.Tensor) -> torch.Tensor:
        if values.numel() == 0:
            return values.sum()
        if hard_fraction < 1.0:
            k = max(1, int(round(hard_fraction * values.numel())))
            values = values.topk(k).values
        return values.mean()

    if balance_negatives:
        skilled_loss = F.relu(margin - dist[skilled]).pow(2)
        random_loss = F.relu(margin - dist[random_neg]).pow(2)
        loss = _mine(pos_loss) + (skilled_weight * _mine(skilled_loss) + _mine(random_loss)) / (1 + skilled_weight)
    else:
        loss = _mine(pos_loss) + _mine(neg_loss)
    stats = {
        "pos_dist": float(dist[pos].detach().mean()) if pos.any() else float("nan"),
        "skilled_dist": float(dist[skilled].detach().mean()) if skilled.any() else float("nan"),
        "random_dist": float(dist[random_neg].detach().mean()) if random_neg.any() else float("nan"),
    }
    return loss, stats


def batch_triplet_loss(
    embeddings: torch.Tensor, writer_ids: torch.Tensor, genuine: torch.Tensor, *, margin: float,
) -> tuple[torch.Tensor, dict[str, float]]:
    """Within-writer ranking (triplet loss, "batch all" of Hermans et al. 2017) over a P x K batch.

    Every (anchor, positive, negative) with anchor and positive two genuine signatures of one writer and
    negative a skilled forgery of that writer or another writer's genuine signature costs
    relu(d(a, p) - d(a, n) + margin), averaged over the triplets that still cost something. Why: the
    contrastive loss asks for one global distance scale, but what verification against references needs
    is that each writer's forgeries lie farther from the genuine signatures than those lie from each other
    (what the normalized reference score measures), whatever the writer's own variability.
    """
    dist = torch.cdist(embeddings.float(), embeddings.float()).clamp_min(0)
    same_writer = writer_ids[:, None] == writer_ids[None, :]
    g = genuine.bool()
    eye = torch.eye(len(g), dtype=torch.bool, device=dist.device)
    pos = same_writer & g[:, None] & g[None, :] & ~eye  # [a, p]
    neg = g[:, None] & ((same_writer & ~g[None, :]) | (~same_writer & g[None, :]))  # [a, n]
    valid = pos[:, :, None] & neg[:, None, :]  # [a, p, n]
    if not valid.any():
        return dist.sum() * 0.0, {"triplet_active": 0.0}
    cost = F.relu(dist[:, :, None] - dist[:, None, :] + margin)[valid]
    active = cost > 0
    loss = cost[active].mean() if active.any() else cost.sum() * 0.0
    return loss, {"triplet_active": float(active.float().mean())}


def batch_multi_similarity_loss(
    embeddings: torch.Tensor,
    writer_ids: torch.Tensor,
    genuine: torch.Tensor,
    *,
    alpha: float = 2.0,
    beta: float = 50.0,
    base: float = 0.5,
    epsilon: float = 0.1,
    skilled_weight: float = 1.0,
) -> tuple[torch.Tensor, dict[str, float]]:
    """Multi-similarity loss (Wang et al., CVPR 2019) over a P-writers x K-images batch, anchored on genuine images.

    For each genuine anchor i, with cosine similarities S: positives are the other genuine signatures of its
    writer; negatives are the writer's skilled forgeries and other writers' genuine signatures. Pairs are mined
    as the paper does: a negative counts if S_in + epsilon > min_p S_ip, a positive if S_ip - epsilon <
    max_n S_in. The anchor's cost is

        1/alpha * log(1 + sum_p exp(-alpha (S_ip - base))) + 1/beta * log(1 + sum_n w_n exp(beta (S_in - base)))

    with w_n = `skilled_weight` for the writer's own forgeries, 1 otherwise, averaged over the anchors.
    Why: each anchor weighs all its positives and negatives at once, the hardest most (what MS-SigNet's
    co-tuplet loss does), instead of one pair at a time; the skilled forgeries, the negatives that matter for
    verification, sit in every anchor's negative set.
    """
    x = F.normalize(embeddings.float(), dim=1)
    sim = x @ x.t()
    same_writer = writer_ids[:, None] == writer_ids[None, :]
    g = genuine.bool()
    eye = torch.eye(len(g), dtype=torch.bool, device=sim.device)
    pos = same_writer & g[:, None] & g[None, :] & ~eye
    skilled = same_writer & g[:, None] & ~g[None, :]
    neg = skilled | (~same_writer & g[:, None] & g[None, :])
    weight = torch.where(skilled, torch.full_like(sim, skilled_weight), torch.ones_like(sim))

    inf = torch.tensor(float("inf"), device=sim.device)
    min_pos = torch.where(pos, sim, inf).min(dim=1).values
    max_neg = torch.where(neg, sim, -inf).max(dim=1).values
    hard_neg = neg & (sim + epsilon > min_pos[:, None])
    hard_pos = pos & (sim - epsilon < max_neg[:, None])

    zero = sim.new_zeros(())
    pos_term = torch.where(hard_pos, torch.exp(-alpha * (sim - base)), zero).sum(dim=1)
    neg_term = torch.where(hard_neg, weight * torch.exp(beta * (sim - base)), zero).sum(dim=1)
    anchors = g & pos.any(dim=1) & neg.any(dim=1)
    if not anchors.any():
        return sim.sum() * 0.0, {"ms_active": 0.0}
    cost = torch.log1p(pos_term) / alpha + torch.log1p(neg_term) / beta
    loss = cost[anchors].mean()
    dist = torch.sqrt((2 - 2 * sim).clamp_min(0)).detach()
    rand = neg & ~skilled
    stats = {
        "pos_dist": float(dist[pos].mean()) if pos.any() else float("nan"),
        "skilled_dist": float(dist[skilled].mean()) if skilled.any() else float("nan"),
        "random_dist": float(dist[rand].mean()) if rand.any() else float("nan"),
        # share of anchors with at least one mined pair: how much of the batch still teaches something
        "ms_active": float((hard_pos | hard_neg)[anchors].any(dim=1).float().mean()),
    }
    return loss, stats


class CosineWriterClassifier(torch.nn.Module):
    """Auxiliary head for training only: cosine softmax over the training writers (NormFace).

    Writer classification is what the field's strongest signature features were learned with
    (SigNet, Hafemann et al. 2017); on L2-normalised embeddings a cosine classifier pulls each
    writer's genuine signatures towards one direction, the same geometry the contrastive loss wants.
    It is never shipped: the verifier only needs the embedding.
    """

    def __init__(self, embedding_dim: int, n_writers: int, scale: float = 16.0) -> None:
        super().__init__()
        self.scale = scale
        self.weight = torch.nn.Parameter(torch.randn(n_writers, embedding_dim) * 0.01)

    def forward(self, embeddings: torch.Tensor) -> torch.Tensor:
        return self.scale * F.normalize(embeddings.float(), dim=1) @ F.normalize(self.weight, dim=1).t()


def writer_classification_loss(
    logits: torch.Tensor, labels: torch.Tensor, genuine: torch.Tensor
) -> torch.Tensor:
    """Cross-entropy on genuine images only (a skilled forgery is not its victim's handwriting)."""
    g = genuine.bool()
    if not g.any():
        return logits.sum() * 0.0
    return F.cross_entropy(logits[g], labels[g])
