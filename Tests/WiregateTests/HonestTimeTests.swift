import Foundation
import Logging
import Testing
import Wiregate
import WiregateCore
import WiregateTestKit

/// Honest time end to end (issue 18): a gateway whose wall clock is 3 hours behind and
/// unsynchronised, as a Pi's after a power cut, through a real mosquitto and the real Django app
/// on PostgreSQL. The clock is the gateway's own (`ShiftedClock`), never the machine's.
@Suite(.serialized) struct HonestTimeTests {
    static let behind = Duration.seconds(3 * 3600)

    /// The user properties of a message, by name.
    func properties(_ message: Subscriber.Message) -> [String: String] {
        Dictionary(
            message.properties.split(separator: " ").compactMap { pair -> (String, String)? in
                guard let colon = pair.firstIndex(of: ":") else { return nil }
                return (String(pair[..<colon]), String(pair[pair.index(after: colon)...]))
            }, uniquingKeysWith: { first, _ in first })
    }

    func date(_ text: String?) -> Date? {
        text.flatMap { try? Date($0, strategy: .iso8601.year().month().day().time(includingFractionalSeconds: true)) }
    }

    @Test func everyEventOfABootThatStartedThreeHoursBehindGetsItsTrueTimeOnceTheClockIsSet() async throws {
        // Persistent, as the subscriber's session: what the gateway publishes while it reconnects is kept for it.
        let broker = try MosquittoBroker(persistent: true)
        let board = try SimulatedBoard()
        let backend = try DjangoBackend()
        let subscriber = try Subscriber(
            port: broker.port, filter: "wiregate/test-gw/#", persistentID: "honest-\(UUID().uuidString.prefix(8))")
        let clock = ShiftedClock(offset: .zero - Self.behind, synchronised: false)
        let harness = try GatewayHarness(
            yaml: GatewayHarness.yaml(
                port: broker.port,
                boards: """
                      - { name: sim, match: { path: \(board.path) }, protocol: kv, settle: 0s, classes: { door: critical } }
                    """, backend: "\(backend.configKeys), timeout: 2s, retry_max: 1s"),
            backendToken: backend.token, time: clock.source)
        #expect(await eventually { harness.gateway.directory.isOnline("sim") && harness.gateway.mqtt.isConnected })
        let doors = { @Sendable () -> [Subscriber.Message] in
            subscriber.messages.filter { $0.topic == "wiregate/test-gw/sim/door" }
        }
        // Live while the clock is wrong: delivered at once, saying so.
        var sent: [String: Date] = [:]
        for n in 0..<5 {
            sent["live-\(n)"] = Date()
            board.send("door=live-\(n)")
            try await Task.sleep(for: .milliseconds(30))
        }
        #expect(await eventually(timeout: .seconds(15)) { doors().count >= 5 })
        for message in doors() {
            let fields = properties(message)
            #expect(fields["time_quality"] == "unsynced" && fields["ts_corrected"] == nil, "\(fields)")
            #expect(fields["boot"] == (try BootClock.bootID()) && Int64(fields["mono"] ?? "") != nil, "\(fields)")
            // What the wrong clock said: 3 hours before the line was sent.
            let ts = try #require(date(fields["ts"]))
            #expect(abs(ts.timeIntervalSince(sent[message.payload]!) + 3 * 3600) < 2, "\(fields)")
        }
        #expect(await eventually(timeout: .seconds(30)) { (try? backend.count(where: "payload LIKE 'live-%'")) == 5 })
        // The broker down: these wait in the journal, and go once the clock is known.
        broker.stop()
        for n in 0..<3 {
            sent["held-\(n)"] = Date()
            board.send("door=held-\(n)")
            try await Task.sleep(for: .milliseconds(30))
        }
        #expect(await eventually { await harness.gateway.journal.pendingCount()[.critical, default: 0] >= 3 })
        try await Task.sleep(for: .milliseconds(300))

        // timesyncd reaches a server: the clock is set right, and synchronised.
        clock.set(offset: .zero, synchronised: true)
        // The broker back once the gateway has seen it (its clock watcher looks every second): an
        // event handed out in between would go unsynced, its correction record covering it.
        #expect(
            await eventually { await harness.gateway.journal.anchors().contains { $0.reason == "synchronised" } })
        try broker.start()
        #expect(await eventually(timeout: .seconds(20)) { doors().count >= 8 })
        // Those held: their true time with them, to the nanosecond of the anchor's arithmetic
        // (what the wrong clock said, plus the 3 hours, within the 1 ms of the timestamp's format).
        for message in doors() where message.payload.hasPrefix("held-") {
            let fields = properties(message)
            #expect(fields["time_quality"] == "corrected", "\(fields)")
            let ts = try #require(date(fields["ts"])), corrected = try #require(date(fields["ts_corrected"]))
            #expect(abs(corrected.timeIntervalSince(ts) - 3 * 3600) < 0.010, "\(fields)")
            #expect(abs(corrected.timeIntervalSince(sent[message.payload]!)) < 2, "\(fields)")
        }
        // Those already delivered: one correction record, covering their seqs, with the offset.
        let records = { @Sendable () -> [Subscriber.Message] in
            subscriber.messages.filter { $0.topic == "wiregate/test-gw/time/corrections" }
        }
        #expect(await eventually(timeout: .seconds(20)) { !records().isEmpty })
        let record = try #require(records().first)
        let fields = try #require(try JSONSerialization.jsonObject(with: Data(record.payload.utf8)) as? [String: Any])
        #expect(fields["boot"] as? String == (try BootClock.bootID()))
        let offset = try #require(fields["offset_ns"] as? Int64)
        #expect(abs(offset - 3 * 3600 * 1_000_000_000) < 10_000_000, "\(offset)")
        let from = try #require(fields["from_seq"] as? Int64), to = try #require(fields["to_seq"] as? Int64)
        let fromMono = try #require(fields["from_mono"] as? Int64), toMono = try #require(fields["to_mono"] as? Int64)
        for message in doors() where message.payload.hasPrefix("live-") {
            let seq = try #require(Int64(properties(message)["seq"] ?? ""))
            let mono = try #require(Int64(properties(message)["mono"] ?? ""))
            #expect((from...to).contains(seq), "\(seq) in \(from)...\(to)")
            #expect((fromMono..<toMono).contains(mono), "\(mono) in \(fromMono)..<\(toMono)")
        }
        #expect(!record.properties.contains("retain"))

