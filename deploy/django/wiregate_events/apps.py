from django.apps import AppConfig


class WiregateEventsConfig(AppConfig):
    name = "wiregate_events"
    verbose_name = "wiregate events"
    default_auto_field = "django.db.models.BigAutoField"
