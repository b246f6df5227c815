from __future__ import annotations

from django.contrib import admin

from .models import VerificationRecord


@admin.register(VerificationRecord)
class VerificationRecordAdmin(admin.ModelAdmin):
    """Read-only: case records are written by the API and removed only by `manage.py purge_records`."""

    list_display = ["id", "created", "kind", "username", "profile_name", "decision", "score", "score_method",
                    "model_version"]
    list_filter = ["kind", "decision", "model_version"]
    search_fields = ["username", "profile_name", "questioned_sha256"]
    date_hierarchy = "created"

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False
