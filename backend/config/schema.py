"""OpenAPI helpers: the one error shape as a component, attached to each operation's error statuses."""

from __future__ import annotations

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
    422: "Not a signature crop the model can judge (`not_a_signature`: a page, a photo, a frame); crop it",
    429: "Throttled; see Retry-After",
    503: "Model or database unavailable",
}


def error_responses(*statuses: int) -> dict[int, OpenApiResponse]:
    return {s: OpenApiResponse(ErrorSerializer, description=ERROR_DESCRIPTIONS.get(s, "Error")) for s in statuses}
