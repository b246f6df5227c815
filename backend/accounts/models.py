"""The normalised form of every username, unique: `Frank`, `frank`, `ＦＲＡＮＫ` (fullwidth) and `Émile` /
`émile` are one name.

Django's user model compares usernames exactly (and `username__iexact` is ASCII-only on SQLite), so
two registrations racing each other, or differing only in case, width or composition, both
succeeded. This table holds `username_key(username)` under a unique index, which works the same on
SQLite and PostgreSQL; a signal keeps it in step with every save of a user (register, admin,
createsuperuser), so the database refuses the second of two such names whatever path created it.
"""

from __future__ import annotations

import unicodedata

from django.conf import settings
from django.db import models

from audit.models import ANONYMOUS, DELETED_USER


def username_key(username: str) -> str:
    """NFKC, case-folded, NFKC again (Unicode's NFKC_Casefold up to default-ignorable characters)."""
    return unicodedata.normalize("NFKC", unicodedata.normalize("NFKC", username).casefold())


# Names no one may register, compared by `username_key`: a case record names "anonymous" as the user of an anonymous
# verification, and "deleted user" as the user of a deleted account's records; a clerk of either name would be
# indistinguishable from them.
RESERVED_USERNAME_KEYS = frozenset(username_key(name) for name in (ANONYMOUS, DELETED_USER))


def username_reserved(username: str) -> bool:
    return username_key(username) in RESERVED_USERNAME_KEYS


class UsernameKey(models.Model):
    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="username_key")
    key = models.CharField(max_length=450, unique=True)  # casefold can lengthen a name (ß → ss)

    def __str__(self) -> str:
        return self.key
