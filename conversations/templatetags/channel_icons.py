from django import template
from django.templatetags.static import static
from django.utils.html import format_html

from conversations.providers.registry import channel_spec

register = template.Library()


@register.simple_tag
def channel_icon(channel: str) -> str:
    """A channel's icon, named after it; nothing for a channel that is not one (a thread
    nobody has written on yet). Built here rather than by an inclusion template: the inbox
    shows one per row, and a template costs ten times more."""
    spec = channel_spec(channel)
    if spec is None:
        return ""
    return format_html(
        '<img class="channel-icon" src="{}" alt="{}" title="{}" width="20" height="20">',
        static(spec.icon),
        spec.label,
        spec.label,
    )
