"""sigml.calibration: thresholds, bands and Platt fits from validation writers; `sigml calibrate` (`sigml.cli.recalibrate`)."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from sigml import calibration, cli, decision, metrics, protocols
from sigml.modelcard import ModelCard, card_path_for, file_sha256


def writers_with_spreads(synthetic_records, n: int = 6):
    """Writers whose genuine signatures scatter by different amounts; forgeries sit 3 spreads away."""
    records = synthetic_records({str(w): (12, 4) for w in range(1, n + 1)})
    rng = np.random.default_rng(0)
    emb = np.zeros((len(records), 8))
    for w in range(1, n + 1):
        idx = [i for i, r in enumerate(records) if r.writer == str(w)]
        spread = 0.2 * w
        centre = rng.normal(size=8) * 10
        for i in idx:
            offset = rng.normal(size=8) * spread / 4
            emb[i] = centre + offset + (0 if records[i].genuine else 3 * spread / np.sqrt(8))
    return emb, records


def test_card_calibration_fields(synthetic_records):
    emb, records = writers_with_spreads(synthetic_records)
    fields, val = calibration.card_calibration(emb, records, k=5, seed=0)
    assert fields["reference_score"] == "normalized"
    rb = protocols.reference_based(emb, records, k=5, seed=0, score="normalized")
    assert fields["thresholds"]["reference_based"] == pytest.approx(metrics.eer(rb.distances, rb.labels)[1])
    assert val["reference_based"]["score"] == "normalized" and val["reference_based"]["k"] == 5
    pw = protocols.pairwise(emb, records)
    assert fields["threshold"] == fields["thresholds"]["pairwise"] == pytest.approx(metrics.eer(pw.distances, pw.labels)[1])
    spreads = protocols.reference_spreads(emb, records, k=5, seed=0)
    assert fields["reference_calibration"]["spread_floor"] == pytest.approx(0.5 * spreads.min())
    assert fields["reference_calibration"]["slope"] < 0 and fields["calibration"]["slope"] < 0  # farther = less genuine
    assert not any(k.startswith("_") for k in val)
    validation = calibration.validation_metrics(emb, records, k=5, seed=0)
    assert validation.metrics == val  # the card's validation figures are validation_metrics' own
    np.testing.assert_array_equal(validation.pairwise_scores.distances, pw.distances)
    np.testing.assert_array_equal(validation.reference_scores.distances, rb.distances)
    # three-way decision bands per protocol, bracketing the EER thresholds, fitted on the same validation scores
    for protocol, scored in (("pairwise", pw), ("reference_based", rb)):
        band = fields["decision_bands"][protocol]
        assert band["genuine_below"] <= fields["thresholds"][protocol] <= band["forged_above"]
        forged, genuine = scored.distances[scored.labels == 0], scored.distances[scored.labels == 1]
        assert np.mean(forged <= band["genuine_below"]) <= band["target_far"]
        assert np.mean(genuine > band["forged_above"]) <= band["target_frr"]
        assert len(fields["rate_curves"][protocol]["score"]) >= 2


def test_validation_metrics_is_a_frozen_result_per_dataset(synthetic_records):
    """Several datasets: a pairwise block per dataset; K references that do not fit: no reference-based block."""
    import dataclasses

    first, _ = writers_with_spreads(synthetic_records, n=3)
    records = synthetic_records({str(w): (12, 4) for w in range(1, 4)}, dataset="A")
    records += synthetic_records({str(w): (12, 4) for w in range(1, 4)}, dataset="B")
    emb = np.concatenate([first, first + 100.0])
    validation = calibration.validation_metrics(emb, records, k=5, seed=0)
    assert set(validation.metrics) == {"pairwise", "reference_based", "pairwise_A", "pairwise_B"}
    with pytest.raises(dataclasses.FrozenInstanceError):
        validation.metrics = {}
    too_many = calibration.validation_metrics(emb, records, k=50, seed=0)
    assert too_many.reference_scores is None and "reference_based" not in too_many.metrics


def test_normalized_beats_mean_when_writers_differ_in_spread(synthetic_records):
    emb, records = writers_with_spreads(synthetic_records)
    _, norm = calibration.card_calibration(emb, records, k=5, seed=0)
    _, mean = calibration.card_calibration(emb, records, k=5, seed=0, reference_score="mean")
    assert norm["reference_based"]["eer"] < mean["reference_based"]["eer"]


def card_with_sources(tmp_path, test_model_path, make_generic_dataset):
    root = make_generic_dataset("CAL", writers=5, genuine=5, forged=2)
    split = tmp_path / "splits.csv"
    split.write_text("dataset,writer,split\nCAL,1,train\nCAL,2,validation\nCAL,3,validation\nCAL,4,test\nCAL,5,test\n")
    model = tmp_path / "m.safetensors"
    shutil.copy(test_model_path, model)
    card = ModelCard.load(card_path_for(test_model_path))
    card.reference_score = "mean"
    card.data = {"sources": [{"name": "CAL", "root": str(tmp_path / "elsewhere"), "split_file": str(split)}]}
    card.training = {"config": {"validation_references": 3, "seed": 0}}
    card.save(card_path_for(model))
    return model, card, root


def test_calibrate_command_rewrites_only_the_thresholds(capsys, tmp_path, test_model_path, make_generic_dataset):
    model, card, root = card_with_sources(tmp_path, test_model_path, make_generic_dataset)
    before = json.loads(card_path_for(model).read_text())

    assert cli.main(["calibrate", "--model", str(model), "--data", f"CAL={root}", "--no-progress"]) == 0
    after = ModelCard.load(card_path_for(model))
    assert after.reference_score == "normalized" and after.version == card.version == f"{card.name}@{file_sha256(model)[:8]}"
    val = after.metrics["validation"]
    assert val["reference_based"]["k"] == 3 and after.threshold_for("reference_based") == val["reference_based"]["eer_threshold"]
    assert after.threshold == val["pairwise"]["eer_threshold"] and "spread_floor" in after.reference_calibration
    assert after.architecture.to_dict() == before["architecture"] and after.weights == before["weights"]
    assert "reference-based K=3 (normalized)" in capsys.readouterr().out
    assert set(after.decision_bands) == set(after.rate_curves) == {"pairwise", "reference_based"}


def test_calibrate_bands_only_keeps_thresholds_and_calibration(capsys, tmp_path, test_model_path, make_generic_dataset):
    model, card, root = card_with_sources(tmp_path, test_model_path, make_generic_dataset)
    before = ModelCard.load(card_path_for(model))
    assert cli.main(["calibrate", "--model", str(model), "--data", f"CAL={root}", "--bands-only", "--no-progress"]) == 0
    after = ModelCard.load(card_path_for(model))
    assert (after.threshold, after.thresholds, after.reference_score) == (before.threshold, before.thresholds, "mean")
    assert after.calibration == before.calibration and after.metrics == before.metrics
    for protocol in ("pairwise", "reference_based"):
        band = after.decision_bands[protocol]
        threshold = after.threshold_for("reference_based") if protocol == "reference_based" else after.threshold
        assert band["genuine_below"] <= threshold <= band["forged_above"]
        assert band["fit"] == {"rates": "mean over datasets", "level": decision.DEFAULT_LEVEL,
                               "n_boot": decision.DEFAULT_BOOT}
    out = capsys.readouterr().out
    assert "pairwise: genuine at or below" in out and f"'level': {decision.DEFAULT_LEVEL}" in out


def test_calibrate_command_needs_data_sources(capsys, tmp_path, test_model_path):
    model = tmp_path / "m.safetensors"
    shutil.copy(test_model_path, model)
    shutil.copy(card_path_for(test_model_path), card_path_for(model))
    assert cli.main(["calibrate", "--model", str(model), "--no-progress"]) == 2
    assert "names no data sources" in capsys.readouterr().err
