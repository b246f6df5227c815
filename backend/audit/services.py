"""Writes of case records. `verification_record_create` never raises and never fails a verification: a
failed write is logged and counted (`audit_failures()`), and the verification's answer goes out anyway."""

from __future__ import annotations

import hashlib
import logging
import threading
import uuid
from datetime import date, datetime, time, timedelta
from typing import Any, Iterable

from django.conf import settings
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.core.files.uploadedfile import UploadedFile
from django.db import transaction
from django.utils import timezone

from config.storage import files_delete, files_delete_on_commit
from signatures.models import Reference

from .models import ANONYMOUS, DELETED_USER, VerificationRecord

log = logging.getLogger(__name__)

AUDIT_FOLDER = "audit"
_failures = 0
_failures_lock = threading.Lock()


def audit_failures() -> int:
    """How many case records this process failed to write since it started."""
    return _failures


def _count_failure() -> None:
    global _failures
    with _failures_lock:
        _failures += 1


def upload_sha256(upload: UploadedFile) -> str:
    digest = hashlib.sha256()
    for chunk in upload.chunks():  # from the start of the file, whatever was read before
        digest.update(chunk)
    return digest.hexdigest()


def _store_images(uploads: Iterable[UploadedFile]) -> list[str]:
    names = []
    for upload in uploads:
        upload.seek(0)
        names.append(default_storage.save(f"{AUDIT_FOLDER}/{uuid.uuid4().hex}.img", ContentFile(upload.read())))
    return names


def verification_record_create(*, kind: str, user: Any, client_address: str, result: dict[str, Any],
                               questioned: UploadedFile, reference: UploadedFile | None = None,
                               reference_sha256: list[str] | None = None, profile: Any = None) -> VerificationRecord | None:
    """The case record of one verification: who (the user, or anonymous + client address), the inputs' sha256
    (the images only when SIGVER_AUDIT_STORE_IMAGES), the model version, scores, threshold, `decision` (the
    result's three-way decision where present, else its verdict) and elapsed time. Returns None on failure."""
    stored: list[str] = []
    try:
        signed_in = user is not None and getattr(user, "is_authenticated", False)
        references = list(reference_sha256 or []) + ([upload_sha256(reference)] if reference is not None else [])
        if profile is not None and reference_sha256 is None:  # the references the result was computed against
            ids = [r["id"] for r in result.get("references", [])]
            by_id = dict(Reference.objects.filter(pk__in=ids).values_list("pk", "sha256"))
            references = [by_id[i] for i in ids if i in by_id]
        if getattr(settings, "SIGVER_AUDIT_STORE_IMAGES", False):
            stored = _store_images([questioned] + ([reference] if reference is not None else []))
        details = {k: result[k] for k in ("decision_rates", "references", "reference_count", "mean_distance",
                                          "reference_spread") if result.get(k) is not None}
        with transaction.atomic():
            return VerificationRecord.objects.create(
                kind=kind, user=user if signed_in else None,
                username=user.get_username() if signed_in else ANONYMOUS,
                client_address=client_address or "",
                profile=profile, profile_name=getattr(profile, "name", "") if profile is not None else "",
                questioned_sha256=upload_sha256(questioned), reference_sha256=references, image_files=stored,
                model_version=str(result.get("model_version", "")),
                distance=float(result["distance"]), threshold=float(result["threshold"]),
                similarity=float(result["similarity"]) if result.get("similarity") is not None else None,
                score=str(result.get("score_method") or "pairwise"),  # the record's `score` names the score
                verdict=str(result.get("verdict", "")),
                decision=str(result.get("decision") or result.get("verdict", "")),
                details=details, elapsed_ms=float(result.get("elapsed_ms") or 0.0),
            )
    except Exception:  # noqa: BLE001 - an audit write must never fail the verification
        _count_failure()
        log.exception("could not write the case record of a %s verification (%d failed so far)", kind, _failures)
        files_delete(stored)
        return None


def records_anonymise_of_user(*, user: Any) -> int:
    """A deleted account's case records, anonymised; returns how many. What a bank must keep stays: when, what kind,
    the inputs' sha256, the model version, distance/score, threshold, verdict, decision, the per-reference distances
    and rates (`details`) and the time taken. What named or showed the clerk and their customer goes: the user link,
    the user name (now DELETED_USER), the client address, the profile link and name, and the stored images (deleted
    after the commit). Runs inside the deletion's transaction (`audit.signals`)."""
    records = VerificationRecord.objects.filter(user=user)
    names = [n for files in records.values_list("image_files", flat=True) for n in (files or [])]
    count = records.update(user=None, username=DELETED_USER, client_address="", profile=None, profile_name="",
                           image_files=[])
    files_delete_on_commit(names)
    if count:
        log.info("anonymised %d case record(s) of a deleted account", count)
    return count


def retention_cutoff(days: int, *, today: date | None = None) -> datetime | None:
    """Case records created before this instant are older than `days` days: midnight (UTC) at the start of the
    day `days` days before today, so 0 keeps today's records and 1 today's and yesterday's. None when that day
    is before the calendar's first (a retention of a million days): no record is that old. (`now - timedelta`
    overflowed there, and 0 purged records made seconds ago.)"""
    if days < 0:
        raise ValueError(f"a retention period is 0 days or more, not {days}")
    today = timezone.localdate() if today is None else today
    try:
        day = today - timedelta(days=days)
    except OverflowError:
        return None
    return timezone.make_aware(datetime.combine(day, time.min))


@transaction.atomic
def records_purge(*, older_than_days: int | None = None, dry_run: bool = False) -> int:
    """Deletes case records older than the retention period (SIGVER_AUDIT_RETENTION_DAYS unless given; see
    `retention_cutoff`) and, after the commit, their stored images; returns how many rows (would) go."""
    days = settings.SIGVER_AUDIT_RETENTION_DAYS if older_than_days is None else older_than_days
    cutoff = retention_cutoff(days)
    if cutoff is None:
        return 0
    old = VerificationRecord.objects.filter(created__lt=cutoff)
    count = old.count()
    if dry_run or not count:
        return count
    names = [n for files in old.values_list("image_files", flat=True) for n in (files or [])]
    old.delete()
    files_delete_on_commit(names)
    log.info("purged %d case record(s) older than %d days", count, days)
    return count
