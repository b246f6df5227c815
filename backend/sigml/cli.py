"""`python -m sigml {import,pairs,train,evaluate,benchmark,calibrate,verify,locate,export}`: the command-line face of the ML core.

Errors the user can fix (missing files, unreadable images, empty or unknown dataset folders)
print one clear line and exit with status 2; no traceback.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Sequence

from .errors import SigmlError

if TYPE_CHECKING:
    from .modelcard import ModelCard

log = logging.getLogger("sigml")


def _dataset_arg(value: str) -> tuple[str, str]:
    """`NAME=DIR` or `DIR` (name = folder name)."""
    if "=" in value:
        name, _, path = value.partition("=")
        return name, path
    return Path(value).name, value


def _ints(value: str) -> list[int]:
    return [int(v) for v in value.split(",") if v.strip()]


def build_parser() -> argparse.ArgumentParser:
    from .benchmark import BENCHMARK_WRITERS
    from .calibration import DEFAULT_REFERENCE_SCORE
    from .datasets import IMPORT_CHOICES, LAYOUT_CHOICES
    from .evaluate import WRITER_CHOICES
    from .protocols import REFERENCE_SCORES

    p = argparse.ArgumentParser(prog="python -m sigml", description="Offline signature verification: ML core")
    p.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = p.add_subparsers(dest="command", required=True)

    s = sub.add_parser("import", help="turn a raw download into the generic layout")
    s.add_argument("kind", choices=IMPORT_CHOICES)
    s.add_argument("src", help="folder of the raw download")
    s.add_argument("dst", help="output folder (generic layout: <writer>/genuine|forged/*)")

    s = sub.add_parser("pairs", help="writer-disjoint split + pair manifests (CSV)")
    s.add_argument("--data", required=True, help="dataset folder")
    s.add_argument("--layout", default="auto", choices=LAYOUT_CHOICES)
    s.add_argument("--dataset", help="dataset name (default: folder name)")
    s.add_argument("--out", required=True, help="output folder, e.g. image_pairs/CEDAR/")
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--validation-writers", type=float, default=0.15, help="count (>=1) or fraction")
    s.add_argument("--test-writers", type=float, default=0.2, help="count (>=1) or fraction")
    s.add_argument("--pairs-per-writer", type=int, default=50, help="cap per kind and writer (0: all)")

    s = sub.add_parser("train", help="train the Siamese ResNet-18 (resumable)")
    s.add_argument("--data", action="append", required=True, metavar="[NAME=]DIR", help="dataset folder; repeat for several")
    s.add_argument("--layout", default="auto", choices=LAYOUT_CHOICES)
    s.add_argument("--splits", default="image_pairs", help="folder of <NAME>/splits.csv (read if present, else made from the seed)")
    s.add_argument("--validation-writers", type=float, default=0.15)
    s.add_argument("--test-writers", type=float, default=0.2)
    s.add_argument("--out", required=True, help="output weights, e.g. trained_model_parameters/NAME.safetensors")
    s.add_argument("--workdir", help="checkpoints and history (default runs/<out name>/)")
    s.add_argument("--resume", action="store_true", help="continue from <workdir>/last.safetensors")
    s.add_argument("--cache", metavar="DIR", default="runs/cache",
                   help="preprocessed images on disk, keyed by the preprocessing config ('' to preprocess in memory only)")
    s.add_argument("--init", metavar="M.safetensors",
                   help="fine-tune: start from these weights (their card's architecture and preprocessing are kept)")
    s.add_argument("--config", help="JSON file with TrainConfig fields (flags below override it)")
    s.add_argument("--seed", type=int)
    s.add_argument("--epochs", type=int)
    s.add_argument("--steps-per-epoch", type=int)
    s.add_argument("--writers-per-batch", type=int)
    s.add_argument("--genuine-per-writer", type=int)
    s.add_argument("--forged-per-writer", type=int)
    s.add_argument("--lr", type=float)
    s.add_argument("--margin", type=float)
    s.add_argument("--hard-fraction", type=float)
    s.add_argument("--embedding-dim", type=int)
    s.add_argument("--threads", type=int)
    s.add_argument("--max-writers", type=int, help="cap writers per dataset (smoke runs)")
    s.add_argument("--no-bf16", action="store_true", help="train in float32")
    s.add_argument("--no-augment", action="store_true")
    s.add_argument("--no-progress", action="store_true")

    s = sub.add_parser("evaluate", help="EER / AUC / FAR / FRR report on a dataset")
    s.add_argument("--model", required=True, help="weights (.safetensors; the .json card beside it)")
    s.add_argument("--data", required=True)
    s.add_argument("--layout", default="auto", choices=LAYOUT_CHOICES)
    s.add_argument("--dataset", help="dataset name (default: folder name); picks the split from the model card")
    s.add_argument("--writers", default="test", choices=WRITER_CHOICES)
    s.add_argument("--split-file", help="split CSV (default: the one named in the model card)")
    s.add_argument("--references", type=_ints, default=[10], help="K for the reference-based protocol, e.g. 5,10")
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--workers", type=int, default=0, help="DataLoader workers for preprocessing")
    s.add_argument("--out", required=True, help="report.json")
    s.add_argument("--plots", help="folder for ROC/DET/histogram PNGs")
    s.add_argument("--update-card", metavar="KEY", help="also store the figures in the model card under metrics[KEY]")
    s.add_argument("--no-progress", action="store_true")

    s = sub.add_parser("benchmark", help="every dataset's test writers: per-dataset and macro-average figures, one table")
    s.add_argument("--model", required=True, help="weights (.safetensors; the .json card beside it)")
    s.add_argument("--data", action="append", type=_dataset_arg, required=True, metavar="NAME=DIR",
                   help="a dataset folder (any layout; NAME picks its split); repeat for several")
    s.add_argument("--writers", default="test", choices=BENCHMARK_WRITERS,
                   help="test: each dataset's test writers (the card's split for datasets the model was trained on, "
                        "else <--splits>/<NAME>/splits.csv); all: every writer")
    s.add_argument("--splits", default="image_pairs", help="folder of <NAME>/splits.csv for datasets the model card does not name")
    s.add_argument("--references", type=_ints, default=[5, 10],
                   help="K for the reference-based protocol; the largest K a dataset allows is its headline")
    s.add_argument("--boot", type=int, default=1000,
                   help="writer-bootstrap resamples per dataset and protocol (1000: about half a minute for six datasets)")
    s.add_argument("--seed", type=int, default=0, help="reference draw and bootstrap seed")
    s.add_argument("--workers", type=int, default=0, help="DataLoader workers for preprocessing")
    s.add_argument("--out", help="result JSON (per-dataset blocks, macro, protocol)")
    s.add_argument("--markdown", metavar="PATH", help="also write the tables as Markdown (sigml.benchmark.markdown_table, decision_table)")
    s.add_argument("--plots", metavar="DIR", help="ROC/DET/histogram PNGs per dataset in DIR/<NAME>/")
    s.add_argument("--update-card", action="store_true",
                   help="also store the figures in the model card (metrics[<writers>_<NAME>] and [<writers>_macro])")
    s.add_argument("--no-progress", action="store_true")

    s = sub.add_parser("calibrate", help="re-derive a model card's thresholds from its validation writers (no training)")
    s.add_argument("--model", required=True, help="weights (.safetensors; the .json card beside it is rewritten)")
    s.add_argument("--data", action="append", type=_dataset_arg, default=[], metavar="NAME=DIR",
                   help="where a dataset of the card lives, if not at the card's path (repeatable)")
    s.add_argument("--reference-score", default=DEFAULT_REFERENCE_SCORE, choices=REFERENCE_SCORES,
                   help="how a questioned signature is scored against K references")
    s.add_argument("--bands-only", action="store_true",
                   help="only (re)fit the three-way decision bands and rate curves around the card's own thresholds")
    s.add_argument("--no-progress", action="store_true")

    s = sub.add_parser("verify", help="the decision, score, cuts and rates for two signature images")
    s.add_argument("--model", default="trained_model_parameters/siamese_resnet18.safetensors")
    s.add_argument("reference")
    s.add_argument("questioned")
    s.add_argument("--json", action="store_true", help="print JSON")

    s = sub.add_parser("locate", help="boxes of the handwritten signatures on a page, cheque or form image")
    s.add_argument("image")
    s.add_argument("--locator", help="locator model JSON (default: trained_model_parameters/signature_locator.json)")
    s.add_argument("--threshold", type=float, help="confidence cut (default: the model's)")
    s.add_argument("--crops", metavar="DIR", help="also write each located signature as DIR/<image>_<n>.png")
    s.add_argument("--json", action="store_true", help="print JSON")

    s = sub.add_parser("export", help="write the embedding network as ONNX next to the weights, recorded in the model card")
    s.add_argument("--model", default="trained_model_parameters/siamese_resnet18.safetensors",
                   help="weights (.safetensors); writes <stem>.onnx beside them and adds it to the .json card")
    s.add_argument("--opset", type=int, default=17, help="ONNX opset")
    return p


def cmd_import(args: argparse.Namespace) -> int:
    from .datasets import import_raw

    n = import_raw(args.kind, args.src, args.dst)
    print(f"imported {n} images into {args.dst}")
    return 0


def cmd_pairs(args: argparse.Namespace) -> int:
    from .datasets import read_dataset
    from .pairs import make_pairs, write_pairs_csv
    from .splits import SPLITS, select, split_counts, split_writers, write_splits_csv

    name = args.dataset or Path(args.data).name
    records = read_dataset(args.data, args.layout, name)
    assignment = split_writers({r.writer for r in records}, validation=args.validation_writers, test=args.test_writers, seed=args.seed)
    out = Path(args.out)
    write_splits_csv(out / "splits.csv", assignment, name)
    print(f"{name}: {len(records)} images, writers per split {split_counts(assignment)} -> {out / 'splits.csv'}")
    for split in SPLITS:
        pairs = make_pairs(select(records, assignment, split), split, per_writer=args.pairs_per_writer or None, seed=args.seed)
        n = write_pairs_csv(out / f"pairs_{split}.csv", pairs)
        kinds = {k: sum(p.kind == k for p in pairs) for k in ("genuine", "skilled", "random")}
        print(f"  {split}: {n} pairs {kinds} -> {out / f'pairs_{split}.csv'}")
    return 0


def cmd_train(args: argparse.Namespace) -> int:
    import dataclasses

    from .distributed import init_from_env, shutdown
    from .train import DataSource, TrainConfig, train

    base: dict = json.loads(Path(args.config).read_text()) if args.config else {}
    overrides = {
        k: getattr(args, k) for k in (
            "seed", "epochs", "steps_per_epoch", "writers_per_batch", "genuine_per_writer", "forged_per_writer",
            "lr", "margin", "hard_fraction", "threads", "max_writers",
        ) if getattr(args, k) is not None
    }
    if args.no_bf16:
        overrides["bf16"] = False
    cfg = TrainConfig.from_dict(base, **overrides)  # the same parsing as notebooks and tests (model, augment, preprocessing)
    if args.embedding_dim:
        cfg = dataclasses.replace(cfg, model=dataclasses.replace(cfg.model, embedding_dim=args.embedding_dim))
    if args.no_augment:
        cfg = dataclasses.replace(cfg, augment=dataclasses.replace(cfg.augment, enabled=False))
    sources = []
    for value in args.data:
        name, path = _dataset_arg(value)
        sources.append(DataSource(name, path, args.layout, str(Path(args.splits) / name / "splits.csv"),
                                  args.validation_writers, args.test_writers))
    ctx = init_from_env()  # torchrun: one process per rank; only rank 0 logs and writes files
    if not ctx.is_main:
        logging.getLogger().setLevel(logging.WARNING)
    try:
        card = train(sources, args.out, cfg, workdir=args.workdir, resume=args.resume, progress=not args.no_progress, ctx=ctx,
                     init=args.init, cache_dir=args.cache or None)
    finally:
        shutdown(ctx)
    if not ctx.is_main:
        return 0
    val = card.metrics["validation"]["pairwise"]
    print(f"wrote {args.out}: validation pairwise EER {val['eer']:.4f}, AUC {val['auc']:.4f}, threshold {card.threshold:.4f}")
    return 0


def cmd_evaluate(args: argparse.Namespace) -> int:
    from .evaluate import evaluate, update_card, write_report
    from .inference import Verifier

    verifier = Verifier.from_files(args.model)
    report = evaluate(
        verifier, args.data, layout=args.layout, dataset=args.dataset, writers=args.writers, split_file=args.split_file,
        references=args.references, seed=args.seed, workers=args.workers, plots_dir=args.plots, progress=not args.no_progress,
    )
    write_report(report, args.out)
    if args.update_card:
        update_card(args.model, args.update_card, report)
    print(f"{report['dataset']} ({report['writers']} writers: {report['n_writers']}, images: {report['n_images']})")
    blocks = [("pairwise", report["pairwise"])] + [(f"reference K={k}", b) for k, b in report.get("reference_based_by_k", {}).items()]
    if "random_forgeries" in report:
        blocks.append(("random forgeries", report["random_forgeries"]))
    for name, b in blocks:
        print(f"  {name:18s} EER {b['eer']:.2%}  AUC {b['auc']:.4f}  at threshold {b['threshold']:.4f}: "
              f"accuracy {b['accuracy']:.2%}  FAR {b['far']:.2%}  FRR {b['frr']:.2%}  (n={b['n_genuine']}+{b['n_forged']})")
    print(f"report -> {args.out}")
    return 0


def cmd_benchmark(args: argparse.Namespace) -> int:
    from .benchmark import benchmark, decision_table, markdown_table, update_card
    from .evaluate import write_report
    from .inference import Verifier

    names = [name for name, _ in args.data]
    if len(set(names)) != len(names):
        raise SigmlError(f"a dataset name is given twice in --data: {names}")
    if args.boot < 1:
        raise SigmlError("--boot must be at least 1")
    verifier = Verifier.from_files(args.model)
    result = benchmark(
        verifier, dict(args.data), writers=args.writers, splits_dir=args.splits, references=args.references,
        seed=args.seed, n_boot=args.boot, workers=args.workers, progress=not args.no_progress, plots_dir=args.plots,
    )
    table = markdown_table(result)
    decisions = decision_table(result)
    table += f"\nThree-way decision:\n\n{decisions}" if decisions else ""
    print(table, end="")
    if args.out:
        write_report(result, args.out)
        print(f"result -> {args.out}")
    if args.markdown:
        Path(args.markdown).parent.mkdir(parents=True, exist_ok=True)
        Path(args.markdown).write_text(table)
        print(f"table -> {args.markdown}")
    if args.update_card:
        update_card(args.model, result)
        print(f"figures stored in the model card of {args.model}")
    return 0


def recalibrate(weights: str | Path, *, reference_score: str, roots: dict[str, str] | None = None,
                progress: bool = True, bands_only: bool = False) -> ModelCard:
    """`sigml calibrate`: re-derive a shipped model card's thresholds and calibration from its own validation writers.

    The weights (and so `model_version`) do not change; the card's data sources say which datasets,
    split files, K and seed; `roots` overrides where a dataset lives (`{"CEDAR": "/data/CEDAR"}`).
    `bands_only`: add (or refit) only the three-way decision bands and rate curves, around the card's own
    thresholds, which stay as they are (figures already measured at them stay true)."""
    from .calibration import card_calibration, decision_fields, protocol_text, validation_metrics
    from .errors import DatasetError
    from .evaluate import embed_card_sources
    from .inference import Verifier
    from .modelcard import PROTOCOLS, card_path_for

    verifier = Verifier.from_files(weights)
    card = verifier.card
    if not card.data.get("sources"):
        raise DatasetError(f"the model card of {weights} names no data sources to calibrate on")
    config = card.training.get("config") or {}
    k, seed = int(config.get("validation_references", 10)), int(config.get("seed", 0))
    records, embeddings = embed_card_sources(verifier, writers="validation", roots=roots, progress=progress)
    if bands_only:
        validation = validation_metrics(embeddings, records, k=k, seed=seed, reference_score=card.reference_score)
        thresholds = {protocol: card.threshold_for(protocol) for protocol in PROTOCOLS}
        fields = decision_fields(validation.pairwise_scores, validation.reference_scores, thresholds, seed=seed)
        card.decision_bands, card.rate_curves = fields["decision_bands"], fields["rate_curves"]
        card.save(card_path_for(weights))
        return card
    fields, val = card_calibration(embeddings, records, k=k, seed=seed, reference_score=reference_score)
    for key, value in fields.items():
        setattr(card, key, value)
    card.metrics["validation"] = val
    card.data["protocol"] = protocol_text(reference_score)
    card.save(card_path_for(weights))
    return card


def cmd_calibrate(args: argparse.Namespace) -> int:
    card = recalibrate(args.model, roots=dict(args.data), reference_score=args.reference_score,
                       progress=not args.no_progress, bands_only=args.bands_only)
    for protocol, band in card.decision_bands.items():
        split = band["validation"]
        print(f"{protocol}: genuine at or below {band['genuine_below']:.4f} (validation skilled forgeries there "
              f"{split['forged']['genuine']:.1%}), forged above {band['forged_above']:.4f} (validation genuine there "
              f"{split['genuine']['forged']:.1%}); inconclusive: {split['genuine']['inconclusive']:.1%} of genuine, "
              f"{split['forged']['inconclusive']:.1%} of skilled forgeries; fit: {band.get('fit', {'rates': 'pooled'})}")
    if args.bands_only:
        return 0
    val = card.metrics["validation"]
    ref = val.get("reference_based")
    print(f"{args.model}: validation pairwise EER {val['pairwise']['eer']:.2%} (threshold {card.threshold:.4f})"
          + (f"; reference-based K={ref['k']} ({card.reference_score}) EER {ref['eer']:.2%} "
             f"(threshold {card.threshold_for('reference_based'):.4f})" if ref else ""))
    return 0


def cmd_verify(args: argparse.Namespace) -> int:
    from .inference import Verifier

    verifier = Verifier.from_files(args.model)
    result = verifier.verify(args.reference, args.questioned)
    if args.json:
        print(json.dumps(result.to_dict()))
    else:
        print(verify_text(result))
    return 0


def verify_text(result) -> str:
    """`sigml verify`'s answer: the decision, the score (the pair's distance), the cuts it was judged by, the rates
    measured at that score, and the EER threshold only as a reference point."""
    rates = result.decision_rates or {}
    lines = [f"{result.decision.upper()}: score {result.distance:.4f} (pair distance; model {result.model_version})",
             (f"  cuts: genuine at or below {rates['genuine_below']:.4f}, forged above {rates['forged_above']:.4f}, "
              f"inconclusive between (EER threshold {result.threshold:.4f}, a reference point)")]
    if "forgeries_scoring_this_low" in rates:
        lines.append(f"  rates at this score, on {rates.get('measured_on', 'validation writers')}: "
                     f"{rates['forgeries_scoring_this_low']:.1%} of skilled forgeries score this low, "
                     f"{rates['genuine_scoring_this_high']:.1%} of genuine signatures score this high")
    if result.flags:
        lines.append(f"  flags: {', '.join(result.flags)}")
    return "\n".join(lines)


def cmd_locate(args: argparse.Namespace) -> int:
    from .locate import DEFAULT_MODEL, load_model, locate
    from .preprocessing import load_image

    image = load_image(args.image)
    found = locate(image, model=load_model(args.locator or DEFAULT_MODEL), threshold=args.threshold)
    if args.crops:
        Path(args.crops).mkdir(parents=True, exist_ok=True)
        for n, s in enumerate(found, 1):
            image.crop(s.box).save(Path(args.crops) / f"{Path(args.image).stem}_{n}.png")
    if args.json:
        print(json.dumps({"image": args.image, "size": list(image.size), "signatures": [s.to_dict() for s in found]}))
    elif not found:
        print(f"{args.image}: no signature found")
    else:
        for s in found:
            print(f"{args.image}: signature at {s.box} (left, top, right, bottom), confidence {s.confidence:.2f}")
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    from .export import export_onnx

    out = export_onnx(args.model, opset=args.opset)
    print(f"wrote {out} ({out.stat().st_size / 1e6:.1f} MB), agreeing with torch; recorded in {Path(args.model).with_suffix('.json')}")
    return 0


COMMANDS = {"import": cmd_import, "pairs": cmd_pairs, "train": cmd_train, "evaluate": cmd_evaluate, "benchmark": cmd_benchmark,
            "calibrate": cmd_calibrate, "verify": cmd_verify, "locate": cmd_locate,
            "export": cmd_export}


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        return COMMANDS[args.command](args)
    except SigmlError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except (FileNotFoundError, PermissionError, IsADirectoryError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
