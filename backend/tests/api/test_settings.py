"""Settings come from the environment: secret key required without DEBUG, SQLite (WAL, busy timeout,
immediate transactions) by default, PostgreSQL through DATABASE_URL, limits and throttle rates.

The settings module is executed afresh with runpy under a patched environment, so these tests never
touch the settings Django already runs with.
"""

from __future__ import annotations

import runpy
import sqlite3
from pathlib import Path

import pytest
from django.core.exceptions import ImproperlyConfigured

import config.settings as live_settings

SETTINGS_FILE = Path(live_settings.__file__)
VARIABLES = [
    "DJANGO_SECRET_KEY", "DJANGO_DEBUG", "DJANGO_ALLOWED_HOSTS", "ALLOWED_HOSTS", "DATABASE_URL",
    "SIGVER_SQLITE_PATH", "SIGVER_SQLITE_BUSY_TIMEOUT", "SIGVER_MODEL_PATH", "SIGVER_DATA_DIR", "SIGVER_MEDIA_ROOT",
    "SIGVER_MAX_UPLOAD_BYTES", "SIGVER_MAX_REQUEST_BYTES", "SIGVER_THROTTLE_ANON", "SIGVER_THROTTLE_USER",
    "SIGVER_THROTTLE_AUTH", "SIGVER_TORCH_THREADS", "DJANGO_DB_CONN_MAX_AGE",
]


@pytest.fixture
def load(monkeypatch):
    """load(**env) → the settings module's namespace under exactly that environment (for VARIABLES)."""
    def run(**env: str) -> dict:
        for name in VARIABLES:
            monkeypatch.delenv(name, raising=False)
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        return runpy.run_path(str(SETTINGS_FILE))

    return run


# --- secret key and DEBUG ---------------------------------------------------------------------------

def test_secret_key_is_required_when_debug_is_off(load):
    with pytest.raises(ImproperlyConfigured, match="DJANGO_SECRET_KEY"):
        load()
    with pytest.raises(ImproperlyConfigured, match="DJANGO_SECRET_KEY"):
        load(DJANGO_DEBUG="0", DJANGO_SECRET_KEY="")


def test_debug_is_off_by_default(load):
    ns = load(DJANGO_SECRET_KEY="s" * 50)
    assert ns["DEBUG"] is False and ns["SECRET_KEY"] == "s" * 50


def test_development_runs_without_a_secret(load):
    ns = load(DJANGO_DEBUG="1")
    assert ns["DEBUG"] is True and ns["SECRET_KEY"].startswith("django-insecure")


@pytest.mark.parametrize("value, expected", [("true", True), ("on", True), ("Yes", True), ("off", False), ("0", False)])
def test_debug_values(load, value, expected):
    assert load(DJANGO_DEBUG=value, DJANGO_SECRET_KEY="k")["DEBUG"] is expected


def test_a_typo_in_a_boolean_is_an_error_not_a_silent_default(load):
    with pytest.raises(ImproperlyConfigured, match="DJANGO_DEBUG"):
        load(DJANGO_DEBUG="ture", DJANGO_SECRET_KEY="k")


def test_a_typo_in_a_number_is_an_error(load):
    with pytest.raises(ImproperlyConfigured, match="SIGVER_MAX_UPLOAD_BYTES"):
        load(DJANGO_SECRET_KEY="k", SIGVER_MAX_UPLOAD_BYTES="10MB")


@pytest.mark.parametrize("variable", ["DJANGO_ALLOWED_HOSTS", "ALLOWED_HOSTS"])
def test_allowed_hosts(load, variable):
    assert load(DJANGO_SECRET_KEY="k")["ALLOWED_HOSTS"] == ["localhost", "127.0.0.1", "[::1]"]
    ns = load(DJANGO_SECRET_KEY="k", **{variable: "api.example.org, .bank.internal ,"})
    assert ns["ALLOWED_HOSTS"] == ["api.example.org", ".bank.internal"]


# --- databases --------------------------------------------------------------------------------------

