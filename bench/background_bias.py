"""How well can trivial image statistics tell CEDAR's genuine scans from its forgeries?

A model can reach high scores on CEDAR by looking at the paper (genuine scans are grey, forgeries
near-white), at the ink darkness, or at where the signature sits in the frame, instead of the
handwriting. This prints the ROC AUC of single statistics (0.5 = no signal) on the raw images and after
`sigml.preprocessing` with each ink mode.

    .venv/bin/python bench/background_bias.py [--data ../shared/datasets/CEDAR] [--every 2]
"""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path

import numpy as np
from sklearn.metrics import roc_auc_score

from sigml.datasets import read_dataset
from sigml.preprocessing import DEFAULT_CONFIG, load_image, otsu_threshold, preprocess_array, to_grayscale


def auc(genuine: list[float], forged: list[float]) -> float:
    y = np.r_[np.ones(len(genuine)), np.zeros(len(forged))]
    a = roc_auc_score(y, np.r_[genuine, forged])
    return max(a, 1 - a)  # direction-free: how separable, not which way


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=str(Path(__file__).resolve().parents[1] / "../shared/datasets/CEDAR"))
    parser.add_argument("--every", type=int, default=2, help="use every N-th image (speed)")
    args = parser.parse_args()
    records = read_dataset(args.data, "auto")[:: args.every]
    root = Path(args.data)
    stats: dict[str, dict[str, list[float]]] = {}

    def add(name: str, label: str, value: float) -> None:
        stats.setdefault(name, {"genuine": [], "forged": []})[label].append(value)

    for r in records:
        gray = to_grayscale(load_image(root / r.path))
        t = otsu_threshold(gray)
        add("raw: mean pixel", r.label, float(gray.mean()))
        ink_mask = gray < t
        add("raw: paper level (pixels above Otsu)", r.label, float(np.median(gray[~ink_mask])))
        add("raw: ink level (pixels below Otsu)", r.label, float(np.median(gray[ink_mask])))
        # where and how big the signature sits in the frame (acquisition, not handwriting, for the position)
        rows, cols = np.flatnonzero(ink_mask.any(axis=1)), np.flatnonzero(ink_mask.any(axis=0))
        height, width = rows[-1] - rows[0] + 1, cols[-1] - cols[0] + 1
        add("raw: ink box centre row (position in the frame)", r.label, float(rows[0] + rows[-1]) / 2 / gray.shape[0])
        add("raw: ink box centre column", r.label, float(cols[0] + cols[-1]) / 2 / gray.shape[1])
        add("raw: ink box aspect (width / height)", r.label, float(width / height))
        for mode in ("gray", "normalized", "binary"):
            arr = preprocess_array(root / r.path, dataclasses.replace(DEFAULT_CONFIG, ink=mode))
            ink = arr[arr > 0]
            add(f"preprocessed ink={mode}: background (non-ink) max", r.label, float(arr[arr == 0].max()) if (arr == 0).any() else 0.0)
            add(f"preprocessed ink={mode}: mean ink value", r.label, float(ink.mean()))
            add(f"preprocessed ink={mode}: mean pixel", r.label, float(arr.mean()))
    n_g = len(stats["raw: mean pixel"]["genuine"])
    n_f = len(stats["raw: mean pixel"]["forged"])
    print(f"CEDAR images: {n_g} genuine, {n_f} forged (every {args.every}th of {args.data})")
    print(f"{'statistic':55s} {'ROC AUC':>8s}")
    for name, values in stats.items():
        if len(set(values["genuine"] + values["forged"])) == 1:
            print(f"{name:55s} {'0.500':>8s}  (constant: identical for all images)")
        else:
            print(f"{name:55s} {auc(values['genuine'], values['forged']):8.3f}")


if __name__ == "__main__":
    main()
