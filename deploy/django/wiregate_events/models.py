from django.conf import settings
from django.db import models


class Event(models.Model):
    """One event a gateway journaled: its id is "<gateway>:<seq>", unique, so an upload
    that is retried (the gateway never saw the answer) stores nothing twice."""

    class EventClass(models.TextChoices):
        CRITICAL = "critical"
        TELEMETRY = "telemetry"

    id = models.CharField(primary_key=True, max_length=200)
    gateway = models.CharField(max_length=100)
    seq = models.BigIntegerField()
    board = models.CharField(max_length=128)
    topic = models.TextField()
    payload = models.TextField()
    event_class = models.CharField(max_length=16, choices=EventClass.choices, db_column="class")
    # When the gateway read the line from the board (its clock: see clock_synced).
    ts = models.DateTimeField()
    # Whether the gateway's clock was synchronised then: a Pi without RTC boots in the past.
    clock_synced = models.BooleanField()
    # Whether the broker got it from a replay after an outage rather than live.
    replayed = models.BooleanField(default=False)
    # When this backend stored it.
    stored_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["gateway", "seq"], name="wiregate_event_gateway_seq")]
        indexes = [models.Index(fields=["board", "ts"], name="wiregate_event_board_ts")]
        ordering = ["gateway", "seq"]

    def __str__(self):
        return f"{self.id} {self.topic}={self.payload}"


class GatewayCredential(models.Model):
    """Binds a user (and so its API token) to one gateway id: a token may upload for that gateway
    only. Without it, any token holder could pre-store "<gateway>:<future seq>" and the gateway's
    real events would then be dropped as duplicates."""

    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="wiregate_gateway")
    gateway = models.CharField(max_length=100, unique=True)

    def __str__(self):
        return f"{self.gateway} ({self.user})"
