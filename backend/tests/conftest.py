"""Generic fixtures shared by every test package (no Django, no ML imports here)."""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path
from types import ModuleType
from typing import Callable

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]  # backend/tests/conftest.py -> repository root


def shared_datasets_dir() -> Path:
    """`SIGVER_TEST_DATA`, else `<repo>/../shared/datasets` (the CI layout)."""
    env = os.environ.get("SIGVER_TEST_DATA")
    return Path(env).expanduser().resolve() if env else (REPO_ROOT / ".." / "shared" / "datasets").resolve()


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return REPO_ROOT


@pytest.fixture(scope="session")
def bench_script() -> Callable[[str], ModuleType]:
    """`bench_script("fusion")`: bench/fusion.py imported as a module (bench/ is scripts, not a package)."""

    def load(name: str) -> ModuleType:
        spec = importlib.util.spec_from_file_location(f"bench_{name}", REPO_ROOT / "bench" / f"{name}.py")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module

    return load


@pytest.fixture(scope="session")
def shared_datasets() -> Path:
    """The folder holding the real CEDAR/ and GPDS/ datasets; tests that need it skip without it."""
    path = shared_datasets_dir()
    if not path.is_dir():
        pytest.skip(f"real datasets not found at {path} (set SIGVER_TEST_DATA to the folder holding CEDAR/ and GPDS/)")
    return path
