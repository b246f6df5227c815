"""Training of the Siamese ResNet-18 with a batch-wise contrastive loss and online hard-pair mining.

Each step samples P training writers and K genuine + F skilled-forgery images of each; all useful
pairs of the batch enter the loss (genuine-genuine positives; genuine-skilled and genuine vs other
writers' genuine negatives). Validation EER on validation writers after every epoch picks the best
checkpoint (of the moving average of the weights when `ema_decay` > 0); the final weights are written as
safetensors with a model card whose thresholds, decision bands and Platt fits come from the validation
writers only.

`train` is the one entry: it prepares the data and a `Learner`, then for every epoch `run_epoch` (one pass of
optimisation steps) and `record_epoch` (validation, history, best and last checkpoints), then `finalize` (the
shipped weights and their model card). `<workdir>/last.*` holds a `RunState`, so `resume=True` continues a run.
"""

from __future__ import annotations

import json
import logging
import math
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, NamedTuple, Sequence

import numpy as np
import torch
from tqdm.auto import tqdm

from . import calibration
from .augment import AugmentConfig, SignatureAugment
from .checkpoints import load_training_state, load_weights, save_training_state, save_weights
from .datasets import SignatureRecord, read_dataset
from .distributed import DistContext, barrier, init_from_env, wrap, writer_share
from .cache import cached_preprocess
from .embedding import as_float, embed_tensors, preprocess_records, to_uint8, use_bf16
from .errors import DatasetError
from .losses import (
    CosineWriterClassifier,
    batch_contrastive_loss,
    batch_multi_similarity_loss,
    batch_triplet_loss,
    writer_classification_loss,
)
from .model import ModelConfig, SiameseResNet18
from .modelcard import ModelCard, card_path_for, file_sha256, git_commit, now_iso
from .preprocessing import PreprocessConfig
from .splits import read_splits_csv, split_counts, split_writers, write_splits_csv

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DataSource:
    """One dataset folder and its writer-disjoint split (CSV; made from the seed if absent)."""

    name: str
    root: str
    layout: str = "auto"
    split_file: str | None = None
    validation: float = 0.15
    test: float = 0.2


LOSSES = ("contrastive", "multi_similarity")


@dataclass(frozen=True)
class TrainConfig:
    seed: int = 0
    epochs: int = 20
    steps_per_epoch: int = 100
    writers_per_batch: int = 8
    genuine_per_writer: int = 4
    forged_per_writer: int = 2
    lr: float = 1e-3
    weight_decay: float = 1e-4
    warmup_steps: int = 100
    margin: float = 1.0
    hard_fraction: float = 0.5
    skilled_weight: float = 1.0
    balance_negatives: bool = False
    # "contrastive" (pairs, `margin`, `hard_fraction`) or "multi_similarity" (every positive and negative of each
    # genuine anchor at once, Wang et al. 2019; `ms_*` below, `skilled_weight` on the writer's forgeries)
    loss: str = "contrastive"
    ms_alpha: float = 2.0
    ms_beta: float = 50.0
    ms_base: float = 0.5
    ms_epsilon: float = 0.1
    triplet_weight: float = 0.0  # > 0: add a within-writer ranking (triplet) term to the contrastive loss
    triplet_margin: float = 0.2
    aux_writer_weight: float = 0.0  # > 0: add cosine-softmax writer classification (training only)
    aux_scale: float = 16.0
    ema_decay: float = 0.0  # > 0: validate, select and ship an exponential moving average of the weights
    mirror_writers: int = 1  # 2 or 4: each training writer's mirror images count as new writers (see BatchSampler)
    # How the writers of a batch are shared among datasets (see BatchSampler): "writers" (every training writer
    # equally likely: big datasets dominate), "equal" (each dataset the same share), "sqrt" (shares grow with the
    # square root of a dataset's training writers); `dataset_weights` ({name: weight}) overrides any of them.
    dataset_balance: str = "writers"
    dataset_weights: dict[str, float] | None = None
    # Datasets holding other scans of another dataset's writers ({"CEDAR-natural": "CEDAR"}): a writer of both is
    # one training identity (its images of both pooled), never its own negative.
    writer_groups: dict[str, str] | None = None
    # Progressive resizing: the first `low_res_epochs` epochs train on images scaled by `low_res_scale` (about
    # 1 / scale^2 cheaper per image), the rest at the full canvas that serving uses; validation is always full size.
    low_res_epochs: int = 0
    low_res_scale: float = 0.5
    bf16: bool | None = None  # bfloat16 autocast; None: where the device runs it fast (`embedding.use_bf16`)
    threads: int | None = None
    workers: int = 0
    validation_references: int = 10
    weights_dtype: str = "float16"
    max_writers: int | None = None  # cap per dataset (smoke runs and tests)
    model: ModelConfig = field(default_factory=ModelConfig)
    preprocessing: PreprocessConfig = field(default_factory=PreprocessConfig)
    augment: AugmentConfig = field(default_factory=AugmentConfig)

    def __post_init__(self) -> None:
        if self.loss not in LOSSES:
            raise ValueError(f"loss must be one of {LOSSES}, got {self.loss!r}")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any], **overrides: Any) -> "TrainConfig":
        """From the JSON form (`configs/*.json`): nested `model`, `augment` and `preprocessing` (each partial: missing
        fields keep the code's defaults; the preprocessing a model was trained with goes into its card, so serving
        follows it). `overrides` replace top-level fields."""
        data = dict(data)
        model = ModelConfig.from_dict(data.pop("model", None) or {})
        augment = AugmentConfig(**{k: tuple(v) if isinstance(v, list) else v for k, v in (data.pop("augment", None) or {}).items()})
        preprocessing = PreprocessConfig.from_dict(data.pop("preprocessing", None) or {})
        return cls(**{**data, "model": model, "augment": augment, "preprocessing": preprocessing, **overrides})


