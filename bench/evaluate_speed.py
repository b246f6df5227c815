"""Batch evaluation speed: `sigml evaluate`'s path (each image preprocessed and embedded once, DataLoader
workers) against scoring pair by pair (both images decoded, preprocessed and embedded for every pair).

    .venv/bin/python bench/evaluate_speed.py [--model M] [--data ../shared/datasets] [--writers test]
        [--sample-pairs 150] [--workers 0,2]

Prints, per dataset and for CEDAR+GPDS together: images, pairs, the embed-once time (each worker count),
the measured per-pair cost on a random sample of pairs and the extrapolated pair-by-pair time, the
speed-up, and the largest distance difference between the two paths on the sampled pairs.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from sigml import protocols
from sigml.evaluate import embed_dataset
from sigml.inference import Verifier
from sigml.testing import make_test_model

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default=str(ROOT / "trained_model_parameters/siamese_resnet18.safetensors"))
    p.add_argument("--data", default=str(ROOT / "../shared/datasets"))
    p.add_argument("--datasets", default="CEDAR,GPDS")
    p.add_argument("--writers", default="test", choices=("all", "train", "validation", "test"))
    p.add_argument("--sample-pairs", type=int, default=150)
    p.add_argument("--workers", default="0,2")
    p.add_argument("--threads", type=int, default=2)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    model = Path(args.model)
    if not model.is_file():
        model = make_test_model(Path(tempfile.mkdtemp()))
        print(f"(no model at {args.model}: timing an untrained model of the same architecture)")
    verifier = Verifier.from_files(model)
    rng = np.random.default_rng(0)
    total = {"images": 0, "pairs": 0, "once": {}, "per_pair": 0.0}
    for name in args.datasets.split(","):
        root = Path(args.data) / name
        splits = ROOT / "image_pairs" / name / "splits.csv"
        times = {}
        for w in (int(x) for x in args.workers.split(",")):
            started = time.perf_counter()
            records, emb, _ = embed_dataset(verifier, root, dataset=name, writers=args.writers,
                                            split_file=str(splits) if args.writers != "all" else None, workers=w, progress=False)
            pw = protocols.pairwise(emb, records)
            times[w] = time.perf_counter() - started
        n_pairs = len(pw.distances)
        sample = rng.choice(n_pairs, size=min(args.sample_pairs, n_pairs), replace=False)
        started = time.perf_counter()
        diffs = []
        for i in sample:
            a, b = records[pw.index_a[i]], records[pw.index_b[i]]
            result = verifier.verify(root / a.path, root / b.path)
            diffs.append(abs(result.distance - pw.distances[i]))
        per_pair = (time.perf_counter() - started) / len(sample)
        best = min(times.values())
        print(f"{name} {args.writers} writers: {len(records)} images, {n_pairs} pairs (genuine-genuine + genuine-skilled)")
        for w, t in times.items():
            print(f"  embed once, DataLoader workers={w}: {t:.1f} s")
        print(f"  pair by pair: {per_pair * 1000:.1f} ms/pair measured on {len(sample)} pairs -> {per_pair * n_pairs:.0f} s for all pairs")
        print(f"  speed-up {per_pair * n_pairs / best:.0f}x; max |distance difference| on the sample {max(diffs):.2e}")
        total["images"] += len(records)
        total["pairs"] += n_pairs
        total["per_pair"] += per_pair * n_pairs
        for w, t in times.items():
            total["once"][w] = total["once"].get(w, 0.0) + t
    best = min(total["once"].values())
    print(f"ALL ({args.datasets}): {total['images']} images, {total['pairs']} pairs: embed once "
          + ", ".join(f"workers={w} {t:.1f} s" for w, t in total["once"].items())
          + f"; pair by pair ~{total['per_pair']:.0f} s; speed-up {total['per_pair'] / best:.0f}x")


if __name__ == "__main__":
    main()
