"""sigml.inference: Verifier on an untrained test model (contract, not accuracy)."""

from __future__ import annotations

import dataclasses
import io
import shutil
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
import torch
from PIL import Image

from sigml.errors import BlankImageError, ModelLoadError, UnreadableImageError
from sigml.env import env_flag
from sigml.inference import ProfileVerificationResult, VerificationResult, Verifier, load_verifier, overlay_png
from sigml.modelcard import ModelCard, card_path_for
from sigml.testing import image_bytes

FIELDS = {"distance", "threshold", "decision", "decision_rates", "flags", "model_version"}


def check_result(r: VerificationResult, verifier: Verifier, threshold: float) -> None:
    assert isinstance(r.distance, float) and r.distance >= 0
    assert r.threshold == threshold
    assert r.decision in {"genuine", "inconclusive", "forged"}
    cuts = r.decision_rates
    assert cuts["genuine_below"] <= r.threshold <= cuts["forged_above"]
    if not r.flags:  # the decision is the band's (the test card has none: both cuts at the threshold)
        assert (r.decision == "genuine") == (r.distance <= cuts["genuine_below"])
        assert (r.decision == "forged") == (r.distance > cuts["forged_above"])
    assert r.model_version == verifier.model_version == verifier.card.version


def test_from_files_reads_the_card(verifier, test_model_path):
    card = ModelCard.load(card_path_for(test_model_path))
    assert verifier.card == card
    assert verifier.threshold == 0.5
    assert verifier.model_version.startswith("siamese_resnet18@") and "unversioned" not in verifier.model_version
    assert not verifier.model.training


def test_verify_fields(verifier, png_signatures):
    r = verifier.verify(png_signatures[0], png_signatures[1])
    check_result(r, verifier, verifier.threshold)
    assert set(r.to_dict()) == FIELDS
    assert r.distance > 0


def test_decisions_follow_the_cuts(verifier, png_signatures):
    strict = Verifier(verifier.model, dataclasses.replace(verifier.card, threshold=1e-9, calibration={}), bf16=verifier.bf16)
    lenient = Verifier(verifier.model, dataclasses.replace(verifier.card, threshold=10.0, calibration={}), bf16=verifier.bf16)
    r_strict = strict.verify(png_signatures[0], png_signatures[2])
    r_lenient = lenient.verify(png_signatures[0], png_signatures[2])
    check_result(r_strict, strict, 1e-9)
    check_result(r_lenient, lenient, 10.0)
    assert (r_strict.decision, r_lenient.decision) == ("forged", "genuine")
    assert r_strict.distance == pytest.approx(r_lenient.distance)


def test_a_signature_cut_from_a_page_is_never_decided_forged(verifier, png_signatures):
    from sigml import decision

    strict = Verifier(verifier.model, dataclasses.replace(verifier.card, threshold=1e-9, calibration={}), bf16=verifier.bf16)
    lenient = Verifier(verifier.model, dataclasses.replace(verifier.card, threshold=10.0, calibration={}), bf16=verifier.bf16)
    ref, questioned = strict.preprocess(png_signatures[0]), strict.preprocess(png_signatures[2])
    capped = strict.verify_tensors(ref, questioned, from_a_page=True)
    assert (capped.decision, capped.flags) == ("inconclusive", (decision.PAGE_FLAG,))
    assert capped.distance == strict.verify_tensors(ref, questioned).distance
    kept = lenient.verify_tensors(ref, questioned, from_a_page=True)  # a genuine answer stands, unflagged
    assert (kept.decision, kept.flags) == ("genuine", ())
    profile = strict.verify_against(strict.embed_tensors([ref]), questioned, from_a_page=True)
    assert (profile.decision, profile.flags) == ("inconclusive", (decision.PAGE_FLAG,))
    assert [decision.on_a_page(d) for d in decision.DECISIONS] == ["genuine", "inconclusive", "inconclusive"]


def test_same_image_is_a_copy_never_genuine(verifier, png_signatures):
    """A genuine hand never repeats exactly: the same image twice is flagged, whatever the threshold says."""
    r = verifier.verify(png_signatures[3], png_signatures[3])
    assert r.distance == pytest.approx(0.0, abs=1e-4)
    assert r.flags == ("identical_to_reference",)
    assert r.decision == "inconclusive"


