from django.urls import path

from .views import EventBatchView

urlpatterns = [
    path("api/gateway/events/", EventBatchView.as_view(), name="wiregate-events"),
]
