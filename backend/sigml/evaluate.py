"""Writer-independent evaluation of a trained model: report JSON, ROC/DET plots, histograms.

Every image is preprocessed and embedded once; all pairs are scored from the embeddings.
Thresholds come from the model card (calibrated on validation writers), never from the data
being evaluated: the EER is threshold-free, accuracy/FAR/FRR are at the shipped threshold.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from . import metrics, protocols
from .datasets import SignatureRecord, read_dataset
from .embedding import preprocess_records
from .errors import DatasetError
from .inference import Verifier
from .modelcard import ModelCard, card_path_for
from .splits import read_splits_csv

log = logging.getLogger(__name__)

WRITER_CHOICES = ("all", "train", "validation", "test")


def resolve_split_file(card_data: dict[str, Any], dataset: str, split_file: str | None) -> Path:
    if split_file:
        return Path(split_file)
    for src in card_data.get("sources", []):
        if src.get("name") == dataset and src.get("split_file"):
            return Path(src["split_file"])
    raise DatasetError(
        f"no split file for dataset {dataset!r}: pass --split-file, or evaluate with --writers all "
        f"(the model card knows the splits of: {[s.get('name') for s in card_data.get('sources', [])]})"
    )


def select_writers(records: list[SignatureRecord], writers: str, split_path: Path | None) -> list[SignatureRecord]:
    if writers == "all":
        return records
    assignment = read_splits_csv(split_path)  # type: ignore[arg-type]
    chosen = [r for r in records if assignment.get(r.writer) == writers]
    if not chosen:
        raise DatasetError(f"no {writers} writers of this dataset in {split_path}")
    return chosen


def embed_dataset(
    verifier: Verifier,
    data_root: str | Path,
    *,
    layout: str = "auto",
    dataset: str | None = None,
    writers: str = "test",
    split_file: str | None = None,
    workers: int = 0,
    progress: bool = True,
) -> tuple[list[SignatureRecord], np.ndarray, Path | None]:
    """The readable records of the chosen writers, their embeddings (one row per record) and the split file
    used: what `evaluate` scores, for callers that score the pairs themselves (e.g. at several thresholds)."""
    data_root = Path(data_root)
    dataset = dataset or data_root.name
    records = read_dataset(data_root, layout, dataset)
    split_path = resolve_split_file(verifier.card.data, dataset, split_file) if writers != "all" else None
    records = select_writers(records, writers, split_path)
    images, records = preprocess_records(records, {dataset: data_root}, verifier.card.preprocessing, workers=workers, desc="preprocess", progress=progress)
    if not records:
        raise DatasetError(f"no readable signature images in {data_root}")
    emb = verifier.embed_tensors(images, progress=progress)
    return records, emb, split_path


def embed_card_sources(verifier: Verifier, *, writers: str = "validation", roots: dict[str, str] | None = None,
                       progress: bool = True) -> tuple[list[SignatureRecord], np.ndarray]:
    """The chosen writers of every data source the model card names (its split files), embedded: what calibration
    reads. `roots` overrides where a dataset lives (`{"CEDAR": "/data/CEDAR"}`)."""
    records: list[SignatureRecord] = []
    embeddings = []
    for source in verifier.card.data.get("sources") or []:
        name = source["name"]
        recs, emb, _ = embed_dataset(verifier, (roots or {}).get(name, source["root"]), layout=source.get("layout", "auto"),
                                     dataset=name, writers=writers, split_file=source.get("split_file"),
                                     progress=progress)
        records += recs
        embeddings.append(emb)
    return records, (np.concatenate(embeddings) if embeddings else np.zeros((0, 0), np.float32))


def served_reference_based(card: ModelCard, emb: np.ndarray, records: Sequence[SignatureRecord], *, k: int,
                           seed: int = 0) -> tuple[protocols.Scored, str, float]:
    """The reference-based protocol scored as the API serves it (`ModelCard.reference_policy(k)`), with the score's
    name ("normalized", "mean", or "pairwise" for K=1) and the threshold it is judged against."""
    policy = card.reference_policy(k)
    rb = protocols.reference_based(emb, records, k=k, seed=seed, score=policy.reference_score,
                                   spread_floor=policy.spread_floor)
    return rb, policy.score_method, card.threshold_for(policy.protocol)


def evaluate(
    verifier: Verifier,
    data_root: str | Path,
    *,
    layout: str = "auto",
    dataset: str | None = None,
    writers: str = "test",
    split_file: str | None = None,
    references: Sequence[int] = (10,),
    seed: int = 0,
    workers: int = 0,
    plots_dir: str | Path | None = None,
    progress: bool = True,
) -> dict[str, Any]:
    data_root = Path(data_root)
    dataset = dataset or data_root.name
    records, emb, split_path = embed_dataset(
        verifier, data_root, layout=layout, dataset=dataset, writers=writers, split_file=split_file, workers=workers, progress=progress,
    )

    report: dict[str, Any] = {
        "model": verifier.card.weights.get("file"),
        "model_version": verifier.model_version,
        "dataset": dataset,
        "data": str(data_root),
        "writers": writers,
        "split_file": str(split_path) if split_path else None,
        "n_writers": len({r.writer for r in records}),
        "n_images": len(records),
        "protocol": "thresholds from the model card (validation writers); EER/AUC threshold-free",
    }
    pw = protocols.pairwise(emb, records)
    report["pairwise"] = _block(pw, verifier.card.threshold)
    if len({r.writer for r in records}) > 1:  # random forgeries are other writers' genuine signatures
        rnd = protocols.pairwise(emb, records, skilled=False, random_per_writer=50, seed=seed)
        report["random_forgeries"] = _block(rnd, verifier.card.threshold)
    else:
        log.warning("random-forgery protocol skipped: it needs at least two writers")
    by_k: dict[str, Any] = {}
    for k in references:
        try:
            rb, score, threshold = served_reference_based(verifier.card, emb, records, k=k, seed=seed)
        except ValueError as exc:
            log.warning("reference-based protocol with K=%d skipped: %s", k, exc)
            continue
        by_k[str(k)] = {**_block(rb, threshold), "k": k, "score": score}
        if plots_dir:
            plot_protocol(rb, Path(plots_dir), f"reference_k{k}", threshold)
    if by_k:
        report["reference_based"] = by_k[str(max(int(k) for k in by_k))]
        report["reference_based_by_k"] = by_k
    if plots_dir:
        plot_protocol(pw, Path(plots_dir), "pairwise", verifier.card.threshold)
    report["worst_errors"] = _worst(pw, records, verifier.card.threshold)
    return report


def _block(scores: protocols.Scored, threshold: float) -> dict[str, Any]:
    s = metrics.summary(scores.distances, scores.labels, threshold)
    s["n_writers"] = len(set(scores.writers))
    return s


def _worst(scores: protocols.Scored, records: list[SignatureRecord], threshold: float, n: int = 5) -> dict[str, list]:
    d, y = scores.distances, scores.labels
    out: dict[str, list] = {"false_accepts": [], "false_rejects": []}
    fa = np.flatnonzero((y == 0) & (d <= threshold))
    fr = np.flatnonzero((y == 1) & (d > threshold))
    for key, idx in (("false_accepts", fa[np.argsort(d[fa])][:n]), ("false_rejects", fr[np.argsort(-d[fr])][:n])):
        for i in idx:
            a, b = records[int(scores.index_a[i])], records[int(scores.index_b[i])]
            out[key].append({"distance": float(d[i]), "a": a.path, "b": b.path, "writer": a.writer})
    return out


def plot_protocol(scores: protocols.Scored, folder: Path, name: str, threshold: float) -> None:
    """`folder/name.png`: ROC, DET and the genuine/forged score histograms with `threshold`."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    folder.mkdir(parents=True, exist_ok=True)
    c = metrics.curves(scores.distances, scores.labels)
    rate, _ = metrics.eer(scores.distances, scores.labels)
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.2))
    axes[0].plot(c["fpr"], c["tpr"], lw=2)
    axes[0].plot([0, 1], [0, 1], "k--", lw=0.8)
    axes[0].set(xlabel="false accept rate", ylabel="true accept rate", title=f"ROC ({name}), EER {rate:.1%}")
    from sklearn.metrics import DetCurveDisplay  # normal-deviate axes with readable ticks

    DetCurveDisplay(fpr=c["det_far"], fnr=c["det_frr"]).plot(ax=axes[1])
    axes[1].set(xlabel="false accept rate", ylabel="false reject rate", title=f"DET ({name})")
    d, y = scores.distances, scores.labels
    bins = np.linspace(0, max(float(d.max()), threshold) * 1.05, 50)
    axes[2].hist(d[y == 1], bins=bins, alpha=0.6, label="genuine", density=True)
    axes[2].hist(d[y == 0], bins=bins, alpha=0.6, label="forged", density=True)
    axes[2].axvline(threshold, color="k", ls="--", label=f"threshold {threshold:.3f}")
    what = "distance" if name == "pairwise" else "reference score"
    axes[2].set(xlabel=what, ylabel="density", title=f"{what} histogram")
    axes[2].legend()
    fig.tight_layout()
    fig.savefig(folder / f"{name}.png", dpi=90)
    plt.close(fig)


def write_report(report: dict[str, Any], out: str | Path) -> None:
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    Path(out).write_text(json.dumps(report, indent=2) + "\n")


def update_card(weights: str | Path, key: str, report: dict[str, Any]) -> None:
    """Store the headline figures of `report` in the model card under metrics[key]."""
    from .modelcard import ModelCard

    path = card_path_for(weights)
    card = ModelCard.load(path)
    keep = ("dataset", "writers", "n_writers", "n_images", "split_file", "pairwise", "reference_based_by_k", "random_forgeries")
    card.metrics[key] = {k: report[k] for k in keep if k in report}
    card.save(path)
