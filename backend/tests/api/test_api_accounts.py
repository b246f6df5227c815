"""Accounts: register, sign in (a new token each time), sign out, change the password, tokens that end, delete the
account (its case records stay, anonymised)."""

from __future__ import annotations

from pathlib import Path

import pytest
from django.contrib.auth import get_user_model
from django.urls import reverse
from knox.crypto import hash_token
from knox.models import AuthToken
from rest_framework.test import APIClient

from api_helpers import error_of, png, upload
from signatures.models import Profile, Reference

pytestmark = pytest.mark.django_db

User = get_user_model()
REGISTER = reverse("api:register")
TOKEN = reverse("api:token")
ACCOUNT = reverse("api:account")
SIGN_OUT = reverse("api:sign-out")
PASSWORD_URL = reverse("api:password")
PROFILES = reverse("api:profile-list")
PASSWORD = "correct horse battery staple"


def register(client, username: str = "carol", password: str = PASSWORD, **extra):
    return client.post(REGISTER, {"username": username, "password": password, **extra}, format="json")


def token_row(token: str) -> AuthToken | None:
    return AuthToken.objects.filter(digest=hash_token(token)).first()


def sign_in(client, username: str = "carol", password: str = PASSWORD) -> str:
    response = client.post(TOKEN, {"username": username, "password": password}, format="json")
    assert response.status_code == 200, response.content
    return response.json()["token"]


def authed(token: str) -> APIClient:
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    return api


# --- register ---------------------------------------------------------------------------------------

def test_register_answers_a_working_token(client):
    response = register(client, email="carol@example.org")
    assert response.status_code == 201, response.content
    body = response.json()
    assert set(body) == {"id", "username", "token", "expiry"}
    user = User.objects.get(pk=body["id"])
    assert user.username == "carol" and user.email == "carol@example.org"
    assert user.check_password(PASSWORD) and user.password != PASSWORD
    row = token_row(body["token"])
    assert row.user == user and body["token"] not in {row.digest, row.token_key}  # stored as its sha512 only
    assert authed(body["token"]).get(reverse("api:profile-list")).status_code == 200


@pytest.mark.parametrize("fmt", ["multipart", "urlencoded"])
def test_register_and_token_with_form_data(client, fmt):
    from urllib.parse import urlencode

    payload = {"username": "dave", "password": PASSWORD}
    for url, status in ((REGISTER, 201), (TOKEN, 200)):
        if fmt == "multipart":
            response = client.post(url, payload, format="multipart")
        else:
            response = client.post(url, urlencode(payload), content_type="application/x-www-form-urlencoded")
        assert response.status_code == status, response.content
        assert "token" in response.json()


def test_register_never_echoes_the_password(client):
    response = register(client)
    assert PASSWORD not in response.content.decode()


@pytest.mark.parametrize("username", ["carol", "CAROL", "Carol"])
def test_register_a_taken_username(client, username):
    register(client)
    response = register(client, username=username)
    assert response.status_code == 400
    error = error_of(response)
    assert error["code"] == "invalid" and "username" in error["details"]
    assert User.objects.count() == 1


@pytest.mark.parametrize("username", ["anonymous", "Anonymous", "ANONYMOUS", "\uff21nonymous"])
def test_the_name_case_records_give_anonymous_users_is_reserved(client, username):
    """A clerk named `anonymous` would have records indistinguishable from anonymous verifications."""
    response = register(client, username=username)
    assert response.status_code == 400, response.content
    assert error_of(response)["code"] == "invalid" and "username" in error_of(response)["details"]
    assert User.objects.count() == 0
    assert register(client, username="anonymous_clerk").status_code == 201


def test_reserved_names_are_refused_by_the_service_too():
    from accounts.services import user_register
    from config.errors import ApplicationError

    for name in ("anonymous", "deleted user"):
        with pytest.raises(ApplicationError, match="reserved"):
            user_register(username=name, password=PASSWORD)


def test_register_race_on_the_same_username_is_a_400():
    """Two registrations passing validation at once: the database's unique constraint decides."""
    from accounts.services import user_register
    from config.errors import ApplicationError
    from config.exceptions import status_of

    user_register(username="erin", password=PASSWORD)
    with pytest.raises(ApplicationError) as caught:
        user_register(username="erin", password=PASSWORD)
    assert status_of(caught.value) == 400 and "username" in caught.value.details


@pytest.mark.parametrize("payload, field, code", [
    ({"password": PASSWORD}, "username", "missing_field"),
    ({"username": "frank"}, "password", "missing_field"),
    ({"username": "frank", "password": "short"}, "password", "invalid"),
    ({"username": "frank", "password": "password123"}, "password", "invalid"),  # too common
    ({"username": "frank", "password": "84736251904"}, "password", "invalid"),  # all digits
    ({"username": "frankenstein", "password": "frankenstein1"}, "password", "invalid"),  # like the username
    ({"username": "bad name!", "password": PASSWORD}, "username", "invalid"),
    ({"username": "u" * 151, "password": PASSWORD}, "username", "invalid"),
    ({"username": "frank", "password": PASSWORD, "email": "not-an-email"}, "email", "invalid"),
    # longer than the user model's 254-character column: a DataError (500) on PostgreSQL before
    ({"username": "frank", "password": PASSWORD, "email": "a" * 291 + "@example.org"}, "email", "invalid"),
])
def test_register_validation(client, payload, field, code):
    response = client.post(REGISTER, payload, format="json")
    assert response.status_code == 400, response.content
    error = error_of(response)
    assert error["code"] == code
    assert field in error["details"]
    assert User.objects.count() == 0


