"""One vocabulary and a schema that tells the truth: the same concept has the same name and type on every endpoint
of /api/schema/, no answer holds a field that could disagree with `decision`, uploads are multipart only, the
statuses and constraints the server enforces are in the schema, and every link `GET /api/` advertises answers."""

from __future__ import annotations

import json
from typing import Any, Iterator

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from api_helpers import close_response, png

pytestmark = pytest.mark.django_db

# the answer's vocabulary: each name has one type wherever it appears in an answer
VOCABULARY = {
    "decision": {"enum": ["genuine", "inconclusive", "forged"]},
    "score": {"type": "number"},
    "score_method": {"enum": ["mean", "normalized", "pairwise"]},
    "threshold": {"type": "number"},
    "model_version": {"type": "string"},
    "elapsed_ms": {"type": "number"},
}
# names that said the answer a second way and could disagree with `decision`
GONE = ("verdict", "similarity")


@pytest.fixture(scope="module")
def schema(django_db_blocker) -> dict[str, Any]:
    from rest_framework.test import APIClient

    with django_db_blocker.unblock():
        response = APIClient().get("/api/schema/?format=json")
    assert response.status_code == 200
    return json.loads(response.content)


def _resolve(schema: dict[str, Any], node: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in node:
        node = schema["components"]["schemas"][node["$ref"].rsplit("/", 1)[-1]]
    if "allOf" in node and len(node["allOf"]) == 1 and "properties" not in node:  # drf-spectacular's enum wrapper
        return {**_resolve(schema, node["allOf"][0]), **{k: v for k, v in node.items() if k != "allOf"}}
    return node


def _objects(schema: dict[str, Any], node: dict[str, Any], where: str, seen: set[str]) -> Iterator[tuple[str, dict]]:
    """Every object schema reachable from `node`, with where it was found."""
    if "$ref" in node:
        name = node["$ref"].rsplit("/", 1)[-1]
        if name in seen:
            return
        seen.add(name)
    node = _resolve(schema, node)
    if node.get("type") == "array":
        yield from _objects(schema, node.get("items", {}), where + "[]", seen)
    for prop_name, prop in node.get("properties", {}).items():
        yield from _objects(schema, prop, f"{where}.{prop_name}", seen)
    if "properties" in node:
        yield where, node


def _answers(schema: dict[str, Any]) -> Iterator[tuple[str, dict]]:
    """Every object of every JSON answer of every operation."""
    for path, operations in schema["paths"].items():
        for method, operation in operations.items():
            for status, response in operation["responses"].items():
                content = response.get("content", {}).get("application/json")
                if content and status.startswith("2"):
                    yield from _objects(schema, content["schema"], f"{method.upper()} {path} {status}", set())


def test_the_same_concept_has_the_same_name_and_type_on_every_endpoint(schema):
    seen = {name: set() for name in VOCABULARY}
    for where, obj in _answers(schema):
        for name, prop in obj["properties"].items():
            assert name not in GONE, f"{where}: `{name}` can disagree with `decision`"
            if name in VOCABULARY:
                prop = _resolve(schema, prop)
                expected = VOCABULARY[name]
                if "enum" in expected:
                    assert set(prop.get("enum", [])) <= set(expected["enum"]), f"{where}.{name}: {prop}"
                else:
                    assert prop.get("type") == expected["type"], f"{where}.{name}: {prop}"
                seen[name].add(where.split(" ")[1])
        if "decision" in obj["properties"] and "score" in obj["properties"]:
            assert "score_method" in obj["properties"], f"{where}: a score says how it was formed"
        if "distance" in obj["properties"] and "score" in obj["properties"]:  # an alias kept for a migration period
            assert _resolve(schema, obj["properties"]["distance"]).get("deprecated") is True, where
    # every endpoint that decides answers with the score it judged
    for path in ("/api/verify/", "/api/profiles/{profile_id}/verify/", "/api/datasets/{name}/pairs/verify/",
                 "/api/records/", "/api/records/{record_id}/"):
        assert path in seen["score"] and path in seen["decision"] and path in seen["score_method"], path


def test_match_is_deprecated_wherever_it_is_kept(schema):
    for where, obj in _answers(schema):
        if "match" in obj["properties"]:
            assert _resolve(schema, obj["properties"]["match"]).get("deprecated") is True, where


def test_uploads_are_multipart_only(schema):
    for path, operations in schema["paths"].items():
        for method, operation in operations.items():
            content = operation.get("requestBody", {}).get("content", {})
            for media_type, body in content.items():
                props = _resolve(schema, body["schema"]).get("properties", {})
                binary = [n for n, p in props.items()
                          if p.get("format") == "binary" or p.get("items", {}).get("format") == "binary"]
                if binary:
                    assert media_type == "multipart/form-data", (method, path, media_type, binary)


def test_the_schema_documents_the_statuses_and_limits_the_server_enforces(schema, settings):
    ops = schema["paths"]
    assert "404" in ops["/api/profiles/"]["get"]["responses"]  # a page past the end
    assert "404" in ops["/api/records/"]["get"]["responses"]
    assert "409" in ops["/api/profiles/"]["post"]["responses"]  # a taken external id
    assert "409" in ops["/api/profiles/{profile_id}/"]["patch"]["responses"]
    for status in ("413", "415", "422", "429", "503"):
        assert status in ops["/api/verify/"]["post"]["responses"]
        assert status in ops["/api/profiles/{profile_id}/references/"]["post"]["responses"]
    limit = next(p for p in ops["/api/datasets/{name}/pairs/"]["get"]["parameters"] if p["name"] == "limit")
    assert limit["schema"]["maximum"] == settings.SIGVER_PAIRS_MAX_LIMIT
    body = _resolve(schema, ops["/api/profiles/"]["post"]["requestBody"]["content"]["application/json"]["schema"])
    assert body["properties"]["name"]["maxLength"] == 200 and body["properties"]["name"]["minLength"] == 1
    assert "\\u0000" in body["properties"]["name"]["pattern"]  # no NUL characters


def _get_answers(api, href: str) -> int:
    response = api.get(href.removeprefix("http://testserver"))
    close_response(response)  # a streamed CSV export holds its slot until closed
    return response.status_code


def test_every_link_of_the_index_answers(user_client):
    api, _ = user_client("linkchecker")
    links = api.get("/api/").json()["links"]
    assert "records_export" in links
    for key, link in links.items():
        status = _get_answers(api, link["href"])
        # a link answers: GET endpoints with 200 (503: no model loaded), POST/DELETE-only ones with 405
        assert status in (200, 405, 503), (key, link["href"], status)
        assert "?format=" not in link["description"], key
    response = api.get(links["records_export"]["href"].removeprefix("http://testserver"))
    assert response["Content-Type"].startswith("text/csv")
    close_response(response)


# --- the answers themselves ---------------------------------------------------------------------------

def _copy_answer(api) -> dict[str, Any]:
    image = png(3)
    response = api.post(reverse("api:verify"), {"reference": SimpleUploadedFile("a.png", image, "image/png"),
                                                "questioned": SimpleUploadedFile("b.png", image, "image/png")},
                        format="multipart")
    assert response.status_code == 200, response.content
    return response.json()


def test_no_field_of_a_pair_answer_disagrees_with_its_decision(user_client):
    api, _ = user_client("pairs")
    body = _copy_answer(api)  # a copy of the reference: inconclusive
    assert body["decision"] == "inconclusive" and "identical_to_reference" in body["flags"]
    assert body["match"] is False
    assert not set(GONE) & set(body)
    assert body["score_method"] == "pairwise" and body["score"] == body["distance"]


def test_case_records_and_the_csv_use_the_same_names(user_client):
    api, _ = user_client("records")
    answer = _copy_answer(api)
    record = api.get(reverse("api:record-list")).json()["results"][0]
    assert (record["decision"], record["score_method"]) == (answer["decision"], "pairwise")
    assert record["score"] == pytest.approx(answer["score"], abs=1e-9)
    assert not {"distance", *GONE} & set(record)
    response = api.get(reverse("api:record-export"))
    header, row = b"".join(response.streaming_content).decode().splitlines()[:2]
    response.close()
    assert header.split(",")[10:15] == ["decision", "score", "score_method", "threshold", "elapsed_ms"]
    assert not {"distance", *GONE} & set(header.split(","))
    assert row.split(",")[10] == "inconclusive"


def test_dataset_pair_results_are_judged_by_the_decision(client):
    response = client.post(reverse("api:dataset-pairs-verify", kwargs={"name": "SYNTH"}),
                           {"kind": "mixed", "limit": 8, "seed": 1}, format="json")
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["accuracy"] + body["inconclusive"] + body["wrong"] == pytest.approx(1.0)
    for r in body["results"]:
        assert not set(GONE) & set(r)
        expected = None if r["decision"] == "inconclusive" else r["decision"] == r["label"]
        assert r["correct"] is expected and r["match"] is (r["decision"] == "genuine")
        assert r["score_method"] == "pairwise" and r["distance"] == r["score"]


# --- requests the schema forbids are refused; requests it allows are answered ----------------------------------

def test_empty_values_are_refused_not_skipped(user_client):
    api, _ = user_client("empty")
    profile = api.post(reverse("api:profile-list"), {"name": "Ada"}, format="json").json()
    detail = reverse("api:profile-detail", kwargs={"profile_id": profile["id"]})
    for fmt in ("json", "multipart"):
        response = api.patch(detail, {"name": ""}, format=fmt)
        assert response.status_code == 400, (fmt, response.content)
        assert "name" in json.dumps(response.json()["error"])
    assert api.get(detail).json()["name"] == "Ada"
    assert api.get(reverse("api:dataset-pairs", kwargs={"name": "SYNTH"}) + "?split=").status_code == 400
    assert api.get(reverse("api:record-list") + "?user=").status_code == 400
    assert api.get(reverse("api:record-list") + "?decision=").status_code == 400
    assert api.patch(detail, {"external_id": ""}, format="multipart").status_code == 200  # blank allowed: cleared


def test_a_period_that_ends_before_it_starts_is_an_empty_result(user_client):
    api, _ = user_client("dates")
    _copy_answer(api)
    response = api.get(reverse("api:record-list") + "?date_from=2026-02-01&date_to=2026-01-01")
    assert response.status_code == 200 and response.json()["count"] == 0


def test_a_limit_above_the_documented_maximum_is_refused(client, settings):
    url = reverse("api:dataset-pairs", kwargs={"name": "SYNTH"})
    assert client.get(f"{url}?limit={settings.SIGVER_PAIRS_MAX_LIMIT + 1}").status_code == 400


def test_a_patch_racing_a_delete_is_a_404_not_a_500(user_client, monkeypatch):
    """The PATCH read the profile, then the DELETE removed it before the PATCH saved."""
    from signatures import selectors, views
    from signatures.models import Profile

    api, _ = user_client("racer")
    profile = api.post(reverse("api:profile-list"), {"name": "Ada"}, format="json").json()
    real_get = selectors.profile_get

    def get_then_deleted(**kwargs):
        found = real_get(**kwargs)
        Profile.objects.filter(pk=found.pk).delete()  # the DELETE wins the race
        return found

    monkeypatch.setattr(views.selectors, "profile_get", get_then_deleted)
    response = api.patch(reverse("api:profile-detail", kwargs={"profile_id": profile["id"]}), {"name": "Bea"},
                         format="json")
    assert response.status_code == 404, response.content
    assert response.json()["error"]["code"] == "not_found"
