"""Train the signature locator's classifier on synthetic documents: `python -m sigml.locate_train`.

Pages come from `sigml.synthdocs` with the *training* writers' signatures (and the training fonts and
backgrounds); the decision threshold is chosen on pages made from the *validation* writers' signatures, as the
lowest score cut that leaves at most `--max-false` false boxes per page. Test writers, test fonts and test
backgrounds are left to `bench/locate.py`. The classifier is scikit-learn's MLPClassifier on standardised
features; only its arrays are stored, as JSON (`sigml.locate.LocatorModel`), never a pickle.

    python -m sigml.locate_train --data ../shared/datasets --pages 800 --out trained_model_parameters/signature_locator.json
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from pathlib import Path
from typing import Sequence

import numpy as np
from PIL import Image

from .locate import FEATURE_NAMES, LocatorModel, analyse, box_iou, _suppress
from .synthdocs import SignatureSource, make_page, signature_pool

log = logging.getLogger(__name__)

POSITIVE_IOU, NEGATIVE_IOU = 0.55, 0.4  # candidates in between are left out of training


def _page(sources: Sequence[SignatureSource], seed: int, split: str, pages_dir: Path | None):
    """The page of `seed` and its true boxes, kept in `pages_dir` (JPEG q95 + JSON) to refit without redrawing."""
    if pages_dir is not None:
        image_path, boxes_path = pages_dir / f"{split}_{seed}.jpg", pages_dir / f"{split}_{seed}.json"
        if image_path.is_file() and boxes_path.is_file():
            return Image.open(image_path), json.loads(boxes_path.read_text())
    doc = make_page(int(seed), sources, split=split)  # type: ignore[arg-type]
    if pages_dir is not None:
        pages_dir.mkdir(parents=True, exist_ok=True)
        doc.image.save(image_path, quality=95)
        boxes_path.write_text(json.dumps(doc.boxes))
    return doc.image, doc.boxes


def _page_features(job: tuple) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
    sources, seed, split, pages_dir = job
    image, true_boxes = _page(sources, int(seed), split, pages_dir)
    a = analyse(image)
    gt = np.asarray(true_boxes, np.float64).reshape(-1, 4) / a.scale
    iou = box_iou(a.boxes, gt).max(axis=1) if len(gt) and len(a.boxes) else np.zeros(len(a.boxes))
    return a.features, iou, a.boxes, len(gt)


def page_set(sources: Sequence[SignatureSource], seeds: Sequence[int], split: str, progress: bool = True,
             pages_dir: Path | None = None, workers: int = 1) -> dict[str, np.ndarray]:
    """Features of every candidate of the pages made from `seeds`, with their best IoU with a true box."""
    from multiprocessing import get_context

    feats, ious, page, boxes, n_true = [], [], [], [], []
    start = time.time()
    jobs = [(sources, int(s), split, pages_dir) for s in seeds]
    pool = get_context("fork").Pool(workers) if workers > 1 else None
    results = pool.imap(_page_features, jobs, chunksize=4) if pool else map(_page_features, jobs)
    for i, (f, iou, b, n) in enumerate(results):
        feats.append(f); ious.append(iou); page.append(np.full(len(b), i)); boxes.append(b); n_true.append(n)
        if progress and (i + 1) % 50 == 0:
            log.info("%d/%d pages (%.1f s/page)", i + 1, len(seeds), (time.time() - start) / (i + 1))
    if pool:
        pool.close()
    return {"features": np.concatenate(feats), "iou": np.concatenate(ious), "page": np.concatenate(page),
            "boxes": np.concatenate(boxes), "n_true": np.array(n_true)}


def page_figures(data: dict[str, np.ndarray], scores: np.ndarray, threshold: float) -> dict:
    """Located (IoU >= 0.5) and false boxes per page after suppression at `threshold`."""
    located = false = 0
    for p in range(len(data["n_true"])):
        idx = np.flatnonzero(data["page"] == p)
        kept = idx[_suppress(data["boxes"][idx], scores[idx], threshold)]
        good = data["iou"][kept] >= 0.5
        located += int(good.sum())
        false += int((~good).sum())
    total = int(data["n_true"].sum())
    return {"located": located / max(total, 1), "false_per_page": false / len(data["n_true"]), "signatures": total,
            "pages": int(len(data["n_true"]))}


def _split_pages(data: dict[str, np.ndarray], fraction: float) -> tuple[dict, dict]:
    """The first pages for fitting, the last `fraction` of them for choosing the threshold."""
    n_pages = len(data["n_true"])
    cut = int(round(n_pages * (1 - fraction)))
    first = data["page"] < cut
    fit_part = {k: v[first] for k, v in data.items() if k != "n_true"} | {"n_true": data["n_true"][:cut]}
    held = {k: v[~first] for k, v in data.items() if k != "n_true"} | {"n_true": data["n_true"][cut:]}
    held["page"] = held["page"] - cut
    return fit_part, held


def fit(train: dict[str, np.ndarray], *, hidden: tuple[int, ...] = (32, 16), seed: int = 0) -> LocatorModel:
    from sklearn.neural_network import MLPClassifier

    iou = train["iou"]
    use = (iou >= POSITIVE_IOU) | (iou < NEGATIVE_IOU)
    x, y = train["features"][use].astype(np.float64), (iou[use] >= POSITIVE_IOU).astype(int)
    mean, std = x.mean(axis=0), x.std(axis=0) + 1e-6
    clf = MLPClassifier(hidden_layer_sizes=hidden, alpha=1e-3, max_iter=400, early_stopping=True, random_state=seed)
    clf.fit((x - mean) / std, y)
    return LocatorModel(mean, std, tuple(clf.coefs_), tuple(clf.intercepts_), 0.5,
                        {"classifier": f"MLPClassifier{hidden}", "train_candidates": int(use.sum()),
                         "train_positives": int(y.sum())})


def choose_threshold(data: dict[str, np.ndarray], scores: np.ndarray, max_false: float) -> float:
    """The lowest cut (of a grid) with at most `max_false` false boxes per page."""
    for cut in np.round(np.arange(0.2, 0.96, 0.025), 3):
        if page_figures(data, scores, float(cut))["false_per_page"] <= max_false:
            return float(cut)
    return 0.95


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m sigml.locate_train", description=__doc__.splitlines()[0])
    p.add_argument("--data", required=True, help="folder of the datasets (CEDAR-natural/, BHSig260-Hindi/, ...)")
    p.add_argument("--splits", default="image_pairs", help="folder of <NAME>/splits.csv")
    p.add_argument("--pages", type=int, default=800, help="training pages")
    p.add_argument("--validation-pages", type=int, default=200)
    p.add_argument("--hold-out", type=float, default=0.0,
                   help="choose the threshold on this share of the training pages (left out of fitting) instead of "
                        "drawing validation-writer pages")
    p.add_argument("--workers", type=int, default=1, help="processes drawing pages")
    p.add_argument("--max-false", type=float, default=0.05, help="false boxes per validation page the threshold allows")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--pages-dir", help="keep the drawn pages here (JPEG + boxes) and reuse them")
    p.add_argument("--features", help="an .npz cache of the page features (read if present, else written)")
    p.add_argument("--out", required=True, help="e.g. trained_model_parameters/signature_locator.json")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")

    cache = Path(args.features) if args.features else None
    if cache and cache.is_file():
        with np.load(cache, allow_pickle=False) as z:
            train = {k[6:]: z[k] for k in z.files if k.startswith("train_")}
            val = {k[4:]: z[k] for k in z.files if k.startswith("val_")}
    else:
        train_sources = signature_pool(args.data, args.splits, "train")
        val_sources = signature_pool(args.data, args.splits, "validation")
        rng = np.random.default_rng(args.seed)
        seeds = rng.choice(10 ** 9, args.pages + args.validation_pages, replace=False)
        pages_dir = Path(args.pages_dir) if args.pages_dir else None
        train = page_set(train_sources, seeds[: args.pages], "train", pages_dir=pages_dir, workers=args.workers)
        if args.hold_out > 0:
            train, val = _split_pages(train, args.hold_out)
        else:
            val = page_set(val_sources, seeds[args.pages :], "train", pages_dir=pages_dir and pages_dir / "validation",
                           workers=args.workers)
        if cache:
            np.savez_compressed(cache, **{f"train_{k}": v for k, v in train.items()}, **{f"val_{k}": v for k, v in val.items()})
    model = fit(train, seed=args.seed)
    scores = model.score(val["features"])
    threshold = choose_threshold(val, scores, args.max_false)
    figures = page_figures(val, scores, threshold)
    card = {
        **model.card, "threshold_rule": f"lowest cut with at most {args.max_false} false boxes per validation page",
        "training_pages": int(len(train["n_true"])), "validation_pages": int(len(val["n_true"])), "seed": args.seed,
        "signatures": "training writers' crops of every dataset with a splits.csv (genuine and forged); "
                      + (f"the threshold is chosen on the last {args.hold_out:.0%} of the training pages, left out of fitting"
                         if args.hold_out > 0 else "validation writers' pages for the threshold"),
        "documents": "sigml.synthdocs, split 'train' (DejaVu and Noto fonts; backgrounds plain, guilloche, tint, dots)",
        "validation": figures, "command": "python -m sigml.locate_train " + " ".join(sys.argv[1:] if argv is None else argv),
    }
    model = LocatorModel(model.mean, model.std, model.weights, model.biases, threshold, card)
    model.save(args.out)
    print(f"threshold {threshold:.3f}: validation located {figures['located']:.1%}, "
          f"{figures['false_per_page']:.3f} false boxes per page -> {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
