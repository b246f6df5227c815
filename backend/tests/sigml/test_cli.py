"""sigml.cli: exit codes and one-line errors, and the pairs / import / verify / evaluate commands."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from sigml import cli
from sigml.testing import image_bytes, signature_image

BACKEND = Path(__file__).resolve().parents[2]


def run(argv: list[str]) -> int:
    return cli.main([str(a) for a in argv])


def one_line_error(capsys) -> str:
    err = capsys.readouterr().err
    assert "Traceback" not in err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("error: ")
    return lines[0]


@pytest.fixture
def images(tmp_path) -> tuple[Path, Path]:
    a, b = tmp_path / "a.png", tmp_path / "b.jpg"
    a.write_bytes(image_bytes(signature_image(seed=1)))
    b.write_bytes(image_bytes(signature_image(seed=2), "JPEG"))
    return a, b


# --- subprocess ----------------------------------------------------------------------------------------------


def _subprocess(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(BACKEND)}
    return subprocess.run([sys.executable, "-m", "sigml", *args], capture_output=True, text=True, timeout=120, cwd=BACKEND, env=env)


def test_module_help_in_a_subprocess():
    proc = _subprocess("--help")
    assert proc.returncode == 0, proc.stderr
    assert "usage: python -m sigml" in proc.stdout
    for command in ("import", "pairs", "train", "evaluate", "verify"):
        assert command in proc.stdout


def test_verify_error_in_a_subprocess_has_no_traceback(tmp_path, images):
    proc = _subprocess("verify", "--model", str(tmp_path / "missing.safetensors"), str(images[0]), str(images[1]))
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    assert proc.stderr.strip().splitlines()[-1].startswith("error: cannot load model from")


# --- verify --------------------------------------------------------------------------------------------------


def test_verify_prints_the_decision(capsys, test_model_path, images):
    assert run(["verify", "--model", test_model_path, *images]) == 0
    out = capsys.readouterr().out
    assert out.split(":")[0] in {"GENUINE", "INCONCLUSIVE", "FORGED"} and "score " in out
    assert "genuine at or below 0.5000, forged above 0.5000" in out and "EER threshold 0.5000" in out
    assert "similarity" not in out and "verdict" not in out.lower()


def test_verify_json(capsys, test_model_path, images):
    assert run(["verify", "--model", test_model_path, "--json", *images]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["decision"] in {"genuine", "inconclusive", "forged"}
    assert not {"verdict", "similarity", "match"} & set(result)


def test_verify_missing_image(capsys, tmp_path, test_model_path, images):
    assert run(["verify", "--model", test_model_path, images[0], tmp_path / "nope.png"]) == 2
    assert "nope.png" in one_line_error(capsys)


def test_verify_non_image(capsys, tmp_path, test_model_path, images):
    text = tmp_path / "notes.txt"
    text.write_text("hello")
    assert run(["verify", "--model", test_model_path, text, images[1]]) == 2
    one_line_error(capsys)


def test_verify_blank_image(capsys, tmp_path, test_model_path, images):
    blank = tmp_path / "blank.png"
    blank.write_bytes(image_bytes(signature_image(seed=0, paper=250, ink=250)))
    assert run(["verify", "--model", test_model_path, images[0], blank]) == 2
    assert "no signature" in one_line_error(capsys)


def test_verify_missing_model(capsys, tmp_path, images):
    model = tmp_path / "missing.safetensors"
    assert run(["verify", "--model", model, *images]) == 2
    line = one_line_error(capsys)
    assert str(model) in line


# --- pairs ------------------------------------------------------------------------------------------------------


def test_pairs_on_an_empty_folder(capsys, tmp_path):
    (tmp_path / "empty").mkdir()
    assert run(["pairs", "--data", tmp_path / "empty", "--out", tmp_path / "out"]) == 2
    one_line_error(capsys)
    assert not (tmp_path / "out").exists()


def test_pairs_on_a_missing_folder(capsys, tmp_path):
    assert run(["pairs", "--data", tmp_path / "missing", "--out", tmp_path / "out"]) == 2
    assert "not found" in one_line_error(capsys)


def test_pairs_writes_the_manifests(capsys, tmp_path, make_generic_dataset):
    root = make_generic_dataset("SYN", writers=10, genuine=4, forged=2)
    out = tmp_path / "manifests"
    argv = ["pairs", "--data", root, "--out", out, "--validation-writers", "2", "--test-writers", "2", "--seed", "1"]
    assert run(argv) == 0
    assert sorted(p.name for p in out.iterdir()) == ["pairs_test.csv", "pairs_train.csv", "pairs_validation.csv", "splits.csv"]
    with (out / "splits.csv").open() as fh:
        split_of = {r["writer"]: r["split"] for r in csv.DictReader(fh)}
    assert len(split_of) == 10
    assert sorted(split_of.values()).count("test") == 2 and sorted(split_of.values()).count("validation") == 2
    for split in ("train", "validation", "test"):
        with (out / f"pairs_{split}.csv").open() as fh:
            rows = list(csv.DictReader(fh))
        assert rows
        assert all(split_of[r["writer_a"]] == split == split_of[r["writer_b"]] == r["split"] for r in rows)
        assert {r["kind"] for r in rows} == {"genuine", "skilled", "random"}
        assert all((root / r["path_a"]).is_file() and (root / r["path_b"]).is_file() for r in rows)
    assert "SYN: 60 images" in capsys.readouterr().out
    first = (out / "pairs_train.csv").read_text()
    assert run(argv) == 0
    assert (out / "pairs_train.csv").read_text() == first  # deterministic


def test_pairs_with_too_few_writers(capsys, tmp_path, make_generic_dataset):
    root = make_generic_dataset("TWO", writers=2)
    assert run(["pairs", "--data", root, "--out", tmp_path / "o", "--validation-writers", "1", "--test-writers", "1"]) == 2
    assert "cannot split" in one_line_error(capsys)


# --- import --------------------------------------------------------------------------------------------------------


def test_import_command(capsys, tmp_path, write_signature):
    raw = tmp_path / "raw"
    for name in ("full_org/original_1_1.png", "full_org/original_1_2.png", "full_forg/forgeries_1_1.png"):
        write_signature(raw / name, seed=len(name))
    assert run(["import", "cedar", raw, tmp_path / "out"]) == 0
    assert "imported 3 images" in capsys.readouterr().out
    assert (tmp_path / "out" / "1" / "forged" / "1_1.png").is_file()
    assert run(["import", "gpds", raw, tmp_path / "out2"]) == 2  # no GPDS names here
    one_line_error(capsys)


def test_import_unknown_kind_is_an_argparse_error(capsys, tmp_path):
    with pytest.raises(SystemExit) as info:
        run(["import", "mcyt", tmp_path, tmp_path / "out"])
    assert info.value.code == 2
    assert "invalid choice" in capsys.readouterr().err


# --- evaluate / train argument errors ----------------------------------------------------------------------------


def test_evaluate_unknown_layout_is_an_argparse_error(capsys, tmp_path, test_model_path):
    with pytest.raises(SystemExit) as info:
        run(["evaluate", "--model", test_model_path, "--data", tmp_path, "--layout", "bhsig", "--out", tmp_path / "r.json"])
    assert info.value.code == 2
    assert "invalid choice: 'bhsig'" in capsys.readouterr().err


def test_no_command_is_an_argparse_error(capsys):
    with pytest.raises(SystemExit) as info:
        run([])
    assert info.value.code == 2


def test_evaluate_missing_model(capsys, tmp_path):
    assert run(["evaluate", "--model", tmp_path / "m.safetensors", "--data", tmp_path, "--out", tmp_path / "r.json"]) == 2
    one_line_error(capsys)


def test_evaluate_missing_data(capsys, tmp_path, test_model_path):
    assert run(["evaluate", "--model", test_model_path, "--data", tmp_path / "none", "--writers", "all", "--out", tmp_path / "r.json"]) == 2
    assert "not found" in one_line_error(capsys)


def test_evaluate_without_a_split_file(capsys, tmp_path, test_model_path, make_generic_dataset):
    root = make_generic_dataset("NOSPLIT", writers=2)
    assert run(["evaluate", "--model", test_model_path, "--data", root, "--out", tmp_path / "r.json"]) == 2
    assert "no split file" in one_line_error(capsys)


def test_train_missing_data(capsys, tmp_path):
    argv = ["train", "--data", f"X={tmp_path / 'none'}", "--splits", tmp_path / "splits", "--out", tmp_path / "m.safetensors",
            "--workdir", tmp_path / "work", "--no-progress"]
    assert run(argv) == 2
    assert "not found" in one_line_error(capsys)


def test_train_missing_config(capsys, tmp_path):
    argv = ["train", "--data", str(tmp_path), "--config", tmp_path / "missing.json", "--out", tmp_path / "m.safetensors"]
    assert run(argv) == 2
    one_line_error(capsys)


def test_train_passes_the_whole_config_file_to_training(monkeypatch, tmp_path):
    """Every block of a config file (model, augment, preprocessing) and the flags reach `train` (a CLI that
    dropped `preprocessing` once trained a "gray ink" experiment with the default ink)."""
    import sigml.train

    seen = {}

    def fake_train(sources, out, cfg, **kwargs):
        seen["cfg"] = cfg
        raise SystemExit(0)

    monkeypatch.setattr(sigml.train, "train", fake_train)
    config = tmp_path / "c.json"
    config.write_text(json.dumps({"epochs": 3, "aux_writer_weight": 0.5, "model": {"embedding_dim": 64},
                                  "augment": {"intensity_jitter": 0.0}, "preprocessing": {"ink": "gray"}}))
    with pytest.raises(SystemExit):
        run(["train", "--config", config, "--data", f"X={tmp_path}", "--out", tmp_path / "m.safetensors", "--lr", "0.01",
             "--no-augment", "--no-progress"])
    cfg = seen["cfg"]
    assert (cfg.epochs, cfg.aux_writer_weight, cfg.lr) == (3, 0.5, 0.01)
    assert cfg.model.embedding_dim == 64
    assert cfg.augment.intensity_jitter == 0.0 and cfg.augment.enabled is False
    assert cfg.preprocessing.ink == "gray"


def test_evaluate_command_on_a_synthetic_dataset(capsys, tmp_path, test_model_path, make_generic_dataset):
    root = make_generic_dataset("EVAL", writers=4, genuine=4, forged=2)
    split = tmp_path / "splits.csv"
    split.write_text("dataset,writer,split\nEVAL,1,train\nEVAL,2,validation\nEVAL,3,test\nEVAL,4,test\n")
    out = tmp_path / "report.json"
    argv = ["evaluate", "--model", test_model_path, "--data", root, "--split-file", split, "--writers", "test",
            "--references", "2,3", "--out", out, "--no-progress"]
    assert run(argv) == 0
    report = json.loads(out.read_text())
    assert (report["n_writers"], report["n_images"], report["writers"]) == (2, 12, "test")
    assert set(report["reference_based_by_k"]) == {"2", "3"}
    assert report["reference_based"]["k"] == 3
    printed = capsys.readouterr().out
    assert "pairwise" in printed and "reference K=2" in printed and f"report -> {out}" in printed


def test_evaluate_command_with_a_single_test_writer(tmp_path, test_model_path, make_generic_dataset):
    root = make_generic_dataset("ONE", writers=3, genuine=4, forged=2)
    split = tmp_path / "splits.csv"
    split.write_text("dataset,writer,split\nONE,1,train\nONE,2,validation\nONE,3,test\n")
    out = tmp_path / "report.json"
    argv = ["evaluate", "--model", test_model_path, "--data", root, "--split-file", split, "--references", "2",
            "--out", out, "--no-progress"]
    assert run(argv) == 0
    assert json.loads(out.read_text())["n_writers"] == 1
