"""Reads of case records: owner-scoped (a clerk sees their own records, staff sees every record)."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
import mimetypes
from typing import IO, Any

from django.contrib.auth.models import AbstractBaseUser
from django.core.files.storage import default_storage
from django.db.models import QuerySet
from django.utils import timezone

from config.errors import NotFound, get_or_not_found

from .models import VerificationRecord


def record_visible(*, user: AbstractBaseUser) -> QuerySet[VerificationRecord]:
    records = VerificationRecord.objects.all()
    return records if user.is_staff else records.filter(user=user)


def _start(value: date | datetime) -> datetime:
    if isinstance(value, datetime):
        return value if timezone.is_aware(value) else timezone.make_aware(value)
    return timezone.make_aware(datetime.combine(value, time.min))


def _end(day: date) -> datetime | None:
    """The first instant after `day` (UTC), or None after the calendar's last day (9999-12-31: no upper bound, since
    adding a day to it overflows)."""
    if day >= date.max:
        return None
    return _start(day + timedelta(days=1))


def record_list(*, user: AbstractBaseUser, date_from: date | datetime | None = None,
                date_to: date | datetime | None = None, profile: int | None = None, decision: str | None = None,
                username: str | None = None, kind: str | None = None, **_: Any) -> QuerySet[VerificationRecord]:
    """The records `user` may see, newest first. `date_to` as a date includes that whole day."""
    records = record_visible(user=user)
    if date_from is not None:
        records = records.filter(created__gte=_start(date_from))
    if date_to is not None:
        if isinstance(date_to, datetime):
            records = records.filter(created__lte=_start(date_to))
        elif (end := _end(date_to)) is not None:
            records = records.filter(created__lt=end)
    if profile is not None:
        records = records.filter(profile_id=profile)
    if decision:
        records = records.filter(decision=decision)
    if username:
        records = records.filter(username=username)
    if kind:
        records = records.filter(kind=kind)
    return records.order_by("-created", "-id")


def record_get(*, user: AbstractBaseUser, record_id: int) -> VerificationRecord:
    """Someone else's record is indistinguishable from a missing one (NotFound)."""
    return get_or_not_found(record_visible(user=user), pk=record_id)


def record_image_open(*, record: VerificationRecord) -> tuple[IO[bytes], str]:
    """The kept questioned image of a record (the first of its `image_files`), opened, and its content type."""
    if not record.image_files:
        raise NotFound("this record keeps no images (SIGVER_AUDIT_STORE_IMAGES was off)")
    name = record.image_files[0]
    try:
        handle = default_storage.open(name, "rb")
    except OSError:
        raise NotFound("the kept image is missing") from None
    return handle, mimetypes.guess_type(name)[0] or "application/octet-stream"
