from django.db import models
from django.db.models import F, Q
from django.utils import timezone
from django.utils.translation import get_language
from django.utils.translation import gettext_lazy as _

from conversations.routing_reasons import ReasonCode, RoutingReason
from crm.models import Advisor, Agency, ContactPoint, Customer

Channel = ContactPoint.Kind
OPEN = ~Q(status="closed")
CLOSED = Q(status="closed")
# A thread whose handler is not its customer's dedicated advisor (or that has none).
HANDLED_FOR_OTHERS = (
    Q(dedicated_advisor__isnull=True) | Q(dedicated_advisor__lt=F("handler")) | Q(dedicated_advisor__gt=F("handler"))
)


class TriageState(models.TextChoices):
    NONE = "", _("Not asked")
    ASKED = "asked", _("Menu sent, waiting for a choice")
    CHOSEN = "chosen", _("Topic chosen")
    HUMAN = "human", _("Handed over to a person")


class Thread(models.Model):
    """One continuous conversation per customer (or per unknown prospect) across every channel."""

    class Status(models.TextChoices):
        OPEN = "open", _("Open")
        WAITING = "waiting", _("Waiting on customer")
        CLOSED = "closed", _("Closed")

    customer = models.OneToOneField(Customer, on_delete=models.PROTECT, null=True, blank=True, related_name="thread")
    prospect = models.OneToOneField(
        ContactPoint,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="prospect_thread",
        help_text=_("The unknown contact who wrote, until an advisor links them to a customer."),
    )
    agency = models.ForeignKey(Agency, on_delete=models.PROTECT, related_name="threads")
    status = models.CharField(_("status"), max_length=16, choices=Status.choices, default=Status.OPEN)
    # None means the thread sits in the agency pool, claimable by the agency's advisors.
    handler = models.ForeignKey(
        Advisor, on_delete=models.SET_NULL, null=True, blank=True, related_name="handled_threads"
    )
    # The customer's dedicated advisor, copied here so that every inbox tab is a condition
    # on this table alone, which one index answers in order. Written with the customer's
    # (customer_reassign) and whenever a thread gets its customer (inbound, linking a
    # prospect); None for a prospect. Indexed by the inbox indexes below.
    dedicated_advisor = models.ForeignKey(
        Advisor, on_delete=models.PROTECT, null=True, blank=True, related_name="+", db_index=False
    )
    # Why the thread is where it is, written in the reader's language when shown (routing_reasons).
    routing_reason_code = models.CharField(_("routing reason"), max_length=32, choices=ReasonCode.choices, blank=True)
    routing_reason_params = models.JSONField(_("routing reason parameters"), default=dict, blank=True)
    routed_at = models.DateTimeField(_("routed at"), null=True, blank=True)
    last_whatsapp_inbound_at = models.DateTimeField(_("last WhatsApp message from the customer"), null=True, blank=True)
    last_sms_inbound_at = models.DateTimeField(_("last SMS from the customer"), null=True, blank=True)
    last_email_inbound_at = models.DateTimeField(_("last email from the customer"), null=True, blank=True)
    last_webchat_inbound_at = models.DateTimeField(_("last web chat message from the customer"), null=True, blank=True)
    last_inbound_channel = models.CharField(_("last channel used by the customer"), max_length=16, blank=True)
    # When the customer was last told, on another channel, of an answer waiting in the web chat
    # (conversations.services.webchat): at most once per CHAT_OFFLINE_NOTIFY_MINUTES.
    chat_offline_notified_at = models.DateTimeField(_("told of a web chat answer at"), null=True, blank=True)
    last_activity_at = models.DateTimeField(_("last activity"), default=timezone.now)
    last_message_preview = models.CharField(_("last message"), max_length=200, blank=True)
    # When the customer started waiting for an answer; cleared by the advisor's reply.
    waiting_since = models.DateTimeField(_("customer waiting since"), null=True, blank=True)
    unread_count = models.PositiveIntegerField(_("unread messages"), default=0)
    created_at = models.DateTimeField(_("created at"), default=timezone.now)
    # Out of hours and triage (conversations.services.auto_replies): when the last automatic
    # reply went (the cooldown), where the menu stands, the topic chosen, and urgency.
    last_auto_reply_at = models.DateTimeField(_("last automatic reply"), null=True, blank=True)
    triage_state = models.CharField(
        _("triage"), max_length=16, choices=TriageState.choices, default=TriageState.NONE, blank=True
    )
    triage_misses = models.PositiveSmallIntegerField(_("unrecognised answers to the menu"), default=0)
    topic = models.ForeignKey(
        "TriageTopic", on_delete=models.SET_NULL, null=True, blank=True, related_name="+", verbose_name=_("topic")
    )
    urgent = models.BooleanField(_("urgent"), default=False)

    class Meta:
        verbose_name = _("thread")
        verbose_name_plural = _("threads")
        ordering = ["-last_activity_at"]
        # The inbox reads one owner's threads newest first, 50 at a time, from the point
        # where the previous page ended: one index range per owner (handler, dedicated
        # advisor, agency pool), open and closed apart. The price: last_activity_at changes
        # with every message, so a thread's update is no longer HOT and writes an entry in
        # each of these whose condition it meets (two or three), besides the others.
        indexes = [
            # Threads someone handles for another (a deputy, a claim from the pool): with the
            # dedicated advisor's own, an advisor's open threads, disjoint and much smaller.
            models.Index(
                fields=["handler", "last_activity_at", "id"],
                condition=OPEN & HANDLED_FOR_OTHERS,
                name="thread_open_handled_for_other",
            ),
            models.Index(
                fields=["dedicated_advisor", "last_activity_at", "id"], condition=OPEN, name="thread_open_by_dedicated"
            ),
            models.Index(
                fields=["agency", "last_activity_at", "id"],
                condition=Q(handler__isnull=True) & OPEN,
                name="thread_open_in_pool",
            ),
            models.Index(
                fields=["handler", "last_activity_at", "id"],
                condition=CLOSED & HANDLED_FOR_OTHERS,
                name="thread_closed_for_other",
            ),
            models.Index(
                fields=["dedicated_advisor", "last_activity_at", "id"],
                condition=CLOSED,
                name="thread_closed_by_dedicated",
            ),
            models.Index(
                fields=["agency", "last_activity_at", "id"],
                condition=Q(handler__isnull=True) & CLOSED,
                name="thread_closed_in_pool",
            ),
            # A supervisor's closed tab: every closed thread of the agency.
            models.Index(fields=["agency", "last_activity_at", "id"], condition=CLOSED, name="thread_closed_by_agency"),
            # The unread badges: only the open threads that have some.
            models.Index(
                fields=["handler"],
                include=["unread_count"],
                condition=Q(unread_count__gt=0) & OPEN,
                name="thread_unread",
            ),
            # The API lists in id order, by handler, dedicated advisor or agency, which an
            # advisor's session reads together (and the foreign keys' deletes).
            models.Index(fields=["handler", "id"], name="thread_handler"),
            models.Index(fields=["dedicated_advisor", "id"], name="thread_dedicated"),
            models.Index(fields=["agency", "id"], name="thread_agency"),
        ]
        constraints = [
            models.CheckConstraint(
                condition=(Q(customer__isnull=False) & Q(prospect__isnull=True))
                | (Q(customer__isnull=True) & Q(prospect__isnull=False)),
                name="thread_customer_xor_prospect",
            ),
            models.CheckConstraint(condition=Q(status__in=["open", "waiting", "closed"]), name="thread_status_valid"),
            models.CheckConstraint(
                condition=Q(triage_state__in=["", "asked", "chosen", "human"]), name="thread_triage_state_valid"
            ),
        ]

    def __str__(self):
        return str(self.customer or self.prospect)

    @property
    def routing_reason(self) -> RoutingReason:
        return RoutingReason(self.routing_reason_code, self.routing_reason_params)

    @routing_reason.setter
    def routing_reason(self, reason: RoutingReason) -> None:
        self.routing_reason_code, self.routing_reason_params = reason.code, reason.params


