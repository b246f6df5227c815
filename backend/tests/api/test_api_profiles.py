"""Enrollment: profiles (CRUD), references (upload, embeddings stored once, files under MEDIA_ROOT,
list, image, delete) and verifying a questioned signature against a profile's references."""

from __future__ import annotations

import stat
from pathlib import Path

import numpy as np
import pytest
from django.urls import reverse

from api_helpers import blank_png, bomb_png, error_of, png, upload
from signatures.models import Profile, Reference

pytestmark = pytest.mark.django_db

PROFILE_FIELDS = {"id", "name", "external_id", "created", "reference_count"}
REFERENCE_FIELDS = {"id", "created", "image_url", "width", "height", "content_type", "model_version", "consistency_score",
                    "outlier", "crop", "from_a_page"}
VERIFY_FIELDS = {"decision", "score", "score_method", "threshold", "decision_rates", "flags", "warnings",
                 "copy_of_reference", "model_version", "elapsed_ms", "references", "reference_count", "mean_distance",
                 "reference_spread", "auto_crops", "match"}  # match: deprecated (docs/api.md "Changes")


def profile_url(profile_id: int) -> str:
    return reverse("api:profile-detail", kwargs={"profile_id": profile_id})


def references_url(profile_id: int) -> str:
    return reverse("api:reference-list", kwargs={"profile_id": profile_id})


def reference_url(profile_id: int, reference_id: int) -> str:
    return reverse("api:reference-detail", kwargs={"profile_id": profile_id, "reference_id": reference_id})


def verify_url(profile_id: int) -> str:
    return reverse("api:profile-verify", kwargs={"profile_id": profile_id})


def create_profile(api, name: str = "Ada Lovelace", **extra) -> dict:
    response = api.post(reverse("api:profile-list"), {"name": name, **extra}, format="json")
    assert response.status_code == 201, response.content
    return response.json()


def add_references(api, profile_id: int, seeds: list[int]) -> list[dict]:
    response = api.post(references_url(profile_id), {"images": [upload(png(s), f"r{s}.png") for s in seeds]},
                        format="multipart")
    assert response.status_code == 201, response.content
    return response.json()["results"]


def media_files(settings) -> list[Path]:
    root = Path(settings.MEDIA_ROOT)
    return sorted(p for p in root.rglob("*") if p.is_file()) if root.exists() else []


@pytest.fixture
def api(user_client):
    return user_client("alice")[0]


@pytest.fixture
def embed_calls(verifier, monkeypatch) -> list[int]:
    """The batch size of every forward pass made while the test runs."""
    calls: list[int] = []
    original = verifier.embed_tensors

    def counting(batch, *args, **kwargs):
        calls.append(len(batch))
        return original(batch, *args, **kwargs)

    monkeypatch.setattr(verifier, "embed_tensors", counting)
    return calls


# --- profiles ---------------------------------------------------------------------------------------

def test_create_get_list_profiles(api):
    created = create_profile(api, "Ada Lovelace", external_id="client-42")
    assert set(created) == PROFILE_FIELDS
    assert created["name"] == "Ada Lovelace" and created["external_id"] == "client-42"
    assert created["reference_count"] == 0
    other = create_profile(api, "Charles Babbage")
    assert other["external_id"] == ""

    detail = api.get(profile_url(created["id"]))
    assert detail.status_code == 200 and detail.json() == created

    listing = api.get(reverse("api:profile-list"))
    assert listing.status_code == 200
    body = listing.json()
    assert body["count"] == 2 and body["next"] is None and body["previous"] is None
    assert [p["name"] for p in body["results"]] == ["Ada Lovelace", "Charles Babbage"]


def test_profile_list_is_paginated(api, settings):
    settings.SIGVER_PAGE_SIZE = 2
    for i in range(5):
        create_profile(api, f"person {i}")
    first = api.get(reverse("api:profile-list")).json()
    assert first["count"] == 5 and len(first["results"]) == 2 and first["next"]
    third = api.get(reverse("api:profile-list"), {"page": 3}).json()
    assert [p["name"] for p in third["results"]] == ["person 4"] and third["next"] is None
    assert len(api.get(reverse("api:profile-list"), {"page_size": 4}).json()["results"]) == 4
    response = api.get(reverse("api:profile-list"), {"page": 99})
    assert response.status_code == 404
    assert error_of(response)["code"] == "not_found"


