"""With DEBUG off, what every response carries: https only (HSTS, redirect), a CSP without
inline script everywhere — the admin included — and sockets to our own origin only,
Referrer-Policy, and cookies Secure, HttpOnly and SameSite (issue #21, defect 9). The
settings are read as production reads them: a process started with DEBUG=0."""

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

PROBE = r"""
import json
import django
django.setup()
from django.core.management import call_command
call_command("migrate", verbosity=0)
from django.contrib.auth.models import User
from django.test import Client
from django.test.utils import setup_test_environment
setup_test_environment()
User.objects.create_superuser("root", "root@example.com", "a-long-password-1234")
plain = Client()
secure = Client(headers={"X-Forwarded-Proto": "https", "Host": "attitre.bank.example"})
out = {}
out["http_login"] = [plain.get("/accounts/login/").status_code, plain.get("/accounts/login/").get("Location")]
out["http_healthz"] = plain.get("/healthz").status_code
login = secure.get("/accounts/login/")
out["hsts"] = login.get("Strict-Transport-Security")
out["referrer"] = login.get("Referrer-Policy")
out["csp"] = login.get("Content-Security-Policy")
signed = secure.post("/accounts/login/", {"username": "root", "password": "a-long-password-1234"})
cookie = signed.cookies["sessionid"]
out["session_cookie"] = [bool(cookie["secure"]), bool(cookie["httponly"]), cookie["samesite"]]
csrf = login.cookies["csrftoken"]
out["csrf_cookie"] = [bool(csrf["secure"]), csrf["samesite"]]
out["admin_csp"] = secure.get("/admin/crm/customer/").get("Content-Security-Policy")
out["schema_anonymous"] = Client(headers={"X-Forwarded-Proto": "https"}).get("/api/schema/").status_code
print(json.dumps(out))
"""


def test_production_responses_carry_the_security_headers(tmp_path):
    env = {key: value for key, value in os.environ.items() if not key.startswith(("PYTEST_", "DJANGO_"))}
    env.pop("DATABASE_URL", None)
    env.pop("REDIS_URL", None)
    env.update(
        DEBUG="0",
        SECRET_KEY="production-headers-test-secret-0123456789-abcdefghijklmnop",
        ALLOWED_HOSTS="testserver,attitre.bank.example",
        SQLITE_PATH=str(tmp_path / "db.sqlite3"),
        PUBLIC_BASE_URL="https://attitre.bank.example",
        DJANGO_SETTINGS_MODULE="config.settings",
        SECURE_SSL_REDIRECT="1",
    )
    result = subprocess.run(  # noqa: S603 (our own interpreter and probe)
        [sys.executable, "-c", PROBE], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr[-3000:]
    out = json.loads(result.stdout.strip().splitlines()[-1])

    assert out["http_login"] == [301, "https://testserver/accounts/login/"]
    assert out["http_healthz"] == 200  # the proxy's health check on the server's own port
    assert out["hsts"] == "max-age=31536000"
    assert out["referrer"] == "same-origin"
    assert out["session_cookie"] == [True, True, "Lax"]
    assert out["csrf_cookie"] == [True, "Lax"]
    for policy in (out["csp"], out["admin_csp"]):
        directives = dict(part.strip().split(" ", 1) for part in policy.split(";"))
        assert directives["script-src"] == "'self'"
        assert directives["frame-ancestors"] == "'none'"
    page = dict(part.strip().split(" ", 1) for part in out["csp"].split(";"))
    assert page["connect-src"] == "'self' wss://attitre.bank.example"  # no other host's sockets
    assert out["schema_anonymous"] in (401, 403)
