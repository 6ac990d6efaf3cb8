import pytest
from django.core.exceptions import ValidationError

from crm.addresses import normalize_address, normalize_email, normalize_phone, parse_twilio_address


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("+33612345678", "+33612345678"),
        ("06 12 34 56 78", "+33612345678"),
        ("06.12.34.56.78", "+33612345678"),
        ("+33 (0)6 12 34 56 78", "+33612345678"),
        ("0033612345678", "+33612345678"),
        ("+31 6 12345678", "+31612345678"),
        ("+48 512 345 678", "+48512345678"),
    ],
)
def test_phone_numbers_are_normalised_to_e164(raw, expected):
    """National, spaced and international forms all become E.164."""
    assert normalize_phone(raw) == expected


@pytest.mark.parametrize(
    ("raw", "code"),
    [
        ("", "phone_required"),
        ("   ", "phone_required"),
        ("not a number", "phone_unparseable"),
        ("+33 6 12", "phone_invalid"),
        ("+3361234567890123", "phone_invalid"),
        ("+999 123456", "phone_unparseable"),
    ],
)
def test_bad_phone_numbers_are_refused_with_a_clear_error(raw, code):
    """A bad number is refused with an error that says what to do, never half-parsed."""
    with pytest.raises(ValidationError) as error:
        normalize_phone(raw)
    assert error.value.code == code
    assert error.value.messages[0]


def test_phone_error_message_tells_the_expected_form():
    """The message shows the international form to use."""
    with pytest.raises(ValidationError) as error:
        normalize_phone("not a number")
    assert "+33612345678" in error.value.messages[0]


def test_emails_are_lower_cased_and_stripped():
    """Emails are stored lower-cased, without surrounding spaces."""
    assert normalize_email("  Camille.Martin@Example.FR ") == "camille.martin@example.fr"


@pytest.mark.parametrize("raw", ["", "camille", "camille@", "@example.fr", "camille martin@example.fr"])
def test_bad_emails_are_refused(raw):
    """A malformed email is refused."""
    with pytest.raises(ValidationError):
        normalize_email(raw)


def test_address_normalisation_depends_on_the_channel():
    """Phone channels normalise numbers; email lower-cases."""
    assert normalize_address(kind="whatsapp", address="06 12 34 56 78") == "+33612345678"
    assert normalize_address(kind="sms", address="06 12 34 56 78") == "+33612345678"
    assert normalize_address(kind="email", address="A@B.FR") == "a@b.fr"


@pytest.mark.parametrize(
    ("raw", "parsed"),
    [
        ("whatsapp:+33612345678", ("whatsapp", "+33612345678")),
        ("WhatsApp:+33612345678", ("whatsapp", "+33612345678")),
        ("+33612345678", ("sms", "+33612345678")),
    ],
)
def test_twilio_addresses_give_channel_and_number(raw, parsed):
    """`whatsapp:+33…` is WhatsApp; a bare E.164 number is SMS."""
    assert parse_twilio_address(raw) == parsed
