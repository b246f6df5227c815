"""api_client against the real backend (`backend_url`, started by the fixture): one call per endpoint, and
every failure mapped to its typed error. The few failures a real server does not produce on demand
(a 500, a non-JSON 502, a 403, a 413) come from the fake backend."""

from __future__ import annotations

import io
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from PIL import Image

import api_client as api


@pytest.fixture
def client(backend_url) -> api.SigverClient:
    return api.SigverClient(backend_url)


@pytest.fixture
def user_client(backend_url, unique_username) -> api.SigverClient:
    token = api.SigverClient(backend_url).register(unique_username, "correct horse")["token"]
    return api.SigverClient(backend_url, token=token)


@pytest.fixture
def fake_client(fake) -> api.SigverClient:
    return api.SigverClient(fake.url)


def test_base_url_from_environment(monkeypatch):
    monkeypatch.setenv("SIGVER_API_URL", "http://example.invalid:1234/")
    assert api.SigverClient().base_url == "http://example.invalid:1234"
    monkeypatch.delenv("SIGVER_API_URL")
    assert api.SigverClient().base_url == api.DEFAULT_API_URL


def test_absolute_urls_from_responses_stay_on_the_base_url():
    c = api.SigverClient("http://127.0.0.1:9")
    assert c.url("http://other.host/api/datasets/X/images/a.png?x=1") == "http://127.0.0.1:9/api/datasets/X/images/a.png?x=1"
    assert c.url("api/health/") == "http://127.0.0.1:9/api/health/"


def test_health_and_model(client):
    assert client.health()["status"] == "ok"
    card = client.model_card()
    assert card["threshold"] > 0 and "metrics" in card
    assert {p["name"] for p in card["plots"]} >= {"pairwise", "reference_k10"}
    assert client.model_plot("pairwise").startswith(b"\x89PNG")
    with pytest.raises(api.NotFound):
        client.model_plot("no_such_plot")


def test_verify_same_writer_is_genuine_other_writer_forged(client, signature):
    same = client.verify(("a.png", signature(1)), ("b.png", signature(1, variant=3)), previews=True)
    assert same["decision"] in ("genuine", "inconclusive") and same["score_method"] == "pairwise"
    assert same["score"] <= same["threshold"] and not {"verdict", "similarity"} & set(same)
    assert same["match"] is (same["decision"] == "genuine")  # deprecated, defined from the decision
    assert api.decode_data_url(same["previews"]["reference"]).startswith(b"\x89PNG")
    other = client.verify(signature(1), signature(7))
    assert other["decision"] in ("inconclusive", "forged") and other["match"] is False
    assert other["score"] > other["threshold"]
    assert "previews" not in other


def test_verify_explain_returns_heatmaps(client, signature):
    r = client.verify(signature(2), signature(2, variant=1), explain=True)
    assert api.decode_data_url(r["explanation"]["questioned"]).startswith(b"\x89PNG")


def test_verify_sends_tiff_with_its_content_type(client, signature):
    buf = io.BytesIO()
    Image.open(io.BytesIO(signature(3))).save(buf, format="TIFF")
    r = client.verify(("ref.tif", buf.getvalue()), ("q.png", signature(3, variant=1)))
    assert r["score"] <= r["threshold"]


def test_not_an_image_is_bad_request_with_the_server_message(client, signature):
    with pytest.raises(api.BadRequest) as err:
        client.verify(("notes.png", b"this is not an image"), signature(1))
    assert err.value.status == 415 and err.value.code == "invalid_image"
    assert "not an image" in str(err.value)


def test_blank_image_is_bad_request(client, signature):
    blank = io.BytesIO()
    Image.new("L", (200, 100), 255).save(blank, format="PNG")
    with pytest.raises(api.BadRequest) as err:
        client.verify(blank.getvalue(), signature(1))
    assert err.value.status == 400 and err.value.code == "blank_image"


