from django.urls import include, path

urlpatterns = [path("", include("wiregate_events.urls"))]
