"""An approved template's variables: which there are, and their values from the CRM.
Reads only; message_send (conversations.services.outbound) checks and renders them, the
reply composer (conversations.selectors) pre-fills them."""

import re

from conversations.models import MessageTemplate, Thread
from crm.models import Advisor

TEMPLATE_VARIABLE = re.compile(r"\{\{\s*(\d+)\s*\}\}")
# What a template variable may be filled from: never an arbitrary attribute path.
TEMPLATE_SOURCES = {
    "customer.first_name": lambda customer, advisor, agency: customer.first_name if customer else "",
    "customer.last_name": lambda customer, advisor, agency: customer.last_name if customer else "",
    "customer.full_name": lambda customer, advisor, agency: customer.full_name if customer else "",
    "advisor.name": lambda customer, advisor, agency: advisor.display_name,
    "advisor.first_name": lambda customer, advisor, agency: advisor.user.first_name,
    "advisor.last_name": lambda customer, advisor, agency: advisor.user.last_name,
    "agency.name": lambda customer, advisor, agency: agency.name,
}


def template_numbers(template: MessageTemplate) -> list[str]:
    return list(dict.fromkeys(TEMPLATE_VARIABLE.findall(template.body)))


def template_variables_for(*, template: MessageTemplate, thread: Thread, advisor: Advisor) -> dict:
    """The template's variables pre-filled from the CRM, as its `variables` mapping says
    ({"1": "customer.first_name", …}); a variable without a known source is left blank."""
    customer = thread.customer if thread.customer_id else None
    values = {}
    for number in template_numbers(template):
        source = TEMPLATE_SOURCES.get(str((template.variables or {}).get(number, "")))
        values[number] = source(customer, advisor, thread.agency).strip() if source else ""
    return values
