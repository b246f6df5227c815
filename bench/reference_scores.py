"""How a questioned signature is scored against K references: plain mean distance vs normalised by the
references' spread (evaluation only; the model is not retrained).

    .venv/bin/python bench/reference_scores.py [--model trained_model_parameters/siamese_resnet18.safetensors]
        [--data ../shared/datasets] [--seeds 3]

For each dataset of the model card and for its validation and test writers: the reference-based EER
(skilled forgeries as negatives) with K = 5 and 10, averaged over `--seeds` draws of the references,
for `mean` and `normalized`. The choice of score was made on the validation rows.
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
    args = p.parse_args()
    started = time.perf_counter()
    verifier = Verifier.from_files(args.model)
    print(f"model {verifier.model_version}; reference-based EER (skilled forgeries), mean of {args.seeds} reference draws")
    print("| dataset | writers | K | mean distance | normalized by the references' spread |")
    print("| --- | --- | --- | --- | --- |")
    for source in verifier.card.data.get("sources", []):
        name = source["name"]
        for writers in ("validation", "test"):
            records, emb, _ = embed_dataset(verifier, Path(args.data) / name, dataset=name, writers=writers, progress=False)
            n = len({r.writer for r in records})
            for k in (5, 10):
                eers = {score: np.mean([metrics.eer(*_scores(emb, records, k, seed, score))[0] for seed in range(args.seeds)])
                        for score in ("mean", "normalized")}
                print(f"| {name} | {writers} ({n}) | {k} | {eers['mean']:.1%} | {eers['normalized']:.1%} |")
    print(f"evaluated in {time.perf_counter() - started:.0f} s")


def _scores(emb: np.ndarray, records, k: int, seed: int, score: str) -> tuple[np.ndarray, np.ndarray]:
    s = protocols.reference_based(emb, records, k=k, seed=seed, score=score)
    return s.distances, s.labels


if __name__ == "__main__":
    main()
