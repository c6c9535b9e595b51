from django.apps import AppConfig


class ImportsConfig(AppConfig):
    name = "imports"
    verbose_name = "bulk imports"

    def ready(self):
        from . import tasks  # noqa: F401  (connects the worker_ready handler)
