"""What a heartbeat means: the state derived from a gateway's health report, and what happens
when a gateway's state changes (saved, one e-mail, the gateway_state_changed signal)."""
import logging
from datetime import datetime, timedelta
from datetime import timezone as utc_zone

from django.conf import settings
from django.core.mail import send_mail
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


def degradations(report, now, last_drop_at):
    """Why a gateway whose heartbeat arrived is degraded, in words; [] when it is operational."""
    reasons = []
    mqtt = report.get("mqtt") or {}
    if not mqtt.get("connected"):
        reasons.append("the broker is disconnected")
    if mqtt.get("refusing"):
        reasons.append(f"the broker refuses messages: {mqtt['refusing']}")
    critical = ((report.get("backlog") or {}).get("mqtt") or {}).get("critical") or {}
    sent_at = datetime.fromtimestamp(report["response_time"] / 1000, tz=utc_zone.utc) \
        if isinstance(report.get("response_time"), (int, float)) else now
    oldest = parse_time(critical.get("oldest")) if critical.get("oldest") else None
    if (critical.get("pending") or 0) > 0 and oldest is not None and sent_at - oldest > CRITICAL_WAIT:
        reasons.append(f"{critical['pending']} critical events wait for the broker")
    offline = sorted(name for name, board in (report.get("boards") or {}).items() if not board.get("online"))
    if offline:
        reasons.append("offline: " + ", ".join(offline))
    journal = report.get("journal") or {}
    if journal.get("durable") is False:
        reasons.append("the journal is in memory (the SD card cannot be written)")
    if last_drop_at is not None and now - last_drop_at < DROP_MEMORY:
        reasons.append("events were dropped by the journal's bound")
    return reasons


def dropped_total(report):
    dropped = (report.get("journal") or {}).get("dropped") or {}
    return sum(value for value in dropped.values() if isinstance(value, int))


def heartbeat(gateway, report, interval_sec, now=None):
    """Records a heartbeat (under the row's lock: the caller holds a transaction) and returns the
    row with its derived state."""
    now = now or timezone.now()
    health = GatewayHealth.objects.select_for_update().filter(gateway=gateway).first()
    old_state = health.state if health else None
    if health is None:
        health = GatewayHealth(gateway=gateway, state_since=now)
    total = dropped_total(report)
    # A total that went down is a new journal: its drops are new, but only the ones it counts.
    if total > health.dropped_total or (total and total < health.dropped_total):
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
        notify(health, old_state)
    return health


def mark_silent(now=None):
    """Marks every gateway without a heartbeat for three of its intervals disconnected; returns them."""
    now = now or timezone.now()
    silent = []
    for health in GatewayHealth.objects.select_for_update().exclude(state=GatewayHealth.State.DISCONNECTED):
        deadline = health.last_heartbeat_at + timedelta(seconds=MISSED_INTERVALS * health.interval_sec)
        if now <= deadline:
            continue
        old_state = health.state
        health.state = GatewayHealth.State.DISCONNECTED
        health.state_since = now
        health.reasons = [f"no heartbeat since {health.last_heartbeat_at.isoformat(timespec='seconds')}"
                          f" ({MISSED_INTERVALS} intervals of {health.interval_sec} s): the Pi, its power"
                          " or its uplink is down"]
        health.save()
        notify(health, old_state)
        silent.append(health)
    return silent


def notify(health, old_state):
    """One e-mail to WIREGATE_ALERT_EMAILS, then the signal. A mail server that fails is logged:
    the state is saved either way, and the signal still goes."""
    subject = f"[wiregate] {health.gateway} is {health.state}"
    if health.reasons:
        subject += ": " + "; ".join(health.reasons)[:150]
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
    gateway_state_changed.send(sender=GatewayHealth, gateway=health.gateway, old_state=old_state,
                               new_state=health.state, reasons=list(health.reasons), health=health)
