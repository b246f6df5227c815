"""Password validators of AUTH_PASSWORD_VALIDATORS beyond Django's own."""

from __future__ import annotations

from django.core.exceptions import ValidationError


class NotOnlyWhitespaceValidator:
    """A password of spaces (or tabs, newlines) passes the minimum length but is no secret."""

    def validate(self, password: str, user=None) -> None:
        if not password.strip():
            raise ValidationError("This password consists only of whitespace.", code="password_only_whitespace")

    def get_help_text(self) -> str:
        return "Your password can't consist only of whitespace."
