"""The OpenAPI schema: generated without a warning, served, and honoured by the API."""

import io

from django.core.management import call_command


def test_schema_generates_without_warnings(db):
    """`spectacular --validate --fail-on-warn` passes."""
    out = io.StringIO()
    call_command("spectacular", "--validate", "--fail-on-warn", "--file", "/dev/null", stdout=out, stderr=out)


def test_schema_and_docs_are_served_with_local_assets(client, alice):
    """Swagger UI loads its assets from our static files, never a CDN, and its script is a
    file (the page's CSP allows no inline script)."""
    client.force_login(alice.user)
    assert client.get("/api/schema/").status_code == 200
    response = client.get("/api/docs/")
    page = response.content.decode()
    assert "drf_spectacular_sidecar" in page
    assert "cdn." not in page
    assert "<script>" not in page
    assert "'unsafe-inline'" not in response["Content-Security-Policy"].split("script-src")[1].split(";")[0]
    assert client.get("/api/docs/", {"script": ""}).status_code == 200


def test_schema_and_docs_are_not_public_by_default(client, db, make_key):
    """Without a session or an API key, the schema and Swagger UI are refused (API_SCHEMA_PUBLIC
    publishes them); any valid key reads the schema."""
    assert client.get("/api/schema/").status_code in (401, 403)
    assert client.get("/api/docs/").status_code in (401, 403)
    assert make_key(scopes=["customers:read"]).get("/api/schema/").status_code == 200


def test_schema_is_written_in_the_language_asked_for(client, alice):
    """The operations' summaries and descriptions are translated when the schema is built
    (`?lang=fr`), not frozen in whatever language was active when the module was imported."""
    client.force_login(alice.user)
    english = client.get("/api/schema/", {"format": "json"}).json()
    french = client.get("/api/schema/", {"format": "json", "lang": "fr"}).json()
    assert english["paths"]["/api/v1/advisors/"]["get"]["summary"] == "List advisors"
    assert french["paths"]["/api/v1/advisors/"]["get"]["summary"] == "Lister les conseillers"
    patch = "/api/v1/advisors/{id}/"
    assert english["paths"][patch]["patch"]["description"] != french["paths"][patch]["patch"]["description"]
