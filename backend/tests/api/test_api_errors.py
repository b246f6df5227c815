"""The one error shape for every status the API answers with, the exception handler's mapping of
domain/Django/database errors, no stack trace ever, and the OpenAPI schema + Swagger UI."""

from __future__ import annotations

import json

import pytest
import yaml
from django.urls import URLPattern, URLResolver, get_resolver, reverse
from rest_framework.test import APIClient

from api_helpers import bomb_png, error_of, png, upload

pytestmark = pytest.mark.django_db

VERIFY = reverse("api:verify")


def two_images(**override) -> dict:
    return {"reference": upload(png(1)), "questioned": upload(png(2)), **override}


# --- every status in the one shape ------------------------------------------------------------------

def test_400(client):
    response = client.post(VERIFY, {"reference": upload(png(1))}, format="multipart")
    assert response.status_code == 400
    assert response["Content-Type"] == "application/json"
    error = error_of(response)
    assert error["code"] == "missing_field"
    assert error["message"].startswith("questioned:")
    assert "questioned" in error["details"]


def test_401(client):
    response = client.get(reverse("api:profile-list"))
    assert response.status_code == 401 and response["WWW-Authenticate"] == "Token"
    assert error_of(response)["code"] == "not_authenticated"


def test_403_from_djangos_permission_denied(client, monkeypatch):
    from django.core.exceptions import PermissionDenied

    from signatures import selectors

    def refuse():
        raise PermissionDenied("no")

    monkeypatch.setattr(selectors, "dataset_list", refuse)
    response = client.get(reverse("api:dataset-list"))
    assert response.status_code == 403
    assert error_of(response)["code"] == "permission_denied"


def test_403_handler_outside_drf(rf):
    from config.exceptions import permission_denied

    response = permission_denied(rf.get("/admin/"))
    assert response.status_code == 403
    assert json.loads(response.content)["error"]["code"] == "permission_denied"


def test_404(user_client):
    api, _ = user_client()
    response = api.get(reverse("api:profile-detail", kwargs={"profile_id": 12345}))
    assert response.status_code == 404
    assert error_of(response)["code"] == "not_found"


def test_405(client):
    response = client.delete(reverse("api:health"))
    assert response.status_code == 405
    assert error_of(response)["code"] == "method_not_allowed"


@pytest.mark.parametrize("data, code", [(two_images(reference=upload(bomb_png())), "image_too_large")])
def test_413(client, data, code):
    response = client.post(VERIFY, data, format="multipart")
    assert response.status_code == 413
    assert error_of(response)["code"] == code


def test_415(client):
    response = client.post(VERIFY, two_images(questioned=upload(b"MZ\x90\x00 an executable", "x.exe")),
                           format="multipart")
    assert response.status_code == 415
    assert error_of(response)["code"] == "invalid_image"


def test_429(client, settings):
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK,
                               "DEFAULT_THROTTLE_RATES": {"anon": "1/min", "user": "1/min", "auth": "1/min"}}
    client.get(reverse("api:dataset-list"))
    response = client.get(reverse("api:dataset-list"))
    assert response.status_code == 429 and int(response["Retry-After"]) > 0
    assert error_of(response)["code"] == "throttled"


def test_503_database_unavailable(user_client, monkeypatch):
    from django.db import OperationalError

    from signatures import selectors

    api, _ = user_client()

    def broken(**kwargs):
        raise OperationalError("unable to open database file")

    monkeypatch.setattr(selectors, "profile_list", broken)
    response = api.get(reverse("api:profile-list"))
    assert response.status_code == 503
    error = error_of(response)
    assert error["code"] == "database_unavailable"
    assert "unable to open" not in error["message"]  # no internals in the answer


# --- original field names and bad uploads -----------------------------------------------------------

@pytest.mark.parametrize("data, status, code", [
    (b"", 415, "invalid_image"),
    (b"plain text, not an image", 415, "invalid_image"),
    (png(1)[:100], 415, "invalid_image"),
    (bomb_png(), 413, "image_too_large"),
])
def test_bad_uploads_through_the_original_field_names(client, data, status, code):
    response = client.post(VERIFY, {"image_1": upload(png(1)), "image_2": upload(data)}, format="multipart")
    assert response.status_code == status
    error = error_of(response)
    assert error["code"] == code
    assert error["details"]["field"] == "image_2" and error["message"].startswith("image_2:")  # the name it was sent as


