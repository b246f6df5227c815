"""The API's domain errors: what went wrong, in words and a machine-readable code, never how HTTP says it.

Each class is named by what went wrong, not by the HTTP status it gets. Services, selectors and middleware raise
these; `config.exceptions` maps each class (and the ML core's `sigml.errors`, the
vocabulary of refused images) to its status and headers in one table. No Django or DRF import here.
"""

from __future__ import annotations

from typing import Any

from sigml.errors import ImageError, UnreadableImageError


class ApplicationError(Exception):
    """A request the service refuses: `code` for programs, `message` for people, `details` for both."""

    code = "invalid"

    def __init__(self, message: str, *, code: str | None = None, details: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        self.details = details or {}


class NotFound(ApplicationError):
    """No such thing, or one the caller may not see (indistinguishable on purpose)."""

    code = "not_found"


class Conflict(ApplicationError):
    """The request clashes with what is stored (an external id taken, a reference enrolled twice)."""

    code = "conflict"


class NotAuthenticated(ApplicationError):
    """Wrong or missing credentials."""

    code = "not_authenticated"


class UploadTooLarge(ApplicationError):
    """A file, or the whole request, has more bytes than the server accepts."""

    code = "file_too_large"


class UnsupportedCharset(ApplicationError):
    """The request's Content-Type names a charset that is not a character set (`zlib`, `rot13`, ...)."""

    code = "unsupported_media_type"


class TryAgainLater(ApplicationError):
    """The server cannot answer now, and may soon; `retry_after` seconds when it is worth trying again (also in
    `details`)."""

    code = "server_busy"

    def __init__(self, message: str, *, code: str | None = None, details: dict[str, Any] | None = None,
                 retry_after: int | None = None) -> None:
        details = dict(details or {})
        if retry_after is not None:
            details["retry_after"] = retry_after
        super().__init__(message, code=code, details=details)
        self.retry_after = retry_after


class ServerBusy(TryAgainLater):
    """Every slot for this kind of work is taken, the decode budget is spent, or the request's deadline passed."""

    code = "server_busy"


class ModelUnavailable(TryAgainLater):
    """The signature model cannot be loaded (missing, damaged or inconsistent files)."""

    code = "model_unavailable"


class DatabaseUnavailable(TryAgainLater):
    """The database does not answer."""

    code = "database_unavailable"


class ImageRejected(ApplicationError):
    """An upload refused for what it is, named by its field in `details`: `kind` is the `sigml.errors.ImageError`
    class that says why (too large, unreadable, blank, not a signature, a bad crop), whose code it takes."""

    def __init__(self, message: str, *, kind: type[ImageError] = UnreadableImageError,
                 details: dict[str, Any] | None = None) -> None:
        super().__init__(message, code=kind.code, details=details)
        self.kind = kind

    @classmethod
    def of(cls, exc: ImageError, *, field: str | None = None) -> "ImageRejected":
        """The one translation of the ML core's refusal of an image: the field it came in (when it came in one)
        and the limit it broke (`exc.details`), in `details`."""
        details = {"field": field, **exc.details} if field is not None else dict(exc.details)
        return cls(f"{field}: {exc}" if field is not None else str(exc), kind=type(exc), details=details)


def get_or_not_found(queryset: Any, **lookup: Any) -> Any:
    """`queryset.get(**lookup)`, or NotFound when no row matches (Django's get_object_or_404 without HTTP)."""
    try:
        return queryset.get(**lookup)
    except queryset.model.DoesNotExist:
        raise NotFound(f"No {queryset.model._meta.object_name} matches the given query.") from None
