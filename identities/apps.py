from django.apps import AppConfig


class IdentitiesConfig(AppConfig):
    name = "identities"

    def ready(self):
        from . import signals  # noqa: F401
