"""Fixtures for the interface tests.

Every test reaches the backend only through `backend_url`: by default a fake server that speaks
docs/api.md (tests/fake_backend.py); set SIGVER_TEST_API_URL to run the same page tests against a
real backend. Tests that need to inject failures use `fake` and are skipped against a real backend.
"""

from __future__ import annotations

import os
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

REAL_BACKEND_ENV = "SIGVER_TEST_API_URL"
PAGES = {
    "verify": "pages/1_Verify.py",
    "explain": "pages/2_Explain.py",
    "profiles": "pages/3_Profiles.py",
    "datasets": "pages/4_Datasets.py",
    "model": "pages/5_Model.py",
}


@pytest.fixture(scope="session")
def fake_backend() -> Iterator[FakeBackend]:
    with FakeBackend() as fb:
        yield fb


@pytest.fixture(scope="session")
def backend_url(request: pytest.FixtureRequest) -> str:
    """The only thing the page tests depend on: the base URL of a backend that follows docs/api.md."""
    real = os.environ.get(REAL_BACKEND_ENV)
    if real:
        return real.rstrip("/")
    return request.getfixturevalue("fake_backend").url


@pytest.fixture
def fake(fake_backend: FakeBackend) -> Iterator[FakeBackend]:
    """The fake backend itself, for tests that inject failures; skipped against a real backend."""
    if os.environ.get(REAL_BACKEND_ENV):
        pytest.skip(f"{REAL_BACKEND_ENV} is set: this test needs the fake backend's failure injection")
    yield fake_backend
    fake_backend.state.failures.clear()
    fake_backend.state.model_loaded = True


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
