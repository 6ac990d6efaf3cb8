"""The integrators' REST API: /api/v1/…, its OpenAPI schema and its documentation."""

from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from conversations import api as conversations_api
from crm import api as crm_api

v1 = [
    path("customers/", crm_api.CustomerListCreateApi.as_view(), name="customers"),
    path("customers/<int:pk>/", crm_api.CustomerDetailApi.as_view(), name="customer"),
    path("customers/<int:pk>/reassign/", crm_api.CustomerReassignApi.as_view(), name="customer-reassign"),
    path("customers/<int:pk>/contact-points/", crm_api.ContactPointListCreateApi.as_view(), name="contact-points"),
    path(
        "customers/<int:pk>/contact-points/<int:contact_point_id>/",
        crm_api.ContactPointConsentApi.as_view(),
        name="contact-point",
    ),
    path("advisors/", crm_api.AdvisorListApi.as_view(), name="advisors"),
    path("advisors/<int:pk>/", crm_api.AdvisorDetailApi.as_view(), name="advisor"),
    path("threads/", conversations_api.ThreadListApi.as_view(), name="threads"),
    path("threads/<int:pk>/", conversations_api.ThreadDetailApi.as_view(), name="thread"),
    path("threads/<int:pk>/transfer/", conversations_api.ThreadTransferApi.as_view(), name="thread-transfer"),
    path("threads/<int:pk>/claim/", conversations_api.ThreadClaimApi.as_view(), name="thread-claim"),
    path("threads/<int:pk>/messages/", conversations_api.MessageListSendApi.as_view(), name="thread-messages"),
    path("templates/", conversations_api.TemplateListApi.as_view(), name="templates"),
    path("events/", conversations_api.EventFeedApi.as_view(), name="events"),
]

urlpatterns = [
    path("v1/", include((v1, "api"), namespace="api")),
    path("schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path("docs/", SpectacularSwaggerView.as_view(url_name="api-schema"), name="api-docs"),
]
