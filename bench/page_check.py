"""Where the locator's page check (`sigml.locate.look`) draws the line between a page and a signature crop.

    nice -n 19 .venv/bin/python bench/page_check.py --split validation --pages 300 --crops 600 --dir runs/page_check

Synthetic documents (`sigml.synthdocs`, with the signatures of the writers of `--split`; training fonts and backgrounds
for "validation", test ones for "test") and real crops of the same writers (all datasets, drawn at random) are kept as
the network's inputs in `--dir` (drawn once, then reused). For each, the two figures the check reads: the share of the
ink that lies in the map's signature regions, and the rest of the ink as a share of the input's area. Printed: their
range on documents and on crops, and how many of each the shipped limits (`PAGE_MAX_SIGNATURE_SHARE`,
`PAGE_MIN_OTHER_INK`) call a page. The limits were chosen on the validation writers; `--split test` confirms them.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "backend"))

from sigml import locate as loc  # noqa: E402
from sigml.synthdocs import require_fonts  # noqa: E402
from sigml.locate_net import load_page, make_crop_pages, make_pages  # noqa: E402


def figures(model: loc.Locator, x: np.ndarray) -> tuple[float, float]:
    """(share of the ink in signature regions, other ink / input area): what `locate.look` decides on."""
    return loc.ink_in_signatures(loc.ink_of_input(x), model.heat(x))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", default=str((ROOT / ".." / "shared" / "datasets").resolve()))
    p.add_argument("--splits", default=str(ROOT / "image_pairs"))
    p.add_argument("--split", choices=("validation", "test"), default="validation")
    p.add_argument("--pages", type=int, default=300)
    p.add_argument("--crops", type=int, default=600)
    p.add_argument("--seed", type=int, default=31)
    p.add_argument("--dir", default=str(ROOT / "runs" / "page_check"), help="where the inputs are kept")
    p.add_argument("--workers", type=int, default=1)
    p.add_argument("--locator", default=str(loc.DEFAULT_MODEL), help="locator model JSON")
    p.add_argument("--out", help="JSON of the figures")
    args = p.parse_args(argv)
    require_fonts("test" if args.split == "test" else "train")  # the documented documents, or none
    model = loc.load_model(args.locator)
    pages_dir, crops_dir = Path(args.dir) / f"{args.split}_pages", Path(args.dir) / f"{args.split}_crops"
    pages = make_pages(args.data, args.splits, args.split, args.pages, pages_dir, seed=args.seed, workers=args.workers)
    crops = make_crop_pages(args.data, args.splits, args.split, args.crops, crops_dir, seed=args.seed,
                            workers=args.workers)
    report = {"command": "bench/page_check.py " + " ".join(sys.argv[1:] if argv is None else argv),
              "limits": {"max_signature_share": loc.PAGE_MAX_SIGNATURE_SHARE, "min_other_ink": loc.PAGE_MIN_OTHER_INK}}
    for name, paths in (("documents", pages), ("crops", crops)):
        values = np.array([figures(model, load_page(path)[0]) for path in paths]).reshape(-1, 2)
        called_page = (values[:, 0] < loc.PAGE_MAX_SIGNATURE_SHARE) & (values[:, 1] >= loc.PAGE_MIN_OTHER_INK)
        report[name] = {"n": len(values), "called_page": int(called_page.sum()),
                        "signature_share": {"min": float(values[:, 0].min()), "max": float(values[:, 0].max())},
                        "other_ink": {"min": float(values[:, 1].min()), "max": float(values[:, 1].max())}}
        r = report[name]
        print(f"{args.split} {name}: {r['n']}, called a page {r['called_page']} ({r['called_page'] / r['n']:.1%}); "
              f"signature share {r['signature_share']['min']:.3f}-{r['signature_share']['max']:.3f}, "
              f"other ink {r['other_ink']['min']:.4f}-{r['other_ink']['max']:.4f}", flush=True)
    if args.out:
        Path(args.out).write_text(json.dumps(report, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
