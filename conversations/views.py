"""The advisors' inbox: thin views that parse, check access and call one selector or service.

Access: a signed-in user without an active Advisor gets a 403; a thread outside
`thread_visibility_q` is a 404 in every view, reads and actions alike (the selectors
raise DoesNotExist, `advisor_required` answers 404). Actions are
plain POST forms (htmx only enhances them); a refused action comes back to the page
with its reason as a message, never as an error page. A refused reply comes back with
its reason next to the composer and the draft kept, so that nothing typed is lost.
"""

from collections.abc import Callable
from functools import wraps
from pathlib import PurePath

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import FileResponse, Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.safestring import mark_safe
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_POST, require_safe

from conversations import selectors
from conversations.forms import (
    InboxFilterForm,
    LinkProspectForm,
    NoteForm,
    ReplyForm,
    StatusForm,
    TemplateReplyForm,
    TransferForm,
)
from conversations.models import Thread
from conversations.providers.registry import WINDOW_REFUSALS, template_channel
from conversations.selectors import InboxTab, PagePosition
from conversations.services import (
    SendRefused,
    free_text_allowed,
    message_send,
    note_add,
    prospect_link_to_customer,
    thread_claim,
    thread_mark_read,
    thread_set_status,
    thread_transfer,
)
from conversations.services.customers import contact_point_confirm
from conversations.webchat_selectors import chat_customer_online
from crm.models import Advisor

THREAD_PARTS = {"header": "inbox/_thread_header.html", "card": "inbox/_customer_card.html"}
# Served inline; anything else is downloaded, so that a file never runs as a page of ours.
INLINE_CONTENT_TYPES = {"image/jpeg", "image/png", "image/gif", "image/webp"}


def advisor_required(view: Callable) -> Callable:
    """Signed in (else the login page) as an active advisor (else 403); passes the advisor
    on. What the selectors find missing or out of the advisor's sight is a 404."""

    @login_required
    @wraps(view)
    def wrapper(request: HttpRequest, *args, **kwargs):
        try:
            advisor = request.user.advisor
        except Advisor.DoesNotExist:
            raise PermissionDenied(_("Only advisors have an inbox.")) from None
        if not advisor.is_active:
            raise PermissionDenied(_("Your advisor account is inactive."))
        try:
            return view(request, advisor, *args, **kwargs)
        except selectors.NOT_FOUND as missing:
            raise Http404(str(missing)) from None

    return wrapper


def _thread_url(thread_id: int) -> str:
    return reverse("inbox:thread", args=[thread_id])


def _back_to(advisor: Advisor, thread_id: int) -> HttpResponse:
    """To the thread, or to the inbox when the action took it out of the advisor's sight."""
    if selectors.thread_visible_to(advisor=advisor, thread_id=thread_id):
        return redirect(_thread_url(thread_id))
    return redirect("inbox:list")


def _report(request: HttpRequest, error: ValidationError) -> None:
    for text in error.messages:
        messages.error(request, text)


def _report_form(request: HttpRequest, form) -> None:
    for errors in form.errors.values():
        for text in errors:
            messages.error(request, text)


def _tab_and_search(request: HttpRequest) -> tuple[str, str]:
    return InboxFilterForm(request.GET).filters()


@require_GET
@advisor_required
def inbox(request: HttpRequest, advisor: Advisor) -> HttpResponse:
    """A page of the list; with `after`, the rows after that point. Asked for by the list as
    it scrolls (`part=rows`), only those rows and the link to the next ones."""
    tab, search = _tab_and_search(request)
    after = PagePosition.parse(request.GET.get("after", ""))
    rows_only = request.GET.get("part") == "rows"
    page = selectors.inbox_page(advisor=advisor, tab=tab, search=search, after=after, with_unread=not rows_only)
    context = {"advisor": advisor, "page": page, "tabs": InboxTab.choices, "after": after}
    if rows_only:
        return render(request, "inbox/_thread_rows.html", context)
    return render(request, "inbox/inbox.html", context)


@require_GET
@advisor_required
def thread_row(request: HttpRequest, advisor: Advisor, thread_id: int) -> HttpResponse:
    """One row of the list, for the live inbox; 204 when the thread has left this tab or search."""
    tab, search = _tab_and_search(request)
    thread = selectors.inbox_row(advisor=advisor, thread_id=thread_id, tab=tab, search=search)
    if thread is None:
        return HttpResponse(status=204)
    return render(request, "inbox/_thread_row.html", {"advisor": advisor, "thread": thread, "tab": tab, "q": search})