def test_register_with_a_broken_json_body(client):
    response = client.generic("POST", REGISTER, b'{"username": ', content_type="application/json")
    assert response.status_code == 400
    assert error_of(response)["code"] == "invalid"


def test_register_with_plain_text_is_415(client):
    response = client.post(REGISTER, "username=gina", content_type="text/plain")
    assert response.status_code == 415
    assert error_of(response)["code"] == "unsupported_media_type"


# --- token ------------------------------------------------------------------------------------------

def test_each_sign_in_is_a_new_token_and_the_old_ones_keep_working(client):
    first = register(client).json()["token"]
    response = client.post(TOKEN, {"username": "carol", "password": PASSWORD}, format="json")
    assert response.status_code == 200
    assert set(response.json()) == {"token", "expiry"}
    second = response.json()["token"]
    assert second != first and len(second) == 64
    for token in (first, second):  # two clients of one clerk: each signs out on its own
        assert authed(token).get(PROFILES).status_code == 200


def test_token_is_created_for_users_without_one(client):
    User.objects.create_user(username="henry", password=PASSWORD)
    token = sign_in(client, "henry")
    assert token_row(token).user.username == "henry"


@pytest.mark.parametrize("username, password", [("carol", "wrong password"), ("nobody", PASSWORD), ("carol", "")])
def test_token_for_wrong_credentials(client, username, password):
    register(client)
    response = client.post(TOKEN, {"username": username, "password": password}, format="json")
    assert response.status_code in {400, 401}
    error = error_of(response)
    if response.status_code == 401:
        assert error["code"] == "not_authenticated"
        assert error["message"] == "Invalid username or password."  # the same for unknown users
        assert response["WWW-Authenticate"] == "Token"
    else:
        assert "password" in error["details"]


def test_token_of_an_inactive_user_is_refused(client):
    register(client)
    User.objects.filter(username="carol").update(is_active=False)
    response = client.post(TOKEN, {"username": "carol", "password": PASSWORD}, format="json")
    assert response.status_code == 401


def test_token_missing_field(client):
    response = client.post(TOKEN, {"username": "carol"}, format="json")
    assert response.status_code == 400
    assert error_of(response)["code"] == "missing_field"


# --- delete the account -----------------------------------------------------------------------------

def test_delete_account_removes_user_token_profiles_references_and_files(client, settings,
                                                                        django_capture_on_commit_callbacks):
    token = register(client).json()["token"]
    api = authed(token)
    profile = api.post(reverse("api:profile-list"), {"name": "p"}, format="json").json()
    api.post(reverse("api:reference-list", kwargs={"profile_id": profile["id"]}),
             {"images": [upload(png(1)), upload(png(2))]}, format="multipart")
    files = [Path(r.image.path) for r in Reference.objects.all()]
    assert len(files) == 2 and all(f.is_file() for f in files)

    with django_capture_on_commit_callbacks(execute=True):
        response = api.delete(ACCOUNT)
    assert response.status_code == 204 and not response.content

    assert not User.objects.filter(username="carol").exists()
    assert token_row(token) is None and not AuthToken.objects.exists()
    assert Profile.objects.count() == 0 and Reference.objects.count() == 0
    assert not any(f.exists() for f in files)
    after = api.get(reverse("api:profile-list"))
    assert after.status_code == 401
    assert client.post(TOKEN, {"username": "carol", "password": PASSWORD}, format="json").status_code == 401
    assert register(client).status_code == 201  # the name is free again


def test_delete_account_keeps_files_if_the_transaction_fails(client, monkeypatch, django_capture_on_commit_callbacks):
    from django.db import OperationalError

    token = register(client).json()["token"]
    api = authed(token)
    profile = api.post(reverse("api:profile-list"), {"name": "p"}, format="json").json()
    api.post(reverse("api:reference-list", kwargs={"profile_id": profile["id"]}), {"image": upload(png(1))},
             format="multipart")
    (reference,) = Reference.objects.all()

    def broken_delete(self, *args, **kwargs):
        raise OperationalError("database is locked")

    monkeypatch.setattr(User, "delete", broken_delete)
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        response = api.delete(ACCOUNT)
    assert response.status_code == 503
    assert error_of(response)["code"] == "database_unavailable"
    assert callbacks == []
    assert Path(reference.image.path).is_file()
    assert User.objects.filter(username="carol").exists()


def test_delete_account_only_by_delete(client):
    token = register(client).json()["token"]
    response = authed(token).post(ACCOUNT)
    assert response.status_code == 405
    assert error_of(response)["code"] == "method_not_allowed"
