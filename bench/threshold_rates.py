"""FAR and FRR of the shipped model's one set of thresholds on each dataset's test writers, from a benchmark JSON.

    .venv/bin/python bench/threshold_rates.py [docs/results/benchmark.json]

Serving never knows where an upload comes from, so one pairwise and one reference threshold (calibrated on the
pooled validation writers of every training dataset) serve all sources; this prints what each costs per dataset:
FAR = skilled forgeries accepted, FRR = genuine signatures rejected (pairwise: pairs; reference-based: questioned
signatures against K references).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def rates_table(result: dict) -> str:
    protocol = result["protocol"]
    ks = sorted({int(k) for d in result["datasets"].values() for k in d["reference_based_by_k"]})
    header = ["dataset", f"pairwise FAR / FRR (thr {protocol['pairwise_threshold']:.3f})",
              *(f"K={k} FAR / FRR (thr {protocol['reference_threshold']:.3f})" for k in ks)]
    lines = ["| " + " | ".join(header) + " |", "|" + " --- |" * len(header)]
    for name, d in result["datasets"].items():
        cells = [name, f"{d['pairwise']['far']:.1%} / {d['pairwise']['frr']:.1%}"]
        for k in ks:
            b = d["reference_based_by_k"].get(str(k))
            cells.append(f"{b['far']:.1%} / {b['frr']:.1%}" if b else "–")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def main(argv: list[str]) -> int:
    path = Path(argv[0]) if argv else ROOT / "docs" / "results" / "benchmark.json"
    result = json.loads(path.read_text())
    print(f"{path} (model {result['model_version']}, {result['protocol']['writers']} writers)")
    print(rates_table(result), end="")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
