import pytest

from conversations.providers.base import InboundMessage
from conversations.services.inbound import inbound_message_receive


def receive(address: str, body: str, sid: str, **extra):
    return inbound_message_receive(
        inbound=InboundMessage(
            provider="twilio", provider_message_id=sid, channel="whatsapp", address=address, body=body, **extra
        )
    )


@pytest.fixture
def camille_thread(camille):
    result = receive("+33612345678", "Bonjour, mon virement ?", "SM" + "1" * 32, raw={"Body": "Bonjour"})
    return result.message.thread
