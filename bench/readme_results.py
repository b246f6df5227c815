"""Write (or check) the generated tables of README.md and docs/results.md from the committed result JSONs.

    .venv/bin/python bench/readme_results.py            # rewrite every block between its markers
    .venv/bin/python bench/readme_results.py --check    # exit 1 if a table differs from its JSON

Each block sits between `<!-- NAME:begin (bench/readme_results.py) -->` and `<!-- NAME:end -->` and is rendered from
one or more JSON files under `docs/results/` alone (`BLOCKS` below says which): the README's headline table and
docs/results.md's full benchmark, decision, threshold-rate and leave-one-dataset-out tables. The JSONs are what
`python -m sigml benchmark --out ...` wrote (the commands are in docs/results.md), so neither page holds a figure
the benchmark did not print. `backend/tests/bench/test_readme_results.py` fails when a page and its JSON differ.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import sys
from pathlib import Path
from typing import Any, Callable, NamedTuple

from sigml.benchmark import automation, decision_table, markdown_table, percent, with_interval

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "docs" / "results"
TOOL = "bench/readme_results.py"


def markers(name: str) -> tuple[str, str]:
    return f"<!-- {name}:begin ({TOOL}) -->", f"<!-- {name}:end -->"


BEGIN, END = markers("results-table")
DECISION_BEGIN, DECISION_END = markers("decision-table")


def _load(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text())


def automation_cells(decisions: dict[str, Any]) -> list[str]:
    """Genuine decided genuine with K references / with one; skilled forgeries decided genuine and genuine decided
    forged with K references (`sigml.benchmark.automation`, computed from the JSON's decisions)."""
    share = automation(decisions)
    refs, one = share["references"], share["one_reference"]
    return [f"{percent(refs['genuine_decided_genuine'])} / {percent(one['genuine_decided_genuine'])}",
            f"{percent(refs['forgery_decided_genuine'])} / {percent(refs['genuine_decided_forged'])}"]


def headline_table(result: dict[str, Any]) -> str:
    """The README's headline table: per dataset and macro, the reference-based EER at the headline K, the pairwise
    EER (both with their writer-bootstrap intervals), how many genuine signatures the three-way decision settles
    (with K references and with one) beside its two wrong decisions, and the skilled forgeries the pairwise
    threshold accepts."""
    level = result["protocol"]["level"]
    header = ["dataset", "test writers", "K", f"reference EER [{level:.0%} CI]", f"pairwise EER [{level:.0%} CI]",
              "genuine decided genuine (K refs / 1 ref)", "wrong decisions, K refs (forgery → genuine / genuine → forged)",
              "skilled forgeries accepted"]
    lines = ["| " + " | ".join(header) + " |", "| --- |" + " ---: |" * (len(header) - 1)]
    for name, d in result["datasets"].items():
        h = d["headline"]
        lines.append("| " + " | ".join([
            name, str(d["n_writers"]), str(d["headline_k"]), with_interval(h["eer"], h["eer_ci"]),
            with_interval(d["pairwise"]["eer"], d["pairwise"]["eer_ci"]), *automation_cells(d["decisions"]),
            percent(d["skilled_accepted"])]) + " |")
    m = result["macro"]
    ks = m["headline"]["k"]
    main_k = max(ks.values())
    others = ", ".join(f"{name} {k}" for name, k in ks.items() if k != main_k)
    n = len(m["datasets"])
    lines.append("| " + " | ".join([
        f"**macro ({n} dataset{'s' if n != 1 else ''})**", str(m["n_writers"]),
        f"{main_k} ({others})" if others else str(main_k),
        f"**{with_interval(m['headline']['eer'], m['headline']['eer_ci'])}**",
        with_interval(m["pairwise"]["eer"], m["pairwise"]["eer_ci"]), *automation_cells(m["decisions"]),
        percent(m["skilled_accepted"])]) + " |")
    p = result["protocol"]
    note = (f"Model {result['model_version']}, {p['writers']} writers of each dataset (never seen in training or "
            f"calibration). Reference EER: each questioned signature scored against K of the writer's genuine "
            f"signatures as the API's profile verify scores it; pairwise: single pairs. Decisions: the three-way answer at "
            f"the model card's bands (fitted on validation writers); a genuine signature not decided genuine is left "
            f"inconclusive for a specialist or, wrongly, decided forged. Skilled forgeries accepted: "
            f"pairs, at the model card's pairwise threshold ({p['pairwise_threshold']:.4f}). Intervals: "
            f"{level:.0%} percentile, {p['n_boot']} resamples of the writers; macro: unweighted mean over datasets.")
    return "\n".join(lines) + "\n\n" + note + "\n"


def _bench_module(name: str):
    spec = importlib.util.spec_from_file_location(name, ROOT / "bench" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def rates_table(result: dict[str, Any]) -> str:
    """bench/threshold_rates.py's FAR / FRR table (one set of thresholds on every dataset)."""
    return _bench_module("threshold_rates").rates_table(result)


class Row(NamedTuple):
    label: str
    json: str  # relative to docs/results/
    dataset: str


def comparison_table(rows: list[Row], *, source: bool = True) -> str:
    """Several models on one dataset's writers, a row each, from the benchmark JSONs the rows name."""
    header = ["model (its own thresholds)", "writers", "pairwise EER [95% CI]", "reference EER K=10 [95% CI]", "K=5",
              "AUC (K=10)", "FAR / FRR at K=10", "skilled forgeries accepted (pairwise)"] + (["source"] if source else [])
    lines = ["| " + " | ".join(header) + " |", "|" + " --- |" * len(header)]
    for row in rows:
        d = _load(RESULTS / row.json)["datasets"][row.dataset]
        k10, k5 = d["reference_based_by_k"]["10"], d["reference_based_by_k"]["5"]
        cells = [row.label, str(d["n_writers"]), with_interval(d["pairwise"]["eer"], d["pairwise"]["eer_ci"]),
                 with_interval(k10["eer"], k10["eer_ci"]) if "eer_ci" in k10 else percent(k10["eer"]),
                 percent(k5["eer"]), f"{k10['auc']:.3f}", f"{percent(k10['far'])} / {percent(k10['frr'])}",
                 percent(d["skilled_accepted"])]
        if source:
            cells.append(f"`{row.json}`")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


FINETUNE_ROWS = [
    Row("left-out model, no fine-tuning", "lodo_ms/without_SigComp2011-Dutch_on_SigComp2011-Dutch_test.json",
        "SigComp2011-Dutch"),
    Row("left-out model fine-tuned on Dutch", "lodo_ms/finetuned_SigComp2011-Dutch_on_SigComp2011-Dutch_test.json",
        "SigComp2011-Dutch"),
    Row("Dutch alone (30 training writers)", "lodo_ms/only_SigComp2011-Dutch_on_SigComp2011-Dutch_test.json",
        "SigComp2011-Dutch"),
    Row("all6 recipe, 800 steps: left out", "lodo/without_SigComp2011-Dutch_on_SigComp2011-Dutch_test.json",
        "SigComp2011-Dutch"),
    Row("all6 recipe, 800 steps: fine-tuned", "lodo/finetuned_SigComp2011-Dutch_on_SigComp2011-Dutch_test.json",
        "SigComp2011-Dutch"),
    Row("all6 recipe: Dutch alone", "lodo/only_SigComp2011-Dutch_on_SigComp2011-Dutch_test.json",
        "SigComp2011-Dutch"),
    Row("(shipped model, Dutch's training writers among its six datasets)", "benchmark.json", "SigComp2011-Dutch"),
]
CEDAR_ROWS = [
    Row("trained without CEDAR, all 55 writers", "lodo/without_CEDAR_on_all_CEDAR.json", "CEDAR"),
    Row("(shipped model, CEDAR's 35 training writers seen; its 10 test writers)", "benchmark.json", "CEDAR"),
]


COPY_KINDS = {"jpeg_q60": "JPEG at quality 60", "rescaled_0.7": "rescaled to 70%",
              "rescaled_1.5_jpeg_q85": "rescaled to 150% and JPEG at 85",
              "rescanned": "second scan (1.5° rotation, blur, contrast, noise)"}


def copies_table(report: dict[str, Any]) -> str:
    """bench/copy_threshold.py's report: the share of each kind of near copy the card's two thresholds catch."""
    lines = ["| near copy | caught |", "| --- | ---: |"]
    lines += [f"| {COPY_KINDS.get(kind, kind)} | {value:.0%} |" for kind, value in report["caught_by_variant"].items()]
    n_pairs = sum(d["genuine_pairs"] for d in report["datasets"].values())
    note = (f"Model {report['model_version']}; {report['copies_per_dataset']} images per dataset made into each kind of "
            f"copy; thresholds embedding {report['copy_threshold']:.3f}, pixels {report['copy_pixel_threshold']:.3f}; "
            f"{report['genuine_flagged']} of {n_pairs:,} genuine pairs flagged.")
    return "\n".join(lines) + "\n\n" + note + "\n"


def quality_gate_table(report: dict[str, Any]) -> str:
    """bench/quality_gate.py's report: what the input quality gate refused and warned about on real signatures."""
    extra = "max_pieces" in report["limits"]  # the column, pieces and printed-text measures (reports since then)
    lines = ["| dataset | images | refused | warned | blank (no ink) | max ink fraction | max border coverage | "
             "max text lines | smallest ink width x height | max height / width |"
             + (" max lines in a quarter | max pieces | max small-mark share |" if extra else ""),
             "| --- |" + " ---: |" * (12 if extra else 9)]
    for name, d in report["datasets"].items():
        n, worst = d["images"], d["max"]
        smallest = d.get("min") or {}
        size = f"{smallest['ink_width']}x{smallest['ink_height']}" if smallest else "–"
        tallest = f"{d['max_height_over_width']:.2f}" if "max_height_over_width" in d else "–"
        lines.append(f"| {name} | {n:,} | {d.get('refused', 0)} ({d.get('refused', 0) / n:.2%}) | {d.get('warned', 0)} "
                     f"({d.get('warned', 0) / n:.2%}) | {d.get('blank', 0)} | {worst['ink_fraction']:.3f} | "
                     f"{worst['border_coverage']:.3f} | {worst['text_lines']} | {size} | {tallest} |"
                     + (f" {worst['column_text_lines']} | {worst['pieces']} | {worst['small_mark_share']:.3f} |"
                        if extra else ""))
    t, limits = report["total"], report["limits"]
    minimum = (f"limit {limits['min_ink_width']}x{limits['min_ink_height']}" if "min_ink_width" in limits else "")
    rotated = f"warning above {limits['rotated_aspect']}" if "rotated_aspect" in limits else ""
    lines.append(f"| **all** | {t['images']:,} | {t.get('refused', 0)} ({t.get('refused', 0) / t['images']:.2%}) | "
                 f"{t.get('warned', 0)} ({t.get('warned', 0) / t['images']:.2%}) | {t.get('blank', 0)} | "
                 f"limit {limits['max_ink_fraction']} | limit {limits['max_border_coverage']} | "
                 f"limit {limits['max_text_lines']} | {minimum} | {rotated} |"
                 + (f" limit {limits['max_column_text_lines']} | limit {limits['max_pieces']} | "
                    f"limit {limits['max_small_mark_share']} |" if extra else ""))
    every = report.get("every", 1)
    note = "" if every == 1 else f"\nOne image in {every} of each dataset (`--every {every}`).\n"
    return "\n".join(lines) + "\n" + note


class Block(NamedTuple):
    page: str  # relative to the repository root
    name: str  # the markers' name
    render: Callable[[], str]


BLOCKS = [
    Block("README.md", "results-table", lambda: headline_table(_load(RESULTS / "benchmark.json"))),
    Block("docs/results.md", "benchmark-table", lambda: markdown_table(_load(RESULTS / "benchmark.json"))),
    Block("docs/results.md", "decision-table", lambda: decision_table(_load(RESULTS / "benchmark.json"))),
    Block("docs/results.md", "quality-gate-table", lambda: quality_gate_table(_load(RESULTS / "quality_gate.json"))),
    Block("docs/results.md", "copies-table", lambda: copies_table(_load(RESULTS / "copy_detection.json"))),
    Block("docs/results.md", "threshold-rates", lambda: rates_table(_load(RESULTS / "benchmark.json"))),
    Block("docs/results.md", "shipped-before-table",
          lambda: markdown_table(_load(RESULTS / "benchmark_shipped_before.json"))),
    Block("docs/results.md", "shipped-before-rates", lambda: rates_table(_load(RESULTS / "benchmark_shipped_before.json"))),
    Block("docs/results.md", "lodo-dutch-table",
          lambda: markdown_table(_load(RESULTS / "lodo_ms/without_SigComp2011-Dutch_on_all_SigComp2011-Dutch.json"))),
    Block("docs/results.md", "finetune-table", lambda: comparison_table(FINETUNE_ROWS)),
    Block("docs/results.md", "lodo-cedar-table", lambda: comparison_table(CEDAR_ROWS)),
]


def render(benchmark_json: Path) -> str:
    """The README's headline table of a benchmark JSON."""
    return headline_table(_load(benchmark_json))


def render_decisions(benchmark_json: Path) -> str:
    return decision_table(_load(benchmark_json))


def replace_block(text: str, table: str, begin: str = BEGIN, end: str = END) -> str:
    """`text` with the block between the markers replaced by `table` (the markers stay)."""
    head, sep, rest = text.partition(begin)
    _, sep2, tail = rest.partition(end)
    if not sep or not sep2:
        raise ValueError(f"the page lacks the markers {begin} ... {end}")
    return f"{head}{begin}\n{table.rstrip()}\n{end}{tail}"


def stale_blocks(root: Path = ROOT, blocks: list[Block] = BLOCKS) -> list[str]:
    """`page: name` of every block whose text differs from what its JSON renders (empty when all match)."""
    stale = []
    for block in blocks:
        text = (root / block.page).read_text()
        if replace_block(text, block.render(), *markers(block.name)) != text:
            stale.append(f"{block.page}: {block.name}")
    return stale


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--check", action="store_true", help="only compare; exit 1 when a page is stale")
    args = p.parse_args(argv)
    if args.check:
        stale = stale_blocks()
        for line in stale:
            print(f"{line}: differs from its JSON: run {TOOL}", file=sys.stderr)
        if not stale:
            print(f"{len(BLOCKS)} tables match their JSON")
        return 1 if stale else 0
    for block in BLOCKS:
        page = ROOT / block.page
        page.write_text(replace_block(page.read_text(), block.render(), *markers(block.name)))
        print(f"wrote {block.name} into {block.page}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
