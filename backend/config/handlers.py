"""WSGI/ASGI handlers whose requests survive a Content-Type naming a codec that is not a text encoding.

Django's request constructor takes any `charset=` that `codecs.lookup` knows as the request's
encoding, including bytes-to-bytes codecs (`zlib`, `base64`, `hex`, `bz2`, `uu`, `quopri`, `rot13`).
Setting it re-decodes the query string with that codec, which raises `LookupError` inside the
constructor, before Django's exception handling and every middleware: the client got an HTML 500
from the server. These request classes keep the default encoding instead and remember the refused
charset; `config.middleware.RequestSizeLimitMiddleware` (the first middleware) then answers
415 `unsupported_media_type` in the error shape.
"""

from __future__ import annotations

import codecs

from django.core.handlers.asgi import ASGIHandler, ASGIRequest
from django.core.handlers.wsgi import WSGIHandler, WSGIRequest
from django.utils.http import parse_header_parameters


# Text codecs that are not character sets of a body: decoding a query string or a form with them raises
# other errors than UnicodeDecodeError (UnicodeError, TooManyFieldsSent) or interprets escapes.
NOT_CHARSETS = frozenset({"idna", "punycode", "undefined", "unicode-escape", "raw-unicode-escape"})


def is_refused_charset(name: str) -> bool:
    """True for a codec that `codecs.lookup` knows but that is not a character set: bytes-to-bytes codecs
    (zlib, base64, hex, bz2, uu, quopri), str-to-str ones (rot13), NOT_CHARSETS and names codecs cannot
    even look up (a NUL in them). Unknown names are False: Django already ignores them."""
    try:
        info = codecs.lookup(name)
    except LookupError:
        return False
    except (ValueError, TypeError):  # e.g. a NUL in the name: Django's own lookup would raise it too
        return True
    return not getattr(info, "_is_text_encoding", True) or info.name.replace("_", "-") in NOT_CHARSETS


class _CharsetCheckMixin:
    refused_charset: str | None = None

    def _set_content_type_params(self, meta) -> None:
        _, params = parse_header_parameters(meta.get("CONTENT_TYPE", ""))
        charset = params.get("charset")
        if charset is not None and is_refused_charset(charset):
            self.refused_charset = charset
            meta = {**meta, "CONTENT_TYPE": meta["CONTENT_TYPE"].split(";", 1)[0]}
        super()._set_content_type_params(meta)  # type: ignore[misc]


class SafeWSGIRequest(_CharsetCheckMixin, WSGIRequest):
    pass


class SafeASGIRequest(_CharsetCheckMixin, ASGIRequest):
    pass


class SafeWSGIHandler(WSGIHandler):
    request_class = SafeWSGIRequest


class SafeASGIHandler(ASGIHandler):
    request_class = SafeASGIRequest
