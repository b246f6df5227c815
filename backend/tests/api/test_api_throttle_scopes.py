"""Throttle scopes: limits are per user when a token is sent, and dataset images have their own `images` scope
so that browsing thumbnails never uses up the budget that verification needs."""

from __future__ import annotations

import pytest
from django.urls import reverse

from api_helpers import error_of

pytestmark = pytest.mark.django_db

IMAGE = reverse("api:dataset-image", kwargs={"name": "SYNTH", "path": "1/genuine/1_1.png"})
DATASETS = reverse("api:dataset-list")


@pytest.fixture
def rates(settings):
    def set_rates(**overrides: str) -> None:
        settings.REST_FRAMEWORK = {
            **settings.REST_FRAMEWORK,
            "DEFAULT_THROTTLE_RATES": {**settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"], **overrides},
        }

    return set_rates


def throttled(response) -> bool:
    return response.status_code == 429 and error_of(response)["code"] == "throttled"


def test_images_have_their_own_scope_and_leave_the_anonymous_budget_alone(client, rates):
    rates(anon="2/min", images="5/min")
    assert [client.get(IMAGE).status_code for _ in range(5)] == [200] * 5
    assert throttled(client.get(IMAGE))
    # seven image requests later, the anonymous budget (2/min) is untouched
    assert [client.get(DATASETS).status_code for _ in range(2)] == [200, 200]
    assert throttled(client.get(DATASETS))


def test_the_images_scope_is_per_user(user_client, rates):
    rates(images="3/min")
    alice, _ = user_client("alice")
    bob, _ = user_client("bob")
    assert [alice.get(IMAGE).status_code for _ in range(3)] == [200] * 3
    assert throttled(alice.get(IMAGE))
    assert bob.get(IMAGE).status_code == 200


def test_each_clerk_has_their_own_user_budget(user_client, client, rates):
    """Clerks behind one interface (one address) are limited one by one when the interface sends their tokens."""
    rates(anon="1/min", user="2/min")
    alice, _ = user_client("alice")
    bob, _ = user_client("bob")
    assert [alice.get(DATASETS).status_code for _ in range(2)] == [200, 200]
    assert throttled(alice.get(DATASETS))
    assert [bob.get(DATASETS).status_code for _ in range(2)] == [200, 200]
    assert client.get(DATASETS).status_code == 200  # and the anonymous budget of the same address is its own
