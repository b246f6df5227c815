"""Refuse oversized request bodies, and Content-Types with a charset that is not one, before anything reads them."""

from __future__ import annotations

from typing import Callable

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse

from .exceptions import error_body


class RequestSizeLimitMiddleware:
    """413 `file_too_large` when Content-Length exceeds SIGVER_MAX_REQUEST_BYTES.

    Django's DATA_UPLOAD_MAX_MEMORY_SIZE does not cover file parts nor bodies that DRF's JSON and
    form parsers read from the stream, so the whole body is bounded here; each uploaded file is
    also bounded by SIGVER_MAX_UPLOAD_BYTES (signatures.images).
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        refused = getattr(request, "refused_charset", None)  # set by config.handlers' request classes
        if refused is not None:
            return JsonResponse(
                error_body("unsupported_media_type",
                           f"The Content-Type names charset={refused!r}, which is not a character set.",
                           {"charset": refused}),
                status=415,
            )
        try:
            length = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            return JsonResponse(error_body("invalid", "Content-Length is not a number."), status=400)
        limit = settings.SIGVER_MAX_REQUEST_BYTES
        if length > limit:
            return JsonResponse(
                error_body(
                    "file_too_large",
                    f"The request body is {length} bytes; at most {limit} bytes are accepted.",
                    {"limit_bytes": limit},
                ),
                status=413,
            )
        return self.get_response(request)
