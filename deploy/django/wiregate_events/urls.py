from django.urls import path

from .views import EventBatchView, HeartbeatView

urlpatterns = [
    path("api/gateway/events/", EventBatchView.as_view(), name="wiregate-events"),
    path("api/gateway/health/", HeartbeatView.as_view(), name="wiregate-health"),
]
