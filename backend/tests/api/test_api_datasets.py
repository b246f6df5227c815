"""Datasets (list, detail, writer, image: no path traversal) and pairs (sample, verify)."""

from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import quote

import numpy as np
import pytest
from django.urls import reverse

from api_helpers import SYNTH_SPLITS, error_of


def image_url(name: str, path: str) -> str:
    return reverse("api:dataset-image", kwargs={"name": name, "path": path})


def read(response) -> bytes:
    return b"".join(response.streaming_content)


# --- list, detail, writer ----------------------------------------------------------------------------

def test_list(client):
    response = client.get(reverse("api:dataset-list"))
    assert response.status_code == 200
    datasets = {d["name"]: d for d in response.json()["datasets"]}
    assert list(datasets) == ["LINKED", "NOSPLIT", "SYNTH"]  # empty_folder is no dataset
    assert datasets["SYNTH"] == {"name": "SYNTH", "layout": "generic", "writers": 5, "genuine": 15, "forged": 10,
                                 "splits": ["train", "validation", "test"]}
    assert datasets["NOSPLIT"]["splits"] == ["all"]


def test_list_without_data_folder(client, settings, tmp_path):
    settings.SIGVER_DATA_DIR = tmp_path / "missing"
    assert client.get(reverse("api:dataset-list")).json() == {"datasets": []}


def test_detail(client):
    body = client.get(reverse("api:dataset-detail", kwargs={"name": "SYNTH"})).json()
    assert body["writer_ids"] == ["1", "2", "3", "4", "5"]
    assert body["split_of_writer"] == SYNTH_SPLITS
    assert body["writers"] == 5 and body["layout"] == "generic"
    nosplit = client.get(reverse("api:dataset-detail", kwargs={"name": "NOSPLIT"})).json()
    assert nosplit["split_of_writer"] == {} and nosplit["writer_ids"] == ["a", "b"]


def test_writer(client, dataset_dirs):
    response = client.get(reverse("api:dataset-writer", kwargs={"name": "SYNTH", "writer": "4"}))
    assert response.status_code == 200
    body = response.json()
    assert body["writer"] == "4" and body["split"] == "test"
    assert [g["path"] for g in body["genuine"]] == ["4/genuine/4_1.png", "4/genuine/4_2.png", "4/genuine/4_3.png"]
    assert [f["path"] for f in body["forged"]] == ["4/forged/4_1.png", "4/forged/4_2.png"]
    first = body["genuine"][0]
    assert first["url"] == "/api/datasets/SYNTH/images/4/genuine/4_1.png"
    image = client.get(first["url"])
    assert image.status_code == 200
    assert read(image) == (dataset_dirs["data"] / "SYNTH" / first["path"]).read_bytes()


def test_writer_without_split_file(client):
    assert client.get(reverse("api:dataset-writer", kwargs={"name": "NOSPLIT", "writer": "a"})).json()["split"] == "all"


@pytest.mark.parametrize("url", [
    reverse("api:dataset-detail", kwargs={"name": "NOPE"}),
    reverse("api:dataset-writer", kwargs={"name": "NOPE", "writer": "1"}),
    reverse("api:dataset-writer", kwargs={"name": "SYNTH", "writer": "99"}),
    reverse("api:dataset-pairs", kwargs={"name": "NOPE"}),
    image_url("NOPE", "1/genuine/1_1.png"),
    image_url("empty_folder", "x.png"),
])
def test_unknown_dataset_or_writer(client, url):
    response = client.get(url)
    assert response.status_code == 404
    assert error_of(response)["code"] == "not_found"


# --- images -----------------------------------------------------------------------------------------

def test_image(client, dataset_dirs):
    response = client.get(image_url("SYNTH", "1/forged/1_2.png"), HTTP_ACCEPT="image/*")
    assert response.status_code == 200
    assert response["Content-Type"] == "image/png"
    assert read(response) == (dataset_dirs["data"] / "SYNTH" / "1" / "forged" / "1_2.png").read_bytes()


def traversal_paths(secret: Path) -> list[str]:
    return [
        "/api/datasets/SYNTH/images/..%2F..%2Fsecret.png",
        "/api/datasets/SYNTH/images/..%2f..%2f..%2fsecret.png",
        "/api/datasets/SYNTH/images/1/genuine/..%2F..%2F..%2F..%2Fsecret.png",
        "/api/datasets/SYNTH/images/../../secret.png",
        "/api/datasets/SYNTH/images/%2E%2E/%2E%2E/secret.png",
        "/api/datasets/SYNTH/images//etc/passwd",
        "/api/datasets/SYNTH/images/%2Fetc%2Fpasswd",
        "/api/datasets/SYNTH/images/" + quote(str(secret)),
        "/api/datasets/SYNTH/images/" + quote(str(secret), safe=""),
        "/api/datasets/SYNTH/images/1/genuine/notes.txt",  # exists, not an image
        "/api/datasets/SYNTH/images/1/genuine",  # a folder
        "/api/datasets/SYNTH/images/1/genuine/",
        "/api/datasets/SYNTH/images/1/genuine/missing.png",
        "/api/datasets/SYNTH/images/1/genuine/1_1.png%00.txt",
        "/api/datasets/LINKED/images/x/genuine/escape.png",  # a symlink leading out of the dataset
        "/api/datasets/..%2F/images/secret.png",
    ]


