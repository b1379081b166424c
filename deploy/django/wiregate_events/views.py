import json
import logging
import zlib
from datetime import datetime, timedelta
from datetime import timezone as dt_timezone

from django.db import DatabaseError, transaction
from django.db.models import Case, F, Min, When, Window
from django.utils import timezone
from rest_framework import status
from rest_framework.authentication import TokenAuthentication
from rest_framework.exceptions import ParseError, UnsupportedMediaType
from rest_framework.parsers import JSONParser
from rest_framework.permissions import IsAuthenticated
from rest_framework.response import Response
from rest_framework.views import APIView

from . import health as gateway_health
from .models import Event, TimeCorrection
from .serializers import BatchSerializer, HeartbeatSerializer

logger = logging.getLogger("wiregate_events")

# What must match for a repeated id to be the same event. `replayed` may differ: the gateway sends
# a batch again after a restart, when what was live is a replay.
COMPARED = ("seq", "board", "topic", "payload", "event_class", "ts", "clock_synced")

# A decompressed body larger than this is refused: a small gzip must not expand into gigabytes.
MAX_BODY = 64 * 1024 * 1024


class GzipJSONParser(JSONParser):
    """JSON, plain or with Content-Encoding: gzip (the gateway compresses once it sees
    "Accept-Encoding: gzip" in an answer, RFC 7694)."""

    def parse(self, stream, media_type=None, parser_context=None):
        request = parser_context["request"]
        encoding = request.META.get("HTTP_CONTENT_ENCODING", "identity").strip().lower()
        body = stream.read() if stream is not None else b""
        if encoding == "gzip":
            try:
                inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
                body = inflater.decompress(body, MAX_BODY)
                if inflater.unconsumed_tail:
                    raise ParseError("the decompressed body is over 64 MiB")
            except zlib.error as error:
                raise ParseError(f"not valid gzip: {error}")
        elif encoding not in ("identity", ""):
            raise UnsupportedMediaType(f"Content-Encoding {encoding}")
        try:
            return json.loads(body.decode("utf-8"))
        except (UnicodeDecodeError, ValueError) as error:
            raise ParseError(f"not valid JSON: {error}")


def best_time(event):
    """The history's order: the corrected time, else the device time when its clock was right,
    else the time this backend received it."""
    if event.ts_corrected is not None:
        return event.ts_corrected
    if event.time_quality == Event.TimeQuality.SYNCED:
        return event.ts
    return event.stored_at


# Bounds of a correction record: a record outside them is kept as a plain event, never a 500 (which
# the gateway would retry for ever, holding up every upload behind it).
MAX_OFFSET_NS = 100 * 365 * 86400 * 10**9
MAX_SEQ = 2**63 - 1


def corrections_for(gateway, events):
    """The stored correction records of the boots of these events, by boot (one query per batch)."""
    boots = {event.boot for event in events if event.boot and event.time_quality == Event.TimeQuality.UNSYNCED}
    found = {}
    for correction in TimeCorrection.objects.filter(gateway=gateway, boot__in=boots):
        found.setdefault(correction.boot, []).append(correction)
    return found


