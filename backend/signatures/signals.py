"""A reference's image file goes with its row, however the row is deleted: through the API, the admin, a cascade
from its profile or its owner's account (`User.delete()` in the admin or the ORM), or a queryset delete."""

from __future__ import annotations

from django.db.models.signals import post_delete
from django.dispatch import receiver

from config.storage import files_delete_on_commit

from .models import Reference


@receiver(post_delete, sender=Reference, dispatch_uid="signatures.reference_file_delete")
def reference_file_delete(sender, instance: Reference, **kwargs) -> None:
    """Delete the file after the deletion commits (never, if it rolls back); a kill in between leaves a file
    without a row, which `stored_files_sweep` removes."""
    if instance.image and instance.image.name:
        files_delete_on_commit([instance.image.name])
