"""sigml.pairs: pair kinds and labels, caps, split hygiene, CSV; and the committed image_pairs/ manifests."""

from __future__ import annotations

import csv
from collections import Counter, defaultdict
from math import comb
from pathlib import Path

import pytest

from sigml.datasets import read_dataset
from sigml.errors import DatasetError
from sigml.pairs import PAIR_KINDS, Pair, make_pairs, read_pairs_csv, write_pairs_csv
from sigml.splits import SPLITS, select, split_writers

SPEC = {"1": (5, 3), "2": (4, 2), "3": (6, 0), "4": (3, 3), "5": (5, 1)}


@pytest.fixture
def records(synthetic_records):
    return synthetic_records(SPEC)


def check_pair(p: Pair, label_of: dict[str, str]) -> None:
    """The kind, label and writers/labels of both images agree."""
    assert p.kind in PAIR_KINDS
    assert p.label == int(p.kind == "genuine")
    la, lb = label_of[p.path_a], label_of[p.path_b]
    if p.kind == "genuine":
        assert p.writer_a == p.writer_b and la == lb == "genuine" and p.path_a != p.path_b
    elif p.kind == "skilled":
        assert p.writer_a == p.writer_b and (la, lb) == ("genuine", "forged")
    else:
        assert p.writer_a != p.writer_b and la == lb == "genuine"


def test_kinds_and_labels(records):
    label_of = {r.path: r.label for r in records}
    pairs = make_pairs(records, "train", per_writer=None, seed=0)
    for p in pairs:
        check_pair(p, label_of)
        assert p.split == "train"
    kinds = Counter((p.writer_a, p.kind) for p in pairs)
    for w, (g, f) in SPEC.items():
        assert kinds[(w, "genuine")] == comb(g, 2)
        assert kinds[(w, "skilled")] == g * f
        assert kinds[(w, "random")] == (g * f or comb(g, 2))  # uncapped random: as many as skilled pairs


def test_per_writer_cap(records):
    pairs = make_pairs(records, "train", per_writer=4, seed=0)
    counts = Counter((p.writer_a, p.kind) for p in pairs)
    assert max(counts.values()) == 4
    for w, (g, f) in SPEC.items():
        assert counts[(w, "genuine")] == min(4, comb(g, 2))
        assert counts[(w, "skilled")] == min(4, g * f)
        assert counts[(w, "random")] == 4
    genuine = [p for p in pairs if p.kind == "genuine"]
    assert len({(p.path_a, p.path_b) for p in genuine}) == len(genuine)  # sampled without repetition


def test_deterministic_and_seeded(records):
    assert make_pairs(records, "x", per_writer=3, seed=1) == make_pairs(records, "x", per_writer=3, seed=1)
    assert make_pairs(records, "x", per_writer=3, seed=1) != make_pairs(records, "x", per_writer=3, seed=2)


def test_kinds_filter(records):
    pairs = make_pairs(records, "x", kinds=("skilled",))
    assert {p.kind for p in pairs} == {"skilled"}
    assert all(p.label == 0 for p in pairs)


def test_single_writer_has_no_random_pairs(synthetic_records):
    pairs = make_pairs(synthetic_records({"1": (3, 1)}), "x", per_writer=None)
    assert Counter(p.kind for p in pairs) == {"genuine": 3, "skilled": 3}


def test_no_pair_crosses_splits_when_built_per_split(synthetic_records):
    records = synthetic_records({str(w): (4, 2) for w in range(1, 21)})
    assignment = split_writers({r.writer for r in records}, validation=0.2, test=0.2, seed=0)
    for split in SPLITS:
        pairs = make_pairs(select(records, assignment, split), split, per_writer=None, seed=0)
        assert pairs
        assert all(assignment[p.writer_a] == split and assignment[p.writer_b] == split for p in pairs)


def test_csv_round_trip(tmp_path, records):
    pairs = make_pairs(records, "validation", per_writer=3)
    path = tmp_path / "sub" / "pairs.csv"
    assert write_pairs_csv(path, pairs) == len(pairs)
    assert read_pairs_csv(path) == pairs
    assert path.read_text().splitlines()[0] == "split,kind,label,writer_a,path_a,writer_b,path_b"


def test_csv_errors(tmp_path):
    with pytest.raises(DatasetError, match="not found"):
        read_pairs_csv(tmp_path / "missing.csv")
    bad = tmp_path / "bad.csv"
    bad.write_text("a,b\n1,2\n")
    with pytest.raises(DatasetError, match="not a pair CSV"):
        read_pairs_csv(bad)


# --- the committed manifests --------------------------------------------------------------------------------------

MANIFESTS = [("CEDAR", 55), ("GPDS", 150)]


def _read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as fh:
        return list(csv.DictReader(fh))


@pytest.fixture(scope="module", params=MANIFESTS, ids=[m[0] for m in MANIFESTS])
def manifest(request, repo_root):
    name, n_writers = request.param
    folder = repo_root / "image_pairs" / name
    assert folder.is_dir(), f"committed manifests missing: {folder}"
    rows = _read_csv(folder / "splits.csv")
    pairs = {s: read_pairs_csv(folder / f"pairs_{s}.csv") for s in SPLITS}
    return name, n_writers, rows, pairs


def test_committed_splits_are_writer_disjoint(manifest):
    name, n_writers, rows, _ = manifest
    writers = [r["writer"] for r in rows]
    assert len(writers) == len(set(writers)) == n_writers  # every writer once: no writer in two splits
    assert {r["dataset"] for r in rows} == {name}
    assert {r["split"] for r in rows} == set(SPLITS)


def test_committed_pairs_stay_in_their_split(manifest):
    _, _, rows, pairs = manifest
    split_of = {r["writer"]: r["split"] for r in rows}
    for split, ps in pairs.items():
        assert ps, f"pairs_{split}.csv is empty"
        assert all(p.split == split for p in ps)
        bad = [p for p in ps if split_of.get(p.writer_a) != split or split_of.get(p.writer_b) != split]
        assert not bad, f"{len(bad)} pairs of pairs_{split}.csv reference writers of another split, e.g. {bad[0]}"
        assert {p.kind for p in ps} == set(PAIR_KINDS)
        assert all(p.label == int(p.kind == "genuine") for p in ps)
        assert all((p.writer_a == p.writer_b) == (p.kind != "random") for p in ps)
        writers_used = {p.writer_a for p in ps}
        assert writers_used == {w for w, s in split_of.items() if s == split}


def test_committed_pairs_match_the_real_images(manifest, shared_datasets):
    name, _, _, pairs = manifest
    root = shared_datasets / name
    if not root.is_dir():
        pytest.skip(f"{name} not found at {root}")
    record_of = {r.path: r for r in read_dataset(root, name=name)}
    label_of = {path: r.label for path, r in record_of.items()}
    per_kind = defaultdict(int)
    for split, ps in pairs.items():
        for p in ps:
            assert p.path_a in record_of and p.path_b in record_of, f"{p} references a missing image"
            assert record_of[p.path_a].writer == p.writer_a and record_of[p.path_b].writer == p.writer_b
            check_pair(p, label_of)
            per_kind[p.kind] += 1
    assert set(per_kind) == set(PAIR_KINDS)
