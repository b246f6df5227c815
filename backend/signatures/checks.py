"""`manage.py check --deploy` also checks that the model loads."""

from __future__ import annotations

from django.conf import settings
from django.core.checks import Error, register


@register("sigver", deploy=True)
def model_loads(app_configs=None, **kwargs) -> list[Error]:
    from sigml.errors import ModelLoadError

    from .model_loader import verifier_get

    try:
        verifier_get()
    except ModelLoadError as exc:
        return [
            Error(
                f"the signature model cannot be loaded from {exc.path}: {exc.reason}",
                hint="Set SIGVER_MODEL_PATH to a trained .safetensors file with its .json model card next to it.",
                id="sigver.E001",
            )
        ]
    return []
