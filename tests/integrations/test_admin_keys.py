"""Supervisors create API keys and webhook endpoints in the admin."""

import pytest

from integrations.models import ApiKey, WebhookEndpoint
from integrations.services import hash_key

pytestmark = pytest.mark.django_db


def test_a_supervisor_creates_a_key_shown_once(client, supervisor):
    """The full key appears once, in a message; only its hash is stored, in the supervisor's agency."""
    client.force_login(supervisor.user)
    response = client.post(
        "/admin/integrations/apikey/add/",
        {"name": "CRM sync", "scopes": ["customers:read", "events:read"]},
        follow=True,
    )
    assert response.status_code == 200
    api_key = ApiKey.objects.get()
    shown = [str(m) for m in response.context["messages"]][0]
    key = shown.rsplit(" ", 1)[-1]
    assert api_key.hashed_key == hash_key(key) and key.startswith(api_key.prefix)
    assert api_key.agency == supervisor.agency and api_key.created_by == supervisor.user
    assert client.get("/admin/integrations/apikey/").status_code == 200


def test_a_webhook_endpoint_needs_an_http_url(client, supervisor, settings):
    settings.ATTITRE_WEBHOOKS_ALLOW_PRIVATE = False
    client.force_login(supervisor.user)
    data = {"url": "http://10.0.0.5/hook", "secret": "s3cret", "active": "on"}
    response = client.post("/admin/integrations/webhookendpoint/add/", data)
    assert response.status_code == 200 and not WebhookEndpoint.objects.exists()
    client.post("/admin/integrations/webhookendpoint/add/", {**data, "url": "https://hooks.example.com/attitre"})
    assert WebhookEndpoint.objects.get().agency == supervisor.agency
    assert client.get("/admin/integrations/webhookdelivery/").status_code == 200
