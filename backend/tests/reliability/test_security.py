"""Security checks not already in backend/tests/api (owner scoping, tokens and throttling are there):
production settings, uploads never served from an executable or static path, no pickle and no
unsafe torch.load anywhere in the repository's code."""

from __future__ import annotations

import json
import os
import re
import runpy
import secrets
import subprocess
import sys
from pathlib import Path

import pytest
from django.conf import settings as django_settings
from django.core.exceptions import ImproperlyConfigured
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import URLPattern, URLResolver, get_resolver

import config.settings as live_settings
from api_helpers import png

REPO = Path(__file__).resolve().parents[3]
BACKEND = REPO / "backend"


# --- production settings ----------------------------------------------------------------------------

@pytest.fixture
def load(monkeypatch):
    def run(**env: str) -> dict:
        for name in ("DJANGO_SECRET_KEY", "DJANGO_DEBUG"):
            monkeypatch.delenv(name, raising=False)
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        return runpy.run_path(live_settings.__file__)

    return run


@pytest.mark.parametrize("key", ["django-insecure-development-only-key-never-use-in-production",
                                 "django-insecure-k3y-from-startproject"])
def test_a_development_key_is_refused_without_debug(load, key):
    with pytest.raises(ImproperlyConfigured, match="development key"):
        load(DJANGO_SECRET_KEY=key)
    assert load(DJANGO_SECRET_KEY=key, DJANGO_DEBUG="1")["DEBUG"] is True  # development: fine


def test_the_development_key_is_only_used_with_debug(load):
    dev = load(DJANGO_DEBUG="1")
    assert dev["SECRET_KEY"].startswith("django-insecure")
    prod = load(DJANGO_SECRET_KEY=secrets.token_urlsafe(50))
    assert prod["DEBUG"] is False and not prod["SECRET_KEY"].startswith("django-insecure")


def _check_deploy(secret: str, model: Path, tmp_path: Path, debug: str = "0") -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "SIGVER_", "DATABASE_URL"))}
    env.update({"DJANGO_SECRET_KEY": secret, "DJANGO_DEBUG": debug, "SIGVER_MODEL_PATH": str(model),
                "SIGVER_SQLITE_PATH": str(tmp_path / "db.sqlite3"), "SIGVER_TORCH_THREADS": "1"})
    return subprocess.run([sys.executable, "manage.py", "check", "--deploy"], cwd=BACKEND, env=env,
                          capture_output=True, text=True, timeout=180)


def test_check_deploy_with_the_readme_production_settings(test_model_path, tmp_path):
    """The README's production environment passes `check --deploy` with no DEBUG or secret-key warning
    (what remains are the TLS settings a TLS-terminating proxy takes care of); a weak key is flagged."""
    done = _check_deploy(secrets.token_urlsafe(50), test_model_path, tmp_path)
    assert done.returncode == 0, done.stderr
    assert "security.W018" not in done.stderr and "security.W009" not in done.stderr  # DEBUG, SECRET_KEY
    weak = _check_deploy("short", test_model_path, tmp_path)
    assert "security.W009" in weak.stderr


def test_debug_pages_never_leak_with_debug_off(client, settings):
    assert settings.DEBUG is False
    response = client.get("/nothing-here/")
    assert response.status_code == 404 and b"Traceback" not in response.content and b"urlpatterns" not in response.content


# --- uploads: never served as static files, never executable, never sniffed as HTML -----------------

def _patterns(resolver: URLResolver, prefix: str = ""):
    for entry in resolver.url_patterns:
        if isinstance(entry, URLResolver):
            yield from _patterns(entry, prefix + str(entry.pattern))
        elif isinstance(entry, URLPattern):
            yield prefix + str(entry.pattern), entry.callback


def test_no_url_serves_files_from_a_folder():
    """No django.views.static.serve (MEDIA_URL/STATIC_URL routes) anywhere in the URL configuration."""
    for pattern, callback in _patterns(get_resolver()):
        module = getattr(callback, "__module__", "")
        assert module != "django.views.static", pattern
        assert "media" not in pattern.lower(), pattern


