"""Account actions: register, obtain a token, delete an account with all of its data."""

from __future__ import annotations

from django.contrib.auth import authenticate, get_user_model
from django.contrib.auth.models import AbstractBaseUser
from django.db import IntegrityError, transaction
from django.http import HttpRequest
from rest_framework.authtoken.models import Token

from config.errors import ApplicationError, NotAuthenticated
from signatures.services import profiles_delete_of_owner

User = get_user_model()


def user_register(*, username: str, password: str, email: str = "") -> tuple[AbstractBaseUser, str]:
    """A new user and their API token."""
    try:
        with transaction.atomic():
            user = User.objects.create_user(username=username, password=password, email=email)
            token = Token.objects.create(user=user)
    except IntegrityError:
        raise ApplicationError(
            "username: a user with that username already exists.", code="invalid",
            details={"username": ["A user with that username already exists."]},
        ) from None
    return user, token.key


def user_token_obtain(*, username: str, password: str, request: HttpRequest) -> str:
    """The user's API token (created on first use); wrong credentials are a 401. `request` goes to the
    authentication backends (django-axes' backend requires it; it counts /admin/login/ only)."""
    user = authenticate(request, username=username, password=password)
    if user is None or not user.is_active:
        raise NotAuthenticated("Invalid username or password.")
    token, _ = Token.objects.get_or_create(user=user)
    return token.key


@transaction.atomic
def user_delete(*, user: AbstractBaseUser) -> None:
    """Deletes the user, their token, profiles, references and (after the commit) the reference images."""
    profiles_delete_of_owner(owner=user)
    user.delete()
