"""Do the decision bands hold on writers they were not fitted on? Cross-fitting on the validation writers.

    .venv/bin/python bench/band_holdout.py [--model trained_model_parameters/siamese_resnet18.safetensors] \
        [--data NAME=DIR ...] [--splits 40] [--levels 0,0.8,0.9,0.95] [--boot 200] [--out J]

The model card's validation writers (its data sources; `--data` says where a dataset lives) are embedded once and
scored as the card's bands are fitted (`sigml.calibration.validation_metrics`: pairwise pairs, and K references
with the card's reference score). Then, `--splits` times, each dataset's writers are split in two halves at random;
bands are fitted on one half and applied to the other, with each fit:
- `pooled`: shares of the pooled scores, as the bands were fitted before;
- `macro@L`: rates averaged over datasets, the cut kept where it meets its target in L of the writer resamples
  (`sigml.decision.fit_band` with `writers` and `level` L; L = 0: the cut on the half as it is).
Printed per protocol and fit: the held-out rates averaged over datasets (skilled forgeries decided genuine, genuine
decided forged, genuine decided genuine), their mean over the splits and how often the forgery rate went over its
target (the decision the card's fit is chosen by). Test writers are never read.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from sigml import decision
from sigml.calibration import validation_metrics
from sigml.evaluate import embed_card_sources
from sigml.inference import Verifier
from sigml.modelcard import PROTOCOLS

ROOT = Path(__file__).resolve().parents[1]


def dataset_of(writers: np.ndarray) -> np.ndarray:
    return np.asarray([w.split("/", 1)[0] for w in writers])


def half_split(writers: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A mask over the scores: True for the scores of a random half of each dataset's writers."""
    datasets = dataset_of(writers)
    chosen: set[str] = set()
    for name in np.unique(datasets):
        ids = np.unique(writers[datasets == name])
        chosen.update(rng.permutation(ids)[: len(ids) // 2])
    return np.isin(writers, list(chosen))


def macro_rates(scores: np.ndarray, labels: np.ndarray, writers: np.ndarray, band: dict) -> dict[str, float]:
    """The three-way split of held-out scores, each rate averaged over datasets."""
    datasets = dataset_of(writers)
    per_dataset = [decision.band_split(scores[datasets == name], labels[datasets == name], band)
                   for name in np.unique(datasets)]
    return {"forgery_decided_genuine": float(np.mean([s["forged"]["genuine"] for s in per_dataset])),
            "genuine_decided_forged": float(np.mean([s["genuine"]["forged"] for s in per_dataset])),
            "genuine_decided_genuine": float(np.mean([s["genuine"]["genuine"] for s in per_dataset]))}


def fit(scores, labels, writers, threshold: float, name: str, boot: int, seed: int) -> dict:
    if name == "pooled":
        return decision.fit_band(scores, labels, threshold)
    level = float(name.split("@")[1])
    return decision.fit_band(scores, labels, threshold, writers=writers, level=level, n_boot=boot, seed=seed)


def holdout(scores: np.ndarray, labels: np.ndarray, writers: np.ndarray, threshold: float, fits: list[str], *,
            splits: int, boot: int, seed: int) -> dict[str, dict]:
    rng = np.random.default_rng(seed)
    runs: dict[str, list[dict[str, float]]] = {name: [] for name in fits}
    for i in range(splits):
        half = half_split(writers, rng)
        for fit_on, apply_to in ((half, ~half), (~half, half)):
            for name in fits:
                band = fit(scores[fit_on], labels[fit_on], writers[fit_on], threshold, name, boot, seed + i)
                runs[name].append(macro_rates(scores[apply_to], labels[apply_to], writers[apply_to], band))
    target = decision.DEFAULT_TARGET_FAR
    return {name: {"mean": {key: float(np.mean([r[key] for r in rows])) for key in rows[0]},
                   "forgery_rate_over_target": float(np.mean([r["forgery_decided_genuine"] > target for r in rows])),
                   "forgery_rate_p90": float(np.quantile([r["forgery_decided_genuine"] for r in rows], 0.9)),
                   "n": len(rows)}
            for name, rows in runs.items()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default=str(ROOT / "trained_model_parameters" / "siamese_resnet18.safetensors"))
    parser.add_argument("--data", action="append", default=[], metavar="NAME=DIR",
                        help="where a dataset of the card's sources lives (default: the card's own path)")
    parser.add_argument("--splits", type=int, default=40, help="random halvings of the validation writers")
    parser.add_argument("--levels", default="0,0.8,0.9,0.95", help="writer-resample levels of the macro fits")
    parser.add_argument("--boot", type=int, default=decision.DEFAULT_BOOT)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", help="write the figures here as JSON")
    args = parser.parse_args(argv)
    roots = dict(item.split("=", 1) for item in args.data)
    verifier = Verifier.from_files(args.model)
    card = verifier.card
    config = card.training.get("config") or {}
    k, seed = int(config.get("validation_references", 10)), int(config.get("seed", 0))
    records, embeddings = embed_card_sources(verifier, writers="validation", roots=roots, progress=False)
    if not records:
        print("the model card names no data sources", file=sys.stderr)
        return 2
    validation = validation_metrics(embeddings, records, k=k, seed=seed, reference_score=card.reference_score)
    fits = ["pooled"] + [f"macro@{float(level):g}" for level in args.levels.split(",")]
    result = {"model_version": verifier.model_version, "splits": args.splits, "boot": args.boot,
              "target_far": decision.DEFAULT_TARGET_FAR, "target_frr": decision.DEFAULT_TARGET_FRR, "protocols": {}}
    for protocol, scored in zip(PROTOCOLS, (validation.pairwise_scores, validation.reference_scores)):
        if scored is None:
            continue
        figures = holdout(scored.distances, scored.labels, np.asarray(scored.writers), card.threshold_for(protocol),
                          fits, splits=args.splits, boot=args.boot, seed=args.seed)
        result["protocols"][protocol] = figures
        print(f"\n{protocol} ({len(set(scored.writers))} validation writers, {args.splits} x 2 held-out halves)")
        print("| fit | forgeries decided genuine | over 2% | p90 | genuine decided forged | genuine decided genuine |")
        print("| --- | --- | --- | --- | --- | --- |")
        for name, row in figures.items():
            mean = row["mean"]
            print(f"| {name} | {mean['forgery_decided_genuine']:.2%} | {row['forgery_rate_over_target']:.0%} | "
                  f"{row['forgery_rate_p90']:.2%} | {mean['genuine_decided_forged']:.2%} | "
                  f"{mean['genuine_decided_genuine']:.1%} |")
    if args.out:
        Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
