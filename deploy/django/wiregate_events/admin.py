from django.contrib import admin

from .models import Event, GatewayCredential, GatewayHealth


@admin.register(Event)
class EventAdmin(admin.ModelAdmin):
    list_display = ("id", "board", "topic", "payload", "event_class", "ts", "clock_synced", "replayed")
    list_filter = ("gateway", "event_class", "board")
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
