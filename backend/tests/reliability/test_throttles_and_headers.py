"""Invalid tokens are throttled as anonymous, explain=true and batch pair verification
have their own scopes, security headers are on by default, and 406 is a JSON error."""

from __future__ import annotations

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from rest_framework.test import APIClient

from api_helpers import error_of, png


def rates(settings, **scopes: str) -> None:
    generous = {"anon": "100000/min", "user": "100000/min", "auth": "100000/min"}
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "DEFAULT_THROTTLE_RATES": {**generous, **scopes}}


def verify(api: APIClient, **fields):
    files = {"reference": SimpleUploadedFile("a.png", png(1), "image/png"),
             "questioned": SimpleUploadedFile("b.png", png(2), "image/png")}
    return api.post("/api/verify/", {**files, **fields}, format="multipart")


# --- invalid tokens ----------------------------------------------------------------------------------

def test_requests_with_an_invalid_token_use_up_the_anonymous_budget(settings, db, user_client):
    rates(settings, anon="3/min")
    guesser = APIClient(REMOTE_ADDR="10.1.1.1")
    for attempt in range(3):
        guesser.credentials(HTTP_AUTHORIZATION=f"Token {'0' * 39}{attempt}")
        response = guesser.get("/api/profiles/")
        assert response.status_code == 401, response.content[:200]
        assert error_of(response)["code"] == "not_authenticated"
    guesser.credentials(HTTP_AUTHORIZATION="Token " + "f" * 40)
    throttled = guesser.get("/api/profiles/")
    assert throttled.status_code == 429 and int(throttled["Retry-After"]) > 0
    assert error_of(throttled)["code"] == "throttled"
    # the same budget as anonymous requests of that address
    assert APIClient(REMOTE_ADDR="10.1.1.1").get("/api/datasets/").status_code == 429
    # other addresses and valid tokens are not affected
    assert APIClient(REMOTE_ADDR="10.1.1.2").get("/api/datasets/").status_code == 200
    api, _ = user_client("valid")
    assert api.get("/api/profiles/", REMOTE_ADDR="10.1.1.1").status_code == 200


def test_invalid_tokens_still_get_401_under_the_rate(settings, db):
    rates(settings, anon="100/min")
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION="Token nonsense")
    for _ in range(5):
        assert api.get("/api/profiles/").status_code == 401


# --- costly scopes -----------------------------------------------------------------------------------

def test_explain_has_its_own_scope(settings, db):
    rates(settings, explain="2/min")
    api = APIClient()
    for _ in range(2):
        response = verify(api, explain="true")
        assert response.status_code == 200 and "explanation" in response.json()
    throttled = verify(api, explain="true")
    assert throttled.status_code == 429 and error_of(throttled)["code"] == "throttled"
    assert throttled["Retry-After"]
    plain = verify(api)  # verification without explain is not in that scope
    assert plain.status_code == 200 and "explanation" not in plain.json()
    assert verify(api, explain="false").status_code == 200


def test_explain_is_counted_per_user_when_signed_in(settings, user_client):
    rates(settings, explain="1/min")
    first, _ = user_client("first")
    second, _ = user_client("second")
    assert verify(first, explain="true").status_code == 200
    assert verify(first, explain="true").status_code == 429
    assert verify(second, explain="true").status_code == 200


def test_batch_pair_verification_has_its_own_scope(settings, db):
    rates(settings, pairs_verify="1/min")
    api = APIClient()
    body = {"split": "all", "kind": "genuine", "limit": 2}
    assert api.post("/api/datasets/SYNTH/pairs/verify/", body, format="json").status_code == 200
    throttled = api.post("/api/datasets/SYNTH/pairs/verify/", body, format="json")
    assert throttled.status_code == 429 and error_of(throttled)["code"] == "throttled"
    assert api.get("/api/datasets/SYNTH/pairs/?split=all&kind=genuine&limit=2").status_code == 200
    assert verify(api).status_code == 200


def test_the_default_rates_of_the_new_scopes():
    import config.settings as module  # the values read from the environment at start-up, before any test override

    defaults = module.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"]
    assert defaults["explain"] == "10/min" and defaults["pairs_verify"] == "6/min"


# --- headers and 406 ---------------------------------------------------------------------------------

@pytest.mark.parametrize("url", ["/admin/login/", "/api/docs/", "/api/health/"])
def test_content_security_policy_on_every_response(client, db, url):
    response = client.get(url)
    assert response.status_code == 200
    policy = dict(part.strip().split(" ", 1) for part in response["Content-Security-Policy"].split(";"))
    assert policy["default-src"] == "'self'" and policy["frame-ancestors"] == "'none'"
    assert policy["object-src"] == "'none'" and policy["base-uri"] == "'none'"
    assert "http" not in response["Content-Security-Policy"]  # nothing from other hosts


def test_hsts_on_requests_that_came_over_tls(client, db, settings):
    assert settings.SECURE_HSTS_SECONDS == 31_536_000  # the default with DEBUG off
    assert client.get("/api/health/", secure=True)["Strict-Transport-Security"] == "max-age=31536000"
    assert "Strict-Transport-Security" not in client.get("/api/health/")  # plain HTTP (loopback): none


@pytest.mark.parametrize("accept", ["application/xml", "text/html", "image/png"])
def test_an_accept_header_the_api_cannot_satisfy_is_a_json_406(client, db, accept):
    response = client.get("/api/health/", HTTP_ACCEPT=accept)
    assert response.status_code == 406 and response["Content-Type"] == "application/json"
    assert error_of(response)["code"] == "not_acceptable"
    assert client.get("/api/health/", HTTP_ACCEPT="application/json, text/html;q=0.9").status_code == 200
