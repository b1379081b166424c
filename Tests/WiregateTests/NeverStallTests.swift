import Foundation
import Glibc
import Logging
import Testing
import Wiregate
import WiregateCore
import WiregateTestKit

/// No single event can stall a sink, and nothing the broker refused counts as delivered: the
/// loss paths the hostile review of main found, each tried end to end against a real mosquitto.
@Suite(.serialized) struct NeverStallTests {
    /// The regression: one line with a C1 control in its key (valid UTF-8 that MQTT forbids) was
    /// refused by libmosquitto, put back, and retried forever: every later alarm of every board
    /// waited behind it. Now the key is sanitised, and a message libmosquitto still refuses (one
    /// over the broker's maximum packet size) is quarantined while the alarms behind it go on.
    @Test func aHostileLineNeverStallsTheAlarmsBehindIt() async throws {
        // The broker's CONNACK says: no packet over 400 bytes. libmosquitto refuses bigger ones itself.
        let broker = try MosquittoBroker(extraConfig: "max_packet_size 400")
        let hostile = try SimulatedBoard()
        let door = try SimulatedBoard()
        let subscriber = try Subscriber(port: broker.port, filter: "wiregate/#")
        let state = try makeTemporaryDirectory("never-stall")
        let harness = try GatewayHarness(
            yaml: GatewayHarness.yaml(
                port: broker.port,
                boards: """
                      - { name: hostile, match: { path: \(hostile.path) }, protocol: kv, settle: 0s, classes: { "*": critical } }
                      - { name: door, match: { path: \(door.path) }, protocol: kv, settle: 0s, classes: { door: critical } }
                    """, stateDirectory: state))
        #expect(
            await eventually {
                let hostileOnline = harness.gateway.directory.isOnline("hostile")
                let doorOnline = harness.gateway.directory.isOnline("door")
                return hostileOnline && doorOnline && harness.gateway.mqtt.isConnected
            })
        hostile.send("primer=1")
        door.send("primer=1")
        // C1 controls and a non-character (Swift refuses U+FDD0 in a literal: built from its code point).
        hostile.send("alarm\u{85}\u{9B}" + String(Unicode.Scalar(0xFDD0)!) + "=1")
        hostile.send("big=" + String(repeating: "x", count: 600))  // over the broker's packet size
        for n in 0..<20 { door.send("door=\(n)") }
        hostile.send("after=1")
        let doors = { @Sendable (messages: [Subscriber.Message]) in
            messages.filter { $0.topic == "wiregate/test-gw/door/door" }.map(\.payload)
        }
        #expect(
            await subscriber.waitAsync(timeout: .seconds(10)) {
                doors($0).count == 20 && $0.contains { $0.topic == "wiregate/test-gw/hostile/after" }
            },
            "\(subscriber.messages.suffix(5))")
        #expect(doors(subscriber.messages) == (0..<20).map(String.init))
        // The C1 key became one ordinary level; the over-sized message went to the quarantine.
        #expect(subscriber.messages.contains { $0.topic == "wiregate/test-gw/hostile/alarm___" })
        #expect(!subscriber.messages.contains { $0.topic == "wiregate/test-gw/hostile/big" })
        #expect(harness.gateway.mqtt.counters.quarantined == 1)
        #expect(
            await eventually { (try? JournalStatus.read(stateDirectory: state))?.quarantined[Journal.mqttSink] == 1 })
        await harness.stop()
        // Nothing is left pending for the broker: after a restart nothing blocks either.
        let status = try JournalStatus.read(stateDirectory: state)
        #expect(status.sinks[Journal.mqttSink]?["critical"]?.pending == 0, "\(status)")
    }

    /// The regression: a PUBACK with reason code 0x87 (the ACL refuses) was counted as delivered and
    /// the event deleted. Now it stays in the journal, `status` says the broker refuses, it is sent
    /// again with a backoff, and arrives once the ACL lets it.
    @Test func aRefusedPublishIsKeptAndSentAgainOnceAllowed() async throws {
        let acl = temporaryPath("acl")
        try "topic readwrite #\ntopic deny wiregate/test-gw/sim/secret\n".write(
            toFile: acl, atomically: true, encoding: .utf8)
        let broker = try MosquittoBroker(extraConfig: "acl_file \(acl)")
        let board = try SimulatedBoard()
        let subscriber = try Subscriber(port: broker.port, filter: "wiregate/#")
        let state = try makeTemporaryDirectory("refused")
        let harness = try GatewayHarness(
            yaml: GatewayHarness.yaml(
                port: broker.port,
                boards: """
                      - { name: sim, match: { path: \(board.path) }, protocol: kv, settle: 0s, classes: { "*": critical } }
                    """, stateDirectory: state))
        #expect(await eventually { harness.gateway.directory.isOnline("sim") && harness.gateway.mqtt.isConnected })
        board.send("primer=1")
        board.send("secret=42")
        #expect(await eventually { harness.gateway.mqtt.counters.refusedByBroker >= 1 })
        // While the refused one is held back, an alarm on an allowed topic goes at once.
        try await Task.sleep(for: .milliseconds(300))
        board.send("door=open")
        #expect(
            await subscriber.waitAsync(timeout: .seconds(1)) { $0.contains { $0.topic == "wiregate/test-gw/sim/door" } }
        )
        #expect(
            await eventually {
                (try? DaemonState.read(stateDirectory: state))?.brokerRefusing?.contains("0x87") == true
            })
        // Not acknowledged: still pending in the journal (and the door event after it, which the
        // broker has, stays until the cursor can pass both), and sent again.
        #expect(await eventually { await harness.gateway.journal.pendingCount()[.critical] == 2 })
        #expect(await eventually(timeout: .seconds(5)) { harness.gateway.mqtt.counters.refusedByBroker >= 2 })
        // The ACL is fixed and reloaded (SIGHUP): the kept event arrives.
        try "topic readwrite #\n".write(toFile: acl, atomically: true, encoding: .utf8)
        broker.reload()
        #expect(
            await subscriber.waitAsync(timeout: .seconds(40)) {
                $0.contains { $0.topic == "wiregate/test-gw/sim/secret" && $0.payload == "42" }
            })
        #expect(await eventually { await harness.gateway.journal.pendingCount()[.critical] == 0 })
        #expect(await eventually { (try? DaemonState.read(stateDirectory: state))?.brokerRefusing == nil })
        await harness.stop()
    }

    /// The regression: a retained `SIREN=ON` fired again at every reconnect, after the user had
    /// switched the siren off. Now a command is never taken from a retained message.
    @Test func retainedCommandsNeverFire() async throws {
        let broker = try MosquittoBroker(persistent: true)  // the retained message survives its restart
        let board = try SimulatedBoard()
        try await publish(port: broker.port, topic: "wiregate/test-gw/sim/set", payload: "SIREN=ON", retain: true)
        let harness = try GatewayHarness(
            yaml: GatewayHarness.yaml(
                port: broker.port,
                boards: """
                      - { name: sim, match: { path: \(board.path) }, protocol: kv, settle: 0s, commands: [ "SIREN=ON", "SIREN=OFF" ] }
                    """))
        #expect(await eventually { harness.gateway.directory.isOnline("sim") && harness.gateway.mqtt.isConnected })
        try await Task.sleep(for: .milliseconds(500))
        // A retained one published while the gateway listens is refused too; a plain one is written.
        try await publish(port: broker.port, topic: "wiregate/test-gw/sim/set", payload: "SIREN=ON", retain: true)
        try await publish(port: broker.port, topic: "wiregate/test-gw/sim/set", payload: "SIREN=OFF")
        var written = await board.receivedLines(within: .seconds(10)) { $0.contains("SIREN=OFF") }
        written += await board.receivedLines(within: .milliseconds(300)) { _ in false }
        #expect(written == ["SIREN=OFF"])
        #expect(harness.gateway.router.counters.retained == 1)
        // A reconnect does not bring the retained one back.
        broker.stop()
        try broker.start()
        #expect(await eventually { harness.gateway.mqtt.counters.connects >= 2 })
        try await Task.sleep(for: .milliseconds(500))
        #expect(await board.receivedLines(within: .milliseconds(300)) { _ in false }.isEmpty)
        await harness.stop()
    }
}

