"""The two evaluation protocols, on embeddings computed once per image.

- pairwise: every genuine-genuine pair of a writer (label 1) vs every genuine-skilled-forgery pair
  of the same writer (label 0); optionally genuine vs another writer's genuine (random forgeries).
- reference_based: per writer, K genuine references drawn with a seed; every other genuine and every
  skilled forgery of that writer is scored against the K references (`reference_scores`).

Reference scores: "mean" is the mean distance to the references; "normalized" divides it by the
references' own spread (their mean pairwise distance). Writers differ a lot in how variable their
genuine signatures are, and a single global threshold on raw distances is too strict for variable
writers and too lax for consistent ones; dividing by the spread measured on the enrolled references
puts every writer on one scale (score normalisation, as in writer-independent verification systems
that calibrate per enrolment). It needs at least two references.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from .datasets import SignatureRecord


@dataclass
class Scored:
    distances: np.ndarray
    labels: np.ndarray  # 1 genuine comparison, 0 forgery
    writers: list[str]
    index_a: np.ndarray  # record index (questioned / first image)
    index_b: np.ndarray  # record index of the reference (-1 for reference-based means)


def _groups(records: Sequence[SignatureRecord]) -> dict[str, tuple[list[int], list[int]]]:
    groups: dict[str, tuple[list[int], list[int]]] = defaultdict(lambda: ([], []))
    for i, r in enumerate(records):
        groups[f"{r.dataset}/{r.writer}"][0 if r.genuine else 1].append(i)
    return dict(groups)


def pairwise(emb: np.ndarray, records: Sequence[SignatureRecord], *, skilled: bool = True, random_per_writer: int = 0,
             seed: int = 0) -> Scored:
    """Distances of every writer's genuine-genuine pairs (label 1) and forgery pairs (label 0): its skilled
    forgeries (`skilled`) and/or `random_per_writer` pairs with other writers' genuine signatures.
    `emb[i]` is the embedding of `records[i]`; the returned indices are indices into `records`."""
    d_all, y_all, w_all, a_all, b_all = [], [], [], [], []
    groups = _groups(records)
    rng = np.random.default_rng(seed)
    writers = sorted(groups)
    for w in writers:
        gen, forg = groups[w]
        if len(gen) < 2:
            continue
        g = np.asarray(gen)
        ia, ib = np.triu_indices(len(g), k=1)
        pairs = [(g[ia], g[ib], 1)]
        if skilled and forg:
            f = np.asarray(forg)
            ga, fb = np.meshgrid(g, f, indexing="ij")
            pairs.append((ga.ravel(), fb.ravel(), 0))
        if random_per_writer and len(writers) > 1:
            others = np.asarray([i for x in writers if x != w for i in groups[x][0]])
            pairs.append((rng.choice(g, random_per_writer), rng.choice(others, random_per_writer), 0))
        for a, b, label in pairs:
            d_all.append(np.linalg.norm(emb[a] - emb[b], axis=1))
            y_all.append(np.full(len(a), label))
            w_all.extend([w] * len(a))
            a_all.append(a)
            b_all.append(b)
    if not d_all:
        raise ValueError("no writer has two genuine signatures to compare")
    return Scored(np.concatenate(d_all), np.concatenate(y_all), w_all, np.concatenate(a_all), np.concatenate(b_all))


REFERENCE_SCORES = ("mean", "normalized")


def reference_spread(refs: np.ndarray) -> float | None:
    """Mean pairwise distance among one writer's reference embeddings (None with fewer than two)."""
    refs = np.asarray(refs, dtype=np.float64)
    if len(refs) < 2:
        return None
    ia, ib = np.triu_indices(len(refs), k=1)
    return float(np.linalg.norm(refs[ia] - refs[ib], axis=1).mean())


def reference_scores(questioned: np.ndarray, refs: np.ndarray, method: str = "normalized", *, spread_floor: float = 0.0) -> np.ndarray:
    """Score of each questioned embedding against one writer's references (lower = more genuine).

    "mean": mean distance to the references. "normalized": that mean divided by the references' spread,
    floored at `spread_floor` (so near-identical references, e.g. one image enrolled twice, cannot blow
    every score up)."""
    if method not in REFERENCE_SCORES:
        raise ValueError(f"unknown reference score {method!r}; choose one of {REFERENCE_SCORES}")
    questioned = np.atleast_2d(np.asarray(questioned, dtype=np.float64))
    refs = np.asarray(refs, dtype=np.float64)
    mean = np.linalg.norm(questioned[:, None, :] - refs[None, :, :], axis=2).mean(axis=1)
    if method == "mean":
        return mean
    return normalize(mean, reference_spread(refs), spread_floor)


def normalize(mean_distance, spread: float | None, spread_floor: float = 0.0):
    """The normalized score: mean distance over the references' spread, floored (and never divided by 0)."""
    if spread is None:
        raise ValueError("the normalized reference score needs at least two references")
    return mean_distance / max(spread, spread_floor, 1e-6)


def reference_draws(records: Sequence[SignatureRecord], k: int, seed: int):
    """Per writer with more than K genuine signatures: (writer, K reference indices, questioned genuine
    indices, forgery indices), the references drawn with `seed`; the one draw both functions below use."""
    rng = np.random.default_rng(seed)
    for w, (gen, forg) in sorted(_groups(records).items()):
        if len(gen) <= k:
            continue  # needs K references and at least one questioned genuine
        g = np.asarray(gen)
        chosen = rng.permutation(len(g))
        yield w, g[chosen[:k]], g[chosen[k:]], np.asarray(forg, dtype=int)


def reference_based(emb: np.ndarray, records: Sequence[SignatureRecord], *, k: int, seed: int = 0,
                    score: str = "mean", spread_floor: float = 0.0) -> Scored:
    if score == "normalized" and k < 2:
        raise ValueError("the normalized reference score needs K >= 2 references")
    d_all, y_all, w_all, q_all = [], [], [], []
    for w, refs, questioned_gen, forg in reference_draws(records, k, seed):
        questioned = np.concatenate([questioned_gen, forg])
        labels = np.concatenate([np.ones(len(questioned_gen)), np.zeros(len(forg))])
        d_all.append(reference_scores(emb[questioned], emb[refs], score, spread_floor=spread_floor))
        y_all.append(labels)
        w_all.extend([w] * len(questioned))
        q_all.append(questioned)
    if not d_all:
        raise ValueError(f"no writer has more than K={k} genuine signatures")
    q = np.concatenate(q_all)
    return Scored(np.concatenate(d_all), np.concatenate(y_all).astype(int), w_all, q, np.full(len(q), -1))


def reference_spreads(emb: np.ndarray, records: Sequence[SignatureRecord], *, k: int, seed: int = 0) -> np.ndarray:
    """The spread of each writer's K references, drawn exactly as `reference_based` draws them."""
    spreads = (reference_spread(emb[refs]) for _, refs, _, _ in reference_draws(records, k, seed))
    return np.asarray([s for s in spreads if s is not None])
