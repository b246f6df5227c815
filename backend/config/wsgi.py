"""WSGI entry point (`gunicorn -c python:config.gunicorn config.wsgi`).

Importing it sets Django up, which loads the signature model once (signatures.apps): a missing or
corrupt model stops the server at start-up with a message naming the path.
"""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

application = get_wsgi_application()
