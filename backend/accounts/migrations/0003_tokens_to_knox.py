# Written by hand: carries DRF's tokens over to django-rest-knox.
"""API tokens moved from DRF's `authtoken` app to django-rest-knox (hashed, with an expiry). Every DRF token that
exists is carried over, so clients keep working with the token they have (`Authorization: Token <key>`) until it
ends SIGVER_TOKEN_TTL_HOURS after this migration; then the clear-text keys are deleted from DRF's table (the empty
table stays: its app is no longer installed)."""

import hashlib
from datetime import timedelta

from django.conf import settings
from django.db import migrations
from django.utils import timezone

DRF_TABLE = "authtoken_token"


def knox_digest(token: str) -> str:  # knox.crypto.hash_token with knox's default SECURE_HASH_ALGORITHM, frozen here
    return hashlib.sha512(token.encode("utf-8")).hexdigest()


def carry_over(apps, schema_editor):
    connection = schema_editor.connection
    if DRF_TABLE not in connection.introspection.table_names():
        return
    AuthToken = apps.get_model("knox", "AuthToken")
    hours = getattr(settings, "SIGVER_TOKEN_TTL_HOURS", 12)
    expiry = timezone.now() + timedelta(hours=hours) if hours else None
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT key, user_id FROM {DRF_TABLE}")
        rows = cursor.fetchall()
        for key, user_id in rows:
            AuthToken.objects.get_or_create(digest=knox_digest(key),
                                            defaults={"token_key": key[:15], "user_id": user_id, "expiry": expiry})
        cursor.execute(f"DELETE FROM {DRF_TABLE}")


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0002_username_key_existing_users"),
        ("knox", "0009_extend_authtoken_field"),
    ]

    operations = [migrations.RunPython(carry_over, migrations.RunPython.noop)]