def test_throttled_carries_retry_after(degraded_backend_url, signature):
    """The degraded backend lets an anonymous client send 1 request a minute: the second one is a real 429."""
    client = api.SigverClient(degraded_backend_url)
    with pytest.raises(api.ApiError):  # 503 (no model) or already 429
        client.verify(signature(1), signature(1))
    with pytest.raises(api.Throttled) as err:
        client.verify(signature(1), signature(1))
    assert err.value.status == 429 and err.value.code == "throttled"
    assert 0 < err.value.retry_after <= 60


def test_too_large_is_bad_request(fake_client, fake, signature):
    fake.state.fail_next("/api/verify/", 413, "image_too_large", "The image is larger than 10 MB.")
    with pytest.raises(api.BadRequest, match="larger than 10 MB"):
        fake_client.verify(signature(1), signature(1))


def test_degraded_health_is_an_answer(degraded_backend_url):
    health = api.SigverClient(degraded_backend_url).health()  # a 503 with the health body
    assert health["status"] == "degraded" and health["model_loaded"] is False and health["database"] == "ok"


def test_model_unavailable_is_backend_unavailable(degraded_backend_url, user_client, signature):
    # the two servers share their database: signed in, the anonymous throttle of the degraded one does not apply
    with pytest.raises(api.BackendUnavailable) as err:
        api.SigverClient(degraded_backend_url, token=user_client.token).verify(signature(1), signature(1))
    assert err.value.status == 503 and err.value.code == "model_unavailable"


def test_connection_refused_is_backend_unavailable(down_url):
    with pytest.raises(api.BackendUnavailable) as err:
        api.SigverClient(down_url).health()
    assert err.value.status is None and down_url in str(err.value)


