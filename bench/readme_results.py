"""Write (or check) the README's results table and docs/results.md's decision table from the committed benchmark JSON.

    .venv/bin/python bench/readme_results.py            # rewrite the blocks between the markers
    .venv/bin/python bench/readme_results.py --check    # exit 1 if a table differs from the JSON

The JSON is what `python -m sigml benchmark --out docs/results/benchmark.json ...` wrote for the shipped model
(the command is in docs/results.md); the tables are `sigml.benchmark.markdown_table` and `decision_table` of it,
so neither page holds a figure the benchmark did not print.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from sigml.benchmark import decision_table, markdown_table

ROOT = Path(__file__).resolve().parents[1]
BEGIN, END = "<!-- results-table:begin (bench/readme_results.py) -->", "<!-- results-table:end -->"
DECISION_BEGIN, DECISION_END = "<!-- decision-table:begin (bench/readme_results.py) -->", "<!-- decision-table:end -->"


def render(benchmark_json: Path) -> str:
    return markdown_table(json.loads(benchmark_json.read_text()))


def render_decisions(benchmark_json: Path) -> str:
    return decision_table(json.loads(benchmark_json.read_text()))


def replace_block(text: str, table: str, begin: str = BEGIN, end: str = END) -> str:
    """`text` with the block between the markers replaced by `table` (the markers stay)."""
    head, sep, rest = text.partition(begin)
    _, sep2, tail = rest.partition(end)
    if not sep or not sep2:
        raise ValueError(f"the page lacks the markers {begin} ... {end}")
    return f"{head}{begin}\n{table.rstrip()}\n{end}{tail}"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--json", default=str(ROOT / "docs/results/benchmark.json"))
    p.add_argument("--readme", default=str(ROOT / "README.md"))
    p.add_argument("--results", default=str(ROOT / "docs/results.md"))
    p.add_argument("--check", action="store_true", help="only compare; exit 1 when a page is stale")
    args = p.parse_args(argv)
    pages = [(Path(args.readme), render(Path(args.json)), BEGIN, END),
             (Path(args.results), render_decisions(Path(args.json)), DECISION_BEGIN, DECISION_END)]
    stale = 0
    for page, table, begin, end in pages:
        current = page.read_text()
        wanted = replace_block(current, table, begin, end)
        if args.check:
            if wanted != current:
                print(f"{page}: table differs from {args.json}: run bench/readme_results.py", file=sys.stderr)
                stale += 1
            else:
                print(f"{page}: table matches the benchmark JSON")
        else:
            page.write_text(wanted)
            print(f"wrote the table of {args.json} into {page}")
    return 1 if stale else 0


if __name__ == "__main__":
    sys.exit(main())
