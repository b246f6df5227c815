"""The model loader: the process-wide Verifier, loaded once at start-up (AppConfig.ready), never inside a request.

`sigml.inference.load_verifier` is lru-cached, so `verifier_get()` in a view only returns the
instance loaded at start-up. Processes that skipped the start-up load (management commands,
tests) load it on first use.

The API serves the model card's ONNX export on ONNX Runtime when the card names one (SIGVER_RUNTIME=auto, the
default; `onnx` requires it, `torch` serves the torch model): then this process never imports torch.
SIGVER_TORCH_THREADS sets the model's intra-op threads either way.
"""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

from sigml.env import parse_bool
from sigml.inference import Verifier, load_verifier
from sigml.locate import DEFAULT_MODEL as LOCATOR_PATH
from sigml.locate import Locator
from sigml.locate import load_model as load_locator

log = logging.getLogger(__name__)

# manage.py commands that serve requests; every other command (migrate, makemigrations, check,
# shell, createsuperuser, spectacular, ...) starts without loading the model.
SERVING_COMMANDS = {"runserver"}


def should_load_at_startup(argv: list[str] | None = None, environ: dict[str, str] | None = None) -> bool:
    """SIGVER_LOAD_MODEL=1/0 (any spelling `sigml.env.parse_bool` knows) forces it; "auto": WSGI/ASGI servers and
    `manage.py runserver` load it."""
    mode = str(settings.SIGVER_LOAD_MODEL)
    forced = parse_bool(mode) if mode.strip() else None  # unset/empty and anything else: "auto"
    if forced is not None:
        return forced
    argv = sys.argv if argv is None else argv
    environ = os.environ if environ is None else environ
    program = Path(argv[0]).name if argv else ""
    is_management = program in {"manage.py", "django-admin", "django-admin.py"} or (
        program == "__main__.py" and Path(argv[0]).parent.name == "django"
    )
    if not is_management:
        return True  # gunicorn, uvicorn, anything importing config.wsgi / config.asgi
    command = argv[1] if len(argv) > 1 else ""
    if command not in SERVING_COMMANDS:
        return False
    # runserver with the autoreloader: only the child process (RUN_MAIN=true) serves
    return "--noreload" in argv or environ.get("RUN_MAIN") == "true"


def verifier_get() -> Verifier:
    """The loaded Verifier of SIGVER_MODEL_PATH (raises sigml.errors.ModelLoadError if it cannot be loaded)."""
    return load_verifier(str(settings.SIGVER_MODEL_PATH), threads=model_threads())


def locator_get() -> Locator:
    """The signature locator (`sigml.locate`), on the worker's model threads (raises ModelLoadError when broken)."""
    return load_locator(threads=model_threads())


def model_threads() -> int:
    return max(1, int(settings.SIGVER_TORCH_THREADS))


def verifier_warm() -> Verifier:
    """Load the model with its thread count; a broken model stops start-up with a clear message."""
    path = settings.SIGVER_MODEL_PATH
    try:
        verifier = verifier_get()
        locator_get()  # every upload without a crop meets it: a broken locator stops start-up too
        if verifier.runtime == "torch":  # SIGVER_RUNTIME=torch, or a card without an ONNX export
            import torch

            torch.set_num_threads(model_threads())
    except Exception as exc:  # ModelLoadError, or anything else a broken file can raise
        reason = getattr(exc, "reason", f"{type(exc).__name__}: {exc}")
        raise ImproperlyConfigured(
            f"Cannot start the signature API: the model could not be loaded from {path}, or the signature locator "
            f"from {LOCATOR_PATH} ({reason}). "
            "Set SIGVER_MODEL_PATH to a trained .safetensors file with its .json model card next to it."
        ) from exc
    log.info("signature model %s ready (%s on %s, threads: %d)", verifier.model_version, path, verifier.runtime,
             model_threads())
    return verifier
