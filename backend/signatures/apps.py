from __future__ import annotations

from django.apps import AppConfig


class SignaturesConfig(AppConfig):
    name = "signatures"
    verbose_name = "Signatures"

    def ready(self) -> None:
        from . import checks, signals  # noqa: F401  (registers the system checks and the file-deleting signal)
        from .model_loader import should_load_at_startup, verifier_warm

        if should_load_at_startup():
            verifier_warm()