def test_copy_rule():
    from sigml import copies

    assert copies.is_copy(0.5, same_bytes=True)
    assert copies.is_copy(0.0) and not copies.is_copy(0.01)  # no card threshold: only a zero distance
    assert copies.is_copy(0.01, threshold=0.02) and not copies.is_copy(0.03, threshold=0.02)
    assert copies.fit_copy_threshold([0.3, 0.12, 0.5], quantile=0.0) == pytest.approx(0.06)
    with pytest.raises(ValueError):
        copies.fit_copy_threshold([])


def test_near_copies_are_images_of_the_same_signature():
    from sigml import copies
    from sigml.testing import signature_image

    made = copies.near_copies(signature_image(1))
    assert set(made) == set(copies.NEAR_COPIES)
    assert all(im.mode == "L" and im.width > 10 for im in made.values())


def test_embed(verifier, png_signatures):
    emb = verifier.embed_tensors([verifier.preprocess(s) for s in png_signatures[:3]])
    assert emb.shape == (3, 32) and emb.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(emb, axis=1), 1.0, atol=1e-2)
    assert verifier.embed_tensors(torch.zeros(0, 1, 150, 220)).shape == (0, 32)


def test_verify_against_normalises_the_mean_distance_by_the_references_spread(verifier, png_signatures):
    refs_src, questioned = png_signatures[:3], png_signatures[4]
    refs = verifier.embed_tensors([verifier.preprocess(s) for s in refs_src])
    r = verifier.verify_against(refs, questioned)
    assert isinstance(r, ProfileVerificationResult)
    check_result(r, verifier, verifier.card.threshold_for("reference_based"))
    pairwise = [verifier.verify(ref, questioned).distance for ref in refs_src]
    np.testing.assert_allclose(r.distances, pairwise, atol=1e-3)
    assert r.mean_distance == pytest.approx(float(np.mean(r.distances)), abs=1e-6)
    assert r.mean_distance == pytest.approx(float(np.mean(pairwise)), abs=1e-3)
    between = [verifier.verify(refs_src[i], refs_src[j]).distance for i, j in ((0, 1), (0, 2), (1, 2))]
    assert r.score_method == "normalized" and r.score == r.distance and r.reference_spread == pytest.approx(float(np.mean(between)), abs=1e-3)
    assert r.distance == pytest.approx(r.mean_distance / r.reference_spread, rel=1e-5)
    # a preprocessed tensor is accepted as the questioned signature
    r2 = verifier.verify_against(refs, verifier.preprocess(questioned))
    assert r2.distance == pytest.approx(r.distance, abs=1e-6)


def test_verify_against_floors_the_spread(verifier, png_signatures):
    """One image enrolled twice has no spread: the card's floor keeps the score finite and meaningful."""
    card = dataclasses.replace(verifier.card, reference_calibration={"spread_floor": 0.25})
    v = Verifier(verifier.model, card, bf16=verifier.bf16)
    refs = v.embed_tensors([v.preprocess(s) for s in [png_signatures[0], png_signatures[0]]])
    r = v.verify_against(refs, png_signatures[1])
    assert r.reference_spread == pytest.approx(0.0, abs=1e-6)
    assert r.distance == pytest.approx(r.mean_distance / 0.25, rel=1e-5)


def test_verify_against_with_a_mean_card(verifier, png_signatures):
    """Cards written before the normalized score was introduced are served as they were calibrated: the mean distance."""
    card = dataclasses.replace(verifier.card, reference_score="mean", thresholds={"pairwise": 0.5, "reference_based": 0.6})
    v = Verifier(verifier.model, card, bf16=verifier.bf16)
    r = v.verify_against(v.embed_tensors([v.preprocess(s) for s in png_signatures[:3]]), png_signatures[4])
    assert r.score_method == "mean" and r.threshold == 0.6
    assert r.distance == pytest.approx(r.mean_distance) == pytest.approx(float(np.mean(r.distances)), abs=1e-6)


def test_verify_against_one_reference_is_pairwise(verifier, png_signatures):
    r = verifier.verify_against(verifier.embed_tensors([verifier.preprocess(s) for s in png_signatures[:1]]), png_signatures[1])
    assert r.score_method == "pairwise" and r.reference_spread is None
    assert r.threshold == verifier.card.threshold
    assert r.distance == pytest.approx(verifier.verify(png_signatures[0], png_signatures[1]).distance, abs=1e-3)


def test_verify_against_uses_the_reference_threshold(verifier, png_signatures):
    card = dataclasses.replace(verifier.card, threshold=0.5, thresholds={"pairwise": 0.5, "reference_based": 1e-9})
    v = Verifier(verifier.model, card, bf16=verifier.bf16)
    r = v.verify_against(v.embed_tensors([v.preprocess(s) for s in png_signatures[:2]]), png_signatures[2])
    assert r.threshold == 1e-9 and r.decision == "forged"


