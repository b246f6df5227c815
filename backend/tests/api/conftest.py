"""Fixtures of the API tests (pytest-django).

Django is configured here rather than in an ini file, so the ML-core tests in tests/sigml/ never
import Django: before anything imports the settings this module sets DJANGO_SETTINGS_MODULE and
the test environment (DEBUG off, a throw-away secret key, no model load at start-up), then calls
django.setup(). The `api_settings` autouse fixture points every test at a small untrained model
(`sigml.testing.make_test_model`, made once per session), tmp folders for media and datasets,
generous throttle rates (tests of throttling lower them), a fast password hasher, and clears caches.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Callable

BACKEND_DIR = Path(__file__).resolve().parents[2]
for folder in (BACKEND_DIR, Path(__file__).resolve().parent):  # config/signatures/accounts; api_helpers
    if str(folder) not in sys.path:
        sys.path.insert(0, str(folder))

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
os.environ.setdefault("DJANGO_SECRET_KEY", "api-tests-only-not-a-secret")
os.environ["DJANGO_DEBUG"] = "0"
os.environ["SIGVER_LOAD_MODEL"] = "0"  # the session fixture below provides the model

import django  # noqa: E402

django.setup()

import pytest  # noqa: E402
import torch  # noqa: E402
from django.contrib.auth import get_user_model  # noqa: E402
from django.core.cache import cache  # noqa: E402
from knox.models import AuthToken  # noqa: E402

from audit.views import ExportSlots  # noqa: E402
from rest_framework.test import APIClient  # noqa: E402

from sigml.inference import Verifier, load_verifier  # noqa: E402
from sigml.testing import make_test_model  # noqa: E402
from signatures.selectors import dataset_cache_clear  # noqa: E402

from api_helpers import SYNTH_SPLITS, png  # noqa: E402

GENEROUS_RATES = {"anon": "100000/min", "user": "100000/min", "auth": "100000/min"}


# --- model ------------------------------------------------------------------------------------------

@pytest.fixture(scope="session")
def test_model_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small untrained model + card (never the shipped weights, which may not exist yet)."""
    return make_test_model(tmp_path_factory.mktemp("model"))


@pytest.fixture(scope="session")
def verifier(test_model_path: Path):
    """The process-wide Verifier of the test model, loaded once; one torch thread (2 busy cores)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield load_verifier(str(test_model_path))
    torch.set_num_threads(threads)


# --- datasets ---------------------------------------------------------------------------------------

def _write_generic(root: Path, writers: list[str], genuine: int = 3, forged: int = 2, seed: int = 0) -> None:
    for w_index, writer in enumerate(writers):
        for label, count in (("genuine", genuine), ("forged", forged)):
            folder = root / writer / label
            folder.mkdir(parents=True, exist_ok=True)
            for i in range(count):
                s = seed + 100 * w_index + (0 if label == "genuine" else 50) + i
                (folder / f"{writer}_{i + 1}.png").write_bytes(png(s, size=(180, 80)))


@pytest.fixture(scope="session")
def dataset_dirs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Synthetic datasets in the generic layout: SYNTH (5 writers, with a split file), NOSPLIT
    (2 writers, no split file), LINKED (a symlink leading out of the dataset); plus a secret file
    outside the data folder and its own splits folder."""
    base = tmp_path_factory.mktemp("datasets")
    data = base / "data"
    _write_generic(data / "SYNTH", list(SYNTH_SPLITS))
    (data / "SYNTH" / "1" / "genuine" / "notes.txt").write_text("not an image")
    _write_generic(data / "NOSPLIT", ["a", "b"], seed=1000)
    _write_generic(data / "LINKED", ["x"], seed=2000)
    secret = base / "secret.png"
    secret.write_bytes(png(4242))
    (data / "LINKED" / "x" / "genuine" / "escape.png").symlink_to(secret)
    (data / "empty_folder").mkdir()
    splits = base / "image_pairs" / "SYNTH"
    splits.mkdir(parents=True)
    (splits / "splits.csv").write_text(
        "dataset,writer,split\n" + "".join(f"SYNTH,{w},{s}\n" for w, s in SYNTH_SPLITS.items())
    )
    plots = base / "plots"
    plots.mkdir()
    (plots / "roc.png").write_bytes(png(7))
    (base / "secret_plot.png").write_bytes(png(8))
    return {"data": data, "splits": base / "image_pairs", "plots": plots, "secret": secret, "base": base}


# --- settings, clients, users -----------------------------------------------------------------------

@pytest.fixture(autouse=True)
def api_settings(settings, verifier: Verifier, test_model_path: Path, dataset_dirs: dict[str, Path], tmp_path: Path):
    settings.DEBUG = False
    settings.SIGVER_MODEL_PATH = test_model_path
    settings.SIGVER_DATA_DIR = dataset_dirs["data"]
    settings.SIGVER_SPLITS_DIR = dataset_dirs["splits"]
    settings.SIGVER_PLOTS_DIR = dataset_dirs["plots"]
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "DEFAULT_THROTTLE_RATES": dict(GENEROUS_RATES)}
    # a fast hasher: PBKDF2's 1M iterations cost ~0.5 s per register/token/create_user on 2 busy cores
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    cache.clear()
    dataset_cache_clear()
    ExportSlots.reset()  # a test that leaves a CSV export unread would hold its slot for the next
    yield settings
    cache.clear()
    dataset_cache_clear()
    ExportSlots.reset()


@pytest.fixture
def client() -> APIClient:
    return APIClient()


@pytest.fixture
def make_user(db) -> Callable[..., tuple]:
    def make(username: str = "alice", password: str = "a-long-passphrase-1") -> tuple:
        user = get_user_model().objects.create_user(username=username, password=password)
        return user, AuthToken.objects.create(user=user)[1]

    return make


@pytest.fixture
def user_client(make_user) -> Callable[[str], tuple]:
    """An APIClient authenticated with a new user's token; returns (client, user)."""
    def make(username: str = "alice") -> tuple:
        user, token = make_user(username)
        api = APIClient()
        api.credentials(HTTP_AUTHORIZATION=f"Token {token}")
        return api, user

    return make
