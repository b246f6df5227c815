"""One error shape for the whole API: `{"error": {"code", "message", "details"}}`, and the one table of statuses
(`STATUSES`), which the middleware's answers (`error_response`) use too.

Services and selectors raise the domain errors of `config.errors` (and the ML core raises `sigml.errors`); the DRF
exception handler below maps each class to its status (`STATUSES`) and headers, and turns every DRF error and
Django's Http404/PermissionDenied/RequestDataTooBig into the same shape. Django-level handlers (unknown URLs,
500s) answer in the same shape.
"""

from __future__ import annotations

import logging
from typing import Any

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import RequestDataTooBig, TooManyFieldsSent, TooManyFilesSent
from django.db import InterfaceError, OperationalError
from django.http import Http404, HttpRequest, JsonResponse
from django.urls import Resolver404, resolve
from rest_framework import exceptions as drf
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler
from rest_framework.views import set_rollback

from sigml.errors import (BlankImageError, CropError, DatasetError, ImageError, ImageTooLargeError, ModelLoadError,
                          NotASignatureError)

from .errors import (ApplicationError, Conflict, DatabaseUnavailable, ImageRejected, ModelUnavailable,
                     NotAuthenticated, NotFound, ServerBusy, TryAgainLater, UnsupportedCharset, UploadTooLarge)

log = logging.getLogger(__name__)

# Each domain error's status: the first class in this list that the error is an instance of (an `ImageRejected`
# by its `kind`). Subclasses before their bases.
STATUSES: tuple[tuple[type[Exception], int], ...] = (
    (NotFound, 404),
    (Conflict, 409),
    (NotAuthenticated, 401),
    (UploadTooLarge, 413),
    (UnsupportedCharset, 415),
    (ServerBusy, 503),
    (ModelUnavailable, 503),
    (DatabaseUnavailable, 503),
    (TryAgainLater, 503),
    (ImageTooLargeError, 413),
    (NotASignatureError, 422),
    (BlankImageError, 400),
    (CropError, 400),
    (ImageError, 415),
    (ApplicationError, 400),
)


def status_of(exc: ApplicationError | ImageError) -> int:
    """The HTTP status of a domain error (`STATUSES`)."""
    subject: object = exc.kind if isinstance(exc, ImageRejected) else type(exc)
    return next(status for cls, status in STATUSES if isinstance(subject, type) and issubclass(subject, cls))


def headers_of(exc: ApplicationError) -> dict[str, str]:
    """The headers a domain error's answer carries: the auth scheme with a 401, Retry-After with a busy 503."""
    if isinstance(exc, NotAuthenticated):
        return {"WWW-Authenticate": "Token"}
    if isinstance(exc, TryAgainLater) and exc.retry_after is not None:
        return {"Retry-After": str(exc.retry_after)}
    return {}


def error_body(code: str, message: str, details: Any = None) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, "details": details if details is not None else {}}}


def error_response(exc: ApplicationError) -> JsonResponse:
    """A domain error answered outside DRF (by middleware), with the same status and headers as inside it."""
    response = JsonResponse(error_body(exc.code, exc.message, exc.details), status=status_of(exc))
    for name, value in headers_of(exc).items():
        response[name] = value
    return response


DRF_CODES: list[tuple[type[drf.APIException], str]] = [
    (drf.NotAuthenticated, "not_authenticated"),
    (drf.AuthenticationFailed, "not_authenticated"),
    (drf.PermissionDenied, "permission_denied"),
    (drf.NotFound, "not_found"),
    (drf.MethodNotAllowed, "method_not_allowed"),
    (drf.NotAcceptable, "not_acceptable"),
    (drf.UnsupportedMediaType, "unsupported_media_type"),
    (drf.Throttled, "throttled"),
    (drf.ParseError, "invalid"),
]


def _first_message(detail: Any, prefix: str = "") -> str:
    """'field: message' of the first error in a (possibly nested) DRF error detail."""
    if isinstance(detail, dict):
        for key, value in detail.items():
            name = f"{prefix}.{key}" if prefix else str(key)
            if key == "non_field_errors":
                name = prefix
            return _first_message(value, name)
    elif isinstance(detail, list):
        for index, value in enumerate(detail):
            if isinstance(value, (dict, list)):
                return _first_message(value, f"{prefix}[{index}]" if prefix else f"[{index}]")
            return f"{prefix}: {value}" if prefix else str(value)
    elif detail is not None:
        return f"{prefix}: {detail}" if prefix else str(detail)
    return "Invalid input."


