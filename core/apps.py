from django.apps import AppConfig


class CoreConfig(AppConfig):
    """An app so that its locale/, the French catalogue of every Attitré app, is found
    wherever the apps are installed, and its migrations (the task queue's rows) run; it
    has no models."""

    name = "core"

    def ready(self):
        from django.contrib.auth.signals import user_logged_in

        from core.signin import session_started

        # A session's limits start at sign-in (core/signin.py).
        user_logged_in.connect(session_started, dispatch_uid="attitre-session-started")