@require_GET
@advisor_required
def thread_detail(request: HttpRequest, advisor: Advisor, thread_id: int) -> HttpResponse:
    """The thread page; with `before`, its timeline from that point back. Asked for by the
    timeline as it scrolls up (`part=timeline`), only those items and the link to earlier ones."""
    before = PagePosition.parse(request.GET.get("before", ""))
    if request.GET.get("part") == "timeline":
        timeline = selectors.timeline_page_for_advisor(advisor=advisor, thread_id=thread_id, before=before)
        context = {"thread_id": thread_id, "items": timeline.items, "earlier": timeline.earlier}
        return render(request, "inbox/_timeline_page.html", context)
    # A GET writes nothing: the page, once shown, posts to thread-read that it was (inbox.js).
    detail = selectors.thread_detail_for_advisor(advisor=advisor, thread_id=thread_id, before=before)
    return render(request, "inbox/thread.html", _thread_context(advisor, detail, detail.thread))


def _thread_context(advisor: Advisor, detail: selectors.ThreadDetail, thread: Thread, **composer) -> dict:
    # Outside the templates' channel's window (WhatsApp's 24 hours) they are all an advisor
    # can send there: show them at once.
    composer.setdefault("templates_open", not free_text_allowed(thread=thread, channel=template_channel().channel))
    # Only for a customer who ever wrote on web chat: the others' pages read nothing more.
    chat_online = chat_customer_online(thread_id=thread.pk) if thread.last_webchat_inbound_at else None
    return {"advisor": advisor, "detail": detail, "thread": thread, "chat_online": chat_online, **composer}


def _reply_refused(
    request: HttpRequest,
    advisor: Advisor,
    thread_id: int,
    reasons: list[str],
    *,
    templates_open: bool = False,
    body: str = "",
    channel: str = "",
) -> HttpResponse:
    """The thread page again, the refusal next to the composer and the draft kept; the
    templates opened when WhatsApp allows nothing else. 200, so that htmx swaps it in."""
    detail = selectors.thread_detail_for_advisor(advisor=advisor, thread_id=thread_id)
    context = _thread_context(
        advisor,
        detail,
        detail.thread,
        reply_errors=reasons,
        reply_body=body,
        reply_channel=channel,
        templates_open=templates_open,
    )
    response = render(request, "inbox/thread.html", context)
    # The address stays the thread's, not the form's (a reload must not post again).
    response["HX-Replace-Url"] = _thread_url(thread_id)
    return response


def _form_reasons(form) -> list[str]:
    return [text for errors in form.errors.values() for text in errors]


@require_GET
@advisor_required
def thread_part(request: HttpRequest, advisor: Advisor, thread_id: int, part: str) -> HttpResponse:
    """The header (status, handler, actions) or the customer card, for the live thread page."""
    template = THREAD_PARTS.get(part)
    if template is None:
        return HttpResponse(status=404)
    detail = selectors.thread_detail_for_advisor(advisor=advisor, thread_id=thread_id, with_timeline=False)
    return render(request, template, _thread_context(advisor, detail, detail.thread))


@require_GET
@advisor_required
def thread_event_item(request: HttpRequest, advisor: Advisor, thread_id: int, event_id: int) -> HttpResponse:
    """The timeline item an event created or changed, as it is now; 204 when it has none."""
    item = selectors.timeline_item_for_event(advisor=advisor, thread_id=thread_id, event_id=event_id)
    if item is None:
        return HttpResponse(status=204)
    return render(request, "inbox/_timeline_item.html", {"item": item})


@require_GET
@advisor_required
def message_notice(request: HttpRequest, advisor: Advisor, message_id: int) -> JsonResponse:
    """The text of a new message's browser notification (events carry none)."""
    notice = selectors.message_notice_for_advisor(advisor=advisor, message_id=message_id)
    response = JsonResponse(notice)
    response.headers["Cache-Control"] = "private, no-store"
    return response


@require_GET
@advisor_required
def attachment_file(request: HttpRequest, advisor: Advisor, attachment_id: int) -> FileResponse:
    """A downloaded attachment, to those who may see its thread only (not a public media URL)."""
    attachment = selectors.attachment_for_advisor(advisor=advisor, attachment_id=attachment_id)
    inline = attachment.content_type in INLINE_CONTENT_TYPES
    response = FileResponse(
        attachment.file.open("rb"),
        as_attachment=not inline,
        # The sender's name for it, if any: the stored name is ours.
        filename=attachment.file_name or PurePath(attachment.file.name).name,
        content_type=attachment.content_type if inline else "application/octet-stream",
    )
    response.headers["Cache-Control"] = "private, max-age=3600"
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response


