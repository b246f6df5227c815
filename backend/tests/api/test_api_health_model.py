"""GET /api/health/, /api/model/, /api/model/plots/<name>.png and JSON 404s for unknown URLs."""

from __future__ import annotations

import pytest
from django.urls import reverse

from api_helpers import error_of


@pytest.mark.django_db
def test_health_ok(client, verifier):
    response = client.get(reverse("api:health"))
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "model_loaded": True, "model_version": verifier.model_version,
                               "model_sha256": verifier.card.weights["sha256"], "database": "ok"}


@pytest.mark.django_db
def test_health_reports_a_missing_model(client, settings, tmp_path):
    settings.SIGVER_MODEL_PATH = tmp_path / "nope.safetensors"
    response = client.get(reverse("api:health"))
    assert response.status_code == 503
    assert response.json()["model_loaded"] is False and response.json()["status"] == "degraded"


def test_health_reports_an_unreachable_database(client, monkeypatch):
    from django.db import OperationalError

    from system import selectors

    class Broken:
        def cursor(self):
            raise OperationalError("unable to open database file")

    monkeypatch.setattr(selectors, "connection", Broken())
    response = client.get(reverse("api:health"))
    assert response.status_code == 503
    assert response.json()["database"] == "unavailable"


@pytest.mark.django_db
def test_health_is_never_throttled(client, settings):
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "DEFAULT_THROTTLE_RATES": {"anon": "1/min", "user": "1/min"}}
    assert [client.get(reverse("api:health")).status_code for _ in range(3)] == [200, 200, 200]


def test_model_card(client, verifier):
    response = client.get(reverse("api:model"))
    assert response.status_code == 200
    card = response.json()
    for key in ("name", "version", "architecture", "preprocessing", "threshold", "thresholds", "metrics", "data",
                "training", "created"):
        assert key in card
    assert card["version"] == verifier.model_version
    assert card["threshold"] == verifier.threshold
    assert card["plots"] == [{"name": "roc", "url": reverse("api:model-plot", kwargs={"name": "roc"})}]


def test_model_card_503_without_model(client, settings, tmp_path):
    settings.SIGVER_MODEL_PATH = tmp_path / "nope.safetensors"
    response = client.get(reverse("api:model"))
    assert response.status_code == 503
    assert error_of(response)["code"] == "model_unavailable"


def test_model_plot(client, dataset_dirs):
    response = client.get(reverse("api:model-plot", kwargs={"name": "roc"}), HTTP_ACCEPT="image/png")
    assert response.status_code == 200
    assert response["Content-Type"] == "image/png"
    assert b"".join(response.streaming_content) == (dataset_dirs["plots"] / "roc.png").read_bytes()


@pytest.mark.parametrize("path", [
    "/api/model/plots/missing.png",
    "/api/model/plots/..%2Fsecret_plot.png",
    "/api/model/plots/../secret_plot.png",
    "/api/model/plots/%2E%2E.png",
    "/api/model/plots/.hidden.png",
    "/api/model/plots/roc.svg",
])
def test_model_plot_not_found(client, path):
    response = client.get(path)
    assert response.status_code == 404
    assert error_of(response)["code"] == "not_found"


def test_model_plots_one_folder_down(client, dataset_dirs):
    """`sigml evaluate --plots docs/plots/CEDAR` writes CEDAR/pairwise.png: listed and served as CEDAR-pairwise;
    a sub-folder linking out of the plots folder is neither."""
    sub = dataset_dirs["plots"] / "CEDAR"
    sub.mkdir()
    (sub / "pairwise.png").write_bytes((dataset_dirs["plots"] / "roc.png").read_bytes()[:-1] + b"\x00")
    (dataset_dirs["plots"] / "OUT").symlink_to(dataset_dirs["base"])  # holds secret_plot.png
    names = [p["name"] for p in client.get(reverse("api:model")).json()["plots"]]
    assert names == ["CEDAR-pairwise", "roc"]
    response = client.get(reverse("api:model-plot", kwargs={"name": "CEDAR-pairwise"}))
    assert response.status_code == 200
    assert b"".join(response.streaming_content) == (sub / "pairwise.png").read_bytes()
    assert client.get(reverse("api:model-plot", kwargs={"name": "OUT-secret_plot"})).status_code == 404


def test_model_plot_without_plots_folder(client, settings, tmp_path):
    settings.SIGVER_PLOTS_DIR = tmp_path / "none"
    assert client.get(reverse("api:model")).json()["plots"] == []
    assert client.get(reverse("api:model-plot", kwargs={"name": "roc"})).status_code == 404


@pytest.mark.parametrize("path", ["/api/nope/", "/api/datasets/SYNTH/unknown/", "/api/profiles/abc/"])
def test_unknown_urls_answer_json(client, path):
    response = client.get(path)
    assert response.status_code == 404
    assert error_of(response)["code"] == "not_found"


def test_unknown_url_outside_api_answers_json_without_debug(client):
    response = client.get("/elsewhere/")
    assert response.status_code == 404
    assert error_of(response)["code"] == "not_found"


def test_plots_of_a_dataset_with_a_hyphen_in_its_name_are_listed_and_served(client, dataset_dirs, settings, tmp_path):
    settings.SIGVER_PLOTS_DIR = str(tmp_path)  # the session's plots folder stays as the other tests expect it
    (tmp_path / "BHSig260-Bengali").mkdir()
    png = (dataset_dirs["plots"] / "roc.png").read_bytes()
    (tmp_path / "BHSig260-Bengali" / "reference_k10.png").write_bytes(png)
    card = client.get(reverse("api:model")).json()
    assert [p["name"] for p in card["plots"]] == ["BHSig260-Bengali-reference_k10"]
    response = client.get(reverse("api:model-plot", kwargs={"name": "BHSig260-Bengali-reference_k10"}),
                          HTTP_ACCEPT="image/png")
    assert response.status_code == 200
    assert b"".join(response.streaming_content) == png
