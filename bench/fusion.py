"""Score-level fusion of two or more models, measured like the benchmark.

    .venv/bin/python bench/fusion.py --model A.safetensors --model B.safetensors \
        --data CEDAR=../shared/datasets/CEDAR ... [--writers validation] [--boot 200] [--out fusion.json]

Each model embeds each dataset's chosen writers with its own preprocessing; the fused embedding is the
concatenation of the models' unit-length embeddings divided by sqrt(number of models), so its squared distance
is the mean of the models' squared distances and every protocol (pairwise, reference-based with the first
model's reference score and spread floor) runs on it unchanged. EERs need no threshold; the rates at thresholds
are not printed, because the fused distance has no calibrated threshold yet. Prints, per dataset and
macro-averaged, the pairwise EER and the headline reference-based EER (K=10; K=5 where writers have fewer
genuine signatures) of each model alone and of the fusion, with writer-bootstrap intervals for the macro.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "backend"))

from sigml.benchmark import benchmark_split_file, macro_average, score_dataset  # noqa: E402
from sigml.evaluate import embed_dataset  # noqa: E402
from sigml.inference import Verifier  # noqa: E402


def fused_embeddings(per_model: list[tuple[list, np.ndarray]]) -> tuple[list, np.ndarray]:
    """The records every model could read, and their concatenated embeddings scaled by 1/sqrt(models)."""
    keys = [{r.path: i for i, r in enumerate(records)} for records, _ in per_model]
    common = [r for r in per_model[0][0] if all(r.path in k for k in keys)]
    blocks = [emb[[k[r.path] for r in common]] for (_, emb), k in zip(per_model, keys)]
    return common, np.concatenate(blocks, axis=1) / np.sqrt(len(blocks))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", action="append", required=True, help="weights (.safetensors); give two or more")
    parser.add_argument("--data", action="append", required=True, metavar="NAME=DIR")
    parser.add_argument("--writers", default="validation", choices=["validation", "test"])
    parser.add_argument("--splits-dir", default=str(ROOT / "image_pairs"))
    parser.add_argument("--references", type=int, nargs="+", default=[5, 10])
    parser.add_argument("--boot", type=int, default=200)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", help="write the figures as JSON here")
    args = parser.parse_args(argv)
    if len(args.model) < 2:
        parser.error("give at least two --model")
    verifiers = [Verifier.from_files(m) for m in args.model]
    names = [v.model_version for v in verifiers] + ["fusion"]
    results: dict[str, dict] = {n: {} for n in names}
    draws: dict[str, dict] = {n: {} for n in names}
    for item in args.data:
        dataset, root = item.split("=", 1)
        per_model = []
        for verifier in verifiers:
            split = benchmark_split_file(verifier.card.data, dataset, args.writers, args.splits_dir)
            records, emb, _ = embed_dataset(verifier, root, dataset=dataset, writers=args.writers,
                                            split_file=str(split) if split else None, progress=False)
            per_model.append((records, emb))
        common, fused = fused_embeddings(per_model)
        for name, verifier, (records, emb) in zip(names, verifiers + [verifiers[0]], per_model + [(common, fused)]):
            results[name][dataset], draws[name][dataset] = score_dataset(
                verifier.card, emb, records, dataset=dataset, references=args.references, seed=args.seed,
                n_boot=args.boot)
        print(dataset, " ".join(f"{n}: pairwise {results[n][dataset]['pairwise']['eer']:.1%} "
                                f"K={results[n][dataset]['headline_k']} {results[n][dataset]['headline']['eer']:.1%}"
                                for n in names), flush=True)
    summary = {}
    for name in names:
        macro = macro_average(results[name], draws[name])
        summary[name] = {
            "pairwise_eer": macro["pairwise"]["eer"], "pairwise_eer_ci": macro["pairwise"]["eer_ci"],
            "headline_eer": macro["headline"]["eer"], "headline_eer_ci": macro["headline"]["eer_ci"],
            "per_dataset": {d: {"pairwise_eer": r["pairwise"]["eer"], "headline_k": r["headline_k"],
                                "headline_eer": r["headline"]["eer"]} for d, r in results[name].items()},
        }
        print(f"{name}: macro pairwise EER {macro['pairwise']['eer']:.1%} "
              f"[{macro['pairwise']['eer_ci'][0]:.1%}, {macro['pairwise']['eer_ci'][1]:.1%}], "
              f"macro headline EER {macro['headline']['eer']:.1%} "
              f"[{macro['headline']['eer_ci'][0]:.1%}, {macro['headline']['eer_ci'][1]:.1%}]")
    if args.out:
        Path(args.out).write_text(json.dumps({"writers": args.writers, "models": args.model, "boot": args.boot,
                                              "seed": args.seed, "results": summary}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
