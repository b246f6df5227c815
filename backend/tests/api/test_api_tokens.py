"""API tokens (django-rest-knox): they end after SIGVER_TOKEN_TTL_HOURS, at sign-out and when the password changes
(whichever way it changes); malformed ones are a 401, never a 500; DRF tokens from before are carried over."""

from __future__ import annotations

import importlib
from datetime import timedelta
from types import SimpleNamespace

import pytest
from django.contrib.auth import get_user_model
from django.db import connection
from django.urls import reverse
from django.utils import timezone
from knox.crypto import hash_token
from knox.models import AuthToken
from rest_framework.test import APIClient

from api_helpers import error_of

pytestmark = pytest.mark.django_db

User = get_user_model()
TOKEN = reverse("api:token")
SIGN_OUT = reverse("api:sign-out")
PASSWORD_URL = reverse("api:password")
PROFILES = reverse("api:profile-list")
PASSWORD = "correct horse battery staple"
NEW_PASSWORD = "a different horse, stapled"


def authed(token: str) -> APIClient:
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    return api


def works(token: str) -> bool:
    status = authed(token).get(PROFILES).status_code
    assert status in (200, 401)
    return status == 200


@pytest.fixture
def carol(client):
    User.objects.create_user(username="carol", password=PASSWORD)

    def sign_in(password: str = PASSWORD) -> str:
        response = client.post(TOKEN, {"username": "carol", "password": password}, format="json")
        assert response.status_code == 200, response.content
        return response.json()["token"]

    return sign_in


# --- sign-out -----------------------------------------------------------------------------------------

def test_sign_out_ends_this_token_only(carol):
    desk, laptop = carol(), carol()
    response = authed(desk).post(SIGN_OUT)
    assert response.status_code == 204 and not response.content
    assert not works(desk) and works(laptop)
    again = authed(desk).post(SIGN_OUT)
    assert again.status_code == 401 and error_of(again)["code"] == "not_authenticated"
    assert AuthToken.objects.count() == 1


def test_sign_out_everywhere_ends_every_token(carol):
    desk, laptop = carol(), carol()
    assert authed(desk).post(SIGN_OUT, {"everywhere": True}, format="json").status_code == 204
    assert not works(desk) and not works(laptop)
    assert not AuthToken.objects.exists()


def test_sign_out_needs_a_token(client):
    response = client.post(SIGN_OUT)
    assert response.status_code == 401 and response["WWW-Authenticate"] == "Token"


def test_sign_out_only_by_post(carol):
    assert authed(carol()).get(SIGN_OUT).status_code == 405


# --- password change ----------------------------------------------------------------------------------

def test_password_change_ends_every_token_and_answers_a_new_one(client, carol):
    desk, laptop = carol(), carol()
    response = authed(desk).post(PASSWORD_URL, {"current_password": PASSWORD, "new_password": NEW_PASSWORD},
                                 format="json")
    assert response.status_code == 200, response.content
    new = response.json()["token"]
    assert not works(desk) and not works(laptop) and works(new)
    assert AuthToken.objects.count() == 1
    assert client.post(TOKEN, {"username": "carol", "password": PASSWORD}, format="json").status_code == 401
    assert works(carol(NEW_PASSWORD))


@pytest.mark.parametrize("payload, field", [
    ({"current_password": "wrong password", "new_password": NEW_PASSWORD}, "current_password"),
    ({"current_password": PASSWORD, "new_password": "short"}, "new_password"),
    ({"current_password": PASSWORD, "new_password": "password123"}, "new_password"),
    ({"current_password": PASSWORD, "new_password": PASSWORD}, "new_password"),
    ({"current_password": PASSWORD, "new_password": "x" * 129}, "new_password"),
    ({"new_password": NEW_PASSWORD}, "current_password"),
])
def test_a_refused_password_change_changes_nothing(carol, payload, field):
    token = carol()
    response = authed(token).post(PASSWORD_URL, payload, format="json")
    assert response.status_code == 400, response.content
    assert field in error_of(response)["details"]
    assert works(token) and User.objects.get(username="carol").check_password(PASSWORD)


def test_password_change_needs_a_token(client):
    response = client.post(PASSWORD_URL, {"current_password": PASSWORD, "new_password": NEW_PASSWORD}, format="json")
    assert response.status_code == 401


