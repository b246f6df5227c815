"""How often the input quality gate (`sigml.quality`) refuses or warns about real signatures.

    .venv/bin/python bench/quality_gate.py --data CEDAR=../shared/datasets/CEDAR ... [--out docs/results/quality_gate.json]

Every image of every dataset given (genuine and forged, all writers) goes through serving's preprocessing
(`preprocessing.preprocess_checked`, default config); the table counts refusals (`not_a_signature`: the target is
under 0.5% of real signatures) and warnings per dataset, with the largest measures seen, so the gate's limits can be
read against what real crops look like.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from pathlib import Path

from tqdm.auto import tqdm

from sigml import quality
from sigml.datasets import read_dataset
from sigml.errors import BlankImageError, ImageError
from sigml.preprocessing import ink_map


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", action="append", default=[], metavar="NAME=DIR", required=True)
    p.add_argument("--out", help="JSON of the figures")
    p.add_argument("--every", type=int, default=1, help="judge every Nth image of each dataset (1: all)")
    p.add_argument("--no-progress", action="store_true")
    args = p.parse_args(argv)
    report: dict = {"every": args.every, "limits": {"max_ink_fraction": quality.MAX_INK_FRACTION,
                               "max_border_coverage": quality.MAX_BORDER_COVERAGE,
                               "max_text_lines": quality.MAX_TEXT_LINES, "min_ink_height": quality.MIN_INK_HEIGHT,
                               "min_ink_width": quality.MIN_INK_WIDTH, "rotated_aspect": quality.ROTATED_ASPECT,
                               "max_column_text_lines": quality.MAX_COLUMN_TEXT_LINES, "max_pieces": quality.MAX_PIECES,
                               "max_small_mark_share": quality.MAX_SMALL_MARK_SHARE},
              "datasets": {}}
    print("| dataset | images | refused | warned | blank (no ink) | max ink fraction | max border coverage | max text lines "
          "| smallest ink width x height (each its own minimum) | max height/width | max lines in a quarter | max pieces "
          "| max small-mark share |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    totals = Counter()
    for item in args.data:
        name, root = item.split("=", 1)
        records = read_dataset(Path(root), "auto", name)[::args.every]
        counts, codes = Counter(), Counter()
        worst = {"ink_fraction": 0.0, "border_coverage": 0.0, "text_lines": 0, "column_text_lines": 0, "pieces": 0,
                 "small_mark_share": 0.0}
        smallest = {"ink_height": 10**9, "ink_width": 10**9}
        tallest = 0.0  # the largest ink-box height / width: how far from the sideways warning real signatures are
        refused_examples = []
        for record in tqdm(records, desc=name, disable=args.no_progress):
            counts["images"] += 1
            try:
                measures, problems = quality.assess(ink_map(Path(root) / record.path))
            except BlankImageError:
                counts["blank"] += 1
                continue
            except ImageError:
                counts["unreadable"] += 1
                continue
            for key in worst:
                worst[key] = max(worst[key], getattr(measures, key))
            for key in smallest:
                smallest[key] = min(smallest[key], getattr(measures, key))
            tallest = max(tallest, measures.ink_height / max(measures.ink_width, 1))
            codes.update(p.code for p in problems)
            if any(p.refuse for p in problems):
                counts["refused"] += 1
                refused_examples.append(record.path)
            elif problems:
                counts["warned"] += 1
        totals.update(counts)
        report["datasets"][name] = {**counts, "codes": dict(codes), "max": worst, "min": smallest,
                                    "max_height_over_width": round(tallest, 3), "refused_examples": refused_examples[:20]}
        n = counts["images"]
        print(f"| {name} | {n} | {counts['refused']} ({counts['refused'] / n:.2%}) | {counts['warned']} "
              f"({counts['warned'] / n:.2%}) | {counts['blank']} | {worst['ink_fraction']:.3f} | "
              f"{worst['border_coverage']:.3f} | {worst['text_lines']} | {smallest['ink_width']}x{smallest['ink_height']} "
              f"| {tallest:.2f} | {worst['column_text_lines']} | {worst['pieces']} | {worst['small_mark_share']:.3f} |")
    n = totals["images"]
    report["total"] = dict(totals)
    print(f"| **all** | {n} | {totals['refused']} ({totals['refused'] / n:.2%}) | {totals['warned']} "
          f"({totals['warned'] / n:.2%}) | {totals['blank']} | | | | | | | | |")
    if args.out:
        Path(args.out).write_text(json.dumps(report, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
