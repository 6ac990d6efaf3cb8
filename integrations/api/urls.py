"""The integrators' REST API: /api/v1/…, its OpenAPI schema and its documentation."""

from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView

from integrations.api import advisors, customers, events, templates, threads

v1 = [
    path("customers/", customers.CustomerListCreateApi.as_view(), name="customers"),
    path("customers/<int:pk>/", customers.CustomerDetailApi.as_view(), name="customer"),
    path("customers/<int:pk>/reassign/", customers.CustomerReassignApi.as_view(), name="customer-reassign"),
    path("customers/<int:pk>/contact-points/", customers.ContactPointListCreateApi.as_view(), name="contact-points"),
    path(
        "customers/<int:pk>/contact-points/<int:contact_point_id>/",
        customers.ContactPointConsentApi.as_view(),
        name="contact-point",
    ),
    path("advisors/", advisors.AdvisorListApi.as_view(), name="advisors"),
    path("advisors/<int:pk>/", advisors.AdvisorDetailApi.as_view(), name="advisor"),
    path("threads/", threads.ThreadListApi.as_view(), name="threads"),
    path("threads/<int:pk>/", threads.ThreadDetailApi.as_view(), name="thread"),
    path("threads/<int:pk>/transfer/", threads.ThreadTransferApi.as_view(), name="thread-transfer"),
    path("threads/<int:pk>/claim/", threads.ThreadClaimApi.as_view(), name="thread-claim"),
    path("threads/<int:pk>/messages/", threads.MessageListSendApi.as_view(), name="thread-messages"),
    path("templates/", templates.TemplateListApi.as_view(), name="templates"),
    path("events/", events.EventFeedApi.as_view(), name="events"),
]

urlpatterns = [
    path("v1/", include((v1, "api"), namespace="api")),
    path("schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path("docs/", SpectacularSwaggerSplitView.as_view(url_name="api-schema"), name="api-docs"),
]
