"""ASGI entry point; like wsgi.py it loads the signature model once at start-up."""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

application = get_asgi_application()
