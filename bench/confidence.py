"""How sure are the results table's EERs? Writer-level bootstrap intervals, and paired model comparisons
(evaluation only, no retraining).

    .venv/bin/python bench/confidence.py [--model trained_model_parameters/siamese_resnet18.safetensors]
        [--against OTHER.safetensors] [--writers test] [--dataset CEDAR --dataset GPDS] [--boot 1000]

For each dataset of the model card (or `--dataset`), on its `--writers` (test by default; `all` for a
cross-dataset model): the pairwise EER (genuine-genuine vs genuine-skilled pairs) and the reference-based
EER with K=10 (the card's score and reference draw of seed 0, exactly as `sigml evaluate` computes them),
each with a 95% percentile interval from resampling the *writers* with replacement (`sigml.metrics.
writer_bootstrap`). With `--against`, the other model is scored on the same comparisons and the interval
of the EER difference (other - model) is paired by writer: an interval that holds 0 means the two models
cannot be told apart on these writers.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from sigml import metrics, protocols
from sigml.evaluate import embed_dataset, served_reference_based
from sigml.inference import Verifier

ROOT = Path(__file__).resolve().parents[1]


def scored(verifier: Verifier, records, emb: np.ndarray, k: int = 10) -> dict[str, protocols.Scored]:
    return {
        "pairwise": protocols.pairwise(emb, records),
        f"reference K={k}": served_reference_based(verifier.card, emb, records, k=k, seed=0)[0],
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default=str(ROOT / "trained_model_parameters/siamese_resnet18.safetensors"))
    p.add_argument("--against", help="a second model, compared on the same comparisons")
    p.add_argument("--data", default=str(ROOT / "../shared/datasets"))
    p.add_argument("--dataset", action="append", help="dataset name (default: those the model card was trained on)")
    p.add_argument("--writers", default="test", choices=("test", "validation", "all"))
    p.add_argument("--boot", type=int, default=1000)
    args = p.parse_args()
    started = time.perf_counter()
    model = Verifier.from_files(args.model)
    other = Verifier.from_files(args.against) if args.against else None
    names = args.dataset or [s["name"] for s in model.card.data.get("sources", [])]
    print(f"model {model.model_version}" + (f"; against {other.model_version} ({args.against})" if other else ""))
    print("| dataset | writers | protocol | EER [95% CI over writers] |" + (" other EER | difference (other - model) [95% CI] |" if other else ""))
    print("| --- | --- | --- | --- |" + (" --- | --- |" if other else ""))
    for name in names:
        records, emb, _ = embed_dataset(model, Path(args.data) / name, dataset=name, writers=args.writers, progress=False)
        mine = scored(model, records, emb)
        theirs = None
        if other is not None:
            records_o, emb_o, _ = embed_dataset(other, Path(args.data) / name, dataset=name, writers=args.writers, progress=False)
            if [r.path for r in records_o] != [r.path for r in records]:
                raise SystemExit(f"{name}: the two models read different images (preprocessing differs)")
            theirs = scored(other, records, emb_o)
        n_writers = len({r.writer for r in records})
        for protocol, s in mine.items():
            o = theirs[protocol] if theirs else None
            if o is not None and not (np.array_equal(o.index_a, s.index_a) and np.array_equal(o.index_b, s.index_b)):
                raise SystemExit(f"{name} {protocol}: the comparisons differ between the two models")
            b = metrics.writer_bootstrap(s.distances, s.labels, s.writers, other=None if o is None else o.distances,
                                         n_boot=args.boot)
            line = f"| {name} | {args.writers} ({n_writers}) | {protocol} | {b['eer']:.1%} [{b['ci'][0]:.1%}, {b['ci'][1]:.1%}] |"
            if o is not None:
                lo, hi = b["difference_ci"]
                line += f" {b['other_eer']:.1%} | {b['difference'] * 100:+.1f} points [{lo * 100:+.1f}, {hi * 100:+.1f}] |"
            print(line)
    print(f"{args.boot} writer resamples; evaluated in {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
