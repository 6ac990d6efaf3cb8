import re
from pathlib import Path

from django.utils import timezone, translation
from django.utils.translation import gettext

from conversations.routing import absence_reason

PO = Path(__file__).resolve().parent.parent / "locale" / "fr" / "LC_MESSAGES" / "django.po"


def test_french_catalogue_is_complete():
    """Every string marked for translation has a French translation, none fuzzy."""
    text = PO.read_text(encoding="utf-8")
    entries = re.findall(r'^msgid ((?:".*"\n)+)msgstr ((?:".*"\n?)+)', text, re.M)
    untranslated = [
        "".join(re.findall(r'"(.*)"', msgid))
        for msgid, msgstr in entries
        if "".join(re.findall(r'"(.*)"', msgid)) and not "".join(re.findall(r'"(.*)"', msgstr))
    ]
    assert untranslated == []
    assert "#, fuzzy" not in text


def test_french_is_compiled_and_used():
    """The compiled catalogue ships: French users get French routing reasons and errors."""
    with translation.override("fr"):
        assert gettext("dedicated advisor") == "conseiller attitré"
        assert gettext("A note cannot be empty.") == "Une note ne peut pas être vide."


def test_absence_reason_in_french(alice):
    """Reasons are built in the active language."""
    alice.availability = "away"
    with translation.override("fr"):
        assert absence_reason(alice, at=timezone.now()) == "indisponible"
