from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class ConversationsConfig(AppConfig):
    name = "conversations"
    # Its own, not the host project's DEFAULT_AUTO_FIELD: the migrations were made with it.
    default_auto_field = "django.db.models.BigAutoField"
    verbose_name = _("Conversations")

    def ready(self):
        # django-q2 forks its workers from the process that ran this: what is imported here
        # is imported once, not by each worker on its first task (a third of a second of CPU
        # each, measured with bench/outbound.py).
        from conversations import tasks  # noqa: F401
        from conversations.providers import email, twilio
        from conversations.services.email import email_receive, email_tracking_apply

        twilio.preload()
        email.connect_webhooks(
            on_inbound=lambda raw, source, recipient, message: email_receive(
                raw=raw, source=source, envelope_recipient=recipient, parsed_message=message
            ),
            on_tracking=lambda event: email_tracking_apply(event=event),
        )
