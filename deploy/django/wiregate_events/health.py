"""What a heartbeat means: the state derived from a gateway's health report, and what happens
when a gateway's state changes (saved, one e-mail, the gateway_state_changed signal)."""
import logging
import re
from datetime import datetime, timedelta
from datetime import timezone as utc_zone

from django.conf import settings
from django.core.mail import send_mail
from django.db import transaction
from django.db.models import DateTimeField, ExpressionWrapper, F
from django.utils import timezone

from .models import GatewayHealth
from .signals import gateway_state_changed

logger = logging.getLogger("wiregate_events")

# A critical event older than this still waiting for the broker degrades the gateway.
CRITICAL_WAIT = timedelta(seconds=30)
# Events dropped keep the gateway degraded this long after the last drop.
DROP_MEMORY = timedelta(hours=1)
# Heartbeats missed before a gateway is disconnected.
MISSED_INTERVALS = 3


def parse_time(text):
    try:
        value = datetime.fromisoformat(str(text).replace("Z", "+00:00"))
    except ValueError:
        return None
    return value if value.tzinfo else value.replace(tzinfo=utc_zone.utc)


def section(report, key):
    """A sub-object of the report; {} when it is missing or not an object (never a 500)."""
    value = report.get(key)
    return value if isinstance(value, dict) else {}


def degradations(report, now, last_drop_at):
    """Why a gateway whose heartbeat arrived is degraded, in words; [] when it is operational."""
    reasons = []
    mqtt = section(report, "mqtt")
    if not mqtt.get("connected"):
        reasons.append("the broker is disconnected")
    if mqtt.get("refusing"):
        reasons.append(f"the broker refuses messages: {mqtt['refusing']}")
    mqtt_backlog = section(section(report, "backlog"), "mqtt")
    critical = mqtt_backlog.get("critical") if isinstance(mqtt_backlog.get("critical"), dict) else {}
    sent_at = now
    if isinstance(report.get("response_time"), (int, float)):
        try:
            sent_at = datetime.fromtimestamp(report["response_time"] / 1000, tz=utc_zone.utc)
        except (OverflowError, OSError, ValueError):
            pass
    oldest = parse_time(critical.get("oldest")) if critical.get("oldest") else None
    pending = critical.get("pending") if isinstance(critical.get("pending"), int) else 0
    if pending > 0 and oldest is not None and sent_at - oldest > CRITICAL_WAIT:
        reasons.append(f"{pending} critical events wait for the broker")
    # Adopted boards stay known, offline, once unplugged: only the configured ones count.
    offline = sorted(str(name) for name, board in section(report, "boards").items()
                     if isinstance(board, dict) and not board.get("online") and not board.get("adopted"))
    if offline:
        reasons.append("offline: " + ", ".join(offline))
    journal = section(report, "journal")
    if journal.get("durable") is False:
        reasons.append("the journal is in memory (the SD card cannot be written)")
    if last_drop_at is not None and now - last_drop_at < DROP_MEMORY:
        reasons.append("events were dropped by the journal's bound")
    return reasons


def dropped_total(report):
    dropped = section(section(report, "journal"), "dropped")
    return sum(value for value in dropped.values() if isinstance(value, int) and value > 0)


def heartbeat(gateway, report, interval_sec, now=None):
    """Records a heartbeat (under the row's lock: the caller holds a transaction) and returns the
    row with its derived state."""
    now = now or timezone.now()
    # The row first (two first heartbeats at once must not both insert), then its lock.
    _, created = GatewayHealth.objects.get_or_create(
        gateway=gateway, defaults={"state": GatewayHealth.State.OPERATIONAL, "state_since": now,
                                   "last_heartbeat_at": now, "dropped_total": dropped_total(report)})
    health = GatewayHealth.objects.select_for_update().get(gateway=gateway)
    old_state = None if created else health.state
    total = dropped_total(report)
    # Drops are news when the total grows. A first heartbeat sets the baseline (a journal's
    # total counts since it was created, maybe months ago); a total of 0 is a new journal (or
    # none read), not a drop, and the next one counts from it.
    if not created and total > health.dropped_total:
        health.last_drop_at = now
    health.dropped_total = total
    health.report = report
    health.interval_sec = interval_sec
    health.last_heartbeat_at = now
    reasons = degradations(report, now, health.last_drop_at)
    new_state = GatewayHealth.State.DEGRADED if reasons else GatewayHealth.State.OPERATIONAL
    changed = new_state != old_state
    if changed:
        health.state_since = now
    health.state = new_state
    health.reasons = reasons
    health.save()
    # A gateway's first heartbeat is news only when something is wrong.
    if changed and (old_state is not None or new_state != GatewayHealth.State.OPERATIONAL):
        notify_after_commit(health, old_state)
    return health


