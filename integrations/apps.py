from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class IntegrationsConfig(AppConfig):
    name = "integrations"
    # Its own, not the host project's DEFAULT_AUTO_FIELD: the migrations were made with it.
    default_auto_field = "django.db.models.BigAutoField"
    verbose_name = _("Integrations")
