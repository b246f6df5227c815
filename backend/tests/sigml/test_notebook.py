"""The helpers the notebooks use: sigml.notebook, TrainConfig.from_dict / load_train_config,
evaluate.embed_dataset and train(on_epoch=...)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from sigml.evaluate import embed_dataset, evaluate
from sigml.inference import Verifier
from sigml.model import ModelConfig
from sigml.notebook import ModelChoice, NotebookEnv, choose_model, find_repo_root, subset_split_file
from sigml.splits import read_splits_csv
from sigml.train import DataSource, TrainConfig, load_train_config, train


@pytest.fixture
def fake_repo(tmp_path: Path) -> Path:
    root = tmp_path / "repo"
    (root / "backend" / "sigml").mkdir(parents=True)
    (root / "notebooks").mkdir()
    return root


def test_find_repo_root(fake_repo, tmp_path, repo_root):
    assert find_repo_root(fake_repo / "notebooks") == fake_repo.resolve()
    assert find_repo_root(fake_repo) == fake_repo.resolve()
    assert find_repo_root(repo_root / "notebooks") == repo_root
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    with pytest.raises(RuntimeError, match="repository root"):
        find_repo_root(outside)


def test_environment_defaults(fake_repo):
    env = NotebookEnv.from_environ({}, start=fake_repo / "notebooks")
    assert env.root == fake_repo.resolve()
    assert env.data_dir == fake_repo.resolve() / "organized_data"
    assert env.workdir == fake_repo.resolve() / "runs" / "notebook"
    assert env.smoke is False
    assert "SIGVER_DATA_DIR" in env.describe() and "SIGVER_NOTEBOOK_SMOKE" in env.describe()


@pytest.mark.parametrize("value, smoke", [("1", True), ("true", True), (" YES ", True), ("on", True), ("0", False), ("", False), ("no", False)])
def test_smoke_flag(fake_repo, value, smoke):
    assert NotebookEnv.from_environ({"SIGVER_NOTEBOOK_SMOKE": value}, start=fake_repo).smoke is smoke


def test_paths_from_the_environment(fake_repo, tmp_path):
    data = tmp_path / "data"
    (data / "CEDAR").mkdir(parents=True)
    env = NotebookEnv.from_environ(
        {"SIGVER_DATA_DIR": str(data), "SIGVER_NOTEBOOK_WORKDIR": "scratch/nb", "SIGVER_MODEL_PATH": "m/x.safetensors"},
        start=fake_repo,
    )
    assert env.data_dir == data
    assert env.workdir == fake_repo.resolve() / "scratch" / "nb"  # relative to the repository root
    assert env.dataset_dir("CEDAR") == data / "CEDAR"
    with pytest.raises(FileNotFoundError, match="SIGVER_DATA_DIR"):
        env.dataset_dir("GPDS")
    assert env.path_from_env("SIGVER_MODEL_PATH") == fake_repo.resolve() / "m" / "x.safetensors"
    assert env.path_from_env("UNSET_VARIABLE") is None


def test_available_datasets(fake_repo, tmp_path):
    data = tmp_path / "data"
    for name in ("CNSig", "GPDS", "CEDAR"):
        (data / name).mkdir(parents=True)
    env = NotebookEnv.from_environ({"SIGVER_DATA_DIR": str(data)}, start=fake_repo)
    present, absent = env.available_datasets()
    assert list(present) == ["CEDAR", "GPDS", "CNSig"]  # the order asked for, not the folder's
    assert present["CNSig"] == data / "CNSig"
    assert absent == ["BHSig260-Bengali", "BHSig260-Hindi", "SigComp2011-Dutch"]
    assert env.available_datasets(["CNSig", "Other"], required=()) == ({"CNSig": data / "CNSig"}, ["Other"])
    with pytest.raises(FileNotFoundError, match="SIGVER_DATA_DIR"):  # CEDAR and GPDS are required
        NotebookEnv.from_environ({"SIGVER_DATA_DIR": str(data / "CNSig")}, start=fake_repo).available_datasets()


def test_pairs_out(fake_repo, tmp_path):
    scratch = tmp_path / "scratch"
    full = NotebookEnv.from_environ({}, start=fake_repo)
    smoke = NotebookEnv.from_environ({"SIGVER_NOTEBOOK_SMOKE": "1"}, start=fake_repo)
    assert full.pairs_out(scratch) == fake_repo.resolve() / "image_pairs"
    assert smoke.pairs_out(scratch) == scratch  # a smoke run never rewrites the committed manifests
    explicit = NotebookEnv.from_environ({"SIGVER_NOTEBOOK_SMOKE": "1", "SIGVER_NOTEBOOK_PAIRS_OUT": str(tmp_path / "p")}, start=fake_repo)
    assert explicit.pairs_out(scratch) == tmp_path / "p"


def test_choose_model(test_model_path, tmp_path):
    missing = tmp_path / "shipped.safetensors"
    # the shipped model in a full run; the fallback in smoke mode or when it is absent
    assert choose_model(test_model_path, smoke=False, fallbacks=[missing]) == ModelChoice(test_model_path, None)
    smoke = choose_model(test_model_path, smoke=True, fallbacks=[missing, test_model_path])
    assert smoke.path == test_model_path and "smoke mode" in smoke.note
    absent = choose_model(missing, smoke=False, fallbacks=[test_model_path])
    assert absent.path == test_model_path and "not found" in absent.note
    # nothing trained: an untrained test model, and the note says so
    made = choose_model(missing, smoke=True, fallbacks=[missing], scratch=tmp_path / "made")
    assert made.path.is_file() and made.path.parent == tmp_path / "made" and "UNTRAINED" in made.note
    Verifier.from_files(made.path)
    # an explicit model wins in every mode, and must exist
    assert choose_model(missing, smoke=True, explicit=test_model_path).path == test_model_path
    with pytest.raises(FileNotFoundError, match="SIGVER_MODEL_PATH"):
        choose_model(test_model_path, smoke=False, explicit=missing)


def test_subset_split_file(tmp_path):
    path = subset_split_file(["3", "1"], tmp_path / "s" / "splits.csv", "D")
    assert read_splits_csv(path) == {"3": "test", "1": "test"}
    assert path.read_text().splitlines()[1] == "D,3,test"
    with pytest.raises(ValueError):
        subset_split_file([], tmp_path / "empty.csv", "D")


@pytest.mark.parametrize("card_name, config_name", [
    ("siamese_resnet18.json", "ms_full.json"),
    ("cedar_gpds.json", "cedar_gpds.json"),
    ("gpds_only.json", "gpds_only_triplet.json"),
])
def test_the_shipped_model_was_trained_with_the_committed_config(repo_root, card_name, config_name):
    """The configs the README's retrain commands use must be the shipped cards' configs."""
    card = json.loads((repo_root / "trained_model_parameters" / card_name).read_text())
    shipped = card["training"]["config"]
    committed = json.loads(json.dumps(load_train_config(repo_root / "configs" / config_name).to_dict()))
    # a field added after the model was trained is absent from its card: the code's default is what it ran with
    defaults = json.loads(json.dumps(TrainConfig().to_dict()))
    # threads, workers and bf16 (None: where the processor runs it natively) are the machine's settings, not the recipe
    machine = {"preprocessing", "threads", "workers", "bf16"}

    def as_trained(key):  # nested blocks (model, augment) too: a field added later has the code's default
        value = shipped.get(key, defaults[key])
        return {**defaults[key], **value} if isinstance(value, dict) and isinstance(defaults[key], dict) else value

    differing = {k for k in committed if k not in machine and committed[k] != as_trained(k)}
    assert not differing, f"configs/{config_name} differs from the shipped model card {card_name} in {sorted(differing)}"


def test_load_train_config(repo_root, tmp_path):
    cfg = load_train_config(repo_root / "configs" / "cedar_gpds.json")
    data = json.loads((repo_root / "configs" / "cedar_gpds.json").read_text())
    assert cfg.epochs == data["epochs"] and cfg.steps_per_epoch == data["steps_per_epoch"]
    assert cfg.model.embedding_dim == data["model"]["embedding_dim"]
    assert load_train_config(repo_root / "configs" / "cedar_gpds.json", epochs=1, threads=1).epochs == 1
    # the JSON form of a config (what the model card stores) round-trips; its preprocessing is ignored
    custom = TrainConfig(epochs=3, model=ModelConfig(embedding_dim=16, hidden_dim=32))
    custom_dict = json.loads(json.dumps(custom.to_dict()))
    assert TrainConfig.from_dict(custom_dict) == custom
    (tmp_path / "c.json").write_text(json.dumps({"epochs": 2, "augment": {"enabled": False}}))
    loaded = load_train_config(tmp_path / "c.json")
    assert loaded.epochs == 2 and loaded.augment.enabled is False and loaded.model == ModelConfig()
    with pytest.raises(TypeError):
        TrainConfig.from_dict({"no_such_field": 1})


def test_embed_dataset_is_what_evaluate_scores(verifier, make_generic_dataset, tmp_path):
    root = make_generic_dataset("ED", writers=3, genuine=3, forged=1)
    split = tmp_path / "splits.csv"
    split.write_text("dataset,writer,split\nED,1,train\nED,2,test\nED,3,test\n")
    records, emb, split_path = embed_dataset(verifier, root, writers="test", split_file=str(split), progress=False)
    assert split_path == split
    assert {r.writer for r in records} == {"2", "3"} and len(records) == 8
    assert emb.shape == (8, verifier.card.architecture.embedding_dim) and np.isfinite(emb).all()
    everyone, emb_all, none = embed_dataset(verifier, root, writers="all", progress=False)
    assert none is None and len(everyone) == 12 and emb_all.shape[0] == 12
    report = evaluate(verifier, root, writers="test", split_file=str(split), references=(1,), progress=False)
    assert report["n_images"] == len(records)


def test_train_calls_on_epoch(make_generic_dataset, tmp_path):
    root = make_generic_dataset("OE", writers=5, genuine=3, forged=1)
    split = tmp_path / "splits.csv"
    split.write_text("dataset,writer,split\n" + "".join(f"OE,{w},{s}\n" for w, s in
                                                        [(1, "train"), (2, "train"), (3, "validation"), (4, "validation"), (5, "test")]))
    seen: list[list[dict]] = []
    cfg = TrainConfig(epochs=2, steps_per_epoch=1, warmup_steps=1, writers_per_batch=2, genuine_per_writer=2, forged_per_writer=1,
                      validation_references=1, threads=1, bf16=False, model=ModelConfig(embedding_dim=8, hidden_dim=16))
    out = tmp_path / "m" / "oe.safetensors"
    train([DataSource("OE", str(root), split_file=str(split))], out, cfg, workdir=tmp_path / "work", progress=False, on_epoch=seen.append)
    assert [len(h) for h in seen] == [1, 2]
    assert [h["epoch"] for h in seen[-1]] == [1, 2]
    assert seen[-1] == json.loads((tmp_path / "work" / "history.json").read_text())
    assert {"loss", "val_eer"} <= set(seen[-1][0])