def load_train_config(path: str | Path, **overrides: Any) -> TrainConfig:
    """A TrainConfig from a JSON file such as `configs/cedar_gpds.json`."""
    return TrainConfig.from_dict(json.loads(Path(path).read_text()), **overrides)


@dataclass
class PreparedData:
    """Every source's records (writers outside its split left out), folder and writer-disjoint split."""

    records: list[SignatureRecord]
    roots: dict[str, Path]  # dataset -> folder
    assignments: dict[str, dict[str, str]]  # dataset -> writer -> split
    sources: list[dict[str, Any]]  # each DataSource as the model card describes it (split file, writers per split)

    def split(self, name: str) -> list[SignatureRecord]:
        return [r for r in self.records if self.assignments[r.dataset].get(r.writer) == name]


def prepare_data(sources: Sequence[DataSource], *, seed: int, split_dir: Path | None, max_writers: int | None = None) -> PreparedData:
    """Read every source, and read or make (and store) its writer-disjoint split."""
    records: list[SignatureRecord] = []
    roots: dict[str, Path] = {}
    assignments: dict[str, dict[str, str]] = {}
    described = []
    for source in sources:
        source_records = read_dataset(source.root, source.layout, source.name)
        if source.split_file and Path(source.split_file).is_file():
            assignment = read_splits_csv(source.split_file)
            split_file = source.split_file
        else:
            assignment = split_writers({r.writer for r in source_records}, validation=source.validation, test=source.test,
                                       seed=seed)
            split_file = source.split_file or (str(split_dir / source.name / "splits.csv") if split_dir else None)
            if split_file:
                write_splits_csv(split_file, assignment, source.name)
        if max_writers:
            assignment = _first_writers(assignment, max_writers)
        missing = {r.writer for r in source_records} - set(assignment)
        if missing and not max_writers:
            raise DatasetError(f"{len(missing)} writers of {source.name} are not in its split file {split_file}")
        records.extend(r for r in source_records if r.writer in assignment)
        roots[source.name] = Path(source.root)
        assignments[source.name] = assignment
        described.append({**asdict(source), "split_file": split_file, "writers": split_counts(assignment)})
    return PreparedData(records, roots, assignments, described)


def _first_writers(assignment: dict[str, str], max_writers: int) -> dict[str, str]:
    """The first `max_writers` training writers of `assignment` and the first max(2, max_writers // 3) of each other
    split (smoke runs and tests)."""
    kept_per_split: dict[str, int] = {}
    kept = {}
    for writer, split in assignment.items():
        if kept_per_split.get(split, 0) < max(2, max_writers // 3 if split != "train" else max_writers):
            kept[writer] = split
            kept_per_split[split] = kept_per_split.get(split, 0) + 1
    return kept


def lr_at(step: int, total: int, cfg: TrainConfig) -> float:
    """Learning rate of 0-based `step` of `total`: linear warm-up over `cfg.warmup_steps`, then cosine decay to 0."""
    if step < cfg.warmup_steps:
        return cfg.lr * (step + 1) / cfg.warmup_steps
    progress = (step - cfg.warmup_steps) / max(1, total - cfg.warmup_steps)
    return cfg.lr * 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))


# The mirror images that `mirror_writers` turns into new training writers: none, left-right, upside-down, both.
MIRRORS: tuple[tuple[int, ...], ...] = ((), (-1,), (-2,), (-2, -1))


