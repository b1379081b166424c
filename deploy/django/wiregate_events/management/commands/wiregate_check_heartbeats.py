"""Marks gateways silent for three of their heartbeat intervals disconnected, with an e-mail and
the gateway_state_changed signal for each. Run it every minute (deploy/django's timer, or cron)."""
from django.core.management.base import BaseCommand
from django.db import transaction

from wiregate_events.health import mark_silent


class Command(BaseCommand):
    help = "Mark gateways without a heartbeat for three intervals disconnected (and notify)."

    def handle(self, *args, **options):
        with transaction.atomic():
            silent = mark_silent()
        for health in silent:
            self.stdout.write(f"{health.gateway}: disconnected ({health.reasons[0]})")
