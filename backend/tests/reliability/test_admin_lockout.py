"""Password guessing on /admin/login/ is locked out by django-axes (the API's token
endpoint has its own `auth` throttle and is not locked by it)."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.test import Client

ADMIN_PASSWORD = "an-admin-passphrase-1"


@pytest.fixture
def admin_user(db):
    return get_user_model().objects.create_superuser(username="root", password=ADMIN_PASSWORD, email="root@example.org")


def admin_login(client: Client, password: str, address: str = "10.0.0.1"):
    return client.post("/admin/login/?next=/admin/", {"username": "root", "password": password}, REMOTE_ADDR=address)


def test_admin_login_locks_out_after_the_failure_limit(admin_user, settings):
    assert settings.AXES_FAILURE_LIMIT == 5
    client = Client()
    for attempt in range(settings.AXES_FAILURE_LIMIT - 1):
        response = admin_login(client, f"guess-{attempt}")
        assert response.status_code == 200 and b"Please enter the correct username" in response.content
    locked = admin_login(client, "guess-last")
    assert locked.status_code == 429
    # locked out: the right password is refused too, from that address
    assert admin_login(client, ADMIN_PASSWORD).status_code == 429
    # another address is not locked out, and signs in
    other = admin_login(Client(), ADMIN_PASSWORD, address="10.0.0.2")
    assert other.status_code == 302 and other["Location"] == "/admin/"


def test_a_successful_admin_login_resets_the_count(admin_user, settings):
    client = Client()
    for _ in range(settings.AXES_FAILURE_LIMIT - 1):
        admin_login(client, "wrong")
    assert admin_login(client, ADMIN_PASSWORD).status_code == 302
    client = Client()
    for _ in range(settings.AXES_FAILURE_LIMIT - 1):
        assert admin_login(client, "wrong").status_code == 200


def test_the_api_token_endpoint_is_not_locked_by_axes(admin_user, settings, client):
    for _ in range(settings.AXES_FAILURE_LIMIT + 2):
        wrong = client.post("/api/auth/token/", {"username": "root", "password": "wrong"}, format="json")
        assert wrong.status_code == 401
    right = client.post("/api/auth/token/", {"username": "root", "password": ADMIN_PASSWORD}, format="json")
    assert right.status_code == 200 and right.json()["token"]


def test_the_lockout_address_is_the_throttles_client_address(admin_user, settings):
    """Behind SIGVER_NUM_PROXIES proxies the client is the X-Forwarded-For entry the proxy added, so one
    client cannot lock out every user of the proxy, and a forged header does not change the address
    when no proxy is trusted."""
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "NUM_PROXIES": 0}
    client = Client()
    for attempt in range(settings.AXES_FAILURE_LIMIT):
        client.post("/admin/login/", {"username": "root", "password": "x"}, REMOTE_ADDR="10.0.0.9",
                    HTTP_X_FORWARDED_FOR=f"192.0.2.{attempt}")
    assert admin_login(client, ADMIN_PASSWORD, address="10.0.0.9").status_code == 429
