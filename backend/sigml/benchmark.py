"""One model on every dataset's test writers: per-dataset figures, their macro-average, one table.

Per dataset, every image of the chosen writers is preprocessed and embedded once (`evaluate.embed_dataset`), then:
- `pairwise`: every genuine-genuine pair of a writer vs every genuine-skilled-forgery pair of that writer
  (`protocols.pairwise`), accuracy/FAR/FRR at the card's pairwise threshold; `skilled_accepted` is that FAR
  (the share of skilled-forgery pairs called genuine).
- `reference_based_by_k`: K genuine references per writer, every other genuine signature and every skilled
  forgery of the writer scored against them as the API serves it (`evaluate.served_reference_based`: the
  card's reference score and threshold). A K is skipped, with a note, when no writer has more than K genuine
  signatures (CNSig has 10 per writer: K=5 only). `headline` is the block of the largest K evaluated.
- `random_forgeries`: genuine vs other writers' genuine signatures, at the pairwise threshold (no interval).
Every EER carries a percentile interval from resampling the dataset's *writers* (`metrics.writer_bootstrap`).

`macro` is the unweighted mean over datasets (each dataset counts once, whatever its number of writers). The
intervals of the macro pairwise and headline EERs come from a stratified bootstrap: draw b resamples the writers
of every dataset independently (each dataset's own draw b, see `dataset_seed`) and averages their EERs.
Thresholds are never fitted on the writers evaluated: they are the model card's (its validation writers).
`markdown_table` renders the table from the result dict alone, so a committed JSON regenerates it.
"""

from __future__ import annotations

import logging
import time
import zlib
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
from tqdm.auto import tqdm

from . import decision, metrics, protocols
from .datasets import SignatureRecord
from .errors import DatasetError
from .evaluate import embed_dataset, plot_protocol, resolve_split_file, served_reference_based
from .inference import Verifier
from .modelcard import ModelCard

log = logging.getLogger(__name__)

BENCHMARK_WRITERS = ("test", "validation", "all")  # validation: for choosing between models (ship rule)
RATE_KEYS = ("eer", "auc", "accuracy", "far", "frr")  # the figures a macro-average is taken of
RANDOM_FORGERIES_PER_WRITER = 50


def benchmark_split_file(card_data: dict[str, Any], dataset: str, writers: str, splits_dir: str | Path) -> Path | None:
    """The split file whose `writers` are evaluated: none for "all"; the model card's own split for a dataset the
    model was trained on (its test writers are the ones training never saw); else `<splits_dir>/<dataset>/splits.csv`."""
    if writers == "all":
        return None
    try:
        return resolve_split_file(card_data, dataset, None)
    except DatasetError:
        return Path(splits_dir) / dataset / "splits.csv"


def dataset_seed(seed: int, dataset: str) -> int:
    """The writer-bootstrap seed of one dataset, from the run's seed and the dataset's name: draws of different
    datasets are independent, and a dataset's interval does not depend on which others are benchmarked beside it."""
    return int(np.random.SeedSequence([seed, zlib.crc32(dataset.encode())]).generate_state(1)[0])


def scored_block(scores: protocols.Scored, threshold: float, *, n_boot: int, seed: int,
                 level: float) -> tuple[dict[str, Any], np.ndarray]:
    """`metrics.summary` at `threshold` plus the writer-bootstrap interval of the EER, and the per-draw EERs."""
    block = metrics.summary(scores.distances, scores.labels, threshold)
    boot = metrics.writer_bootstrap(scores.distances, scores.labels, scores.writers, n_boot=n_boot, seed=seed,
                                    level=level, return_draws=True)
    block.update(eer_ci=boot["ci"], n_writers=boot["n_writers"], n_boot=boot["n_boot"])
    return block, boot["draws"]


