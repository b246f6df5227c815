"""The one settings module of the API: everything comes from the environment, with safe defaults.

Development: `DJANGO_DEBUG=1 python manage.py runserver` works without any other variable.
Production: DJANGO_DEBUG off (the default) requires DJANGO_SECRET_KEY.
"""

from __future__ import annotations

import os
from datetime import timedelta
from pathlib import Path

import dj_database_url
from csp.constants import NONE as CSP_NONE
from csp.constants import SELF as CSP_SELF
from csp.constants import UNSAFE_INLINE as CSP_UNSAFE_INLINE
from django.core.exceptions import ImproperlyConfigured

from sigml.env import env_flag

BASE_DIR = Path(__file__).resolve().parent.parent  # backend/
REPO_DIR = BASE_DIR.parent

def env_str(name: str, default: str) -> str:
    return os.environ.get(name, default)


def env_bool(name: str, default: bool) -> bool:
    """`sigml.env.env_flag`, the project's one boolean parser; an unknown value stops start-up."""
    try:
        return env_flag(name, default)
    except ValueError as exc:
        raise ImproperlyConfigured(str(exc)) from None


def env_int(name: str, default: int) -> int:
    value = os.environ.get(name)
    if value is None or not value.strip():
        return default
    try:
        return int(value)
    except ValueError:
        raise ImproperlyConfigured(f"{name}={value!r} is not an integer") from None


def env_list(name: str, default: list[str]) -> list[str]:
    value = os.environ.get(name)
    if value is None:
        return default
    return [item.strip() for item in value.split(",") if item.strip()]


def env_path(name: str, default: Path) -> Path:
    value = os.environ.get(name)
    return Path(value).expanduser().resolve() if value else default


# --- core -----------------------------------------------------------------------------------------

DEBUG = env_bool("DJANGO_DEBUG", False)

SECRET_KEY = os.environ.get("DJANGO_SECRET_KEY", "")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured(
            "DJANGO_SECRET_KEY must be set when DJANGO_DEBUG is off. For local development run with "
            "DJANGO_DEBUG=1; in production set DJANGO_SECRET_KEY to a long random string, e.g. from "
            "`python -c \"import secrets; print(secrets.token_urlsafe(50))\"`."
        )
    SECRET_KEY = "django-insecure-development-only-key-never-use-in-production"
elif not DEBUG and SECRET_KEY.startswith("django-insecure"):
    # the development key above is published in this repository; Django marks generated throw-away keys so
    raise ImproperlyConfigured(
        "DJANGO_SECRET_KEY is a development key (it starts with 'django-insecure'); set a real secret when "
        "DJANGO_DEBUG is off, e.g. from `python -c \"import secrets; print(secrets.token_urlsafe(50))\"`."
    )

# DJANGO_ALLOWED_HOSTS, or ALLOWED_HOSTS (the name many deployments use): comma-separated
ALLOWED_HOSTS = env_list("DJANGO_ALLOWED_HOSTS", env_list("ALLOWED_HOSTS", ["localhost", "127.0.0.1", "[::1]"]))
CSRF_TRUSTED_ORIGINS = env_list("DJANGO_CSRF_TRUSTED_ORIGINS", [])
CSRF_FAILURE_VIEW = "config.exceptions.csrf_failure"  # the JSON error shape, not Django's HTML page

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "knox",  # django-rest-knox: API tokens stored hashed, each with an expiry, revocable one by one (REST_KNOX)
    "axes",  # django-axes: locks out password guessing on /admin/login/ (AXES_* below)
    "csp",  # django-csp: its system checks of CONTENT_SECURITY_POLICY
    "drf_spectacular",
    "drf_spectacular_sidecar",  # Swagger UI and ReDoc as local static files: /api/docs/ works offline
    "accounts",
    "system",  # health, the model card and its plots
    "signatures",
    "audit",  # case records of every verification (the audit trail)
]

