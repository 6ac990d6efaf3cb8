"""The supervisors' admin site and the access rules every Attitré ModelAdmin shares.

Being an active supervisor is what opens the admin: the demo's supervisors hold no
per-model Django permissions. A supervisor who is not a superuser sees only their
own agency; superusers keep Django's rules and see every agency.
"""

from django.contrib import admin
from django.core.exceptions import ObjectDoesNotExist
from django.db.models import QuerySet
from django.utils.translation import gettext_lazy as _

from crm.models import Advisor, Agency

# What a supervisor may do to rows they fully manage (`SupervisedAdminMixin.supervisor_actions`).
EDIT_ROWS = frozenset({"view", "add", "change", "delete"})


def supervisor_of(user) -> Advisor | None:
    """The user's advisor record when they are an active staff supervisor, else None."""
    if not (user.is_authenticated and user.is_active and user.is_staff):
        return None
    try:
        advisor = user.advisor
    except ObjectDoesNotExist:
        return None
    return advisor if advisor.is_active and advisor.is_supervisor else None


def limit_to_agency(request, queryset: QuerySet, lookup: str = "agency") -> QuerySet:
    """Rows of the supervisor's own agency; every row for a superuser, none for anyone else."""
    if request.user.is_superuser:
        return queryset
    advisor = supervisor_of(request.user)
    if advisor is None:
        return queryset.none()
    return queryset.filter(**{lookup: advisor.agency_id})


class SuperuserOnlyAdminMixin:
    """What belongs to no agency (logins, groups, the task queue): superusers only, whatever
    Django permissions a supervisor may have been given, since none of it is scoped."""

    def _superuser(self, request) -> bool:
        return request.user.is_active and request.user.is_superuser

    def has_module_permission(self, request):
        return self._superuser(request) and super().has_module_permission(request)

    def has_view_permission(self, request, obj=None):
        return self._superuser(request) and super().has_view_permission(request, obj)

    def has_add_permission(self, request, *args):
        return self._superuser(request) and super().has_add_permission(request, *args)

    def has_change_permission(self, request, obj=None):
        return self._superuser(request) and super().has_change_permission(request, obj)

    def has_delete_permission(self, request, obj=None):
        return self._superuser(request) and super().has_delete_permission(request, obj)


class AttitreAdminSite(admin.AdminSite):
    site_header = _("Attitré supervision")
    site_title = _("Attitré")
    index_title = _("Agencies, advisors and customers")

    def has_permission(self, request):
        user = request.user
        if user.is_active and user.is_staff and user.is_superuser:
            return True
        return supervisor_of(user) is not None

    def register(self, model_or_iterable, admin_class=None, **options):
        """A model admin that is not one of ours (Django's users and groups, django-q2's
        tasks, any library's) knows nothing of agencies: it is kept for superusers."""
        admin_class = admin_class or admin.ModelAdmin
        if not issubclass(admin_class, SupervisedAdminMixin):
            admin_class = type(admin_class.__name__, (SuperuserOnlyAdminMixin, admin_class), {})
        super().register(model_or_iterable, admin_class, **options)


class SupervisedAdminMixin:
    """A supervisor may do exactly what `supervisor_actions` lists, with no Django model
    permission needed; anyone else (superusers) keeps Django's rules. Agency and advisor
    choices are limited to what the user may see."""

    supervisor_actions: frozenset[str] = frozenset({"view", "change"})

    def _supervisor_may(self, request, action: str) -> bool | None:
        """Whether a supervisor may do `action`; None when the user is not one."""
        if request.user.is_superuser or supervisor_of(request.user) is None:
            return None
        return action in self.supervisor_actions

    def has_module_permission(self, request):
        may = self._supervisor_may(request, "view")
        return super().has_module_permission(request) if may is None else may

    def has_view_permission(self, request, obj=None):
        may = self._supervisor_may(request, "view")
        return super().has_view_permission(request, obj) if may is None else may

    def has_add_permission(self, request, *args):
        # ModelAdmin takes (request), InlineModelAdmin (request, obj).
        may = self._supervisor_may(request, "add")
        return super().has_add_permission(request, *args) if may is None else may

    def has_change_permission(self, request, obj=None):
        may = self._supervisor_may(request, "change")
        return super().has_change_permission(request, obj) if may is None else may

    def has_delete_permission(self, request, obj=None):
        may = self._supervisor_may(request, "delete")
        return super().has_delete_permission(request, obj) if may is None else may

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        if db_field.related_model is Agency:
            kwargs["queryset"] = limit_to_agency(request, Agency.objects.all(), "pk")
        elif db_field.related_model is Advisor:
            kwargs["queryset"] = limit_to_agency(request, Advisor.objects.select_related("user"))
        return super().formfield_for_foreignkey(db_field, request, **kwargs)


class ReadOnlyAdminMixin:
    """For what only the application writes (conversations, the event log): shown, never edited."""

    def has_add_permission(self, request, *args):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


class AgencyScopedAdminMixin:
    """A supervisor sees the rows of their own agency, reached through `agency_lookup`."""

    agency_lookup = "agency"

    def get_queryset(self, request):
        return limit_to_agency(request, super().get_queryset(request), self.agency_lookup)

    def get_list_filter(self, request):
        list_filter = super().get_list_filter(request)
        if request.user.is_superuser and self.agency_lookup != "pk":
            return (*list_filter, self.agency_lookup)
        return list_filter


class AdvisorListFilter(admin.SimpleListFilter):
    """Filter by one of the advisors the user may see, or by none (`none_label`).

    Built from one query, where Django's related-field filter would load each
    advisor's user separately and list every agency's advisors."""

    field_name = ""
    none_label = _("None")
    NONE = "none"

    def lookups(self, request, model_admin):
        advisors = limit_to_agency(request, Advisor.objects.select_related("user"))
        return [(str(advisor.pk), advisor.display_name) for advisor in advisors] + [(self.NONE, self.none_label)]

    def queryset(self, request, queryset):
        value = self.value()
        if value == self.NONE:
            return queryset.filter(**{f"{self.field_name}__isnull": True})
        if value and value.isdigit():
            return queryset.filter(**{f"{self.field_name}_id": int(value)})
        return queryset