        // The backend had stored the live ones: the record repaired them; the held ones came repaired.
        #expect(
            await eventually(timeout: .seconds(30)) {
                (try? backend.count(where: "payload LIKE 'live-%' AND time_quality = 'corrected'")) == 5
                    && (try? backend.count(where: "payload LIKE 'held-%' AND time_quality = 'corrected'")) == 3
            })
        let rows = try backend.query(
            """
            SELECT payload, extract(epoch FROM ts_corrected - ts), extract(epoch FROM ts_corrected) FROM wiregate_events_event
            WHERE board = 'sim' AND payload LIKE '%-%' ORDER BY best_time, boot, mono, seq
            """)
        #expect(rows.map { $0[0] } == (0..<5).map { "live-\($0)" } + (0..<3).map { "held-\($0)" })
        for row in rows {
            let shift = try #require(Double(row[1])), corrected = try #require(Double(row[2]))
            #expect(abs(shift - 3 * 3600) < 0.010, "\(row)")
            #expect(abs(corrected - sent[row[0]]!.timeIntervalSince1970) < 2, "\(row)")
        }

        // A step back of a minute while synchronised (a bad NTP server): recorded as a step, and the
        // history as the API gives it still in the order things happened, by boot and monotonic time.
        board.send("door=before-step")
        #expect(await eventually(timeout: .seconds(30)) { (try? backend.count(where: "payload = 'before-step'")) == 1 })
        clock.set(offset: .seconds(-60), synchronised: true)
        #expect(await eventually { await harness.gateway.journal.anchors().contains { $0.reason == "step" } })
        board.send("door=after-step")
        #expect(await eventually(timeout: .seconds(30)) { (try? backend.count(where: "payload = 'after-step'")) == 1 })
        let history = try backend.history(board: "sim").compactMap { $0["payload"] as? String }.filter {
            $0.contains("-")
        }
        #expect(
            history == (0..<5).map { "live-\($0)" } + (0..<3).map { "held-\($0)" } + ["before-step", "after-step"],
            "\(history)")
        let stepped = try backend.query(
            "SELECT payload, time_quality FROM wiregate_events_event WHERE payload LIKE '%-step' ORDER BY ts")
        #expect(
            stepped.map { $0[0] } == ["after-step", "before-step"], "the device times are a minute apart the wrong way")
        await harness.stop()
    }

    /// Events of an earlier boot that never synchronised stay `unsynced`, whatever this boot's clock says.
    @Test func anEarlierBootThatNeverSyncedStaysUnsynced() async throws {
        let broker = try MosquittoBroker()
        let board = try SimulatedBoard()
        let state = try makeTemporaryDirectory("honest-time")
        let yaml = GatewayHarness.yaml(
            port: broker.port,
            boards: "  - { name: sim, match: { path: \(board.path) }, protocol: kv, settle: 0s }",
            stateDirectory: state)
        broker.stop()
        let earlier = ShiftedClock(
            offset: .zero - Self.behind, synchronised: false, boot: UUID().uuidString.lowercased())
        let first = try GatewayHarness(yaml: yaml, time: earlier.source)
        #expect(await eventually { first.gateway.directory.isOnline("sim") })
        board.send("door=before-the-cut")
        #expect(await eventually { await first.gateway.journal.pendingCount()[.telemetry, default: 0] >= 1 })
        await first.stop()

        try broker.start()
        let subscriber = try Subscriber(port: broker.port, filter: "wiregate/test-gw/sim/door")
        let now = ShiftedClock(offset: .zero, synchronised: true)
        let second = try GatewayHarness(yaml: yaml, time: now.source)
        #expect(await subscriber.waitAsync(timeout: .seconds(20)) { $0.contains { $0.payload == "before-the-cut" } })
        let fields = properties(try #require(subscriber.messages.first { $0.payload == "before-the-cut" }))
        #expect(fields["time_quality"] == "unsynced" && fields["ts_corrected"] == nil, "\(fields)")
        #expect(fields["boot"] != (try BootClock.bootID()))
        await second.stop()
    }
}