class Batch(NamedTuple):
    """One training batch, one entry per image."""

    image_index: list[int]  # position of the image in the sampler's records
    writer_slot: list[int]  # batch slot of the image's (possibly mirrored) writer: same slot, same writer
    is_genuine: list[bool]  # genuine signature (True) or skilled forgery of the slot's writer
    mirror_index: list[int]  # index into MIRRORS of the flip applied to the image


class BatchSampler:
    """P writers x (K genuine + F forged) per batch, from a seeded numpy generator.

    With `cfg.mirror_writers` = M > 1 every training writer also appears as M - 1 mirrored writers (its
    genuine signatures and its forgeries flipped alike): handwriting seen in a mirror is nobody's handwriting
    the model has seen, so it is a new identity with its own genuine/forgery pairs and writer class. Why:
    the writer-independent task is limited by the number of training writers (140 here), and what tells a
    forgery from a genuine stroke (hesitation, tremor, pen lifts, stroke quality) does not depend on direction.
    """

    def __init__(self, records: Sequence[SignatureRecord], cfg: TrainConfig, rng: np.random.Generator) -> None:
        if cfg.mirror_writers not in (1, 2, 4):
            raise ValueError(f"mirror_writers must be 1, 2 or 4, got {cfg.mirror_writers}")
        if cfg.dataset_balance not in DATASET_BALANCES:
            raise ValueError(f"dataset_balance must be one of {DATASET_BALANCES}, got {cfg.dataset_balance!r}")
        self.cfg, self.rng = cfg, rng
        self.genuine: dict[str, list[int]] = {}
        self.forged: dict[str, list[int]] = {}
        groups = cfg.writer_groups or {}
        for i, r in enumerate(records):
            key = f"{groups.get(r.dataset, r.dataset)}/{r.writer}"
            (self.genuine if r.genuine else self.forged).setdefault(key, []).append(i)
            self.genuine.setdefault(key, [])
        self.writers = sorted(w for w, g in self.genuine.items() if len(g) >= 2)
        if len(self.writers) < 2:
            raise DatasetError("training needs at least two writers with two genuine signatures each")
        # training identities: (writer, mirror); class index = writer position * mirror_writers + mirror
        self.identities = [(w, m) for w in self.writers for m in range(cfg.mirror_writers)]
        self.active = self.identities
        position = {w: i for i, w in enumerate(self.writers)}
        # writer position of each record for the auxiliary writer classifier (-1: a writer never sampled)
        self.writer_position = [position.get(f"{groups.get(r.dataset, r.dataset)}/{r.writer}", -1) for r in records]
        self.shares = dataset_shares(self.writers, cfg)
        self._group_active()

    def restrict(self, indices: Sequence[int]) -> None:
        """Sample only from these identities (this rank's share under DistributedDataParallel)."""
        self.active = [self.identities[i] for i in indices]
        self._group_active()

    def _group_active(self) -> None:
        self.by_dataset: dict[str, list[int]] = {}
        for i, (w, _) in enumerate(self.active):
            self.by_dataset.setdefault(w.split("/", 1)[0], []).append(i)

    def _choose_identities(self) -> list[int]:
        """Positions in `self.active` of this batch's P identities (distinct).

        "writers" balance draws them uniformly (the stream older configs were trained with); otherwise each slot
        first draws a dataset by its share, then distinct identities of that dataset, so 280 Chinese training
        writers cannot drown 30 Dutch ones."""
        cfg = self.cfg
        size = min(cfg.writers_per_batch, len(self.active))
        if (cfg.dataset_balance == "writers" and not cfg.dataset_weights) or len(self.by_dataset) < 2:
            return [int(i) for i in self.rng.choice(len(self.active), size=size, replace=False)]
        names = sorted(self.by_dataset)
        shares = np.asarray([self.shares.get(n, 0.0) for n in names], dtype=np.float64)
        shares = shares / shares.sum()
        counts = np.bincount(self.rng.choice(len(names), size=size, p=shares), minlength=len(names))
        chosen: list[int] = []
        for name, count in zip(names, counts):
            pool = self.by_dataset[name]
            picks = self.rng.choice(len(pool), size=min(int(count), len(pool)), replace=False)
            chosen.extend(int(pool[j]) for j in picks)
        return chosen

    def writer_labels(self, image_index: Sequence[int], mirror_index: Sequence[int] | None = None) -> list[int]:
        """Global class index (position in `self.identities`) of each sampled image's (mirrored) writer."""
        mirror_index = mirror_index if mirror_index is not None else [0] * len(image_index)
        mirrors = self.cfg.mirror_writers
        return [self.writer_position[i] * mirrors + m if self.writer_position[i] >= 0 else -1
                for i, m in zip(image_index, mirror_index)]

    def sample(self) -> Batch:
        cfg = self.cfg
        batch = Batch([], [], [], [])
        for slot, position in enumerate(self._choose_identities()):
            writer, mirror = self.active[position]
            for pool, n, is_genuine in ((self.genuine[writer], cfg.genuine_per_writer, True),
                                        (self.forged.get(writer, []), cfg.forged_per_writer, False)):
                if not pool:
                    continue
                picks = self.rng.choice(pool, size=n, replace=len(pool) < n)
                batch.image_index.extend(int(p) for p in picks)
                batch.writer_slot.extend([slot] * n)
                batch.is_genuine.extend([is_genuine] * n)
                batch.mirror_index.extend([mirror] * n)
        return batch


