"""Fixtures for the interface tests.

Every page test reaches the backend only through `backend_url`: the real backend (Django, backend/)
started once per session by `live_backend` in a temporary folder (SQLite, a small untrained test
model, a synthetic dataset; tests/live_backend.py), spoken to over real HTTP. Set SIGVER_TEST_API_URL
to use an already running backend instead.

`degraded_backend_url` is a second real server on the same database with no model and an anonymous
throttle of 1 request a minute: real 503s and 429s. `fake` (tests/fake_backend.py, a tiny server that
answers queued errors and registers users) remains only for failures a real backend cannot be made to produce
on demand (unknown 5xx, non-JSON error pages, a forbidden answer, a 413).
"""

from __future__ import annotations

import hashlib
import os
import sqlite3
import sys
import uuid
from pathlib import Path
from typing import Callable, Iterator

import pytest

INTERFACE_DIR = Path(__file__).resolve().parents[1]
TESTS_DIR = Path(__file__).resolve().parent
for p in (INTERFACE_DIR, TESTS_DIR):  # pages import `ui` and `api_client` as top-level modules
    if str(p) not in sys.path:
        sys.path.insert(0, str(p))

from fake_backend import FakeBackend, free_port, make_signature  # noqa: E402
from live_backend import LiveBackend  # noqa: E402

REAL_BACKEND_ENV = "SIGVER_TEST_API_URL"
PAGES = {
    "verify": "app_pages/1_Verify.py",
    "explain": "app_pages/2_Explain.py",
    "profiles": "app_pages/3_Profiles.py",
    "datasets": "app_pages/4_Datasets.py",
    "model": "app_pages/5_Model.py",
    "history": "app_pages/6_History.py",
}


@pytest.fixture(scope="session")
def fake_backend() -> Iterator[FakeBackend]:
    with FakeBackend() as fb:
        yield fb


@pytest.fixture(scope="session")
def live_backend(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveBackend]:
    """The real backend as a child process (runserver on a free loopback port), stopped at the end."""
    if os.environ.get(REAL_BACKEND_ENV):
        pytest.skip(f"{REAL_BACKEND_ENV} is set: this test needs the backend started by the tests")
    backend = LiveBackend(tmp_path_factory.mktemp("backend"))
    try:
        backend.start()
    except RuntimeError as exc:
        pytest.fail(str(exc))
    yield backend
    backend.stop()


@pytest.fixture(scope="session")
def backend_url(request: pytest.FixtureRequest) -> str:
    """The only thing the page tests depend on: the base URL of a backend that follows docs/api.md."""
    real = os.environ.get(REAL_BACKEND_ENV)
    if real:
        return real.rstrip("/")
    return request.getfixturevalue("live_backend").url


@pytest.fixture(scope="session")
def degraded_backend_url(live_backend: LiveBackend, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A second real server: same database and data, but its model file is missing (health 503,
    `model_unavailable`) and anonymous clients may send 1 request a minute (then 429 + Retry-After)."""
    backend = LiveBackend(tmp_path_factory.mktemp("degraded"), reuse=live_backend, model_loaded=False,
                          throttle_anon="1/min")
    try:
        backend.start()
    except RuntimeError as exc:
        pytest.fail(str(exc))
    yield backend.url
    backend.stop()


@pytest.fixture
def revoke_token(live_backend: LiveBackend) -> Callable[[str], None]:
    """`revoke_token(token)`: the token's time is up (django-rest-knox keeps each token as its sha512, with an
    expiry); the server refuses it from then on, as after an admin revoked it."""

    def revoke(token: str) -> None:
        digest = hashlib.sha512(token.encode()).hexdigest()
        with sqlite3.connect(live_backend.db_path, timeout=20) as db:
            db.execute("UPDATE knox_authtoken SET expiry = '2000-01-01 00:00:00' WHERE digest = ?", (digest,))
        db.close()

    return revoke


@pytest.fixture
def fake(fake_backend: FakeBackend) -> Iterator[FakeBackend]:
    """The fake backend itself, for failures a real backend does not produce on demand."""
    yield fake_backend
    fake_backend.state.failures.clear()
    fake_backend.state.posts.clear()
    fake_backend.state.located = type(fake_backend.state)().located


@pytest.fixture
def down_url() -> str:
    """A URL where nothing listens (connection refused)."""
    return f"http://127.0.0.1:{free_port()}"


@pytest.fixture(autouse=True)
def _fresh_streamlit_caches() -> Iterator[None]:
    import streamlit as st

    st.cache_data.clear()
    yield
    st.cache_data.clear()


@pytest.fixture
def api_env(monkeypatch: pytest.MonkeyPatch, backend_url: str) -> str:
    """Points the interface (SIGVER_API_URL) at the test backend."""
    monkeypatch.setenv("SIGVER_API_URL", backend_url)
    return backend_url


@pytest.fixture
def signature() -> Callable[..., bytes]:
    """`signature(seed, variant=0)` -> PNG bytes of a drawn signature (same seed = same writer)."""
    return make_signature


@pytest.fixture
def unique_username() -> str:
    return f"clerk_{uuid.uuid4().hex[:10]}"


@pytest.fixture
def app_test(api_env: str) -> Callable[[str], "AppTest"]:  # noqa: F821
    """`app_test("verify")` -> an AppTest of that page, already pointed at the test backend."""
    from streamlit.testing.v1 import AppTest

    def make(page: str) -> AppTest:
        return AppTest.from_file(str(INTERFACE_DIR / PAGES.get(page, page)), default_timeout=60)

    return make


@pytest.fixture
def fake_app(monkeypatch, fake):
    """`fake_app("verify")`: an AppTest of that page pointed at the fake backend."""
    from streamlit.testing.v1 import AppTest

    monkeypatch.setenv("SIGVER_API_URL", fake.url)
    return lambda page: AppTest.from_file(str(INTERFACE_DIR / PAGES[page]), default_timeout=60)
