"""ASGI entry point; like wsgi.py it loads the signature model once at start-up."""

import os

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
django.setup(set_prefix=False)

from config.handlers import SafeASGIHandler  # noqa: E402

# Django's get_asgi_application(), with requests that refuse a non-text charset (config.handlers)
application = SafeASGIHandler()
