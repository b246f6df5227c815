"""sigml.train building blocks (no training here; see test_train_evaluate_e2e.py for the real run)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from sigml.errors import DatasetError
from sigml.splits import read_splits_csv, write_splits_csv
from sigml.calibration import platt
from sigml.train import BatchSampler, DataSource, TrainConfig, lr_at, prepare_data


def test_prepare_data_makes_and_stores_the_split(make_generic_dataset, tmp_path):
    root = make_generic_dataset("PD", writers=12, genuine=2, forged=1)
    split_dir = tmp_path / "splits"
    data = prepare_data([DataSource("PD", str(root), validation=2, test=3)], seed=0, split_dir=split_dir)
    split_file = split_dir / "PD" / "splits.csv"
    assert split_file.is_file()
    assignment = read_splits_csv(split_file)
    assert data.assignments["PD"] == assignment
    assert sorted(assignment.values()).count("test") == 3
    assert data.sources[0]["split_file"] == str(split_file)
    assert data.sources[0]["writers"] == {"train": 7, "validation": 2, "test": 3}
    train, val, test = (data.split(s) for s in ("train", "validation", "test"))
    assert len(train) + len(val) + len(test) == len(data.records) == 36
    writer_sets = [{r.writer for r in part} for part in (train, val, test)]
    assert not (writer_sets[0] & writer_sets[1]) and not (writer_sets[0] & writer_sets[2]) and not (writer_sets[1] & writer_sets[2])
    # a second run reads the stored split instead of drawing a new one
    again = prepare_data([DataSource("PD", str(root), split_file=str(split_file))], seed=123, split_dir=None)
    assert again.assignments["PD"] == assignment


def test_prepare_data_max_writers(make_generic_dataset, tmp_path):
    root = make_generic_dataset("MW", writers=20, genuine=2, forged=0)
    data = prepare_data([DataSource("MW", str(root), validation=5, test=5)], seed=0, split_dir=tmp_path, max_writers=4)
    counts = data.sources[0]["writers"]
    assert counts == {"train": 4, "validation": 2, "test": 2}
    assert len(read_splits_csv(tmp_path / "MW" / "splits.csv")) == 20  # the stored split covers every writer


def test_prepare_data_rejects_an_incomplete_split_file(make_generic_dataset, tmp_path):
    root = make_generic_dataset("INC", writers=4, genuine=2, forged=0)
    split_file = tmp_path / "splits.csv"
    write_splits_csv(split_file, {"1": "train", "2": "validation"}, "INC")
    with pytest.raises(DatasetError, match="not in its split file"):
        prepare_data([DataSource("INC", str(root), split_file=str(split_file))], seed=0, split_dir=None)


def test_lr_schedule():
    cfg = TrainConfig(lr=1e-3, warmup_steps=10)
    assert lr_at(0, 100, cfg) == pytest.approx(1e-4)
    assert lr_at(9, 100, cfg) == pytest.approx(1e-3)
    assert lr_at(10, 100, cfg) == pytest.approx(1e-3)
    assert lr_at(55, 100, cfg) == pytest.approx(5e-4)
    assert lr_at(100, 100, cfg) == pytest.approx(0.0, abs=1e-12)
    values = [lr_at(s, 100, cfg) for s in range(10, 101)]
    assert values == sorted(values, reverse=True)


def test_batch_sampler(synthetic_records):
    records = synthetic_records({"1": (5, 3), "2": (4, 0), "3": (1, 2), "4": (6, 6)})
    cfg = TrainConfig(writers_per_batch=2, genuine_per_writer=4, forged_per_writer=2)
    sampler = BatchSampler(records, cfg, np.random.default_rng(0))
    assert sampler.writers == ["D/1", "D/2", "D/4"]  # writer 3 has a single genuine: unusable
    for _ in range(20):
        image_index, writer_slot, is_genuine, mirror_index = sampler.sample()
        assert mirror_index == [0] * len(image_index)  # mirror_writers 1: no flips
        assert len(image_index) == len(writer_slot) == len(is_genuine)
        assert set(writer_slot) == {0, 1}
        for i, g in zip(image_index, is_genuine):
            assert records[i].genuine == g
        writers_in_slot = {slot: {records[i].writer for i, s in zip(image_index, writer_slot) if s == slot}
                           for slot in set(writer_slot)}
        assert all(len(v) == 1 for v in writers_in_slot.values())  # one writer per slot
        assert sum(is_genuine) == 8


def test_batch_sampler_needs_two_writers(synthetic_records):
    with pytest.raises(DatasetError):
        BatchSampler(synthetic_records({"1": (5, 1), "2": (1, 1)}), TrainConfig(), np.random.default_rng(0))


def test_calibrate():
    rng = np.random.default_rng(0)
    d = np.concatenate([rng.normal(0.3, 0.1, 100), rng.normal(0.8, 0.1, 100)])
    y = np.concatenate([np.ones(100), np.zeros(100)]).astype(int)
    cal = platt(d, y)
    assert cal["slope"] < 0  # larger distance, less likely genuine
    midpoint = -cal["intercept"] / cal["slope"]
    assert 0.45 < midpoint < 0.65


def test_config_to_dict_is_json_ready():
    import json

    d = TrainConfig().to_dict()
    assert json.loads(json.dumps(d))["model"]["embedding_dim"] == 128


def test_config_preprocessing_block_is_partial_and_validated():
    cfg = TrainConfig.from_dict({"epochs": 2, "preprocessing": {"ink": "gray"}})
    assert cfg.preprocessing.ink == "gray"
    assert cfg.preprocessing.canvas_height == TrainConfig().preprocessing.canvas_height  # unnamed fields keep defaults
    assert TrainConfig.from_dict({"epochs": 2}).preprocessing == TrainConfig().preprocessing
    with pytest.raises(ValueError, match="unknown ink mode 'grey'"):
        TrainConfig.from_dict({"preprocessing": {"ink": "grey"}})


def test_batch_sampler_writer_labels(synthetic_records):
    records = synthetic_records({"1": (3, 1), "2": (3, 1), "3": (3, 0)})
    sampler = BatchSampler(records, TrainConfig(writers_per_batch=3, genuine_per_writer=2, forged_per_writer=1), np.random.default_rng(0))
    image_index, writer_slot, _, _ = sampler.sample()
    labels = sampler.writer_labels(image_index)
    for i, label in zip(image_index, labels):
        assert sampler.writers[label] == f"{records[i].dataset}/{records[i].writer}"
    # one label per batch slot: the slot is the batch's writer, the label the global one
    assert len({(s, l) for s, l in zip(writer_slot, labels)}) == len(set(writer_slot))


def test_batch_sampler_mirrored_writers(synthetic_records):
    """mirror_writers 4: every writer is also 3 mirrored writers, each its own slot, class and flip."""
    records = synthetic_records({"1": (4, 2), "2": (4, 2), "3": (4, 0)})
    cfg = TrainConfig(writers_per_batch=6, genuine_per_writer=2, forged_per_writer=1, mirror_writers=4)
    sampler = BatchSampler(records, cfg, np.random.default_rng(0))
    assert len(sampler.identities) == 12 and sampler.identities[:4] == [("D/1", m) for m in range(4)]
    seen = set()
    for _ in range(30):
        image_index, writer_slot, _, mirror_index = sampler.sample()
        labels = sampler.writer_labels(image_index, mirror_index)
        for i, m, label in zip(image_index, mirror_index, labels):
            writer, flip = sampler.identities[label]
            assert writer == f"D/{records[i].writer}" and flip == m
            seen.add((writer, m))
        # a slot is one (writer, mirror) identity: all its images share the flip and the class
        assert all(len({(m, l) for s, m, l in zip(writer_slot, mirror_index, labels) if s == slot}) == 1
                   for slot in set(writer_slot))
    assert seen == set(sampler.identities)
    with pytest.raises(ValueError, match="mirror_writers"):
        BatchSampler(records, TrainConfig(mirror_writers=3), np.random.default_rng(0))


def test_mirror_image():
    import torch

    from sigml.train import MIRRORS, mirror_image

    image = torch.arange(6.0).reshape(1, 2, 3)
    assert torch.equal(mirror_image(image, 0), image)
    assert torch.equal(mirror_image(image, 1), image.flip(-1))
    assert torch.equal(mirror_image(image, 2), image.flip(-2))
    assert torch.equal(mirror_image(image, 3), image.flip(-2).flip(-1))
    assert len(MIRRORS) == 4


def test_mirror_writers_one_keeps_the_sampler_stream(synthetic_records):
    """Old configs (no mirror_writers) draw exactly the batches they drew before the option existed
    (the indices below were printed by the sampler of the commit before it)."""
    records = synthetic_records({"1": (5, 3), "2": (4, 2), "4": (6, 6)})
    cfg = TrainConfig(writers_per_batch=2, genuine_per_writer=3, forged_per_writer=1)
    sampler = BatchSampler(records, cfg, np.random.default_rng(5))
    assert [sampler.sample().image_index for _ in range(3)] == [
        [19, 17, 16, 25, 9, 8, 10, 12], [14, 15, 18, 21, 1, 0, 4, 7], [15, 16, 17, 23, 10, 8, 11, 12]]


def test_train_step_with_the_auxiliary_writer_classifier():
    import torch

    from sigml.distributed import DistContext, wrap
    from sigml.losses import CosineWriterClassifier
    from sigml.model import SiameseResNet18
    from sigml.train import train_step

    torch.manual_seed(0)
    cfg = TrainConfig(aux_writer_weight=0.5, bf16=False)
    model = SiameseResNet18(cfg.model)
    clf = CosineWriterClassifier(cfg.model.embedding_dim, 3)
    net = wrap(model, DistContext(), clf)
    opt = torch.optim.AdamW(list(model.parameters()) + list(clf.parameters()), lr=1e-3)
    images = torch.rand(6, 1, 40, 60)
    writer_slot, is_genuine, labels = [0, 0, 0, 1, 1, 1], [True, True, False, True, True, False], [2, 2, 2, 0, 0, 0]
    before = clf.weight.detach().clone()
    loss, stats = train_step(net, opt, images, writer_slot, is_genuine, cfg, labels)
    assert "writer_ce" in stats and stats["writer_ce"] > 0
    assert loss > stats["writer_ce"] * 0.5  # contrastive term + 0.5 x cross-entropy
    assert not torch.equal(before, clf.weight)  # the classifier is trained with the model
    # without the classifier the step is the plain contrastive one
    loss2, stats2 = train_step(wrap(model, DistContext()), opt, images, writer_slot, is_genuine, cfg)
    assert "writer_ce" not in stats2


def _tiny_run(make_generic_dataset, tmp_path, name: str, **cfg_fields):
    """A 5-writer dataset (3 training, 2 validation writers) and a 1-epoch config small enough for a unit test."""
    from sigml.model import ModelConfig

    root = make_generic_dataset(name, writers=5, genuine=3, forged=1)
    split = tmp_path / "splits.csv"
    split.write_text("dataset,writer,split\n" + "".join(
        f"{name},{w},{s}\n" for w, s in [(1, "train"), (2, "train"), (3, "train"), (4, "validation"), (5, "validation")]))
    cfg = TrainConfig(**{"epochs": 1, "steps_per_epoch": 2, "warmup_steps": 1, "writers_per_batch": 2, "genuine_per_writer": 2,
                         "forged_per_writer": 1, "validation_references": 1, "threads": 1, "bf16": False,
                         "model": ModelConfig(embedding_dim=8, hidden_dim=16), **cfg_fields})
    source = [DataSource(name, str(root), split_file=str(split))]
    return source, cfg, tmp_path / "m" / f"{name.lower()}.safetensors", tmp_path / "work"


def test_train_with_writer_classification_and_a_preprocessing_block_resumes(make_generic_dataset, tmp_path):
    """The whole loop with the auxiliary classifier: labels from the sampler, its loss in the history, its state
    resumed from `last.*` (with mirrored writers: one class per writer and mirror); and the config's preprocessing
    is what the card records (serving follows it)."""
    import dataclasses
    import json

    from sigml.preprocessing import PreprocessConfig
    from sigml.train import train

    source, cfg, out, work = _tiny_run(make_generic_dataset, tmp_path, "AX", aux_writer_weight=0.5, mirror_writers=4,
                                       preprocessing=PreprocessConfig(ink="gray"))
    train(source, out, cfg, workdir=work, progress=False)
    train(source, out, dataclasses.replace(cfg, epochs=2), workdir=work, resume=True, progress=False)
    history = json.loads((work / "history.json").read_text())
    assert [h["epoch"] for h in history] == [1, 2]
    assert all(np.isfinite(h["writer_ce"]) and h["writer_ce"] >= 0 for h in history)
    card = json.loads(out.with_suffix(".json").read_text())
    assert card["preprocessing"]["ink"] == "gray"
    assert card["training"]["config"]["aux_writer_weight"] == 0.5
    assert card["training"]["config"]["mirror_writers"] == 4
    from safetensors.torch import load_file

    assert load_file(work / "last.safetensors")["aux.weight"].shape[0] == 3 * 4  # 3 training writers x 4 mirrors


def test_make_ema_averages_weights_and_refuses_bad_decay():
    import pytest
    import torch

    from sigml.model import ModelConfig, SiameseResNet18
    from sigml.train import make_ema

    assert make_ema(torch.nn.Linear(2, 2), 0.0) is None
    with pytest.raises(ValueError):
        make_ema(torch.nn.Linear(2, 2), 1.0)
    torch.manual_seed(0)
    model = SiameseResNet18(ModelConfig(embedding_dim=8, hidden_dim=16))
    ema = make_ema(model, 0.5)
    ema.update_parameters(model)  # the first update copies the weights
    start = model.head[0].weight.detach().clone()
    with torch.no_grad():
        model.head[0].weight.add_(1.0)
        model.head[1].running_mean.add_(2.0)  # a BatchNorm buffer: averaged too (use_buffers)
    ema.update_parameters(model)
    assert torch.allclose(ema.module.head[0].weight, start + 0.5)  # halfway with decay 0.5
    assert torch.allclose(ema.module.head[1].running_mean, torch.full_like(start[:, 0], 1.0))


def test_train_with_ema_selects_and_resumes_the_average(make_generic_dataset, tmp_path):
    """With `ema_decay`, validation scores the moving average, best.safetensors holds it, and `last.*` carries it
    so that a resumed run continues the same average."""
    import dataclasses
    import json

    import torch
    from safetensors.torch import load_file

    from sigml.checkpoints import load_weights
    from sigml.model import SiameseResNet18
    from sigml.train import train

    source, cfg, out, work = _tiny_run(make_generic_dataset, tmp_path, "EM", steps_per_epoch=3, ema_decay=0.9)
    train(source, out, cfg, workdir=work, progress=False)
    last = load_file(str(work / "last.safetensors"))
    assert int(last["ema.n_averaged"]) == 3
    best = load_file(str(work / "best.safetensors"))
    key = "head.0.weight"
    assert torch.equal(best[key], last[f"ema.module.{key}"])  # the average was selected, not the raw weights
    assert not torch.equal(best[key], last[f"model.{key}"])
    train(source, out, dataclasses.replace(cfg, epochs=2), workdir=work, resume=True, progress=False)
    assert int(load_file(str(work / "last.safetensors"))["ema.n_averaged"]) == 6  # continued, not restarted
    assert [h["epoch"] for h in json.loads((work / "history.json").read_text())] == [1, 2]
    shipped = SiameseResNet18(cfg.model)
    load_weights(shipped, out)  # the shipped file loads into the plain architecture
    assert json.loads(out.with_suffix(".json").read_text())["training"]["config"]["ema_decay"] == 0.9


# --- dataset-balanced batches ----------------------------------------------------------------------------------

BIG_WRITERS, SMALL_WRITERS = 40, 4


@pytest.fixture
def two_datasets(synthetic_records):
    """BIG: 40 writers, SMALL: 4; every writer has 10 genuine signatures and, alternately, 1 or 0 skilled forgeries
    (as CNSig-like writers with few forgeries, and writers without any)."""
    big = synthetic_records({f"b{i}": (10, i % 2) for i in range(BIG_WRITERS)}, dataset="BIG")
    small = synthetic_records({f"s{i}": (10, i % 2) for i in range(SMALL_WRITERS)}, dataset="SMALL")
    return big + small


def _slot_shares(records, cfg: TrainConfig, batches: int = 1500) -> dict[str, float]:
    """Share of batch slots per dataset over many batches, checking every batch on the way."""
    sampler = BatchSampler(records, cfg, np.random.default_rng(0))
    slots = {"BIG": 0, "SMALL": 0}
    for _ in range(batches):
        batch = sampler.sample()
        assert sorted(set(batch.writer_slot)) == list(range(cfg.writers_per_batch))
        for slot in set(batch.writer_slot):
            images = [i for i, s in zip(batch.image_index, batch.writer_slot) if s == slot]
            writers = {(records[i].dataset, records[i].writer) for i in images}
            assert len(writers) == 1  # one writer per slot
            (dataset, writer), = writers
            genuine = [i for i in images if records[i].genuine]
            forged = [i for i in images if not records[i].genuine]
            assert len(genuine) == cfg.genuine_per_writer == len(set(genuine))  # 10 genuine: drawn without replacement
            n_forgeries = int(writer[1:]) % 2
            # one forgery is drawn with replacement to fill the slot; a writer without any brings only genuine
            assert len(forged) == (cfg.forged_per_writer if n_forgeries else 0)
            assert len(set(forged)) == n_forgeries
            slots[dataset] += 1
        assert len({(records[i].dataset, records[i].writer) for i in batch.image_index}) == cfg.writers_per_batch  # distinct writers
    total = sum(slots.values())
    return {d: n / total for d, n in slots.items()}


@pytest.mark.parametrize(
    "balance,weights,expected_small",
    [
        ("equal", None, 0.5),
        ("sqrt", None, 4 ** 0.5 / (4 ** 0.5 + 40 ** 0.5)),
        ("writers", {"BIG": 1.0, "SMALL": 3.0}, 0.75),  # explicit weights override the balance
        ("writers", None, SMALL_WRITERS / (BIG_WRITERS + SMALL_WRITERS)),  # follows writer counts
    ],
)
def test_batch_slots_follow_the_dataset_shares(two_datasets, balance, weights, expected_small):
    from sigml.train import dataset_shares

    cfg = TrainConfig(writers_per_batch=4, genuine_per_writer=4, forged_per_writer=2, dataset_balance=balance,
                      dataset_weights=weights)
    training_writers = [f"BIG/b{i}" for i in range(BIG_WRITERS)] + [f"SMALL/s{i}" for i in range(SMALL_WRITERS)]
    shares = dataset_shares(training_writers, cfg)
    assert shares["SMALL"] == pytest.approx(expected_small) and sum(shares.values()) == pytest.approx(1.0)
    measured = _slot_shares(two_datasets, cfg)
    assert measured["SMALL"] == pytest.approx(expected_small, abs=0.03)  # 6000 slots: about 5 standard errors


def test_unknown_dataset_balance_is_refused(two_datasets):
    with pytest.raises(ValueError, match="dataset_balance"):
        BatchSampler(two_datasets, TrainConfig(dataset_balance="uniform"), np.random.default_rng(0))


def test_fine_tuning_starts_from_the_init_weights_and_keeps_their_architecture(make_generic_dataset, tmp_path):
    """`train(..., init=M)`: the run starts from M's backbone and head (a zero-step run would ship M's weights), keeps
    M's architecture and preprocessing whatever the config says, gets a new writer classifier, recalibrates on its own
    validation writers and names M in its card."""
    import dataclasses
    import json

    from safetensors.torch import load_file

    from sigml.model import ModelConfig
    from sigml.preprocessing import PreprocessConfig
    from sigml.train import train

    source, cfg, base, work = _tiny_run(make_generic_dataset, tmp_path, "FT", preprocessing=PreprocessConfig(ink="gray"))
    train(source, base, cfg, workdir=work, progress=False)
    from safetensors.torch import save_file

    marked = load_file(str(base))
    marked["backbone.conv1.weight"].fill_(0.125)  # a value no initialisation or 300 steps produce
    save_file(marked, str(base))
    # a config asking for another architecture and preprocessing: the init model's win
    other = dataclasses.replace(cfg, model=ModelConfig(embedding_dim=4, hidden_dim=8), preprocessing=PreprocessConfig(),
                                aux_writer_weight=0.5, lr=1e-12, warmup_steps=1)
    tuned = tmp_path / "ft" / "tuned.safetensors"
    train(source, tuned, other, workdir=tmp_path / "ft_work", progress=False, init=base)
    card = json.loads(tuned.with_suffix(".json").read_text())
    base_card = json.loads(base.with_suffix(".json").read_text())
    assert card["architecture"] == base_card["architecture"] and card["preprocessing"]["ink"] == "gray"
    assert card["training"]["init"] == {"file": base.name, "model_version": base_card["version"],
                                        "sha256": base_card["weights"]["sha256"]}
    # lr 1e-12: the fine-tuned weights are the marked init weights, so they were loaded, not re-initialised
    end = load_file(str(tuned))
    assert end.keys() == marked.keys()
    assert (end["backbone.conv1.weight"].float() - 0.125).abs().max() < 1e-4
    assert "thresholds" in card and card["metrics"]["validation"]["pairwise"]["eer"] >= 0


def test_fine_tuning_config_with_its_own_preprocessing_keeps_it(monkeypatch, tmp_path):
    """The init model's preprocessing is kept unless the config sets one (e.g. `{"fit": "stretch"}` to fine-tune the
    network to a new canvas); its architecture always wins."""
    import dataclasses
    from types import SimpleNamespace

    from sigml import train as train_module
    from sigml.model import ModelConfig
    from sigml.preprocessing import PreprocessConfig

    card = SimpleNamespace(architecture=ModelConfig(embedding_dim=4, hidden_dim=8), preprocessing=PreprocessConfig(ink="gray"))
    monkeypatch.setattr(train_module.ModelCard, "load", classmethod(lambda cls, path: card))
    default = train_module.TrainConfig()
    kept = train_module.config_for_init(default, tmp_path / "m.safetensors")
    assert kept.model == card.architecture and kept.preprocessing == card.preprocessing
    stretched = dataclasses.replace(default, preprocessing=PreprocessConfig(fit="stretch"))
    own = train_module.config_for_init(stretched, tmp_path / "m.safetensors")
    assert own.model == card.architecture and own.preprocessing.fit == "stretch"


# --- the training loop's parts: one epoch of steps, and the bookkeeping around it ------------------------------------

def _tiny_learner(synthetic_records, **cfg_fields):
    """Two writers of uint8 noise images, a small network and the sampler of a 2-epoch x 2-step run."""
    import torch

    from sigml.distributed import DistContext
    from sigml.model import ModelConfig
    from sigml.train import build_learner

    records = synthetic_records({"1": (3, 1), "2": (3, 1)})
    cfg = TrainConfig(**{"epochs": 2, "steps_per_epoch": 2, "warmup_steps": 1, "writers_per_batch": 2, "genuine_per_writer": 2,
                         "forged_per_writer": 1, "bf16": False, "model": ModelConfig(embedding_dim=8, hidden_dim=16), **cfg_fields})
    sampler = BatchSampler(records, cfg, np.random.default_rng(0))
    torch.manual_seed(0)
    pixels = torch.randint(0, 256, (len(records), 1, 40, 60), dtype=torch.uint8)
    return cfg, sampler, pixels, build_learner(cfg, len(sampler.identities), DistContext())


def test_run_epoch_takes_its_steps_at_the_learning_rates_of_its_place_in_the_run(synthetic_records):
    from sigml.augment import SignatureAugment
    from sigml.distributed import DistContext
    from sigml.train import run_epoch

    cfg, sampler, pixels, learner = _tiny_learner(synthetic_records, ema_decay=0.5)
    result = run_epoch(learner, sampler, SignatureAugment(cfg.augment), pixels, cfg, DistContext(), first_step=2, desc="",
                       progress=False)
    assert result.images == cfg.steps_per_epoch * 2 * (cfg.genuine_per_writer + cfg.forged_per_writer)
    assert np.isfinite(result.mean_loss) and "pos_dist" in result.last_stats
    assert learner.optimizer.param_groups[0]["lr"] == pytest.approx(lr_at(3, 4, cfg))  # the run's last step
    assert int(learner.ema.n_averaged) == 2 and learner.candidate is learner.ema.module


def test_run_state_round_trips_through_last_checkpoint(synthetic_records, tmp_path):
    import torch

    from sigml.train import RunState, load_run_state, save_run_state

    cfg, sampler, pixels, learner = _tiny_learner(synthetic_records)
    state = RunState(step=4, next_epoch=2, best_eer=0.25, history=[{"epoch": 1}, {"epoch": 2}])
    rng = np.random.default_rng(0)
    rng.random()
    save_run_state(tmp_path, learner, state, rng, cfg)
    expected_draw = rng.random()
    _, _, _, fresh = _tiny_learner(synthetic_records, seed=1)
    torch.nn.init.zeros_(fresh.model.head[0].weight)
    other_rng = np.random.default_rng(99)
    assert load_run_state(tmp_path, fresh, other_rng) == state
    assert other_rng.random() == expected_draw  # the sampler's stream continues where it stopped
    assert torch.equal(fresh.model.head[0].weight, learner.model.head[0].weight)
    assert json.loads((tmp_path / "last.json").read_text())["epoch"] == 1  # 0-based epoch last done, as before


def test_history_entry_names_every_figure():
    from sigml.train import EpochResult, history_entry

    val = {"pairwise": {"eer": 0.2, "auc": 0.9}, "reference_based": {"eer": 0.1},
           "pairwise_A": {"eer": 0.3}, "pairwise_B": {"eer": 0.1}}
    entry = history_entry(4, 50, EpochResult(started=0.0, images=300, mean_loss=0.5, last_stats={"pos_dist": 0.4}), val,
                          seconds=2.0)
    assert entry == {"epoch": 5, "step": 50, "loss": 0.5, "images_per_s": 150.0, "val_eer": 0.2, "val_auc": 0.9,
                     "val_reference_eer": 0.1, "val_eer_A": 0.3, "val_eer_B": 0.1, "val_eer_macro": pytest.approx(0.2),
                     "pos_dist": 0.4}


def test_writer_groups_make_one_identity_of_a_writer_in_two_datasets(synthetic_records):
    """CEDAR-natural holds other scans of CEDAR's writers: grouped, writer 1 of both is one identity whose genuine
    signatures of both shapes are positives of each other, never negatives."""
    records = synthetic_records({"1": (3, 1), "2": (3, 1)}, "CEDAR") + synthetic_records({"1": (2, 1), "3": (3, 0)}, "NAT")
    apart = BatchSampler(records, TrainConfig(), np.random.default_rng(0))
    assert apart.writers == ["CEDAR/1", "CEDAR/2", "NAT/1", "NAT/3"]
    grouped = BatchSampler(records, TrainConfig(writer_groups={"NAT": "CEDAR"}), np.random.default_rng(0))
    assert grouped.writers == ["CEDAR/1", "CEDAR/2", "CEDAR/3"]
    assert len(grouped.genuine["CEDAR/1"]) == 5 and len(grouped.forged["CEDAR/1"]) == 2
    labels = grouped.writer_labels(list(range(len(records))))
    assert labels[0] == labels[8]  # CEDAR/1 and NAT/1: one writer class


def test_progressive_resizing_schedule_and_scaled_images():
    import torch

    from sigml.train import canvas_scale, scaled_pixels

    cfg = TrainConfig(epochs=5, low_res_epochs=3, low_res_scale=0.5)
    assert [canvas_scale(e, cfg) for e in range(5)] == [0.5, 0.5, 0.5, 1.0, 1.0]
    assert [canvas_scale(e, TrainConfig(epochs=2)) for e in range(2)] == [1.0, 1.0]
    pixels = torch.zeros(3, 1, 150, 220, dtype=torch.uint8)
    pixels[:, :, 50:100, 20:200] = 200
    half = scaled_pixels(pixels, 0.5)
    assert half.shape == (3, 1, 75, 110) and half.dtype == torch.uint8
    assert half.float().mean().item() == pytest.approx(pixels.float().mean().item(), rel=0.02)  # area averaging keeps the ink
    assert scaled_pixels(pixels, 1.0) is pixels


def test_init_with_another_pooling_keeps_the_backbone_and_makes_a_new_head(make_generic_dataset, tmp_path):
    """A config asking for the multi-scale head, started from a global-pooling model: the backbone is loaded, the
    head is new, and the card records the new architecture."""
    import dataclasses
    import json

    from safetensors.torch import load_file, save_file

    from sigml.model import ModelConfig
    from sigml.train import train

    source, cfg, base, work = _tiny_run(make_generic_dataset, tmp_path, "MS")
    train(source, base, cfg, workdir=work, progress=False)
    marked = load_file(str(base))
    marked["backbone.conv1.weight"].fill_(0.125)
    save_file(marked, str(base))
    other = dataclasses.replace(cfg, model=ModelConfig(embedding_dim=8, hidden_dim=16, pooling="multiscale"), lr=1e-12,
                                warmup_steps=1)
    tuned = tmp_path / "ms" / "tuned.safetensors"
    train(source, tuned, other, workdir=tmp_path / "ms_work", progress=False, init=base)
    card = json.loads(tuned.with_suffix(".json").read_text())
    assert card["architecture"]["pooling"] == "multiscale"
    end = load_file(str(tuned))
    assert (end["backbone.conv1.weight"].float() - 0.125).abs().max() < 1e-4
    assert end["head.0.weight"].shape == (16, 4608)


def test_training_images_come_from_the_cache_on_the_second_run(make_generic_dataset, tmp_path, monkeypatch):
    import sigml.cache
    from sigml.train import PreparedData, preprocess_split, prepare_data

    source, cfg, _, _ = _tiny_run(make_generic_dataset, tmp_path, "CA")
    data = prepare_data(source, seed=0, split_dir=None)
    first = preprocess_split(data, "train", cfg, progress=False, cache_dir=tmp_path / "cache")
    assert len(list((tmp_path / "cache").glob("CA-train-*.safetensors"))) == 1
    monkeypatch.setattr(sigml.cache, "preprocess_records", lambda *a, **k: pytest.fail("the cache was not used"))
    again = preprocess_split(data, "train", cfg, progress=False, cache_dir=tmp_path / "cache")
    assert again.records == first.records and (again.pixels == first.pixels).all()