def score_dataset(card: ModelCard, emb: np.ndarray, records: Sequence[SignatureRecord], *, dataset: str,
                  references: Sequence[int], seed: int, n_boot: int, level: float = 0.95,
                  plots_dir: str | Path | None = None) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """The figures of one dataset from its embeddings (`emb[i]` is `records[i]`'s), and the per-draw EERs of
    each protocol ("pairwise", "headline", and each K as a string) for the stratified macro interval.
    `plots_dir`: also draw ROC/DET/histograms per protocol there (`pairwise.png`, `reference_k<K>.png`)."""
    boot_seed = dataset_seed(seed, dataset)
    pairwise_scores = protocols.pairwise(emb, records)
    pairwise, pairwise_draws = scored_block(pairwise_scores, card.threshold, n_boot=n_boot, seed=boot_seed, level=level)
    if plots_dir:
        plot_protocol(pairwise_scores, Path(plots_dir), "pairwise", card.threshold)
    result: dict[str, Any] = {
        "n_writers": len({r.writer for r in records}),
        "n_images": len(records),
        "pairwise": pairwise,
        "skilled_accepted": pairwise["far"],
    }
    draws = {"pairwise": pairwise_draws}
    notes: list[str] = []
    if result["n_writers"] > 1:  # random forgeries are other writers' genuine signatures
        random_pairs = protocols.pairwise(emb, records, skilled=False, random_per_writer=RANDOM_FORGERIES_PER_WRITER,
                                          seed=seed)
        result["random_forgeries"] = metrics.summary(random_pairs.distances, random_pairs.labels, card.threshold)
    by_k: dict[str, Any] = {}
    scores_by_k: dict[str, protocols.Scored] = {}
    for k in sorted(set(references)):
        try:
            reference_scores, score, threshold = served_reference_based(card, emb, records, k=k, seed=seed)
        except ValueError as exc:
            notes.append(f"reference-based K={k} skipped: {exc}")
            log.warning("%s: reference-based protocol with K=%d skipped: %s", dataset, k, exc)
            continue
        block, draws[str(k)] = scored_block(reference_scores, threshold, n_boot=n_boot, seed=boot_seed, level=level)
        if plots_dir:
            plot_protocol(reference_scores, Path(plots_dir), f"reference_k{k}", threshold)
        by_k[str(k)] = {**block, "k": k, "score": score}
        scores_by_k[str(k)] = reference_scores
    if not by_k:
        raise DatasetError(f"{dataset}: no writer has more than K={min(references)} genuine signatures; "
                           "pass a smaller K with --references")
    headline_k = max(int(k) for k in by_k)
    result.update(reference_based_by_k=by_k, headline_k=headline_k, headline=by_k[str(headline_k)], notes=notes)
    result["decisions"] = {  # how the card's three-way bands sort this dataset's genuine and forged scores
        "pairwise": decision.band_split(pairwise_scores.distances, pairwise_scores.labels, card.band("pairwise")),
        "headline": decision.band_split(scores_by_k[str(headline_k)].distances, scores_by_k[str(headline_k)].labels,
                                        card.band(card.reference_policy(headline_k).protocol)),
    }
    draws["headline"] = draws[str(headline_k)]
    result["automation"] = automation(result["decisions"])
    return result, draws


def automation(decisions: Mapping[str, Any]) -> dict[str, dict[str, float]]:
    """What the three-way decision leaves to the machine, from `decisions` (`decision.band_split` per protocol):
    with the headline K references ("references") and with one reference ("one_reference", the pairwise protocol),
    the share of genuine signatures decided genuine (decided without a specialist) beside the two wrong decisions,
    skilled forgeries decided genuine and genuine signatures decided forged."""
    return {
        name: {"genuine_decided_genuine": decisions[protocol]["genuine"]["genuine"],
               "forgery_decided_genuine": decisions[protocol]["forged"]["genuine"],
               "genuine_decided_forged": decisions[protocol]["genuine"]["forged"]}
        for name, protocol in (("references", "headline"), ("one_reference", "pairwise"))
    }


def stratified_interval(draws_by_dataset: Sequence[np.ndarray], level: float = 0.95) -> tuple[list[float], int]:
    """Interval of the macro EER from per-dataset bootstrap draws (aligned by draw, NaN = no EER in that draw):
    draw b's macro is the mean of every dataset's draw b; draws where a dataset had none are left out.
    Returns the interval and the number of draws it rests on."""
    stacked = np.vstack([np.asarray(d, dtype=np.float64) for d in draws_by_dataset])
    complete = ~np.isnan(stacked).any(axis=0)
    return metrics.percentile_interval(stacked[:, complete].mean(axis=0), level), int(complete.sum())


