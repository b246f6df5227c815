"""Enrolment checks: duplicate and copied references refused, outliers flagged, guidance on how many references,
external ids unique per owner, profile look-up by external id or search."""

from __future__ import annotations

import numpy as np
import pytest
from django.urls import reverse

from api_helpers import error_of, png, upload
from signatures.models import Reference
from sigml import protocols
from sigml.testing import image_bytes, signature_image
from test_api_profiles import add_references, create_profile, reference_url, references_url

PROFILES = reverse("api:profile-list")


@pytest.fixture
def api(user_client):
    return user_client("alice")[0]


def test_the_same_image_twice_is_refused_and_nothing_is_stored(api):
    profile = create_profile(api)
    first = add_references(api, profile["id"], [1])
    response = api.post(references_url(profile["id"]), {"image": upload(png(1), "again.png")}, format="multipart")
    assert response.status_code == 409
    error = error_of(response)
    assert error["code"] == "duplicate_reference" and error["details"]["duplicate_of"] == first[0]["id"]
    assert Reference.objects.filter(profile_id=profile["id"]).count() == 1


def test_a_duplicate_inside_one_upload_refuses_the_whole_upload(api):
    profile = create_profile(api)
    response = api.post(references_url(profile["id"]),
                        {"images": [upload(png(2), "a.png"), upload(png(3), "b.png"), upload(png(2), "c.png")]},
                        format="multipart")
    assert response.status_code == 409
    error = error_of(response)
    assert error["details"]["field"] == "images[2]" and error["details"]["duplicate_of"] is None
    assert "`images[0]`" in error["message"]
    assert Reference.objects.filter(profile_id=profile["id"]).count() == 0


def test_a_re_encoded_copy_is_refused_below_the_copy_threshold(api, verifier, monkeypatch):
    profile = create_profile(api)
    original = signature_image(7)
    response = api.post(references_url(profile["id"]), {"image": upload(image_bytes(original))}, format="multipart")
    assert response.status_code == 201
    jpeg = image_bytes(original, "JPEG", quality=60)
    distance = verifier.verify(image_bytes(original), jpeg).distance
    monkeypatch.setattr(verifier.card, "copy_threshold", distance * 2)
    response = api.post(references_url(profile["id"]), {"image": upload(jpeg, "scan.jpg", "image/jpeg")},
                        format="multipart")
    assert response.status_code == 409 and error_of(response)["code"] == "duplicate_reference"
    monkeypatch.setattr(verifier.card, "copy_threshold", distance / 2)
    response = api.post(references_url(profile["id"]), {"image": upload(jpeg, "scan.jpg", "image/jpeg")},
                        format="multipart")
    assert response.status_code == 201


def test_consistency_scores_and_outliers(api, verifier, monkeypatch):
    profile = create_profile(api)
    created = add_references(api, profile["id"], [1, 2, 3, 4])
    body = api.get(references_url(profile["id"])).json()
    stored = verifier.embed_tensors([verifier.preprocess(png(s)) for s in (1, 2, 3, 4)])
    expected = protocols.reference_scores(stored[0], stored[1:], verifier.card.reference_score)[0]
    assert body["results"][0]["consistency_score"] == pytest.approx(float(expected), rel=1e-3)
    # an outlier is a reference the others would decide forged: move the card's forged cut to see both answers
    monkeypatch.setattr(verifier.card, "decision_bands", {"reference_based": {"genuine_below": 0.0, "forged_above": 0.0}})
    assert all(r["outlier"] for r in api.get(references_url(profile["id"])).json()["results"])
    monkeypatch.setattr(verifier.card, "decision_bands", {"reference_based": {"genuine_below": 1e6, "forged_above": 1e6}})
    assert not any(r["outlier"] for r in api.get(references_url(profile["id"])).json()["results"])
    one = api.get(reference_url(profile["id"], created[2]["id"])).json()
    assert one["consistency_score"] == body["results"][2]["consistency_score"] and one["outlier"] is False


def test_fewer_than_three_references_have_no_consistency_score(api):
    profile = create_profile(api)
    created = add_references(api, profile["id"], [1, 2])
    assert [(r["consistency_score"], r["outlier"]) for r in created] == [(None, False), (None, False)]