def test_patch_profile(api):
    profile = create_profile(api)
    response = api.patch(profile_url(profile["id"]), {"name": "Ada King"}, format="json")
    assert response.status_code == 200
    assert response.json()["name"] == "Ada King" and response.json()["external_id"] == ""
    response = api.patch(profile_url(profile["id"]), {"external_id": "x-1"}, format="json")
    assert response.json()["name"] == "Ada King" and response.json()["external_id"] == "x-1"
    assert Profile.objects.get(pk=profile["id"]).name == "Ada King"


@pytest.mark.parametrize("payload, code", [
    ({}, "missing_field"),
    ({"name": ""}, "invalid"),
    ({"name": "x" * 201}, "invalid"),
    ({"name": "ok", "external_id": "y" * 201}, "invalid"),
])
def test_create_profile_validation(api, payload, code):
    response = api.post(reverse("api:profile-list"), payload, format="json")
    assert response.status_code == 400
    error = error_of(response)
    assert error["code"] == code
    assert Profile.objects.count() == 0


def test_patch_profile_validation(api):
    profile = create_profile(api)
    response = api.patch(profile_url(profile["id"]), {"name": ""}, format="json")
    assert response.status_code == 400 and "name" in error_of(response)["details"]


def test_unicode_and_long_names_are_stored(api):
    name = "Zoë Ångström 张伟 " + "é" * 150
    profile = create_profile(api, name)
    assert api.get(profile_url(profile["id"])).json()["name"] == name


def test_unknown_profile_is_404(api):
    huge = 10**20  # beyond a 64-bit integer column: still a 404, not a database error
    for response in (api.get(profile_url(999)), api.patch(profile_url(999), {"name": "x"}, format="json"),
                     api.delete(profile_url(999)), api.get(references_url(999)), api.get(profile_url(huge)),
                     api.get(references_url(huge))):
        assert response.status_code == 404
        assert error_of(response)["code"] == "not_found"
    profile = create_profile(api)
    response = api.get(reference_url(profile["id"], huge))
    assert response.status_code == 404 and error_of(response)["code"] == "not_found"


# --- references -------------------------------------------------------------------------------------

def test_upload_several_references_embeds_them_once_in_one_batch(api, verifier, settings, embed_calls):
    profile = create_profile(api)
    results = add_references(api, profile["id"], [1, 2, 3])
    assert embed_calls == [3]  # one forward pass for the three images
    assert len(results) == 3 and all(set(r) == REFERENCE_FIELDS for r in results)
    assert results[0]["width"] == 300 and results[0]["height"] == 120
    assert results[0]["content_type"] == "image/png" and results[0]["model_version"] == verifier.model_version

    references = list(Reference.objects.order_by("id"))
    assert [r.pk for r in references] == [r["id"] for r in results]
    expected = verifier.embed_tensors([verifier.preprocess(s) for s in [png(1), png(2), png(3)]])
    for reference, vector in zip(references, expected):
        assert reference.embedding_dim == verifier.card.architecture.embedding_dim
        np.testing.assert_allclose(reference.embedding_array(), vector, rtol=1e-4, atol=1e-4)
        assert reference.sha256 and reference.size_bytes == len(reference.image.read())

    files = media_files(settings)
    assert len(files) == 3
    media_root = Path(settings.MEDIA_ROOT).resolve()
    for reference, path in zip(references, files):
        assert path.resolve().is_relative_to(media_root / "references")
    assert {p.name for p in files} == {Path(r.image.name).name for r in references}
    assert api.get(profile_url(profile["id"])).json()["reference_count"] == 3


def test_upload_one_reference_with_field_image(api, settings):
    profile = create_profile(api)
    response = api.post(references_url(profile["id"]), {"image": upload(png(4))}, format="multipart")
    assert response.status_code == 201, response.content
    assert len(response.json()["results"]) == 1
    assert Reference.objects.count() == 1 and len(media_files(settings)) == 1


def test_stored_files_get_generated_names_and_are_not_executable(api, settings):
    profile = create_profile(api)
    add_references(api, profile["id"], [1])
    response = api.post(references_url(profile["id"]),
                        {"image": upload(png(2), "../../evil.php.png")}, format="multipart")
    assert response.status_code == 201
    for path in media_files(settings):
        assert "evil" not in path.name and path.suffix == ".png"
        assert path.stat().st_mode & (stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH) == 0


