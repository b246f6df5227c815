"""Fixtures of the reliability and security tests: the API tests' fixtures, reused as they are.

backend/tests/api/conftest.py configures Django (DEBUG off, a throw-away secret, no model load at
start-up) and defines the fixtures (a small untrained test model, synthetic datasets, generous
throttle rates, clients and users). It is loaded here under its own module name and its fixtures
re-exported, so both packages run the same set-up (when both run in one session, each gets its own
session-scoped test model; they are small).
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
API_TESTS = HERE.parent / "api"
REPO = HERE.parents[2]
for folder in (API_TESTS, HERE):  # api_helpers, reliability_helpers
    if str(folder) not in sys.path:
        sys.path.insert(0, str(folder))

_spec = importlib.util.spec_from_file_location("sigver_api_test_fixtures", API_TESTS / "conftest.py")
api_fixtures = importlib.util.module_from_spec(_spec)
sys.modules[_spec.name] = api_fixtures
_spec.loader.exec_module(api_fixtures)

# the API tests' fixtures, under their own names (pytest collects fixtures from this module's namespace)
test_model_path = api_fixtures.test_model_path
verifier = api_fixtures.verifier
dataset_dirs = api_fixtures.dataset_dirs
api_settings = api_fixtures.api_settings  # autouse there, so autouse here too
client = api_fixtures.client
make_user = api_fixtures.make_user
user_client = api_fixtures.user_client
GENEROUS_RATES = api_fixtures.GENEROUS_RATES


@pytest.fixture
def enrolled(user_client):
    """An authenticated client, one of its profiles, with one reference stored."""
    from django.core.files.uploadedfile import SimpleUploadedFile

    from api_helpers import png

    api, _ = user_client("mallory")
    profile = api.post("/api/profiles/", {"name": "Target"}, format="json").json()
    stored = api.post(f"/api/profiles/{profile['id']}/references/",
                      {"image": SimpleUploadedFile("r.png", png(1), "image/png")}, format="multipart")
    assert stored.status_code == 201, stored.content
    return api, profile["id"]
