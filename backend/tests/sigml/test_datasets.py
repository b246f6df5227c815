"""sigml.datasets: layouts, detection, errors, importers of raw downloads, and the real CEDAR/GPDS facts."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from sigml.datasets import (
    IMPORT_CHOICES,
    LAYOUT_CHOICES,
    SignatureRecord,
    detect_layout,
    import_raw,
    read_dataset,
)
from sigml.errors import DatasetError


def per_writer(records: list[SignatureRecord]) -> dict[str, Counter]:
    out: dict[str, Counter] = {}
    for r in records:
        out.setdefault(r.writer, Counter())[r.label] += 1
    return out


# --- synthetic folders of each layout ----------------------------------------------------------------


@pytest.fixture
def cedar_dir(tmp_path, write_signature) -> Path:
    root = tmp_path / "CEDAR"
    for w in (1, 2, 10):
        for m in (1, 2, 3):
            write_signature(root / f"person_{w}" / "original" / f"{w}_{m}.png", seed=w * 10 + m)
        for m in (1, 2):
            write_signature(root / f"person_{w}" / "forged" / f"{w}_{m}.png", seed=w * 10 + 5 + m)
    (root / "person_1" / "original" / "Thumbs.db").write_bytes(b"junk")  # not an image: ignored
    (root / "README.txt").write_text("not a writer")
    return root


@pytest.fixture
def gpds_dir(tmp_path, write_signature) -> Path:
    root = tmp_path / "GPDS"
    for w in (1, 2, 3):
        for m in (1, 2):
            write_signature(root / "train" / str(w) / "genuine" / f"{w}-{m}.jpg", seed=w * 10 + m)
            write_signature(root / "train" / str(w) / "forge" / f"{w}-{m}.jpg", seed=w * 10 + 5 + m)
        write_signature(root / "test" / str(w) / "genuine" / f"{w}-17.jpg", seed=w * 10 + 3)
        for m in (17, 18):
            write_signature(root / "test" / str(w) / "forge" / f"{w}-{m}.jpg", seed=w * 10 + m)
    return root


@pytest.fixture
def generic_dir(make_generic_dataset) -> Path:
    root = make_generic_dataset("GEN", writers=3, genuine=3, forged=1)
    (root / "2" / "genuine" / "notes.txt").write_text("ignored")
    (root / "2" / "genuine" / "UPPER.PNG").write_bytes((root / "2" / "genuine" / "2_1.png").read_bytes())
    return root


def test_cedar_layout(cedar_dir):
    assert detect_layout(cedar_dir) == "cedar"
    records = read_dataset(cedar_dir)
    assert [r.writer for r in records[::5]] == ["1", "2", "10"]  # natural order of person_N
    counts = per_writer(records)
    assert set(counts) == {"1", "2", "10"}
    assert all(c == Counter(genuine=3, forged=2) for c in counts.values())
    assert all(r.dataset == "CEDAR" for r in records)
    r = records[0]
    assert r.path == "person_1/original/1_1.png" and r.genuine and r.label == "genuine"
    assert all((cedar_dir / r.path).is_file() for r in records)
    assert all(("/original/" in r.path) == r.genuine for r in records)


def test_gpds_layout_merges_train_and_test_by_writer(gpds_dir):
    assert detect_layout(gpds_dir) == "gpds"
    records = read_dataset(gpds_dir, name="G")
    counts = per_writer(records)
    assert set(counts) == {"1", "2", "3"}
    assert all(c == Counter(genuine=3, forged=4) for c in counts.values())
    for w in counts:  # one writer, both halves
        halves = {r.path.split("/")[0] for r in records if r.writer == w}
        assert halves == {"train", "test"}
    assert all(r.dataset == "G" for r in records)
    assert all(("/forge/" in r.path) == (not r.genuine) for r in records)


def test_generic_layout(generic_dir):
    assert detect_layout(generic_dir) == "generic"
    records = read_dataset(generic_dir, "generic")
    counts = per_writer(records)
    assert counts["1"] == Counter(genuine=3, forged=1)
    assert counts["2"] == Counter(genuine=4, forged=1)  # UPPER.PNG counted, notes.txt not
    assert not any(r.path.endswith(".txt") for r in records)


def test_explicit_layout_overrides_detection(cedar_dir):
    with pytest.raises(DatasetError, match="no genuine signatures"):
        read_dataset(cedar_dir, "generic")  # generic reads person_N/forged/ but finds no genuine/ folder
    with pytest.raises(DatasetError, match="no signature images"):
        read_dataset(cedar_dir, "gpds")


def test_records_are_hashable_and_ordered(cedar_dir):
    records = read_dataset(cedar_dir)
    assert len(set(records)) == len(records)
    assert sorted(records) == sorted(reversed(records))


# --- errors ----------------------------------------------------------------------------------------------------


def test_missing_folder(tmp_path):
    with pytest.raises(DatasetError, match="not found"):
        read_dataset(tmp_path / "nope")
    with pytest.raises(DatasetError, match="not found"):
        detect_layout(tmp_path / "nope")


def test_empty_folder(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(DatasetError, match="cannot recognise"):
        read_dataset(tmp_path / "empty")


def test_unknown_folder_structure(tmp_path, write_signature):
    write_signature(tmp_path / "junk" / "a" / "b" / "x.png", seed=1)
    with pytest.raises(DatasetError) as info:
        read_dataset(tmp_path / "junk")
    assert "cedar" in str(info.value) and "generic" in str(info.value)  # the message lists the known layouts


def test_unknown_layout_name(cedar_dir):
    with pytest.raises(DatasetError, match="unknown layout"):
        read_dataset(cedar_dir, "bhsig")


def test_folder_with_no_genuine(tmp_path, write_signature):
    root = tmp_path / "forgeries_only"
    (root / "1" / "genuine").mkdir(parents=True)
    write_signature(root / "1" / "forged" / "1.png", seed=1)
    with pytest.raises(DatasetError, match="no genuine"):
        read_dataset(root)


def test_dataset_error_is_a_value_error(tmp_path):
    with pytest.raises(ValueError):
        read_dataset(tmp_path / "nope")


def test_layout_choices():
    assert LAYOUT_CHOICES == ("auto", "cedar", "gpds", "generic")


# --- importers ----------------------------------------------------------------------------------------------------


def test_import_cedar(tmp_path, write_signature):
    raw = tmp_path / "raw"
    for name in ("full_org/original_3_1.png", "full_org/original_3_2.png", "full_org/original_12_1.png",
                 "full_forg/forgeries_3_1.png", "full_forg/forgeries_12_1.png"):
        write_signature(raw / name, seed=len(name))
    (raw / "full_org" / "Thumbs.db").write_bytes(b"x")
    n = import_raw("cedar", raw, tmp_path / "out")
    assert n == 5
    records = read_dataset(tmp_path / "out", "generic")
    assert detect_layout(tmp_path / "out") == "generic"
    assert per_writer(records) == {"3": Counter(genuine=2, forged=1), "12": Counter(genuine=1, forged=1)}
    assert {r.path for r in records} >= {"3/genuine/3_1.png", "3/forged/3_1.png", "12/genuine/12_1.png"}


def test_import_gpds(tmp_path, write_signature):
    raw = tmp_path / "raw"
    for name in ("001/c-001-01.jpg", "001/c-001-02.jpg", "001/cf-001-01.jpg", "002/c-002-01.jpg", "002/cf-002-05.jpg"):
        write_signature(raw / name, seed=len(name))
    assert import_raw("gpds", raw, tmp_path / "out") == 5
    records = read_dataset(tmp_path / "out", "generic")
    assert per_writer(records) == {"1": Counter(genuine=2, forged=1), "2": Counter(genuine=1, forged=1)}
    assert "2/forged/2_5.jpg" in {r.path for r in records}


def test_import_bhsig(tmp_path, write_signature):
    raw = tmp_path / "raw"
    for name in ("Bengali/001/B-S-1-G-01.tif", "Bengali/001/B-S-1-G-02.tif", "Bengali/001/B-S-1-F-01.tif",
                 "Hindi/012/H-S-12-G-01.tif", "Hindi/012/H-S-12-F-03.tif", "Hindi/001/H-S-1-G-01.tif"):
        write_signature(raw / name, seed=len(name))
    assert import_raw("bhsig", raw, tmp_path / "out") == 6
    records = read_dataset(tmp_path / "out", "generic")
    # the script prefix keeps Bengali writer 1 and Hindi writer 1 apart
    assert per_writer(records) == {
        "B1": Counter(genuine=2, forged=1),
        "H1": Counter(genuine=1),
        "H12": Counter(genuine=1, forged=1),
    }
    assert "H12/forged/H12_3.tif" in {r.path for r in records}


def test_import_errors(tmp_path, write_signature):
    assert IMPORT_CHOICES == ("cedar", "gpds", "bhsig")
    with pytest.raises(DatasetError, match="unknown raw dataset kind"):
        import_raw("mcyt", tmp_path, tmp_path / "out")
    with pytest.raises(DatasetError, match="not found"):
        import_raw("cedar", tmp_path / "missing", tmp_path / "out")
    write_signature(tmp_path / "raw" / "signature.png", seed=1)
    with pytest.raises(DatasetError, match="no cedar signature files"):
        import_raw("cedar", tmp_path / "raw", tmp_path / "out")


# --- real data ----------------------------------------------------------------------------------------------------


def test_real_cedar(cedar_root):
    assert detect_layout(cedar_root) == "cedar"
    records = read_dataset(cedar_root, name="CEDAR")
    counts = per_writer(records)
    assert len(counts) == 55
    assert sum(r.genuine for r in records) == 1320
    assert sum(not r.genuine for r in records) == 1320
    assert all(c == Counter(genuine=24, forged=24) for c in counts.values())
    assert set(counts) == {str(i) for i in range(1, 56)}


def test_real_gpds_merged_by_writer(gpds_root):
    assert detect_layout(gpds_root) == "gpds"
    records = read_dataset(gpds_root, name="GPDS")
    counts = per_writer(records)
    assert len(records) == 8100
    assert len(counts) == 150
    assert all(c == Counter(genuine=24, forged=30) for c in counts.values())
    halves: dict[str, set] = {}
    for r in records:
        halves.setdefault(r.writer, set()).add(r.path.split("/")[0])
    assert all(h == {"train", "test"} for h in halves.values())  # every writer spans both folders
