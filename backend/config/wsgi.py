"""WSGI entry point (`gunicorn -c python:config.gunicorn config.wsgi`).

Importing it sets Django up, which loads the signature model once (signatures.apps): a missing or
corrupt model stops the server at start-up with a message naming the path.
"""

import os

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
django.setup(set_prefix=False)

from config.handlers import SafeWSGIHandler  # noqa: E402

# Django's get_wsgi_application(), with requests that refuse a non-text charset (config.handlers)
application = SafeWSGIHandler()