@pytest.mark.parametrize("missing", ["image_1", "image_2"])
def test_missing_original_field(client, missing):
    data = {"image_1": upload(png(1)), "image_2": upload(png(2))}
    del data[missing]
    response = client.post(VERIFY, data, format="multipart")
    assert response.status_code == 400
    error = error_of(response)
    assert error["code"] == "missing_field"
    assert missing in error["message"]


def test_too_many_files_is_a_400(user_client, settings):
    settings.DATA_UPLOAD_MAX_NUMBER_FILES = 2
    api, _ = user_client()
    profile = api.post(reverse("api:profile-list"), {"name": "p"}, format="json").json()
    response = api.post(reverse("api:reference-list", kwargs={"profile_id": profile["id"]}),
                        {"images": [upload(png(i)) for i in range(3)]}, format="multipart")
    assert response.status_code == 400
    assert error_of(response)["code"] == "invalid"


def test_wrong_content_length_is_a_400(client):
    response = client.generic("POST", VERIFY, b"", content_type="multipart/form-data; boundary=x",
                              CONTENT_LENGTH="many")
    assert response.status_code == 400
    assert error_of(response)["code"] == "invalid"


def test_an_unexpected_error_is_a_json_500_without_a_traceback(settings, monkeypatch):
    from signatures import services

    def bug(**kwargs):
        raise RuntimeError("secret internals /etc/passwd")

    monkeypatch.setattr(services, "verify_pair", bug)
    api = APIClient(raise_request_exception=False)
    response = api.post(VERIFY, two_images(), format="multipart")
    assert response.status_code == 500
    error = error_of(response)
    assert error["code"] == "server_error"
    assert "secret" not in response.content.decode() and "Traceback" not in response.content.decode()


def test_unknown_api_urls_answer_json_with_debug_on(client, settings):
    settings.DEBUG = True
    response = client.get("/api/does-not-exist/")
    assert response.status_code == 404
    assert error_of(response)["code"] == "not_found"


# --- the exception handler's mapping ----------------------------------------------------------------

@pytest.mark.parametrize("exc, status, code", [
    ("django_permission_denied", 403, "permission_denied"),
    ("http404", 404, "not_found"),
    ("operational_error", 503, "database_unavailable"),
    ("interface_error", 503, "database_unavailable"),
    ("request_data_too_big", 413, "file_too_large"),
    ("too_many_files", 400, "invalid"),
    ("dataset_error", 400, "invalid"),
    ("blank_image", 400, "blank_image"),
    ("unreadable_image", 415, "invalid_image"),
    ("image_too_large", 413, "image_too_large"),
    ("not_a_signature", 422, "not_a_signature"),
    ("invalid_crop", 400, "invalid_crop"),
    ("model_load_error", 503, "model_unavailable"),
    ("drf_permission_denied", 403, "permission_denied"),
])
def test_exception_handler_mapping(exc, status, code):
    from django.core.exceptions import PermissionDenied, RequestDataTooBig, TooManyFilesSent
    from django.db import InterfaceError, OperationalError
    from django.http import Http404
    from rest_framework import exceptions as drf

    from config.exceptions import exception_handler
    from sigml import errors

    instances = {
        "django_permission_denied": PermissionDenied(),
        "http404": Http404("nope"),
        "operational_error": OperationalError("locked"),
        "interface_error": InterfaceError("gone"),
        "request_data_too_big": RequestDataTooBig("big"),
        "too_many_files": TooManyFilesSent("many"),
        "dataset_error": errors.DatasetError("no such layout"),
        "blank_image": errors.BlankImageError("no ink"),
        "unreadable_image": errors.UnreadableImageError("not an image"),
        "image_too_large": errors.ImageTooLargeError("too many pixels"),
        "not_a_signature": errors.NotASignatureError("a page", problems=[]),
        "invalid_crop": errors.CropError("outside the image"),
        "model_load_error": errors.ModelLoadError("/models/m.safetensors", "weights file not found"),
        "drf_permission_denied": drf.PermissionDenied(),
    }
    response = exception_handler(instances[exc], {})
    assert response.status_code == status
    assert set(response.data) == {"error"} and response.data["error"]["code"] == code
    assert response.data["error"]["message"]


