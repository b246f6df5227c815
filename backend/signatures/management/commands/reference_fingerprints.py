"""`manage.py reference_fingerprints`: keep the copy check's fingerprint with every reference enrolled before it
was kept (each stored image decoded once, here, instead of on the first verification that needs it)."""

from __future__ import annotations

from django.core.management.base import BaseCommand

from signatures.services import references_fingerprints_fill


class Command(BaseCommand):
    help = "Compute the copy-check fingerprint of every reference that lacks one (current model version)."

    def handle(self, *args, **options) -> None:
        self.stdout.write(f"{references_fingerprints_fill()} reference fingerprint(s) computed")
