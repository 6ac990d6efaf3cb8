"""Telling open inboxes that what their advisor may hear has changed, or that their
session ended.

An open tab re-reads its access every 30 s anyway (`consumers._OpenTabs`); when a
supervisor or an integration changes an advisor's availability, absence or deputies,
this makes the tabs concerned follow at once: the advisor's own, and those of their
deputies, who start or stop covering them. A session signing out closes its tabs at once.
"""

import logging
from collections.abc import Iterable
from functools import partial

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.db import transaction

from events.groups import advisor_group, session_group

logger = logging.getLogger(__name__)


def inbox_access_changed(*, advisor_ids: Iterable[int]) -> None:
    """After the current transaction commits, the open inboxes of these advisors (and of
    whoever covers them now) re-read which groups they may hear."""
    groups = [advisor_group(advisor_id) for advisor_id in dict.fromkeys(advisor_ids)]
    if groups:
        transaction.on_commit(partial(_notify, groups, {"type": "inbox.access"}))


def inbox_session_ended(*, session_key: str) -> None:
    """After the current transaction commits, the open inboxes of this session close."""
    transaction.on_commit(partial(_notify, [session_group(session_key)], {"type": "inbox.session_ended"}))


def _notify(groups: list[str], message: dict) -> None:
    layer = get_channel_layer()
    if layer is None:
        return
    try:
        async_to_sync(_send)(layer, groups, message)
    except Exception:
        # The periodic refresh catches up within 30 s (and checks the sessions).
        logger.warning("Open inboxes of %s not told of %s.", ",".join(groups), message["type"], exc_info=True)


async def _send(layer, groups: list[str], message: dict) -> None:
    for group in groups:
        await layer.group_send(group, message)
