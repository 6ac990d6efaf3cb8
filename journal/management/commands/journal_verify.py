from datetime import datetime, time

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone
from django.utils.translation import gettext as _

from crm.models import Agency
from journal.chain import journal_verify_agency

PROBLEMS = {
    "missing": _("an entry is missing before it"),
    "link": _("its previous hash is not the hash of the entry before it"),
    "hash": _("its hash is not the SHA-256 of its previous hash and its content"),
    "entry": _("its content is not JSON"),
    "columns": _("its columns disagree with its content"),
    "head": _("the chain's head does not match its last entry"),
}


class Command(BaseCommand):
    help = "Recompute the journal's hash chain of every agency (or one) and name the first broken entry."

    def add_arguments(self, parser):
        parser.add_argument("--agency", help="The agency's code.")
        parser.add_argument("--since", help="Check from the first entry on or after this date (YYYY-MM-DD).")

    def handle(self, *args, **options):
        agencies = Agency.objects.order_by("pk")
        if options["agency"]:
            agencies = agencies.filter(code=options["agency"])
            if not agencies.exists():
                raise CommandError(_("No agency has the code “%(code)s”.") % {"code": options["agency"]})
        since = None
        if options["since"]:
            try:
                day = datetime.strptime(options["since"], "%Y-%m-%d").date()
            except ValueError:
                raise CommandError(
                    _("“%(since)s” is not a date: write it YYYY-MM-DD.") % {"since": options["since"]}
                ) from None
            since = timezone.make_aware(datetime.combine(day, time.min))
        broken = []
        for agency in agencies:
            result = journal_verify_agency(agency_id=agency.pk, since=since)
            if result.broken is None:
                self.stdout.write(
                    _("%(agency)s: %(count)d entries intact, head %(hash)s.")
                    % {"agency": agency.code, "count": result.checked, "hash": result.head_hash or "-"}
                )
                continue
            item = result.broken
            text = _("%(agency)s: the chain breaks at entry %(seq)d (row %(id)s): %(problem)s.") % {
                "agency": agency.code,
                "seq": item.seq,
                "id": item.entry_id if item.entry_id is not None else "-",
                "problem": PROBLEMS[item.problem],
            }
            self.stderr.write(text)
            broken.append(text)
        if broken:
            raise CommandError(" ".join(broken))