def _domain_errors():
    from config import errors
    from sigml.errors import (BlankImageError, CropError, ImageTooLargeError, NotASignatureError,
                              UnreadableImageError)

    return [  # (error, status, code, headers): every domain error the services and selectors raise
        (errors.ApplicationError("bad", details={"field": "x"}), 400, "invalid", {}),
        (errors.ApplicationError("none", code="no_references"), 400, "no_references", {}),
        (errors.NotFound("no such thing"), 404, "not_found", {}),
        (errors.Conflict("taken", code="external_id_taken", details={"external_id": "A1"}), 409, "external_id_taken", {}),
        (errors.Conflict("twice", code="duplicate_reference"), 409, "duplicate_reference", {}),
        (errors.NotAuthenticated("Invalid username or password."), 401, "not_authenticated",
         {"WWW-Authenticate": "Token"}),
        (errors.UploadTooLarge("too many bytes", details={"field": "x"}), 413, "file_too_large", {}),
        (errors.UnsupportedCharset("charset=zlib", details={"charset": "zlib"}), 415, "unsupported_media_type", {}),
        (errors.ServerBusy("busy", retry_after=5), 503, "server_busy", {"Retry-After": "5"}),
        (errors.ModelUnavailable("gone"), 503, "model_unavailable", {}),
        (errors.DatabaseUnavailable("down"), 503, "database_unavailable", {}),
        (errors.ImageRejected("x: big", kind=ImageTooLargeError), 413, "image_too_large", {}),
        (errors.ImageRejected("x: what", kind=UnreadableImageError), 415, "invalid_image", {}),
        (errors.ImageRejected("x: a page", kind=NotASignatureError, details={"problems": []}), 422,
         "not_a_signature", {}),
        (errors.ImageRejected("x: blank", kind=BlankImageError), 400, "blank_image", {}),
        (errors.ImageRejected("x: crop", kind=CropError), 400, "invalid_crop", {}),
    ]


@pytest.mark.parametrize("index", range(16))
def test_every_domain_error_has_its_status_shape_and_headers(index):
    from config.exceptions import exception_handler, status_of

    error, status, code, headers = _domain_errors()[index]
    response = exception_handler(error, {})
    assert response.status_code == status == status_of(error)
    assert response.data == {"error": {"code": code, "message": error.message, "details": error.details}}
    assert {k: response[k] for k in headers} == headers
    assert ("Retry-After" in response) == ("retry_after" in error.details)  # said in the header and the body
    assert ("WWW-Authenticate" in response) == (status == 401)


def test_the_domain_error_table_covers_every_domain_error_class():
    import inspect

    from config import errors
    from config.exceptions import STATUSES

    classes = {c for _, c in inspect.getmembers(errors, inspect.isclass)
               if issubclass(c, errors.ApplicationError) and c is not errors.ImageRejected}
    assert classes <= {cls for cls, _ in STATUSES}  # ImageRejected takes the status of its kind
    assert classes - {errors.TryAgainLater} <= {type(e) for e, *_ in _domain_errors()}  # each one tried above
    assert len(_domain_errors()) == 16


def test_the_middleware_answers_from_the_same_table():
    """config.middleware refuses requests before DRF sees them, with domain errors whose status and headers come
    from config.exceptions.STATUSES (no status or error code written out in it)."""
    import inspect
    import re

    from config import middleware

    source = inspect.getsource(middleware)
    assert "error_response(" in source
    assert "JsonResponse" not in source and "error_body" not in source and not re.search(r"status\s*=", source)


def test_domain_errors_carry_no_http():
    from config import errors

    for error, *_ in _domain_errors():
        assert not hasattr(error, "status_code") and not hasattr(error, "headers")
    assert "django" not in open(errors.__file__).read() and "rest_framework" not in open(errors.__file__).read()


def test_exception_handler_leaves_real_bugs_to_the_500_handler():
    from config.exceptions import exception_handler

    assert exception_handler(RuntimeError("bug"), {}) is None


