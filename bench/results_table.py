"""Reproduce the README's results table from shipped weights (evaluation only, no training).

    .venv/bin/python bench/results_table.py [--model trained_model_parameters/siamese_resnet18.safetensors]
        [--cross-model trained_model_parameters/gpds_only.safetensors] [--data ../shared/datasets] [--out DIR]

Protocol: test writers of the writer-disjoint splits named in the model card (image_pairs/NAME/splits.csv);
thresholds from the model card (calibrated on validation writers); pairwise = genuine-genuine vs
genuine-skilled pairs of each writer; reference-based = each questioned signature's mean distance to K
genuine references divided by the references' own spread (the model card's `reference_score`).
Cross-dataset: a GPDS-only model on all 55 CEDAR writers at its own (GPDS-calibrated) threshold.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from sigml.evaluate import evaluate, write_report
from sigml.inference import Verifier

ROOT = Path(__file__).resolve().parents[1]


def row(name: str, block: dict, target: str) -> str:
    return (f"| {name} | {block['eer']:.2%} | {block['auc']:.4f} | {block['accuracy']:.2%} | {block['far']:.2%} | "
            f"{block['frr']:.2%} | {block['threshold']:.4f} | {block['n_genuine']}+{block['n_forged']} | {target} |")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default=str(ROOT / "trained_model_parameters/siamese_resnet18.safetensors"))
    p.add_argument("--cross-model", default=str(ROOT / "trained_model_parameters/gpds_only.safetensors"))
    p.add_argument("--data", default=str(ROOT / "../shared/datasets"))
    p.add_argument("--out", help="folder for the JSON reports and plots")
    args = p.parse_args()
    data = Path(args.data)
    out = Path(args.out) if args.out else None
    started = time.perf_counter()
    verifier = Verifier.from_files(args.model)
    lines = [
        f"model {verifier.model_version} ({args.model})",
        "| setting | EER | AUC | accuracy | FAR | FRR | threshold | n (genuine+forged) | target |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    trained_on = {s["name"] for s in verifier.card.data.get("sources", [])}
    for name, target_pw, target_rb in (("CEDAR", "EER <= 6%", "EER <= 2%"), ("GPDS", "", "EER <= 5%")):
        if name not in trained_on:
            continue
        rep = evaluate(verifier, data / name, dataset=name, writers="test", references=(5, 10), progress=False,
                       plots_dir=(out / f"{name}_test") if out else None)
        if out:
            write_report(rep, out / f"{name}_test.json")
        lines.append(row(f"{name} test writers ({rep['n_writers']}), pairwise", rep["pairwise"], target_pw))
        for k, b in rep.get("reference_based_by_k", {}).items():
            lines.append(row(f"{name} test writers, reference-based K={k}", b, target_rb if k == "10" else ""))
        lines.append(row(f"{name} test writers, random forgeries", rep["random_forgeries"], ""))
    cross = Path(args.cross_model)
    if cross.is_file():
        cv = Verifier.from_files(cross)
        rep = evaluate(cv, data / "CEDAR", dataset="CEDAR", writers="all", references=(5, 10), progress=False,
                       plots_dir=(out / "cross_gpds_to_cedar") if out else None)
        if out:
            write_report(rep, out / "cross_gpds_to_cedar.json")
        lines.append(row(f"GPDS-only model ({cv.model_version}) on all CEDAR writers, pairwise", rep["pairwise"],
                         "accuracy > 80.21%, EER <= 12%"))
        for k, b in rep.get("reference_based_by_k", {}).items():
            lines.append(row(f"  same, reference-based K={k}", b, "accuracy > 80.21%, EER <= 12%" if k == "10" else ""))
        lines.append(row("  same, random forgeries", rep["random_forgeries"], ""))
    else:
        lines.append(f"(no cross-dataset model at {cross}: skipped)")
    lines.append(f"evaluated in {time.perf_counter() - started:.0f} s")
    print("\n".join(lines))
    if out:
        (out / "table.md").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
