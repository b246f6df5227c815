"""Write (or check) the README's results table from the committed benchmark JSON.

    .venv/bin/python bench/readme_results.py            # rewrite the block between the markers in README.md
    .venv/bin/python bench/readme_results.py --check    # exit 1 if the README's table differs from the JSON

The JSON is what `python -m sigml benchmark --out docs/results/benchmark.json ...` wrote for the shipped model
(the command is in docs/results.md); the table is `sigml.benchmark.markdown_table` of it, so the README never
holds a figure the benchmark did not print.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from sigml.benchmark import markdown_table

ROOT = Path(__file__).resolve().parents[1]
BEGIN, END = "<!-- results-table:begin (bench/readme_results.py) -->", "<!-- results-table:end -->"


def render(benchmark_json: Path) -> str:
    return markdown_table(json.loads(benchmark_json.read_text()))


def replace_block(text: str, table: str) -> str:
    """`text` with the block between the markers replaced by `table` (the markers stay)."""
    head, sep, rest = text.partition(BEGIN)
    _, sep2, tail = rest.partition(END)
    if not sep or not sep2:
        raise ValueError(f"the README lacks the markers {BEGIN} ... {END}")
    return f"{head}{BEGIN}\n{table.rstrip()}\n{END}{tail}"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--json", default=str(ROOT / "docs/results/benchmark.json"))
    p.add_argument("--readme", default=str(ROOT / "README.md"))
    p.add_argument("--check", action="store_true", help="only compare; exit 1 when the README is stale")
    args = p.parse_args(argv)
    readme = Path(args.readme)
    current = readme.read_text()
    wanted = replace_block(current, render(Path(args.json)))
    if args.check:
        if wanted != current:
            print(f"{readme} results table differs from {args.json}: run bench/readme_results.py", file=sys.stderr)
            return 1
        print("README results table matches the benchmark JSON")
        return 0
    readme.write_text(wanted)
    print(f"wrote the results table of {args.json} into {readme}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
