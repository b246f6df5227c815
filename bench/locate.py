"""How well `sigml.locate` finds signatures on documents, how fast, and how many real crops its page check refuses.

    nice -n 19 env OMP_NUM_THREADS=1 .venv/bin/python bench/locate.py --data ../shared/datasets --pages 300 --every 1

1. Test documents (`sigml.synthdocs`, split "test"): the TEST writers' signatures (`image_pairs/<NAME>/splits.csv`),
   fonts (Liberation, FreeFont) and security backgrounds (crosshatch, rings, microtext) that the locator never saw
   in training. A true signature is located when a returned box has IoU >= 0.5 with it; every other returned box
   is a false box. Pages without a signature count too.
2. Time: `locate` on decoded 3000x2000 pages (median and 90th percentile), one process; the CPU count and
   the threads numpy may use are printed beside it.
3. Real crops: every `--every`-th image of every dataset folder (all writers, genuine and forged) goes through
   `locate.look`, the page check that serving uses (beside the quality gate) to tell a page from a signature crop; a refused crop is a
   real signature that would be answered `not_a_signature`.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from collections import Counter
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "backend"))

from sigml.metrics import percentile_interval   # noqa: E402
from sigml.locate import DEFAULT_MODEL, load_model, locate, look, match_boxes   # noqa: E402
from sigml.synthdocs import make_page, require_fonts, signature_pool  # noqa: E402


SEED_POOL = 200


def test_pages(data: str, splits: str, pages: int, seed: int, pages_dir: str | None):
    """The test documents, drawn once (and kept in `pages_dir` as PNG + boxes when given)."""
    sources = None
    # the first `pages` of one draw of SEED_POOL seeds: a smaller run uses a prefix of a larger run's pages
    for s in np.random.default_rng(seed).choice(10 ** 9, max(pages, SEED_POOL), replace=False)[:pages]:
        cached = Path(pages_dir) / f"test_{s}.png" if pages_dir else None
        if cached and cached.is_file():
            meta = json.loads(cached.with_suffix(".json").read_text())
            yield int(s), Image.open(cached), meta["boxes"], meta["kind"]
            continue
        sources = sources or signature_pool(data, splits, "test")
        page = make_page(int(s), sources, split="test")
        if cached:
            cached.parent.mkdir(parents=True, exist_ok=True)
            page.image.save(cached)
            cached.with_suffix(".json").write_text(json.dumps({"boxes": page.boxes, "kind": page.kind}))
        yield int(s), page.image, page.boxes, page.kind


def documents(data: str, splits: str, pages: int, seed: int, model, pages_dir: str | None = None) -> dict:
    located = signatures = false = 0
    false_on_blank = blank_pages = not_page = 0
    by_kind: Counter = Counter()
    misses: list[int] = []
    per_page = []  # (located, signatures, false boxes) of each page: the interval resamples pages
    for s, image, true_boxes, kind in test_pages(data, splits, pages, seed, pages_dir):
        seen = look(image, model=model)
        not_page += not seen.is_page
        hit, miss = match_boxes(np.array([f.box for f in seen.found], float), np.array(true_boxes, float))
        false += miss
        by_kind[f"false_{kind}"] += miss
        if not len(true_boxes):
            false_on_blank += miss
        located += hit
        signatures += len(true_boxes)
        per_page.append((hit, len(true_boxes), miss))
        blank_pages += not len(true_boxes)
        if hit < len(true_boxes):
            misses.append(int(s))
            by_kind[f"missed_{kind}"] += len(true_boxes) - hit
    located_interval, false_interval = page_bootstrap(np.array(per_page, float).reshape(-1, 3))
    return {"pages": pages, "signatures": signatures, "located": located, "located_rate": located / max(signatures, 1),
            "located_rate_95": located_interval, "false_boxes": false, "false_per_page": false / pages,
            "false_per_page_95": false_interval, "pages_without_signature": blank_pages,
            "false_on_pages_without_signature": false_on_blank, "by_kind": dict(by_kind), "pages_with_a_miss": misses[:20],
            "pages_the_page_check_took_for_a_crop": not_page}


def page_bootstrap(per_page: np.ndarray, n_boot: int = 2000, seed: int = 0) -> tuple[list[float], list[float]]:
    """95% intervals of the located share and the false boxes per page, resampling whole pages (a page's signatures
    share its fonts, background and capture)."""
    if not len(per_page):
        return [0.0, 0.0], [0.0, 0.0]
    draws = np.random.default_rng(seed).integers(0, len(per_page), (n_boot, len(per_page)))
    sums = per_page[draws].sum(axis=1)  # n_boot x (located, signatures, false)
    return (percentile_interval(sums[:, 0] / np.maximum(sums[:, 1], 1)),
            percentile_interval(sums[:, 2] / len(per_page)))


def timing(n: int, model, seed: int) -> dict:
    sources = signature_pool(ARGS.data, ARGS.splits, "test")
    times = []
    for i in range(n):
        page = make_page(seed + i, sources, split="test", kind="letter", width=2000)
        image = page.image.resize((2000, 3000))
        image.load()
        locate(image, model=model)  # warm
        start = time.perf_counter()
        locate(image, model=model)
        times.append(time.perf_counter() - start)
    times.sort()
    return {"pages": n, "median_ms": 1000 * statistics.median(times), "p90_ms": 1000 * times[int(0.9 * (n - 1))],
            "cpus": os.cpu_count(), "omp_threads": os.environ.get("OMP_NUM_THREADS", "unset")}


def real_crops(data: str, every: int, model) -> dict:
    from sigml.datasets import read_dataset

    out: dict = {}
    for folder in sorted(p for p in Path(data).iterdir() if p.is_dir()):
        records = read_dataset(folder, "auto", folder.name)[::every]
        refused, reasons, examples = 0, Counter(), []
        for r in records:
            check = look(folder / r.path, model=model)
            if check.is_page:
                refused += 1
                reasons[check.reason] += 1
                if len(examples) < 5:
                    examples.append(r.path)
        out[folder.name] = {"images": len(records), "refused": refused, "reasons": dict(reasons), "examples": examples}
        print(f"  {folder.name}: {refused}/{len(records)} refused {dict(reasons)}", flush=True)
    return out


def main(argv: list[str] | None = None) -> int:
    global ARGS
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", default=str((ROOT / ".." / "shared" / "datasets").resolve()), help="folder of the datasets")
    p.add_argument("--splits", default=str(ROOT / "image_pairs"))
    p.add_argument("--model", default=str(DEFAULT_MODEL), help="locator model JSON")
    p.add_argument("--pages", type=int, default=300, help="test documents")
    p.add_argument("--seed", type=int, default=20270)
    p.add_argument("--time-pages", type=int, default=20)
    p.add_argument("--every", type=int, default=1, help="check every N-th real image (1: all)")
    p.add_argument("--pages-dir", help="keep the drawn test pages here (PNG + boxes) and reuse them")
    p.add_argument("--skip-crops", action="store_true")
    p.add_argument("--out", help="JSON of the figures")
    ARGS = args = p.parse_args(argv)
    require_fonts("test")  # the documented documents, or none
    model = load_model(args.model)
    report = {"command": "bench/locate.py " + " ".join(sys.argv[1:] if argv is None else argv)}
    report["documents"] = d = documents(args.data, args.splits, args.pages, args.seed, model, args.pages_dir)
    print(f"test documents: {d['pages']} pages, {d['signatures']} signatures: located {d['located_rate']:.1%} "
          f"(IoU >= 0.5; 95% interval over pages {d['located_rate_95'][0]:.1%}-{d['located_rate_95'][1]:.1%}), "
          f"{d['false_per_page']:.3f} false boxes per page ({d['false_per_page_95'][0]:.3f}-{d['false_per_page_95'][1]:.3f}; "
          f"{d['false_boxes']} in all; "
          f"{d['false_on_pages_without_signature']} on the {d['pages_without_signature']} pages without a signature); "
          f"taken for a crop by the page check: {d['pages_the_page_check_took_for_a_crop']}; "
          f"{d['by_kind']}", flush=True)
    if args.time_pages:
        report["time"] = t = timing(args.time_pages, model, args.seed + 7)
        print(f"locate a 3000x2000 page: median {t['median_ms']:.0f} ms, p90 {t['p90_ms']:.0f} ms "
              f"({t['cpus']} CPUs, OMP_NUM_THREADS={t['omp_threads']})", flush=True)
    if not args.skip_crops:
        report["real_crops"] = crops = real_crops(args.data, args.every, model)
        n = sum(v["images"] for v in crops.values())
        refused = sum(v["refused"] for v in crops.values())
        print(f"real signature crops refused as pages: {refused}/{n} ({refused / max(n, 1):.2%}), every {args.every}")
    if args.out:
        Path(args.out).write_text(json.dumps(report, indent=2) + "\n")
    return 0


ARGS: argparse.Namespace


if __name__ == "__main__":
    raise SystemExit(main())