DATASET_BALANCES = ("writers", "equal", "sqrt")


def dataset_shares(writers: Sequence[str], cfg: TrainConfig) -> dict[str, float]:
    """Share of batch slots per dataset (sums to 1), from `cfg.dataset_balance` or `cfg.dataset_weights`;
    `writers` are the training writers as "dataset/writer"."""
    counts = dict(sorted(Counter(w.split("/", 1)[0] for w in writers).items()))
    if cfg.dataset_weights:
        unknown = set(cfg.dataset_weights) - set(counts)
        if unknown:
            log.warning("dataset_weights name datasets not in training: %s", sorted(unknown))
        raw = {d: float(cfg.dataset_weights.get(d, 0.0)) for d in counts}
        if sum(raw.values()) <= 0:
            raise ValueError("dataset_weights give no training dataset a positive weight")
    elif cfg.dataset_balance == "equal":
        raw = {d: 1.0 for d in counts}
    elif cfg.dataset_balance == "sqrt":
        raw = {d: math.sqrt(n) for d, n in counts.items()}
    else:
        raw = {d: float(n) for d, n in counts.items()}
    total = sum(raw.values())
    return {d: v / total for d, v in raw.items()}


def mirror_image(image: torch.Tensor, mirror: int) -> torch.Tensor:
    """`image` (.. x H x W) flipped as MIRRORS[mirror] says."""
    dims = MIRRORS[mirror]
    return torch.flip(image, dims) if dims else image


@dataclass(frozen=True)
class TrainingImages:
    """Preprocessed images (N x 1 x H x W, uint8: 4x less memory than float) and the records they show, in order."""

    pixels: torch.Tensor
    records: list[SignatureRecord]


def preprocess_split(data: PreparedData, split: str, cfg: TrainConfig, *, progress: bool,
                     cache_dir: str | Path | None = None) -> TrainingImages:
    """Every image of `split`'s writers preprocessed once for the whole run (unreadable ones are left out); with
    `cache_dir`, each dataset's images are read from (or stored in) the on-disk cache (`sigml.cache`)."""
    if cache_dir is None:
        pixels, records = preprocess_records(data.split(split), data.roots, cfg.preprocessing, workers=cfg.workers,
                                             desc=f"preprocess {split}", progress=progress, as_uint8=True)
        return TrainingImages(pixels, records)
    parts, records = [], []
    for name in data.roots:
        wanted = [r for r in data.split(split) if r.dataset == name]
        if wanted:
            pixels, kept = cached_preprocess(wanted, data.roots, cfg.preprocessing, cache_dir, name=f"{name}-{split}",
                                             workers=cfg.workers, progress=progress)
            parts.append(pixels)
            records.extend(kept)
    if not parts:
        shape = (0, 1, cfg.preprocessing.canvas_height, cfg.preprocessing.canvas_width)
        return TrainingImages(torch.zeros(shape, dtype=torch.uint8), [])
    return TrainingImages(torch.cat(parts), records)


def canvas_scale(epoch: int, cfg: TrainConfig) -> float:
    """How much 0-based `epoch`'s training images are scaled: `cfg.low_res_scale` for the first
    `cfg.low_res_epochs` epochs, then 1 (the serving canvas)."""
    return cfg.low_res_scale if epoch < cfg.low_res_epochs else 1.0


def scaled_pixels(pixels: torch.Tensor, scale: float, batch: int = 512) -> torch.Tensor:
    """uint8 N x 1 x H x W images resized by `scale` (area-averaged, so thin strokes fade instead of vanishing)."""
    if scale == 1.0:
        return pixels
    size = (max(1, round(pixels.shape[2] * scale)), max(1, round(pixels.shape[3] * scale)))
    out = [to_uint8(torch.nn.functional.interpolate(as_float(pixels[i:i + batch]), size=size, mode="area"))
           for i in range(0, len(pixels), batch)]
    return torch.cat(out) if out else torch.zeros((0, 1, *size), dtype=torch.uint8)


