from rest_framework import serializers

from .models import Event

# The most events one request may carry: the gateway's backend.batch_size is 500 by default.
MAX_BATCH = 5000


def no_nul(value):
    # PostgreSQL text cannot hold NUL: refuse it here with a reason, not with a 500.
    if "\x00" in value:
        raise serializers.ValidationError("contains a NUL character")
    return value


class EventSerializer(serializers.Serializer):
    id = serializers.CharField(max_length=200, validators=[no_nul])
    seq = serializers.IntegerField(min_value=1, max_value=2**63 - 1)
    board = serializers.CharField(max_length=128, validators=[no_nul])
    topic = serializers.CharField(validators=[no_nul])
    payload = serializers.CharField(allow_blank=True, trim_whitespace=False, validators=[no_nul])
    # "class" is a Python keyword: the field is declared under its JSON name below.
    ts = serializers.DateTimeField()
    clock_synced = serializers.BooleanField()
    replayed = serializers.BooleanField(required=False, default=False)
    # Honest time (a gateway from before it sends none of these: its events are synced or unsynced).
    boot = serializers.CharField(max_length=64, required=False, allow_blank=True, allow_null=True, default="",
                                 validators=[no_nul])
    mono = serializers.IntegerField(required=False, allow_null=True, default=None, min_value=0, max_value=2**63 - 1)
    time_quality = serializers.ChoiceField(choices=Event.TimeQuality.values, required=False)
    ts_corrected = serializers.DateTimeField(required=False, allow_null=True, default=None)

    def validate(self, data):
        if "time_quality" not in data:
            data["time_quality"] = Event.TimeQuality.SYNCED if data["clock_synced"] else Event.TimeQuality.UNSYNCED
        if (data["time_quality"] == Event.TimeQuality.CORRECTED) != (data.get("ts_corrected") is not None):
            raise serializers.ValidationError({"ts_corrected": "given exactly when time_quality is 'corrected'"})
        data["boot"] = data.get("boot") or ""
        return data

    def get_fields(self):
        fields = super().get_fields()
        fields["class"] = serializers.ChoiceField(choices=Event.EventClass.values)
        return fields


class BatchSerializer(serializers.Serializer):
    gateway = serializers.RegexField(r"^[^\s/+#:]{1,100}$", error_messages={
        "invalid": "must be one MQTT topic level without ':' (the gateway id)"})
    events = EventSerializer(many=True, allow_empty=False, max_length=MAX_BATCH)

    def validate(self, data):
        gateway = data["gateway"]
        seen = set()
        for index, event in enumerate(data["events"]):
            expected = f"{gateway}:{event['seq']}"
            if event["id"] != expected:
                raise serializers.ValidationError({"events": {index: {"id": f"must be '{expected}' (<gateway>:<seq>)"}}})
            if event["id"] in seen:
                raise serializers.ValidationError({"events": {index: {"id": "appears twice in the batch"}}})
            seen.add(event["id"])
        return data


class HeartbeatSerializer(serializers.Serializer):
    """A gateway's heartbeat: its interval and its health report (kept as sent; the fields the
    state is derived from are checked here)."""

    interval_sec = serializers.IntegerField(min_value=1, max_value=3600)
    health = serializers.DictField()

    def validate_health(self, health):
        if not isinstance(health.get("gateway"), str) or not health["gateway"]:
            raise serializers.ValidationError("needs the gateway's id in 'gateway'")
        if not isinstance((health.get("mqtt") or {}).get("connected"), bool):
            raise serializers.ValidationError("needs mqtt.connected, true or false")
        if not isinstance(health.get("boards", {}), dict):
            raise serializers.ValidationError("boards must be an object")
        return health
