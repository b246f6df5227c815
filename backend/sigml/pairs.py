"""Pair manifests (CSV, never pickle): genuine-genuine, genuine-skilled forgery, genuine-random forgery."""

from __future__ import annotations

import csv
import itertools
import random
from collections import defaultdict
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Iterable, Literal

from .datasets import SignatureRecord, natural_key
from .errors import DatasetError

PairKind = Literal["genuine", "skilled", "random"]
PAIR_KINDS: tuple[PairKind, ...] = ("genuine", "skilled", "random")


@dataclass(frozen=True)
class Pair:
    split: str
    kind: PairKind
    label: int  # 1: both by the writer (genuine pair), 0: forgery pair
    writer_a: str
    path_a: str
    writer_b: str
    path_b: str


def _by_writer(records: Iterable[SignatureRecord]) -> tuple[dict[str, list[SignatureRecord]], dict[str, list[SignatureRecord]]]:
    genuine: dict[str, list[SignatureRecord]] = defaultdict(list)
    forged: dict[str, list[SignatureRecord]] = defaultdict(list)
    for r in records:
        (genuine if r.genuine else forged)[r.writer].append(r)
    return genuine, forged


def make_pairs(
    records: Iterable[SignatureRecord],
    split: str,
    *,
    per_writer: int | None = 50,
    seed: int = 0,
    kinds: Iterable[PairKind] = PAIR_KINDS,
) -> list[Pair]:
    """Pairs of each kind for every writer of `records` (one split's records).

    `per_writer` caps the pairs of each kind drawn per writer (None: all genuine and skilled pairs;
    random pairs are then capped at the number of skilled pairs).
    """
    rng = random.Random(seed)
    genuine, forged = _by_writer(records)
    writers = sorted(genuine, key=natural_key)
    pairs: list[Pair] = []
    for writer in writers:
        own_genuine = genuine[writer]
        candidates: dict[str, list[tuple[SignatureRecord, SignatureRecord]]] = {
            "genuine": list(itertools.combinations(own_genuine, 2)),
            "skilled": [(g, f) for g in own_genuine for f in forged.get(writer, [])],
        }
        others = [other for other in writers if other != writer]
        n_random = per_writer if per_writer is not None else len(candidates["skilled"]) or len(candidates["genuine"])
        candidates["random"] = (
            [(rng.choice(own_genuine), rng.choice(genuine[rng.choice(others)])) for _ in range(n_random)] if others else []
        )
        for kind in kinds:
            chosen = candidates[kind]
            if per_writer is not None and len(chosen) > per_writer:
                chosen = rng.sample(chosen, per_writer)
            for a, b in chosen:
                pairs.append(Pair(split, kind, int(kind == "genuine"), a.writer, a.path, b.writer, b.path))
    return pairs


def write_pairs_csv(path: str | Path, pairs: Iterable[Pair]) -> int:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    n = 0
    with path.open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=[f.name for f in fields(Pair)])
        writer.writeheader()
        for p in pairs:
            writer.writerow(asdict(p))
            n += 1
    return n


def read_pairs_csv(path: str | Path) -> list[Pair]:
    path = Path(path)
    if not path.is_file():
        raise DatasetError(f"pair file not found: {path}")
    with path.open(newline="") as fh:
        reader = csv.DictReader(fh)
        expected = [f.name for f in fields(Pair)]
        if reader.fieldnames != expected:
            raise DatasetError(f"{path} is not a pair CSV (expected columns {', '.join(expected)})")
        return [Pair(**{**row, "label": int(row["label"])}) for row in reader]  # type: ignore[arg-type]
