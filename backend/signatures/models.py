"""A Profile is a person whose genuine signatures (References) are enrolled by a user (the owner)."""

from __future__ import annotations

import uuid

import numpy as np
from django.conf import settings
from django.db import models


class Profile(models.Model):
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="profiles")
    name = models.CharField(max_length=200)
    external_id = models.CharField(max_length=200, blank=True, default="")
    created = models.DateTimeField(auto_now_add=True)
    updated = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["id"]
        indexes = [models.Index(fields=["owner", "id"])]
        constraints = [  # an external id names one person of an owner (blank = none given)
            models.UniqueConstraint(fields=["owner", "external_id"], condition=~models.Q(external_id=""),
                                    name="profile_external_id_unique_per_owner"),
        ]

    def __str__(self) -> str:
        return f"{self.name} (#{self.pk})"


def reference_upload_to(instance: "Reference", filename: str) -> str:
    """A generated name; the client's file name is never used (only the verified format's extension)."""
    extension = filename.rsplit(".", 1)[-1].lower() if "." in filename else "img"
    return f"references/{uuid.uuid4().hex}.{extension}"


class Reference(models.Model):
    """A genuine signature of a profile: the stored image and its embedding under `model_version`."""

    profile = models.ForeignKey(Profile, on_delete=models.CASCADE, related_name="references")
    image = models.FileField(upload_to=reference_upload_to, max_length=255)
    content_type = models.CharField(max_length=100)
    width = models.PositiveIntegerField()
    height = models.PositiveIntegerField()
    size_bytes = models.PositiveIntegerField()
    sha256 = models.CharField(max_length=64)
    embedding = models.BinaryField()  # float32 little-endian, `embedding_dim` values
    embedding_dim = models.PositiveIntegerField()
    model_version = models.CharField(max_length=100)
    # `sigml.copies.fingerprint` of the preprocessed image under `model_version` (float32 little-endian, the card's
    # canvas / 4 in each side), kept at enrolment so the copy check never decodes the stored image; empty for
    # references enrolled before it (filled once: `manage.py reference_fingerprints`, or on first use)
    fingerprint = models.BinaryField(blank=True, default=b"")
    # the part of the stored image that is the signature ([left, top, right, bottom] pixels, the crop sent or the box
    # `auto_crop` chose), so a new model re-embeds the same part; null: the whole image
    crop = models.JSONField(null=True, blank=True, default=None)
    # the signature was cut from a page (the crop or `auto_crop` box of an image the page check calls a page):
    # a verify against the profile is then never answered forged (`sigml.decision.on_a_page`)
    from_a_page = models.BooleanField(default=False)
    created = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return f"reference #{self.pk} of profile #{self.profile_id}"

    def crop_box(self) -> tuple[int, int, int, int] | None:
        return tuple(int(v) for v in self.crop) if self.crop else None  # type: ignore[return-value]

    @staticmethod
    def encode_fingerprint(fingerprint: np.ndarray) -> bytes:
        return np.ascontiguousarray(fingerprint, dtype="<f4").tobytes()

    def fingerprint_array(self, shape: tuple[int, int]) -> np.ndarray | None:
        """The kept fingerprint as an array of `shape` (the current card's), or None when none of that size is kept."""
        data = bytes(self.fingerprint or b"")
        if not data or len(data) != 4 * shape[0] * shape[1]:
            return None
        return np.frombuffer(data, dtype="<f4").reshape(shape).astype(np.float32)

    @staticmethod
    def encode_embedding(vector: np.ndarray) -> bytes:
        return np.ascontiguousarray(vector, dtype="<f4").tobytes()

    def embedding_array(self) -> np.ndarray:
        return np.frombuffer(bytes(self.embedding), dtype="<f4", count=self.embedding_dim).astype(np.float32)
