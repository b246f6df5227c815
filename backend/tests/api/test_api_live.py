"""One live server: the README's production command (gunicorn -c config/gunicorn.py config.wsgi) on a
free loopback port with the test model and a fresh SQLite file, driven with real HTTP calls."""

from __future__ import annotations

import pytest
import requests

from api_helpers import png
from live_gunicorn import live_env, migrate, needs_gunicorn, start, stop, wait_for
from sigml.testing import free_port

pytestmark = needs_gunicorn


@pytest.fixture(scope="module")
def gunicorn_server(test_model_path, tmp_path_factory):
    folder = tmp_path_factory.mktemp("live")
    port = free_port()
    env = live_env(folder, model=test_model_path, port=port, secret="live-test-only", GUNICORN_THREADS="2")
    migrate(env)
    log = folder / "gunicorn.log"
    server = start(env, log)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_for(f"{base}/api/health/", server, log, request_timeout=30)
        yield {"url": base, "media": folder / "media", "log": log}
    finally:
        stop(server)


def test_health_and_model(gunicorn_server, verifier):
    health = requests.get(f"{gunicorn_server['url']}/api/health/", timeout=10)
    assert health.json() == {"status": "ok", "model_loaded": True, "model_version": verifier.model_version,
                             "model_sha256": verifier.card.weights["sha256"], "database": "ok"}
    card = requests.get(f"{gunicorn_server['url']}/api/model/", timeout=10).json()
    assert card["version"] == verifier.model_version


def test_verify_over_http(gunicorn_server, verifier):
    files = {"reference": ("a.png", png(1), "image/png"), "questioned": ("b.png", png(2), "image/png")}
    response = requests.post(f"{gunicorn_server['url']}/api/verify/", files=files, timeout=60)
    assert response.status_code == 200, response.text
    body = response.json()
    expected = verifier.verify(png(1), png(2))
    assert body["score"] == pytest.approx(expected.distance, rel=1e-3, abs=1e-4)
    assert body["decision"] == expected.decision and body["score_method"] == "pairwise"
    aliases = {"image_1": ("a.png", png(1), "image/png"), "image_2": ("b.png", png(1), "image/png")}
    same = requests.post(f"{gunicorn_server['url']}/api/verify/", files=aliases, timeout=60).json()
    # the same image twice is a copy, never genuine (a hand never repeats exactly)
    assert same["score"] == pytest.approx(0.0, abs=1e-3) and same["flags"] == ["identical_to_reference"]
    assert same["decision"] == "inconclusive" and same["match"] is False


def test_bad_input_over_http_is_json_never_500(gunicorn_server):
    url = f"{gunicorn_server['url']}/api/verify/"
    cases = [
        ({"reference": ("a.png", png(1)), "questioned": ("b.png", b"")}, 415),
        ({"reference": ("a.png", png(1)), "questioned": ("b.png", b"not an image")}, 415),
        ({"reference": ("a.png", png(1))}, 400),
    ]
    for files, status in cases:
        response = requests.post(url, files=files, timeout=60)
        assert response.status_code == status
        assert set(response.json()["error"]) == {"code", "message", "details"}
    response = requests.post(url, data=b"x" * 100, headers={"Content-Type": "application/octet-stream"}, timeout=60)
    assert response.status_code == 415
    assert requests.get(f"{gunicorn_server['url']}/api/nothing-here/", timeout=10).json()["error"]["code"] == "not_found"
    assert requests.get(f"{gunicorn_server['url']}/nothing/", timeout=10).status_code == 404
    bad_host = requests.get(f"{gunicorn_server['url']}/api/health/", headers={"Host": "evil.example"}, timeout=10)
    assert bad_host.status_code == 400  # ALLOWED_HOSTS
    assert "Traceback" not in bad_host.text


def test_enrollment_over_http(gunicorn_server):
    base = gunicorn_server["url"]
    registered = requests.post(f"{base}/api/auth/register/",
                               json={"username": "live", "password": "a long live passphrase"}, timeout=30)
    assert registered.status_code == 201, registered.text
    token = requests.post(f"{base}/api/auth/token/",
                          json={"username": "live", "password": "a long live passphrase"}, timeout=30).json()["token"]
    assert token and token != registered.json()["token"]  # each sign-in its own token (they end one by one)
    auth = {"Authorization": f"Token {token}"}
    assert requests.get(f"{base}/api/profiles/", timeout=10).status_code == 401

    profile = requests.post(f"{base}/api/profiles/", json={"name": "Live Person"}, headers=auth, timeout=10).json()
    files = [("images", (f"r{i}.png", png(i), "image/png")) for i in (1, 2, 3)]
    references = requests.post(f"{base}/api/profiles/{profile['id']}/references/", files=files, headers=auth,
                               timeout=60)
    assert references.status_code == 201, references.text
    assert len(references.json()["results"]) == 3
    assert len([p for p in gunicorn_server["media"].rglob("*") if p.is_file()]) == 3

    verdict = requests.post(f"{base}/api/profiles/{profile['id']}/verify/",
                            files={"questioned": ("q.png", png(2), "image/png")}, headers=auth, timeout=60)
    assert verdict.status_code == 200, verdict.text
    body = verdict.json()
    assert body["reference_count"] == 3 and len(body["references"]) == 3
    assert min(r["distance"] for r in body["references"]) == pytest.approx(0.0, abs=1e-3)

    image = requests.get(base + references.json()["results"][0]["image_url"], headers=auth, timeout=10)
    assert image.status_code == 200 and image.content == png(1)

    assert requests.delete(f"{base}/api/auth/account/", headers=auth, timeout=30).status_code == 204
    assert requests.get(f"{base}/api/profiles/", headers=auth, timeout=10).status_code == 401
    assert [p for p in gunicorn_server["media"].rglob("*") if p.is_file()] == []  # the files went with the account


def test_schema_and_docs_over_http(gunicorn_server):
    schema = requests.get(f"{gunicorn_server['url']}/api/schema/", params={"format": "json"}, timeout=30)
    assert schema.status_code == 200 and "/api/verify/" in schema.json()["paths"]
    docs = requests.get(f"{gunicorn_server['url']}/api/docs/", timeout=10)
    assert docs.status_code == 200 and "text/html" in docs.headers["Content-Type"]
