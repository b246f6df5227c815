"""Reads: profiles and references (owner-scoped), datasets, pairs."""

from __future__ import annotations

import itertools
import logging
import random
import threading
import time
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.db.models import Count, Q, QuerySet
from config.errors import ApplicationError, NotFound, get_or_not_found
from sigml.datasets import IMAGE_SUFFIXES, SignatureRecord, detect_layout, natural_key, read_dataset
from sigml.errors import DatasetError
from sigml.pairs import PAIR_KINDS, Pair, make_pairs
from sigml.splits import SPLITS, read_splits_csv

from .models import Profile, Reference
from .model_loader import verifier_get

log = logging.getLogger(__name__)

ALL_WRITERS = "all"  # the split name when a dataset has no split file (or to ask for every writer)
PAIR_KIND_CHOICES = (*PAIR_KINDS, "mixed")


# --- profiles and references ------------------------------------------------------------------------

def profile_list(*, owner: AbstractBaseUser, external_id: str | None = None, search: str | None = None) -> QuerySet[Profile]:
    """The owner's profiles; `external_id`: exactly that id; `search`: name or external id containing it (any case)."""
    profiles = Profile.objects.filter(owner=owner)
    if external_id is not None:
        profiles = profiles.filter(external_id=external_id)
    if search:
        profiles = profiles.filter(Q(name__icontains=search) | Q(external_id__icontains=search))
    return profiles.annotate(reference_count=Count("references")).order_by("id")


def profile_get(*, owner: AbstractBaseUser, profile_id: int) -> Profile:
    """The owner's profile; someone else's is indistinguishable from a missing one (NotFound)."""
    return get_or_not_found(profile_list(owner=owner), pk=profile_id)


def reference_list(*, profile: Profile) -> QuerySet[Reference]:
    return profile.references.order_by("id")


PUBLISHED_KS = (5, 10)  # the numbers of references the published reference-based figures are measured with


def reference_list_checked(*, profile: Profile) -> list[Reference]:
    """The profile's references, each with `consistency_score` and `outlier` (`Verifier.reference_consistency`,
    over the references embedded by the served model; others get None / False until they are re-embedded)."""
    references = list(reference_list(profile=profile))
    for reference in references:
        reference.consistency_score, reference.outlier = None, False
    verifier = verifier_get()
    current = [r for r in references if r.model_version == verifier.model_version]
    if current:
        checks = verifier.reference_consistency([r.embedding_array() for r in current])
        for reference, check in zip(current, checks):
            reference.consistency_score, reference.outlier = check["score"], check["outlier"]
    return references


def reference_guidance(*, count: int) -> dict[str, Any]:
    """How far a profile's number of references is from the ones the published figures were measured with."""
    low, high = PUBLISHED_KS
    if count >= high:
        message = f"{count} references: as many as the published figures with {high} references, or more."
    elif count >= low:
        message = (f"{count} references: enough for the published figures with {low} references; {high} give the "
                   "firmer figures.")
    elif count >= 2:
        message = (f"only {count} references: the published figures need {low} (better {high}); with fewer, "
                   "more answers are inconclusive or wrong.")
    else:
        message = (f"{count} reference{'s' if count != 1 else ''}: one reference is compared pair by pair, the weakest "
                   f"evidence; enrol {low} to {high} genuine signatures of the person.")
    return {"reference_count": count, "published_k": list(PUBLISHED_KS), "enough": count >= low, "message": message}


def reference_get(*, profile: Profile, reference_id: int) -> Reference:
    return get_or_not_found(reference_list(profile=profile), pk=reference_id)


# --- datasets ---------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Dataset:
    name: str
    root: Path  # resolved
    layout: str
    records: tuple[SignatureRecord, ...]
    split_of_writer: dict[str, str] = field(default_factory=dict)  # empty without a split file

    @property
    def has_split_file(self) -> bool:
        return bool(self.split_of_writer)

    @cached_property
    def writers(self) -> list[str]:
        return sorted({r.writer for r in self.records}, key=natural_key)

    @cached_property
    def paths(self) -> frozenset[str]:
        return frozenset(r.path for r in self.records)

    @property
    def genuine(self) -> int:
        return sum(r.genuine for r in self.records)

    @property
    def forged(self) -> int:
        return len(self.records) - self.genuine

    @property
    def splits(self) -> list[str]:
        if not self.has_split_file:
            return [ALL_WRITERS]
        present = set(self.split_of_writer.values())
        return [s for s in SPLITS if s in present]

    def split_of(self, writer: str) -> str | None:
        return self.split_of_writer.get(writer) if self.has_split_file else ALL_WRITERS

    def records_in_split(self, split: str) -> list[SignatureRecord]:
        if split == ALL_WRITERS:
            return list(self.records)
        return [r for r in self.records if self.split_of_writer.get(r.writer) == split]