def test_a_password_set_anywhere_else_ends_the_tokens_too(carol):
    """The admin's password form and `manage.py changepassword` call set_password + save: a pre_save signal."""
    token = carol()
    user = User.objects.get(username="carol")
    user.last_login = timezone.now()
    user.save(update_fields=["last_login"])  # sign-in bookkeeping leaves tokens alone
    user.email = "carol@example.org"
    user.save()
    assert works(token)
    user.set_password(PASSWORD)  # the same password, hashed anew (as Django does after a hasher upgrade)
    user.save()
    assert works(token)
    user.set_password(NEW_PASSWORD)
    user.save()
    assert not works(token)
    token = carol(NEW_PASSWORD)
    user.set_unusable_password()
    user.save()
    assert not works(token)


# --- expiry -------------------------------------------------------------------------------------------

def test_a_token_ends_after_its_time(carol, settings):
    settings.REST_KNOX = {**settings.REST_KNOX, "TOKEN_TTL": timedelta(hours=3)}
    before = timezone.now()
    response = APIClient().post(TOKEN, {"username": "carol", "password": PASSWORD}, format="json")
    token, expiry = response.json()["token"], response.json()["expiry"]
    row = AuthToken.objects.get(digest=hash_token(token))
    assert before + timedelta(hours=3) <= row.expiry <= timezone.now() + timedelta(hours=3)
    assert expiry.startswith(row.expiry.strftime("%Y-%m-%dT%H:%M"))
    assert works(token)
    AuthToken.objects.filter(pk=row.pk).update(expiry=timezone.now() - timedelta(seconds=1))
    response = authed(token).get(PROFILES)
    assert response.status_code == 401 and error_of(response)["code"] == "not_authenticated"
    assert not AuthToken.objects.filter(pk=row.pk).exists()  # an expired token is deleted when it is next seen


def test_the_default_lifetime_and_never(carol, settings):
    row = AuthToken.objects.get(digest=hash_token(carol()))
    hours = settings.SIGVER_TOKEN_TTL_HOURS
    assert hours == 12
    assert abs((row.expiry - row.created) - timedelta(hours=hours)) < timedelta(seconds=5)
    settings.REST_KNOX = {**settings.REST_KNOX, "TOKEN_TTL": None}
    response = APIClient().post(TOKEN, {"username": "carol", "password": PASSWORD}, format="json")
    assert response.json()["expiry"] is None


def test_signing_in_again_drops_the_oldest_tokens_beyond_the_limit(carol, settings):
    settings.SIGVER_TOKENS_PER_USER = 3
    tokens = [carol() for _ in range(5)]
    assert AuthToken.objects.count() == 3
    assert [works(t) for t in tokens] == [False, False, True, True, True]


def test_expired_tokens_are_deleted_at_the_next_sign_in(carol):
    old = carol()
    AuthToken.objects.update(expiry=timezone.now() - timedelta(minutes=1))
    carol()
    assert AuthToken.objects.count() == 1 and not works(old)


# --- malformed tokens ---------------------------------------------------------------------------------

@pytest.mark.parametrize("header", ["Token \xe9\xe9\xe9", "Token abc\x00def", "Token " + "a" * 5000, "Token zz",
                                   "Token " + "f" * 40, "Token " + "0" * 64, "Token a b", "Token"])
def test_a_malformed_or_unknown_token_is_a_401(client, header):
    client.credentials(HTTP_AUTHORIZATION=header)
    response = client.get(PROFILES)
    assert response.status_code == 401, response.content
    assert error_of(response)["code"] == "not_authenticated" and response["WWW-Authenticate"] == "Token"


# --- DRF tokens from before ---------------------------------------------------------------------------

def test_drf_tokens_are_carried_over_by_the_migration(settings):
    """A database from before knox: its DRF tokens keep working (until they end) and leave no clear text."""
    migration = importlib.import_module("accounts.migrations.0003_tokens_to_knox")
    user = User.objects.create_user(username="olga", password=PASSWORD)
    key = "0123456789abcdef0123456789abcdef01234567"
    with connection.cursor() as cursor:
        cursor.execute("CREATE TABLE authtoken_token (key varchar(40) PRIMARY KEY, created timestamp NOT NULL, "
                       "user_id integer NOT NULL)")
        cursor.execute("INSERT INTO authtoken_token VALUES (%s, %s, %s)", [key, timezone.now(), user.pk])
    from django.apps import apps

    migration.carry_over(apps, SimpleNamespace(connection=connection))  # all RunPython uses of its schema editor
    assert works(key)
    row = AuthToken.objects.get(user=user)
    assert row.expiry is not None and row.expiry <= timezone.now() + timedelta(hours=settings.SIGVER_TOKEN_TTL_HOURS)
    with connection.cursor() as cursor:
        cursor.execute("SELECT COUNT(*) FROM authtoken_token")
        assert cursor.fetchone()[0] == 0