# --- OpenAPI schema and Swagger UI ------------------------------------------------------------------

def _api_routes() -> set[str]:
    """Every named URL under /api/ (as OpenAPI paths), from the URL configuration itself."""
    import re

    routes: set[str] = set()

    def walk(patterns, prefix: str) -> None:
        for p in patterns:
            if isinstance(p, URLResolver):
                walk(p.url_patterns, prefix + str(p.pattern))
            elif isinstance(p, URLPattern) and p.name not in {"not-found", "schema", "docs", "redoc"}:
                routes.add(prefix + str(p.pattern))

    walk(get_resolver().url_patterns, "/")
    return {re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", r) for r in routes if r.startswith("/api/")}


def test_schema_is_valid_openapi_3_and_lists_every_endpoint(client):
    from drf_spectacular.validation import validate_schema

    response = client.get(reverse("api:schema"), {"format": "json"})
    assert response.status_code == 200
    schema = json.loads(response.content)
    assert schema["openapi"].startswith("3.")
    validate_schema(schema)
    assert set(schema["paths"]) == _api_routes()
    assert "tokenAuth" in schema["components"]["securitySchemes"]
    assert "Error" in schema["components"]["schemas"]


def test_schema_as_yaml(client):
    response = client.get(reverse("api:schema"))
    assert response.status_code == 200
    assert response["Content-Type"].startswith("application/vnd.oai.openapi")
    assert yaml.safe_load(response.content)["info"]["title"] == "Signature verification API"


def test_schema_generates_without_warnings():
    """Warnings mean a wrong schema (e.g. two views' nested serializers merged into one component)."""
    from drf_spectacular.drainage import GENERATOR_STATS
    from drf_spectacular.generators import SchemaGenerator

    GENERATOR_STATS.reset()
    schema = SchemaGenerator().get_schema(request=None, public=True)
    assert not GENERATOR_STATS, dict(GENERATOR_STATS._warn_cache) | dict(GENERATOR_STATS._error_cache)
    components = schema["components"]["schemas"]
    assert {"VerifyOutput", "ProfileVerifyOutput", "RegisterOutput", "TokenOutput", "HealthOutput"} <= set(components)
    verify_response = schema["paths"]["/api/verify/"]["post"]["responses"]["200"]
    assert verify_response["content"]["application/json"]["schema"]["$ref"] == "#/components/schemas/VerifyOutput"
    operation_ids = [op["operationId"] for path in schema["paths"].values() for op in path.values()]
    assert len(operation_ids) == len(set(operation_ids))


def test_schema_describes_errors_and_auth():
    from drf_spectacular.generators import SchemaGenerator

    schema = SchemaGenerator().get_schema(request=None, public=True)
    verify = schema["paths"]["/api/verify/"]["post"]
    for status in ("400", "413", "415", "429"):
        assert verify["responses"][status]["content"]["application/json"]["schema"]["$ref"].endswith("/Error")
    profiles = schema["paths"]["/api/profiles/"]["get"]
    assert profiles["security"] == [{"tokenAuth": []}]
    assert "401" in profiles["responses"]


def test_swagger_ui(client):
    response = client.get(reverse("api:docs"))
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/html")
    assert b"swagger" in response.content.lower()
    assert reverse("api:schema").encode() in response.content


def test_schema_marks_the_kept_aliases_deprecated(client):
    schema = yaml.safe_load(client.get(reverse("api:schema")).content)
    pair = schema["components"]["schemas"]["VerifyOutput"]["properties"]
    assert pair["distance"]["deprecated"] is True and pair["distance"]["type"] == "number"
    assert pair["match"]["deprecated"] is True and pair["match"]["type"] == "boolean"
    fields = schema["components"]["schemas"]["ProfileVerifyOutput"]["properties"]
    assert "distance" not in fields  # v2: not a distance, gone (docs/api.md "Changes")
    assert fields["score"]["type"] == "number" and not fields["score"].get("deprecated")
    ref = fields["score_method"]["allOf"][0]["$ref"]  # the enum is a component of its own
    method = schema["components"]["schemas"][ref.rsplit("/", 1)[-1]]
    assert set(method["enum"]) == {"mean", "normalized", "pairwise"}
