"""Throttling: anonymous clients by address, users by account, and the strict `auth` scope of
register + token against password guessing; 429 in the one error shape with Retry-After."""

from __future__ import annotations

import pytest
from django.urls import reverse
from rest_framework.test import APIClient

from api_helpers import error_of, png, upload

pytestmark = pytest.mark.django_db

PASSWORD = "correct horse battery staple"


@pytest.fixture
def rates(settings):
    def set_rates(**overrides: str) -> None:
        current = dict(settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"])
        settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "DEFAULT_THROTTLE_RATES": {**current, **overrides}}

    return set_rates


def assert_throttled(response) -> None:
    assert response.status_code == 429, response.content
    error = error_of(response)
    assert error["code"] == "throttled"
    wait = int(response["Retry-After"])
    assert 0 < wait <= 3600
    assert error["details"]["retry_after"] == wait


def test_anonymous_clients_are_throttled(client, rates):
    rates(anon="3/min")
    url = reverse("api:dataset-list")
    assert [client.get(url).status_code for _ in range(3)] == [200, 200, 200]
    assert_throttled(client.get(url))


def test_anonymous_verify_is_throttled(client, rates):
    rates(anon="2/min")
    url = reverse("api:verify")

    def verify():
        return client.post(url, {"reference": upload(png(1)), "questioned": upload(png(2))}, format="multipart")

    assert [verify().status_code for _ in range(2)] == [200, 200]
    assert_throttled(verify())


def test_throttling_is_per_address_and_a_forged_forwarded_for_does_not_help(rates):
    rates(anon="2/min")
    url = reverse("api:dataset-list")
    first = APIClient(REMOTE_ADDR="10.0.0.1")
    for i in range(2):
        assert first.get(url, HTTP_X_FORWARDED_FOR=f"203.0.113.{i}").status_code == 200
    assert_throttled(first.get(url, HTTP_X_FORWARDED_FOR="203.0.113.99"))
    assert APIClient(REMOTE_ADDR="10.0.0.2").get(url).status_code == 200


def test_users_are_throttled_by_account(user_client, rates):
    rates(anon="1/min", user="3/min")
    alice, _ = user_client("alice")
    bob, _ = user_client("bob")
    url = reverse("api:profile-list")
    assert [alice.get(url).status_code for _ in range(3)] == [200, 200, 200]  # the anon rate does not apply
    assert_throttled(alice.get(url))
    assert bob.get(url).status_code == 200  # same address, another account


def test_token_endpoint_is_throttled_against_password_guessing(client, rates, make_user):
    rates(auth="3/min")
    make_user("victim", PASSWORD)
    url = reverse("api:token")
    guesses = [client.post(url, {"username": "victim", "password": f"guess {i}"}, format="json") for i in range(3)]
    assert [r.status_code for r in guesses] == [401, 401, 401]
    # the right password does not get through either until the window has passed
    assert_throttled(client.post(url, {"username": "victim", "password": PASSWORD}, format="json"))
    # nor does guessing another account's password from the same address
    assert_throttled(client.post(url, {"username": "other", "password": "x"}, format="json"))


def test_register_shares_the_auth_scope(client, rates):
    rates(auth="2/min")
    url = reverse("api:register")
    answers = [client.post(url, {"username": f"user{i}", "password": PASSWORD}, format="json").status_code
               for i in range(2)]
    assert answers == [201, 201]
    assert_throttled(client.post(url, {"username": "user9", "password": PASSWORD}, format="json"))
    assert_throttled(client.post(reverse("api:token"), {"username": "user0", "password": PASSWORD}, format="json"))


def test_auth_scope_is_stricter_than_the_anonymous_rate(client, rates):
    rates(anon="100/min", auth="1/min")
    client.post(reverse("api:token"), {"username": "a", "password": "b"}, format="json")
    assert_throttled(client.post(reverse("api:token"), {"username": "a", "password": "b"}, format="json"))
    assert client.get(reverse("api:dataset-list")).status_code == 200  # other endpoints keep answering
