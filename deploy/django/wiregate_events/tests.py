"""The receiving endpoint, through Django's test client over a real PostgreSQL."""
import gzip
import json

from django.contrib.auth.models import User
from django.test import TransactionTestCase
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from django.core.management import call_command
from io import StringIO

from .models import Event, GatewayCredential

URL = "/api/gateway/events/"


def event(seq, gateway="house-1", **overrides):
    body = {
        "id": f"{gateway}:{seq}", "seq": seq, "board": "front-door", "topic": f"wiregate/{gateway}/front-door/door",
        "payload": "open", "class": "critical", "ts": "2026-11-29T13:19:05.123Z", "clock_synced": True, "replayed": False,
    }
    body.update(overrides)
    return body


class EventBatchTests(TransactionTestCase):
    def setUp(self):
        self.client = self.client_for("house-1")

    @staticmethod
    def client_for(gateway):
        out = StringIO()
        call_command("wiregate_gateway", gateway, stdout=out)
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Token {out.getvalue().strip()}")
        return client

    def post(self, body, **headers):
        return self.client.post(URL, data=json.dumps(body), content_type="application/json", **headers)

    def test_a_batch_is_stored_with_every_field(self):
        response = self.post({"gateway": "house-1", "events": [event(1), event(2, payload="21.5", **{"class": "telemetry"})]})
        self.assertEqual(response.status_code, 200, response.content)
        self.assertEqual(response.json(), {"stored": 2, "duplicates": 0})
        self.assertEqual(response["Accept-Encoding"], "gzip")
        stored = Event.objects.get(id="house-1:2")
        self.assertEqual((stored.gateway, stored.seq, stored.board, stored.payload, stored.event_class),
                         ("house-1", 2, "front-door", "21.5", "telemetry"))
        self.assertEqual(stored.ts.isoformat(), "2026-11-29T13:19:05.123000+00:00")
        self.assertTrue(stored.clock_synced)
        self.assertFalse(stored.replayed)

    def test_a_retried_batch_answers_2xx_and_stores_nothing_twice(self):
        batch = {"gateway": "house-1", "events": [event(n) for n in range(1, 11)]}
        self.assertEqual(self.post(batch).json(), {"stored": 10, "duplicates": 0})
        again = self.post(batch)
        self.assertEqual(again.status_code, 200)
        self.assertEqual(again.json(), {"stored": 0, "duplicates": 10})
        overlapping = self.post({"gateway": "house-1", "events": [event(n) for n in range(8, 14)]})
        self.assertEqual(overlapping.json(), {"stored": 3, "duplicates": 3})
        self.assertEqual(Event.objects.count(), 13)
        self.assertEqual(list(Event.objects.values_list("seq", flat=True)), list(range(1, 14)))

    def test_a_gzip_body_is_accepted(self):
        body = gzip.compress(json.dumps({"gateway": "house-1", "events": [event(1)]}).encode())
        response = self.client.post(URL, data=body, content_type="application/json", HTTP_CONTENT_ENCODING="gzip")
        self.assertEqual(response.status_code, 200, response.content)
        self.assertEqual(Event.objects.count(), 1)
        broken = self.client.post(URL, data=b"\x1f\x8bnot gzip", content_type="application/json", HTTP_CONTENT_ENCODING="gzip")
        self.assertEqual(broken.status_code, 400)
        self.assertIn("not valid gzip", broken.json()["detail"])
        unknown = self.client.post(URL, data=b"{}", content_type="application/json", HTTP_CONTENT_ENCODING="br")
        self.assertEqual(unknown.status_code, 415)

    def test_malformed_batches_answer_400_with_the_reason_and_store_nothing(self):
        # A batch without this token's gateway id is a 403 before its events are looked at.
        for body in [{"events": [event(1)]}, {"gateway": "house 1", "events": [event(1)]}, ["house-1"]]:
            self.assertEqual(self.post(body).status_code, 403, body)
        cases = [
            ({"gateway": "house-1", "events": []}, ["events"]),
            ({"gateway": "house-1", "events": "x"}, ["events"]),
            ({"gateway": "house-1", "events": [event(1, id="other:1")]}, ["events"]),
            ({"gateway": "house-1", "events": [event(1), event(1)]}, ["events"]),
            ({"gateway": "house-1", "events": [event(0)]}, ["events"]),
            ({"gateway": "house-1", "events": [event(1, **{"class": "urgent"})]}, ["events"]),
            ({"gateway": "house-1", "events": [event(1, ts="yesterday")]}, ["events"]),
            ({"gateway": "house-1", "events": [event(1, payload="a\x00b")]}, ["events"]),
            ({"gateway": "house-1", "events": [{k: v for k, v in event(1).items() if k != "board"}]}, ["events"]),
        ]
        for body, fields in cases:
            response = self.post(body)
            self.assertEqual(response.status_code, 400, (body, response.content))
            self.assertEqual(response.json()["error"], "malformed batch")
            self.assertEqual(sorted(response.json()["reasons"]), fields, (body, response.json()))
        self.assertEqual(Event.objects.count(), 0)
        mismatch = self.post({"gateway": "house-1", "events": [event(1), event(2, id="house-1:3")]})
        self.assertIn("must be 'house-1:2'", json.dumps(mismatch.json()))
        not_json = self.client.post(URL, data=b"{", content_type="application/json")
        self.assertEqual(not_json.status_code, 400)

    def test_a_batch_is_all_or_nothing(self):
        # One bad event in a batch of good ones: nothing of it is stored.
        self.assertEqual(self.post({"gateway": "house-1", "events": [event(1), event(2, ts="bad")]}).status_code, 400)
        self.assertEqual(Event.objects.count(), 0)

    def test_a_token_is_required(self):
        anonymous = APIClient().post(URL, data=json.dumps({"gateway": "house-1", "events": [event(1)]}),
                                     content_type="application/json")
        self.assertEqual(anonymous.status_code, 401)
        wrong = APIClient()
        wrong.credentials(HTTP_AUTHORIZATION="Token not-a-token")
        self.assertEqual(wrong.post(URL, data="{}", content_type="application/json").status_code, 401)
        self.assertEqual(Event.objects.count(), 0)

    def test_two_gateways_do_not_collide(self):
        self.post({"gateway": "house-1", "events": [event(1)]})
        barn = self.client_for("barn").post(URL, data=json.dumps({"gateway": "barn", "events": [event(1, gateway="barn")]}),
                                            content_type="application/json")
        self.assertEqual(barn.status_code, 200, barn.content)
        self.assertEqual(sorted(Event.objects.values_list("id", flat=True)), ["barn:1", "house-1:1"])

    def test_a_token_uploads_for_its_own_gateway_only(self):
        # The regression: any token holder could pre-store "house-1:<future seq>", and the real
        # events were then dropped as duplicates.
        barn = self.client_for("barn")
        forged = barn.post(URL, data=json.dumps({"gateway": "house-1", "events": [event(1000)]}), content_type="application/json")
        self.assertEqual(forged.status_code, 403, forged.content)
        self.assertIn("house-1", forged.json()["error"])
        unbound = APIClient()
        unbound.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=User.objects.create_user('someone')).key}")
        self.assertEqual(unbound.post(URL, data=json.dumps({"gateway": "house-1", "events": [event(1)]}),
                                      content_type="application/json").status_code, 403)
        self.assertEqual(Event.objects.count(), 0)

    def test_a_repeated_id_with_other_content_is_a_conflict_never_stored(self):
        # Two gateways cloned from one SD image with the same id: each would drop the other's events.
        self.assertEqual(self.post({"gateway": "house-1", "events": [event(1), event(2)]}).status_code, 200)
        clash = self.post({"gateway": "house-1", "events": [event(2, payload="closed"), event(3)]})
        self.assertEqual(clash.status_code, 409, clash.content)
        self.assertEqual(clash.json()["ids"], ["house-1:2"])
        self.assertEqual(Event.objects.count(), 2, "nothing of a conflicting batch is stored")
        self.assertEqual(Event.objects.get(id="house-1:2").payload, "open")
        # The same content again (replayed may differ after a restart) is a duplicate, answered 200.
        again = self.post({"gateway": "house-1", "events": [event(2, replayed=True), event(3)]})
        self.assertEqual(again.json(), {"stored": 1, "duplicates": 1})

    def test_the_management_command_binds_and_rotates(self):
        out = StringIO()
        call_command("wiregate_gateway", "attic", stdout=out)
        first = out.getvalue().strip()
        out = StringIO()
        call_command("wiregate_gateway", "attic", stdout=out)
        self.assertEqual(out.getvalue().strip(), first)
        out = StringIO()
        call_command("wiregate_gateway", "attic", "--rotate", stdout=out)
        self.assertNotEqual(out.getvalue().strip(), first)
        self.assertEqual(GatewayCredential.objects.get(gateway="attic").user.username, "attic")
        # A person's account that happens to carry a gateway's name is not bound silently.
        User.objects.create_user("barn-owner-named-barn2")
        User.objects.create_user("barn2")
        with self.assertRaises(Exception):
            call_command("wiregate_gateway", "barn2", stdout=StringIO())
        self.assertFalse(GatewayCredential.objects.filter(gateway="barn2").exists())


