"""Security headers Django does not set by itself."""

from collections.abc import Callable

from django.core.exceptions import DisallowedHost
from django.http import HttpRequest, HttpResponse

# The inbox renders customer text: no inline script or style anywhere, so that an
# escaping mistake cannot turn into script execution.
CONTENT_SECURITY_POLICY = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        "connect-src 'self' {websocket}",
        "frame-ancestors 'none'",
        "base-uri 'self'",
        "form-action 'self'",
    ]
)
# Django's admin (the supervisors' tool, every path under /admin/) runs no inline script
# since Django 4.x, but sets style attributes: 'unsafe-inline' for styles only, the rest as
# strict as the inbox's. Swagger UI (/api/docs/) is served split, its script a file of ours.
ADMIN_CONTENT_SECURITY_POLICY = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self' 'unsafe-inline'",
        "img-src 'self' data:",
        "frame-ancestors 'none'",
        "base-uri 'self'",
        "form-action 'self'",
    ]
)
RELAXED_STYLE_PREFIXES = ("/admin/", "/api/docs/")


class ContentSecurityPolicyMiddleware:
    """Adds a Content-Security-Policy to every response that does not set its own."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        if request.path.startswith(RELAXED_STYLE_PREFIXES):
            policy = ADMIN_CONTENT_SECURITY_POLICY
        else:
            # Sockets to our own origin only ('self' does not cover ws: in every browser).
            try:
                websocket = f"{'wss' if request.is_secure() else 'ws'}://{request.get_host()}"
            except DisallowedHost:
                websocket = ""  # a request for a host we do not serve opens no socket either
            policy = CONTENT_SECURITY_POLICY.format(websocket=websocket).replace("'self' ;", "'self';")
        response.headers.setdefault("Content-Security-Policy", policy)
        return response