@dataclass
class Learner:
    """The network being trained and everything an optimisation step updates."""

    model: SiameseResNet18
    net: torch.nn.Module  # what a step calls: model.embed (+ the writer classifier); DDP-wrapped under torchrun
    optimizer: torch.optim.Optimizer
    writer_classifier: CosineWriterClassifier | None  # auxiliary writer classification (training only)
    ema: torch.optim.swa_utils.AveragedModel | None  # moving average of the weights

    @property
    def candidate(self) -> torch.nn.Module:
        """The weights that would be shipped: the moving average when there is one, else the model."""
        return self.ema.module if self.ema is not None else self.model


def build_learner(cfg: TrainConfig, n_writer_classes: int, ctx: DistContext, init: str | Path | None = None) -> Learner:
    """A new network (or `init`'s weights), its writer classifier, moving average and optimizer, on `ctx.device`."""
    model = SiameseResNet18(cfg.model)
    if init is not None:
        if ModelCard.load(card_path_for(init)).architecture == cfg.model:
            load_weights(model, init)
            log.info("fine-tuning from %s", init)
        else:  # a new head on the trained backbone
            load_weights(model.backbone, init, prefix="backbone.")
            log.info("backbone from %s, new embedding head", init)
    model = model.to(ctx.device, memory_format=torch.channels_last)
    classifier = None
    if cfg.aux_writer_weight > 0:
        classifier = CosineWriterClassifier(cfg.model.embedding_dim, n_writer_classes, cfg.aux_scale).to(ctx.device)
    ema = make_ema(model, cfg.ema_decay)
    net = wrap(model, ctx, classifier)
    params = list(model.parameters()) + (list(classifier.parameters()) if classifier is not None else [])
    optimizer = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    return Learner(model, net, optimizer, classifier, ema)


@dataclass
class RunState:
    """Where a run stands between epochs: what `<workdir>/last.*` stores and `resume` restores."""

    step: int = 0  # optimisation steps done
    next_epoch: int = 0  # 0-based
    best_eer: float = float("inf")  # best validation pairwise EER so far (its weights: best.safetensors)
    history: list[dict[str, Any]] = field(default_factory=list)  # one entry per epoch done


def save_run_state(workdir: Path, learner: Learner, state: RunState, rng: np.random.Generator, cfg: TrainConfig) -> None:
    """`<workdir>/last.*`: weights, optimizer, writer classifier, moving average and where the run stands."""
    meta = {"step": state.step, "epoch": state.next_epoch - 1, "best_eer": state.best_eer, "history": state.history,
            "numpy_rng": rng.bit_generator.state, "config": cfg.to_dict()}
    save_training_state(workdir, "last", learner.model, learner.optimizer, meta,
                        writer_classifier=learner.writer_classifier, ema=learner.ema)


def load_run_state(workdir: Path, learner: Learner, rng: np.random.Generator) -> RunState:
    """Restore `<workdir>/last.*` into `learner` and `rng`; where the run stands."""
    meta = load_training_state(workdir, "last", learner.model, learner.optimizer,
                               writer_classifier=learner.writer_classifier, ema=learner.ema)
    rng.bit_generator.state = meta["numpy_rng"]
    return RunState(step=meta["step"], next_epoch=meta["epoch"] + 1, best_eer=meta["best_eer"], history=meta["history"])


def share_writers(sampler: BatchSampler, cfg: TrainConfig, ctx: DistContext, epoch: int) -> None:
    """Under torchrun: this rank's writers and its own random streams for `epoch` (a single process: nothing)."""
    if not ctx.enabled:
        return
    sampler.restrict(writer_share(len(sampler.identities), ctx, seed=cfg.seed, epoch=epoch))
    sampler.rng = np.random.default_rng([cfg.seed, ctx.rank, epoch])
    torch.manual_seed(cfg.seed * 1000 + ctx.rank * 100003 + epoch)  # augmentation differs per rank


def batch_images(batch: Batch, pixels: torch.Tensor, augment: SignatureAugment) -> torch.Tensor:
    """The batch's images as floats, each augmented then mirrored, stacked in channels-last memory format."""
    images = torch.stack([mirror_image(augment(as_float(pixels[i])), mirror)
                          for i, mirror in zip(batch.image_index, batch.mirror_index)])
    return images.contiguous(memory_format=torch.channels_last)


@dataclass(frozen=True)
class EpochResult:
    started: float  # time.perf_counter() when the epoch began
    images: int  # images seen by all ranks together
    mean_loss: float
    last_stats: dict[str, float]  # the loss statistics of the epoch's last step (distances of pair kinds, ...)