HEALTH_URL = "/api/gateway/health/"


def report(gateway="house-1", connected=True, boards=None, dropped=0, critical=None, durable=True):
    return {
        "gateway": gateway, "version": "0.7.0", "response_time": 1_764_000_000_000,
        "mqtt": {"connected": connected, "queued": 0},
        "backlog": {"mqtt": {"critical": critical or {"pending": 0}, "telemetry": {"pending": 0}}},
        "boards": boards if boards is not None else {"hall": {"online": True, "lines": 3}},
        "journal": {"bytes": 4096, "max_bytes": 1 << 30, "durable": durable,
                    "dropped": {"critical": 0, "telemetry": dropped}, "quarantined": {}},
        "clock": {"synchronised": True},
    }


class HonestTimeTests(TransactionTestCase):
    """Issue 18: device time, corrected time, quality and received time; correction records; the
    history in the best order known."""

    BOOT = "6f1c2d3e-0000-4000-8000-00000000b007"

    def setUp(self):
        self.client = EventBatchTests.client_for("house-1")

    def post(self, events):
        return self.client.post(URL, data=json.dumps({"gateway": "house-1", "events": events}),
                                content_type="application/json")

    def offline(self, seq, ts, mono, **overrides):
        # Recorded 3 hours behind, unsynchronised.
        return event(seq, ts=ts, clock_synced=False, boot=self.BOOT, mono=mono, time_quality="unsynced", **overrides)

    def test_each_time_field_is_stored_and_an_old_gateways_events_get_a_quality(self):
        response = self.post([
            event(1, boot=self.BOOT, mono=5_000_000_000, time_quality="synced"),
            self.offline(2, "2026-12-04T09:00:00.000Z", 6_000_000_000),
            event(3, clock_synced=False, time_quality="corrected", ts="2026-12-04T09:00:01.000Z",
                  ts_corrected="2026-12-04T12:00:01.000Z", boot=self.BOOT, mono=7_000_000_000),
            event(4, clock_synced=False),  # a gateway from before: no time fields
        ])
        self.assertEqual(response.status_code, 200, response.content)
        rows = {row.seq: row for row in Event.objects.all()}
        self.assertEqual((rows[1].time_quality, rows[1].best_time, rows[1].boot, rows[1].mono),
                         ("synced", rows[1].ts, self.BOOT, 5_000_000_000))
        self.assertEqual(rows[2].time_quality, "unsynced")
        self.assertIsNone(rows[2].ts_corrected)
        self.assertEqual(rows[3].ts_corrected.isoformat(), "2026-12-04T12:00:01+00:00")
        self.assertEqual(rows[3].best_time, rows[3].ts_corrected)
        self.assertEqual((rows[4].time_quality, rows[4].boot, rows[4].mono), ("unsynced", "", None))
        # "corrected" without its time (or a time without "corrected") is a malformed event.
        bad = self.post([event(5, time_quality="corrected")])
        self.assertEqual(bad.status_code, 400)

    def test_a_correction_record_repairs_what_was_stored_and_what_comes_after(self):
        self.post([self.offline(1, "2026-12-04T09:00:00.000Z", 10_000_000_000),
                   self.offline(2, "2026-12-04T09:00:05.000Z", 15_000_000_000),
                   event(3, boot="another-boot", clock_synced=False, time_quality="unsynced", mono=1)])
        offset = 3 * 3600 * 10**9 + 1_000_000  # 3 h and 1 ms
        record = json.dumps({"boot": self.BOOT, "from_seq": 1, "to_seq": 4, "from_mono": 0, "to_mono": 18 * 10**9,
                             "offset_ns": offset}, sort_keys=True)
        response = self.post([event(5, board="time", topic="wiregate/house-1/time/corrections", payload=record,
                                    time_quality="synced", boot=self.BOOT, mono=20_000_000_000)])
        self.assertEqual(response.status_code, 200, response.content)
        one, two, other = (Event.objects.get(seq=n) for n in (1, 2, 3))
        self.assertEqual((one.time_quality, one.ts_corrected.isoformat()),
                         ("corrected", "2026-12-04T12:00:00.001000+00:00"))
        self.assertEqual(two.ts_corrected.isoformat(), "2026-12-04T12:00:05.001000+00:00")
        self.assertEqual(one.best_time, one.ts_corrected)
        self.assertEqual(other.time_quality, "unsynced")  # another boot: never this record's
        # seq 4 arrives after the record (a retried batch): repaired as it is stored.
        self.post([self.offline(4, "2026-12-04T09:00:07.000Z", 17_000_000_000)])
        self.assertEqual(Event.objects.get(seq=4).ts_corrected.isoformat(), "2026-12-04T12:00:07.001000+00:00")
        # The record applied twice (the gateway sent it again) changes nothing.
        self.post([event(6, board="time", topic="wiregate/house-1/time/corrections", payload=record)])
        self.assertEqual(Event.objects.get(seq=1).ts_corrected, one.ts_corrected)
        # A record that does not parse is stored as an event, and repairs nothing.
        self.assertEqual(self.post([event(7, board="time", topic="wiregate/house-1/time/corrections",
                                          payload="{not json")]).status_code, 200)

    def test_a_hostile_correction_record_is_a_plain_event_never_a_500(self):
        self.post([self.offline(1, "9999-12-31T23:00:00.000Z", 10_000_000_000)])
        base = {"boot": self.BOOT, "from_seq": 1, "to_seq": 1, "from_mono": 0, "to_mono": 20 * 10**9,
                "offset_ns": 3 * 3600 * 10**9}
        hostile = [
            '{"boot": "%s", "from_seq": 1, "to_seq": 1, "from_mono": 0, "to_mono": 9, "offset_ns": Infinity}' % self.BOOT,
            json.dumps({**base, "offset_ns": 10**30}),
            json.dumps({**base, "from_seq": 2**70}),
            json.dumps({**base, "boot": "b" * 500}),
            json.dumps({**base, "from_mono": 5, "to_mono": 4}),
            json.dumps({**base, "boot": ["not", "a", "string"]}),
            json.dumps(base),  # ts + 3 h is past year 9999: the database refuses it
        ]
        for seq, payload in enumerate(hostile, start=2):
            response = self.post([event(seq, board="time", topic="wiregate/house-1/time/corrections",
                                        payload=payload)])
            self.assertEqual(response.status_code, 200, f"{payload}: {response.content}")
        self.assertEqual(Event.objects.get(seq=1).time_quality, "unsynced")
        self.assertEqual(Event.objects.filter(board="time").count(), len(hostile))

    def test_the_history_is_in_the_best_order_known(self):
        # The intruder cut the power: the Pi came back 3 h behind. The door opened at 12:00:10 true
        # time, recorded as 09:00:10; a synced event from before the cut at 11:59:00 must come first,
        # one from after the sync at 12:01:00 after, however the device times compare.
        self.post([event(1, ts="2026-12-04T11:59:00.000Z", time_quality="synced", boot="earlier", mono=1),
                   self.offline(2, "2026-12-04T09:00:10.000Z", 10_000_000_000),
                   self.offline(3, "2026-12-04T09:00:11.000Z", 11_000_000_000),
                   event(4, ts="2026-12-04T12:01:00.000Z", time_quality="synced", boot=self.BOOT, mono=70 * 10**9)])
        record = json.dumps({"boot": self.BOOT, "from_seq": 2, "to_seq": 3, "from_mono": 0, "to_mono": 12 * 10**9,
                             "offset_ns": 3 * 3600 * 10**9})
        self.post([event(5, board="time", topic="wiregate/house-1/time/corrections", payload=record,
                         ts="2026-12-04T12:01:01.000Z", time_quality="synced")])
        history = self.client.get(URL, {"board": "front-door"}).json()["events"]
        self.assertEqual([item["seq"] for item in history], [1, 2, 3, 4])
        self.assertEqual(history[1]["ts_corrected"], "2026-12-04T12:00:10+00:00")
        self.assertEqual(history[1]["time_quality"], "corrected")
        self.assertIn("received_at", history[1])
        # A step back of 2 s while synchronised (NTP's correction): within the boot, monotonic order.
        self.post([event(8, ts="2026-12-04T12:02:00.000Z", time_quality="synced", boot=self.BOOT, mono=130 * 10**9),
                   event(9, ts="2026-12-04T12:01:59.500Z", time_quality="synced", boot=self.BOOT, mono=131 * 10**9)])
        history = self.client.get(URL, {"board": "front-door"}).json()["events"]
        self.assertEqual([item["seq"] for item in history], [1, 2, 3, 4, 8, 9])
        # Another gateway's token sees only its own.
        self.assertEqual(EventBatchTests.client_for("house-2").get(URL).json()["events"], [])


