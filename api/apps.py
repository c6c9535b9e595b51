from django.apps import AppConfig


class ApiConfig(AppConfig):
    """The REST API (/api/v1/): views over identities, training and identification. No models."""

    name = "api"
    verbose_name = "API"
