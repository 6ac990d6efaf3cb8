"""Who is calling the REST API, what they may reach, how fast, and how errors look.

Two kinds of callers: people with a session (an advisor sees what their live inbox
shows, a supervisor their agency) and integrators' systems with an API key (what its
scopes allow, within its agency when it has one). Whatever is out of reach is a 404,
so that ids never reveal what exists; a missing scope is a 403 naming it.
"""

import hmac
from dataclasses import dataclass, field
from datetime import timedelta

from django.core.exceptions import ObjectDoesNotExist
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext as _
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework import exceptions
from rest_framework.authentication import BaseAuthentication, get_authorization_header
from rest_framework.permissions import BasePermission
from rest_framework.settings import api_settings
from rest_framework.throttling import SimpleRateThrottle

from conversations.access import (
    advisor_covered_ids,
    customer_visibility_q,
    event_visibility_q,
    thread_visibility_q,
)
from crm.models import Advisor
from integrations.models import ApiKey
from integrations.services import PREFIX_LENGTH, hash_key

LAST_USED_RESOLUTION = timedelta(minutes=1)
ALL_SCOPES = frozenset(ApiKey.Scope.values)
# What a person may do through the API with their session; visibility narrows it further.
ADVISOR_SCOPES = ALL_SCOPES - {ApiKey.Scope.CUSTOMERS_WRITE}
SUPERVISOR_SCOPES = ALL_SCOPES


# --- Authentication -----------------------------------------------------------------


class ApiKeyUser:
    """`request.user` of a call made with an API key: authenticated, but nobody's login."""

    is_authenticated = True
    is_anonymous = False
    is_active = True
    is_staff = False
    is_superuser = False
    pk = None

    def __init__(self, api_key: ApiKey):
        self.api_key = api_key

    def __str__(self):
        return f"API key {self.api_key.name}"

    def get_username(self) -> str:
        return str(self)


class ApiKeyAuthentication(BaseAuthentication):
    """`Authorization: Bearer <key>`; a wrong or revoked key is a 401."""

    keyword = b"bearer"

    def authenticate(self, request):
        parts = get_authorization_header(request).split()
        if not parts or parts[0].lower() != self.keyword:
            return None
        if len(parts) != 2:
            raise exceptions.AuthenticationFailed(_("Send the key as “Authorization: Bearer <key>”."))
        try:
            key = parts[1].decode()
        except UnicodeDecodeError as exc:
            raise exceptions.AuthenticationFailed(_("This API key is not valid.")) from exc
        api_key = ApiKey.objects.select_related("agency").filter(prefix=key[:PREFIX_LENGTH]).first()
        if api_key is None or not hmac.compare_digest(api_key.hashed_key, hash_key(key)):
            raise exceptions.AuthenticationFailed(_("This API key is not valid."))
        if api_key.is_revoked:
            raise exceptions.AuthenticationFailed(_("This API key was revoked."))
        self._touch(api_key)
        return ApiKeyUser(api_key), api_key

    def authenticate_header(self, request):
        return 'Bearer realm="api"'

    @staticmethod
    def _touch(api_key: ApiKey) -> None:
        # At most one write a minute per key, whatever the request rate.
        now = timezone.now()
        if api_key.last_used_at is None or now - api_key.last_used_at >= LAST_USED_RESOLUTION:
            ApiKey.objects.filter(pk=api_key.pk).filter(
                Q(last_used_at__isnull=True) | Q(last_used_at__lt=now - LAST_USED_RESOLUTION)
            ).update(last_used_at=now)
            api_key.last_used_at = now


class ApiKeyAuthenticationScheme(OpenApiAuthenticationExtension):
    target_class = "integrations.api.auth.ApiKeyAuthentication"
    name = "apiKey"

    def get_security_definition(self, auto_schema):
        return {
            "type": "http",
            "scheme": "bearer",
            "description": _("An API key created by a supervisor, sent as `Authorization: Bearer <key>`."),
        }


# --- The caller and what they may reach -------------------------------------------------


