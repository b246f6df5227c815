"""OpenAPI helpers: the one error shape as a component, attached to each operation's error statuses."""

from __future__ import annotations

from typing import Any

from drf_spectacular import openapi
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.utils import OpenApiResponse, inline_serializer
from rest_framework import serializers


class AutoSchema(openapi.AutoSchema):
    """Components of nested serializers are named after the classes they are nested in.

    Every view nests its own `InputSerializer` / `OutputSerializer` (the styleguide's pattern); by
    their bare class names they would all collapse into one `Output` / `InputRequest` component and
    the schema would describe every endpoint with one of them. `VerifyApi.OutputSerializer` becomes
    `VerifyOutput`, `DatasetWriterApi.OutputSerializer.ImageSerializer` `DatasetWriterOutputImage`.
    """

    def get_serializer_name(self, serializer: serializers.Serializer, direction: str) -> str:
        cls = serializer.__class__
        outer = cls.__qualname__.split(".")[:-1]
        if not outer or "<locals>" in outer:
            return cls.__name__
        prefix = "".join(part.removesuffix("Api").removesuffix("Serializer") for part in outer)
        return prefix + cls.__name__

class TokenScheme(OpenApiAuthenticationExtension):
    """The API's token authentication (knox's, throttled: `config.throttles.ThrottledTokenAuthentication`) as the
    `tokenAuth` scheme: `Authorization: Token <token>`."""

    target_class = "config.throttles.ThrottledTokenAuthentication"
    name = "tokenAuth"

    def get_security_definition(self, auto_schema):
        return {"type": "apiKey", "in": "header", "name": "Authorization",
                "description": 'Token-based authentication with required prefix "Token"'}


ErrorSerializer = inline_serializer(
    name="Error",
    fields={
        "error": inline_serializer(
            name="ErrorDetail",
            fields={
                "code": serializers.CharField(help_text="machine-readable, e.g. invalid_image, not_found, throttled"),
                "message": serializers.CharField(help_text="a human-readable sentence"),
                "details": serializers.DictField(help_text="field errors or other context; may be empty"),
            },
        )
    },
)

ERROR_DESCRIPTIONS = {
    400: "Validation error, blank image, bad parameters",
    401: "Missing or invalid token",
    403: "Not allowed",
    404: "Not found (or not yours)",
    409: "Conflicts with what is stored (a duplicate reference, a taken external id)",
    413: "File or image too large",
    415: "Not a readable image, or not multipart",
    422: ("Not a signature crop the model can judge (`not_a_signature`: a page, a photo, a frame: crop it; `too_small`: "
          "the ink is under the minimum size in `details.minimum`)"),
    429: "Throttled; see Retry-After",
    503: "Model or database unavailable",
}


def error_responses(*statuses: int) -> dict[int, OpenApiResponse]:
    return {s: OpenApiResponse(ErrorSerializer, description=ERROR_DESCRIPTIONS.get(s, "Error")) for s in statuses}


def multipart(serializer: Any) -> dict[str, Any]:
    """An upload's request body: multipart/form-data only (files cannot travel in a urlencoded form, and a client
    generated from a schema that offers both may pick the form and send no file)."""
    return {"multipart/form-data": serializer}


NO_NUL = "^[^\\u0000]*$"  # DRF refuses NUL characters in every text field (ProhibitNullCharactersValidator)

# Request bodies that need one of two fields (a field or its alias); the serializers check it, the schema says it.
ONE_OF_FIELDS = {
    "VerifyInputRequest": [("reference", "image_1"), ("questioned", "image_2")],
    "ReferenceListInputRequest": [("image", "images")],
}


def _text_without_nul(schema: dict[str, Any]) -> None:
    if schema.get("type") == "string" and not {"format", "enum", "pattern"} & set(schema):
        schema["pattern"] = NO_NUL


def _error_response(status: int) -> dict[str, Any]:
    return {"description": ERROR_DESCRIPTIONS.get(status, "Error"),
            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}


def document_everything(result: dict[str, Any], generator: Any, request: Any, public: bool) -> dict[str, Any]:
    """drf-spectacular postprocessing hook: the statuses every operation can answer through the shared machinery,
    and the constraints the server enforces beyond what the serializers' fields say.

    Statuses: 400 where there is a body or a query; 401 where a token is read (a wrong token on any endpoint);
    404 where the path has parameters; 413 and 415 where there is a body (the request size limit, a content type
    no parser takes); 429 where the view is throttled; 503 everywhere but the image files (the database, a busy
    server). Constraints: no NUL character in text (request bodies and query parameters); a field or its alias."""
    views = {(path, method.lower()): callback.cls for path, _, method, callback in generator.endpoints}
    schemas = result.get("components", {}).get("schemas", {})
    for name, schema in schemas.items():
        if name.endswith("Request"):
            for prop in schema.get("properties", {}).values():
                _text_without_nul(prop)
                _text_without_nul(prop.get("items", {}))
        if name in ONE_OF_FIELDS:
            schema["allOf"] = [{"anyOf": [{"required": [field]} for field in pair]} for pair in ONE_OF_FIELDS[name]]
    for path, operations in result.get("paths", {}).items():
        for method, operation in operations.items():
            view = views.get((path, method))
            responses = operation.setdefault("responses", {})
            parameters = operation.get("parameters", [])
            for parameter in parameters:
                if parameter.get("in") in ("query", "path"):
                    _text_without_nul(parameter.get("schema", {}))
            add = {503}
            if "requestBody" in operation or any(p.get("in") == "query" for p in parameters):
                add.add(400)
            if "requestBody" in operation:
                add |= {413, 415}
            if any(p.get("in") == "path" for p in parameters):
                add.add(404)
            if view is not None and view.authentication_classes:
                add.add(401)
            if view is not None and view.throttle_classes:
                add.add(429)
            for status in sorted(add):
                responses.setdefault(str(status), _error_response(status))
    return result
