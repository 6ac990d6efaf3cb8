# The routing reason was a sentence, translated when the decision was taken: it becomes a
# code and its parameters, written in the reader's language when shown. The sentences
# already stored (in English or French, the languages that shipped) are read back into codes;
# one that matches neither is kept as it was written (code "text").

import re

from django.db import migrations, models

_ABSENCE = [
    (re.compile(r"(?:out of office until|absent jusqu’au) (?P<until>\d{4}-\d{2}-\d{2})$"), "out_of_office"),
    (re.compile(r"(?:out of office|absent)$"), "out_of_office"),
    (re.compile(r"(?:inactive|inactif)$"), "inactive"),
    (re.compile(r"(?:away|indisponible)$"), "away"),
]
_REASONS = [
    (re.compile(r"(?:dedicated advisor|conseiller attitré)$"), "dedicated"),
    (re.compile(r"(?:deputy of|suppléant de) (?P<advisor>[^\s:]+) ?: (?P<absence>.+)$"), "deputy"),
    (
        re.compile(
            r"(?:pool: the customer has no dedicated advisor|file de l’agence : le client n’a pas de conseiller attitré)$"
        ),
        "pool_no_dedicated",
    ),
    (
        re.compile(
            r"(?:pool: no deputy available|file de l’agence : aucun suppléant disponible) "
            r"\((?P<advisor>[^\s:]+) ?: (?P<absence>.+)\)$"
        ),
        "pool_no_deputy",
    ),
    (re.compile(r"(?:unknown number|numéro inconnu)$"), "unknown_number"),
    (re.compile(r"(?:claimed from the pool by|prise dans la file par) (?P<advisor>\S+)$"), "claimed"),
    (re.compile(r"(?:transferred by|transférée par) (?P<by>[^\s:]+) ?: (?P<reason>.*)$", re.S), "transferred"),
    (re.compile(r"(?:linked to customer|rattachée au client) (?P<number>\S+) (?:by|par) (?P<by>\S+)$"), "linked"),
    (re.compile(r"(?:reassigned|réaffecté) ?: (?P<reason>.*)$", re.S), "reassigned"),
]


def reason_from_text(text: str) -> tuple[str, dict]:
    """The code and parameters a stored sentence says; ("", {}) for none."""
    if not text:
        return "", {}
    for pattern, code in _REASONS:
        if match := pattern.match(text):
            params = match.groupdict()
            if "absence" in params:
                absence = params.pop("absence")
                for absence_pattern, absence_code in _ABSENCE:
                    if absence_match := absence_pattern.match(absence):
                        params.update({"absence": absence_code, **absence_match.groupdict()})
                        break
                else:
                    return "text", {"text": text}
            return code, params
    return "text", {"text": text}


def codes_from_sentences(apps, schema_editor):
    Thread = apps.get_model("conversations", "Thread")
    threads = list(Thread.objects.exclude(routing_reason="").only("pk", "routing_reason"))
    for thread in threads:
        thread.routing_reason_code, thread.routing_reason_params = reason_from_text(thread.routing_reason)
    Thread.objects.bulk_update(threads, ["routing_reason_code", "routing_reason_params"], batch_size=1000)


class Migration(migrations.Migration):

    dependencies = [
        ("conversations", "0006_event_left_for_events"),
    ]

    operations = [
        migrations.AddField(
            model_name="thread",
            name="routing_reason_code",
            field=models.CharField(
                blank=True,
                choices=[
                    ("dedicated", "dedicated advisor"),
                    ("deputy", "deputy of the dedicated advisor"),
                    ("pool_no_dedicated", "pool: the customer has no dedicated advisor"),
                    ("pool_no_deputy", "pool: no deputy available"),
                    ("unknown_number", "unknown number"),
                    ("claimed", "claimed from the pool"),
                    ("transferred", "transferred"),
                    ("linked", "linked to a customer"),
                    ("reassigned", "reassigned"),
                    ("text", "as written"),
                ],
                max_length=32,
                verbose_name="routing reason",
            ),
        ),
        migrations.AddField(
            model_name="thread",
            name="routing_reason_params",
            field=models.JSONField(blank=True, default=dict, verbose_name="routing reason parameters"),
        ),
        migrations.RunPython(codes_from_sentences, migrations.RunPython.noop, elidable=True),
        migrations.RemoveField(
            model_name="thread",
            name="routing_reason",
        ),
    ]