def run_epoch(learner: Learner, sampler: BatchSampler, augment: SignatureAugment, pixels: torch.Tensor, cfg: TrainConfig,
              ctx: DistContext, *, first_step: int, desc: str, progress: bool) -> EpochResult:
    """One pass of `cfg.steps_per_epoch` optimisation steps; `first_step` (steps done before) sets the learning rates."""
    learner.model.train()
    total_steps = cfg.epochs * cfg.steps_per_epoch
    started, images, losses, stats = time.perf_counter(), 0, [], {}
    bar = tqdm(range(cfg.steps_per_epoch), desc=desc, disable=not progress)
    for offset in bar:
        for group in learner.optimizer.param_groups:
            group["lr"] = lr_at(first_step + offset, total_steps, cfg)
        batch = sampler.sample()
        labels = None
        if learner.writer_classifier is not None:
            labels = sampler.writer_labels(batch.image_index, batch.mirror_index)
        loss, stats = train_step(learner.net, learner.optimizer, batch_images(batch, pixels, augment).to(ctx.device),
                                 batch.writer_slot, batch.is_genuine, cfg, labels)
        if learner.ema is not None:
            learner.ema.update_parameters(learner.model)
        images += len(batch.image_index) * ctx.world_size
        losses.append(loss)
        bar.set_postfix(loss=f"{np.mean(losses[-20:]):.4f}", img_s=f"{images / (time.perf_counter() - started):.1f}")
    return EpochResult(started, images, float(np.mean(losses)), stats)


def validate(model: torch.nn.Module, validation: TrainingImages, cfg: TrainConfig) -> dict[str, Any]:
    """The validation figures of `model` (`calibration.ValidationResult.metrics`)."""
    emb = embed_tensors(model, validation.pixels, bf16=cfg.bf16)
    return calibration.validation_metrics(emb, validation.records, k=cfg.validation_references, seed=cfg.seed).metrics


def history_entry(epoch: int, step: int, result: EpochResult, val: dict[str, Any], seconds: float) -> dict[str, Any]:
    """One line of `history.json`: the epoch's training loss and speed (over `seconds`, validation included) and
    its validation EERs (pairwise, reference-based, per dataset and their macro-average)."""
    return {
        "epoch": epoch + 1,
        "step": step,
        "loss": result.mean_loss,
        "images_per_s": result.images / seconds,
        "val_eer": val["pairwise"]["eer"],
        "val_auc": val["pairwise"]["auc"],
        "val_reference_eer": val.get("reference_based", {}).get("eer"),
        **{f"val_eer_{k[9:]}": v["eer"] for k, v in val.items() if k.startswith("pairwise_")},
        **macro_entry(val),
        **result.last_stats,
    }


def record_epoch(epoch: int, result: EpochResult, state: RunState, learner: Learner, validation: TrainingImages,
                 cfg: TrainConfig, workdir: Path, rng: np.random.Generator,
                 on_epoch: Callable[[list[dict[str, Any]]], None] | None) -> None:
    """The bookkeeping after an epoch (main process only): validate what would be shipped, add to the history, keep
    `best.safetensors` when the validation EER improved, write `last.*` and `history.json`, call `on_epoch`."""
    val = validate(learner.candidate, validation, cfg)
    entry = history_entry(epoch, state.step, result, val, seconds=time.perf_counter() - result.started)
    state.history.append(entry)
    state.next_epoch = epoch + 1
    log.info("epoch %d: %s", epoch + 1, json.dumps({k: round(v, 4) if isinstance(v, float) else v for k, v in entry.items()}))
    if entry["val_eer"] < state.best_eer:
        state.best_eer = entry["val_eer"]
        save_weights(learner.candidate, workdir / "best.safetensors")
    save_run_state(workdir, learner, state, rng, cfg)
    (workdir / "history.json").write_text(json.dumps(state.history, indent=1))
    if on_epoch is not None:
        on_epoch([dict(h) for h in state.history])


