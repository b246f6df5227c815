"""The import contracts of backend/pyproject.toml ([tool.importlinter]) hold: apps depend downward only (no import
loops), the ML core imports no Django, audit imports no signatures. Run with import-linter's Python API in a fresh
interpreter whose working directory is backend/, as `cd backend && lint-imports` would."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("importlinter")

BACKEND = Path(__file__).resolve().parents[1]


def lint_imports(config: Path) -> subprocess.CompletedProcess:
    code = ("import sys; from importlinter.cli import lint_imports; "
            f"sys.exit(lint_imports(config_filename={str(config)!r}, no_cache=True, no_logo=True))")
    return subprocess.run([sys.executable, "-c", code], cwd=BACKEND, capture_output=True, text=True, timeout=300)


def test_the_import_contracts_are_kept():
    result = lint_imports(BACKEND / "pyproject.toml")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


def test_a_broken_contract_fails(tmp_path):
    """The checker sees the real imports: a contract that the code breaks (signatures does import audit, to write
    case records) is reported broken, so the test above cannot pass vacuously."""
    config = tmp_path / "contracts.ini"
    config.write_text("[importlinter]\nroot_packages =\n    signatures\n    audit\n    config\n    sigml\n\n"
                      "[importlinter:contract:upside-down]\nname = audit over signatures\ntype = layers\n"
                      "layers =\n    audit\n    signatures\n")
    result = lint_imports(config)
    assert result.returncode != 0 and "BROKEN" in result.stdout and "signatures" in result.stdout, result.stdout
