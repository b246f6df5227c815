"""The model card is checked against its schema on every load (issue 29, finding 7): each card the issue found
trusted blindly is refused by `ModelCard.load` with the field named; every shipped card still loads. The API's side
(start-up, `check --deploy`, health): tests/api/test_model_card_checked.py."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from sigml.errors import ModelLoadError
from sigml.modelcard import CardError, ModelCard, validate_card

REPO = Path(__file__).resolve().parents[3]
# the Siamese models' cards (a card sits beside its weights; the signature locator's card is of its own format,
# checked by sigml.locate.load_model and tests/sigml/test_locate.py)
SHIPPED = sorted(p for p in (REPO / "trained_model_parameters").glob("*.json")
                 if p.with_suffix(".safetensors").is_file() and not p.name.startswith("signature_locator"))


def shipped_card() -> dict:
    return json.loads((REPO / "trained_model_parameters" / "siamese_resnet18.json").read_text())


def without(data: dict, *path: str) -> dict:
    node = data
    for key in path[:-1]:
        node = node[key]
    del node[path[-1]]
    return data


def with_value(data: dict, value, *path: str) -> dict:
    node = data
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    return data


def swapped_cuts(data: dict) -> dict:
    band = data["decision_bands"]["pairwise"]
    band["genuine_below"], band["forged_above"] = band["forged_above"], band["genuine_below"]
    return data


BAD_CARDS = {  # the cards, and their neighbours: (the card, the field its error must name)
    "NaN threshold": (lambda d: with_value(d, float("nan"), "threshold"), "threshold"),
    "NaN in thresholds": (lambda d: with_value(d, float("nan"), "thresholds", "reference_based"),
                          "thresholds.reference_based"),
    "infinite threshold": (lambda d: with_value(d, float("inf"), "threshold"), "threshold"),
    "negative threshold": (lambda d: with_value(d, -0.5, "threshold"), "threshold"),
    "threshold as text": (lambda d: with_value(d, "0.5", "threshold"), "threshold"),
    "swapped cuts": (swapped_cuts, "decision_bands.pairwise"),
    "cuts around no threshold": (lambda d: with_value(d, 0.1, "decision_bands", "pairwise", "forged_above"),
                                 "decision_bands.pairwise"),
    "NaN cut": (lambda d: with_value(d, float("nan"), "decision_bands", "reference_based", "genuine_below"),
                "decision_bands.reference_based.genuine_below"),
    "NaN in a rate curve": (lambda d: with_value(d, float("nan"), "rate_curves", "pairwise", "far", 3),
                            "rate_curves.pairwise.far"),
    "NaN calibration": (lambda d: with_value(d, float("nan"), "calibration", "slope"), "calibration.slope"),
    "negative copy threshold": (lambda d: with_value(d, -1.0, "copy_threshold"), "copy_threshold"),
    "max_pixels 0": (lambda d: with_value(d, 0, "preprocessing", "max_pixels"), "preprocessing.max_pixels"),
    "1x100000 canvas": (lambda d: with_value(with_value(d, 1, "preprocessing", "canvas_height"), 100000,
                                             "preprocessing", "canvas_width"), "preprocessing.canvas_height"),
    "1x8000 canvas in range": (lambda d: with_value(with_value(d, 16, "preprocessing", "canvas_height"), 2000,
                                                    "preprocessing", "canvas_width"), "preprocessing.canvas_width"),
    "float canvas": (lambda d: with_value(d, 150.5, "preprocessing", "canvas_height"), "preprocessing.canvas_height"),
    "boolean embedding size": (lambda d: with_value(d, True, "architecture", "embedding_dim"),
                               "architecture.embedding_dim"),
    "unknown pooling": (lambda d: with_value(d, "median", "architecture", "pooling"), "pooling"),
    "malformed sha256": (lambda d: with_value(d, "abc", "weights", "sha256"), "weights.sha256"),
    "unknown protocol": (lambda d: with_value(d, 0.4, "thresholds", "random"), "thresholds.random"),
    "a list for a card": (lambda d: [d], "(card)"),
}


@pytest.mark.parametrize("case", list(BAD_CARDS))
def test_a_bad_card_is_refused_naming_the_field(tmp_path, case):
    make, field = BAD_CARDS[case]
    path = tmp_path / "m.json"
    path.write_text(json.dumps(make(shipped_card())))  # json writes NaN and Infinity as Python reads them back
    with pytest.raises(ModelLoadError) as caught:
        ModelCard.load(path)
    assert "model card is not valid" in str(caught.value) and field in str(caught.value), str(caught.value)


@pytest.mark.parametrize("path", SHIPPED, ids=[p.name for p in SHIPPED])
def test_every_shipped_card_passes_the_schema(path):
    data = json.loads(path.read_text())
    validate_card(data)
    assert ModelCard.load(path).to_dict()["weights"]["sha256"] == data["weights"]["sha256"]


def test_the_multiscale_pooling_and_older_minimal_cards_are_accepted():
    validate_card(with_value(shipped_card(), "multiscale", "architecture", "pooling"))
    assert ModelCard.from_dict({"threshold": 0.5}).threshold == 0.5
    assert ModelCard.from_dict({"thresholds": {"pairwise": 0.3}}).threshold == 0.3
    with pytest.raises(CardError, match="threshold"):
        ModelCard.from_dict({"name": "x"})