_cache_lock = threading.Lock()
_cache: dict[Path, tuple[float, dict[str, Dataset]]] = {}


def dataset_cache_clear() -> None:
    with _cache_lock:
        _cache.clear()


def _splits_for(name: str) -> dict[str, str]:
    path = Path(settings.SIGVER_SPLITS_DIR) / name / "splits.csv"
    if not path.is_file():
        return {}
    try:
        return dict(read_splits_csv(path))
    except DatasetError as exc:
        log.warning("ignoring the split file of %s: %s", name, exc)
        return {}


def _scan(data_dir: Path) -> dict[str, Dataset]:
    found: dict[str, Dataset] = {}
    if not data_dir.is_dir():
        return found
    for sub in sorted((p for p in data_dir.iterdir() if p.is_dir() and not p.name.startswith(".")), key=lambda p: natural_key(p.name)):
        try:
            layout = detect_layout(sub)
            records = read_dataset(sub, layout, sub.name)
        except (DatasetError, OSError) as exc:
            log.debug("skipping %s: %s", sub, exc)
            continue
        found[sub.name] = Dataset(sub.name, sub.resolve(), layout, tuple(records), _splits_for(sub.name))
    return found


def _datasets() -> dict[str, Dataset]:
    """Datasets under SIGVER_DATA_DIR, rescanned at most every SIGVER_DATASET_CACHE_SECONDS."""
    data_dir = Path(settings.SIGVER_DATA_DIR)
    ttl = settings.SIGVER_DATASET_CACHE_SECONDS
    now = time.monotonic()
    with _cache_lock:
        hit = _cache.get(data_dir)
        if hit is not None and now - hit[0] < ttl:
            return hit[1]
        datasets = _scan(data_dir)
        _cache[data_dir] = (now, datasets)
        return datasets


def dataset_list() -> list[Dataset]:
    return list(_datasets().values())


def dataset_get(*, name: str) -> Dataset:
    try:
        return _datasets()[name]
    except KeyError:
        raise NotFound(f"no dataset named {name!r}") from None


def dataset_writer_records(*, dataset: Dataset, writer: str) -> list[SignatureRecord]:
    records = [r for r in dataset.records if r.writer == writer]
    if not records:
        raise NotFound(f"dataset {dataset.name} has no writer {writer!r}")
    return records


def dataset_image_path(*, dataset: Dataset, path: str) -> Path:
    """The file of one of the dataset's images; anything else (traversal, absolute paths, symlinks
    leading out of the dataset, non-images, files the layout does not list) is a 404."""
    if path not in dataset.paths or "\x00" in path:
        raise NotFound("no such image in this dataset")
    candidate = (dataset.root / path).resolve()
    if not candidate.is_relative_to(dataset.root) or candidate.suffix.lower() not in IMAGE_SUFFIXES or not candidate.is_file():
        raise NotFound("no such image in this dataset")
    return candidate


def dataset_pairs_sample(*, dataset: Dataset, split: str, kind: str, limit: int, seed: int) -> list[Pair]:
    """`limit` pairs of `kind` (or of every kind, interleaved, for "mixed"), reproducible from `seed`."""
    available = [*dataset.splits, ALL_WRITERS] if dataset.has_split_file else [ALL_WRITERS]
    if split not in available:
        raise ApplicationError(
            f"split: dataset {dataset.name} has no split {split!r}; choose one of {', '.join(available)}.",
            code="invalid", details={"split": [f"choose one of {', '.join(available)}"]},
        )
    records = dataset.records_in_split(split)
    kinds = PAIR_KINDS if kind == "mixed" else (kind,)
    rng = random.Random(seed)
    groups = []
    for k in kinds:
        pairs = make_pairs(records, split, per_writer=limit, seed=seed, kinds=(k,))
        rng.shuffle(pairs)
        groups.append(pairs)
    interleaved = [p for group in itertools.zip_longest(*groups) for p in group if p is not None]
    return interleaved[:limit]
