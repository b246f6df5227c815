"""`manage.py sweep_reference_files [--older-than SECONDS] [--dry-run]`: delete reference image files
that no database row names (left only by a process killed mid-request; see services.reference_files_sweep)."""

from __future__ import annotations

from django.core.management.base import BaseCommand

from signatures.services import reference_files_sweep


class Command(BaseCommand):
    help = "Delete reference image files under SIGVER_MEDIA_ROOT that no reference row names."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--older-than", type=float, default=3600.0,
                            help="only files at least this many seconds old (default 3600: in-flight uploads are kept)")
        parser.add_argument("--dry-run", action="store_true", help="list them, delete nothing")

    def handle(self, *args, older_than: float, dry_run: bool, **options) -> None:
        names = reference_files_sweep(older_than_s=older_than, dry_run=dry_run)
        for name in names:
            self.stdout.write(name)
        self.stdout.write(f"{len(names)} orphaned file(s) {'found' if dry_run else 'deleted'}")
