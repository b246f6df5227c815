"""int8 static quantisation of a model's ONNX export: what it costs in EER and decisions, per dataset.

    .venv/bin/python bench/onnx_quantize.py [--model trained_model_parameters/siamese_resnet18.safetensors]
        [--data ../shared/datasets] [--calibration 600] [--method minmax|entropy|percentile] [--max-pairs 0]
        [--threads 2] [--out int8.onnx] [--json report.json] [--quick]

The model's card must name its ONNX export (`python -m sigml export`). ONNX Runtime's static quantisation
(`sigml.export.quantize_int8`: QDQ, int8 weights per channel and int8 activations) is calibrated on
`--calibration` images of the training writers (an equal share of each dataset, drawn with a fixed seed); then
every image of each dataset's test-writer pairs (image_pairs/NAME/pairs_test.csv) is embedded once by the fp32
export and once by the int8 model. Printed per dataset: pairwise EER fp32 / int8 and the change in points, the
share of pairs whose three-way decision (the card's pairwise band) is the same, the largest embedding difference,
and both models' time per image; then whether int8 may ship (no dataset's EER moves by more than 0.3 points and
the decisions agree on at least 99.5% of the pairs). `--quick`: a few images and pairs of each dataset, to check
that the script runs (its figures mean nothing).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "backend"))

from sigml import decision, metrics  # noqa: E402
from sigml.datasets import read_dataset  # noqa: E402
from sigml.embedders import OnnxEmbedder  # noqa: E402
from sigml.errors import ImageError  # noqa: E402
from sigml.export import quantize_int8  # noqa: E402
from sigml.modelcard import ModelCard, card_path_for  # noqa: E402
from sigml.pairs import read_pairs_csv  # noqa: E402
from sigml.preprocessing import preprocess_array  # noqa: E402
from sigml.splits import read_splits_csv, select  # noqa: E402

DATASETS = ("CEDAR", "GPDS", "BHSig260-Bengali", "BHSig260-Hindi", "SigComp2011-Dutch", "CNSig")
MAX_EER_CHANGE = 0.003  # 0.3 points
MIN_AGREEMENT = 0.995


def preprocess_all(paths: list[Path], card: ModelCard) -> tuple[np.ndarray, list[Path]]:
    images, kept = [], []
    for path in paths:
        try:
            images.append(preprocess_array(path, card.preprocessing))
            kept.append(path)
        except ImageError as exc:
            print(f"  skipping {path}: {exc}")
    h, w = card.preprocessing.canvas_height, card.preprocessing.canvas_width
    return (np.stack(images)[:, None] if images else np.zeros((0, 1, h, w), np.float32)), kept


def calibration_images(data: Path, datasets: list[str], card: ModelCard, n: int, seed: int) -> np.ndarray:
    """`n` preprocessed images of the training writers, an equal share of each dataset."""
    rng = np.random.default_rng(seed)
    per = max(1, n // len(datasets))
    paths = []
    for name in datasets:
        records = select(read_dataset(data / name, name=name), read_splits_csv(ROOT / "image_pairs" / name / "splits.csv"),
                         "train")
        picked = rng.choice(len(records), size=min(per, len(records)), replace=False)
        paths += [data / name / records[i].path for i in sorted(picked)]
    return preprocess_all(paths, card)[0]


def timed_embed(embedder: OnnxEmbedder, images: np.ndarray) -> tuple[np.ndarray, float]:
    started = time.perf_counter()
    emb = embedder.embed(images, batch_size=32)
    return emb, (time.perf_counter() - started) / max(1, len(images))


def compare(name: str, data: Path, card: ModelCard, fp32: OnnxEmbedder, int8: OnnxEmbedder, max_pairs: int,
            seed: int) -> dict:
    pairs = read_pairs_csv(ROOT / "image_pairs" / name / "pairs_test.csv")
    if max_pairs and len(pairs) > max_pairs:
        keep = np.random.default_rng(seed).choice(len(pairs), size=max_pairs, replace=False)
        pairs = [pairs[i] for i in sorted(keep)]
    paths = sorted({p for pair in pairs for p in (pair.path_a, pair.path_b)})
    images, kept = preprocess_all([data / name / p for p in paths], card)
    index = {str(path.relative_to(data / name).as_posix()): i for i, path in enumerate(kept)}
    pairs = [p for p in pairs if p.path_a in index and p.path_b in index]
    e32, t32 = timed_embed(fp32, images)
    e8, t8 = timed_embed(int8, images)
    a = np.array([index[p.path_a] for p in pairs])
    b = np.array([index[p.path_b] for p in pairs])
    labels = np.array([p.label for p in pairs])
    d32 = np.linalg.norm(e32[a] - e32[b], axis=1)
    d8 = np.linalg.norm(e8[a] - e8[b], axis=1)
    band = card.band("pairwise")
    agree = np.mean([decision.decide(x, band) == decision.decide(y, band) for x, y in zip(d32, d8)])
    eer32, eer8 = metrics.eer(d32, labels)[0], metrics.eer(d8, labels)[0]
    return {"dataset": name, "pairs": len(pairs), "images": len(kept), "eer_fp32": eer32, "eer_int8": eer8,
            "eer_change": eer8 - eer32, "decision_agreement": float(agree),
            "max_embedding_difference": float(np.abs(e32 - e8).max()), "ms_per_image_fp32": 1000 * t32,
            "ms_per_image_int8": 1000 * t8}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default=str(ROOT / "trained_model_parameters" / "siamese_resnet18.safetensors"))
    parser.add_argument("--data", default=str((ROOT / ".." / "shared" / "datasets").resolve()))
    parser.add_argument("--datasets", default=",".join(DATASETS), help="comma-separated dataset names")
    parser.add_argument("--calibration", type=int, default=600, help="training writers' images to calibrate on")
    parser.add_argument("--method", default="minmax", choices=["minmax", "entropy", "percentile"])
    parser.add_argument("--max-pairs", type=int, default=0, help="test pairs per dataset (0: all)")
    parser.add_argument("--threads", type=int, default=2, help="ONNX Runtime intra-op threads")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", help="keep the int8 model here (default: a temporary file)")
    parser.add_argument("--json", help="write the figures as JSON")
    parser.add_argument("--quick", action="store_true", help="a few images and pairs per dataset: checks the script runs")
    args = parser.parse_args(argv)
    if args.quick:
        args.calibration, args.max_pairs = min(args.calibration, 12), min(args.max_pairs or 20, 20)

    card_path = card_path_for(args.model)
    card = ModelCard.load(card_path)
    if not card.onnx:
        parser.error(f"{card_path} names no ONNX export: run `python -m sigml export --model {args.model}` first")
    fp32_path = card_path.parent / card.onnx["file"]
    data = Path(args.data)
    datasets = [n for n in args.datasets.split(",") if (data / n).is_dir() and (ROOT / "image_pairs" / n).is_dir()]
    if not datasets:
        parser.error(f"none of {args.datasets} found under {data}")
    out = Path(args.out) if args.out else Path(tempfile.mkdtemp(prefix="int8-")) / "int8.onnx"
    started = time.perf_counter()
    calibration = calibration_images(data, datasets, card, args.calibration, args.seed)
    quantize_int8(fp32_path, calibration, out, method=args.method)
    print(f"int8 model {out} ({out.stat().st_size / 1e6:.1f} MB, fp32 {fp32_path.stat().st_size / 1e6:.1f} MB), "
          f"calibrated ({args.method}) on {len(calibration)} training writers' images in "
          f"{time.perf_counter() - started:.0f} s")
    fp32, int8 = OnnxEmbedder(fp32_path, threads=args.threads), OnnxEmbedder(out, threads=args.threads)
    rows = [compare(name, data, card, fp32, int8, args.max_pairs, args.seed) for name in datasets]
    print(f"\n{'dataset':<20} {'pairs':>6} {'EER fp32':>9} {'EER int8':>9} {'change':>8} {'same decision':>14} "
          f"{'max |diff|':>10} {'ms/img fp32':>12} {'ms/img int8':>12}")
    for r in rows:
        print(f"{r['dataset']:<20} {r['pairs']:>6} {r['eer_fp32']:>9.2%} {r['eer_int8']:>9.2%} "
              f"{100 * r['eer_change']:>+7.2f}p {r['decision_agreement']:>14.2%} {r['max_embedding_difference']:>10.4f} "
              f"{r['ms_per_image_fp32']:>12.1f} {r['ms_per_image_int8']:>12.1f}")
    ships = all(abs(r["eer_change"]) <= MAX_EER_CHANGE and r["decision_agreement"] >= MIN_AGREEMENT for r in rows)
    print(f"\nint8 {'may ship' if ships else 'does not ship'}: every dataset's EER within "
          f"{100 * MAX_EER_CHANGE:.1f} points and decisions agreeing on >= {MIN_AGREEMENT:.1%} of pairs"
          + (" (--quick: too few pairs to decide)" if args.quick else ""))
    if args.json:
        Path(args.json).write_text(json.dumps({"model": card.version, "method": args.method,
                                               "calibration_images": len(calibration), "quick": args.quick,
                                               "ships": ships, "datasets": rows}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
