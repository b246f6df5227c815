"""Account actions: register, sign in (a new token), sign out, change the password, delete an account.

API tokens are django-rest-knox's: the database keeps each token's sha512 only, with its expiry
(SIGVER_TOKEN_TTL_HOURS); a user may hold several (one per signed-in client), at most SIGVER_TOKENS_PER_USER.
"""

from __future__ import annotations

from datetime import datetime

from django.conf import settings
from django.contrib.auth import authenticate, get_user_model
from django.contrib.auth.hashers import make_password
from django.contrib.auth.models import AbstractBaseUser
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import IntegrityError, transaction
from django.http import HttpRequest
from django.utils import timezone
from knox.models import AuthToken

from config.errors import ApplicationError, NotAuthenticated
from signatures.services import profiles_delete_of_owner

from .models import username_reserved

User = get_user_model()


def token_issue(*, user: AbstractBaseUser) -> tuple[str, datetime | None]:
    """A new API token for `user` and when it ends (None: never, with SIGVER_TOKEN_TTL_HOURS=0). The user's
    expired tokens are deleted, and the oldest of the others beyond SIGVER_TOKENS_PER_USER - 1."""
    with transaction.atomic():
        AuthToken.objects.filter(user=user, expiry__lt=timezone.now()).delete()
        instance, token = AuthToken.objects.create(user=user)
        others = AuthToken.objects.filter(user=user).exclude(pk=instance.pk).order_by("-created", "-pk")
        surplus = list(others.values_list("pk", flat=True)[max(0, settings.SIGVER_TOKENS_PER_USER - 1):])
        if surplus:
            AuthToken.objects.filter(pk__in=surplus).delete()
    return token, instance.expiry


def user_register(*, username: str, password: str, email: str = "") -> tuple[AbstractBaseUser, str, datetime | None]:
    """A new user, their API token and when it ends."""
    if username_reserved(username):
        raise ApplicationError(
            "username: that name is reserved.", code="invalid", details={"username": ["That name is reserved."]})
    # The password is hashed before the transaction opens: hashing takes a CPU-bound fraction of a second, and on
    # SQLite an open write transaction holds the database lock all that time (simultaneous sign-ups got 503s).
    user = User(username=User.normalize_username(username), email=User.objects.normalize_email(email))
    user.password = make_password(password)
    try:
        with transaction.atomic():
            user.save()
            token, expiry = token_issue(user=user)
    except IntegrityError:
        raise ApplicationError(
            "username: a user with that username already exists.", code="invalid",
            details={"username": ["A user with that username already exists."]},
        ) from None
    return user, token, expiry


def user_token_obtain(*, username: str, password: str, request: HttpRequest) -> tuple[str, datetime | None]:
    """A new API token of the user and when it ends; wrong credentials are a 401. `request` goes to the
    authentication backends (django-axes' backend requires it; it counts /admin/login/ only)."""
    user = authenticate(request, username=username, password=password)
    if user is None or not user.is_active:
        raise NotAuthenticated("Invalid username or password.")
    return token_issue(user=user)


def token_revoke(*, user: AbstractBaseUser, token: AuthToken | None, everywhere: bool = False) -> int:
    """Sign-out: ends `token` (the one the request came with), or every token of `user` with `everywhere`;
    returns how many ended."""
    if everywhere:
        return AuthToken.objects.filter(user=user).delete()[0]
    if token is None:
        return 0
    return AuthToken.objects.filter(pk=token.pk, user=user).delete()[0]


def user_password_change(*, user: AbstractBaseUser, current_password: str, new_password: str) -> tuple[str, datetime | None]:
    """Sets a new password; every token of the user ends (`accounts.signals.password_change_tokens_revoke`, as for
    any password change) and a new one, for the client that asked, is returned with when it ends."""
    if not user.check_password(current_password):
        raise ApplicationError("current_password: wrong password.", code="invalid",
                               details={"current_password": ["Wrong password."]})
    if new_password == current_password:
        raise ApplicationError("new_password: the new password is the current one.", code="invalid",
                               details={"new_password": ["The new password is the current one."]})
    try:
        validate_password(new_password, user=user)
    except DjangoValidationError as exc:
        raise ApplicationError("new_password: " + " ".join(exc.messages), code="invalid",
                               details={"new_password": list(exc.messages)}) from None
    with transaction.atomic():
        user.set_password(new_password)
        user.save(update_fields=["password"])
        AuthToken.objects.filter(user=user).delete()  # the signal does too; said here, where it is the point
        return token_issue(user=user)


@transaction.atomic
def user_delete(*, user: AbstractBaseUser) -> None:
    """Deletes the user, their tokens, profiles, references and (after the commit) the reference images; their case
    records stay, anonymised (`audit.signals`)."""
    profiles_delete_of_owner(owner=user)
    user.delete()
