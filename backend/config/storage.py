"""Stored files shared by the apps: deleting them once the database change that dropped their rows commits."""

from __future__ import annotations

import logging

from django.core.files.storage import default_storage
from django.db import transaction

log = logging.getLogger(__name__)


def files_delete_on_commit(names: list[str]) -> None:
    """Delete these storage names after the current transaction commits (never, if it rolls back)."""
    def delete() -> None:
        for name in names:
            try:
                default_storage.delete(name)
            except OSError:
                log.exception("could not delete %s", name)

    if names:
        transaction.on_commit(delete)
