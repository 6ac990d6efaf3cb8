from django.contrib.admin.apps import AdminConfig


class AttitreAdminConfig(AdminConfig):
    """django.contrib.admin, with the supervisors' site as `admin.site`."""

    default_site = "crm.admin_site.AttitreAdminSite"
