from django import template

from conversations.providers.registry import channel_spec

register = template.Library()


@register.inclusion_tag("inbox/_channel_icon.html")
def channel_icon(channel: str) -> dict:
    """A channel's icon, named after it; nothing for a channel that is not one (a thread
    nobody has written on yet)."""
    return {"spec": channel_spec(channel)}