@pytest.mark.parametrize("count, enough, says", [
    (1, False, "one reference is compared pair by pair"), (3, False, "only 3 references"),
    (5, True, "enough for the published figures with 5"), (10, True, "as many as the published figures with 10"),
])
def test_guidance_on_the_number_of_references(api, count, enough, says):
    profile = create_profile(api)
    response = api.post(references_url(profile["id"]),
                        {"images": [upload(png(s), f"r{s}.png") for s in range(20, 20 + count)]}, format="multipart")
    guidance = response.json()["guidance"]
    assert guidance["reference_count"] == count and guidance["enough"] is enough and says in guidance["message"]
    assert guidance["published_k"] == [5, 10]


def test_external_id_is_unique_per_owner(api, user_client):
    first = create_profile(api, external_id="C-1001")
    response = api.post(PROFILES, {"name": "Someone else", "external_id": "C-1001"}, format="json")
    assert response.status_code == 409
    error = error_of(response)
    assert error["code"] == "external_id_taken" and error["details"]["profile"] == first["id"]
    create_profile(api, "No id 1")
    create_profile(api, "No id 2")  # a blank external id is no id: any number of them
    second = create_profile(api, "Grace", external_id="C-1002")
    response = api.patch(reverse("api:profile-detail", kwargs={"profile_id": second["id"]}),
                         {"external_id": "C-1001"}, format="json")
    assert response.status_code == 409
    bob = user_client("bob")[0]
    assert bob.post(PROFILES, {"name": "Bob's client", "external_id": "C-1001"}, format="json").status_code == 201


def test_look_up_profiles_by_external_id_and_search(api, user_client):
    ada = create_profile(api, "Ada Lovelace", external_id="C-1")
    grace = create_profile(api, "Grace Hopper", external_id="C-2")
    create_profile(user_client("bob")[0], "Ada Bob", external_id="C-1")  # someone else's: never listed
    ids = lambda query: [p["id"] for p in api.get(PROFILES, query).json()["results"]]  # noqa: E731
    assert ids({"external_id": "C-1"}) == [ada["id"]]
    assert ids({"external_id": "C-9"}) == []
    assert ids({"search": "hopp"}) == [grace["id"]]
    assert ids({"search": "c-"}) == [ada["id"], grace["id"]]
    assert ids({}) == [ada["id"], grace["id"]]


def test_a_re_encoded_copy_of_a_reference_is_caught_by_the_pixel_rule(api, verifier, monkeypatch):
    """The embedding forgets how an image was taken; the picture comparison does not: a JPEG of an enrolled reference
    is refused at enrolment and flagged at profile verify (as the closest reference), whatever the embedding says."""
    monkeypatch.setattr(verifier.card, "copy_threshold", None)
    monkeypatch.setattr(verifier.card, "copy_pixel_threshold", 0.3)
    profile = create_profile(api)
    originals = [signature_image(s) for s in (11, 12, 13)]
    response = api.post(references_url(profile["id"]),
                        {"images": [upload(image_bytes(o), f"r{i}.png") for i, o in enumerate(originals)]},
                        format="multipart")
    assert response.status_code == 201
    created = response.json()["results"]
    jpeg = image_bytes(originals[1], "JPEG", quality=60)
    response = api.post(references_url(profile["id"]), {"image": upload(jpeg, "scan.jpg", "image/jpeg")},
                        format="multipart")
    assert response.status_code == 409 and error_of(response)["details"]["duplicate_of"] == created[1]["id"]
    body = api.post(reverse("api:profile-verify", kwargs={"profile_id": profile["id"]}),
                    {"questioned": upload(jpeg, "q.jpg", "image/jpeg")}, format="multipart").json()
    assert body["flags"] == ["identical_to_reference"] and body["copy_of_reference"] == created[1]["id"]
    fresh = api.post(reverse("api:profile-verify", kwargs={"profile_id": profile["id"]}),
                     {"questioned": upload(png(14))}, format="multipart").json()
    assert fresh["flags"] == []