def macro_average(datasets: Mapping[str, dict[str, Any]], draws: Mapping[str, dict[str, np.ndarray]],
                  level: float = 0.95) -> dict[str, Any]:
    """Unweighted mean over datasets of the pairwise, headline and per-K figures (a K only when every dataset has
    it) and of `skilled_accepted`; stratified-bootstrap intervals for the pairwise and headline EERs."""
    names = list(datasets)

    def mean_of(blocks: list[dict[str, Any]]) -> dict[str, float]:
        return {key: float(np.mean([b[key] for b in blocks])) for key in RATE_KEYS}

    macro: dict[str, Any] = {"datasets": names, "n_writers": sum(d["n_writers"] for d in datasets.values()),
                             "n_images": sum(d["n_images"] for d in datasets.values())}
    for protocol in ("pairwise", "headline"):
        block = mean_of([datasets[n][protocol] for n in names])
        block["eer_ci"], block["n_boot"] = stratified_interval([draws[n][protocol] for n in names], level)
        macro[protocol] = block
    macro["headline"]["k"] = {n: datasets[n]["headline_k"] for n in names}
    common = set.intersection(*(set(datasets[n]["reference_based_by_k"]) for n in names))
    macro["reference_based_by_k"] = {
        k: mean_of([datasets[n]["reference_based_by_k"][k] for n in names]) for k in sorted(common, key=int)
    }
    macro["skilled_accepted"] = float(np.mean([datasets[n]["skilled_accepted"] for n in names]))
    if all("decisions" in datasets[n] for n in names):
        macro["decisions"] = {
            protocol: {truth: {d: float(np.mean([datasets[n]["decisions"][protocol][truth][d] for n in names]))
                               for d in decision.DECISIONS} for truth in ("genuine", "forged")}
            for protocol in ("pairwise", "headline")
        }
        macro["automation"] = automation(macro["decisions"])
    return macro


def protocol_description(card: ModelCard, *, writers: str, split_files: Mapping[str, str | None],
                         references: Sequence[int], seed: int, n_boot: int, level: float) -> dict[str, Any]:
    return {
        "writers": writers,
        "split_files": dict(split_files),
        "thresholds": "from the model card, calibrated on its validation writers; EER and AUC are threshold-free",
        "pairwise_threshold": card.threshold,
        "reference_threshold": card.threshold_for("reference_based"),
        "reference_score": card.reference_score,
        "band_fit": {protocol: band.get("fit", {"rates": "pooled"}) for protocol, band in card.decision_bands.items()},
        "references": sorted(set(references)),
        "seed": seed,
        "n_boot": n_boot,
        "level": level,
        "text": (
            f"{writers} writers of each dataset (split files above; a dataset the model was trained on uses the "
            "card's split). pairwise: genuine-genuine vs genuine-skilled-forgery pairs of each writer, at the card's "
            f"pairwise threshold; skilled_accepted = its FAR there. reference_based: K={sorted(set(references))} "
            "genuine references per writer drawn with the seed, the other genuine signatures and the skilled "
            "forgeries scored against them as the API serves them, at the card's reference threshold; headline = "
            f"the largest K a dataset allows. {level:.0%} intervals: {n_boot} resamples of each dataset's writers; "
            "macro = unweighted mean over datasets, its intervals from resampling the writers of every dataset "
            "independently in each draw."
        ),
    }


def benchmark(
    verifier: Verifier,
    datasets: Mapping[str, str | Path],
    *,
    writers: str = "test",
    splits_dir: str | Path = "image_pairs",
    references: Sequence[int] = (5, 10),
    seed: int = 0,
    n_boot: int = 1000,
    level: float = 0.95,
    workers: int = 0,
    progress: bool = True,
    split_files: Mapping[str, str | Path] | None = None,
    plots_dir: str | Path | None = None,
) -> dict[str, Any]:
    """The benchmark result (JSON-ready): per-dataset blocks under "datasets" (in the order given) and "macro".
    `datasets` maps a dataset name to its folder (any layout `read_dataset` detects). `split_files` maps some of
    those names to the split file whose test writers are evaluated instead of `benchmark_split_file`'s choice
    (e.g. a notebook's reduced split of a few test writers); only with writers="test". `plots_dir`: ROC/DET/histogram
    PNGs per dataset in `<plots_dir>/<NAME>/`."""
    if writers not in BENCHMARK_WRITERS:
        raise ValueError(f"writers must be one of {BENCHMARK_WRITERS}, got {writers!r}")
    if n_boot < 1:
        raise ValueError("n_boot must be at least 1")
    if not datasets:
        raise DatasetError("no dataset to benchmark")
    overrides = dict(split_files or {})
    if overrides and writers == "all":
        raise ValueError('split_files choose test writers: they cannot be combined with writers="all"')
    unknown = sorted(set(overrides) - set(datasets))
    if unknown:
        raise ValueError(f"split_files name datasets that are not benchmarked: {unknown}")
    card = verifier.card
    results: dict[str, dict[str, Any]] = {}
    draws: dict[str, dict[str, np.ndarray]] = {}
    split_files: dict[str, str | None] = {}
    for name, root in tqdm(datasets.items(), desc="benchmark", unit="dataset", disable=not progress):
        started = time.perf_counter()
        split = Path(overrides[name]) if name in overrides else benchmark_split_file(card.data, name, writers, splits_dir)
        records, emb, split_path = embed_dataset(verifier, root, dataset=name, writers=writers,
                                                 split_file=str(split) if split else None, workers=workers,
                                                 progress=progress)
        split_files[name] = str(split_path) if split_path else None
        scored, draws[name] = score_dataset(card, emb, records, dataset=name, references=references, seed=seed,
                                            n_boot=n_boot, level=level,
                                            plots_dir=Path(plots_dir) / name if plots_dir else None)
        results[name] = {"data": str(root), "split_file": split_files[name], **scored}
        log.info("%s: %d writers, %d images, scored in %.0f s", name, scored["n_writers"], scored["n_images"],
                 time.perf_counter() - started)
    return {
        "model": verifier.card.weights.get("file"),
        "model_version": verifier.model_version,
        "protocol": protocol_description(card, writers=writers, split_files=split_files, references=references,
                                         seed=seed, n_boot=n_boot, level=level),
        "datasets": results,
        "macro": macro_average(results, draws, level),
    }


