"""sigml.modelcard: JSON round trip, version, Platt fits kept, load errors."""

from __future__ import annotations

import hashlib
import json

import pytest

from sigml.errors import ModelLoadError
from sigml.model import ModelConfig
from sigml.modelcard import ModelCard, card_path_for, file_sha256, now_iso
from sigml.preprocessing import PreprocessConfig

SHA = "ab12cd34" + "0" * 56


def make_card(**overrides) -> ModelCard:
    base = dict(
        architecture=ModelConfig(embedding_dim=64, hidden_dim=128),
        preprocessing=PreprocessConfig(ink="binary"),
        threshold=0.42,
        thresholds={"pairwise": 0.42, "reference_based": 0.37},
        calibration={"slope": -12.0, "intercept": 5.0},
        metrics={"validation": {"pairwise": {"eer": 0.1}}},
        data={"sources": [{"name": "CEDAR", "split_file": "image_pairs/CEDAR/splits.csv"}]},
        training={"config": {"epochs": 2}},
        weights={"file": "m.safetensors", "sha256": SHA, "dtype": "float16"},
        created=now_iso(),
        git_commit="abc1234",
        notes="test",
    )
    base.update(overrides)
    return ModelCard(**base)


def test_json_round_trip(tmp_path):
    card = make_card()
    path = tmp_path / "m.json"
    card.save(path)
    data = json.loads(path.read_text())
    assert data["version"] == "siamese_resnet18@ab12cd34"
    assert data["architecture"]["name"] == "siamese_resnet18"
    assert data["preprocessing"]["ink"] == "binary"
    loaded = ModelCard.load(path)
    assert loaded == card
    assert loaded.to_dict() == card.to_dict()


def test_version_derived_from_sha():
    assert make_card().version == "siamese_resnet18@ab12cd34"
    assert make_card(weights={}).version == "siamese_resnet18@unversioned"
    assert make_card(name="other").version.startswith("other@")


def test_minimal_card_defaults():
    card = ModelCard.from_dict({"threshold": 0.5})
    assert card.architecture == ModelConfig() and card.preprocessing == PreprocessConfig()
    assert card.threshold_for("reference_based") == 0.5  # falls back to the pairwise threshold
    assert make_card().threshold_for("reference_based") == 0.37


def test_calibration_round_trips_and_is_no_answer():
    """The Platt fits are kept as the card wrote them; the card has no `similarity`: the answer is the decision."""
    card = make_card()
    assert ModelCard.from_dict(card.to_dict()).calibration == card.calibration
    assert not hasattr(card, "similarity")


def test_load_errors(tmp_path):
    with pytest.raises(ModelLoadError, match="not found"):
        ModelCard.load(tmp_path / "missing.json")
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(ModelLoadError) as info:
        ModelCard.load(bad)
    assert str(bad) in str(info.value)
    no_threshold = tmp_path / "no_threshold.json"
    no_threshold.write_text(json.dumps({"name": "x"}))
    with pytest.raises(ModelLoadError, match="not valid"):
        ModelCard.load(no_threshold)
    bad_value = tmp_path / "bad_value.json"
    bad_value.write_text(json.dumps({"threshold": "high"}))
    with pytest.raises(ModelLoadError):
        ModelCard.load(bad_value)


def test_helpers(tmp_path):
    assert card_path_for(tmp_path / "m.safetensors") == tmp_path / "m.json"
    f = tmp_path / "blob.bin"
    f.write_bytes(b"x" * (3 << 20))
    assert file_sha256(f) == hashlib.sha256(b"x" * (3 << 20)).hexdigest()
    assert now_iso().endswith("+00:00")


def test_reference_score_round_trip_and_old_cards(tmp_path):
    card = make_card(reference_score="normalized", reference_calibration={"slope": -3.0, "intercept": 4.0, "spread_floor": 0.2})
    card.save(tmp_path / "m.json")
    loaded = ModelCard.load(tmp_path / "m.json")
    assert loaded.reference_score == "normalized" and loaded.reference_calibration["spread_floor"] == 0.2
    assert loaded.reference_calibration == card.reference_calibration and loaded.calibration == card.calibration
    old = json.loads((tmp_path / "m.json").read_text())
    del old["reference_score"], old["reference_calibration"]
    (tmp_path / "old.json").write_text(json.dumps(old))
    legacy = ModelCard.load(tmp_path / "old.json")
    assert legacy.reference_score == "mean"  # calibrated on mean distances before "normalized" existed
    assert legacy.reference_policy(3).spread_floor == 0.0  # no reference calibration: no floor


def test_unknown_reference_score_is_refused(tmp_path):
    data = make_card().to_dict()
    data["reference_score"] = "median"
    (tmp_path / "bad.json").write_text(json.dumps(data))
    with pytest.raises(ModelLoadError, match="reference_score"):
        ModelCard.load(tmp_path / "bad.json")


# --- one pairwise threshold; how K references are scored ----------------------------------------------

def test_the_pairwise_threshold_is_one_value():
    card = make_card()
    assert card.threshold_for("pairwise") == card.threshold == 0.42
    assert card.threshold_for("reference_based") == 0.37
    assert "pairwise" not in card.thresholds  # held once, as `threshold`
    assert card.to_dict()["thresholds"] == {"pairwise": 0.42, "reference_based": 0.37}  # older readers find it
    with pytest.raises(ValueError, match="not the card's threshold"):
        make_card(thresholds={"pairwise": 0.5})
    with pytest.raises(ValueError, match="unknown protocol"):
        card.threshold_for("random")


def test_older_cards_are_read():
    assert ModelCard.from_dict({"thresholds": {"pairwise": 0.3}}).threshold == 0.3  # no top-level threshold
    old = ModelCard.from_dict({"threshold": 0.5, "thresholds": {"pairwise": 0.5, "reference_based": 0.7}})
    assert (old.threshold_for("pairwise"), old.threshold_for("reference_based")) == (0.5, 0.7)
    assert ModelCard.from_dict({"threshold": 0.5}).thresholds == {}


def test_reference_policy_for_k():
    card = make_card(reference_score="normalized", reference_calibration={"spread_floor": 0.2})
    one = card.reference_policy(1)  # no spread to normalise by: a pair
    assert (one.score_method, one.protocol, one.reference_score) == ("pairwise", "pairwise", "mean")
    assert card.threshold_for(one.protocol) == 0.42  # the policy names the protocol; the card holds its threshold
    many = card.reference_policy(5)
    assert (many.score_method, many.protocol, many.spread_floor) == ("normalized", "reference_based", 0.2)
    assert card.threshold_for(many.protocol) == 0.37
    mean = make_card(reference_score="mean").reference_policy(3)  # cards from before the normalized score
    assert (mean.score_method, mean.reference_score, mean.spread_floor) == ("mean", "mean", 0.0)
    with pytest.raises(ValueError):
        card.reference_policy(0)


def test_reference_policy_scores_as_the_protocols_do():
    import numpy as np

    from sigml import protocols

    rng = np.random.default_rng(0)
    refs, questioned = rng.normal(size=(4, 8)), rng.normal(size=(3, 8))
    card = make_card(reference_score="normalized", reference_calibration={"spread_floor": 0.1})
    expected = protocols.reference_scores(questioned, refs, "normalized", spread_floor=0.1)
    assert np.allclose(card.reference_policy(4).scores(questioned, refs), expected)
    one = card.reference_policy(1).scores(questioned, refs[:1])
    assert np.allclose(one, np.linalg.norm(questioned - refs[0], axis=1))  # the plain pair distance