def test_timeout_is_backend_unavailable(monkeypatch):
    """A server that accepts the connection and never answers."""

    class Silent(BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802
            stop.wait(5)

        def log_message(self, *args):
            pass

    stop = threading.Event()
    server = ThreadingHTTPServer(("127.0.0.1", 0), Silent)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    monkeypatch.setattr(api, "HEALTH_TIMEOUT_S", 0.3)
    try:
        with pytest.raises(api.BackendUnavailable) as err:
            api.SigverClient(f"http://127.0.0.1:{server.server_address[1]}").health()
        assert err.value.code == "timeout"
    finally:
        stop.set()
        server.shutdown()
        server.server_close()


def test_unknown_5xx_is_server_error(fake_client, fake):
    fake.state.fail_next("/api/health/", 500, "server_error", "Boom.")
    with pytest.raises(api.ServerError, match="Boom"):
        fake_client.health()


def test_non_json_error_page_still_gives_a_message(fake_client, fake):
    fake.state.fail_next("/api/health/", 502, raw=b"<html>Bad gateway</html>")
    with pytest.raises(api.BackendUnavailable) as err:
        fake_client.health()
    assert err.value.status == 502 and "502" in str(err.value)


def test_datasets_writers_images_and_pairs(client):
    datasets = client.datasets()
    name = datasets[0]["name"]
    info = client.dataset(name)
    writer = info["writer_ids"][0]
    w = client.writer(name, writer)
    assert w["genuine"] and w["forged"]
    assert client.dataset_image(w["genuine"][0]["url"]).startswith(b"\x89PNG")
    assert client.dataset_image(w["genuine"][0]["path"], dataset=name).startswith(b"\x89PNG")
    with pytest.raises(api.NotFound):
        client.dataset_image("../../etc/passwd", dataset=name)
    with pytest.raises(api.NotFound):
        client.dataset("NO_SUCH_DATASET")
    pairs = client.pairs(name, kind="skilled", limit=3, seed=1)
    assert len(pairs) == 3 and all(p["label"] == "forged" for p in pairs)
    batch = client.verify_pairs(name, kind="mixed", limit=6, seed=0)
    assert batch["n"] == 6 and 0.0 <= batch["accuracy"] <= 1.0
    assert {"decision", "score", "score_method", "correct"} <= set(batch["results"][0])
    assert batch["accuracy"] + batch["inconclusive"] + batch["wrong"] == pytest.approx(1.0)


def test_register_then_login(client, unique_username):
    account = client.register(unique_username, "correct horse", "clerk@example.org")
    assert account["username"] == unique_username and account["token"]
    assert client.login(unique_username, "correct horse")
    with pytest.raises(api.BadRequest, match="already exists"):
        client.register(unique_username, "correct horse")


def test_wrong_password_is_a_clear_error(client, unique_username):
    client.register(unique_username, "correct horse")
    with pytest.raises(api.AuthError) as err:
        client.login(unique_username, "wrong password")
    assert err.value.status == 401 and "password" in str(err.value)


def test_profiles_need_a_token(client):
    with pytest.raises(api.AuthError) as err:
        client.profiles()
    assert err.value.status == 401


def test_expired_token_is_auth_error(user_client, revoke_token):
    user_client.profiles()
    revoke_token(user_client.token)
    with pytest.raises(api.AuthError) as err:
        user_client.profiles()
    assert err.value.status == 401 and err.value.message


def test_sign_out_ends_the_token_on_the_server(user_client, backend_url, unique_username):
    other = api.SigverClient(backend_url, token=api.SigverClient(backend_url).login(unique_username, "correct horse"))
    user_client.sign_out()
    with pytest.raises(api.AuthError):
        user_client.profiles()
    assert other.profiles() == []  # another sign-in of the same clerk goes on
    other.sign_out(everywhere=True)
    with pytest.raises(api.AuthError):
        other.profiles()


def test_change_password_ends_the_other_tokens(user_client, backend_url, unique_username):
    other = api.SigverClient(backend_url, token=api.SigverClient(backend_url).login(unique_username, "correct horse"))
    old = user_client.token
    new = user_client.change_password("correct horse", "a new battery staple")
    assert new != old and user_client.token == new and user_client.profiles() == []
    with pytest.raises(api.AuthError):
        other.profiles()
    with pytest.raises(api.BadRequest) as err:
        user_client.change_password("wrong", "another battery staple")
    assert "current_password" in err.value.details


def test_forbidden_is_auth_error(fake, unique_username):
    token = api.SigverClient(fake.url).register(unique_username, "correct horse")["token"]
    fake.state.fail_next("/api/profiles/", 403, "permission_denied", "You do not have permission.")
    with pytest.raises(api.AuthError, match="permission"):
        api.SigverClient(fake.url, token=token).profiles()


def test_profile_enrollment_round_trip(user_client, signature):
    profile = user_client.create_profile("Alice Martin", "ACC-1")
    assert profile["reference_count"] == 0
    with pytest.raises(api.BadRequest) as err:
        user_client.verify_profile(profile["id"], signature(5))
    assert err.value.code == "no_references"
    created = user_client.add_references(profile["id"], [("r1.png", signature(5, variant=1)), signature(5, variant=2)])
    assert len(created) == 2
    refs = user_client.references(profile["id"])
    assert [r["id"] for r in refs] == [r["id"] for r in created]
    assert user_client.reference_image(profile["id"], refs[0]["id"]).startswith(b"\x89PNG")
    assert user_client.reference_image(profile["id"], refs[0]["id"], refs[0]["image_url"]).startswith(b"\x89PNG")
    result = user_client.verify_profile(profile["id"], signature(5, variant=7))
    assert result["decision"] != "forged" and result["reference_count"] == 2
    assert {r["id"] for r in result["references"]} == {r["id"] for r in refs}
    assert user_client.update_profile(profile["id"], name="Alice M.")["name"] == "Alice M."
    user_client.delete_reference(profile["id"], refs[0]["id"])
    assert len(user_client.references(profile["id"])) == 1
    user_client.delete_profile(profile["id"])
    with pytest.raises(api.NotFound):
        user_client.profile(profile["id"])


def test_delete_account(user_client):
    user_client.create_profile("Bob")
    user_client.delete_account()
    with pytest.raises(api.AuthError):
        user_client.profiles()


def test_decode_data_url():
    assert api.decode_data_url("data:image/png;base64,aGVsbG8=") == b"hello"
    assert api.decode_data_url(None) is None
    assert api.decode_data_url("") is None
