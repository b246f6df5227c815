"""OpenAPI helpers: the one error shape as a component, attached to each operation's error statuses."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiResponse, inline_serializer
from rest_framework import serializers

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
    413: "File or image too large",
    415: "Not a readable image, or not multipart",
    429: "Throttled; see Retry-After",
    503: "Model or database unavailable",
}


def error_responses(*statuses: int) -> dict[int, OpenApiResponse]:
    return {s: OpenApiResponse(ErrorSerializer, description=ERROR_DESCRIPTIONS.get(s, "Error")) for s in statuses}
