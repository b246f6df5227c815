"""End to end on real CEDAR writers: `train` -> `evaluate` -> `verify` through the CLI, kept short (< 60 s)."""

from __future__ import annotations

import hashlib
import json
import math
import time
from pathlib import Path

from sigml import cli
from sigml.modelcard import file_sha256
from sigml.preprocessing import PreprocessConfig

BLOCK_KEYS = {"eer", "auc", "accuracy", "far", "frr", "threshold", "n_genuine", "n_forged"}
# 8 of the 55 writers, written up front so the run never draws (or writes) a split in image_pairs/
SPLIT = {"1": "train", "2": "train", "3": "train", "4": "train", "5": "validation", "6": "validation", "7": "test", "8": "test"}


def _digest(folder: Path) -> str:
    h = hashlib.sha256()
    for p in sorted(folder.rglob("*")):
        if p.is_file():
            h.update(p.name.encode() + p.read_bytes())
    return h.hexdigest()


def test_train_evaluate_verify(tmp_path, cedar_root, repo_root, capsys):
    started = time.perf_counter()
    committed = repo_root / "image_pairs"
    before = _digest(committed) if committed.is_dir() else None
    splits = tmp_path / "splits"
    (splits / "CEDAR").mkdir(parents=True)
    split_file = splits / "CEDAR" / "splits.csv"
    split_file.write_text("dataset,writer,split\n" + "".join(f"CEDAR,{w},{s}\n" for w, s in SPLIT.items()))
    out = tmp_path / "model" / "tiny.safetensors"
    work = tmp_path / "work"

    # --- train ---------------------------------------------------------------------------------------------
    rc = cli.main([
        "train", "--data", f"CEDAR={cedar_root}", "--splits", str(splits), "--out", str(out), "--workdir", str(work),
        "--max-writers", "4", "--epochs", "1", "--steps-per-epoch", "3", "--writers-per-batch", "3",
        "--embedding-dim", "32", "--no-progress",
    ])
    assert rc == 0
    assert "validation pairwise EER" in capsys.readouterr().out
    assert out.is_file() and out.with_suffix(".json").is_file()
    assert {p.name for p in work.iterdir()} >= {"best.safetensors", "last.safetensors", "last.json", "history.json"}
    assert not [p for p in tmp_path.rglob("*") if p.suffix in {".pt", ".pth", ".pkl", ".pickle", ".tmp"}]  # no pickle

    card = json.loads(out.with_suffix(".json").read_text())
    assert isinstance(card["threshold"], float) and card["threshold"] > 0
    assert card["thresholds"]["pairwise"] == card["threshold"] and "reference_based" in card["thresholds"]
    assert set(card["calibration"]) == {"slope", "intercept"}
    assert card["preprocessing"] == PreprocessConfig().to_dict()
    assert card["architecture"]["embedding_dim"] == 32
    (source,) = card["data"]["sources"]
    assert source["name"] == "CEDAR" and source["split_file"] == str(split_file)
    assert source["writers"] == {"train": 4, "validation": 2, "test": 2}
    assert card["weights"]["sha256"] == file_sha256(out) and card["weights"]["dtype"] == "float16"
    assert card["version"] == f"siamese_resnet18@{file_sha256(out)[:8]}"
    assert card["training"]["epochs_run"] == 1
    assert card["metrics"]["validation"]["pairwise"]["n_genuine"] == 2 * 276  # 2 writers x C(24, 2)

    # --- evaluate ------------------------------------------------------------------------------------------
    report_path, plots = tmp_path / "report.json", tmp_path / "plots"
    rc = cli.main([
        "evaluate", "--model", str(out), "--data", str(cedar_root), "--writers", "test", "--references", "2,3",
        "--plots", str(plots), "--out", str(report_path), "--no-progress",
    ])
    assert rc == 0
    assert "reference K=3" in capsys.readouterr().out
    report = json.loads(report_path.read_text())
    assert report["n_writers"] == 2 and report["n_images"] == 96 and report["split_file"] == str(split_file)
    for name in ("pairwise", "reference_based"):
        block = report[name]
        assert BLOCK_KEYS <= set(block), name
        for key in ("eer", "auc", "accuracy", "far", "frr"):
            assert math.isfinite(block[key]) and 0.0 <= block[key] <= 1.0, (name, key, block[key])
        assert math.isfinite(block["threshold"])
    assert report["pairwise"]["n_genuine"] == 2 * 276 and report["pairwise"]["n_forged"] == 2 * 24 * 24
    assert report["reference_based"]["k"] == 3
    assert report["reference_based"]["n_genuine"] == 2 * 21 and report["reference_based"]["n_forged"] == 2 * 24
    assert report["pairwise"]["threshold"] == card["threshold"]
    assert sorted(p.name for p in plots.iterdir()) == ["pairwise.png", "reference_k2.png", "reference_k3.png"]
    assert all(p.stat().st_size > 1000 for p in plots.iterdir())

    # --- verify --------------------------------------------------------------------------------------------
    ref, questioned = cedar_root / "person_7" / "original" / "7_1.png", cedar_root / "person_7" / "forged" / "7_1.png"
    assert cli.main(["verify", "--model", str(out), str(ref), str(questioned)]) == 0
    printed = capsys.readouterr().out
    assert printed.split(":")[0] in {"GENUINE", "INCONCLUSIVE", "FORGED"} and "forged above" in printed
    assert card["version"] in printed

    if before is not None:
        assert _digest(committed) == before  # image_pairs/ untouched
    assert time.perf_counter() - started < 90, "the end-to-end test must stay short"