def _has_code(codes: Any, wanted: str) -> bool:
    if isinstance(codes, dict):
        return any(_has_code(v, wanted) for v in codes.values())
    if isinstance(codes, list):
        return any(_has_code(v, wanted) for v in codes)
    return codes == wanted


def _validation_error(exc: drf.ValidationError) -> tuple[str, str, Any]:
    detail = exc.detail
    code = "missing_field" if _has_code(exc.get_codes(), "required") else "invalid"
    details = detail if isinstance(detail, dict) else {"non_field_errors": detail}
    return code, _first_message(detail), details


def _to_api_error(exc: Exception) -> Exception:
    """Map non-DRF exceptions onto domain errors/DRF exceptions (or return them unchanged)."""
    if isinstance(exc, ImageError):  # an image not sent in a field (a dataset's); uploads name theirs
        return ImageRejected.of(exc)
    if isinstance(exc, ModelLoadError):
        log.error("model unavailable: %s", exc)
        return ModelUnavailable("The signature model is not available.", details={"reason": exc.reason})
    if isinstance(exc, DatasetError):
        return ApplicationError(str(exc), code="invalid")
    if isinstance(exc, RequestDataTooBig):
        return UploadTooLarge("The request body is larger than the server accepts.")
    if isinstance(exc, (TooManyFilesSent, TooManyFieldsSent)):
        return ApplicationError(str(exc) or "Too many fields or files in the request.", code="invalid")
    if isinstance(exc, (OperationalError, InterfaceError)):
        log.exception("database unavailable")
        return DatabaseUnavailable("The database is not available.")
    if isinstance(exc, Http404):
        return drf.NotFound(str(exc) or None)
    if isinstance(exc, DjangoPermissionDenied):
        return drf.PermissionDenied()
    return exc


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    """DRF's EXCEPTION_HANDLER: every handled error in the one JSON shape; None → a real 500."""
    exc = _to_api_error(exc)
    if isinstance(exc, ApplicationError):
        set_rollback()
        return Response(error_body(exc.code, exc.message, exc.details), status=status_of(exc), headers=headers_of(exc))

    response = drf_exception_handler(exc, context)  # sets WWW-Authenticate / Retry-After, rolls back
    if response is None:
        return None
    if isinstance(exc, drf.ValidationError):
        code, message, details = _validation_error(exc)
    else:
        code = next((c for cls, c in DRF_CODES if isinstance(exc, cls)), None)
        if code is None:
            code = exc.default_code if isinstance(exc, drf.APIException) else "error"
        detail = getattr(exc, "detail", None)
        message = _first_message(detail) if detail is not None else str(exc)
        details: Any = {}
        if isinstance(exc, drf.Throttled) and exc.wait is not None:
            details = {"retry_after": int(exc.wait + 0.999)}
    response.data = error_body(code, message, details)
    return response


# --- Django-level handlers (config.urls handler400/403/404/500): used when DEBUG is off ---------------

def bad_request(request: HttpRequest, exception: Exception | None = None) -> JsonResponse:
    return JsonResponse(error_body("invalid", "Bad request."), status=400)


def permission_denied(request: HttpRequest, exception: Exception | None = None) -> JsonResponse:
    return JsonResponse(error_body("permission_denied", "You do not have permission to perform this action."), status=403)


def not_found(request: HttpRequest, exception: Exception | None = None, **kwargs: object) -> JsonResponse:
    """Unknown URLs (also the catch-all under /api/, so API clients get JSON even with DEBUG on)."""
    path = request.path
    hint = ""
    if not path.endswith("/"):
        try:
            if resolve(path + "/").url_name != "not-found":
                hint = f" (did you mean {path}/ ?)"
        except Resolver404:
            pass
    return JsonResponse(error_body("not_found", f"No such endpoint: {path}{hint}"), status=404)


def csrf_failure(request: HttpRequest, reason: str = "") -> JsonResponse:
    """CSRF_FAILURE_VIEW: a session-authenticated unsafe request without a CSRF token (the API itself
    uses token auth, which needs none) gets the JSON error shape rather than Django's HTML page."""
    return JsonResponse(error_body("permission_denied", f"CSRF verification failed: {reason or 'no token'}."), status=403)


def server_error(request: HttpRequest) -> JsonResponse:
    return JsonResponse(error_body("server_error", "Internal server error."), status=500)
