"""Throttles whose rates are read from settings at request time (so tests can override them).

DRF's own classes copy DEFAULT_THROTTLE_RATES once at import, which override_settings cannot reach.
"""

from __future__ import annotations

from rest_framework.settings import api_settings
from rest_framework.throttling import AnonRateThrottle, BaseThrottle, ScopedRateThrottle, UserRateThrottle


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
