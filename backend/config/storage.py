"""Stored files shared by the apps: deleting them once the database change that dropped their rows commits."""

from __future__ import annotations

import logging

from django.core.files.storage import default_storage
from django.db import transaction

log = logging.getLogger(__name__)


def files_delete(names: list[str]) -> None:
    """Delete these storage names now; a file that cannot be deleted is logged, the others still go."""
    for name in names:
        try:
            default_storage.delete(name)
        except OSError:
            log.exception("could not delete %s", name)


def files_delete_on_commit(names: list[str]) -> None:
    """Delete these storage names after the current transaction commits (never, if it rolls back)."""
    if names:
        transaction.on_commit(lambda: files_delete(names))
