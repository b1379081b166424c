import gzip
import json
import zlib

from django.db import transaction
from rest_framework import status
from rest_framework.authentication import TokenAuthentication
from rest_framework.exceptions import ParseError, UnsupportedMediaType
from rest_framework.parsers import JSONParser
from rest_framework.permissions import IsAuthenticated
from rest_framework.response import Response
from rest_framework.views import APIView

from .models import Event
from .serializers import BatchSerializer

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
        batch = BatchSerializer(data=request.data)
        if not batch.is_valid():
            return self.answer({"error": "malformed batch", "reasons": batch.errors}, status.HTTP_400_BAD_REQUEST)
        gateway = batch.validated_data["gateway"]
        events = batch.validated_data["events"]
        with transaction.atomic():
            ids = [event["id"] for event in events]
            known = set(Event.objects.filter(id__in=ids).values_list("id", flat=True))
            new = [
                Event(id=event["id"], gateway=gateway, seq=event["seq"], board=event["board"], topic=event["topic"],
                      payload=event["payload"], event_class=event["class"], ts=event["ts"],
                      clock_synced=event["clock_synced"], replayed=event["replayed"])
                for event in events if event["id"] not in known
            ]
            # ignore_conflicts: two uploads of the same batch at once still store it once.
            Event.objects.bulk_create(new, ignore_conflicts=True)
        return self.answer({"stored": len(new), "duplicates": len(known)}, status.HTTP_200_OK)

    @staticmethod
    def answer(body, code):
        response = Response(body, status=code)
        response["Accept-Encoding"] = "gzip"
        return response