/// Reading a port never waits for the disk.
///
/// The regression: a board's reader awaited each critical event's commit, so a slow SD card (or a
/// bounds pass over a full journal) let the port's buffer overflow and later lines, intrusions
/// included, were lost. Here every commit holds SQLite's writer for 2 s (an SD card's write stall)
/// while a board sends critical lines at the rate of a 115200-baud link.
@Suite(.serialized) struct SlowJournalTests {
    @Test func aStalledCardLosesNoLineAt115200Baud() async throws {
        let broker = try MosquittoBroker(extraConfig: "max_queued_messages 0")
        let board = try SimulatedBoard()
        let subscriber = try Subscriber(port: broker.port, filter: "wiregate/test-gw/sim/door")
        let harness = try GatewayHarness(
            yaml: GatewayHarness.yaml(
                port: broker.port,
                boards: """
                      - { name: sim, match: { path: \(board.path) }, protocol: kv, settle: 0s, classes: { door: critical } }
                    """))
        #expect(await eventually { harness.gateway.directory.isOnline("sim") && harness.gateway.mqtt.isConnected })
        board.send("door=prime")
        await harness.gateway.journal.stallCommits(for: .seconds(2))
        // 115200 baud is about 11,500 bytes/s: lines of 32 bytes at 300 a second, for 6 s.
        let lines = 1800
        try await board.sendAsAUART(lines)
        #expect(board.droppedLines == 0, "the port's buffer overflowed: \(board.droppedLines) lines lost")
        let doors = { @Sendable () -> Set<String> in Set(subscriber.messages.map(\.payload)) }
        #expect(
            await subscriber.waitAsync(timeout: .seconds(30)) { _ in
                doors().isSuperset(of: (0..<lines).map(String.init))
            },
            "\(lines - doors().intersection((0..<lines).map(String.init)).count) of \(lines) never arrived")
        let counters = harness.board("sim")!.counters
        #expect(
            counters.rejected.values.reduce(0, +) == counters.rejected[.partial, default: 0], "\(counters.rejected)")
        await harness.gateway.journal.stallCommits(for: .zero)
        await harness.stop()
    }

    /// Below the journal: a reader held up 8 s (its task waiting for a pool thread on a loaded Pi,
    /// the journal's actor busy) still drains the port, into memory, and loses nothing. With NIO's
    /// default of 10 reads buffered the port stayed unread, and past what the kernel's tty buffer
    /// holds (about 3.5 s of this board here) 1,646 of its 2,700 lines were lost.
    @Test func aReaderHeldUpEightSecondsLosesNoLine() async throws {
        let board = try SimulatedBoard()
        let config = try GatewayConfig.parse(
            yaml: GatewayHarness.yaml(
                port: 1883, boards: "  - { name: sim, match: { path: \(board.path) }, protocol: kv, settle: 0s }"),
            file: "held.yaml")
        let outbox = HeldOutbox()
        let reader = BoardReader(board: config.boards[0], config: config, outbox: outbox, logger: Logger(label: "held"))
        { _, _ in }
        let running = Task { await reader.run() }
        reader.attach(node: board.path)
        #expect(await eventually { reader.counters.opens == 1 })
        board.send("door=prime")
        #expect(await eventually { await outbox.payloads.contains("prime") })
        await outbox.hold(for: .seconds(8))
        let lines = 2700
        try await board.sendAsAUART(lines)
        #expect(board.droppedLines == 0, "the port's buffer overflowed: \(board.droppedLines) lines lost")
        #expect(await outbox.wasHeld, "the reader was never held: the test proves nothing")
        let expected = ["prime"] + (0..<lines).map(String.init)
        #expect(await eventually(timeout: .seconds(10)) { await outbox.payloads.count >= expected.count })
        #expect(await outbox.payloads == expected)
        running.cancel()
        await running.value
    }
}

/// An outbox that keeps the door payloads it is given, and can hold its next caller for a while.
private actor HeldOutbox: EventOutbox {
    private(set) var payloads: [String] = []
    private(set) var wasHeld = false
    private var holdNext: Duration?

    func hold(for duration: Duration) { holdNext = duration }

    func append(_ events: [Event]) async {
        if let duration = holdNext {
            holdNext = nil
            wasHeld = true
            try? await Task.sleep(for: duration)
        }
        payloads += events.filter { $0.subtopic == "door" }.map(\.payload)
    }
}

extension SimulatedBoard {
    /// `door=<n>` lines 0..<count of 32 bytes at 300 a second: a 115200-baud link (about 11,500
    /// bytes/s) kept busy.
    fileprivate func sendAsAUART(_ count: Int) async throws {
        let start = ContinuousClock.now
        for n in 0..<count {
            send("door=\(n);pad=" + String(repeating: "p", count: 16 - String(n).count))
            try await Task.sleep(until: start + .microseconds(Int64(n) * 3333))
        }
    }
}