@dataclass
class Caller:
    """The person or system behind a request, resolved once per request."""

    scopes: frozenset[str]
    advisor: Advisor | None = None
    api_key: ApiKey | None = None
    _covered_ids: list[int] | None = field(default=None, repr=False)

    @property
    def agency_id(self) -> int | None:
        """The one agency the caller is limited to; None for an unrestricted key."""
        if self.api_key is not None:
            return self.api_key.agency_id
        return self.advisor.agency_id

    @property
    def is_supervisor(self) -> bool:
        return self.advisor is not None and self.advisor.is_supervisor

    @property
    def label(self) -> str:
        """How the caller is named in histories (consent source, reasons)."""
        if self.api_key is not None:
            return _("API key %(name)s") % {"name": self.api_key.name}
        return self.advisor.user.get_username()

    @property
    def user(self):
        return self.advisor.user if self.advisor is not None else self.api_key.created_by

    def covered_ids(self) -> list[int]:
        if self._covered_ids is None:
            self._covered_ids = advisor_covered_ids(advisor=self.advisor)
        return self._covered_ids

    # A signed-in advisor reaches what their inbox shows (conversations.access, the rules the
    # inbox and its pushes follow); a key reaches its agency, or everything.

    def threads_q(self) -> Q:
        """The threads the caller may see, as a filter on Thread."""
        if self.advisor is not None:
            return thread_visibility_q(advisor=self.advisor, covered_ids=self.covered_ids())
        return _agency_q("agency_id", self.agency_id)

    def customers_q(self) -> Q:
        if self.advisor is not None:
            return customer_visibility_q(advisor=self.advisor, covered_ids=self.covered_ids())
        return _agency_q("agency_id", self.agency_id)

    def advisors_q(self) -> Q:
        return _agency_q("agency_id", self.agency_id)

    def events_q(self) -> Q:
        if self.advisor is not None:
            return event_visibility_q(advisor=self.advisor, covered_ids=self.covered_ids())
        return _agency_q("agency_id", self.agency_id)


def _agency_q(lookup: str, agency_id: int | None) -> Q:
    return Q() if agency_id is None else Q(**{lookup: agency_id})


def caller_of(request) -> Caller:
    cached = getattr(request, "_attitre_caller", None)
    if cached is not None:
        return cached
    if isinstance(request.auth, ApiKey):
        caller = Caller(scopes=frozenset(request.auth.scopes) & ALL_SCOPES, api_key=request.auth)
    else:
        try:
            advisor = request.user.advisor
        except (AttributeError, ObjectDoesNotExist):
            advisor = None
        if advisor is None or not advisor.is_active:
            raise exceptions.PermissionDenied(
                _("Only active advisors and supervisors may use the API with their session."),
                code="not_an_advisor",
            )
        caller = Caller(scopes=SUPERVISOR_SCOPES if advisor.is_supervisor else ADVISOR_SCOPES, advisor=advisor)
    request._attitre_caller = caller
    return caller


class HasScope(BasePermission):
    """The view's `scopes` maps each HTTP method to the scope it needs. HEAD is a GET without
    its body, so it needs GET's scope; OPTIONS describes the endpoint and needs none; any
    other method the view does not map is refused, whether or not the view handles it."""

    def has_permission(self, request, view):
        if request.method == "OPTIONS":
            return True
        needed = view.scopes.get("GET" if request.method == "HEAD" else request.method)
        if needed is None:
            raise exceptions.MethodNotAllowed(request.method)
        if needed not in caller_of(request).scopes:
            raise exceptions.PermissionDenied(
                _("This call needs the “%(scope)s” scope.") % {"scope": needed}, code="scope_missing"
            )
        return True


# --- Throttling ---------------------------------------------------------------------------


class _SettingsRate:
    def get_rate(self):
        # Read at call time, so that a changed setting (tests, reload) takes effect.
        return api_settings.DEFAULT_THROTTLE_RATES.get(self.scope)


class ApiKeyRateThrottle(_SettingsRate, SimpleRateThrottle):
    """Requests per API key."""

    scope = "api_key"

    def get_cache_key(self, request, view):
        if not isinstance(request.auth, ApiKey):
            return None
        return self.cache_format % {"scope": self.scope, "ident": request.auth.pk}


class ApiUserRateThrottle(_SettingsRate, SimpleRateThrottle):
    """Requests per signed-in user."""

    scope = "api_user"

    def get_cache_key(self, request, view):
        if isinstance(request.auth, ApiKey) or not request.user.is_authenticated:
            return None
        return self.cache_format % {"scope": self.scope, "ident": request.user.pk}