# The sender's HTML, sanitised, alone in a sandbox: no script, no form, no frame, no remote
# load; only our copies of its inline images. Same-origin (without scripts it cannot act on
# it) so that the session cookie fetches those images; links open outside the sandbox.
EMAIL_ORIGINAL_POLICY = (
    "sandbox allow-same-origin allow-popups allow-popups-to-escape-sandbox; default-src 'none'; "
    "img-src 'self'; style-src 'unsafe-inline'; frame-ancestors 'none'; form-action 'none'"
)


@require_safe
@advisor_required
def message_email_original(request: HttpRequest, advisor: Advisor, message_id: int) -> HttpResponse:
    """An email as its sender formatted it (sanitised HTML, else its full text), or with
    ?raw=1 its raw MIME as a download, for the advisor who may see its thread."""
    headers = selectors.email_for_advisor(advisor=advisor, message_id=message_id)
    if request.GET.get("raw"):
        if not headers.raw:
            raise Http404("No raw copy of this email.")
        response = FileResponse(
            headers.raw.open("rb"),
            as_attachment=True,
            filename=f"email-{message_id}.eml",
            content_type="application/octet-stream",
        )
    else:
        response = render(
            request,
            "inbox/email_original.html",
            {"headers": headers, "html": mark_safe(selectors.email_html_for_display(headers))},  # noqa: S308 (nh3)
        )
        response.headers["Content-Security-Policy"] = EMAIL_ORIGINAL_POLICY
    response.headers["Cache-Control"] = "private"
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response


@require_POST
@advisor_required
def thread_note(request: HttpRequest, advisor: Advisor, thread_id: int) -> HttpResponse:
    thread = selectors.thread_for_advisor(advisor=advisor, thread_id=thread_id)
    form = NoteForm(request.POST)
    if not form.is_valid():
        _report_form(request, form)
        return redirect(_thread_url(thread.pk))
    try:
        note_add(thread=thread, author=advisor, body=form.cleaned_data["body"])
    except ValidationError as error:
        _report(request, error)
    else:
        messages.success(request, _("Note added. It stays internal and is never sent to the customer."))
    return redirect(_thread_url(thread.pk))


@require_POST
@advisor_required
def thread_read(request: HttpRequest, advisor: Advisor, thread_id: int) -> HttpResponse:
    """The "Mark as read" button; or, with `shown`, the thread page reporting that it is on
    screen (inbox.js), which reads the thread for its handler only: 204, no message."""
    thread = selectors.thread_for_advisor(advisor=advisor, thread_id=thread_id)
    if request.POST.get("shown"):
        if thread.handler_id == advisor.pk:
            thread_mark_read(thread=thread, by=advisor)
        return HttpResponse(status=204)
    thread_mark_read(thread=thread, by=advisor)
    messages.success(request, _("Marked as read."))
    return redirect(_thread_url(thread.pk))


@require_POST
@advisor_required
def thread_status(request: HttpRequest, advisor: Advisor, thread_id: int) -> HttpResponse:
    thread = selectors.thread_for_advisor(advisor=advisor, thread_id=thread_id)
    form = StatusForm(request.POST)
    if not form.is_valid():
        _report_form(request, form)
        return redirect(_thread_url(thread.pk))
    try:
        thread = thread_set_status(thread=thread, by=advisor, status=form.cleaned_data["status"])
    except ValidationError as error:
        _report(request, error)
    else:
        messages.success(
            request,
            _("Conversation closed.") if thread.status == Thread.Status.CLOSED else _("Conversation reopened."),
        )
    return redirect(_thread_url(thread.pk))


@require_POST
@advisor_required
def thread_take(request: HttpRequest, advisor: Advisor, thread_id: int) -> HttpResponse:
    thread = selectors.thread_for_advisor(advisor=advisor, thread_id=thread_id)
    try:
        thread_claim(thread=thread, advisor=advisor)
    except ValidationError as error:
        _report(request, error)
    else:
        messages.success(request, _("You handle this conversation now."))
    return redirect(_thread_url(thread.pk))


@require_POST
@advisor_required
def thread_hand_over(request: HttpRequest, advisor: Advisor, thread_id: int) -> HttpResponse:
    thread = selectors.thread_for_advisor(advisor=advisor, thread_id=thread_id)
    form = TransferForm(request.POST, candidates=selectors.transfer_candidates(thread=thread))
    if not form.is_valid():
        _report_form(request, form)
        return redirect(_thread_url(thread.pk))
    colleague = form.cleaned_data["to"]
    try:
        thread_transfer(thread=thread, by=advisor, to=colleague, reason=form.cleaned_data["reason"])
    except ValidationError as error:
        _report(request, error)
        return redirect(_thread_url(thread.pk))
    messages.success(request, _("Conversation transferred to %(advisor)s.") % {"advisor": colleague.display_name})
    return _back_to(advisor, thread.pk)


