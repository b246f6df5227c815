"""Keep accounts.UsernameKey in step with the users; end a user's API tokens when their password changes
(both connected in AccountsConfig.ready)."""

from __future__ import annotations

from django.contrib.auth.hashers import check_password
from knox.models import AuthToken

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


def password_change_tokens_revoke(sender, instance, raw: bool = False, update_fields=None, **kwargs) -> None:
    """pre_save of the user model: a new password ends every API token of the user, whichever way it was set (the
    API's password change, the admin, `manage.py changepassword`, `set_password` + `save` anywhere). Not when the
    stored hash changes for the same password (Django re-hashes it at sign-in after an upgrade of its hasher)."""
    if raw or instance.pk is None:
        return
    if update_fields is not None and "password" not in update_fields:  # e.g. last_login at sign-in
        return
    stored = sender.objects.filter(pk=instance.pk).values_list("password", flat=True).first()
    if stored is None or stored == instance.password:
        return
    new_password = getattr(instance, "_password", None)  # the clear text while set_password's save is pending
    if new_password is not None and check_password(new_password, stored):
        return  # the same password, re-hashed
    AuthToken.objects.filter(user_id=instance.pk).delete()
