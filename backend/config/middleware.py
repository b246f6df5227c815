"""Request-level bounds: oversized bodies and Content-Types whose charset is not one are refused before
anything reads them; image requests run a few at a time per process, each with a deadline."""

from __future__ import annotations

import threading
import time
from typing import Callable

from django.conf import settings
from django.http import HttpRequest, HttpResponse

from .errors import ApplicationError, ServerBusy, UnsupportedCharset, UploadTooLarge
from .exceptions import error_response


class RequestSizeLimitMiddleware:
    """413 `file_too_large` when Content-Length exceeds SIGVER_MAX_REQUEST_BYTES.

    Django's DATA_UPLOAD_MAX_MEMORY_SIZE does not cover file parts nor bodies that DRF's JSON and
    form parsers read from the stream, so the whole body is bounded here; each uploaded file is
    also bounded by SIGVER_MAX_UPLOAD_BYTES (signatures.uploads).
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        refused = getattr(request, "refused_charset", None)  # set by config.handlers' request classes
        if refused is not None:
            return error_response(UnsupportedCharset(
                f"The Content-Type names charset={refused!r}, which is not a character set.",
                details={"charset": refused}))
        try:
            length = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            return error_response(ApplicationError("Content-Length is not a number."))
        limit = settings.SIGVER_MAX_REQUEST_BYTES
        if length > limit:
            return error_response(UploadTooLarge(
                f"The request body is {length} bytes; at most {limit} bytes are accepted.",
                details={"limit_bytes": limit}))
        return self.get_response(request)


# --- image requests: how many at once, and a deadline -------------------------------------------------

IMAGE_ENDPOINTS = frozenset({"verify", "locate", "reference-list", "profile-verify", "dataset-pairs-verify"})
BUSY_RETRY_AFTER_S = 5


def request_deadline(request: HttpRequest) -> float | None:
    """time.monotonic() by which this image request must be done (None for other requests): views pass it to the
    services that decode, so no service reads it from thread state."""
    return getattr(request, "sigver_deadline", None)


class SettingsSemaphore:
    """A process-wide semaphore sized by the integer setting `setting` (at least 1), made anew when the setting
    changes (tests change it); `reset` forgets it. The one way a process caps concurrent work of one kind."""

    def __init__(self, setting: str) -> None:
        self.setting = setting
        self._semaphore: threading.BoundedSemaphore | None = None
        self._size: int | None = None
        self._lock = threading.Lock()

    def get(self) -> threading.BoundedSemaphore:
        size = max(1, int(getattr(settings, self.setting)))
        with self._lock:
            if self._semaphore is None or self._size != size:
                self._semaphore, self._size = threading.BoundedSemaphore(size), size
            return self._semaphore

    def reset(self) -> None:
        with self._lock:
            self._semaphore = self._size = None


class ImageRequestLimitMiddleware:
    """At most SIGVER_MAX_CONCURRENT_IMAGE_REQUESTS image requests (POSTs that decode uploads or run the
    model: verify, locate, reference upload, profile verify, batch pair verification) run at once in a process;
    one that cannot start within SIGVER_BUSY_WAIT_SECONDS is a 503 `server_busy` with Retry-After.

    With gunicorn's gthread workers this keeps threads free for health checks and light requests
    (the default is GUNICORN_THREADS - 1), whatever clients send. Each image request also gets a
    deadline of SIGVER_REQUEST_DEADLINE_SECONDS (`request_deadline(request)`, which views pass to the services):
    the decoding steps check it (signatures.uploads) and
    answer 503 once it has passed, instead of going on working for a client that has given up."""

    slots = SettingsSemaphore("SIGVER_MAX_CONCURRENT_IMAGE_REQUESTS")

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    @classmethod
    def semaphore(cls) -> threading.BoundedSemaphore:
        return cls.slots.get()

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        slot = getattr(request, "_sigver_image_slot", None)
        if slot is not None:
            slot.release()
        return response

    def process_view(self, request: HttpRequest, view_func, view_args, view_kwargs) -> HttpResponse | None:
        match = request.resolver_match
        if request.method != "POST" or match is None or match.url_name not in IMAGE_ENDPOINTS:
            return None
        semaphore = self.semaphore()
        if not semaphore.acquire(timeout=max(0.0, float(settings.SIGVER_BUSY_WAIT_SECONDS))):
            return error_response(ServerBusy("The server is busy with other image requests; try again shortly.",
                                             retry_after=BUSY_RETRY_AFTER_S))
        request._sigver_image_slot = semaphore
        request.sigver_deadline = time.monotonic() + float(settings.SIGVER_REQUEST_DEADLINE_SECONDS)
        return None
