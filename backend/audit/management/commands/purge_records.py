"""`manage.py purge_records [--older-than-days N] [--dry-run]`: delete case records older than the retention
period (SIGVER_AUDIT_RETENTION_DAYS) and their stored images. Run it daily (cron, systemd timer).

N counts whole days (UTC) before today: 0 keeps today's records, 1 today's and yesterday's; a period longer
than the calendar deletes nothing (`audit.services.retention_cutoff`)."""

from __future__ import annotations

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from audit.services import records_purge


class Command(BaseCommand):
    help = "Delete case records (audit trail) older than the retention period."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--older-than-days", type=int, default=None,
                            help="retention in whole days before today, UTC; 0 keeps today's records (default: "
                                 f"SIGVER_AUDIT_RETENTION_DAYS, now {settings.SIGVER_AUDIT_RETENTION_DAYS})")
        parser.add_argument("--dry-run", action="store_true", help="count them, delete nothing")

    def handle(self, *args, older_than_days: int | None, dry_run: bool, **options) -> None:
        if older_than_days is not None and older_than_days < 0:
            raise CommandError("--older-than-days must be 0 or more")
        count = records_purge(older_than_days=older_than_days, dry_run=dry_run)
        days = settings.SIGVER_AUDIT_RETENTION_DAYS if older_than_days is None else older_than_days
        self.stdout.write(f"{count} case record(s) older than {days} days {'found' if dry_run else 'deleted'}")
