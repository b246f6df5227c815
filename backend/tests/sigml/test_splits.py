"""sigml.splits: writer-disjoint, seeded splits and their CSV form."""

from __future__ import annotations

import pytest

from sigml.datasets import read_dataset
from sigml.errors import DatasetError
from sigml.splits import SPLITS, read_splits_csv, select, split_counts, split_writers, write_splits_csv

WRITERS = [str(i) for i in range(1, 41)]


def writers_of(assignment: dict[str, str], split: str) -> set[str]:
    return {w for w, s in assignment.items() if s == split}


def test_every_writer_in_exactly_one_split():
    assignment = split_writers(WRITERS, validation=0.15, test=0.2, seed=0)
    assert set(assignment) == set(WRITERS)
    assert set(assignment.values()) == set(SPLITS)
    parts = [writers_of(assignment, s) for s in SPLITS]
    assert sum(len(p) for p in parts) == len(WRITERS)
    assert not (parts[0] & parts[1]) and not (parts[0] & parts[2]) and not (parts[1] & parts[2])


def test_deterministic_from_seed():
    assert split_writers(WRITERS, seed=7) == split_writers(list(reversed(WRITERS)), seed=7)  # input order irrelevant
    assert split_writers(WRITERS, seed=7) == split_writers(set(WRITERS), seed=7)


def test_different_seeds_differ():
    splits = {tuple(sorted(writers_of(split_writers(WRITERS, seed=s), "test"))) for s in range(5)}
    assert len(splits) == 5


def test_duplicates_are_ignored():
    assert split_writers(WRITERS + WRITERS, seed=1) == split_writers(WRITERS, seed=1)


@pytest.mark.parametrize(
    "n,validation,test,expected",
    [
        (40, 0.15, 0.2, {"train": 26, "validation": 6, "test": 8}),
        (20, 0.15, 0.2, {"train": 13, "validation": 3, "test": 4}),
        (40, 5, 10, {"train": 25, "validation": 5, "test": 10}),  # counts
        (40, 1, 1, {"train": 38, "validation": 1, "test": 1}),  # 1 means one writer, not 100 %
        (10, 0.5, 0, {"train": 5, "validation": 5, "test": 0}),
    ],
)
def test_counts_and_fractions(n, validation, test, expected):
    assignment = split_writers([f"w{i}" for i in range(n)], validation=validation, test=test, seed=3)
    assert split_counts(assignment) == expected


@pytest.mark.parametrize("n,validation,test", [(3, 1, 2), (2, 0.5, 0.5), (5, 0.6, 0.4), (4, -1, 1), (0, 0.15, 0.2)])
def test_not_enough_writers(n, validation, test):
    with pytest.raises(DatasetError):
        split_writers([str(i) for i in range(n)], validation=validation, test=test)


def test_natural_order_of_the_mapping():
    assignment = split_writers(["10", "2", "1", "B3", "B12"], validation=1, test=1)
    assert list(assignment) == ["1", "2", "10", "B3", "B12"]


def test_csv_round_trip(tmp_path):
    assignment = split_writers(WRITERS, seed=2)
    path = tmp_path / "sub" / "splits.csv"
    write_splits_csv(path, assignment, "CEDAR")
    assert read_splits_csv(path) == assignment
    lines = path.read_text().splitlines()
    assert lines[0] == "dataset,writer,split"
    assert all(line.startswith("CEDAR,") for line in lines[1:])
    assert len(lines) == len(WRITERS) + 1


def test_csv_errors(tmp_path):
    with pytest.raises(DatasetError, match="not found"):
        read_splits_csv(tmp_path / "missing.csv")
    bad_columns = tmp_path / "bad.csv"
    bad_columns.write_text("a,b\n1,2\n")
    with pytest.raises(DatasetError, match="not a split CSV"):
        read_splits_csv(bad_columns)
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    with pytest.raises(DatasetError):
        read_splits_csv(empty)
    bad_split = tmp_path / "bad_split.csv"
    bad_split.write_text("dataset,writer,split\nD,1,train\nD,2,holdout\n")
    with pytest.raises(DatasetError, match="holdout"):
        read_splits_csv(bad_split)


def test_select(synthetic_records):
    records = synthetic_records({"1": (2, 1), "2": (2, 0), "3": (1, 1)})
    assignment = {"1": "train", "2": "test", "3": "test"}
    assert {r.writer for r in select(records, assignment, "test")} == {"2", "3"}
    assert len(select(records, assignment, "train", "test")) == len(records)
    assert select(records, assignment, "validation") == []
    assert select(records, {"1": "train"}, "train", "test", "validation") == records[:3]  # unknown writers dropped


def test_real_gpds_split_is_writer_disjoint(gpds_root):
    records = read_dataset(gpds_root, name="GPDS")
    assignment = split_writers({r.writer for r in records}, validation=0.15, test=0.2, seed=0)
    assert len(assignment) == 150
    by_split = {s: select(records, assignment, s) for s in SPLITS}
    writer_sets = {s: {r.writer for r in recs} for s, recs in by_split.items()}
    assert not (writer_sets["train"] & writer_sets["validation"])
    assert not (writer_sets["train"] & writer_sets["test"])
    assert not (writer_sets["validation"] & writer_sets["test"])
    assert sum(len(v) for v in by_split.values()) == len(records) == 8100
    # the GPDS train/ and test/ folders do not decide the split: test writers bring their train/ images along
    assert any(r.path.startswith("train/") for r in by_split["test"])
    assert all(len([r for r in by_split["test"] if r.writer == w]) == 54 for w in writer_sets["test"])


# --- the committed splits of the six shared datasets ------------------------------------------------------------

SHARED_DATASETS = ("CEDAR", "GPDS", "BHSig260-Bengali", "BHSig260-Hindi", "SigComp2011-Dutch", "CNSig")
# the splits the shipped model was trained and calibrated with: they must never move (writer counts as committed)
FROZEN_SPLITS = {
    "CEDAR": {"train": 35, "validation": 10, "test": 10},
    "GPDS": {"train": 105, "validation": 15, "test": 30},
}
MIN_TEST_WRITERS = {"CNSig": 60}


@pytest.mark.parametrize("name", SHARED_DATASETS)
def test_committed_split_covers_every_writer_once(name, shared_datasets, repo_root):
    import csv

    root = shared_datasets / name
    if not root.is_dir():
        pytest.skip(f"{name} not found at {root}")
    split_file = repo_root / "image_pairs" / name / "splits.csv"
    with split_file.open(newline="") as f:
        rows = list(csv.DictReader(f))
    assert {row["dataset"] for row in rows} == {name}
    writers_in_csv = [row["writer"] for row in rows]
    assert len(writers_in_csv) == len(set(writers_in_csv)), "a writer is listed twice (possibly in two splits)"
    assert set(writers_in_csv) == {r.writer for r in read_dataset(root, name=name)}  # every writer folder, nothing else
    counts = split_counts(read_splits_csv(split_file))
    if name in FROZEN_SPLITS:  # CEDAR keeps its 10 test writers: the shipped model's figures were measured on them
        assert counts == FROZEN_SPLITS[name]
    else:
        assert counts["test"] >= MIN_TEST_WRITERS.get(name, 15)
        assert counts["validation"] >= 10
        assert counts["train"] > 0
