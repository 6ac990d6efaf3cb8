from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError
from django.utils.translation import gettext as _

from crm.models import Agency
from integrations.models import ApiKey
from integrations.services import api_key_create


class Command(BaseCommand):
    # A plain string: argparse cannot format a lazy translation.
    help = "Create an API key for an integrator's system and print it once; only its hash is kept."

    def add_arguments(self, parser):
        parser.add_argument("--name", required=True, help="The system that will use the key, e.g. “CRM sync”.")
        parser.add_argument(
            "--scopes", required=True, help="Comma-separated scopes: " + ", ".join(ApiKey.Scope.values) + ", or all."
        )
        parser.add_argument("--agency", default="", help="Code of the only agency the key may reach.")
        parser.add_argument("--created-by", default="", help="Username recorded as the key's creator.")

    def handle(self, *args, **options):
        scopes = [scope.strip() for scope in options["scopes"].split(",") if scope.strip()]
        if scopes == ["all"]:
            scopes = list(ApiKey.Scope.values)
        agency = None
        if options["agency"]:
            agency = Agency.objects.filter(code=options["agency"]).first()
            if agency is None:
                raise CommandError(_("No agency with the code “%(code)s”.") % {"code": options["agency"]})
        user = None
        if options["created_by"]:
            user = get_user_model().objects.filter(username=options["created_by"]).first()
            if user is None:
                raise CommandError(_("No user “%(username)s”.") % {"username": options["created_by"]})
        try:
            api_key, key = api_key_create(name=options["name"], scopes=scopes, agency=agency, created_by=user)
        except ValidationError as exc:
            raise CommandError(" ".join(exc.messages)) from exc
        self.stderr.write(
            _("Created API key “%(name)s” (%(prefix)s…) with scopes %(scopes)s. It is shown only now:")
            % {"name": api_key.name, "prefix": api_key.prefix, "scopes": ", ".join(api_key.scopes)}
        )
        self.stdout.write(key)
