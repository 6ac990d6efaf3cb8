import os
import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def start(env: dict, code: str = "print('booted')") -> subprocess.CompletedProcess:
    """Load the settings in a fresh interpreter, as a production start would, then run `code`."""
    clean = {
        k: v
        for k, v in os.environ.items()
        if k not in {"SECRET_KEY", "DEBUG", "DATABASE_URL", "REDIS_URL", "REDIS_SENTINELS"}
    }
    return subprocess.run(  # noqa: S603 (the tests' own code)
        [sys.executable, "-c", f"import django; django.setup(); {code}"],
        cwd=ROOT,
        env={**clean, "DJANGO_SETTINGS_MODULE": "config.settings", **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_production_refuses_the_insecure_default_secret_key():
    """DEBUG off with the built-in SECRET_KEY refuses to boot and says what to set."""
    result = start({"DEBUG": "0"})
    assert result.returncode != 0
    assert "Set the SECRET_KEY environment variable" in result.stderr


def test_production_boots_with_a_secret_key():
    """DEBUG off with a real SECRET_KEY boots."""
    result = start({"DEBUG": "0", "SECRET_KEY": "a-real-secret-" + "x" * 40})
    assert result.returncode == 0, result.stderr
    assert "booted" in result.stdout


def test_embedded_default_needs_nothing():
    """With nothing set, the laptop defaults boot (SQLite, in-memory layer)."""
    result = start({})
    assert result.returncode == 0, result.stderr


def test_one_asgi_server_is_installed_and_it_is_uvicorn():
    """uvicorn serves every process (Procfiles, CI's API fuzzing, the benchmarks); daphne is
    neither an app (it would take over `runserver`) nor a requirement of the apps: only the
    tests need it, because channels.testing imports it (requirements-dev.in)."""
    from django.conf import settings

    assert "daphne" not in settings.INSTALLED_APPS
    assert "daphne" not in (ROOT / "requirements.in").read_text().lower()
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert not [requirement for requirement in project["dependencies"] if "daphne" in requirement.lower()]
    assert "uvicorn config.asgi:application" in (ROOT / ".ci" / "run").read_text()
    assert "runserver" not in (ROOT / ".ci" / "run").read_text()


def test_a_cluster_claims_one_task_ahead_per_worker():
    """django-q2 would keep workers² tasks claimed in memory (64 for 8 workers), which a stopping
    cluster runs first and whose locks may lapse meanwhile: ours keeps one per worker
    (docs/deployment.md)."""
    result = start({"Q_WORKERS": "8"}, "from django_q.conf import Conf; print(Conf.WORKERS, Conf.QUEUE_LIMIT)")
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["8", "8"]
