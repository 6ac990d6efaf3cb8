from django.apps import AppConfig


class CoreConfig(AppConfig):
    """An app only so that its locale/, the French catalogue of every Attitré app, is found
    wherever the apps are installed; it has no models."""

    name = "core"
