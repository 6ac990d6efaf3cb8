from datetime import datetime
from pathlib import Path

from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError
from django.utils.translation import gettext as _

from crm.models import Advisor, Agency, Customer
from journal.export import journal_export


def _date(value: str, option: str):
    try:
        return datetime.strptime(value, "%Y-%m-%d").date()
    except ValueError:
        raise CommandError(
            _("%(option)s “%(value)s” is not a date: write it YYYY-MM-DD.") % {"option": option, "value": value}
        ) from None


class Command(BaseCommand):
    help = (
        "Export one customer's, one advisor's or one agency's messages over a date range for a regulator: "
        "a ZIP of .eml files and a signed manifest of their journal hashes. The export is journalled."
    )

    def add_arguments(self, parser):
        parser.add_argument("--agency", required=True, help="The agency's code.")
        scope = parser.add_mutually_exclusive_group()
        scope.add_argument("--customer", help="A customer number (default: the whole agency).")
        scope.add_argument("--advisor", help="An advisor's username.")
        parser.add_argument("--from", dest="start", required=True, help="First day, YYYY-MM-DD.")
        parser.add_argument("--to", dest="end", required=True, help="Last day, YYYY-MM-DD.")
        parser.add_argument("--output", required=True, help="The ZIP file to write.")
        parser.add_argument("--by", required=True, help="The username of whoever asks for it (journalled).")

    def handle(self, *args, **options):
        agency = Agency.objects.filter(code=options["agency"]).first()
        if agency is None:
            raise CommandError(_("No agency has the code “%(code)s”.") % {"code": options["agency"]})
        user = get_user_model().objects.filter(username=options["by"], is_active=True).first()
        if user is None:
            raise CommandError(_("No active user is called “%(name)s”.") % {"name": options["by"]})
        customer = advisor = None
        if options["customer"]:
            customer = Customer.objects.filter(agency=agency, customer_number=options["customer"]).first()
            if customer is None:
                raise CommandError(
                    _("The agency has no customer number “%(number)s”.") % {"number": options["customer"]}
                )
        if options["advisor"]:
            advisor = Advisor.objects.filter(agency=agency, user__username=options["advisor"]).first()
            if advisor is None:
                raise CommandError(_("The agency has no advisor “%(name)s”.") % {"name": options["advisor"]})
        output = Path(options["output"])
        if output.exists():
            raise CommandError(_("%(path)s exists already; name another file.") % {"path": output})
        try:
            export = journal_export(
                agency=agency,
                customer=customer,
                advisor=advisor,
                start=_date(options["start"], "--from"),
                end=_date(options["end"], "--to"),
                by=user,
            )
        except ValidationError as exc:
            raise CommandError(" ".join(exc.messages)) from exc
        output.write_bytes(export.archive)
        self.stdout.write(
            _("%(count)d messages written to %(path)s (journal entry %(seq)d).")
            % {"count": len(export.manifest["messages"]), "path": output, "seq": export.entry.seq}
        )
