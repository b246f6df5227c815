"""sigml.evaluate: split resolution, writer selection, the report, plots and the model-card update."""

from __future__ import annotations

import json
import math
import shutil

import pytest

from sigml.datasets import read_dataset
from sigml.errors import DatasetError
from sigml.evaluate import evaluate, resolve_split_file, select_writers, update_card, write_report
from sigml.modelcard import ModelCard, card_path_for

METRIC_KEYS = {"eer", "eer_threshold", "auc", "threshold", "accuracy", "far", "frr", "n_genuine", "n_forged", "n_writers"}


@pytest.fixture
def dataset(make_generic_dataset, tmp_path):
    root = make_generic_dataset("EV", writers=4, genuine=4, forged=2)
    split = tmp_path / "splits.csv"
    split.write_text("dataset,writer,split\nEV,1,train\nEV,2,validation\nEV,3,test\nEV,4,test\n")
    return root, split


def test_resolve_split_file(tmp_path):
    card_data = {"sources": [{"name": "A", "split_file": "a.csv"}, {"name": "B", "split_file": None}]}
    assert str(resolve_split_file(card_data, "A", None)) == "a.csv"
    assert str(resolve_split_file(card_data, "B", "explicit.csv")) == "explicit.csv"
    with pytest.raises(DatasetError, match="no split file"):
        resolve_split_file(card_data, "B", None)
    with pytest.raises(DatasetError, match="no split file"):
        resolve_split_file({}, "C", None)


def test_select_writers(dataset):
    root, split = dataset
    records = read_dataset(root, name="EV")
    assert select_writers(records, "all", None) == records
    assert {r.writer for r in select_writers(records, "test", split)} == {"3", "4"}
    assert {r.writer for r in select_writers(records, "train", split)} == {"1"}
    other = split.parent / "other.csv"
    other.write_text("dataset,writer,split\nEV,99,test\n")
    with pytest.raises(DatasetError, match="no test writers"):
        select_writers(records, "test", other)


def test_report(verifier, dataset, tmp_path):
    root, split = dataset
    report = evaluate(verifier, root, writers="test", split_file=str(split), references=(2, 3, 10), plots_dir=tmp_path / "plots", progress=False)
    assert report["dataset"] == "EV" and report["n_writers"] == 2 and report["n_images"] == 12
    assert report["split_file"] == str(split)
    assert report["model_version"] == verifier.model_version
    for block in (report["pairwise"], report["random_forgeries"], report["reference_based"]):
        assert METRIC_KEYS <= set(block)
        for key in ("eer", "auc", "accuracy", "far", "frr"):
            assert 0.0 <= block[key] <= 1.0 and math.isfinite(block[key])
    assert report["pairwise"]["threshold"] == verifier.card.threshold  # the shipped threshold, not the EER one
    assert report["pairwise"]["n_genuine"] == 2 * 6 and report["pairwise"]["n_forged"] == 2 * 8
    assert set(report["reference_based_by_k"]) == {"2", "3"}  # K=10 > 4 genuine: skipped
    assert report["reference_based"]["k"] == 3
    assert report["reference_based"]["n_genuine"] == 2 * 1 and report["reference_based"]["n_forged"] == 2 * 2
    assert set(report["worst_errors"]) == {"false_accepts", "false_rejects"}
    assert sorted(p.name for p in (tmp_path / "plots").iterdir()) == ["pairwise.png", "reference_k2.png", "reference_k3.png"]
    out = tmp_path / "r" / "report.json"
    write_report(report, out)
    assert json.loads(out.read_text()) == json.loads(json.dumps(report))


def test_evaluate_all_writers_needs_no_split(verifier, dataset):
    root, _ = dataset
    report = evaluate(verifier, root, writers="all", references=(2,), progress=False)
    assert report["n_writers"] == 4 and report["split_file"] is None


def test_evaluate_a_single_test_writer(verifier, make_generic_dataset, tmp_path):
    root = make_generic_dataset("ONE", writers=3, genuine=4, forged=2)
    split = tmp_path / "splits.csv"
    split.write_text("dataset,writer,split\nONE,1,train\nONE,2,validation\nONE,3,test\n")
    report = evaluate(verifier, root, writers="test", split_file=str(split), references=(2,), progress=False)
    assert report["n_writers"] == 1
    assert 0.0 <= report["pairwise"]["eer"] <= 1.0


def test_update_card(tmp_path, test_model_path, verifier, dataset):
    weights = tmp_path / "m.safetensors"
    shutil.copy(test_model_path, weights)
    shutil.copy(card_path_for(test_model_path), card_path_for(weights))
    root, split = dataset
    report = evaluate(verifier, root, writers="test", split_file=str(split), references=(2,), progress=False)
    update_card(weights, "EV_test", report)
    card = ModelCard.load(card_path_for(weights))
    stored = card.metrics["EV_test"]
    assert stored["pairwise"]["eer"] == report["pairwise"]["eer"]
    assert stored["n_images"] == 12 and "worst_errors" not in stored
    assert card.threshold == verifier.card.threshold  # nothing else changed
