"""Writes of case records. `verification_record_create` never raises and never fails a verification: a
failed write is logged, and the verification's answer goes out anyway.

Audit knows no other app: the service that verified passes what it already holds (the inputs' names, sha256 and
bytes, the answer) as plain values, and the record is one insert; nothing is read or hashed again here."""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any

from django.conf import settings
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import transaction
from django.utils import timezone

from config.storage import files_delete, files_delete_on_commit

from .models import ANONYMOUS, DELETED_USER, VerificationRecord

log = logging.getLogger(__name__)

AUDIT_FOLDER = "audit"


@dataclass(frozen=True)
class RecordedImage:
    """One input of a verification as its case record keeps it. `data` is kept only when
    SIGVER_AUDIT_STORE_IMAGES (None for inputs whose bytes the verification did not receive, such as a profile's
    stored references); `extension` names the stored file's format."""

    sha256: str
    name: str = ""
    data: bytes | None = field(default=None, repr=False)
    extension: str = "img"


@dataclass(frozen=True)
class Requester:
    """Who asked: the user (anonymous when not signed in) and the client's address."""

    user: Any = None
    client_address: str = ""

    @property
    def signed_in(self) -> bool:
        return self.user is not None and bool(getattr(self.user, "is_authenticated", False))


def _store_images(images: list[RecordedImage]) -> list[str]:
    return [default_storage.save(f"{AUDIT_FOLDER}/{uuid.uuid4().hex}.{image.extension}", ContentFile(image.data))
            for image in images if image.data is not None]


def _cut(result: dict[str, Any], name: str) -> float | None:
    value = (result.get("decision_rates") or {}).get(name)
    return float(value) if value is not None else None


def verification_record_create(*, kind: str, requester: Requester, result: dict[str, Any],
                               questioned: RecordedImage, references: list[RecordedImage],
                               profile_id: int | None = None, profile_name: str = "") -> VerificationRecord | None:
    """The case record of one verification: who (the user, or anonymous + client address), the inputs' names and
    sha256 (the images only when SIGVER_AUDIT_STORE_IMAGES), the model version, score, threshold, `decision` and its
    cuts, and the elapsed time. Returns None on failure."""
    stored: list[str] = []
    try:
        if getattr(settings, "SIGVER_AUDIT_STORE_IMAGES", False):
            stored = _store_images([questioned, *references])
        details = {k: result[k] for k in ("decision_rates", "references", "reference_count", "mean_distance",
                                          "reference_spread") if result.get(k) is not None}
        if result.get("auto_crops"):  # the boxes judged instead of the pages sent (not their thumbnails)
            details["auto_crops"] = [{k: v for k, v in c.items() if k != "thumbnail"} for c in result["auto_crops"]]
        with transaction.atomic():  # a savepoint: a failed insert leaves a surrounding transaction usable
            return VerificationRecord.objects.create(
                kind=kind, user=requester.user if requester.signed_in else None,
                username=requester.user.get_username() if requester.signed_in else ANONYMOUS,
                client_address=requester.client_address or "",
                profile_id=profile_id, profile_name=profile_name,
                questioned_sha256=questioned.sha256, reference_sha256=[r.sha256 for r in references],
                questioned_name=questioned.name[:200], reference_names=[r.name for r in references],
                image_files=stored,
                model_version=str(result.get("model_version", "")),
                score=float(result["distance"]), score_method=str(result.get("score_method") or "pairwise"),
                threshold=float(result["threshold"]), decision=str(result["decision"]),
                genuine_below=_cut(result, "genuine_below"), forged_above=_cut(result, "forged_above"),
                details=details, elapsed_ms=float(result.get("elapsed_ms") or 0.0),
            )
    except Exception:  # noqa: BLE001 - an audit write must never fail the verification
        log.exception("could not write the case record of a %s verification", kind)
        files_delete(stored)
        return None


def records_anonymise_of_user(*, user: Any) -> int:
    """A deleted account's case records, anonymised; returns how many. What a bank must keep stays: when, what kind,
    the inputs' sha256, the model version, score and its method, threshold, decision, the per-reference distances
    and rates (`details`) and the time taken. What named or showed the clerk and their customer goes: the user link,
    the user name (now DELETED_USER), the client address, the profile link and name, the file names, and the stored
    images (deleted after the commit). Runs inside the deletion's transaction (`audit.signals`)."""
    records = VerificationRecord.objects.filter(user=user)
    names = [n for files in records.values_list("image_files", flat=True) for n in (files or [])]
    count = records.update(user=None, username=DELETED_USER, client_address="", profile=None, profile_name="",
                           questioned_name="", reference_names=[], image_files=[])
    files_delete_on_commit(names)
    if count:
        log.info("anonymised %d case record(s) of a deleted account", count)
    return count


def retention_cutoff(days: int, *, today: date | None = None) -> datetime | None:
    """Case records created before this instant are older than `days` days: midnight (UTC) at the start of the
    day `days` days before today, so 0 keeps today's records and 1 today's and yesterday's. None when that day
    is before the calendar's first (a retention of a million days): no record is that old. Whole days, so that a
    retention of 0 never purges records made seconds ago; the date arithmetic is guarded because it overflows there."""
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
