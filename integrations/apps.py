from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class IntegrationsConfig(AppConfig):
    name = "integrations"
    # Its own, not the host project's DEFAULT_AUTO_FIELD: the migrations were made with it.
    default_auto_field = "django.db.models.BigAutoField"
    verbose_name = _("Integrations")

    def ready(self):
        from django.db.models.signals import post_delete, post_save

        from events.publish import on_append
        from integrations.models import WebhookEndpoint
        from integrations.services import webhooks_queue

        on_append(webhooks_queue)
        # Whatever saves or deletes an endpoint (the admin, a service, a shell), this process's
        # cached list of them is read again; services that update rows in bulk say so themselves.
        for signal in (post_save, post_delete):
            signal.connect(_endpoints_changed, sender=WebhookEndpoint, dispatch_uid=f"webhook-endpoints-{signal}")


def _endpoints_changed(**kwargs):
    from integrations.services import webhook_endpoints_changed

    webhook_endpoints_changed()