def train(
    sources: Sequence[DataSource],
    out: str | Path,
    cfg: TrainConfig = TrainConfig(),
    *,
    workdir: str | Path | None = None,
    split_dir: str | Path | None = None,
    resume: bool = False,
    progress: bool = True,
    ctx: DistContext | None = None,
    on_epoch: Callable[[list[dict[str, Any]]], None] | None = None,
    init: str | Path | None = None,
    cache_dir: str | Path | None = None,
) -> ModelCard:
    """Train, keep the best checkpoint by validation EER, write `out` (.safetensors) + its model card.

    `on_epoch(history)`, if given, is called on the main process after every epoch with the history so far
    (the entries of `<workdir>/history.json`): how a notebook draws a live loss / validation-EER plot.

    Under torchrun (see `sigml.distributed`) every rank runs this function: each samples batches from
    its share of the writers, DDP averages gradients, and rank 0 alone validates and writes files.

    `init` (fine-tuning): start from these weights (backbone and embedding head; the writer classifier is
    new); the architecture and preprocessing come from its model card, so the fine-tuned model sees what
    the one it starts from saw. Thresholds are recalibrated on this run's validation writers as usual.
    """
    ctx = ctx or init_from_env()
    if init is not None:
        cfg = config_for_init(cfg, init)
    out = Path(out)
    workdir = Path(workdir) if workdir else Path("runs") / out.stem
    if ctx.is_main:
        workdir.mkdir(parents=True, exist_ok=True)
    else:
        progress = False
    torch.manual_seed(cfg.seed)  # same initial weights on every rank (DDP also broadcasts rank 0's)
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    rng = np.random.default_rng(cfg.seed)

    data = prepare_data(sources, seed=cfg.seed, split_dir=Path(split_dir) if split_dir else None, max_writers=cfg.max_writers)
    if not data.split("validation"):
        raise DatasetError("no validation writers: the threshold cannot be calibrated")
    log.info("training on %d images, validating on %d images", len(data.split("train")), len(data.split("validation")))
    training, validation = (preprocess_split(data, split, cfg, progress=progress, cache_dir=cache_dir)
                            for split in ("train", "validation"))
    log.info("preprocessed %d training and %d validation images (%.0f MB as uint8)", len(training.records),
             len(validation.records), (training.pixels.numel() + validation.pixels.numel()) / 2**20)

    sampler = BatchSampler(training.records, cfg, rng)
    learner = build_learner(cfg, len(sampler.identities), ctx, init)
    augment = SignatureAugment(cfg.augment)
    state = RunState()
    if resume and (workdir / "last.safetensors").is_file():
        state = load_run_state(workdir, learner, rng)
        log.info("resumed from %s at epoch %d (step %d)", workdir, state.next_epoch, state.step)

    resized: dict[float, torch.Tensor] = {}  # the training images at each canvas scale, made once
    for epoch in range(state.next_epoch, cfg.epochs):
        share_writers(sampler, cfg, ctx, epoch)
        scale = canvas_scale(epoch, cfg)
        if scale not in resized:
            resized = {scale: scaled_pixels(training.pixels, scale)}  # the previous scale is not needed again
        result = run_epoch(learner, sampler, augment, resized[scale], cfg, ctx, first_step=state.step,
                           desc=f"epoch {epoch + 1}/{cfg.epochs}" + (f" at {scale:g}x" if scale != 1.0 else ""),
                           progress=progress)
        state.step += cfg.steps_per_epoch
        if ctx.is_main:  # the other ranks wait at the barrier meanwhile
            record_epoch(epoch, result, state, learner, validation, cfg, workdir, rng, on_epoch)
        barrier(ctx)

    if ctx.is_main:
        card = finalize(workdir / "best.safetensors", out, cfg, data, validation, state.history, init=init)
        barrier(ctx)
        return card
    barrier(ctx)
    return ModelCard.load(card_path_for(out))


def macro_entry(val: dict[str, Any]) -> dict[str, float]:
    """Mean over datasets of the per-dataset validation pairwise EERs (when there are several)."""
    per_dataset = [v["eer"] for k, v in val.items() if k.startswith("pairwise_")]
    return {"val_eer_macro": float(np.mean(per_dataset))} if per_dataset else {}


def config_for_init(cfg: TrainConfig, init: str | Path) -> TrainConfig:
    """`cfg` with the architecture of the model card next to the `init` weights, and its preprocessing
    unless the config sets its own (a config that changes the canvas fine-tunes the network to it)."""
    import dataclasses

    card = ModelCard.load(card_path_for(init))
    preprocessing = card.preprocessing if cfg.preprocessing == PreprocessConfig() else cfg.preprocessing
    # A config asking for another pooling keeps the backbone only (a new head); otherwise the card's architecture.
    model = cfg.model if cfg.model.pooling != card.architecture.pooling else card.architecture
    if card.architecture != model or preprocessing != cfg.preprocessing:
        log.info("fine-tuning keeps the architecture%s of %s", "" if preprocessing is cfg.preprocessing else " and preprocessing", init)
    return dataclasses.replace(cfg, model=model, preprocessing=preprocessing)


def _init_description(init: str | Path | None) -> dict[str, Any] | None:
    if init is None:
        return None
    card = ModelCard.load(card_path_for(init))
    return {"file": Path(init).name, "model_version": card.version, "sha256": card.weights.get("sha256")}


def make_ema(model: torch.nn.Module, decay: float) -> torch.optim.swa_utils.AveragedModel | None:
    """Exponential moving average of the weights (BatchNorm statistics included), or None when `decay` is 0.

    Why: epoch-to-epoch validation EER swings by about +-0.01 on 25 validation writers, so picking the best of
    many epochs favours a lucky draw; the average over the last few hundred steps is a smoother model to pick.
    """
    if not 0.0 <= decay < 1.0:
        raise ValueError(f"ema_decay must be in [0, 1), got {decay}")
    if decay == 0.0:
        return None
    from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

    return AveragedModel(model, multi_avg_fn=get_ema_multi_avg_fn(decay), use_buffers=True)