def test_media_is_not_inside_a_static_or_code_folder():
    media = Path(django_settings.MEDIA_ROOT).resolve()
    assert media != Path(django_settings.STATIC_ROOT).resolve()
    assert Path(django_settings.STATIC_ROOT).resolve() not in media.parents
    for package in ("config", "signatures", "accounts", "sigml"):
        assert (BACKEND / package).resolve() not in media.parents and media != (BACKEND / package).resolve()


@pytest.mark.parametrize("name, content_type", [("shell.php", "application/x-php"), ("page.html", "text/html"),
                                                 ("x.svg", "image/svg+xml"), ("run.sh", "text/x-sh")])
def test_a_stored_upload_is_served_as_an_image_never_as_what_its_name_claims(user_client, settings, name, content_type):
    api, _ = user_client("uploader")
    profile = api.post("/api/profiles/", {"name": "P"}, format="json").json()["id"]
    created = api.post(f"/api/profiles/{profile}/references/",
                       {"image": SimpleUploadedFile(name, png(3), content_type)}, format="multipart")
    assert created.status_code == 201
    reference = created.json()["results"][0]
    assert reference["content_type"] == "image/png"
    stored = [p for p in Path(settings.MEDIA_ROOT).rglob("*") if p.is_file()]
    assert len(stored) == 1 and stored[0].suffix == ".png" and name.split(".")[0] not in stored[0].name
    assert stored[0].stat().st_mode & 0o111 == 0  # no execute bit for anyone
    served = api.get(reference["image_url"])
    assert served.status_code == 200
    assert served["Content-Type"] == "image/png" and served["X-Content-Type-Options"] == "nosniff"
    assert served["Content-Disposition"].startswith("inline; filename=\"reference-") and name not in served["Content-Disposition"]
    assert served["Cache-Control"] == "private, no-store"


# --- no pickle, no unsafe torch.load ----------------------------------------------------------------

SKIP_DIRS = {".venv", ".git", "node_modules", "__pycache__", "runs", ".hypothesis", ".pytest_cache", "organized_data"}
PICKLE = re.compile(r"^\s*(import\s+(c?pickle|dill|joblib|shelve)\b|from\s+(c?pickle|dill|joblib|shelve)\s+import)"
                    r"|\b(c?pickle|dill|joblib|shelve)\.(loads?|dumps?|open|Unpickler)\b|allow_pickle\s*=\s*True"
                    r"|yaml\.load\(|\.read_pickle\(|\.to_pickle\(", re.MULTILINE)
TORCH_LOAD = re.compile(r"\btorch\.load\s*\(")


def code_files():
    for path in REPO.rglob("*"):
        if any(part in SKIP_DIRS for part in path.relative_to(REPO).parts):
            continue
        if path.suffix == ".py":
            yield path, path.read_text(errors="replace")
        elif path.suffix == ".ipynb":
            cells = json.loads(path.read_text())["cells"]
            yield path, "\n".join("".join(c["source"]) for c in cells if c["cell_type"] == "code")


def _calls(text: str, start: int) -> str:
    """The text of the call starting at `start` (up to its closing parenthesis)."""
    depth, i = 0, text.index("(", start)
    for j in range(i, len(text)):
        depth += {"(": 1, ")": -1}.get(text[j], 0)
        if depth == 0:
            return text[start : j + 1]
    return text[start:]


def test_no_pickle_and_torch_load_only_with_weights_only():
    this = Path(__file__).resolve()
    seen, problems = 0, []
    for path, text in code_files():
        seen += 1
        if path.resolve() == this:
            continue
        for match in PICKLE.finditer(text):
            problems.append(f"{path.relative_to(REPO)}: {match.group(0).strip()}")
        for match in TORCH_LOAD.finditer(text):
            call = _calls(text, match.start())
            if not re.search(r"weights_only\s*=\s*True", call):
                problems.append(f"{path.relative_to(REPO)}: {call}")
    assert seen > 50
    assert not problems, "\n".join(problems)


def test_the_scan_would_find_them(tmp_path):
    bad = "import pickle\nx = torch.load(path)\nok = torch.load(p, map_location='cpu', weights_only=True)\nnp.load(f, allow_pickle=True)\n"
    assert len(PICKLE.findall(bad)) == 2
    loads = [_calls(bad, m.start()) for m in TORCH_LOAD.finditer(bad)]
    assert [bool(re.search(r"weights_only\s*=\s*True", c)) for c in loads] == [False, True]
