from django.apps import AppConfig


class AccountsConfig(AppConfig):
    name = "accounts"
    verbose_name = "Accounts"

    def ready(self) -> None:
        from django.contrib.auth import get_user_model
        from django.db.models.signals import post_save, pre_save

        from .signals import password_change_tokens_revoke, username_key_save

        post_save.connect(username_key_save, sender=get_user_model(), dispatch_uid="accounts.username_key")
        pre_save.connect(password_change_tokens_revoke, sender=get_user_model(),
                         dispatch_uid="accounts.password_change_tokens_revoke")