# --- the table ---------------------------------------------------------------------------------------------------


CARD_KEEP = ("n_writers", "n_images", "split_file", "pairwise", "skilled_accepted", "reference_based_by_k",
             "random_forgeries", "headline_k", "decisions", "automation")


def update_card(weights: str | Path, result: dict[str, Any]) -> ModelCard:
    """Store a benchmark's figures in the model card next to `weights`: each dataset's under
    metrics["<writers>_<NAME>"] (e.g. "test_CNSig"; the shape `sigml evaluate --update-card` writes) and the
    macro-average under metrics["<writers>_macro"]; the interface's Model page lists them."""
    from .modelcard import card_path_for

    path = card_path_for(weights)
    card = ModelCard.load(path)
    writers = result["protocol"]["writers"]
    for name, figures in result["datasets"].items():
        kept = {key: figures[key] for key in CARD_KEEP if key in figures}
        card.metrics[f"{writers}_{name}"] = {"dataset": name, "writers": writers, **kept}
    card.metrics[f"{writers}_macro"] = {"datasets": result["macro"]["datasets"], "pairwise": result["macro"]["pairwise"],
                                        "headline": result["macro"]["headline"],
                                        "skilled_accepted": result["macro"]["skilled_accepted"],
                                        **{key: result["macro"][key] for key in ("decisions", "automation")
                                           if key in result["macro"]}}
    card.save(path)
    return card


def percent(value: float) -> str:
    return f"{value:.1%}"


def with_interval(value: float, interval: Sequence[float]) -> str:
    return f"{percent(value)} [{percent(interval[0])}, {percent(interval[1])}]"


def table_ks(result: dict[str, Any]) -> list[int]:
    """The K columns of the table: every K the protocol asked for."""
    return [int(k) for k in result["protocol"]["references"]]


def dataset_row(name: str, figures: dict[str, Any], ks: Sequence[int]) -> list[str]:
    by_k = figures["reference_based_by_k"]
    k_cells = []
    for k in ks:
        block = by_k.get(str(k))
        if block is None:
            k_cells.append("–")
        else:
            headline_cell = k == figures["headline_k"]
            k_cells.append(with_interval(block["eer"], block["eer_ci"]) if headline_cell else percent(block["eer"]))
    headline = figures["headline"]
    return [name, str(figures["n_writers"]), with_interval(figures["pairwise"]["eer"], figures["pairwise"]["eer_ci"]),
            *k_cells, f"{headline['auc']:.3f}", percent(headline["accuracy"]), percent(headline["far"]),
            percent(headline["frr"]), percent(figures["skilled_accepted"])]


def macro_row(result: dict[str, Any], ks: Sequence[int]) -> list[str]:
    """The macro row: each K column holds the mean of that K over datasets (when every dataset has it); the last K
    column holds the macro headline with its interval, marked † when some dataset's headline is a smaller K."""
    macro = result["macro"]
    k_cells = []
    for k in ks:
        if k == ks[-1]:
            mixed = any(headline_k != k for headline_k in macro["headline"]["k"].values())
            k_cells.append(with_interval(macro["headline"]["eer"], macro["headline"]["eer_ci"]) + (" †" if mixed else ""))
        elif str(k) in macro["reference_based_by_k"]:
            k_cells.append(percent(macro["reference_based_by_k"][str(k)]["eer"]))
        else:
            k_cells.append("–")
    headline = macro["headline"]
    n = len(macro['datasets'])
    return [f"**macro ({n} dataset{'s' if n != 1 else ''})**", str(macro["n_writers"]),
            with_interval(macro["pairwise"]["eer"], macro["pairwise"]["eer_ci"]), *k_cells,
            f"{headline['auc']:.3f}", percent(headline["accuracy"]), percent(headline["far"]), percent(headline["frr"]),
            percent(macro["skilled_accepted"])]