class HeartbeatTests(TransactionTestCase):
    def setUp(self):
        from django.core import mail
        from .signals import gateway_state_changed
        self.mail = mail
        self.client = EventBatchTests.client_for("house-1")
        self.changes = []
        self.receiver = lambda **kwargs: self.changes.append((kwargs["old_state"], kwargs["new_state"]))
        gateway_state_changed.connect(self.receiver, weak=False)
        self.addCleanup(gateway_state_changed.disconnect, self.receiver)

    def beat(self, body=None, client=None, interval=60):
        return (client or self.client).post(HEALTH_URL, data=json.dumps({"interval_sec": interval, "health": body or report()}),
                                            content_type="application/json")

    def test_a_healthy_first_heartbeat_is_operational_and_sends_no_mail(self):
        response = self.beat()
        self.assertEqual(response.status_code, 200, response.content)
        self.assertEqual(response.json(), {"state": "operational", "reasons": []})
        self.assertEqual(self.mail.outbox, [])
        self.assertEqual(self.changes, [])
        from .models import GatewayHealth
        row = GatewayHealth.objects.get(gateway="house-1")
        self.assertEqual((row.state, row.interval_sec, row.report["version"]), ("operational", 60, "0.7.0"))

    def test_the_broker_lost_and_back_each_notify_once(self):
        self.beat()
        lost = self.beat(report(connected=False))
        self.assertEqual(lost.json(), {"state": "degraded", "reasons": ["the broker is disconnected"]})
        self.beat(report(connected=False))  # still degraded: no second mail
        self.assertEqual(len(self.mail.outbox), 1)
        self.assertIn("house-1 is degraded", self.mail.outbox[0].subject)
        self.assertEqual(self.mail.outbox[0].to, ["owner@house.example"])
        self.assertEqual(self.beat().json()["state"], "operational")
        self.assertEqual(len(self.mail.outbox), 2)
        self.assertIn("house-1 is operational", self.mail.outbox[1].subject)
        self.assertEqual(self.changes, [("operational", "degraded"), ("degraded", "operational")])

    def test_each_degradation_is_named(self):
        self.assertEqual(self.beat(report(boards={"hall": {"online": False}, "door": {"online": True}})).json()["reasons"],
                         ["offline: hall"])
        old = {"pending": 2, "oldest": "2025-11-24T15:59:00Z"}  # response_time is 2025-11-24T16:00:00Z
        self.assertEqual(self.beat(report(critical=old)).json()["reasons"], ["2 critical events wait for the broker"])
        young = {"pending": 2, "oldest": "2025-11-24T15:59:50Z"}
        self.assertEqual(self.beat(report(critical=young)).json()["state"], "operational")
        self.assertEqual(self.beat(report(durable=False)).json()["reasons"],
                         ["the journal is in memory (the SD card cannot be written)"])
        self.assertEqual(self.beat(report()).json()["state"], "operational")

    def test_dropped_events_degrade_for_an_hour(self):
        from datetime import timedelta
        from django.db import transaction
        from django.utils import timezone
        from . import health
        self.assertEqual(self.beat(report(dropped=0)).json()["state"], "operational")
        self.assertEqual(self.beat(report(dropped=5)).json()["reasons"], ["events were dropped by the journal's bound"])
        self.assertEqual(self.beat(report(dropped=5)).json()["state"], "degraded")
        later = timezone.now() + timedelta(hours=1, minutes=1)
        with transaction.atomic():
            self.assertEqual(health.heartbeat("house-1", report(dropped=5), 60, now=later).state, "operational")

    def test_silent_gateways_are_disconnected_after_three_intervals(self):
        from datetime import timedelta
        from django.db import transaction
        from django.utils import timezone
        from .health import mark_silent
        self.beat(interval=10)
        with transaction.atomic():
            self.assertEqual(mark_silent(now=timezone.now() + timedelta(seconds=25)), [])
        self.assertEqual(self.mail.outbox, [])
        out = StringIO()
        with transaction.atomic():
            silent = mark_silent(now=timezone.now() + timedelta(seconds=31))
        self.assertEqual([row.gateway for row in silent], ["house-1"])
        self.assertEqual(len(self.mail.outbox), 1)
        self.assertIn("house-1 is disconnected", self.mail.outbox[0].subject)
        # Already disconnected: the command finds nothing more to say.
        call_command("wiregate_check_heartbeats", stdout=out)
        self.assertEqual(out.getvalue(), "")
        self.assertEqual(len(self.mail.outbox), 1)
        self.assertEqual(self.beat(interval=10).json()["state"], "operational")
        self.assertEqual(self.changes, [("operational", "disconnected"), ("disconnected", "operational")])

    def test_a_wrong_token_or_another_gateways_id_is_refused(self):
        anonymous = APIClient()
        self.assertEqual(self.beat(client=anonymous).status_code, 401)
        wrong = APIClient()
        wrong.credentials(HTTP_AUTHORIZATION="Token not-a-token")
        self.assertEqual(self.beat(client=wrong).status_code, 401)
        other = EventBatchTests.client_for("house-2")
        refused = self.beat(report(gateway="house-1"), client=other)
        self.assertEqual(refused.status_code, 403)
        from .models import GatewayHealth
        self.assertFalse(GatewayHealth.objects.exists())
        self.assertEqual(self.client.post(HEALTH_URL, data=json.dumps({"interval_sec": 0, "health": report()}),
                                          content_type="application/json").status_code, 400)
        self.assertEqual(self.client.post(HEALTH_URL, data=json.dumps({"interval_sec": 60, "health": {"gateway": "house-1"}}),
                                          content_type="application/json").status_code, 400)

    def test_a_mail_server_that_fails_does_not_fail_the_heartbeat(self):
        from django.test import override_settings
        self.beat()
        with override_settings(EMAIL_BACKEND="django.core.mail.backends.smtp.EmailBackend", EMAIL_PORT=1,
                               EMAIL_TIMEOUT=2):
            self.assertEqual(self.beat(report(connected=False)).json()["state"], "degraded")
        self.assertEqual(self.changes, [("operational", "degraded")])

    def test_a_first_heartbeat_with_old_drops_is_a_baseline_not_news(self):
        self.assertEqual(self.beat(report(dropped=40)).json()["state"], "operational")
        self.assertEqual(self.beat(report(dropped=40)).json()["state"], "operational")
        self.assertEqual(self.beat(report(dropped=0)).json()["state"], "operational")  # a new journal
        self.assertEqual(self.beat(report(dropped=3)).json()["reasons"], ["events were dropped by the journal's bound"])

    def test_an_unplugged_adopted_board_is_no_degradation(self):
        boards = {"hall": {"online": True}, "ttyACM1-A1B2": {"online": False, "adopted": True}}
        self.assertEqual(self.beat(report(boards=boards)).json()["state"], "operational")

    def test_a_receiver_that_raises_neither_undoes_the_change_nor_silences_the_others(self):
        from .signals import gateway_state_changed

        def broken(**kwargs):
            raise RuntimeError("the SMS gateway is down")
        gateway_state_changed.connect(broken, weak=False)
        self.addCleanup(gateway_state_changed.disconnect, broken)
        self.beat()
        lost = self.beat(report(connected=False))
        self.assertEqual(lost.status_code, 200)
        self.assertEqual(self.changes, [("operational", "degraded")])
        self.assertEqual(len(self.mail.outbox), 1)
        self.beat(report(connected=False))
        self.assertEqual(len(self.mail.outbox), 1)  # saved: no second mail for the same change

    def test_a_hostile_report_is_a_reason_or_a_400_never_a_500(self):
        hostile = report(connected=False)
        hostile["boards"] = {"door\r\nBcc: x@evil.example": {"online": False}, "odd": "not an object"}
        hostile["backlog"] = ["not", "an", "object"]
        hostile["response_time"] = 10**30
        response = self.beat(hostile)
        self.assertEqual(response.status_code, 200, response.content)
        self.assertEqual(response.json()["state"], "degraded")
        self.assertNotIn("\n", self.mail.outbox[0].subject)
        self.assertNotIn("\r", self.mail.outbox[0].subject)
