"""`manage.py sweep_reference_files [--dry-run]`: delete the stored image files (references/ and audit/) that no
database row names, left only by a process killed mid-request (see services.stored_files_sweep)."""

from __future__ import annotations

from django.core.management.base import BaseCommand

from signatures.services import stored_files_sweep


class Command(BaseCommand):
    help = "Delete image files under SIGVER_MEDIA_ROOT (references/, audit/) that no database row names."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--dry-run", action="store_true", help="list them, delete nothing")

    def handle(self, *args, dry_run: bool, **options) -> None:
        names = stored_files_sweep(dry_run=dry_run)
        for name in names:
            self.stdout.write(name)
        self.stdout.write(f"{len(names)} orphaned file(s) {'found' if dry_run else 'deleted'}")