def markdown_table(result: dict[str, Any]) -> str:
    """The results table as Markdown, from a `benchmark` result dict alone (e.g. read back from its JSON):
    one row per dataset and a macro row, then the notes that say what each column measures."""
    ks = table_ks(result)
    level = result["protocol"]["level"]
    header = ["dataset", "writers", f"pairwise EER [{level:.0%} CI]", *(f"ref. EER K={k}" for k in ks),
              "AUC", "accuracy", "FAR", "FRR", "skilled forgeries accepted"]
    rows = [dataset_row(name, figures, ks) for name, figures in result["datasets"].items()] + [macro_row(result, ks)]
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join([" --- "] + [" ---: "] * (len(header) - 1)) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    smaller = [f"{name} (K={headline_k})" for name, headline_k in result["macro"]["headline"]["k"].items()
               if headline_k != ks[-1]]
    notes = [
        f"{result['protocol']['writers'].capitalize()} writers; model {result['model_version']}. Thresholds from the model "
        f"card (validation writers): pairwise {result['protocol']['pairwise_threshold']:.4f}, reference "
        f"{result['protocol']['reference_threshold']:.4f} ({result['protocol']['reference_score']} score).",
        "ref. EER K: reference-based EER with K genuine references per writer; the interval is on each dataset's "
        "headline K (the largest it allows). AUC, accuracy, FAR and FRR: the headline K, at the card's reference "
        "threshold. Skilled forgeries accepted: pairwise, at the card's pairwise threshold.",
        f"Intervals: {level:.0%} percentile, {result['protocol']['n_boot']} resamples of each dataset's writers; macro: "
        "unweighted mean over datasets, its intervals resample every dataset's writers in each draw.",
    ]
    if smaller:
        notes.append(f"† mean of each dataset's headline EER: K={ks[-1]}, except {', '.join(smaller)}.")
    return "\n".join(lines) + "\n\n" + "\n".join(notes) + "\n"


def decision_row(name: str, decisions: dict[str, Any]) -> list[str]:
    cells = [name]
    for protocol in ("pairwise", "headline"):
        genuine, forged = decisions[protocol]["genuine"], decisions[protocol]["forged"]
        cells += [percent(genuine["genuine"]), percent(genuine["inconclusive"]), percent(genuine["forged"]),
                  percent(forged["genuine"]), percent(forged["inconclusive"]), percent(forged["forged"])]
    return cells


def band_fit_text(fit: Mapping[str, Any] | None) -> str:
    """How a card's bands were fitted, in words (`decision.fit_band`'s `fit` record; none: the pooled fit)."""
    if not fit or fit.get("rates") == "pooled":
        return ("fitted on validation writers: at most 2% of their skilled forgeries decided genuine, at most 2% of "
                "their genuine signatures decided forged")
    return ("fitted on validation writers to hold on new ones: at most 2% of skilled forgeries decided genuine and "
            "at most 2% of genuine signatures decided forged, averaged over datasets, in "
            f"{fit.get('level', 0):.0%} of {fit.get('n_boot', 0)} resamples of the writers")


def decision_table(result: dict[str, Any]) -> str:
    """How the model card's three-way bands sort each dataset's genuine signatures and skilled forgeries, as
    Markdown (from a `benchmark` result dict alone); empty when the result has no decisions (older JSON)."""
    datasets = result["datasets"]
    if not all("decisions" in d for d in datasets.values()):
        return ""
    header = ["dataset"] + [f"{p}: {truth} → {d}" for p in ("pair", "ref.")
                            for truth in ("genuine", "forgery") for d in ("G", "?", "F")]
    rows = [decision_row(name, d["decisions"]) for name, d in datasets.items()]
    if "decisions" in result["macro"]:
        rows.append(decision_row("**macro**", result["macro"]["decisions"]))
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join([" --- "] + [" ---: "] * (len(header) - 1)) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    note = (f"{result['protocol']['writers'].capitalize()} writers; model {result['model_version']}. G = decided genuine, "
            "? = inconclusive (refer to a specialist), F = decided forged, at the model card's decision bands "
            f"({band_fit_text(result['protocol'].get('band_fit', {}).get('reference_based'))}). pair: one reference "
            "(pairwise protocol); ref.: the headline K references. A wrong answer is genuine → F or forgery → G.")
    return "\n".join(lines) + "\n\n" + note + "\n"