def test_path_traversal_is_impossible(client, dataset_dirs):
    secret = dataset_dirs["secret"].read_bytes()
    for path in traversal_paths(dataset_dirs["secret"]):
        response = client.get(path)
        assert response.status_code == 404, path
        assert response["Content-Type"] == "application/json", path
        assert secret not in response.content, path


def test_symlink_escape_is_listed_but_not_served(client):
    body = client.get(reverse("api:dataset-writer", kwargs={"name": "LINKED", "writer": "x"})).json()
    paths = [g["path"] for g in body["genuine"]]
    assert "x/genuine/escape.png" in paths  # the layout reader follows it ...
    assert client.get(image_url("LINKED", "x/genuine/escape.png")).status_code == 404  # ... the API does not
    assert client.get(image_url("LINKED", "x/genuine/x_1.png")).status_code == 200


def test_symlink_inside_the_dataset_is_served(client, settings, tmp_path):
    root = tmp_path / "data" / "INSIDE" / "w" / "genuine"
    root.mkdir(parents=True)
    (root / "real.png").write_bytes(b"\x89PNG fake but served as a file")
    os.symlink(root / "real.png", root / "alias.png")
    settings.SIGVER_DATA_DIR = tmp_path / "data"
    assert client.get(image_url("INSIDE", "w/genuine/alias.png")).status_code == 200


# --- pairs ------------------------------------------------------------------------------------------

def pairs(client, name: str = "SYNTH", **params) -> list[dict]:
    response = client.get(reverse("api:dataset-pairs", kwargs={"name": name}), params)
    assert response.status_code == 200, response.content
    return response.json()["pairs"]


def test_pairs_default_to_the_test_split(client):
    sample = pairs(client)
    assert 0 < len(sample) <= 10
    assert {p["split"] for p in sample} == {"test"}
    assert {p["writer_a"] for p in sample} | {p["writer_b"] for p in sample} <= {"4", "5"}
    assert {p["kind"] for p in sample} == {"genuine", "skilled", "random"}


def test_pair_kinds(client):
    for pair in pairs(client, kind="genuine", split="train", limit=5):
        assert pair["label"] == "genuine" and pair["writer_a"] == pair["writer_b"]
        assert "/genuine/" in pair["path_a"] and "/genuine/" in pair["path_b"]
        assert pair["url_a"] == image_url("SYNTH", pair["path_a"])
    for pair in pairs(client, kind="skilled", split="train", limit=5):
        assert pair["label"] == "forged" and pair["writer_a"] == pair["writer_b"] and "/forged/" in pair["path_b"]
    for pair in pairs(client, kind="random", split="test", limit=5):
        assert pair["label"] == "forged" and pair["writer_a"] != pair["writer_b"]


def test_pairs_limit_and_seed(client):
    assert len(pairs(client, split="all", limit=7)) == 7
    assert pairs(client, split="all", limit=7, seed=3) == pairs(client, split="all", limit=7, seed=3)
    assert pairs(client, split="all", limit=7, seed=3) != pairs(client, split="all", limit=7, seed=4)


def test_pairs_of_a_dataset_without_split_file(client):
    sample = pairs(client, "NOSPLIT", limit=4)
    assert len(sample) == 4 and {p["split"] for p in sample} == {"all"}
    response = client.get(reverse("api:dataset-pairs", kwargs={"name": "NOSPLIT"}), {"split": "test"})
    assert response.status_code == 400
    assert error_of(response)["code"] == "invalid"


@pytest.mark.parametrize("params", [
    {"kind": "bogus"}, {"split": "holdout"}, {"limit": 0}, {"limit": 100000}, {"limit": "abc"}, {"seed": -1},
])
def test_pairs_bad_parameters(client, params):
    response = client.get(reverse("api:dataset-pairs", kwargs={"name": "SYNTH"}), params)
    assert response.status_code == 400
    error = error_of(response)
    assert error["code"] == "invalid" and set(error["details"]) == set(params)