@require_POST
@advisor_required
def thread_link_customer(request: HttpRequest, advisor: Advisor, thread_id: int) -> HttpResponse:
    thread = selectors.thread_for_advisor(advisor=advisor, thread_id=thread_id)
    form = LinkProspectForm(request.POST, advisor=advisor)
    if not form.is_valid():
        _report_form(request, form)
        return redirect(_thread_url(thread.pk))
    try:
        thread = prospect_link_to_customer(thread=thread, customer=form.customer, by=advisor)
    except ValidationError as error:
        _report(request, error)
        return redirect(_thread_url(thread.pk))
    messages.success(
        request,
        _(
            "This contact is now %(customer)s's; the conversation joined theirs. The number stays unconfirmed, "
            "and replies go to %(customer)s's own numbers, until their dedicated advisor confirms it."
        )
        % {"customer": form.customer.full_name},
    )
    return _back_to(advisor, thread.pk)


@require_POST
@advisor_required
def thread_contact_confirm(
    request: HttpRequest, advisor: Advisor, thread_id: int, contact_point_id: int
) -> HttpResponse:
    contact = selectors.thread_contact_point_for_advisor(
        advisor=advisor, thread_id=thread_id, contact_point_id=contact_point_id
    )
    try:
        contact_point_confirm(contact_point=contact, by=advisor)
    except ValidationError as error:
        _report(request, error)
    else:
        messages.success(
            request,
            _("%(address)s is confirmed as %(customer)s's; replies may go there now.")
            % {"address": contact.address, "customer": contact.customer.full_name},
        )
    return redirect(_thread_url(thread_id))


@require_POST
@advisor_required
def thread_reply(request: HttpRequest, advisor: Advisor, thread_id: int) -> HttpResponse:
    thread = selectors.thread_for_advisor(advisor=advisor, thread_id=thread_id)
    form = ReplyForm(request.POST)
    if not form.is_valid():
        return _reply_refused(request, advisor, thread.pk, _form_reasons(form), body=form.data.get("body", ""))
    body, channel = form.cleaned_data["body"], form.cleaned_data["channel"]
    try:
        message_send(
            thread=thread, author=advisor, body=body, channel=channel or None, subject=form.cleaned_data["subject"]
        )
    except SendRefused as refusal:
        return _reply_refused(
            request,
            advisor,
            thread.pk,
            refusal.messages,
            templates_open=refusal.code in WINDOW_REFUSALS,
            body=body,
            channel=channel,
        )
    messages.success(request, _("Reply queued for sending; its ticks show when it is sent and delivered."))
    return redirect(_thread_url(thread.pk))


@require_POST
@advisor_required
def thread_reply_template(request: HttpRequest, advisor: Advisor, thread_id: int) -> HttpResponse:
    thread = selectors.thread_for_advisor(advisor=advisor, thread_id=thread_id)
    form = TemplateReplyForm(request.POST)
    if not form.is_valid():
        return _reply_refused(request, advisor, thread.pk, _form_reasons(form), templates_open=True)
    try:
        # Approved templates go on their channel (WhatsApp), whatever channel the customer last used.
        message_send(
            thread=thread,
            author=advisor,
            template=form.cleaned_data["template"],
            variables=form.cleaned_data["variables"],
            channel=template_channel().channel,
        )
    except SendRefused as refusal:
        return _reply_refused(request, advisor, thread.pk, refusal.messages, templates_open=True)
    messages.success(request, _("Template queued for sending; its ticks show when it is sent and delivered."))
    return redirect(_thread_url(thread.pk))


@require_POST
@advisor_required
def thread_message_retry(request: HttpRequest, advisor: Advisor, thread_id: int, message_id: int) -> HttpResponse:
    """Send a failed reply again as a new message; the failed one stays, for the record."""
    failed = selectors.failed_message_for_advisor(advisor=advisor, thread_id=thread_id, message_id=message_id)
    try:
        message_send(
            thread=failed.thread,
            author=advisor,
            # A template's body is rendered from the template again, never sent as free text.
            body="" if failed.template_id else failed.body,
            template=failed.template,
            variables=failed.template_variables if failed.template_id else None,
            channel=failed.channel,
        )
    except SendRefused as refusal:
        return _reply_refused(
            request, advisor, failed.thread_id, refusal.messages, templates_open=refusal.code in WINDOW_REFUSALS
        )
    messages.success(request, _("Sent again as a new message; the failed one stays in the conversation."))
    return redirect(_thread_url(failed.thread_id))
