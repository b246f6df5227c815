"""A deleted account's case records are anonymised, whichever way the account goes (the API's account deletion, the
admin, the ORM): connected in AuditConfig.ready."""

from __future__ import annotations

from .services import records_anonymise_of_user


def user_records_anonymise(sender, instance, **kwargs) -> None:
    """pre_delete of the user model: runs in the deletion's transaction, before the user link is set to null."""
    records_anonymise_of_user(user=instance)
