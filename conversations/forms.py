"""The inbox's forms: they parse what an advisor typed; the services decide."""

import re

from django import forms
from django.utils.translation import gettext_lazy as _

from conversations.models import Channel, MessageTemplate, Thread
from conversations.selectors import InboxTab, customer_linkable_by_number
from conversations.services.outbound import BODY_MAX_LENGTH
from conversations.services.threads import NOTE_MAX_LENGTH
from crm.models import Advisor
from crm.search import SEARCH_MAX_LENGTH


class InboxFilterForm(forms.Form):
    tab = forms.ChoiceField(choices=InboxTab.choices, required=False)
    q = forms.CharField(label=_("Search"), max_length=SEARCH_MAX_LENGTH, required=False, strip=True)

    def filters(self) -> tuple[str, str]:
        """(tab, search); a tab that does not exist shows the advisor's own conversations."""
        if self.is_valid():
            return self.cleaned_data["tab"] or InboxTab.MINE, self.cleaned_data["q"]
        q = self.data.get("q", "")
        return InboxTab.MINE, q[:SEARCH_MAX_LENGTH].strip() if isinstance(q, str) else ""


class NoteForm(forms.Form):
    body = forms.CharField(
        label=_("Internal note"),
        max_length=NOTE_MAX_LENGTH,
        widget=forms.Textarea(attrs={"rows": 3}),
        error_messages={"required": _("A note cannot be empty.")},
    )


class ReplyForm(forms.Form):
    # No max_length here: the service's refusal says how long the message is and what to do.
    body = forms.CharField(
        label=_("Reply to the customer"),
        required=False,
        widget=forms.Textarea(attrs={"rows": 3, "maxlength": BODY_MAX_LENGTH}),
    )
    channel = forms.ChoiceField(
        label=_("Send on"),
        choices=Channel.choices,
        required=False,
        error_messages={"invalid_choice": _("Choose one of the channels offered for this reply.")},
    )
    # Email only: empty answers "Re:" the customer's last subject.
    subject = forms.CharField(label=_("Subject (email)"), required=False, max_length=998)


class TemplateReplyForm(forms.Form):
    """An approved template and its variables, posted as variable_1, variable_2…"""

    VARIABLE_FIELD = re.compile(r"^variable_(\d{1,2})$")
    VARIABLE_MAX_LENGTH = 1024

    template = forms.ModelChoiceField(
        queryset=MessageTemplate.objects.all(),
        error_messages={
            "required": _("Choose a message template."),
            "invalid_choice": _("That template does not exist any more; reload the page and choose another one."),
        },
    )

    def clean(self):
        cleaned = super().clean()
        variables = {}
        for key in self.data:
            match = self.VARIABLE_FIELD.match(key)
            if match:
                value = str(self.data.get(key) or "").strip()
                if len(value) > self.VARIABLE_MAX_LENGTH:
                    raise forms.ValidationError(
                        _("{{%(number)s}} is too long: %(max)d characters at most."),
                        code="variable_too_long",
                        params={"number": match.group(1), "max": self.VARIABLE_MAX_LENGTH},
                    )
                variables[match.group(1)] = value
        cleaned["variables"] = variables
        return cleaned


class StatusForm(forms.Form):
    status = forms.ChoiceField(choices=Thread.Status.choices)


class TransferForm(forms.Form):
    to = forms.ModelChoiceField(
        label=_("Colleague"),
        queryset=Advisor.objects.none(),
        empty_label=_("Choose a colleague"),
        error_messages={
            "required": _("Choose the colleague who takes the conversation."),
            "invalid_choice": _("That colleague cannot take this conversation; choose one of the list."),
        },
    )
    reason = forms.CharField(
        label=_("Reason"),
        max_length=250,
        error_messages={"required": _("Say why you transfer this conversation.")},
    )

    def __init__(self, *args, candidates, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["to"].queryset = candidates
        self.fields["to"].label_from_instance = lambda advisor: advisor.display_name


LINK_REFUSED = _(
    "None of the customers you look after is numbered “%(number)s”. Check the number on the customer's file, "
    "or transfer the conversation to the customer's advisor."
)


class LinkProspectForm(forms.Form):
    customer_number = forms.CharField(
        label=_("Customer number"),
        max_length=32,
        error_messages={"required": _("Type the number of the customer this contact is.")},
    )

    def __init__(self, *args, advisor: Advisor, **kwargs):
        super().__init__(*args, **kwargs)
        self.advisor = advisor

    def clean_customer_number(self):
        number = self.cleaned_data["customer_number"]
        customer = customer_linkable_by_number(advisor=self.advisor, customer_number=number)
        if customer is None:
            # The same answer for a number that does not exist and for a customer out of reach.
            raise forms.ValidationError(LINK_REFUSED, code="customer_unknown", params={"number": number})
        self.customer = customer
        return number