def train_step(
    net: torch.nn.Module, optimizer: torch.optim.Optimizer, images: torch.Tensor, writer_slot: list[int],
    is_genuine: list[bool], cfg: TrainConfig, writer_labels: list[int] | None = None,
) -> tuple[float, dict[str, float]]:
    """One optimisation step on a batch (`Batch.writer_slot` and `Batch.is_genuine` describe `images`); `net` maps
    images to embeddings (a DDP wrapper syncs gradients in backward).

    When `net` carries the auxiliary writer classifier it returns (embeddings, logits), and
    `cfg.aux_writer_weight` x cross-entropy on the genuine images' `writer_labels` joins the loss.
    """
    with torch.autocast(images.device.type, dtype=torch.bfloat16, enabled=use_bf16(cfg.bf16, images.device.type)):
        out = net(images)
    embeddings, logits = out if isinstance(out, tuple) else (out, None)
    loss, stats = training_loss(embeddings, writer_slot, is_genuine, cfg)
    if logits is not None and writer_labels is not None:
        ce = writer_classification_loss(logits, torch.tensor(writer_labels, device=logits.device),
                                        torch.tensor(is_genuine, device=logits.device))
        loss = loss + cfg.aux_writer_weight * ce
        stats["writer_ce"] = float(ce.detach())
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()
    return float(loss.detach()), stats


def training_loss(embeddings: torch.Tensor, writer_slot: list[int], is_genuine: list[bool],
                  cfg: TrainConfig) -> tuple[torch.Tensor, dict[str, float]]:
    """The batch's metric loss (`cfg.loss`; + `cfg.triplet_weight` x the triplet loss) and its statistics."""
    writer_ids = torch.tensor(writer_slot, device=embeddings.device)
    genuine = torch.tensor(is_genuine, device=embeddings.device)
    if cfg.loss == "multi_similarity":
        loss, stats = batch_multi_similarity_loss(
            embeddings, writer_ids, genuine, alpha=cfg.ms_alpha, beta=cfg.ms_beta, base=cfg.ms_base,
            epsilon=cfg.ms_epsilon, skilled_weight=cfg.skilled_weight,
        )
    else:  # "contrastive" (TrainConfig refuses any other name)
        loss, stats = batch_contrastive_loss(
            embeddings, writer_ids, genuine, margin=cfg.margin,
            hard_fraction=cfg.hard_fraction, skilled_weight=cfg.skilled_weight,
            balance_negatives=cfg.balance_negatives,
        )
    if cfg.triplet_weight > 0:
        triplet, more = batch_triplet_loss(embeddings, writer_ids, genuine, margin=cfg.triplet_margin)
        loss = loss + cfg.triplet_weight * triplet
        stats = {**stats, **more, "triplet": float(triplet.detach())}
    return loss, stats


def finalize(
    best: Path, out: Path, cfg: TrainConfig, data: PreparedData, validation: TrainingImages,
    history: list[dict[str, Any]], init: str | Path | None = None,
) -> ModelCard:
    """Write the shipped weights, then calibrate thresholds on validation writers with exactly those weights."""
    model = SiameseResNet18(cfg.model)
    load_weights(model, best)
    out.parent.mkdir(parents=True, exist_ok=True)
    save_weights(model, out, dtype=getattr(torch, cfg.weights_dtype))
    load_weights(model, out)  # calibrate what is shipped (fp16 round trip included)
    emb = embed_tensors(model, validation.pixels, bf16=cfg.bf16)
    fields, val = calibration.card_calibration(emb, validation.records, k=cfg.validation_references, seed=cfg.seed)
    best_epoch = min(history, key=lambda h: h["val_eer"]) if history else {}
    card = ModelCard(
        architecture=cfg.model,
        preprocessing=cfg.preprocessing,
        **fields,
        metrics={"validation": val},
        data={
            "sources": data.sources,
            "protocol": calibration.protocol_text(),
        },
        training={
            "config": cfg.to_dict(),
            "init": _init_description(init),
            "best_epoch": best_epoch.get("epoch"),
            "epochs_run": len(history),
            "images_per_s": float(np.mean([h["images_per_s"] for h in history])) if history else None,
            "history": history,
        },
        weights={"file": out.name, "sha256": file_sha256(out), "dtype": cfg.weights_dtype},
        created=now_iso(),
        git_commit=git_commit(),
    )
    card.save(card_path_for(out))
    log.info("wrote %s and %s (validation pairwise EER %.4f)", out, card_path_for(out), val["pairwise"]["eer"])
    return card
