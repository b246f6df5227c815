"""How a questioned signature is scored against K references: plain mean distance vs normalised by the
references' spread, and (with --alternatives) the other scores we tried (evaluation only; no retraining).

    .venv/bin/python bench/reference_scores.py [--model trained_model_parameters/siamese_resnet18.safetensors]
        [--data ../shared/datasets] [--seeds 3] [--alternatives]

For each dataset of the model card and for its validation and test writers: the reference-based EER
(skilled forgeries as negatives) with K = 5 and 10, averaged over `--seeds` draws of the references,
for `mean` and `normalized`; then the pooled validation writers of all datasets at K=10 with seed 0
(what training's `val_ref` measures). `--alternatives` (K=10; also embeds the training writers, ~2 min
more) adds: minimum distance, distance to the references' centroid, z-score of the mean distance, a
per-writer RBF SVM (references vs 2000 training writers' genuine signatures), division by spread**alpha,
and cohort normalisation by 1000 training writers' genuine signatures. Scores were chosen on validation rows.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from sigml import metrics, protocols
from sigml.evaluate import embed_dataset
from sigml.inference import Verifier

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default=str(ROOT / "trained_model_parameters/siamese_resnet18.safetensors"))
    p.add_argument("--data", default=str(ROOT / "../shared/datasets"))
    p.add_argument("--seeds", type=int, default=3)
    p.add_argument("--alternatives", action="store_true", help="also the scores we tried and did not keep (K=10)")
    args = p.parse_args()
    started = time.perf_counter()
    verifier = Verifier.from_files(args.model)
    names = [s["name"] for s in verifier.card.data.get("sources", [])]
    embedded = {(name, w): embed_dataset(verifier, Path(args.data) / name, dataset=name, writers=w, progress=False)[:2]
                for name in names for w in ("validation", "test")}
    print(f"model {verifier.model_version}; reference-based EER (skilled forgeries), mean of {args.seeds} reference draws")
    print("| dataset | writers | K | mean distance | normalized by the references' spread |")
    print("| --- | --- | --- | --- | --- |")
    for (name, writers), (records, emb) in embedded.items():
        n = len({r.writer for r in records})
        for k in (5, 10):
            eers = {score: np.mean([_eer(emb, records, k, seed, score) for seed in range(args.seeds)]) for score in ("mean", "normalized")}
            print(f"| {name} | {writers} ({n}) | {k} | {eers['mean']:.1%} | {eers['normalized']:.1%} |")
    pooled = [r for name in names for r in embedded[(name, "validation")][0]]
    pooled_emb = np.concatenate([embedded[(name, "validation")][1] for name in names])
    print(f"pooled validation writers, K=10, seed 0: mean {_eer(pooled_emb, pooled, 10, 0, 'mean'):.1%}, "
          f"normalized {_eer(pooled_emb, pooled, 10, 0, 'normalized'):.1%}")
    if args.alternatives:
        alternatives(verifier, args, names, embedded)
    print(f"evaluated in {time.perf_counter() - started:.0f} s")


def _eer(emb: np.ndarray, records, k: int, seed: int, score: str) -> float:
    s = protocols.reference_based(emb, records, k=k, seed=seed, score=score)
    return metrics.eer(s.distances, s.labels)[0]


def alternatives(verifier: Verifier, args: argparse.Namespace, names: list[str], embedded: dict) -> None:
    from sklearn.svm import SVC

    train = []
    for name in names:
        records, emb, _ = embed_dataset(verifier, Path(args.data) / name, dataset=name, writers="train", progress=False)
        train.append(emb[np.asarray([r.genuine for r in records])].astype(np.float64))
    background = np.concatenate(train)
    negatives = background[np.random.default_rng(0).choice(len(background), min(2000, len(background)), replace=False)]
    cohort = background[np.random.default_rng(0).choice(len(background), min(1000, len(background)), replace=False)]

    def scores(q: np.ndarray, r: np.ndarray) -> dict[str, np.ndarray]:
        d = np.linalg.norm(q[:, None] - r[None], axis=2)
        between = np.linalg.norm(r[:, None] - r[None], axis=2)[np.triu_indices(len(r), 1)]
        spread, mean = between.mean(), d.mean(1)
        to_cohort = np.linalg.norm(q[:, None] - cohort[None], axis=2)
        refs_to_cohort = np.linalg.norm(r[:, None] - cohort[None], axis=2).mean()
        svm = SVC(kernel="rbf", C=1.0, gamma="scale", class_weight="balanced")
        svm.fit(np.concatenate([r, negatives]), np.r_[np.ones(len(r)), np.zeros(len(negatives))])
        out = {"min": d.min(1), "centroid": np.linalg.norm(q - r.mean(0), axis=1),
               "z-score": (mean - spread) / (between.std() + 1e-6), "svm": -svm.decision_function(q),
               "/cohort": mean / to_cohort.mean(1), "/spread/cohort": mean / spread / (to_cohort.mean(1) / refs_to_cohort),
               "t-norm": (mean - to_cohort.mean(1)) / to_cohort.std(1)}
        out.update({f"/spread^{a}": mean / spread**a for a in (0.5, 0.75, 1.0, 1.25, 1.5)})
        return out

    print(f"alternatives, K=10, mean of {args.seeds} reference draws (the mean-distance and normalized columns above)")
    for (name, writers), (records, emb) in embedded.items():
        emb = emb.astype(np.float64)
        eers: dict[str, list[float]] = {}
        for seed in range(args.seeds):
            parts: dict[str, list] = {}
            for _, refs, questioned_gen, forg in protocols.reference_draws(records, 10, seed):
                q = np.concatenate([questioned_gen, forg])
                labels = np.r_[np.ones(len(questioned_gen)), np.zeros(len(forg))]
                for key, value in scores(emb[q], emb[refs]).items():
                    parts.setdefault(key, []).append((value, labels))
            for key, chunks in parts.items():
                eers.setdefault(key, []).append(metrics.eer(np.concatenate([c[0] for c in chunks]), np.concatenate([c[1] for c in chunks]))[0])
        print(f"  {name} {writers}: " + "  ".join(f"{key} {np.mean(v):.1%}" for key, v in eers.items()))


if __name__ == "__main__":
    main()