/// The journal's side of honest time, without a broker: what survives the memory fallback.
@Suite struct JournalTimeTests {
    /// A boot that synchronised only while the card was read-only (the memory journal had its
    /// anchors) still repairs its events once the disk journal takes them over, after a reboot.
    @Test func theMemoryJournalsAnchorsAndTimesAreTakenOverWithItsEvents() async throws {
        let disk = try makeTemporaryDirectory("time-disk")
        let memory = try makeTemporaryDirectory("time-memory")
        let settings = JournalSequenceTests.settings
        let earlier = UUID().uuidString.lowercased()
        let offline = ShiftedClock(offset: .zero - HonestTimeTests.behind, synchronised: false, boot: earlier)
        let inMemory = try Journal(
            directory: memory, settings: settings, logger: Logger(label: "test"), durable: false, time: offline.source)
        let read = BootClock.monotonic()
        await inMemory.append([
            Event(
                board: "b", topic: "wiregate/seq-gw/b/door", subtopic: "door", payload: "open", eventClass: .critical,
                receivedAt: offline.source.wall(), receivedMonotonic: read)
        ])
        offline.set(offset: .zero, synchronised: true)
        let synced = offline.source.anchor(boot: earlier)
        await inMemory.recordAnchor(synced, reason: .synchronised)
        await inMemory.close()

        // Rebooted (another boot), the card writable again.
        let back = try Journal.open(
            directory: disk, memoryFallback: memory, settings: settings,
            time: ShiftedClock(offset: .zero, synchronised: true).source,
            logger: Logger(label: "test"))
        #expect(back.isDurable)
        #expect(await back.anchors().contains { $0.anchor == synced })
        let handed = await back.reader(for: Journal.mqttSink).next(max: 10, classes: [.critical], acknowledging: [])
        let event = try #require(handed.first)
        #expect(event.boot == earlier && event.event.receivedMonotonic == read)
        #expect(event.time.quality == .corrected)
        // Its true time: what the clock said plus the 3 hours, to within the anchor's millisecond.
        let expected = TimeSource.nanoseconds(event.event.receivedAt) + Int64(3 * 3600) * 1_000_000_000
        #expect(abs((event.time.corrected ?? 0) - expected) < 2_000_000, "\(event.time)")
        await back.close()
    }

    /// A line read while the clock was wrong and numbered after it was set keeps the flag of its
    /// reading: "synced" would vouch for a time 3 hours off, and nothing would ever correct it.
    @Test func aLineKeepsTheClockFlagOfItsReadingNotOfItsNumbering() async throws {
        let directory = try makeTemporaryDirectory("time-flag")
        let clock = ShiftedClock(offset: .zero, synchronised: true)
        let journal = try Journal(
            directory: directory, settings: JournalSequenceTests.settings, logger: Logger(label: "test"),
            time: clock.source)
        var read = Event(
            board: "b", topic: "wiregate/seq-gw/b/door", subtopic: "door", payload: "open", eventClass: .critical,
            receivedAt: Date().addingTimeInterval(-3 * 3600), receivedMonotonic: BootClock.monotonic())
        read.receivedSynchronised = false
        await journal.append([read])
        let handed = await journal.reader(for: Journal.mqttSink).next(max: 10, classes: [.critical], acknowledging: [])
        #expect(handed.first?.clockSynced == false)
        #expect(handed.first?.time.quality == .corrected, "the journal's start anchor is synchronised")
        await journal.close()
    }
}