MIDDLEWARE = [
    "config.middleware.RequestSizeLimitMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "csp.middleware.CSPMiddleware",  # django-csp: Content-Security-Policy (CONTENT_SECURITY_POLICY below)
    "config.staticfiles.StaticFilesMiddleware",  # WhiteNoise: static files (the API docs' JS/CSS) with DEBUG off too
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "config.middleware.ImageRequestLimitMiddleware",  # image requests: a few at a time, each with a deadline
    "axes.middleware.AxesMiddleware",  # last, as django-axes requires
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"
ASGI_APPLICATION = "config.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "config" / "templates"],  # api/redoc.html (ReDoc without web fonts)
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

# --- database: SQLite by default (WAL, busy timeout), PostgreSQL through DATABASE_URL ---------------

SQLITE_PATH = env_path("SIGVER_SQLITE_PATH", BASE_DIR / "db.sqlite3")
DATABASES = {
    "default": dj_database_url.config(
        default=f"sqlite:///{SQLITE_PATH}",
        conn_max_age=env_int("DJANGO_DB_CONN_MAX_AGE", 0),
        conn_health_checks=True,
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {
            # seconds a writer waits for a lock instead of failing with "database is locked"
            "timeout": env_int("SIGVER_SQLITE_BUSY_TIMEOUT", 20),
            # WAL: readers never block the writer; IMMEDIATE: take the write lock at BEGIN
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
            "transaction_mode": "IMMEDIATE",
        }
    )

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
    {"NAME": "accounts.validators.NotOnlyWhitespaceValidator"},  # 8 spaces passed the others
]

# django-axes in front of the model backend: after SIGVER_ADMIN_FAILURE_LIMIT failed sign-ins from one
# client address, /admin/login/ answers 429 for SIGVER_ADMIN_LOCKOUT_MINUTES (the API's token endpoint
# is exempt: it has its own `auth` throttle scope and answers in the JSON error shape). Attempts are stored in the database (axes' tables), so every
# worker sees them; the client address is the one the throttles use (SIGVER_NUM_PROXIES).
AUTHENTICATION_BACKENDS = ["axes.backends.AxesStandaloneBackend", "django.contrib.auth.backends.ModelBackend"]
AXES_ONLY_ADMIN_SITE = True
AXES_FAILURE_LIMIT = env_int("SIGVER_ADMIN_FAILURE_LIMIT", 5)
AXES_COOLOFF_TIME = timedelta(minutes=env_int("SIGVER_ADMIN_LOCKOUT_MINUTES", 15))
AXES_LOCKOUT_PARAMETERS = ["ip_address"]
AXES_RESET_ON_SUCCESS = True
AXES_CLIENT_IP_CALLABLE = "config.throttles.client_address"
AXES_WHITELIST_CALLABLE = "config.throttles.outside_admin_site"  # axes counts only the admin's sign-ins

CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache", "LOCATION": "sigver"}}

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

# --- files ------------------------------------------------------------------------------------------

STATIC_URL = "static/"
STATIC_ROOT = env_path("DJANGO_STATIC_ROOT", BASE_DIR / "staticfiles")
# WhiteNoise serves the apps' static files (Swagger UI, ReDoc, the admin's) straight from the installed
# packages, so neither `collectstatic` nor a CDN is needed; `collectstatic` + a proxy remains possible.
WHITENOISE_USE_FINDERS = True

# Reference images live here under generated names. There is deliberately no MEDIA_URL route:
# they are only served through the owner-checked API view, never as static files.
MEDIA_ROOT = env_path("SIGVER_MEDIA_ROOT", BASE_DIR / "media")
MEDIA_URL = "/media-not-served/"
FILE_UPLOAD_PERMISSIONS = 0o640
FILE_UPLOAD_DIRECTORY_PERMISSIONS = 0o750
# stored files appear whole or not at all, with their permissions set before any byte, journaled while in flight so
# that the start-up sweep removes what a killed worker left and nothing a live one is writing (config/storage.py)
STORAGES = {
    "default": {"BACKEND": "config.storage.AtomicFileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}

SIGVER_MAX_UPLOAD_BYTES = env_int("SIGVER_MAX_UPLOAD_BYTES", 10 * 1024 * 1024)  # per file → 413
SIGVER_MAX_REQUEST_BYTES = env_int("SIGVER_MAX_REQUEST_BYTES", 32 * 1024 * 1024)  # whole body → 413
DATA_UPLOAD_MAX_MEMORY_SIZE = env_int("DJANGO_DATA_UPLOAD_MAX_MEMORY_SIZE", 2_621_440)  # non-file fields
FILE_UPLOAD_MAX_MEMORY_SIZE = env_int("DJANGO_FILE_UPLOAD_MAX_MEMORY_SIZE", 10 * 1024 * 1024)  # larger: temp file
DATA_UPLOAD_MAX_NUMBER_FILES = env_int("DJANGO_DATA_UPLOAD_MAX_NUMBER_FILES", 50)
SIGVER_MAX_REFERENCES_PER_PROFILE = env_int("SIGVER_MAX_REFERENCES_PER_PROFILE", 50)
# Decoding cost (signatures.uploads): a 600 dpi cheque is about 6 MP, an A4 page at 400 dpi 15.5 MP
SIGVER_MAX_IMAGE_PIXELS = env_int("SIGVER_MAX_IMAGE_PIXELS", 16_000_000)  # more → 413 (the card's limit if lower)
SIGVER_MAX_ASPECT_RATIO = env_int("SIGVER_MAX_ASPECT_RATIO", 20)  # wider (or higher) than 20:1 → 413
SIGVER_DECODE_BUDGET_PIXELS = env_int("SIGVER_DECODE_BUDGET_PIXELS", 16_000_000)  # decoded at once per process
SIGVER_DECODE_WAIT_SECONDS = env_int("SIGVER_DECODE_WAIT_SECONDS", 10)  # waiting longer for that budget → 503
# Image requests (config.middleware): at most this many at once per process, so gunicorn's last thread stays
# free for health checks; waiting longer than SIGVER_BUSY_WAIT_SECONDS for a turn → 503 server_busy
SIGVER_MAX_CONCURRENT_IMAGE_REQUESTS = env_int(
    "SIGVER_MAX_CONCURRENT_IMAGE_REQUESTS", max(1, env_int("GUNICORN_THREADS", 4) - 1))
SIGVER_BUSY_WAIT_SECONDS = env_int("SIGVER_BUSY_WAIT_SECONDS", 5)
SIGVER_REQUEST_DEADLINE_SECONDS = env_int("SIGVER_REQUEST_DEADLINE_SECONDS", 30)  # past it, decoding stops → 503

# --- the model and the data -------------------------------------------------------------------------

SIGVER_MODEL_PATH = env_path("SIGVER_MODEL_PATH", REPO_DIR / "trained_model_parameters" / "siamese_resnet18.safetensors")
SIGVER_DATA_DIR = env_path("SIGVER_DATA_DIR", REPO_DIR / "organized_data")
SIGVER_SPLITS_DIR = env_path("SIGVER_SPLITS_DIR", REPO_DIR / "image_pairs")
SIGVER_PLOTS_DIR = env_path("SIGVER_PLOTS_DIR", REPO_DIR / "docs" / "plots")
SIGVER_TORCH_THREADS = env_int("SIGVER_TORCH_THREADS", 2)
# "auto": load the model at start-up for servers (gunicorn, runserver), not for other management
# commands (migrate, makemigrations, check, shell, ...); "1"/"0" force it on/off.
SIGVER_LOAD_MODEL = env_str("SIGVER_LOAD_MODEL", "auto").strip().lower()
SIGVER_DATASET_CACHE_SECONDS = env_int("SIGVER_DATASET_CACHE_SECONDS", 60)
SIGVER_PAIRS_MAX_LIMIT = env_int("SIGVER_PAIRS_MAX_LIMIT", 500)
SIGVER_PAIRS_VERIFY_MAX_LIMIT = env_int("SIGVER_PAIRS_VERIFY_MAX_LIMIT", 100)

# --- case records (audit trail) ---------------------------------------------------------------------

# `manage.py purge_records` deletes records from days (UTC) more than this many days before today (run it daily):
# 0 keeps today's records only; a period longer than the calendar keeps everything
SIGVER_AUDIT_RETENTION_DAYS = env_int("SIGVER_AUDIT_RETENTION_DAYS", 3650)
if SIGVER_AUDIT_RETENTION_DAYS < 0:
    raise ImproperlyConfigured(f"SIGVER_AUDIT_RETENTION_DAYS={SIGVER_AUDIT_RETENTION_DAYS} must be 0 or more (days)")
# CSV exports streaming at once per process; one more is a 503 server_busy with Retry-After (audit.views.ExportSlots, a config.middleware.SettingsSemaphore)
SIGVER_MAX_CONCURRENT_EXPORTS = env_int("SIGVER_MAX_CONCURRENT_EXPORTS", 1)
# keep the verified images themselves (under SIGVER_MEDIA_ROOT/audit/), not only their sha256
SIGVER_AUDIT_STORE_IMAGES = env_bool("SIGVER_AUDIT_STORE_IMAGES", False)
# Run by each gunicorn worker once the app is loaded (config/gunicorn.py), by dotted path: the project's
# configuration names the apps' work, so config imports no app. The sweep deletes stored files no row names.
SIGVER_WORKER_START_HOOKS = ["signatures.services.stored_files_sweep"]

# --- API tokens (django-rest-knox) -------------------------------------------------------------------

# Every sign-in (POST /api/auth/token/) issues a new token; it ends SIGVER_TOKEN_TTL_HOURS later (0: never, not
# advised), at sign-out (POST /api/auth/sign-out/) and when the password changes. The database keeps only
# each token's sha512. A user holds at most SIGVER_TOKENS_PER_USER at once: signing in again drops the oldest.
SIGVER_TOKEN_TTL_HOURS = env_int("SIGVER_TOKEN_TTL_HOURS", 12)
if not 0 <= SIGVER_TOKEN_TTL_HOURS <= 24 * 366 * 10:
    raise ImproperlyConfigured(
        f"SIGVER_TOKEN_TTL_HOURS={SIGVER_TOKEN_TTL_HOURS} must be between 0 (tokens never end) and 87840 (ten years)")
SIGVER_TOKENS_PER_USER = env_int("SIGVER_TOKENS_PER_USER", 10)
if SIGVER_TOKENS_PER_USER < 1:
    raise ImproperlyConfigured(f"SIGVER_TOKENS_PER_USER={SIGVER_TOKENS_PER_USER} must be 1 or more")
REST_KNOX = {
    "TOKEN_TTL": timedelta(hours=SIGVER_TOKEN_TTL_HOURS) if SIGVER_TOKEN_TTL_HOURS else None,
    "AUTH_HEADER_PREFIX": "Token",  # `Authorization: Token <token>`, as with DRF's tokens before
    "AUTO_REFRESH": False,  # a token ends at a fixed time, however busy its clerk
}

# --- REST framework ---------------------------------------------------------------------------------

REST_FRAMEWORK = {
    # knox's token authentication (`Authorization: Token <token>`); a request with an invalid, expired or revoked
    # token uses up the `anon` budget (then 429)
    "DEFAULT_AUTHENTICATION_CLASSES": ["config.throttles.ThrottledTokenAuthentication"],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.AllowAny"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": [
        "config.parsers.JSONParser",  # DRF's, with a nesting limit (deep JSON is a 400, not a RecursionError)
        "rest_framework.parsers.MultiPartParser",
        "rest_framework.parsers.FormParser",
    ],
    "DEFAULT_THROTTLE_CLASSES": ["config.throttles.AnonThrottle", "config.throttles.UserThrottle"],
    "DEFAULT_THROTTLE_RATES": {
        "anon": env_str("SIGVER_THROTTLE_ANON", "60/min"),
        "user": env_str("SIGVER_THROTTLE_USER", "600/min"),
        "auth": env_str("SIGVER_THROTTLE_AUTH", "10/min"),  # register + token: against password guessing
        # verify with explain=true: occlusion costs a forward pass per inked patch
        "explain": env_str("SIGVER_THROTTLE_EXPLAIN", "10/min"),
        # batch pair verification: up to SIGVER_PAIRS_MAX_LIMIT pairs per request
        "pairs_verify": env_str("SIGVER_THROTTLE_PAIRS_VERIFY", "6/min"),
        "images": env_str("SIGVER_THROTTLE_IMAGES", "1200/min"),  # dataset images (thumbnails), instead of anon/user
        # the CSV export of case records: every matching row (a staff export of 100,000 rows is seconds of CPU)
        "export": env_str("SIGVER_THROTTLE_EXPORT", "6/min"),
    },
    # Client addresses come from REMOTE_ADDR unless told how many proxies to trust: a client
    # must not dodge throttling with a forged X-Forwarded-For header.
    "NUM_PROXIES": env_int("SIGVER_NUM_PROXIES", 0),
    "EXCEPTION_HANDLER": "config.exceptions.exception_handler",
    "DEFAULT_SCHEMA_CLASS": "config.schema.AutoSchema",
}
SIGVER_PAGE_SIZE = env_int("SIGVER_PAGE_SIZE", 50)

SPECTACULAR_SETTINGS = {
    "TITLE": "Signature verification API",
    "DESCRIPTION": (
        "Offline handwritten signature verification with a Siamese ResNet-18: verify two signatures, "
        "browse datasets and pairs, enroll a person's genuine references and verify against them. "
        'Errors are always `{"error": {"code", "message", "details"}}`.'
    ),
    "VERSION": "2.0.0",  # docs/api.md "Changes"
    "SERVE_INCLUDE_SCHEMA": False,
    # Swagger UI and ReDoc from drf-spectacular-sidecar's static files, not from a CDN (works offline)
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    # the statuses every operation can answer and the constraints the server enforces (config.schema)
    "POSTPROCESSING_HOOKS": ["drf_spectacular.hooks.postprocess_schema_enums", "config.schema.document_everything"],
    "ENUM_NAME_OVERRIDES": {
        "LabelEnum": ["genuine", "forged"],  # the ground-truth `label` of a dataset pair
        "DecisionEnum": "sigml.decision.DECISIONS",
        "PairKindEnum": "sigml.pairs.PAIR_KINDS",
        "PairKindOrMixedEnum": "signatures.selectors.PAIR_KIND_CHOICES",
    },
}

# --- security (the production defaults follow DJANGO_DEBUG) ------------------------------------------

SECURE_CONTENT_TYPE_NOSNIFF = True
X_FRAME_OPTIONS = "DENY"
BEHIND_TLS_PROXY = env_bool("DJANGO_BEHIND_TLS_PROXY", False)
SESSION_COOKIE_SECURE = env_bool("DJANGO_SECURE_COOKIES", BEHIND_TLS_PROXY)
CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE
SECURE_SSL_REDIRECT = env_bool("DJANGO_SECURE_SSL_REDIRECT", False)
# HSTS: one year by default with DEBUG off. Django sends it only on requests that arrived over TLS (a
# TLS proxy with DJANGO_BEHIND_TLS_PROXY=1, or TLS to gunicorn), so plain-HTTP loopback use is unaffected.
SECURE_HSTS_SECONDS = env_int("DJANGO_SECURE_HSTS_SECONDS", 0 if DEBUG else 31_536_000)
if BEHIND_TLS_PROXY:
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")

# Content-Security-Policy on every response (django-csp): the HTML pages (admin, Swagger UI, ReDoc) may
# load scripts, styles, images and fonts from this server only, connect to it only, never be framed,
# never post forms elsewhere and never run plugins. The API docs' pages need inline script and style
# (drf-spectacular's Swagger UI initialiser, their widgets' style attributes) and ReDoc a blob: worker.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [CSP_SELF],
        "script-src": [CSP_SELF, CSP_UNSAFE_INLINE],
        "style-src": [CSP_SELF, CSP_UNSAFE_INLINE],
        "img-src": [CSP_SELF, "data:"],
        "font-src": [CSP_SELF, "data:"],
        "connect-src": [CSP_SELF],
        "worker-src": [CSP_SELF, "blob:"],
        "object-src": [CSP_NONE],
        "base-uri": [CSP_NONE],
        "form-action": [CSP_SELF],
        "frame-ancestors": [CSP_NONE],
    },
}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env_str("DJANGO_LOG_LEVEL", "INFO").upper()},
    "loggers": {
        "django": {"handlers": ["console"], "level": env_str("DJANGO_LOG_LEVEL", "INFO").upper(), "propagate": False},
        "axes": {"level": "WARNING"},  # django-axes logs two INFO lines per failed sign-in; lockouts are warnings
    },
}
