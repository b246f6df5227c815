"""The reference limit holds under simultaneous uploads, usernames are one name
whatever their case, width or composition (also under simultaneous registrations), and a password of
whitespace is refused. The simultaneous requests against a real server are in test_live_bounded.py."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from django.contrib.auth import get_user_model
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import IntegrityError, connection, transaction
from rest_framework.test import APIClient

from accounts.models import UsernameKey, username_key
from api_helpers import error_of, png
from signatures import services
from signatures.models import Profile, Reference
from signatures.uploads import uploads_read

User = get_user_model()


def test_the_reference_limit_is_checked_again_inside_the_write_transaction(user_client, settings, monkeypatch):
    """Another request commits references while this one decodes its images (the race that took a
    profile to 65 references past 50): the second check, with the profile locked, refuses it."""
    settings.SIGVER_MAX_REFERENCES_PER_PROFILE = 5
    api, user = user_client("racer")
    profile_id = api.post("/api/profiles/", {"name": "P"}, format="json").json()["id"]
    stored = api.post(f"/api/profiles/{profile_id}/references/",
                      {"images": [SimpleUploadedFile(f"{i}.png", png(i), "image/png") for i in range(2)]}, format="multipart")
    assert stored.status_code == 201
    original = services.uploads_preprocess

    def while_decoding_another_request_commits(**kwargs):
        result = original(**kwargs)
        other = Reference.objects.filter(profile_id=profile_id).first()
        for _ in range(2):  # the profile now holds 4 of 5
            other.pk = None
            other.save()
        return result

    monkeypatch.setattr(services, "uploads_preprocess", while_decoding_another_request_commits)
    media = Path(settings.MEDIA_ROOT)
    files_before = sorted(media.rglob("*"))
    response = api.post(f"/api/profiles/{profile_id}/references/",
                        {"images": [SimpleUploadedFile(f"{i}.png", png(10 + i), "image/png") for i in range(2)]},
                        format="multipart")
    assert response.status_code == 400, response.content[:300]
    error = error_of(response)
    assert error["code"] == "too_many_references" and error["details"] == {"limit": 5, "existing": 4}
    assert Reference.objects.filter(profile_id=profile_id).count() == 4
    assert sorted(media.rglob("*")) == files_before  # no file written for the refused upload stays


def test_the_lock_is_taken_on_the_profile_row(user_client, settings, monkeypatch):
    """select_for_update on the profile inside the transaction (PostgreSQL: a row lock that serialises
    uploads to one profile; SQLite: no-op, its IMMEDIATE transactions already hold the write lock)."""
    api, user = user_client("locker")
    profile = Profile.objects.create(owner=user, name="P")
    calls = []
    original = Profile.objects.select_for_update

    def spy(*args, **kwargs):
        calls.append(transaction.get_connection().in_atomic_block)
        return original(*args, **kwargs)

    monkeypatch.setattr(Profile.objects, "select_for_update", spy)
    response = api.post(f"/api/profiles/{profile.pk}/references/",
                        {"image": SimpleUploadedFile("a.png", png(3), "image/png")}, format="multipart")
    assert response.status_code == 201
    assert calls == [True]


@pytest.mark.skipif(connection.vendor != "postgresql", reason="threads racing in one process need a real server: "
                    "run it with scripts/with_postgres.sh (SQLite: test_live_bounded.py races through gunicorn)")
@pytest.mark.django_db(transaction=True)
def test_simultaneous_uploads_on_postgresql_stay_within_the_limit(settings, verifier):
    """8 threads, each its own database connection, upload 3 references at the same moment to a profile
    with a limit of 10: the row lock lets exactly 3 of them in."""
    settings.SIGVER_MAX_REFERENCES_PER_PROFILE = 10
    user = User.objects.create_user(username="pg-racer", password="a-long-passphrase-1")
    profile = Profile.objects.create(owner=user, name="P")
    barrier = threading.Barrier(8)
    outcomes: list[str] = []

    def upload(i: int) -> None:
        files = [("images", SimpleUploadedFile(f"{i}-{k}.png", png(100 * i + k), "image/png")) for k in range(3)]
        try:
            barrier.wait(30)
            services.references_create(profile=profile, images=uploads_read(files))
            outcomes.append("created")
        except Exception as exc:  # noqa: BLE001 (the code is asserted below)
            outcomes.append(getattr(exc, "code", repr(exc)))
        finally:
            connection.close()

    threads = [threading.Thread(target=upload, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert sorted(outcomes) == ["created"] * 3 + ["too_many_references"] * 5, outcomes
    assert Reference.objects.filter(profile=profile).count() == 9


# --- usernames ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("first, second", [
    ("Frank", "frank"), ("frank", "FRANK"), ("Frank", "\uff26\uff52\uff41\uff4e\uff4b"),  # fullwidth Ｆｒａｎｋ
    ("\u00c9mile", "\u00e9mile"),  # É / é: SQLite's iexact is ASCII-only
    ("stra\u00dfe", "STRASSE"),  # ß case-folds to ss
    ("ﬁnn", "finn"),  # the ligature ﬁ
])
def test_variants_of_a_username_are_the_same_name(client, db, first, second):
    assert username_key(first) == username_key(second)
    created = client.post("/api/auth/register/", {"username": first, "password": "a-long-passphrase-1"}, format="json")
    assert created.status_code == 201, created.content[:300]
    again = client.post("/api/auth/register/", {"username": second, "password": "a-long-passphrase-1"}, format="json")
    assert again.status_code == 400, again.content[:300]
    assert error_of(again)["details"]["username"]
    assert User.objects.count() == 1


@pytest.mark.django_db
def test_the_database_refuses_a_second_variant_whatever_creates_it():
    """The unique index decides, not the serializer's check: so two registrations that both passed
    the check (at the same moment) cannot both commit, and neither can createsuperuser or the admin."""
    assert username_key("e\u0301mile") == username_key("\u00c9mile")  # a combining accent vs precomposed
    User.objects.create_user(username="Frank", password="x-long-passphrase")
    with pytest.raises(IntegrityError), transaction.atomic():
        User.objects.create_user(username="\uff46\uff52\uff41\uff4e\uff4b", password="x-long-passphrase")
    assert list(UsernameKey.objects.values_list("key", flat=True)) == ["frank"]
    user = User.objects.get(username="Frank")
    user.username = "Franz"
    user.save()
    assert UsernameKey.objects.get(user=user).key == "franz"
    User.objects.create_user(username="frank", password="x-long-passphrase")  # the old name is free again


def test_register_service_answers_400_when_the_index_refuses(db):
    from accounts.services import user_register
    from config.errors import ApplicationError
    from config.exceptions import status_of

    user_register(username="Frank", password="a-long-passphrase-1")
    with pytest.raises(ApplicationError) as caught:  # as if the serializer's early check had passed
        user_register(username="FRANK", password="a-long-passphrase-1")
    assert status_of(caught.value) == 400 and "already exists" in caught.value.message
    assert User.objects.count() == 1


def test_existing_usernames_still_sign_in_and_keep_their_exact_form(client, db):
    response = client.post("/api/auth/register/", {"username": "Zo\u00eb", "password": "a-long-passphrase-1"}, format="json")
    assert response.status_code == 201 and response.json()["username"] == "Zo\u00eb"
    token = client.post("/api/auth/token/", {"username": "Zo\u00eb", "password": "a-long-passphrase-1"}, format="json")
    assert token.status_code == 200


# --- passwords ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("password", [" " * 8, " " * 20, "\t" * 10, " \n \t \u3000 " * 3])
def test_a_password_of_whitespace_is_refused(client, db, password):
    response = client.post("/api/auth/register/", {"username": "spacey", "password": password}, format="json")
    assert response.status_code == 400, response.content[:300]
    error = error_of(response)
    assert "password" in error["details"] and "whitespace" in error["message"]
    assert not User.objects.filter(username="spacey").exists()


def test_a_password_with_spaces_inside_is_fine(client, db):
    response = client.post("/api/auth/register/", {"username": "spacey", "password": "  correct horse battery  "}, format="json")
    assert response.status_code == 201, response.content[:300]
    assert APIClient().post("/api/auth/token/", {"username": "spacey", "password": "  correct horse battery  "},
                            format="json").status_code == 200
