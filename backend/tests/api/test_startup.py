"""The model is loaded once at start-up; a missing or corrupt model stops start-up with a clear
message naming the path (in-process through `verifier_warm`, and through real `manage.py` and
gunicorn processes); torch threads are set deliberately."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from django.core.exceptions import ImproperlyConfigured

from sigml.inference import load_verifier
from sigml.modelcard import card_path_for
from signatures.model_loader import should_load_at_startup, verifier_get, verifier_warm

BACKEND_DIR = Path(__file__).resolve().parents[2]
VENV_BIN = Path(sys.executable).parent


def broken_models(source: Path, folder: Path) -> dict[str, Path]:
    """Model files broken in each way a deployment can break them (each with a card next to it)."""
    folder.mkdir(parents=True, exist_ok=True)
    models: dict[str, Path] = {}

    def with_card(name: str, data: bytes, card: str | None = None) -> Path:
        path = folder / name
        path.write_bytes(data)
        if card is None:
            shutil.copy(card_path_for(source), card_path_for(path))
        else:
            card_path_for(path).write_text(card)
        return path

    weights = source.read_bytes()
    models["missing"] = folder / "missing.safetensors"
    models["zero bytes"] = with_card("empty.safetensors", b"")
    models["garbage"] = with_card("garbage.safetensors", b"\x00not safetensors" * 64)
    models["truncated"] = with_card("truncated.safetensors", weights[: len(weights) // 2])
    flipped = bytearray(weights)
    flipped[-1000] ^= 0xFF  # still parses: only the recorded sha256 can tell
    models["bit flip"] = with_card("flipped.safetensors", bytes(flipped))
    models["corrupt card"] = with_card("badcard.safetensors", weights, card="{not json")
    no_card = folder / "nocard.safetensors"
    no_card.write_bytes(weights)
    models["no card"] = no_card
    return models


@pytest.fixture(scope="module")
def broken(test_model_path, tmp_path_factory) -> dict[str, Path]:
    return broken_models(test_model_path, tmp_path_factory.mktemp("broken"))


@pytest.mark.parametrize("case", ["missing", "zero bytes", "garbage", "truncated", "bit flip", "corrupt card", "no card"])
def test_a_broken_model_stops_start_up_naming_the_path(settings, broken, case):
    settings.SIGVER_MODEL_PATH = broken[case]
    with pytest.raises(ImproperlyConfigured) as caught:
        verifier_warm()
    message = str(caught.value)
    assert str(broken[case]) in message
    assert message.startswith("Cannot start the signature API") and "SIGVER_MODEL_PATH" in message


def test_warm_loads_once_and_sets_torch_threads(settings, test_model_path, verifier):
    threads = torch.get_num_threads()
    settings.SIGVER_TORCH_THREADS = 1
    try:
        assert verifier_warm() is verifier  # the process-wide instance: loaded once, cached
        assert verifier_get() is verifier
        assert load_verifier(str(test_model_path)) is verifier
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(threads)


def test_the_locator_is_loaded_at_start_up_on_the_model_threads(settings, test_model_path, verifier):
    from signatures.model_loader import locator_get

    settings.SIGVER_TORCH_THREADS = 1
    verifier_warm()
    locator = locator_get()
    assert locator.threads == 1 and locator_get() is locator  # loaded once per process


def test_a_broken_locator_stops_start_up_naming_it(settings, test_model_path, verifier, monkeypatch):
    from sigml.errors import ModelLoadError
    from signatures import model_loader

    def broken(**kwargs):
        raise ModelLoadError(model_loader.LOCATOR_PATH, "its ONNX file is not the file this card was written for")

    monkeypatch.setattr(model_loader, "load_locator", broken)
    with pytest.raises(ImproperlyConfigured) as caught:
        verifier_warm()
    assert "signature locator" in str(caught.value) and str(model_loader.LOCATOR_PATH) in str(caught.value)


@pytest.mark.parametrize("argv, environ, expected", [
    (["gunicorn", "-c", "config/gunicorn.py", "config.wsgi"], {}, True),
    (["/venv/bin/uvicorn", "config.asgi:application"], {}, True),
    (["manage.py", "runserver", "--noreload"], {}, True),
    (["manage.py", "runserver"], {}, False),  # the autoreloader's parent process serves nothing
    (["manage.py", "runserver"], {"RUN_MAIN": "true"}, True),
    (["manage.py", "migrate"], {}, False),
    (["manage.py", "makemigrations"], {}, False),
    (["manage.py", "shell"], {}, False),
    (["/x/django/__main__.py", "check"], {}, False),
])
def test_which_processes_load_the_model_at_start_up(settings, argv, environ, expected):
    settings.SIGVER_LOAD_MODEL = "auto"
    assert should_load_at_startup(argv, environ) is expected


@pytest.mark.parametrize("mode, expected", [("1", True), ("on", True), ("0", False), ("off", False)])
def test_load_model_can_be_forced(settings, mode, expected):
    settings.SIGVER_LOAD_MODEL = mode
    assert should_load_at_startup(["manage.py", "migrate"], {}) is expected
    assert should_load_at_startup(["gunicorn"], {}) is expected


# --- real processes ---------------------------------------------------------------------------------

def server_env(model: Path, tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "SIGVER_", "GUNICORN_", "DATABASE_URL"))}
    env.update({
        "DJANGO_SETTINGS_MODULE": "config.settings", "DJANGO_SECRET_KEY": "start-up-test-only",
        "SIGVER_MODEL_PATH": str(model), "SIGVER_SQLITE_PATH": str(tmp_path / "db.sqlite3"),
        "SIGVER_MEDIA_ROOT": str(tmp_path / "media"), "SIGVER_TORCH_THREADS": "1", "PYTHONUNBUFFERED": "1",
        **extra,
    })
    return env


def test_manage_py_runserver_with_a_missing_model_exits_with_the_path(tmp_path):
    missing = tmp_path / "nowhere" / "model.safetensors"
    done = subprocess.run(
        [sys.executable, "manage.py", "runserver", "127.0.0.1:0", "--noreload"], cwd=BACKEND_DIR,
        env=server_env(missing, tmp_path), capture_output=True, text=True, timeout=180,
    )
    assert done.returncode != 0
    assert f"the model could not be loaded from {missing}" in done.stderr
    assert "weights file not found" in done.stderr


def test_manage_py_migrate_does_not_need_the_model(tmp_path):
    done = subprocess.run(
        [sys.executable, "manage.py", "migrate", "--noinput"], cwd=BACKEND_DIR,
        env=server_env(tmp_path / "missing.safetensors", tmp_path), capture_output=True, text=True, timeout=180,
    )
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "db.sqlite3").is_file()


@pytest.mark.skipif(not (VENV_BIN / "gunicorn").exists(), reason="gunicorn is not installed next to this Python")
def test_gunicorn_with_a_corrupt_model_refuses_to_start(tmp_path, broken):
    model = broken["bit flip"]
    done = subprocess.run(
        [str(VENV_BIN / "gunicorn"), "-c", "config/gunicorn.py", "config.wsgi"], cwd=BACKEND_DIR,
        env=server_env(model, tmp_path, GUNICORN_BIND="127.0.0.1:0", GUNICORN_ACCESSLOG=""),
        capture_output=True, text=True, timeout=180,
    )
    assert done.returncode != 0
    assert f"the model could not be loaded from {model}" in done.stderr
    assert "sha256" in done.stderr


HOOK_CALLS: list[str] = []


def recording_hook() -> None:
    HOOK_CALLS.append("ran")


def failing_hook() -> None:
    raise RuntimeError("database is down")


def test_each_gunicorn_worker_runs_the_start_hooks_the_settings_name(settings):
    """config/gunicorn.py imports no app: the sweep (or any hook) is named by SIGVER_WORKER_START_HOOKS; a hook that
    fails is logged and the worker serves anyway."""
    import logging

    from config import gunicorn

    assert settings.SIGVER_WORKER_START_HOOKS == ["signatures.services.stored_files_sweep"]
    settings.SIGVER_WORKER_START_HOOKS = [f"{__name__}.failing_hook", f"{__name__}.recording_hook"]
    warnings: list[str] = []

    class Worker:
        log = logging.getLogger("test.worker")

    Worker.log.warning = lambda message, *args: warnings.append(message % args)  # type: ignore[method-assign]
    HOOK_CALLS.clear()
    gunicorn.post_worker_init(Worker())
    assert HOOK_CALLS == ["ran"]
    assert warnings == [f"start-up hook {__name__}.failing_hook failed: database is down"]