@pytest.mark.parametrize("refs", [np.zeros((0, 32)), np.zeros(32), [[]]])
def test_verify_against_needs_references(verifier, png_signatures, refs):
    with pytest.raises(ValueError):
        verifier.verify_against(refs, png_signatures[0])


def test_image_errors_propagate(verifier, png_signatures):
    with pytest.raises(UnreadableImageError):
        verifier.verify(png_signatures[0], b"not an image")
    with pytest.raises(BlankImageError):
        verifier.verify(image_bytes(Image.new("L", (200, 100), 255)), png_signatures[0])


def test_explain(verifier, png_signatures):
    ref, q = verifier.preprocess(png_signatures[0]), verifier.preprocess(png_signatures[1])
    maps = verifier.explain(ref, q, patch=50)
    assert set(maps) == {"reference", "questioned"}
    for name, image in (("reference", ref), ("questioned", q)):
        heat = maps[name]
        assert heat.shape == (150, 220) and heat.dtype == np.float32
        assert heat.min() >= 0.0 and heat.max() <= 1.0
        assert heat.max() == pytest.approx(1.0)  # normalised to the most influential patch
        no_ink = image[0].numpy() == 0
        # patches without ink are skipped: a 50x50 cell with no ink at all has zero heat
        for y in range(0, 150, 50):
            for x in range(0, 220, 50):
                if no_ink[y : y + 50, x : x + 50].all():
                    assert heat[y : y + 50, x : x + 50].max() == 0


def test_explain_blank_tensor_gives_zero_map(verifier, png_signatures):
    ref = verifier.preprocess(png_signatures[0])
    maps = verifier.explain(ref, torch.zeros_like(ref), patch=75)
    assert maps["questioned"].max() == 0.0


def test_overlay_png(verifier, png_signatures):
    image = verifier.preprocess(png_signatures[0])
    heat = np.zeros((150, 220), np.float32)
    heat[:50, :50] = 1.0
    png = overlay_png(image, heat)
    decoded = Image.open(io.BytesIO(png))
    assert decoded.size == (220, 150) and decoded.mode == "RGB"
    arr = np.asarray(decoded)
    assert arr[10, 10, 0] > arr[10, 10, 1]  # red where the heat is


def test_threads_give_the_same_distances(verifier, png_signatures):
    pairs = [(png_signatures[i], png_signatures[(i + 1) % 5]) for i in range(5)] * 2
    sequential = [verifier.verify(a, b).distance for a, b in pairs]
    with ThreadPoolExecutor(max_workers=4) as pool:
        concurrent = list(pool.map(lambda p: verifier.verify(*p).distance, pairs))
    np.testing.assert_allclose(concurrent, sequential, rtol=0, atol=1e-6)


def test_from_files_errors(tmp_path, test_model_path):
    missing = tmp_path / "missing.safetensors"
    with pytest.raises(ModelLoadError) as info:
        Verifier.from_files(missing)
    assert str(missing) in str(info.value)
    no_card = tmp_path / "no_card.safetensors"
    shutil.copy(test_model_path, no_card)
    with pytest.raises(ModelLoadError, match="model card"):
        Verifier.from_files(no_card)
    corrupt = tmp_path / "corrupt.safetensors"
    corrupt.write_bytes(b"\x00" * 100)
    shutil.copy(card_path_for(test_model_path), card_path_for(corrupt))
    with pytest.raises(ModelLoadError) as info:
        Verifier.from_files(corrupt)
    assert str(corrupt) in str(info.value)


def test_load_verifier_is_cached(test_model_path, tmp_path):
    """A fresh path is loaded once, then served from the cache. The process-wide cache is not
    cleared: pytest-django runs the API's database tests first, and their session Verifier lives there."""
    copy = tmp_path / "cached.safetensors"
    shutil.copy(test_model_path, copy)
    shutil.copy(card_path_for(test_model_path), card_path_for(copy))
    misses = load_verifier.cache_info().misses
    first = load_verifier(str(copy))
    assert load_verifier.cache_info().misses == misses + 1
    assert load_verifier(str(copy)) is first
    assert load_verifier.cache_info().misses == misses + 1


def test_env_flag(monkeypatch):
    monkeypatch.delenv("SIGML_TEST_FLAG", raising=False)
    assert env_flag("SIGML_TEST_FLAG", True) is True
    for value, expected in (("0", False), ("false", False), ("1", True), (" Yes ", True), ("off", False)):
        monkeypatch.setenv("SIGML_TEST_FLAG", value)
        assert env_flag("SIGML_TEST_FLAG", True) is expected
    monkeypatch.setenv("SIGML_TEST_FLAG", "maybe")
    with pytest.raises(ValueError, match="SIGML_TEST_FLAG"):  # a typo is said, never read as False
        env_flag("SIGML_TEST_FLAG", True)


