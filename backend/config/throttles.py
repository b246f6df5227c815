"""Throttles whose rates are read from settings at request time (so tests can override them).

DRF's own classes copy DEFAULT_THROTTLE_RATES once at import, which override_settings cannot reach.
"""

from __future__ import annotations

import re

from knox.auth import TokenAuthentication
from rest_framework import exceptions
from rest_framework.fields import BooleanField
from rest_framework.settings import api_settings
from rest_framework.throttling import (AnonRateThrottle, BaseThrottle, ScopedRateThrottle, SimpleRateThrottle,
                                       UserRateThrottle)


class _RatesFromSettings:
    scope: str | None

    def get_rate(self) -> str | None:
        return api_settings.DEFAULT_THROTTLE_RATES.get(self.scope)


class AnonThrottle(_RatesFromSettings, AnonRateThrottle):
    """Anonymous clients, by address (`anon`: SIGVER_THROTTLE_ANON)."""


class UserThrottle(_RatesFromSettings, UserRateThrottle):
    """Authenticated users, by user (`user`: SIGVER_THROTTLE_USER)."""


class AuthThrottle(_RatesFromSettings, ScopedRateThrottle):
    """The stricter `auth` scope of register and token (SIGVER_THROTTLE_AUTH): against password guessing."""


class ImageThrottle(_RatesFromSettings, ScopedRateThrottle):
    """The `images` scope of dataset images (SIGVER_THROTTLE_IMAGES), by user when signed in, else by address:
    browsing a writer's thumbnails has its own generous budget and never uses up the `anon`/`user` budget
    that verification needs. Views set `throttle_classes = [ImageThrottle]` and `throttle_scope = "images"`."""


def client_address(request) -> str:
    """The client's address as DRF's throttles see it (REMOTE_ADDR, or X-Forwarded-For behind
    SIGVER_NUM_PROXIES trusted proxies); django-axes uses it too (AXES_CLIENT_IP_CALLABLE)."""
    return BaseThrottle().get_ident(request)


def outside_admin_site(request, credentials=None) -> bool:
    """AXES_WHITELIST_CALLABLE: django-axes neither counts nor locks sign-ins outside /admin/ (the API's
    token endpoint answers in the JSON error shape and is limited by the `auth` throttle scope)."""
    from django.urls import reverse

    return not getattr(request, "path", "").startswith(reverse("admin:index"))


class _CostlyScopeThrottle(_RatesFromSettings, SimpleRateThrottle):
    """A scope of its own for a costly kind of request, by user when signed in, else by address; with no
    rate configured for the scope it never throttles. Subclasses say which requests count (`applies`)."""

    def applies(self, request, view) -> bool:
        return True

    def allow_request(self, request, view) -> bool:
        if not self.applies(request, view):
            return True
        return super().allow_request(request, view)

    def get_cache_key(self, request, view) -> str:
        user = getattr(request, "user", None)
        ident = f"user-{user.pk}" if user is not None and user.is_authenticated else self.get_ident(request)
        return self.cache_format % {"scope": self.scope, "ident": ident}


class ExplainThrottle(_CostlyScopeThrottle):
    """`explain=true` on /api/verify/ (about 0.8 s of CPU each): scope `explain` (SIGVER_THROTTLE_EXPLAIN),
    on top of the anon/user budget."""

    scope = "explain"

    def applies(self, request, view) -> bool:
        value = request.data.get("explain") if hasattr(request.data, "get") else None
        return value in BooleanField.TRUE_VALUES


class PairsVerifyThrottle(_CostlyScopeThrottle):
    """Batch pair verification (up to SIGVER_PAIRS_VERIFY_MAX_LIMIT pairs, seconds of CPU each call):
    scope `pairs_verify` (SIGVER_THROTTLE_PAIRS_VERIFY), on top of the anon/user budget."""

    scope = "pairs_verify"


class ExportThrottle(_CostlyScopeThrottle):
    """The CSV export of case records (every matching row, seconds of CPU for a large trail): scope `export`
    (SIGVER_THROTTLE_EXPORT), on top of the anon/user budget."""

    scope = "export"


class _InvalidTokenThrottle(_RatesFromSettings, AnonRateThrottle):
    """The `anon` budget of the client's address, counted before anyone is authenticated."""

    def get_cache_key(self, request, view) -> str:
        return self.cache_format % {"scope": self.scope, "ident": self.get_ident(request)}


# a token is hex: knox's are 64 characters, DRF's (carried over by accounts' migration 0003) 40. Anything else
# (non-ASCII bytes, NUL, 10 kB) is refused before a database lookup (knox decodes it as UTF-8: a 500 otherwise)
TOKEN_SHAPE = re.compile(rb"[0-9a-fA-F]{1,128}")


class ThrottledTokenAuthentication(TokenAuthentication):
    """django-rest-knox's token authentication (`Authorization: Token <token>`; expired tokens are refused and
    deleted), with requests bearing an invalid token throttled as anonymous.

    DRF answers an unknown token with 401 before any throttle runs, so token guessing was never
    limited. Here each such request uses up the `anon` budget of its address (the same counter as
    anonymous requests): under the rate it is still a 401, past it a 429 with Retry-After."""

    def authenticate(self, request):
        try:
            return super().authenticate(request)
        except exceptions.AuthenticationFailed:
            throttle = _InvalidTokenThrottle()
            if not throttle.allow_request(request, None):
                raise exceptions.Throttled(throttle.wait()) from None
            raise

    def authenticate_credentials(self, token: bytes):
        if not TOKEN_SHAPE.fullmatch(token):
            raise exceptions.AuthenticationFailed("Invalid token.")
        return super().authenticate_credentials(token)
