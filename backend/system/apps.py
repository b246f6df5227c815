from __future__ import annotations

from django.apps import AppConfig


class SystemConfig(AppConfig):
    """The server's own state: health, the served model's card and its evaluation plots."""

    name = "system"
    verbose_name = "System"