def test_list_and_get_references(api):
    profile = create_profile(api)
    created = add_references(api, profile["id"], [1, 2])
    listing = api.get(references_url(profile["id"]))
    assert listing.status_code == 200
    assert listing.json()["results"] == created
    assert listing.json()["guidance"]["reference_count"] == 2 and listing.json()["guidance"]["enough"] is False
    one = api.get(reference_url(profile["id"], created[1]["id"]))
    assert one.status_code == 200 and one.json() == created[1]
    assert api.get(reference_url(profile["id"], 999)).status_code == 404


def test_reference_image_is_served_to_its_owner(api):
    profile = create_profile(api)
    (reference,) = add_references(api, profile["id"], [5])
    response = api.get(reference["image_url"])
    assert response.status_code == 200
    assert response["Content-Type"] == "image/png"
    assert response["Cache-Control"] == "private, no-store"
    assert b"".join(response.streaming_content) == png(5)


def test_reference_image_whose_file_vanished_is_404(api):
    profile = create_profile(api)
    (reference,) = add_references(api, profile["id"], [5])
    Reference.objects.get(pk=reference["id"]).image.delete(save=False)
    response = api.get(reference["image_url"])
    assert response.status_code == 404
    assert error_of(response)["code"] == "not_found"


def test_delete_reference_removes_row_and_file(api, settings, django_capture_on_commit_callbacks):
    profile = create_profile(api)
    first, second = add_references(api, profile["id"], [1, 2])
    first_file = Path(Reference.objects.get(pk=first["id"]).image.path)
    with django_capture_on_commit_callbacks(execute=True):
        response = api.delete(reference_url(profile["id"], first["id"]))
    assert response.status_code == 204 and not response.content
    assert not Reference.objects.filter(pk=first["id"]).exists()
    assert not first_file.exists()
    assert len(media_files(settings)) == 1
    assert [r["id"] for r in api.get(references_url(profile["id"])).json()["results"]] == [second["id"]]
    assert api.delete(reference_url(profile["id"], first["id"])).status_code == 404


def test_delete_profile_removes_its_references_and_files(api, settings, django_capture_on_commit_callbacks):
    keep = create_profile(api, "keep")
    add_references(api, keep["id"], [7])
    profile = create_profile(api, "gone")
    add_references(api, profile["id"], [1, 2])
    assert len(media_files(settings)) == 3
    with django_capture_on_commit_callbacks(execute=True):
        response = api.delete(profile_url(profile["id"]))
    assert response.status_code == 204
    assert not Profile.objects.filter(pk=profile["id"]).exists()
    assert Reference.objects.filter(profile_id=profile["id"]).count() == 0
    assert len(media_files(settings)) == 1 and Reference.objects.count() == 1
    assert api.get(profile_url(profile["id"])).status_code == 404


BAD_UPLOADS = {
    "not an image": (b"GIF89a but not really" * 5, 415, "invalid_image"),
    "zero bytes": (b"", 415, "invalid_image"),
    "truncated": (png(1)[:150], 415, "invalid_image"),
    "decompression bomb": (bomb_png(), 413, "image_too_large"),
    "blank": (blank_png(), 400, "blank_image"),
}


@pytest.mark.parametrize("case", list(BAD_UPLOADS))
def test_one_bad_reference_stores_nothing(api, settings, case):
    data, status, code = BAD_UPLOADS[case]
    profile = create_profile(api)
    files = [upload(png(1), "a.png"), upload(data, "bad.png"), upload(png(2), "c.png")]
    response = api.post(references_url(profile["id"]), {"images": files}, format="multipart")
    assert response.status_code == status, response.content
    error = error_of(response)
    assert error["code"] == code and error["details"]["field"] == "images[1]"
    assert Reference.objects.count() == 0
    assert media_files(settings) == []


def test_references_missing_field(api):
    profile = create_profile(api)
    response = api.post(references_url(profile["id"]), {}, format="multipart")
    assert response.status_code == 400
    error = error_of(response)
    assert error["code"] == "missing_field" and "images" in error["details"]


def test_references_as_json_is_415(api):
    profile = create_profile(api)
    response = api.post(references_url(profile["id"]), {"images": ["x"]}, format="json")
    assert response.status_code == 415
    assert error_of(response)["code"] == "unsupported_media_type"


def test_reference_file_too_large(api, settings):
    settings.SIGVER_MAX_UPLOAD_BYTES = 500
    profile = create_profile(api)
    response = api.post(references_url(profile["id"]), {"image": upload(png(1))}, format="multipart")
    assert response.status_code == 413
    assert error_of(response)["code"] == "file_too_large"
    assert Reference.objects.count() == 0


