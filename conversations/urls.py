from django.urls import path

from conversations import views

app_name = "inbox"

urlpatterns = [
    path("", views.inbox, name="list"),
    path("threads/<int:thread_id>/", views.thread_detail, name="thread"),
    path("threads/<int:thread_id>/row/", views.thread_row, name="thread-row"),
    path("threads/<int:thread_id>/parts/<slug:part>/", views.thread_part, name="thread-part"),
    path("threads/<int:thread_id>/events/<int:event_id>/", views.thread_event_item, name="thread-event"),
    path("threads/<int:thread_id>/reply/", views.thread_reply, name="thread-reply"),
    path("threads/<int:thread_id>/reply/template/", views.thread_reply_template, name="thread-reply-template"),
    path("threads/<int:thread_id>/messages/<int:message_id>/retry/", views.thread_message_retry, name="thread-retry"),
    path("threads/<int:thread_id>/note/", views.thread_note, name="thread-note"),
    path("threads/<int:thread_id>/read/", views.thread_read, name="thread-read"),
    path("threads/<int:thread_id>/status/", views.thread_status, name="thread-status"),
    path("threads/<int:thread_id>/claim/", views.thread_take, name="thread-claim"),
    path("threads/<int:thread_id>/transfer/", views.thread_hand_over, name="thread-transfer"),
    path("threads/<int:thread_id>/link/", views.thread_link_customer, name="thread-link"),
    path(
        "threads/<int:thread_id>/contact-points/<int:contact_point_id>/confirm/",
        views.thread_contact_confirm,
        name="thread-contact-confirm",
    ),
    path("attachments/<int:attachment_id>/", views.attachment_file, name="attachment"),
    path("messages/<int:message_id>/notice/", views.message_notice, name="message-notice"),
    path("messages/<int:message_id>/email/", views.message_email_original, name="message-email"),
]
