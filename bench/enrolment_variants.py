"""Stroke-level enrolment variants (`sigml.variants`): does embedding a few variants of each reference beside it
lower the reference-based EER? Evaluation only (no retraining); validation writers choose, test writers confirm.

    .venv/bin/python bench/enrolment_variants.py --writers validation [--variants 4] [--ks 1,10] [--out JSON]

For each dataset of the model card (`--data` holds them), its `--writers` writers' genuine signatures and skilled
forgeries are embedded, and `--variants` stroke-level variants of every reference (`--kinds`: by default thicker,
thinner, then elastic ones; `sigml.variants.stroke_variants`, seeded by the image's index). References are drawn as every benchmark draws
them (`sigml.protocols.reference_draws`, seed 0). Two scores of each questioned signature:
  - served: the card's score for K (K=1: the distance to the reference; K>=2: the mean distance to the references
    over their spread, `ModelCard.reference_policy`);
  - with variants: the mean distance to the references and their variants, for K>=2 over the same spread of the
    references alone (the variants, close to their sources, would shrink the spread and move every score).
Printed per dataset and K: the EER (skilled forgeries as negatives) of both and the writer-bootstrap interval of
their difference; then the macro average over datasets.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Sequence

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "backend"))

from sigml import metrics, protocols  # noqa: E402
from sigml.datasets import read_dataset  # noqa: E402
from sigml.embedding import preprocess_records  # noqa: E402
from sigml.evaluate import resolve_split_file, select_writers  # noqa: E402
from sigml.inference import Verifier  # noqa: E402
from sigml.variants import KINDS, stroke_variants  # noqa: E402


def embed_with_variants(verifier: Verifier, data: Path, name: str, writers: str, n_variants: int, ks: list[int],
                        kinds: Sequence[str] = KINDS):
    """The records of `writers`, their embeddings, and a dict: record index -> its variants' embeddings, for every
    image drawn as a reference for any K of `ks`."""
    records = select_writers(read_dataset(data / name, "auto", name), writers,
                             resolve_split_file(verifier.card.data, name, None))
    images, records = preprocess_records(records, {name: data / name}, verifier.card.preprocessing, progress=False)
    images = images.numpy()
    emb = verifier.embed_tensors(images)
    references = sorted({int(i) for k in ks for _, refs, _, _ in protocols.reference_draws(records, k, 0) for i in refs})
    batch = np.concatenate([stroke_variants(images[i], n_variants, seed=i, kinds=kinds) for i in references])
    variant_emb = verifier.embed_tensors(batch).reshape(len(references), n_variants, -1)
    return records, emb, dict(zip(references, variant_emb))


def scores(card, records, emb: np.ndarray, variants: dict[int, np.ndarray], k: int):
    """Per questioned signature: (served score, score with variants, label 1 = genuine, writer)."""
    policy = card.reference_policy(k)
    served, with_variants, labels, writers = [], [], [], []
    for writer, refs, genuine, forged in protocols.reference_draws(records, k, 0):
        questioned = np.concatenate([genuine, forged])
        method = "mean" if k == 1 else policy.reference_score
        served.append(protocols.reference_scores(emb[questioned], emb[refs], method,
                                                 spread_floor=policy.spread_floor))
        pool = np.concatenate([emb[refs], *(variants[int(i)] for i in refs)])
        mean = protocols.reference_scores(emb[questioned], pool, "mean")
        if k >= 2 and method == "normalized":
            mean = protocols.normalize(mean, protocols.reference_spread(emb[refs]), policy.spread_floor)
        with_variants.append(mean)
        labels.append(np.r_[np.ones(len(genuine)), np.zeros(len(forged))])
        writers.extend([writer] * len(questioned))
    if not served:  # no writer has more than K genuine signatures
        return np.zeros(0), np.zeros(0), np.zeros(0, int), []
    return np.concatenate(served), np.concatenate(with_variants), np.concatenate(labels).astype(int), writers


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default=str(ROOT / "trained_model_parameters" / "siamese_resnet18.safetensors"))
    p.add_argument("--data", default=str((ROOT / ".." / "shared" / "datasets").resolve()))
    p.add_argument("--writers", default="validation", choices=("validation", "test"))
    p.add_argument("--variants", type=int, default=4)
    p.add_argument("--kinds", default=",".join(KINDS), help="the variants' kinds, the last repeated (sigml.variants)")
    p.add_argument("--ks", default="1,10")
    p.add_argument("--boot", type=int, default=200)
    p.add_argument("--out", help="JSON of the figures")
    args = p.parse_args(argv)
    started = time.perf_counter()
    verifier = Verifier.from_files(args.model, runtime="auto")
    ks = [int(k) for k in args.ks.split(",")]
    kinds = [kind for kind in args.kinds.split(",") if kind]
    names = [s["name"] for s in verifier.card.data.get("sources", [])]
    rows: dict[str, dict] = {}
    print(f"model {verifier.model_version}; {args.writers} writers; {args.variants} variants per reference "
          f"({', '.join(kinds)})")
    print("| dataset | K | served EER | with variants | difference [95% writer bootstrap] |")
    print("| --- | --- | --- | --- | --- |")
    for name in names:
        records, emb, variants = embed_with_variants(verifier, Path(args.data), name, args.writers, args.variants, ks,
                                                     kinds)
        for k in ks:
            served, varied, labels, writers = scores(verifier.card, records, emb, variants, k)
            if not writers or labels.min() == labels.max():
                continue
            boot = metrics.writer_bootstrap(served, labels, writers, other=varied, n_boot=args.boot)
            rows.setdefault(name, {})[str(k)] = {"served": boot["eer"], "with_variants": boot["other_eer"],
                                                 "difference": boot["difference"],
                                                 "difference_ci": boot["difference_ci"]}
            lo, hi = boot["difference_ci"]
            print(f"| {name} | {k} | {boot['eer']:.1%} | {boot['other_eer']:.1%} | "
                  f"{boot['difference'] * 100:+.1f} [{lo * 100:+.1f}, {hi * 100:+.1f}] |")
    macro = {}
    for k in ks:
        present = [r[str(k)] for r in rows.values() if str(k) in r]
        macro[str(k)] = {key: float(np.mean([r[key] for r in present])) for key in ("served", "with_variants")}
        print(f"| **macro** ({len(present)}) | {k} | {macro[str(k)]['served']:.1%} | "
              f"{macro[str(k)]['with_variants']:.1%} | |")
    report = {"command": "bench/enrolment_variants.py " + " ".join(sys.argv[1:] if argv is None else argv),
              "model_version": verifier.model_version, "writers": args.writers, "variants": args.variants,
              "kinds": kinds,
              "datasets": rows, "macro": macro, "seconds": round(time.perf_counter() - started, 1)}
    if args.out:
        Path(args.out).write_text(json.dumps(report, indent=2) + "\n")
    print(f"evaluated in {report['seconds']:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
