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
    # When this backend stored it (the received time).
    stored_at = models.DateTimeField(auto_now_add=True)

    class TimeQuality(models.TextChoices):
        SYNCED = "synced"          # recorded with a synchronised clock: ts is right
        CORRECTED = "corrected"    # recorded unsynchronised, repaired: ts_corrected is right
        UNSYNCED = "unsynced"      # recorded unsynchronised, not (yet) repaired: ts is the board's guess

    # The Pi's boot it was recorded in, and nanoseconds since that boot (CLOCK_BOOTTIME): within a
    # boot, the true order whatever the wall clock did.
    boot = models.CharField(max_length=64, blank=True, default="")
    mono = models.BigIntegerField(null=True, blank=True)
    time_quality = models.CharField(max_length=16, choices=TimeQuality.choices, default=TimeQuality.UNSYNCED)
    # The true time of an event recorded with a wrong clock, once the gateway knew it.
    ts_corrected = models.DateTimeField(null=True, blank=True)
    # The best time known, the history's order: ts_corrected, else ts when synced, else stored_at.
    best_time = models.DateTimeField(null=True, db_index=True)

    # The admin's order: best time, then within a boot its monotonic order (the API's, views.history_order,
    # orders a boot wholly by its monotonic time, which a step of the wall clock cannot disturb).
    HISTORY_ORDER = ("best_time", "boot", "mono", "seq")

    class Meta:
        constraints = [models.UniqueConstraint(fields=["gateway", "seq"], name="wiregate_event_gateway_seq")]
        indexes = [models.Index(fields=["board", "ts"], name="wiregate_event_board_ts"),
                   # A correction record's rows, and the history's order within a boot.
                   models.Index(fields=["gateway", "boot", "mono"], name="wiregate_event_boot_mono")]
        ordering = ["gateway", "seq"]

    def __str__(self):
        return f"{self.id} {self.topic}={self.payload}"


class TimeCorrection(models.Model):
    """A gateway's correction record: the events of `boot` numbered from_seq..to_seq that were
    sent unsynchronised were off by offset_ns. Kept, so that such an event arriving after its
    correction (a retried batch) is repaired as it is stored."""

    gateway = models.CharField(max_length=100)
    boot = models.CharField(max_length=64)
    # The stretch, in nanoseconds since that boot, from_mono included, to_mono not: what decides.
    from_mono = models.BigIntegerField()
    to_mono = models.BigIntegerField()
    # The sequence numbers of its events, for people (a line read in the moment of a clock change
    # may be numbered just outside).
    from_seq = models.BigIntegerField()
    to_seq = models.BigIntegerField()
    offset_ns = models.BigIntegerField()
    received_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["gateway", "boot", "from_mono"],
                                               name="wiregate_correction_stretch")]

    def __str__(self):
        return f"{self.gateway} {self.boot} {self.from_mono}..{self.to_mono} {self.offset_ns:+d} ns"


class GatewayCredential(models.Model):
    """Binds a user (and so its API token) to one gateway id: a token may upload for that gateway
    only. Without it, any token holder could pre-store "<gateway>:<future seq>" and the gateway's
    real events would then be dropped as duplicates."""

    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="wiregate_gateway")
    gateway = models.CharField(max_length=100, unique=True)

    def __str__(self):
        return f"{self.gateway} ({self.user})"


class GatewayHealth(models.Model):
    """Each gateway's last heartbeat (POST /api/gateway/health/) and the state this backend derives
    from it: operational, degraded (the gateway says something is wrong), disconnected (no heartbeat
    for three of its intervals: the Pi, its power or its uplink is down). See health.py."""

    class State(models.TextChoices):
        OPERATIONAL = "operational"
        DEGRADED = "degraded"
        DISCONNECTED = "disconnected"

    gateway = models.CharField(max_length=100, unique=True)
    state = models.CharField(max_length=16, choices=State.choices)
    # When `state` last changed, by this backend's clock.
    state_since = models.DateTimeField()
    # Why it is degraded or disconnected, in words for the admin and the e-mails.
    reasons = models.JSONField(default=list, blank=True)
    # When the last heartbeat arrived, by this backend's clock (the gateway's may be wrong).
    last_heartbeat_at = models.DateTimeField()
    # The gateway's heartbeat interval: three of them without one is "disconnected".
    interval_sec = models.PositiveIntegerField(default=60)
    # The last health report as the gateway sent it.
    report = models.JSONField(default=dict)
    # Events the gateway's journal dropped since it was created, as of the last heartbeat, and when
    # that total last grew: "events dropped" degrades the gateway for an hour after each drop.
    dropped_total = models.BigIntegerField(default=0)
    last_drop_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["gateway"]
        verbose_name_plural = "gateway health"

    def __str__(self):
        return f"{self.gateway}: {self.state}"
