from django.apps import AppConfig
from django.contrib.admin import apps as admin_apps


class AccountsConfig(AppConfig):
    name = "accounts"
    default = True

    def ready(self):
        from . import signals  # noqa: F401  (connects the receivers)


class FacewebAdminConfig(admin_apps.AdminConfig):
    default = False
    default_site = "accounts.admin_site.FacewebAdminSite"
