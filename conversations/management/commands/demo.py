import os

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError
from django.utils.translation import gettext as _

from conversations.demo import DEFAULT_PASSWORD, demo_build

BASE_URL = "http://127.0.0.1:8000"


class Command(BaseCommand):
    # A plain string: argparse cannot format a lazy translation.
    help = (
        "Build the demo bank (agencies, advisors, customers, conversations). "
        "Safe to run again: it adds only what is missing, and sets every demo account's password to "
        "the DEMO_PASSWORD environment variable (default “attitre-demo”)."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--allow-production",
            action="store_true",
            help="Build the demo even with DEBUG off (it creates staff accounts with a known password).",
        )

    def handle(self, *args, **options):
        if not settings.DEBUG and not options["allow_production"]:
            raise CommandError(
                _(
                    "Refusing to build demo data with DEBUG off: it creates staff accounts with a known "
                    "password. Use --allow-production if this really is a demo deployment."
                )
            )
        password = os.environ.get("DEMO_PASSWORD") or DEFAULT_PASSWORD
        try:
            summary = demo_build(password=password)
        except ValidationError as exc:
            raise CommandError(
                _(
                    "The demo data could not be built, nothing was written: %(error)s The demo needs that address; "
                    "free it, or build the demo in a fresh database (SQLITE_PATH=/tmp/demo.sqlite3 python manage.py "
                    "migrate, then demo with the same SQLITE_PATH)."
                )
                % {"error": " ".join(exc.messages)}
            ) from exc

        self.stdout.write(
            self.style.SUCCESS(
                _("Demo bank ready: %(agencies)d agencies, %(customers)d customers, %(threads)d conversations.")
                % {"agencies": summary.agencies, "customers": summary.customers, "threads": summary.threads}
            )
        )
        self.stdout.write(
            _("Log in at %(inbox)s (advisors) or %(admin)s (supervisor):")
            % {"inbox": f"{BASE_URL}/inbox/", "admin": f"{BASE_URL}/admin/"}
        )
        width = max(len(account.username) for account in summary.accounts)
        for account in summary.accounts:
            line = f"  {account.username:<{width}}  {account.role}, {account.agency}"
            if account.deputies:
                line += " " + _("(deputy: %(deputies)s)") % {"deputies": ", ".join(account.deputies)}
            self.stdout.write(line)
        self.stdout.write(
            _("Password for every account: %(password)s (from DEMO_PASSWORD; set it and run demo again to change it).")
            % {"password": password}
        )
