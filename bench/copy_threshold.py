"""How close do two genuine signatures of one writer ever get, and how close are copies of one image?

    .venv/bin/python bench/copy_threshold.py --data CEDAR=../shared/datasets/CEDAR ... \
        [--model trained_model_parameters/siamese_resnet18.safetensors] [--copies 25] [--out J] [--update-card]

For each dataset, the validation and test writers (never seen in training) are embedded and every within-writer
genuine pair is measured, in the embedding and as pictures (`copies.pixel_difference` of the model's input); `--copies` genuine images per dataset are turned into near copies (`sigml.copies.NEAR_COPIES`:
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

import torch

from sigml import copies, protocols
from sigml.datasets import read_dataset
from sigml.embedding import as_float, embed_tensors, preprocess_records
from sigml.evaluate import resolve_split_file, select_writers
from sigml.inference import Verifier
from sigml.modelcard import ModelCard, card_path_for

ROOT = Path(__file__).resolve().parents[1]


def genuine_pixel_differences(fingerprints: np.ndarray, records: list) -> np.ndarray:
    """`copies.pixel_difference` of every pair of one writer's genuine signatures, in `protocols.pairwise`'s order
    (writers sorted by dataset/writer, pairs as numpy.triu_indices), so pair i here is its genuine pair i."""
    by_writer: dict[str, list[int]] = {}
    for i, r in enumerate(records):
        if r.genuine:
            by_writer.setdefault(f"{r.dataset}/{r.writer}", []).append(i)
    out = [copies.pixel_difference(fingerprints[a], fingerprints[b])
           for w in sorted(by_writer) for k, a in enumerate(by_writer[w]) for b in by_writer[w][k + 1:]]
    return np.asarray(out)


def measure(verifier: Verifier, name: str, root: Path, n_copies: int, seed: int) -> dict:
    genuine_distances, genuine_pixels = [], []
    originals = []
    for writers in ("validation", "test"):
        records = select_writers(read_dataset(root, "auto", name), writers,
                                 resolve_split_file(verifier.card.data, name, None))
        images, records = preprocess_records(records, {name: root}, verifier.card.preprocessing, progress=False)
        emb = embed_tensors(verifier.model, images, bf16=verifier.bf16, progress=False)
        scored = protocols.pairwise(emb, records, skilled=False)
        genuine_distances.append(scored.distances[scored.labels == 1])
        fingerprints = np.stack([copies.fingerprint(as_float(images[i]).numpy()) for i in range(len(records))])
        genuine_pixels.append(genuine_pixel_differences(fingerprints, records))
        originals += [r for r in records if r.genuine]
    rng = np.random.default_rng(seed)
    chosen = [originals[i] for i in rng.choice(len(originals), size=min(n_copies, len(originals)), replace=False)]
    copy_distances: dict[str, list[float]] = {variant: [] for variant in copies.NEAR_COPIES}
    copy_pixels: dict[str, list[float]] = {variant: [] for variant in copies.NEAR_COPIES}
    for record in chosen:
        with Image.open(root / record.path) as image:
            image.load()
            made = copies.near_copies(image)
            tensors = [verifier.preprocess(im) for im in (image.convert("L"), *made.values())]
            emb = verifier.embed_tensors(torch.stack(tensors))
        for variant, e, t in zip(made, emb[1:], tensors[1:]):
            copy_distances[variant].append(float(np.linalg.norm(e - emb[0])))
            copy_pixels[variant].append(verifier.pixel_difference(tensors[0], t))
    return {"genuine": np.concatenate(genuine_distances), "genuine_pixels": np.concatenate(genuine_pixels),
            "copies": {v: np.asarray(d) for v, d in copy_distances.items()},
            "copy_pixels": {v: np.asarray(d) for v, d in copy_pixels.items()}}


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
    pixels_all = np.concatenate([m["genuine_pixels"] for m in measured.values()])
    identical = int(np.count_nonzero(pixels_all <= 1e-6))  # the same image filed twice in a dataset: a copy itself
    pixel_threshold = copies.fit_copy_threshold(pixels_all)
    variants = list(copies.NEAR_COPIES)
    print(f"model {verifier.model_version}; copy threshold = {copies.GENUINE_MARGIN} x the {copies.GENUINE_QUANTILE:.1%} "
          "quantile of genuine pairs: embedding "
          f"{threshold:.4f}, pixels {pixel_threshold:.4f} ({identical} genuine pairs were the same picture twice)")
    print("| dataset | genuine pairs | closest (embedding / pixels) | genuine pairs flagged | "
          + " | ".join(f"{v}: caught" for v in variants) + " |")
    print("|" + " --- |" * (4 + len(variants)))
    report: dict = {"model_version": verifier.model_version, "copy_threshold": threshold,
                    "copy_pixel_threshold": pixel_threshold, "genuine_pairs_identical_pictures": identical,
                    "genuine_margin": copies.GENUINE_MARGIN, "copies_per_dataset": args.copies, "datasets": {}}

    def caught(d: float, p: float) -> bool:
        return copies.is_copy(d, threshold=threshold, pixels=p, pixel_threshold=pixel_threshold)

    for name, m in measured.items():
        g, gp = m["genuine"], m["genuine_pixels"]
        row = {"genuine_pairs": int(g.size), "closest_genuine": float(g.min()),
               "closest_genuine_pixels": float(gp.min()),
               "genuine_flagged": int(sum(caught(d, p) for d, p in zip(g, gp))),
               "copies": {v: {"max_distance": float(m["copies"][v].max()), "max_pixels": float(m["copy_pixels"][v].max()),
                              "caught": float(np.mean([caught(d, p) for d, p in zip(m["copies"][v], m["copy_pixels"][v])]))}
                          for v in variants}}
        report["datasets"][name] = row
        cells = [f"{row['copies'][v]['caught']:.0%}" for v in variants]
        print(f"| {name} | {row['genuine_pairs']} | {row['closest_genuine']:.3f} / {row['closest_genuine_pixels']:.3f} | "
              f"{row['genuine_flagged']} | " + " | ".join(cells) + " |")
    pairs = [(d, p) for m in measured.values() for v in variants for d, p in zip(m["copies"][v], m["copy_pixels"][v])]
    report["caught_overall"] = float(np.mean([caught(d, p) for d, p in pairs]))
    report["caught_by_variant"] = {v: float(np.mean([caught(d, p) for m in measured.values()
                                                     for d, p in zip(m["copies"][v], m["copy_pixels"][v])]))
                                   for v in variants}
    report["genuine_flagged"] = sum(r["genuine_flagged"] for r in report["datasets"].values())
    n_genuine = sum(r["genuine_pairs"] for r in report["datasets"].values())
    print(f"near copies caught overall: {report['caught_overall']:.1%} of {len(pairs)} ("
          + ", ".join(f"{v} {c:.0%}" for v, c in report["caught_by_variant"].items())
          + f"); genuine pairs flagged: {report['genuine_flagged']} of {n_genuine}")
    if args.out:
        Path(args.out).write_text(json.dumps(report, indent=2) + "\n")
    if args.update_card:
        path = card_path_for(args.model)
        card = ModelCard.load(path)
        card.copy_threshold, card.copy_pixel_threshold = threshold, pixel_threshold
        card.metrics["copy_detection"] = report
        card.save(path)
        print(f"copy threshold stored in {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
