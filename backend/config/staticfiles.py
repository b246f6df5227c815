"""WhiteNoise without the warning about a missing STATIC_ROOT: the files are served from the installed
apps (WHITENOISE_USE_FINDERS), so `collectstatic` is optional and its folder usually absent."""

from __future__ import annotations

from pathlib import Path

from django.conf import settings
from whitenoise.middleware import WhiteNoiseMiddleware


class StaticFilesMiddleware(WhiteNoiseMiddleware):
    def add_files(self, root, prefix=None):
        if root == settings.STATIC_ROOT and not Path(root).is_dir():
            return
        super().add_files(root, prefix=prefix)
