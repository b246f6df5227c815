"""Keep accounts.UsernameKey in step with the users (connected in AccountsConfig.ready)."""

from __future__ import annotations

from .models import UsernameKey, username_key


def username_key_save(sender, instance, raw: bool = False, **kwargs) -> None:
    """post_save of the user model: insert or update its normalised name; a name whose normalised form
    another user holds raises IntegrityError inside the saving transaction."""
    if raw:  # loaddata
        return
    update_fields = kwargs.get("update_fields")
    if update_fields is not None and instance.USERNAME_FIELD not in update_fields:  # e.g. last_login at sign-in
        return
    key = username_key(instance.get_username())
    updated = UsernameKey.objects.filter(user=instance).exclude(key=key).update(key=key)
    if not updated and not UsernameKey.objects.filter(user=instance).exists():
        UsernameKey.objects.create(user=instance, key=key)