def test_sqlite_by_default_with_wal_and_a_busy_timeout(load, tmp_path):
    ns = load(DJANGO_SECRET_KEY="k", SIGVER_SQLITE_PATH=str(tmp_path / "db.sqlite3"))
    db = ns["DATABASES"]["default"]
    assert db["ENGINE"] == "django.db.backends.sqlite3"
    assert db["NAME"] == str(tmp_path / "db.sqlite3")
    assert db["OPTIONS"]["timeout"] == 20
    assert "journal_mode=WAL" in db["OPTIONS"]["init_command"]
    assert db["OPTIONS"]["transaction_mode"] == "IMMEDIATE"
    assert load(DJANGO_SECRET_KEY="k", SIGVER_SQLITE_BUSY_TIMEOUT="5")["DATABASES"]["default"]["OPTIONS"]["timeout"] == 5


def test_default_sqlite_file_is_in_backend(load):
    ns = load(DJANGO_SECRET_KEY="k")
    assert ns["DATABASES"]["default"]["NAME"] == str(Path(SETTINGS_FILE).parents[1] / "db.sqlite3")


@pytest.mark.django_db
def test_sqlite_connections_really_use_wal_and_the_timeout(load, tmp_path):
    """A connection made with these settings (not the in-memory test database) is in WAL mode."""
    from django.db.backends.sqlite3.base import DatabaseWrapper

    ns = load(DJANGO_SECRET_KEY="k", SIGVER_SQLITE_PATH=str(tmp_path / "wal.sqlite3"))
    db = {**ns["DATABASES"]["default"], "TIME_ZONE": None, "AUTOCOMMIT": True, "ATOMIC_REQUESTS": False,
          "CONN_MAX_AGE": 0, "TEST": {}}
    wrapper = DatabaseWrapper(db, alias="wal-check")
    try:
        with wrapper.cursor() as cursor:
            cursor.execute("PRAGMA journal_mode")
            assert cursor.fetchone()[0] == "wal"
            cursor.execute("PRAGMA busy_timeout")
            assert cursor.fetchone()[0] == 20_000
            cursor.execute("CREATE TABLE t (x INTEGER)")
    finally:
        wrapper.close()
    # the mode is stored in the file: any other client sees it too
    with sqlite3.connect(tmp_path / "wal.sqlite3") as plain:
        assert plain.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_postgresql_through_database_url(load):
    ns = load(DJANGO_SECRET_KEY="k", DATABASE_URL="postgres://sig:p%40ss@db.internal:5433/sigver",
              DJANGO_DB_CONN_MAX_AGE="60")
    db = ns["DATABASES"]["default"]
    assert db["ENGINE"] == "django.db.backends.postgresql"
    assert (db["NAME"], db["USER"], db["PASSWORD"], db["HOST"], db["PORT"]) == ("sigver", "sig", "p@ss", "db.internal", 5433)
    assert db["CONN_MAX_AGE"] == 60 and db["CONN_HEALTH_CHECKS"] is True
    assert "init_command" not in db.get("OPTIONS", {})  # the SQLite options are not applied


def test_postgresql_driver_is_installed():
    import psycopg  # noqa: F401  (DATABASE_URL=postgres://... needs it)


def test_an_unknown_database_url_scheme_is_an_error(load):
    with pytest.raises(Exception, match="nosuchdb"):
        load(DJANGO_SECRET_KEY="k", DATABASE_URL="nosuchdb://x/y")


# --- files, model, limits, throttles ----------------------------------------------------------------