def test_references_per_profile_are_limited(api, settings):
    settings.SIGVER_MAX_REFERENCES_PER_PROFILE = 3
    profile = create_profile(api)
    add_references(api, profile["id"], [1, 2])
    response = api.post(references_url(profile["id"]), {"images": [upload(png(3)), upload(png(4))]},
                        format="multipart")
    assert response.status_code == 400
    error = error_of(response)
    assert error["code"] == "too_many_references" and error["details"]["limit"] == 3
    assert Reference.objects.count() == 2
    add_references(api, profile["id"], [3])


def test_a_failed_database_write_leaves_no_file(api, settings, monkeypatch):
    from django.db import OperationalError

    profile = create_profile(api)
    calls = {"n": 0}
    original = Reference.save

    def flaky_save(self, *args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 2:
            raise OperationalError("database is locked")
        return original(self, *args, **kwargs)

    monkeypatch.setattr(Reference, "save", flaky_save)
    response = api.post(references_url(profile["id"]), {"images": [upload(png(1)), upload(png(2))]},
                        format="multipart")
    assert response.status_code == 503
    assert error_of(response)["code"] == "database_unavailable"
    assert Reference.objects.count() == 0
    assert media_files(settings) == []


# --- verify against a profile -----------------------------------------------------------------------

def test_profile_verify(api, verifier, embed_calls):
    profile = create_profile(api)
    created = add_references(api, profile["id"], [1, 2, 3])
    embed_calls.clear()
    response = api.post(verify_url(profile["id"]), {"questioned": upload(png(2))}, format="multipart")
    assert response.status_code == 200, response.content
    assert embed_calls == [1]  # only the questioned signature: the references' embeddings are stored
    body = response.json()
    assert set(body) == VERIFY_FIELDS
    assert body["reference_count"] == 3
    assert [r["id"] for r in body["references"]] == [r["id"] for r in created]

    stored = verifier.embed_tensors([verifier.preprocess(s) for s in [png(1), png(2), png(3)]])
    questioned = verifier.embed_tensors([verifier.preprocess(s) for s in [png(2)]])[0]
    expected = np.linalg.norm(stored - questioned[None, :], axis=1)
    distances = [r["distance"] for r in body["references"]]
    np.testing.assert_allclose(distances, expected, rtol=1e-3, atol=1e-3)
    assert distances[1] == pytest.approx(0.0, abs=1e-3)  # the same image as reference 2
    # the card scores references "normalized": the mean distance over the references' own spread
    pair = [np.linalg.norm(stored[i] - stored[j]) for i, j in ((0, 1), (0, 2), (1, 2))]
    assert body["score_method"] == verifier.card.reference_score == "normalized"
    assert body["mean_distance"] == pytest.approx(float(np.mean(distances)), rel=1e-5, abs=1e-6)
    assert body["reference_spread"] == pytest.approx(float(np.mean(pair)), rel=1e-3)
    assert body["score"] == pytest.approx(body["mean_distance"] / body["reference_spread"], rel=1e-4)
    assert "distance" not in body  # v2: the score is no distance, and has one name
    assert body["threshold"] == verifier.card.threshold_for("reference_based") != verifier.card.threshold
    assert body["model_version"] == verifier.model_version and body["elapsed_ms"] >= 0
    # the questioned image IS reference 2: a copy, never genuine
    assert body["flags"] == ["identical_to_reference"] and body["copy_of_reference"] == created[1]["id"]
    assert body["decision"] == "inconclusive" and body["match"] is False


def test_profile_verify_of_a_new_signature(api, verifier):
    profile = create_profile(api)
    add_references(api, profile["id"], [1, 2, 3])
    body = api.post(verify_url(profile["id"]), {"questioned": upload(png(4))}, format="multipart").json()
    assert body["flags"] == [] and body["copy_of_reference"] is None
    # the test card has no decision bands: the decision falls back to the reference threshold
    assert body["decision"] == ("genuine" if body["score"] <= body["threshold"] else "forged")
    assert body["match"] == (body["decision"] == "genuine")
    assert body["decision_rates"] == {"genuine_below": body["threshold"], "forged_above": body["threshold"]}


def test_profile_verify_uses_the_reference_based_band(api, verifier, monkeypatch):
    profile = create_profile(api)
    add_references(api, profile["id"], [1, 2, 3])
    score = api.post(verify_url(profile["id"]), {"questioned": upload(png(4))}, format="multipart").json()["score"]
    bands = {"pairwise": {"genuine_below": -1.0, "forged_above": -1.0},  # would say forged: must not be used
             "reference_based": {"genuine_below": score + 0.01, "forged_above": score + 0.02}}
    monkeypatch.setattr(verifier.card, "decision_bands", bands)
    body = api.post(verify_url(profile["id"]), {"questioned": upload(png(4))}, format="multipart").json()
    assert body["decision"] == "genuine"
    assert body["decision_rates"]["genuine_below"] == pytest.approx(score + 0.01)


def test_profile_verify_with_one_reference_is_a_pairwise_comparison(api, verifier):
    profile = create_profile(api)
    add_references(api, profile["id"], [1])
    body = api.post(verify_url(profile["id"]), {"questioned": upload(png(4))}, format="multipart").json()
    expected = float(np.linalg.norm(np.subtract(*verifier.embed_tensors([verifier.preprocess(s) for s in [png(1), png(4)]]))))
    assert body["score_method"] == "pairwise" and body["reference_spread"] is None
    assert body["score"] == pytest.approx(expected, rel=1e-3) and body["score"] == pytest.approx(body["mean_distance"])
    assert body["threshold"] == verifier.card.threshold  # no spread to normalise by: the pair threshold


def test_profile_verify_of_a_reference_itself_is_a_flagged_copy(api):
    profile = create_profile(api)
    created = add_references(api, profile["id"], [6])
    body = api.post(verify_url(profile["id"]), {"questioned": upload(png(6))}, format="multipart").json()
    assert body["score"] == pytest.approx(0.0, abs=1e-3)
    assert body["flags"] == ["identical_to_reference"] and body["copy_of_reference"] == created[0]["id"]
    assert body["decision"] != "genuine" and body["match"] is False


def test_profile_verify_without_references(api):
    profile = create_profile(api)
    response = api.post(verify_url(profile["id"]), {"questioned": upload(png(1))}, format="multipart")
    assert response.status_code == 400
    assert error_of(response)["code"] == "no_references"


def test_profile_verify_missing_field(api):
    profile = create_profile(api)
    add_references(api, profile["id"], [1])
    response = api.post(verify_url(profile["id"]), {"reference": upload(png(1))}, format="multipart")
    assert response.status_code == 400
    error = error_of(response)
    assert error["code"] == "missing_field" and "questioned" in error["details"]


@pytest.mark.parametrize("case", list(BAD_UPLOADS))
def test_profile_verify_bad_questioned(api, case):
    data, status, code = BAD_UPLOADS[case]
    profile = create_profile(api)
    add_references(api, profile["id"], [1])
    response = api.post(verify_url(profile["id"]), {"questioned": upload(data)}, format="multipart")
    assert response.status_code == status, response.content
    error = error_of(response)
    assert error["code"] == code and error["details"]["field"] == "questioned"


def test_references_of_another_model_version_are_reembedded_once(api, verifier, embed_calls):
    profile = create_profile(api)
    created = add_references(api, profile["id"], [1, 2])
    Reference.objects.filter(pk=created[0]["id"]).update(
        model_version="older@00000000", embedding=Reference.encode_embedding(np.zeros(7, np.float32)), embedding_dim=7,
    )
    embed_calls.clear()
    first = api.post(verify_url(profile["id"]), {"questioned": upload(png(1))}, format="multipart").json()
    assert sorted(embed_calls) == [1, 1]  # the questioned image, then the one stale reference
    assert first["references"][0]["distance"] == pytest.approx(0.0, abs=1e-3)
    refreshed = Reference.objects.get(pk=created[0]["id"])
    assert refreshed.model_version == verifier.model_version
    assert refreshed.embedding_dim == verifier.card.architecture.embedding_dim
    embed_calls.clear()
    second = api.post(verify_url(profile["id"]), {"questioned": upload(png(1))}, format="multipart").json()
    assert embed_calls == [1]
    assert second["score"] == pytest.approx(first["score"], abs=1e-5)


def test_profile_verify_model_unavailable(api, settings, tmp_path):
    profile = create_profile(api)
    add_references(api, profile["id"], [1])
    settings.SIGVER_MODEL_PATH = tmp_path / "gone.safetensors"
    response = api.post(verify_url(profile["id"]), {"questioned": upload(png(1))}, format="multipart")
    assert response.status_code == 503
    assert error_of(response)["code"] == "model_unavailable"
