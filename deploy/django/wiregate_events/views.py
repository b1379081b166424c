import json
import logging
import zlib

from django.db import transaction
from rest_framework import status
from rest_framework.authentication import TokenAuthentication
from rest_framework.exceptions import ParseError, UnsupportedMediaType
from rest_framework.parsers import JSONParser
from rest_framework.permissions import IsAuthenticated
from rest_framework.response import Response
from rest_framework.views import APIView

from . import health as gateway_health
from .models import Event
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
        with transaction.atomic():
            ids = [event["id"] for event in events]
            known = {row.id: row for row in Event.objects.filter(id__in=ids)}
            new = [
                Event(id=event["id"], gateway=gateway, seq=event["seq"], board=event["board"], topic=event["topic"],
                      payload=event["payload"], event_class=event["class"], ts=event["ts"],
                      clock_synced=event["clock_synced"], replayed=event["replayed"])
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
            # ignore_conflicts: two uploads of the same batch at once still store it once.
            Event.objects.bulk_create(fresh, ignore_conflicts=True)
        return self.answer({"stored": len(fresh), "duplicates": len(known)}, status.HTTP_200_OK)

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
