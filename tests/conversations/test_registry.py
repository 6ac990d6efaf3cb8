"""The channel registry: one spec per channel, which the send and receive paths, the
composer, the views and the templates consult instead of naming channels themselves."""

import dataclasses
import re
from pathlib import Path

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import models
from django.template import Context, Template

from conversations.models import Thread
from conversations.providers import registry
from conversations.providers.registry import (
    CHANNELS,
    LAST_INBOUND_FIELDS,
    REPLY_CHANNELS,
    WINDOW_REFUSALS,
    default_reply_channel,
    template_channel,
)
from conversations.services import SendRefused, message_send
from crm.models import ContactPoint

ROOT = Path(__file__).resolve().parents[2]


def test_every_channel_a_contact_point_can_have_has_a_spec_and_its_column():
    """Each ContactPoint.Kind has a spec, named after it, whose last-inbound column is a
    date-time of Thread; and every such column of Thread belongs to a spec."""
    assert list(CHANNELS) == list(ContactPoint.Kind.values)
    for channel, spec in CHANNELS.items():
        assert spec.channel == channel
        assert isinstance(Thread._meta.get_field(spec.last_inbound_field), models.DateTimeField)
    columns = {field.name for field in Thread._meta.fields if re.fullmatch(r"last_\w+_inbound_at", field.name)}
    assert columns == set(LAST_INBOUND_FIELDS)


def test_what_each_channel_allows_today():
    """Replies go on WhatsApp, then SMS; approved templates and the 24-hour window are
    WhatsApp's; email replies carry their own headers; web chat replies in text only."""
    assert [spec.channel for spec in REPLY_CHANNELS] == ["whatsapp", "sms", "email", "webchat"]
    assert default_reply_channel().channel == template_channel().channel == "whatsapp"
    whatsapp, sms, email, webchat = CHANNELS.values()
    assert whatsapp.free_text_window.length.total_seconds() == 24 * 3600
    assert WINDOW_REFUSALS == {"outside_whatsapp_window"}
    assert (whatsapp.templates, sms.templates, sms.free_text_window) == (True, False, None)
    assert (whatsapp.media.max_files, sms.media.max_files) == (1, 10)
    assert email.replies and webchat.replies and webchat.media is None
    assert (email.free_text_window, email.templates, email.envelope, email.media.max_files) == (None, False, True, 10)
    assert {spec.provider.name for spec in REPLY_CHANNELS} == {"twilio", "email", "webchat"}


@pytest.mark.django_db
def test_a_reply_channel_without_media_rules_refuses_files(camille, alice, monkeypatch):
    """A channel that replies but carries no files (a spec with `media=None`) refuses an
    attachment before storing it, naming the channel."""
    monkeypatch.setitem(registry.CHANNELS, "sms", dataclasses.replace(CHANNELS["sms"], media=None))
    thread = Thread.objects.create(
        customer=camille, dedicated_advisor=camille.dedicated_advisor, agency=camille.agency, handler=alice
    )
    photo = SimpleUploadedFile("photo.jpg", b"\xff\xd8\xff", content_type="image/jpeg")

    with pytest.raises(SendRefused) as refused:
        message_send(thread=thread, author=alice, body="Tenez", attachments=[photo], channel="sms")

    assert refused.value.code == "attachment_type"
    assert refused.value.messages == ["SMS replies cannot carry files; send the text alone."]


@pytest.mark.parametrize("channel", [*ContactPoint.Kind.values, "", "fax"])
def test_a_channel_icon_comes_from_its_spec(channel):
    """Each channel's icon and label; nothing for no channel or an unknown one."""
    html = Template("{% load channel_icons %}{% channel_icon channel %}").render(Context({"channel": channel}))
    if channel in CHANNELS:
        label = CHANNELS[channel].label
        assert html == (
            f'<img class="channel-icon" src="/static/inbox/icons/{channel}.svg" alt="{label}" title="{label}" '
            'width="20" height="20">'
        )
        assert (ROOT / "conversations" / "static" / CHANNELS[channel].icon).is_file()
    else:
        assert html == ""


# What naming a channel outside the registry looks like: one of the channel constants, a
# comparison with a channel's name, or a per-channel column spelt through a format string.
CHANNEL_TEST = re.compile(
    r"""(Channel|Kind)\.(WHATSAPP|SMS|EMAIL|WEBCHAT)\b|(==|!=)\s*["'](whatsapp|sms|email|webchat)["']|f["']last_\{"""
)
OUTSIDE = (
    "conversations/providers/registry.py",
    # The Twilio adapter writes an SMS address bare; the simulator plays Twilio and the
    # customers' phones, the other side of the wire.
    "conversations/providers/twilio.py",
    "conversations/providers/simulator.py",
    # The web chat adapter names its own channel, for the customer's side of it.
    "conversations/providers/webchat.py",
    # The demo's conversations are data, each line on its channel.
    "conversations/demo.py",
)


def test_no_code_outside_the_registry_tests_which_channel_it_holds():
    """No `channel == …` and no f"last_{channel}…" in the apps above crm, their templates
    included: a channel's rules are read from its spec."""
    offenders = []
    for app in ("conversations", "integrations", "channels_app"):
        for path in sorted((ROOT / app).rglob("*")):
            relative = path.relative_to(ROOT).as_posix()
            if path.suffix not in (".py", ".html", ".js") or relative in OUTSIDE or "/migrations/" in relative:
                continue
            for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
                if CHANNEL_TEST.search(line):
                    offenders.append(f"{relative}:{number}: {line.strip()}")
    assert offenders == []