def test_pairs_verify(client, verifier, dataset_dirs, monkeypatch):
    calls = {"embed": [], "preprocess": 0}
    embed, preprocess = verifier.embed_tensors, verifier.preprocess

    def counting_embed(batch, *args, **kwargs):
        calls["embed"].append(len(batch))
        return embed(batch, *args, **kwargs)

    def counting_preprocess(source):
        calls["preprocess"] += 1
        return preprocess(source)

    monkeypatch.setattr(verifier, "embed_tensors", counting_embed)
    monkeypatch.setattr(verifier, "preprocess", counting_preprocess)
    url = reverse("api:dataset-pairs-verify", kwargs={"name": "SYNTH"})
    response = client.post(url, {"split": "test", "kind": "mixed", "limit": 6, "seed": 1}, format="json")
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["n"] == 6 and body["skipped"] == 0 and len(body["results"]) == 6
    assert body["threshold"] == verifier.threshold and body["model_version"] == verifier.model_version
    assert body["accuracy"] == pytest.approx(np.mean([r["correct"] is True for r in body["results"]]))
    assert body["inconclusive"] == pytest.approx(np.mean([r["correct"] is None for r in body["results"]]))
    assert body["wrong"] == pytest.approx(np.mean([r["correct"] is False for r in body["results"]]))
    unique = {p for r in body["results"] for p in (r["path_a"], r["path_b"])}
    assert calls["embed"] == [len(unique)]  # every image embedded once, in one batch
    assert calls["preprocess"] == len(unique)
    root = dataset_dirs["data"] / "SYNTH"
    for result in body["results"]:
        decided = None if result["decision"] == "inconclusive" else result["decision"] == result["label"]
        assert result["correct"] is decided  # judged by the decision
        assert result["match"] == (result["decision"] == "genuine")
        expected = embed(torch_stack([preprocess(root / result["path_a"]), preprocess(root / result["path_b"])]))
        assert result["score"] == pytest.approx(float(np.linalg.norm(expected[0] - expected[1])), abs=1e-4)
        assert result["distance"] == result["score"] and result["score_method"] == "pairwise"
    assert body["results"][0].keys() >= {"kind", "label", "writer_a", "url_a", "path_b", "decision", "score", "correct"}
    assert not {"verdict", "similarity"} & set(body["results"][0])


def torch_stack(tensors):
    import torch

    return torch.stack(tensors)


def test_pairs_verify_defaults_and_form_data(client):
    url = reverse("api:dataset-pairs-verify", kwargs={"name": "NOSPLIT"})
    body = client.post(url, {"kind": "genuine", "limit": "2"}).json()  # multipart form, split defaults to "all"
    assert body["n"] == 2


def test_pairs_verify_skips_images_it_must_not_read(client):
    url = reverse("api:dataset-pairs-verify", kwargs={"name": "LINKED"})
    body = client.post(url, {"kind": "genuine", "limit": 6, "split": "all"}, format="json").json()
    assert body["n"] + body["skipped"] == 6 and body["skipped"] == 3  # the 3 pairs with the escaping symlink
    assert all("escape" not in r["path_a"] + r["path_b"] for r in body["results"])


def test_pairs_verify_bad_input(client, settings):
    url = reverse("api:dataset-pairs-verify", kwargs={"name": "SYNTH"})
    settings.SIGVER_PAIRS_VERIFY_MAX_LIMIT = 5
    response = client.post(url, {"limit": 6}, format="json")
    assert response.status_code == 400 and error_of(response)["details"].keys() == {"limit"}
    response = client.generic("POST", url, b"{not json", content_type="application/json")
    assert response.status_code == 400 and error_of(response)["code"] == "invalid"
    assert client.get(url).status_code == 405
    assert client.post(reverse("api:dataset-pairs-verify", kwargs={"name": "NOPE"}), {}, format="json").status_code == 404


# --- the real datasets, when present ----------------------------------------------------------------

@pytest.fixture
def real_data(settings) -> Path:
    env = os.environ.get("SIGVER_TEST_DATA")
    path = Path(env).expanduser() if env else Path("/work/shared/datasets")
    if not (path / "CEDAR").is_dir():
        pytest.skip(f"real CEDAR dataset not found under {path} (set SIGVER_TEST_DATA to the folder holding CEDAR/)")
    settings.SIGVER_DATA_DIR = path
    settings.SIGVER_SPLITS_DIR = Path(__file__).resolve().parents[3] / "image_pairs"
    return path


def test_real_cedar(client, real_data):
    datasets = {d["name"]: d for d in client.get(reverse("api:dataset-list")).json()["datasets"]}
    cedar = datasets["CEDAR"]
    assert cedar["layout"] == "cedar" and cedar["writers"] == 55 and cedar["genuine"] == 1320
    writer = client.get(reverse("api:dataset-writer", kwargs={"name": "CEDAR", "writer": "1"})).json()
    image = client.get(writer["genuine"][0]["url"])
    assert image.status_code == 200 and image["Content-Type"] == "image/png"
    url = reverse("api:dataset-pairs-verify", kwargs={"name": "CEDAR"})
    body = client.post(url, {"split": "test", "kind": "skilled", "limit": 2}, format="json").json()
    assert body["n"] == 2 and all(r["label"] == "forged" for r in body["results"])