def test_pixel_difference_separates_a_copy_from_a_second_signature():
    from sigml import copies
    from sigml.preprocessing import preprocess
    from sigml.testing import image_bytes, signature_image

    original = signature_image(3)
    same = copies.fingerprint(preprocess(image_bytes(original)).numpy())
    jpeg = copies.fingerprint(preprocess(image_bytes(original, "JPEG", quality=60)).numpy())
    other = copies.fingerprint(preprocess(image_bytes(signature_image(4))).numpy())
    assert same.shape == (150 // copies.FINGERPRINT_POOL, 220 // copies.FINGERPRINT_POOL)
    assert copies.pixel_difference(same, same) == 0.0
    assert copies.pixel_difference(same, jpeg) < 0.3 < copies.pixel_difference(same, other)
    assert copies.is_copy(0.5, pixels=0.1, pixel_threshold=0.2) and not copies.is_copy(0.5, pixels=0.3, pixel_threshold=0.2)
    assert not copies.is_copy(0.5, pixels=0.1)  # no threshold in the card: no pixel rule


# --- what the API asks of the Verifier ----------------------------------------------------------------

def test_verify_pairs_answers_each_pair_as_verify_does(verifier, png_signatures):
    images = [verifier.preprocess(p) for p in png_signatures[:3]]
    results = verifier.verify_pairs(images, [(0, 1), (0, 2), (1, 1)])
    single = verifier.verify(png_signatures[0], png_signatures[1])
    assert results[0].distance == pytest.approx(single.distance, abs=1e-6)
    assert (results[0].decision, results[0].decision_rates) == (single.decision, single.decision_rates)
    assert results[2].distance == pytest.approx(0.0, abs=1e-6) and results[2].flags == ()  # no copy rule
    assert verifier.verify_pairs(images, []) == []


def test_profile_result_names_its_score(verifier, png_signatures):
    refs = verifier.embed_tensors([verifier.preprocess(s) for s in png_signatures[:3]])
    r = verifier.verify_against(list(refs), png_signatures[3])  # a list of embeddings, as the API stores them
    out = r.to_dict()
    assert out["score"] == out["distance"] == r.score and out["score_method"] == "normalized"
    assert out["mean_distance"] == pytest.approx(float(np.mean(out["distances"])), abs=1e-6)


def test_verify_against_scores_as_the_cards_reference_policy(verifier, png_signatures):
    refs = verifier.embed_tensors([verifier.preprocess(s) for s in png_signatures[:4]])
    q = verifier.embed_tensors([verifier.preprocess(s) for s in [png_signatures[4]]])
    r = verifier.verify_against(refs, png_signatures[4])
    policy = verifier.card.reference_policy(len(refs))
    assert r.score == pytest.approx(float(policy.scores(q, refs)[0]), rel=1e-5)
    assert r.threshold == verifier.card.threshold_for(policy.protocol) and r.score_method == policy.score_method


def test_copy_among_finds_the_closest_copy_and_reads_only_the_closest_stored_image(verifier, png_signatures):
    from sigml.inference import CopyCandidate

    tensors = [verifier.preprocess(p) for p in png_signatures[:3]]
    emb = verifier.embed_tensors(tensors)
    read = []

    def stored(i):
        def image():
            read.append(i)
            return tensors[i]
        return image

    # the questioned upload is image 1; candidates: stored images 0 and 2 (read lazily), then image 1 uploaded again
    candidates = [CopyCandidate(emb[0], image=stored(0)), CopyCandidate(emb[2], image=stored(2)),
                  CopyCandidate(emb[1], image=tensors[1])]
    found = verifier.copy_among(emb[1], tensors[1], candidates)
    assert found is not None and found[0] == 2 and found[1] == pytest.approx(0.0, abs=1e-4)  # the closest copy
    assert verifier.copy_among(emb[1], tensors[1], candidates[:2]) is None
    assert read == [min((0, 2), key=lambda i: float(np.linalg.norm(emb[i] - emb[1])))]  # only the closest is read
    assert verifier.copy_among(emb[1], tensors[1], [CopyCandidate(emb[0], same_bytes=True)]) == (0, pytest.approx(
        float(np.linalg.norm(emb[0] - emb[1])), abs=1e-6))
