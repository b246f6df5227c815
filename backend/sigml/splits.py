"""Writer-disjoint train/validation/test splits, deterministic from a seed, stored as CSV."""

from __future__ import annotations

import csv
import os
import random
from collections import Counter
from pathlib import Path
from typing import Iterable, Literal

from .datasets import SignatureRecord, natural_key
from .errors import DatasetError

Split = Literal["train", "validation", "test"]
SPLITS: tuple[Split, ...] = ("train", "validation", "test")


def _count(n_writers: int, value: float) -> int:
    """`value` writers: a count (>= 1) or a fraction of `n_writers`."""
    return int(round(value * n_writers)) if 0 < value < 1 else int(value)


def split_writers(
    writers: Iterable[str], *, validation: float = 0.15, test: float = 0.2, seed: int = 0
) -> dict[str, Split]:
    """Assign every writer to exactly one split. `validation`/`test` are counts (>= 1) or fractions."""
    ordered = sorted(set(writers), key=natural_key)
    n = len(ordered)
    n_val, n_test = _count(n, validation), _count(n, test)
    if n_val < 0 or n_test < 0 or n_val + n_test >= n:
        raise DatasetError(
            f"cannot split {n} writers into {n_val} validation and {n_test} test writers and keep some for training"
        )
    shuffled = ordered[:]
    random.Random(seed).shuffle(shuffled)
    assignment: dict[str, Split] = {}
    for i, writer in enumerate(shuffled):
        assignment[writer] = "test" if i < n_test else "validation" if i < n_test + n_val else "train"
    return dict(sorted(assignment.items(), key=lambda kv: natural_key(kv[0])))


def write_splits_csv(path: str | Path, assignment: dict[str, Split], dataset: str) -> None:
    """Written whole, then moved into place: a reader (another rank of a torchrun making the same split from the
    same seed) sees no file or a complete one, never a half-written one."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".{os.getpid()}.tmp")
    with tmp.open("w", newline="") as fh:
        rows = csv.writer(fh)
        rows.writerow(["dataset", "writer", "split"])
        for writer, split in assignment.items():
            rows.writerow([dataset, writer, split])
    tmp.replace(path)


def read_splits_csv(path: str | Path) -> dict[str, Split]:
    path = Path(path)
    if not path.is_file():
        raise DatasetError(f"split file not found: {path}")
    with path.open(newline="") as fh:
        rows = list(csv.DictReader(fh))
    if not rows or not {"writer", "split"} <= set(rows[0]):
        raise DatasetError(f"{path} is not a split CSV (expected columns dataset, writer, split)")
    bad = {r["split"] for r in rows} - set(SPLITS)
    if bad:
        raise DatasetError(f"{path} has unknown split names: {sorted(bad)}")
    return {r["writer"]: r["split"] for r in rows}  # type: ignore[misc]


def select(records: Iterable[SignatureRecord], assignment: dict[str, Split], *splits: Split) -> list[SignatureRecord]:
    """The records whose writer belongs to one of `splits`."""
    wanted = set(splits)
    return [r for r in records if assignment.get(r.writer) in wanted]


def split_counts(assignment: dict[str, Split]) -> dict[str, int]:
    counts = Counter(assignment.values())
    return {s: counts.get(s, 0) for s in SPLITS}
