from django.contrib import admin

from .models import Event, GatewayCredential, GatewayHealth, TimeCorrection


@admin.register(Event)
class EventAdmin(admin.ModelAdmin):
    list_display = ("id", "board", "topic", "payload", "event_class", "best_time", "ts", "time_quality",
                    "ts_corrected", "stored_at", "replayed")
    list_filter = ("gateway", "event_class", "board", "time_quality")
    # An alarm's history in the order it happened, as well as it is known (see Event.HISTORY_ORDER).
    ordering = Event.HISTORY_ORDER
    search_fields = ("id", "topic", "payload")


@admin.register(GatewayCredential)
class GatewayCredentialAdmin(admin.ModelAdmin):
    list_display = ("gateway", "user")
    search_fields = ("gateway", "user__username")


@admin.register(GatewayHealth)
class GatewayHealthAdmin(admin.ModelAdmin):
    list_display = ("gateway", "state", "state_since", "last_heartbeat_at", "reasons")
    list_filter = ("state",)
    search_fields = ("gateway",)
    readonly_fields = ("gateway", "state", "state_since", "reasons", "last_heartbeat_at", "interval_sec", "report",
                       "dropped_total", "last_drop_at")


@admin.register(TimeCorrection)
class TimeCorrectionAdmin(admin.ModelAdmin):
    list_display = ("gateway", "boot", "from_mono", "to_mono", "from_seq", "to_seq", "offset_ns", "received_at")
    list_filter = ("gateway",)
