"""How close do two genuine signatures of one writer ever get, and how close are copies of one image?

    .venv/bin/python bench/copy_threshold.py --data CEDAR=../shared/datasets/CEDAR ... \
        [--model trained_model_parameters/siamese_resnet18.safetensors] [--copies 25] [--out J] [--update-card]

For each dataset, the validation and test writers (never seen in training) are embedded and every within-writer
genuine pair is measured; `--copies` genuine images per dataset are turned into near copies (`sigml.copies.NEAR_COPIES`:
JPEG re-encoding, rescaling, a second scan) and measured against their original. The copy threshold is
`sigml.copies.fit_copy_threshold` of all genuine pairs (half the closest one); the table says what share of copies
it catches. `--update-card` stores the threshold and the figures in the model card (`copy_threshold`,
metrics["copy_detection"]): serving flags `identical_to_reference` below it.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
from PIL import Image

from sigml import copies, protocols
from sigml.evaluate import embed_dataset
from sigml.inference import Verifier
from sigml.modelcard import ModelCard, card_path_for

ROOT = Path(__file__).resolve().parents[1]


def measure(verifier: Verifier, name: str, root: Path, n_copies: int, seed: int) -> dict:
    genuine_distances = []
    originals = []
    for writers in ("validation", "test"):
        records, emb, _ = embed_dataset(verifier, root, dataset=name, writers=writers, progress=False)
        scored = protocols.pairwise(emb, records, skilled=False)
        genuine_distances.append(scored.distances[scored.labels == 1])
        originals += [r for r in records if r.genuine]
    rng = np.random.default_rng(seed)
    chosen = [originals[i] for i in rng.choice(len(originals), size=min(n_copies, len(originals)), replace=False)]
    copy_distances: dict[str, list[float]] = {variant: [] for variant in copies.NEAR_COPIES}
    for record in chosen:
        with Image.open(root / record.path) as image:
            image.load()
            made = copies.near_copies(image)
            emb = verifier.embed([image.convert("L"), *made.values()])
        for variant, e in zip(made, emb[1:]):
            copy_distances[variant].append(float(np.linalg.norm(e - emb[0])))
    genuine = np.concatenate(genuine_distances)
    return {"genuine": genuine, "copies": {v: np.asarray(d) for v, d in copy_distances.items()}}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default=str(ROOT / "trained_model_parameters/siamese_resnet18.safetensors"))
    p.add_argument("--data", action="append", default=[], metavar="NAME=DIR", required=True)
    p.add_argument("--copies", type=int, default=25, help="genuine images per dataset turned into near copies")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", help="JSON of the figures")
    p.add_argument("--update-card", action="store_true")
    args = p.parse_args(argv)
    verifier = Verifier.from_files(args.model)
    measured = {}
    for item in args.data:
        name, root = item.split("=", 1)
        measured[name] = measure(verifier, name, Path(root), args.copies, args.seed)
    threshold = copies.fit_copy_threshold(np.concatenate([m["genuine"] for m in measured.values()]))
    variants = list(copies.NEAR_COPIES)
    print(f"model {verifier.model_version}; copy threshold = {copies.GENUINE_MARGIN} x closest genuine pair = {threshold:.4f}")
    print("| dataset | genuine pairs | closest | 0.1% quantile | " + " | ".join(f"{v}: max / caught" for v in variants) + " |")
    print("|" + " --- |" * (4 + len(variants)))
    report: dict = {"model_version": verifier.model_version, "copy_threshold": threshold,
                    "genuine_margin": copies.GENUINE_MARGIN, "copies_per_dataset": args.copies, "datasets": {}}
    for name, m in measured.items():
        g = m["genuine"]
        row = {"genuine_pairs": int(g.size), "closest_genuine": float(g.min()),
               "genuine_q001": float(np.quantile(g, 0.001)),
               "copies": {v: {"max": float(d.max()), "median": float(np.median(d)),
                              "caught": float(np.mean([copies.is_copy(x, threshold=threshold) for x in d]))}
                          for v, d in m["copies"].items()}}
        report["datasets"][name] = row
        cells = [f"{row['copies'][v]['max']:.3f} / {row['copies'][v]['caught']:.0%}" for v in variants]
        print(f"| {name} | {row['genuine_pairs']} | {row['closest_genuine']:.3f} | {row['genuine_q001']:.3f} | "
              + " | ".join(cells) + " |")
    all_copies = np.concatenate([d for m in measured.values() for d in m["copies"].values()])
    report["caught_overall"] = float(np.mean([copies.is_copy(x, threshold=threshold) for x in all_copies]))
    print(f"near copies caught overall: {report['caught_overall']:.1%} of {all_copies.size}; genuine pairs flagged: 0 "
          "(the threshold is below the closest one)")
    if args.out:
        Path(args.out).write_text(json.dumps(report, indent=2) + "\n")
    if args.update_card:
        path = card_path_for(args.model)
        card = ModelCard.load(path)
        card.copy_threshold = threshold
        card.metrics["copy_detection"] = report
        card.save(path)
        print(f"copy threshold stored in {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
