from django.contrib import admin

from .models import Event, GatewayCredential


@admin.register(Event)
class EventAdmin(admin.ModelAdmin):
    list_display = ("id", "board", "topic", "payload", "event_class", "ts", "clock_synced", "replayed")
    list_filter = ("gateway", "event_class", "board")
    search_fields = ("id", "topic", "payload")


@admin.register(GatewayCredential)
class GatewayCredentialAdmin(admin.ModelAdmin):
    list_display = ("gateway", "user")
    search_fields = ("gateway", "user__username")
