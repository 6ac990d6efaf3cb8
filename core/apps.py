from django.apps import AppConfig


class CoreConfig(AppConfig):
    """An app so that its locale/, the French catalogue of every Attitré app, is found
    wherever the apps are installed, and its migrations (the task queue's rows) run; it
    has no models."""

    name = "core"