def test_paths_limits_rates_and_threads_from_the_environment(load, tmp_path):
    ns = load(
        DJANGO_SECRET_KEY="k", SIGVER_MODEL_PATH=str(tmp_path / "m.safetensors"), SIGVER_DATA_DIR=str(tmp_path / "data"),
        SIGVER_MEDIA_ROOT=str(tmp_path / "media"), SIGVER_MAX_UPLOAD_BYTES="1000", SIGVER_MAX_REQUEST_BYTES="5000",
        SIGVER_THROTTLE_ANON="5/min", SIGVER_THROTTLE_USER="50/hour", SIGVER_THROTTLE_AUTH="3/min",
        SIGVER_THROTTLE_EXPLAIN="4/min", SIGVER_THROTTLE_PAIRS_VERIFY="2/hour", SIGVER_TORCH_THREADS="3",
    )
    assert ns["SIGVER_MODEL_PATH"] == tmp_path / "m.safetensors"
    assert ns["SIGVER_DATA_DIR"] == tmp_path / "data"
    assert ns["MEDIA_ROOT"] == tmp_path / "media"
    assert (ns["SIGVER_MAX_UPLOAD_BYTES"], ns["SIGVER_MAX_REQUEST_BYTES"]) == (1000, 5000)
    rates = ns["REST_FRAMEWORK"]["DEFAULT_THROTTLE_RATES"]
    assert {scope: rates[scope] for scope in ("anon", "user", "auth", "explain", "pairs_verify")} == {
        "anon": "5/min", "user": "50/hour", "auth": "3/min", "explain": "4/min", "pairs_verify": "2/hour"}
    assert ns["SIGVER_TORCH_THREADS"] == 3


def test_defaults(load):
    ns = load(DJANGO_SECRET_KEY="k")
    repo = Path(SETTINGS_FILE).parents[2]
    assert ns["SIGVER_MODEL_PATH"] == repo / "trained_model_parameters" / "siamese_resnet18.safetensors"
    assert ns["SIGVER_DATA_DIR"] == repo / "organized_data"
    assert ns["SIGVER_MAX_UPLOAD_BYTES"] == 10 * 1024 * 1024
    rates = ns["REST_FRAMEWORK"]["DEFAULT_THROTTLE_RATES"]
    assert {scope: rates[scope] for scope in ("anon", "user", "auth", "explain", "pairs_verify")} == {
        "anon": "60/min", "user": "600/min", "auth": "10/min", "explain": "10/min", "pairs_verify": "6/min"}
    assert ns["REST_FRAMEWORK"]["NUM_PROXIES"] == 0
    assert ns["REST_FRAMEWORK"]["DEFAULT_RENDERER_CLASSES"] == ["rest_framework.renderers.JSONRenderer"]
    assert ns["FILE_UPLOAD_PERMISSIONS"] == 0o640  # stored references are never executable


@pytest.mark.parametrize("value", ["-1", "-3650"])
def test_a_negative_retention_period_is_an_error(load, value):
    with pytest.raises(ImproperlyConfigured, match="SIGVER_AUDIT_RETENTION_DAYS"):
        load(DJANGO_SECRET_KEY="k", SIGVER_AUDIT_RETENTION_DAYS=value)
    assert load(DJANGO_SECRET_KEY="k", SIGVER_AUDIT_RETENTION_DAYS="99999999")["SIGVER_AUDIT_RETENTION_DAYS"] == 99999999


def test_token_lifetime_from_the_environment(load):
    from datetime import timedelta

    assert load(DJANGO_SECRET_KEY="k")["REST_KNOX"]["TOKEN_TTL"] == timedelta(hours=12)
    assert load(DJANGO_SECRET_KEY="k", SIGVER_TOKEN_TTL_HOURS="8")["REST_KNOX"]["TOKEN_TTL"] == timedelta(hours=8)
    assert load(DJANGO_SECRET_KEY="k", SIGVER_TOKEN_TTL_HOURS="0")["REST_KNOX"]["TOKEN_TTL"] is None
    for value in ("-1", "99999999"):  # a lifetime past the calendar overflowed at the first sign-in
        with pytest.raises(ImproperlyConfigured, match="SIGVER_TOKEN_TTL_HOURS"):
            load(DJANGO_SECRET_KEY="k", SIGVER_TOKEN_TTL_HOURS=value)
    with pytest.raises(ImproperlyConfigured, match="SIGVER_TOKENS_PER_USER"):
        load(DJANGO_SECRET_KEY="k", SIGVER_TOKEN_TTL_HOURS="12", SIGVER_TOKENS_PER_USER="0")
