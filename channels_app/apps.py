from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class ChannelsAppConfig(AppConfig):
    name = "channels_app"
    verbose_name = _("Live inbox")

    def ready(self):
        from django.contrib.auth import get_user_model
        from django.contrib.auth.signals import user_logged_out
        from django.db.models.signals import post_save

        from channels_app import sessions

        user_logged_out.connect(sessions.signed_out, dispatch_uid="channels_app.signed_out")
        post_save.connect(sessions.user_saved, sender=get_user_model(), dispatch_uid="channels_app.user_saved")
