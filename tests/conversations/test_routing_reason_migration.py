import importlib

import pytest

from conversations.routing_reasons import RoutingReason

migration = importlib.import_module("conversations.migrations.0007_thread_routing_reason_code")


@pytest.mark.parametrize(
    ("text", "code", "params", "english"),
    [
        ("dedicated advisor", "dedicated", {}, "dedicated advisor"),
        ("conseiller attitré", "dedicated", {}, "dedicated advisor"),
        (
            "deputy of alice: out of office until 2026-12-01",
            "deputy",
            {"advisor": "alice", "absence": "out_of_office", "until": "2026-12-01"},
            "deputy of alice: out of office until 2026-12-01",
        ),
        (
            "suppléant de alice : indisponible",
            "deputy",
            {"advisor": "alice", "absence": "away"},
            "deputy of alice: away",
        ),
        (
            "pool: no deputy available (alice: inactive)",
            "pool_no_deputy",
            {"advisor": "alice", "absence": "inactive"},
            "pool: no deputy available (alice: inactive)",
        ),
        (
            "file de l’agence : aucun suppléant disponible (alice : absent)",
            "pool_no_deputy",
            {"advisor": "alice", "absence": "out_of_office"},
            "pool: no deputy available (alice: out of office)",
        ),
        ("pool: the customer has no dedicated advisor", "pool_no_dedicated", {}, None),
        ("numéro inconnu", "unknown_number", {}, "unknown number"),
        ("claimed from the pool by bob", "claimed", {"advisor": "bob"}, None),
        (
            "transférée par alice : Question: crédit",
            "transferred",
            {"by": "alice", "reason": "Question: crédit"},
            "transferred by alice: Question: crédit",
        ),
        ("linked to customer FR12345678 by bob", "linked", {"number": "FR12345678", "by": "bob"}, None),
        ("réaffecté : Mutation", "reassigned", {"reason": "Mutation"}, "reassigned: Mutation"),
        ("routed by hand", "text", {"text": "routed by hand"}, None),
        ("deputy of alice: on a boat", "text", {"text": "deputy of alice: on a boat"}, None),
    ],
)
def test_stored_sentences_become_codes_that_read_the_same(text, code, params, english):
    """Sentences stored in English or French before the codes read back into the code and
    parameters that write them again; one that matches nothing is kept as written."""
    assert migration.reason_from_text(text) == (code, params)
    assert str(RoutingReason(code, params)) == (english or text)


def test_an_empty_sentence_stays_empty():
    assert migration.reason_from_text("") == ("", {})
