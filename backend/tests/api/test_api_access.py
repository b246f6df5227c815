"""Access control: every profile endpoint needs a token (401), and a user never sees or touches
another user's profiles, references or images (404, indistinguishable from a missing id)."""

from __future__ import annotations

from pathlib import Path

import pytest
from django.urls import reverse
from rest_framework.test import APIClient

from api_helpers import error_of, png, upload
from signatures.models import Profile, Reference

pytestmark = pytest.mark.django_db


@pytest.fixture
def alice_data(user_client) -> dict:
    """Alice with one profile holding two references."""
    api, user = user_client("alice")
    profile = api.post(reverse("api:profile-list"), {"name": "Alice's client"}, format="json").json()
    references = api.post(reverse("api:reference-list", kwargs={"profile_id": profile["id"]}),
                          {"images": [upload(png(1)), upload(png(2))]}, format="multipart").json()["results"]
    return {"api": api, "user": user, "profile": profile["id"], "reference": references[0]["id"],
            "references": [r["id"] for r in references]}


def endpoints(profile: int, reference: int) -> list[tuple[str, str, dict | None, str | None]]:
    """(method, url, data, format) of every owner-scoped endpoint."""
    p = {"profile_id": profile}
    pr = {"profile_id": profile, "reference_id": reference}
    return [
        ("get", reverse("api:profile-detail", kwargs=p), None, None),
        ("patch", reverse("api:profile-detail", kwargs=p), {"name": "taken over"}, "json"),
        ("delete", reverse("api:profile-detail", kwargs=p), None, None),
        ("get", reverse("api:reference-list", kwargs=p), None, None),
        ("post", reverse("api:reference-list", kwargs=p), {"image": upload(png(9))}, "multipart"),
        ("get", reverse("api:reference-detail", kwargs=pr), None, None),
        ("delete", reverse("api:reference-detail", kwargs=pr), None, None),
        ("get", reverse("api:reference-image", kwargs=pr), None, None),
        ("post", reverse("api:profile-verify", kwargs=p), {"questioned": upload(png(1))}, "multipart"),
    ]


def call(api: APIClient, method: str, url: str, data: dict | None, fmt: str | None):
    if data is None:
        return getattr(api, method)(url)
    return getattr(api, method)(url, data, format=fmt)


def unchanged(alice_data: dict) -> None:
    profile = Profile.objects.get(pk=alice_data["profile"])
    assert profile.name == "Alice's client"
    references = list(profile.references.order_by("id"))
    assert [r.pk for r in references] == alice_data["references"]
    assert all(Path(r.image.path).is_file() for r in references)


ACCOUNT_ENDPOINTS = [
    ("get", "api:profile-list", None, None),
    ("post", "api:profile-list", {"name": "x"}, "json"),
    ("delete", "api:account", None, None),
]


@pytest.mark.parametrize("credentials", [None, "Token 0123456789abcdef0123456789abcdef01234567", "Token", "Bearer x"])
def test_every_profile_endpoint_needs_a_valid_token(alice_data, credentials):
    api = APIClient()
    if credentials:
        api.credentials(HTTP_AUTHORIZATION=credentials)
    for method, url, data, fmt in endpoints(alice_data["profile"], alice_data["reference"]):
        response = call(api, method, url, data, fmt)
        assert response.status_code == 401, (method, url, response.content)
        assert error_of(response)["code"] == "not_authenticated"
        assert response["WWW-Authenticate"] == "Token"
    unchanged(alice_data)


@pytest.mark.parametrize("method, name, data, fmt", ACCOUNT_ENDPOINTS)
def test_account_endpoints_need_a_token(db, method, name, data, fmt):
    response = call(APIClient(), method, reverse(name), data, fmt)
    assert response.status_code == 401
    assert error_of(response)["code"] == "not_authenticated"


def test_an_inactive_users_token_is_refused(user_client):
    api, user = user_client("sleeper")
    user.is_active = False
    user.save()
    response = api.get(reverse("api:profile-list"))
    assert response.status_code == 401
    assert error_of(response)["code"] == "not_authenticated"


def test_another_user_gets_404_for_everything_of_alice(alice_data, user_client):
    bob, _ = user_client("bob")
    for method, url, data, fmt in endpoints(alice_data["profile"], alice_data["reference"]):
        response = call(bob, method, url, data, fmt)
        assert response.status_code == 404, (method, url, response.content)
        error = error_of(response)
        assert error["code"] == "not_found"
        assert "alice" not in error["message"].lower()
    unchanged(alice_data)
    assert Profile.objects.filter(owner=alice_data["user"]).count() == 1


def test_404_for_others_is_the_same_as_for_missing_ids(alice_data, user_client):
    bob, _ = user_client("bob")
    missing = Profile.objects.order_by("-id").first().pk + 100
    theirs = bob.get(reverse("api:profile-detail", kwargs={"profile_id": alice_data["profile"]}))
    nothing = bob.get(reverse("api:profile-detail", kwargs={"profile_id": missing}))
    assert theirs.status_code == nothing.status_code == 404
    assert theirs.json() == nothing.json()


def test_lists_show_only_ones_own_profiles(alice_data, user_client):
    bob, _ = user_client("bob")
    bob.post(reverse("api:profile-list"), {"name": "Bob's client"}, format="json")
    names = [p["name"] for p in bob.get(reverse("api:profile-list")).json()["results"]]
    assert names == ["Bob's client"]
    alice_names = [p["name"] for p in alice_data["api"].get(reverse("api:profile-list")).json()["results"]]
    assert alice_names == ["Alice's client"]


def test_a_reference_is_reachable_only_through_its_own_profile(alice_data):
    """Alice's reference under another of Alice's profiles is a 404 too (no id mixing)."""
    api = alice_data["api"]
    other = api.post(reverse("api:profile-list"), {"name": "second"}, format="json").json()["id"]
    kwargs = {"profile_id": other, "reference_id": alice_data["reference"]}
    assert api.get(reverse("api:reference-detail", kwargs=kwargs)).status_code == 404
    assert api.get(reverse("api:reference-image", kwargs=kwargs)).status_code == 404
    assert api.delete(reverse("api:reference-detail", kwargs=kwargs)).status_code == 404
    assert Reference.objects.filter(pk=alice_data["reference"]).exists()


def test_deleting_ones_account_leaves_others_alone(alice_data, user_client, django_capture_on_commit_callbacks):
    bob, _ = user_client("bob")
    with django_capture_on_commit_callbacks(execute=True):
        assert bob.delete(reverse("api:account")).status_code == 204
    unchanged(alice_data)


def test_reference_images_are_not_reachable_as_static_media(alice_data, client):
    name = Reference.objects.get(pk=alice_data["reference"]).image.name
    for prefix in ("/media/", "/media-not-served/", "/"):
        response = client.get(prefix + name)
        assert response.status_code == 404
        assert response["Content-Type"] == "application/json"
