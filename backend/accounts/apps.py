from django.apps import AppConfig


class AccountsConfig(AppConfig):
    name = "accounts"
    verbose_name = "Accounts"

    def ready(self) -> None:
        from django.contrib.auth import get_user_model
        from django.db.models.signals import post_save

        from .signals import username_key_save

        post_save.connect(username_key_save, sender=get_user_model(), dispatch_uid="accounts.username_key")
