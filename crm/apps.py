from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class CrmConfig(AppConfig):
    name = "crm"
    # Its own, not the host project's DEFAULT_AUTO_FIELD: the migrations were made with it.
    default_auto_field = "django.db.models.BigAutoField"
    verbose_name = _("Customers and advisors")