def repair_on_arrival(event, corrections):
    """An unsynced event arriving after its stretch's correction record is repaired as it is stored."""
    if event.time_quality == Event.TimeQuality.UNSYNCED and event.boot and event.mono is not None:
        for correction in corrections.get(event.boot, []):
            if correction.from_mono <= event.mono < correction.to_mono:
                try:
                    event.ts_corrected = event.ts + timedelta(microseconds=correction.offset_ns // 1000)
                    event.time_quality = Event.TimeQuality.CORRECTED
                except OverflowError:
                    pass
                break
    event.best_time = best_time(event)


def apply_correction(gateway, event):
    """Applies the correction record an event carries, if it is one (topic <base>/<gateway>/time/corrections):
    the events of its boot read within its monotonic range and sent unsynced were off by offset_ns."""
    if event.board != "time" or not event.topic.endswith(f"/{gateway}/time/corrections"):
        return
    try:
        record = json.loads(event.payload)
        boot = record["boot"]
        first, last = int(record["from_mono"]), int(record["to_mono"])
        from_seq, to_seq, offset = int(record["from_seq"]), int(record["to_seq"]), int(record["offset_ns"])
        if not isinstance(boot, str) or not 0 < len(boot) <= 64 or "\x00" in boot:
            raise ValueError("boot must be 1 to 64 characters")
        if not 0 <= first < last <= MAX_SEQ or not 0 < from_seq <= to_seq <= MAX_SEQ:
            raise ValueError("an empty or out-of-range stretch")
        if abs(offset) > MAX_OFFSET_NS:
            raise ValueError("an offset over a hundred years")
        shift = timedelta(microseconds=offset // 1000)
    except (ValueError, KeyError, TypeError, OverflowError) as error:
        logger.warning("gateway %s sent a correction record that does not parse (%s): %r", gateway, error,
                       event.payload[:200])
        return
    try:
        # Its own savepoint: a shift past year 9999 for some row fails here, not the whole batch.
        with transaction.atomic():
            correction, created = TimeCorrection.objects.get_or_create(
                gateway=gateway, boot=boot, from_mono=first,
                defaults={"to_mono": last, "from_seq": from_seq, "to_seq": to_seq, "offset_ns": offset})
            if not created and last > correction.to_mono:
                # The same stretch, longer now (it was still open when first told): kept whole.
                TimeCorrection.objects.filter(pk=correction.pk).update(
                    to_mono=last, to_seq=max(to_seq, correction.to_seq))
            # Never a time past what Python's datetime holds (PostgreSQL would store year 10000, and
            # every later read of the row fail).
            latest = datetime.max.replace(tzinfo=dt_timezone.utc) - max(shift, timedelta(0))
            earliest = datetime.min.replace(tzinfo=dt_timezone.utc) + max(-shift, timedelta(0))
            repaired = Event.objects.filter(gateway=gateway, boot=boot, mono__gte=first, mono__lt=last,
                                            time_quality=Event.TimeQuality.UNSYNCED, ts__lte=latest,
                                            ts__gte=earliest)
            count = repaired.update(ts_corrected=F("ts") + shift, best_time=F("ts") + shift,
                                    time_quality=Event.TimeQuality.CORRECTED)
    except DatabaseError as error:
        logger.warning("gateway %s: a correction record cannot be applied (%s): %r", gateway, error,
                       event.payload[:200])
        return
    logger.info("gateway %s: %d events of boot %s corrected by %+.3f s", gateway, count, boot, offset / 1e9)


def history_order(rows):
    """Within a boot, its monotonic order: the true order, whatever the wall clock did (a step
    back while synchronised included). Boots, which never overlap, by the best time of their
    first event; an event without a boot (a gateway from before) by its own best time."""
    boot_start = Case(
        When(boot="", then=F("best_time")),
        default=Window(Min("best_time"), partition_by=[F("gateway"), F("boot")]))
    return rows.annotate(boot_start=boot_start).order_by("boot_start", "boot", "mono", "seq")


def history_item(row):
    return {"id": row.id, "seq": row.seq, "board": row.board, "topic": row.topic, "payload": row.payload,
            "class": row.event_class, "ts": row.ts.isoformat(), "clock_synced": row.clock_synced,
            "boot": row.boot, "mono": row.mono, "time_quality": row.time_quality,
            "ts_corrected": row.ts_corrected.isoformat() if row.ts_corrected else None,
            "best_time": row.best_time.isoformat() if row.best_time else None,
            "received_at": row.stored_at.isoformat()}


class EventBatchView(APIView):
    """POST a batch of a gateway's events; stores the new ones, all or none, and answers 200
    also when every id was stored before (a retry), so the gateway moves on."""

    authentication_classes = [TokenAuthentication]
    permission_classes = [IsAuthenticated]
    parser_classes = [GzipJSONParser]

    def post(self, request):
        # Before the events are looked at: a token bound to another gateway gets a 403 (which the
        # gateway treats as its own configuration problem), never a 400 for an event (quarantined).
        claimed = request.data.get("gateway") if isinstance(request.data, dict) else None
        credential = getattr(request.user, "wiregate_gateway", None)
        if credential is None or credential.gateway != claimed:
            logger.warning("upload refused: the token of %s is not bound to gateway %r", request.user, claimed)
            return self.answer({"error": f"this token may not upload for gateway '{claimed}'"}, status.HTTP_403_FORBIDDEN)
        batch = BatchSerializer(data=request.data)
        if not batch.is_valid():
            return self.answer({"error": "malformed batch", "reasons": batch.errors}, status.HTTP_400_BAD_REQUEST)
        gateway = batch.validated_data["gateway"]
        events = batch.validated_data["events"]
        received = timezone.now()
        with transaction.atomic():
            ids = [event["id"] for event in events]
            known = {row.id: row for row in Event.objects.filter(id__in=ids)}
            new = [
                Event(id=event["id"], gateway=gateway, seq=event["seq"], board=event["board"], topic=event["topic"],
                      payload=event["payload"], event_class=event["class"], ts=event["ts"],
                      clock_synced=event["clock_synced"], replayed=event["replayed"], boot=event["boot"],
                      mono=event["mono"], time_quality=event["time_quality"], ts_corrected=event["ts_corrected"],
                      stored_at=received)
                for event in events
            ]
            conflicts = [event.id for event in new if event.id in known
                         and any(getattr(event, field) != getattr(known[event.id], field) for field in COMPARED)]
            if conflicts:
                # The same id with other content: two gateways cloned with one id, or a journal that
                # numbered again. Never "stored": the gateway keeps the event aside and says so.
                logger.error("gateway %s sent ids already stored with other content: %s", gateway, conflicts[:10])
                return self.answer({"error": "conflict: these ids are stored with other content", "ids": conflicts[:100]},
                                   status.HTTP_409_CONFLICT)
            fresh = [event for event in new if event.id not in known]
            corrections = corrections_for(gateway, fresh)
            for event in fresh:
                repair_on_arrival(event, corrections)
            # ignore_conflicts: two uploads of the same batch at once still store it once.
            Event.objects.bulk_create(fresh, ignore_conflicts=True)
            # Sent again with its time now known (a retry after the gateway's clock was set).
            for event in new:
                stored = known.get(event.id)
                if stored and stored.time_quality == Event.TimeQuality.UNSYNCED \
                        and event.time_quality == Event.TimeQuality.CORRECTED:
                    Event.objects.filter(id=event.id).update(
                        time_quality=event.time_quality, ts_corrected=event.ts_corrected, best_time=event.ts_corrected)
            # Correction records (the gateway's <base>/<gateway>/time/corrections events) repair
            # what this backend stored before the gateway knew its clock.
            for event in fresh:
                apply_correction(gateway, event)
        return self.answer({"stored": len(fresh), "duplicates": len(known)}, status.HTTP_200_OK)

    def get(self, request):
        """The token's gateway's history, in the best time order known (see Event.HISTORY_ORDER);
        ?board= and ?class= narrow it, ?limit= (at most 1000, 100 by default) bounds it."""
        credential = getattr(request.user, "wiregate_gateway", None)
        if credential is None:
            return Response({"error": "this token is not bound to a gateway"}, status=status.HTTP_403_FORBIDDEN)
        rows = Event.objects.filter(gateway=credential.gateway)
        if request.query_params.get("board"):
            rows = rows.filter(board=request.query_params["board"])
        if request.query_params.get("class"):
            rows = rows.filter(event_class=request.query_params["class"])
        try:
            limit = max(1, min(1000, int(request.query_params.get("limit", "100"))))
        except ValueError:
            return Response({"error": "limit must be a number"}, status=status.HTTP_400_BAD_REQUEST)
        return Response({"events": [history_item(row) for row in history_order(rows)[:limit]]})

    @staticmethod
    def answer(body, code):
        response = Response(body, status=code)
        response["Accept-Encoding"] = "gzip"
        return response


class HeartbeatView(APIView):
    """POST a gateway's heartbeat: keeps its health report and answers the state derived from it
    (operational or degraded); a change of state is notified (health.notify)."""

    authentication_classes = [TokenAuthentication]
    permission_classes = [IsAuthenticated]
    parser_classes = [GzipJSONParser]

    def post(self, request):
        heartbeat = HeartbeatSerializer(data=request.data)
        if not heartbeat.is_valid():
            return Response({"error": "malformed heartbeat", "reasons": heartbeat.errors}, status.HTTP_400_BAD_REQUEST)
        claimed = heartbeat.validated_data["health"]["gateway"]
        credential = getattr(request.user, "wiregate_gateway", None)
        if credential is None or credential.gateway != claimed:
            logger.warning("heartbeat refused: the token of %s is not bound to gateway %r", request.user, claimed)
            return Response({"error": f"this token may not report for gateway '{claimed}'"}, status.HTTP_403_FORBIDDEN)
        with transaction.atomic():
            row = gateway_health.heartbeat(claimed, heartbeat.validated_data["health"],
                                           heartbeat.validated_data["interval_sec"])
        return Response({"state": row.state, "reasons": row.reasons}, status=status.HTTP_200_OK)
