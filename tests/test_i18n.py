import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

from django.utils import timezone, translation
from django.utils.translation import gettext

from conversations.routing import absence_reason
from conversations.routing_reasons import ReasonCode, RoutingReason

ROOT = Path(__file__).resolve().parent.parent
CATALOGUE = Path("core") / "locale" / "fr" / "LC_MESSAGES" / "django.po"
PO = ROOT / CATALOGUE
# What makemessages reads: the settings and every app, with its templates; the catalogue is core's.
SOURCES = ("manage.py", "config", "core", "events", "crm", "conversations", "integrations", "journal", "channels_app")


def _untranslated(text: str) -> list[str]:
    entries = re.findall(r'^msgid ((?:".*"\n)+)msgstr ((?:".*"\n?)+)', text, re.M)
    return [
        "".join(re.findall(r'"(.*)"', msgid))
        for msgid, msgstr in entries
        if "".join(re.findall(r'"(.*)"', msgid)) and not "".join(re.findall(r'"(.*)"', msgstr))
    ]


def test_french_catalogue_is_complete(tmp_path):
    """Every string the code and templates mark for translation today (extracted again by
    makemessages from a copy of the tree) has a French translation, none fuzzy."""
    for name in SOURCES:
        source = ROOT / name
        if source.is_dir():
            shutil.copytree(source, tmp_path / name, ignore=shutil.ignore_patterns("__pycache__", "*.mo"))
        else:
            shutil.copy(source, tmp_path / name)
    subprocess.run(
        [sys.executable, "manage.py", "makemessages", "-l", "fr", "--no-location", "--no-obsolete", "-v", "0"],
        cwd=tmp_path,
        check=True,
        env={**os.environ, "DJANGO_SETTINGS_MODULE": "config.settings"},
    )
    text = (tmp_path / CATALOGUE).read_text(encoding="utf-8")
    assert _untranslated(text) == []
    assert "#, fuzzy" not in text
    assert _untranslated(PO.read_text(encoding="utf-8")) == []


def test_french_is_compiled_and_used():
    """The compiled catalogue ships: French users get French routing reasons and errors."""
    with translation.override("fr"):
        assert gettext("dedicated advisor") == "conseiller attitré"
        assert gettext("A note cannot be empty.") == "Une note ne peut pas être vide."


def test_absence_reason_in_french(alice):
    """Reasons are written in the language active when they are shown."""
    alice.availability = "away"
    reason = RoutingReason(ReasonCode.DEPUTY, {"advisor": "alice", **absence_reason(alice, at=timezone.now())})
    with translation.override("fr"):
        assert str(reason) == "suppléant de alice : indisponible"
