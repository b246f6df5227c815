from __future__ import annotations

from django.apps import AppConfig


class AuditConfig(AppConfig):
    name = "audit"
    verbose_name = "Case records"

    def ready(self) -> None:
        from django.contrib.auth import get_user_model
        from django.db.models.signals import pre_delete

        from .signals import user_records_anonymise

        pre_delete.connect(user_records_anonymise, sender=get_user_model(), dispatch_uid="audit.user_records_anonymise")