class Message(models.Model):
    class Direction(models.TextChoices):
        INBOUND = "inbound", _("From the customer")
        OUTBOUND = "outbound", _("To the customer")

    class Status(models.TextChoices):
        QUEUED = "queued", _("Queued")
        SENDING = "sending", _("Sending")
        SENT = "sent", _("Sent")
        DELIVERED = "delivered", _("Delivered")
        READ = "read", _("Read")
        FAILED = "failed", _("Failed")
        UNDELIVERED = "undelivered", _("Undelivered")
        RECEIVED = "received", _("Received")

    class ConsentChange(models.TextChoices):
        NONE = "", _("None")
        OPTED_OUT = "opted_out", _("Opted out")
        OPTED_IN = "opted_in", _("Opted in")

    class Automatic(models.TextChoices):
        """Why Attitré wrote an outbound message itself (author empty): never an advisor's reply."""

        NONE = "", _("Written by an advisor")
        AWAY = "away", _("Advisor away")
        CLOSED = "closed", _("Agency closed")
        MENU = "menu", _("Triage menu")
        TOPIC = "topic", _("Topic acknowledged")
        URGENT = "urgent", _("Emergency instructions")
        HANDOVER = "handover", _("Handed over to a person")

    # Indexed by the timeline index below, whose first column it is.
    thread = models.ForeignKey(Thread, on_delete=models.PROTECT, related_name="messages", db_index=False)
    direction = models.CharField(_("direction"), max_length=16, choices=Direction.choices)
    channel = models.CharField(_("channel"), max_length=16, choices=Channel.choices)
    # Inbound: the contact point that wrote. Outbound: the one the message goes to.
    contact_point = models.ForeignKey(ContactPoint, on_delete=models.PROTECT, related_name="messages")
    author = models.ForeignKey(
        Advisor, on_delete=models.PROTECT, null=True, blank=True, related_name="authored_messages", db_index=False
    )
    body = models.TextField(_("body"), blank=True)
    provider = models.CharField(_("provider"), max_length=32, blank=True)
    provider_message_id = models.CharField(_("provider message id"), max_length=64, null=True, blank=True)
    status = models.CharField(_("status"), max_length=16, choices=Status.choices)
    error_code = models.CharField(_("error code"), max_length=16, blank=True)
    error_message = models.CharField(_("error"), max_length=500, blank=True)
    # Outbound: how many times delivery claimed the message for a call to the provider.
    delivery_attempts = models.PositiveSmallIntegerField(_("delivery attempts"), default=0)
    created_at = models.DateTimeField(_("created at"), default=timezone.now)
    queued_at = models.DateTimeField(null=True, blank=True)
    sending_at = models.DateTimeField(null=True, blank=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    delivered_at = models.DateTimeField(null=True, blank=True)
    read_at = models.DateTimeField(null=True, blank=True)
    failed_at = models.DateTimeField(null=True, blank=True)
    # What WhatsApp adds to an inbound message.
    profile_name = models.CharField(_("profile name"), max_length=200, blank=True)
    wa_id = models.CharField(_("WhatsApp id"), max_length=32, blank=True)
    latitude = models.DecimalField(max_digits=9, decimal_places=6, null=True, blank=True)
    longitude = models.DecimalField(max_digits=9, decimal_places=6, null=True, blank=True)
    location_address = models.CharField(_("location address"), max_length=500, blank=True)
    location_label = models.CharField(_("location label"), max_length=200, blank=True)
    button_text = models.CharField(_("button text"), max_length=200, blank=True)
    button_payload = models.CharField(_("button payload"), max_length=500, blank=True)
    replied_to = models.ForeignKey(
        "self", on_delete=models.SET_NULL, null=True, blank=True, related_name="replies", db_index=False
    )
    replied_to_provider_id = models.CharField(max_length=64, blank=True)
    consent_change = models.CharField(
        _("consent change"), max_length=16, choices=ConsentChange.choices, default="", blank=True
    )
    template = models.ForeignKey(
        "MessageTemplate", on_delete=models.PROTECT, null=True, blank=True, related_name="messages", db_index=False
    )
    template_variables = models.JSONField(default=dict, blank=True)
    automatic = models.CharField(_("automatic reply"), max_length=16, choices=Automatic.choices, default="", blank=True)
    # A menu's choices ({"button": …, "items": [{"id", "title"}]}), rendered per channel at delivery.
    choices = models.JSONField(_("choices"), default=dict, blank=True)
    # Every parameter the provider sent, for audit.
    raw = models.JSONField(default=dict, blank=True)

    class Meta:
        verbose_name = _("message")
        verbose_name_plural = _("messages")
        ordering = ["created_at", "id"]
        # Every index costs each inbound message an insert (the hot path). The optional
        # foreign keys, empty on most messages, are indexed only where set: the lookups
        # by author, replied-to message or template (and PROTECT / SET_NULL on delete)
        # all ask for a value, which the partial index answers.
        indexes = [
            models.Index(fields=["thread", "created_at"], name="message_thread_timeline"),
            models.Index(fields=["author"], condition=Q(author__isnull=False), name="message_author"),
            models.Index(fields=["replied_to"], condition=Q(replied_to__isnull=False), name="message_replied_to"),
            models.Index(fields=["template"], condition=Q(template__isnull=False), name="message_template"),
        ]
        constraints = [
            # NULLs are distinct: outbound messages without an id yet never collide.
            models.UniqueConstraint(fields=["provider", "provider_message_id"], name="message_unique_provider_id"),
            models.CheckConstraint(condition=Q(direction__in=["inbound", "outbound"]), name="message_direction_valid"),
            models.CheckConstraint(
                condition=Q(
                    status__in=["queued", "sending", "sent", "delivered", "read", "failed", "undelivered", "received"]
                ),
                name="message_status_valid",
            ),
            models.CheckConstraint(
                condition=Q(direction="outbound") | (Q(status="received") & Q(author__isnull=True)),
                name="message_inbound_received_no_author",
            ),
            models.CheckConstraint(
                condition=Q(direction="inbound") | ~Q(status="received"), name="message_outbound_not_received"
            ),
            models.CheckConstraint(
                condition=Q(automatic="") | (Q(direction="outbound") & Q(author__isnull=True)),
                name="message_automatic_outbound_no_author",
            ),
        ]

    def __str__(self):
        return f"{self.get_direction_display()} {self.channel} #{self.pk}"

    @property
    def sender_is_elsewhere(self) -> bool:
        """An inbound message that landed in the thread it answered (an email's reply token or
        References) from an address that is not this thread's customer's (or prospect's)."""
        if self.direction != self.Direction.INBOUND or self.contact_point_id is None:
            return False
        thread = self.thread
        if thread.customer_id:
            return self.contact_point.customer_id != thread.customer_id
        return self.contact_point_id != thread.prospect_id


class Attachment(models.Model):
    class State(models.TextChoices):
        PENDING = "pending", _("Downloading")
        STORED = "stored", _("Stored")
        FAILED = "failed", _("Download failed")
        REFUSED = "refused", _("Refused")

    message = models.ForeignKey(Message, on_delete=models.CASCADE, related_name="attachments")
    position = models.PositiveSmallIntegerField(default=0)
    content_type = models.CharField(_("content type"), max_length=128)
    size = models.PositiveBigIntegerField(_("size in bytes"), null=True, blank=True)
    original_url = models.URLField(_("original URL"), max_length=1000, blank=True)
    file = models.FileField(_("file"), upload_to="attachments/%Y/%m/", blank=True)
    # The name the sender gave it (an email's part, an advisor's upload); the stored name is ours.
    file_name = models.CharField(_("file name"), max_length=200, blank=True)
    state = models.CharField(_("state"), max_length=16, choices=State.choices, default=State.PENDING)
    error = models.CharField(_("error"), max_length=500, blank=True)
    attempts = models.PositiveSmallIntegerField(default=0)

    class Meta:
        verbose_name = _("attachment")
        verbose_name_plural = _("attachments")
        ordering = ["message", "position"]
        constraints = [
            models.UniqueConstraint(fields=["message", "position"], name="attachment_unique_position"),
            models.CheckConstraint(
                condition=Q(state__in=["pending", "stored", "failed", "refused"]), name="attachment_state_valid"
            ),
        ]

    def __str__(self):
        return f"{self.content_type} ({self.get_state_display()})"


class Note(models.Model):
    """An advisor's internal note on a thread; never sent to the customer."""

    thread = models.ForeignKey(Thread, on_delete=models.PROTECT, related_name="notes")
    author = models.ForeignKey(Advisor, on_delete=models.PROTECT, related_name="notes")
    body = models.TextField(_("note"))
    created_at = models.DateTimeField(_("created at"), default=timezone.now)

    class Meta:
        verbose_name = _("note")
        verbose_name_plural = _("notes")
        ordering = ["created_at", "id"]
        constraints = [models.CheckConstraint(condition=~Q(body=""), name="note_not_empty")]

    def __str__(self):
        return f"{self.author} · {self.created_at:%Y-%m-%d %H:%M}"


class MessageTemplate(models.Model):
    """An approved WhatsApp template; {{1}}, {{2}}… are its variables."""

    name = models.CharField(_("name"), max_length=200)
    language = models.CharField(_("language"), max_length=16, default="fr")
    content_sid = models.CharField(_("provider content SID"), max_length=64, unique=True)
    body = models.TextField(_("body"))
    variables = models.JSONField(
        _("variables"),
        default=dict,
        blank=True,
        help_text=_('What fills each numbered variable, e.g. {"1": "customer.first_name"}.'),
    )
    is_active = models.BooleanField(_("active"), default=True)

    class Meta:
        verbose_name = _("message template")
        verbose_name_plural = _("message templates")
        ordering = ["name", "language"]
        constraints = [models.UniqueConstraint(fields=["name", "language"], name="template_unique_name_language")]

    def __str__(self):
        return f"{self.name} ({self.language})"


class EmailHeaders(models.Model):
    """What an email message carries beyond its text: the headers that thread it, its
    subject, its HTML (sanitised), the quoted text stripped from the timeline, and the
    raw MIME for audit (in storage, not in the row)."""

    class Noise(models.TextChoices):
        NONE = "", _("None")
        AUTO_REPLY = "auto_reply", _("Automatic reply")
        BULK = "bulk", _("Bulk or mailing-list mail")
        MAILER_DAEMON = "mailer_daemon", _("Mail system message")
        BOUNCE = "bounce", _("Delivery status notification")

    message = models.OneToOneField(Message, on_delete=models.CASCADE, related_name="email")
    # Without its angle brackets; unique per message of ours, looked up by In-Reply-To/References.
    header_message_id = models.CharField(_("Message-ID"), max_length=998, db_index=True)
    in_reply_to = models.CharField(_("In-Reply-To"), max_length=998, blank=True)
    references = models.TextField(_("References"), blank=True)
    subject = models.CharField(_("subject"), max_length=998, blank=True)
    from_header = models.CharField(_("From"), max_length=998, blank=True)
    to_header = models.TextField(_("To"), blank=True)
    cc_header = models.TextField(_("Cc"), blank=True)
    reply_to = models.CharField(_("Reply-To"), max_length=998, blank=True)
    # The text before quotes and signature are stripped (the body is what is left).
    full_text = models.TextField(_("full text"), blank=True)
    # Sanitised with nh3: never the sender's HTML as sent.
    html = models.TextField(_("HTML (sanitised)"), blank=True)
    raw = models.FileField(_("raw MIME"), upload_to="email/%Y/%m/", blank=True)
    raw_size = models.PositiveBigIntegerField(_("raw size in bytes"), null=True, blank=True)
    noise = models.CharField(_("automatic mail"), max_length=16, choices=Noise.choices, default="", blank=True)

    class Meta:
        verbose_name = _("email headers")
        verbose_name_plural = _("email headers")
        constraints = [
            models.CheckConstraint(
                condition=Q(noise__in=["", "auto_reply", "bulk", "mailer_daemon", "bounce"]),
                name="email_headers_noise_valid",
            ),
        ]

    def __str__(self):
        return self.subject or self.header_message_id

    @property
    def reference_ids(self) -> list[str]:
        return [ref for ref in self.references.split() if ref]


class MailboxCursor(models.Model):
    """Where IMAP polling of one mailbox folder is: its UIDVALIDITY and the last UID stored."""

    mailbox = models.CharField(_("mailbox"), max_length=500, unique=True)
    uid_validity = models.PositiveBigIntegerField(_("UIDVALIDITY"), null=True, blank=True)
    last_uid = models.PositiveBigIntegerField(_("last UID stored"), default=0)
    polled_at = models.DateTimeField(_("polled at"), null=True, blank=True)

    class Meta:
        verbose_name = _("mailbox cursor")
        verbose_name_plural = _("mailbox cursors")

    def __str__(self):
        return self.mailbox


class TriageTopic(models.Model):
    """One choice of an agency's triage menu: its label in each language, the words that pick
    it, and whether it is urgent (the urgent pool, the emergency instructions)."""

    agency = models.ForeignKey(Agency, on_delete=models.CASCADE, related_name="triage_topics")
    position = models.PositiveSmallIntegerField(_("order"), default=0)
    # A WhatsApp quick-reply button holds 20 characters (a list row 24).
    label_fr = models.CharField(_("label (French)"), max_length=20)
    label_en = models.CharField(_("label (English)"), max_length=20)
    keywords = models.CharField(
        _("keywords"),
        max_length=300,
        blank=True,
        help_text=_("Comma-separated words that choose this topic when typed, e.g. carte, card, volée, stolen."),
    )
    urgent = models.BooleanField(
        _("urgent"), default=False, help_text=_("Sent to the urgent pool at once, with the emergency numbers.")
    )
    is_active = models.BooleanField(_("active"), default=True)

    class Meta:
        verbose_name = _("triage topic")
        verbose_name_plural = _("triage topics")
        ordering = ["agency", "position", "id"]

    def __str__(self):
        return self.label_fr

    def label(self, language: str) -> str:
        return self.label_fr if language == "fr" else self.label_en

    @property
    def display_label(self) -> str:
        """The label in the reader's language (the inbox's, the admin's)."""
        return self.label((get_language() or "fr")[:2])

    def keyword_list(self) -> list[str]:
        return [word.strip() for word in self.keywords.split(",") if word.strip()]


class AutoReplyText(models.Model):
    """A supervisor's wording of one automatic reply for an agency and a language, replacing
    the default text; {{customer.first_name}}, {{agency.opens}}… are filled when sent."""

    class Kind(models.TextChoices):
        AWAY = "away", _("Advisor away")
        CLOSED = "closed", _("Agency closed")
        MENU = "menu", _("Triage menu question")
        TOPIC = "topic", _("Topic acknowledged")
        URGENT = "urgent", _("Emergency instructions")
        HANDOVER = "handover", _("Handed over to a person")

    agency = models.ForeignKey(Agency, on_delete=models.CASCADE, related_name="auto_reply_texts")
    kind = models.CharField(_("reply"), max_length=16, choices=Kind.choices)
    language = models.CharField(_("language"), max_length=8, choices=Customer.Language.choices)
    body = models.TextField(_("text"))

    class Meta:
        verbose_name = _("automatic reply text")
        verbose_name_plural = _("automatic reply texts")
        ordering = ["agency", "kind", "language"]
        constraints = [
            models.UniqueConstraint(
                fields=["agency", "kind", "language"],
                name="auto_reply_text_unique",
                violation_error_message=_("This agency already has this reply in this language; edit that one."),
                violation_error_code="auto_reply_duplicate",
            ),
            models.CheckConstraint(condition=~Q(body=""), name="auto_reply_text_not_empty"),
        ]

    def __str__(self):
        return f"{self.get_kind_display()} ({self.language})"


class InteractiveContent(models.Model):
    """A menu created in the provider's content store (Twilio's Content API: twilio/quick-reply,
    twilio/list-picker), found again by the digest of what it shows: created once, reused."""

    digest = models.CharField(max_length=64, unique=True)
    content_sid = models.CharField(_("provider content SID"), max_length=64, unique=True)
    kind = models.CharField(_("type"), max_length=32)
    created_at = models.DateTimeField(_("created at"), default=timezone.now)

    class Meta:
        verbose_name = _("interactive content")
        verbose_name_plural = _("interactive contents")

    def __str__(self):
        return f"{self.kind} {self.content_sid}"


class ChatSocket(models.Model):
    """A customer's open chat widget (channels_app.chat), one row per socket: the customer is
    online while one of their thread's rows was stamped lately. Its server process stamps its
    rows together, and deletes each one when the socket closes; a dead process's rows lapse."""

    thread = models.ForeignKey(Thread, on_delete=models.CASCADE, related_name="chat_sockets")
    channel_name = models.CharField(max_length=200, unique=True)
    connected_at = models.DateTimeField(default=timezone.now)
    seen_at = models.DateTimeField(default=timezone.now)

    class Meta:
        verbose_name = _("open chat widget")
        verbose_name_plural = _("open chat widgets")
        indexes = [models.Index(fields=["thread", "seen_at"], name="chat_socket_thread_seen")]

    def __str__(self):
        return f"{self.thread_id} · {self.channel_name}"