def mark_silent(now=None):
    """Marks every gateway without a heartbeat for three of its intervals disconnected; returns them."""
    now = now or timezone.now()
    silent = []
    deadline = ExpressionWrapper(
        F("last_heartbeat_at") + F("interval_sec") * timedelta(seconds=MISSED_INTERVALS), output_field=DateTimeField())
    # Only the overdue rows are locked, and none a heartbeat holds: a heartbeat being recorded
    # is not silence, and healthy gateways' heartbeats never wait for this.
    overdue = (GatewayHealth.objects.exclude(state=GatewayHealth.State.DISCONNECTED)
               .annotate(deadline=deadline).filter(deadline__lt=now)
               .select_for_update(skip_locked=True))
    for health in overdue:
        old_state = health.state
        health.state = GatewayHealth.State.DISCONNECTED
        health.state_since = now
        health.reasons = [f"no heartbeat since {health.last_heartbeat_at.isoformat(timespec='seconds')}"
                          f" ({MISSED_INTERVALS} intervals of {health.interval_sec} s): the Pi, its power"
                          " or its uplink is down"]
        health.save()
        notify_after_commit(health, old_state)
        silent.append(health)
    return silent


def notify_after_commit(health, old_state):
    """Notifies once the change is committed: never of a change that rolled back, never with the
    row's lock held while a mail server answers, and a failing receiver cannot undo it."""
    transaction.on_commit(lambda: notify(health, old_state))


def one_line(text):
    """A header-safe line: no control character (a reason may quote a broker's or board's text)."""
    return re.sub(r"[\x00-\x1f\x7f-\x9f]+", " ", text)


def notify(health, old_state):
    """One e-mail to WIREGATE_ALERT_EMAILS, then the signal. A mail server that fails is logged:
    the state is saved either way, and the signal still goes."""
    subject = f"[wiregate] {health.gateway} is {health.state}"
    if health.reasons:
        subject += ": " + "; ".join(health.reasons)[:150]
    subject = one_line(subject)
    body = "\n".join([
        f"Gateway {health.gateway} is now {health.state} (it was {old_state or 'not known before'}).",
        "",
        *[f"- {reason}" for reason in health.reasons],
        "",
        f"Last heartbeat: {health.last_heartbeat_at.isoformat(timespec='seconds')}",
    ])
    recipients = list(getattr(settings, "WIREGATE_ALERT_EMAILS", []))
    if recipients:
        try:
            send_mail(subject[:200], body, getattr(settings, "WIREGATE_ALERT_FROM", None), recipients)
        except Exception:  # noqa: BLE001 - any failure of the mail server is logged, never raised
            logger.exception("cannot send the e-mail about gateway %s becoming %s", health.gateway, health.state)
    logger.warning("gateway %s: %s -> %s %s", health.gateway, old_state, health.state, health.reasons)
    # send_robust: a receiver that raises is logged, and the others still hear of it.
    for receiver, result in gateway_state_changed.send_robust(sender=GatewayHealth, gateway=health.gateway, old_state=old_state,
                               new_state=health.state, reasons=list(health.reasons), health=health):
        if isinstance(result, Exception):
            logger.error("gateway_state_changed receiver %r failed: %r", receiver, result)
