"""A VerificationRecord is the case record of one verification: who checked which signature, when, with which
model, and what the answer was. Rows are written by `audit.services.verification_record_create` only."""

from __future__ import annotations

from django.conf import settings
from django.db import models

KINDS = ("pair", "profile")  # POST /api/verify/ ; POST /api/profiles/<id>/verify/
ANONYMOUS = "anonymous"
DELETED_USER = "deleted user"  # the user of a deleted account's records (a space: no account can have this name)


class VerificationRecord(models.Model):
    created = models.DateTimeField(auto_now_add=True, db_index=True)
    kind = models.CharField(max_length=10, choices=[(k, k) for k in KINDS])
    # who: the signed-in user, or anonymous + address; when the account is deleted, DELETED_USER and no address,
    # profile name or images (audit.services.records_anonymise_of_user)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                             related_name="verification_records")
    username = models.CharField(max_length=150, default=ANONYMOUS)
    client_address = models.CharField(max_length=64, blank=True, default="")
    # the profile verified against (kind "profile"), kept as a name when the profile is later deleted
    profile = models.ForeignKey("signatures.Profile", null=True, blank=True, on_delete=models.SET_NULL,
                                related_name="verification_records")
    profile_name = models.CharField(max_length=200, blank=True, default="")
    # the inputs: sha256 of the questioned image and of the reference image(s), and their names (the file names the
    # client sent; a profile's references as "reference <id>"), in the same order
    questioned_sha256 = models.CharField(max_length=64)
    reference_sha256 = models.JSONField(default=list)
    questioned_name = models.CharField(max_length=200, blank=True, default="")
    reference_names = models.JSONField(default=list, blank=True)
    # the images themselves, only when SIGVER_AUDIT_STORE_IMAGES is on (storage names under SIGVER_MEDIA_ROOT)
    image_files = models.JSONField(default=list, blank=True)
    # the model and its answer
    model_version = models.CharField(max_length=100)
    score = models.FloatField()  # the number the decision judged: a pair's distance, or a profile's score
    score_method = models.CharField(max_length=20, default="pairwise")  # how: pairwise / normalized / mean
    threshold = models.FloatField()  # the protocol's EER threshold: a reference point, no answer of its own
    decision = models.CharField(max_length=20, db_index=True)  # genuine / inconclusive / forged: the answer given
    # the decision's cuts used: genuine at or below `genuine_below`, forged above `forged_above` (null: older records)
    genuine_below = models.FloatField(null=True, blank=True)
    forged_above = models.FloatField(null=True, blank=True)
    details = models.JSONField(default=dict, blank=True)  # per-reference distances, decision rates, ...
    elapsed_ms = models.FloatField()

    class Meta:
        ordering = ["-created", "-id"]
        indexes = [models.Index(fields=["user", "created"]), models.Index(fields=["profile", "created"])]

    def __str__(self) -> str:
        return f"record #{self.pk}: {self.kind} {self.decision} by {self.username}"
