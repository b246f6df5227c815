"""Django project of the signature verification API: settings, URLs, WSGI/ASGI, cross-cutting glue."""
