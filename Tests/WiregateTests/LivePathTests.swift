import Foundation
import Testing
import Wiregate
import WiregateCore
import WiregateTestKit

/// End to end: a simulated board on a real pty, the gateway, a real mosquitto, a real subscriber.
@Suite(.serialized) struct LivePathTests {
    /// Feeds the board lines until `stop` says enough, so the gateway's discarded first line does not matter.
    func feed(_ board: SimulatedBoard, protocol name: String, from start: Int = 0, until stop: @Sendable () -> Bool)
        async
    {
        var n = start
        while !stop() && n < start + 2000 {
            board.send(SamplePattern.line(protocol: name, sequence: n))
            n += 1
            try? await Task.sleep(for: .milliseconds(10))
        }
    }

    @Test(arguments: [
        ("kv", "", "seq"),
        ("json", "", "seq"),
        ("mysensors", "", "mysensors-out/1/1/1/0/24"),
        ("influx", "", "env/seq"),
        ("raw", "", "line")
    ])
    func boardToSubscriberForEveryProtocol(protocolName: String, options: String, subtopic: String) async throws {
        let broker = try MosquittoBroker()
        let board = try SimulatedBoard()
        let subscriber = try Subscriber(port: broker.port, filter: "wiregate/#")
        let harness = try GatewayHarness(
            yaml: GatewayHarness.yaml(
                port: broker.port,
                boards: """
                      - { name: sim, match: { path: \(board.path) }, protocol: \(protocolName), settle: 0s }
                    """))
        let topic = "wiregate/test-gw/sim/\(subtopic)"
        // Live means the broker is there: a line read before the first CONNACK is a replay
        // (since the first line after the open is kept, that race shows here).
        #expect(await eventually { harness.gateway.directory.isOnline("sim") && harness.gateway.mqtt.isConnected })
        await feed(board, protocol: protocolName) { subscriber.messages.filter { $0.topic == topic }.count >= 5 }
        let received = subscriber.messages.filter { $0.topic == topic }
        #expect(received.count >= 5, "\(subscriber.messages.suffix(10))")
        // Live messages carry their seq and receive time, and are not marked replayed.
        let seqs = received.compactMap { property("seq", in: $0.properties).flatMap(Int.init) }
        #expect(seqs.count == received.count && seqs == seqs.sorted())
        #expect(
            received.allSatisfy {
                property("ts", in: $0.properties)?.hasSuffix("Z") == true && !$0.properties.contains("replayed")
            })
        // Consecutive lines arrive in order, none missing.
        if protocolName != "raw" {
            let numbers = received.compactMap { Int($0.payload) }
            #expect(numbers.count == received.count)
            #expect(zip(numbers, numbers.dropFirst()).allSatisfy { $1 == $0 + 1 }, "\(numbers)")
        } else {
            #expect(received.allSatisfy { $0.payload.hasSuffix("hello from a simulated board") })
        }
        #expect(subscriber.messages.contains { $0.topic == "wiregate/test-gw/status" && $0.payload == "online" })
        #expect(subscriber.messages.contains { $0.topic == "wiregate/test-gw/sim/status" && $0.payload == "online" })
        #expect(harness.board("sim")!.counters.malformed == 0)
        await harness.stop()
        #expect(
            await subscriber.waitAsync(timeout: .seconds(5)) {
                $0.last { $0.topic == "wiregate/test-gw/status" }?.payload == "offline"
            })
        #expect(subscriber.messages.last { $0.topic == "wiregate/test-gw/sim/status" }?.payload == "offline")
    }

    @Test func commandRoundTripAllowedAndRefused() async throws {
        let broker = try MosquittoBroker()
        let board = try SimulatedBoard()
        let subscriber = try Subscriber(port: broker.port, filter: "wiregate/#")
        let harness = try GatewayHarness(
            yaml: GatewayHarness.yaml(
                port: broker.port,
                boards: """
                      - name: sim
                        match: { path: \(board.path) }
                        protocol: kv
                        settle: 0s
                        commands: [ "SIREN=ON", "SIREN=OFF", "PING", "LED=*" ]
                    """))
        await feed(board, protocol: "kv") { subscriber.messages.contains { $0.topic == "wiregate/test-gw/sim/seq" } }
        try await publish(port: broker.port, topic: "wiregate/test-gw/sim/set", payload: "SIREN=ON")
        try await publish(port: broker.port, topic: "wiregate/test-gw/sim/set", payload: "LED=42")
        try await publish(port: broker.port, topic: "wiregate/test-gw/sim/set", payload: "REBOOT")
        try await publish(port: broker.port, topic: "wiregate/test-gw/sim/set", payload: "SIREN=ON\nREBOOT")
        // A pattern's value never carries a second command for firmware that splits on ';'.
        try await publish(port: broker.port, topic: "wiregate/test-gw/sim/set", payload: "LED=1;SIREN=OFF")
        var written = await board.receivedLines(within: .seconds(10)) { $0.count >= 2 }
        written += await board.receivedLines(within: .milliseconds(500)) { _ in false }
        #expect(written == ["SIREN=ON", "LED=42"])
        // The board's answer comes back as an event.
        board.send(SamplePattern.reply(protocol: "kv", to: "SIREN=ON"))
        #expect(
            await subscriber.waitAsync(timeout: .seconds(5)) {
                $0.contains { $0.topic == "wiregate/test-gw/sim/siren" && $0.payload == "ON" }
            })
        let counters = harness.board("sim")!.counters
        #expect(counters.commandsWritten == 2)
        #expect(harness.gateway.router.counters.refused["sim"] == 3)
        #expect(counters.commandsNotWritten == 0)
        await harness.stop()
    }

    @Test func mySensorsCommandsFromTheInTopic() async throws {
        let broker = try MosquittoBroker()
        let board = try SimulatedBoard()
        let subscriber = try Subscriber(port: broker.port, filter: "wiregate/#")
        let harness = try GatewayHarness(
            yaml: GatewayHarness.yaml(
                port: broker.port,
                boards: """
                      - { name: ms, match: { path: \(board.path) }, protocol: mysensors, settle: 0s, commands: [ "1;1;1;0;2;*" ] }
                    """))
        await feed(board, protocol: "mysensors") {
            subscriber.messages.contains { $0.topic.hasPrefix("wiregate/test-gw/ms/mysensors-out/") }
        }
        try await publish(port: broker.port, topic: "wiregate/test-gw/ms/mysensors-in/1/1/1/0/2", payload: "1")
        try await publish(port: broker.port, topic: "wiregate/test-gw/ms/mysensors-in/9/1/1/0/2", payload: "1")
        var written = await board.receivedLines(within: .seconds(10)) { !$0.isEmpty }
        written += await board.receivedLines(within: .milliseconds(500)) { _ in false }
        #expect(written == ["1;1;1;0;2;1"])
        #expect(harness.gateway.router.counters.refused["ms"] == 1)
        await harness.stop()
    }

    @Test func boardHangUpIsNoticedAndThePortReopened() async throws {
        let broker = try MosquittoBroker()
        let link = temporaryPath("board")
        var board = try SimulatedBoard(link: link)
        let subscriber = try Subscriber(port: broker.port, filter: "wiregate/#")
        let harness = try GatewayHarness(
            yaml: GatewayHarness.yaml(
                port: broker.port,
                boards: """
                      - { name: sim, match: { path: \(link) }, protocol: kv, settle: 0s, reopen_max: 300ms }
                    """))
        let seqTopic = "wiregate/test-gw/sim/seq"
        await feed(board, protocol: "kv") { subscriber.messages.contains { $0.topic == seqTopic } }
        board.hangUp()  // unplugged: the gateway reads EIO / POLLHUP
        #expect(
            await subscriber.waitAsync(timeout: .seconds(5)) {
                $0.last { $0.topic == "wiregate/test-gw/sim/status" }?.payload == "offline"
            })
        // Counted as a hang-up when the read error comes first; when the watcher sees the link go
        // first, the port is closed as unplugged instead (both race on a pty whose link is removed).
        #expect(harness.board("sim")!.counters.hangups <= 1)
        // Plugged in again (a new pty behind the same path): reopened with backoff, online, events flow.
        board = try SimulatedBoard(link: link)
        let before = subscriber.messages.count
        await feed(board, protocol: "kv", from: 5000) {
            subscriber.messages.dropFirst(before).contains { $0.topic == seqTopic && Int($0.payload)! >= 5000 }
        }
        #expect(
            subscriber.messages.dropFirst(before).contains {
                $0.topic == "wiregate/test-gw/sim/status" && $0.payload == "online"
            })
        #expect(subscriber.messages.dropFirst(before).contains { $0.topic == seqTopic && Int($0.payload)! >= 5000 })
        #expect(harness.board("sim")!.counters.opens == 2)
        await harness.stop()
        board.hangUp()
    }

    /// The first line a board sends once the port is open is an event like any other.
    ///
    /// The regression (found by the fault campaign, scripts/torture.sh seeds 2 and 3): the port was
    /// flushed blind at open and the framer then dropped everything up to the first newline, in
    /// case the flush had cut a line: the first line of every board after each start was lost,
    /// an intrusion among them. Now what was queued is read, and only a read that ended mid-line
    /// costs the torn line's tail (checked here too, with what a board sent before the open).
    @Test func theFirstLineAfterTheOpenIsKeptAndOnlyATornLineIsDropped() async throws {
        let broker = try MosquittoBroker()
        let quiet = try SimulatedBoard(), torn = try SimulatedBoard()
        // Before the gateway listens: whole lines (discarded, not resynchronised) on one, the head
        // of a line on the other (its tail must be dropped, not taken for a line of its own).
        _ = quiet.send("door=before")
        _ = torn.writeBytes(Array("door=befo".utf8))
        let subscriber = try Subscriber(port: broker.port, filter: "wiregate/#")
        let harness = try GatewayHarness(
            yaml: GatewayHarness.yaml(
                port: broker.port,
                boards: """
                      - { name: quiet, match: { path: \(quiet.path) }, protocol: kv, settle: 0s, classes: { door: critical } }
                      - { name: torn, match: { path: \(torn.path) }, protocol: kv, settle: 0s, classes: { door: critical } }
                    """))
        let online = await eventually {
            let quietOnline = harness.gateway.directory.isOnline("quiet")
            let tornOnline = harness.gateway.directory.isOnline("torn")
            return quietOnline && tornOnline
        }
        #expect(online)
        _ = quiet.send("door=first")
        _ = torn.writeBytes(Array("re\ndoor=first\n".utf8))
        let doors = { @Sendable (board: String) in
            subscriber.messages.filter { $0.topic == "wiregate/test-gw/\(board)/door" }.map(\.payload)
        }
        #expect(
            await subscriber.waitAsync(timeout: .seconds(10)) { _ in
                doors("quiet") == ["first"] && doors("torn") == ["first"]
            },
            "quiet: \(doors("quiet")), torn: \(doors("torn"))")
        await harness.stop()
    }

    @Test func noiseAndOverlongLinesAreCountedAndNeighboursSurvive() async throws {
        let broker = try MosquittoBroker()
        let board = try SimulatedBoard()
        let subscriber = try Subscriber(port: broker.port, filter: "wiregate/#")
        let harness = try GatewayHarness(
            yaml: GatewayHarness.yaml(
                port: broker.port,
                boards: """
                      - { name: sim, match: { path: \(board.path) }, protocol: kv, settle: 0s, max_line: 64 }
                    """))
        await feed(board, protocol: "kv") { subscriber.messages.contains { $0.topic == "wiregate/test-gw/sim/seq" } }
        board.send("before=1")
        board.writeBytes([0x00, 0xFF, 0x13, 0x37, 0x0A])  // binary noise
        board.send(String(repeating: "x", count: 500))  // over-long
        board.writeBytes(Array("bad=\u{1}".utf8) + [0xC3, 0x28, 0x0A])  // invalid UTF-8
        board.send("a/#=hostile;$SYS=2")  // hostile keys
        board.send("nonsense")  // does not decode
        board.send("after=2")
        #expect(
            await subscriber.waitAsync(timeout: .seconds(5)) {
                $0.contains { $0.topic == "wiregate/test-gw/sim/after" }
            })
        let topics = subscriber.messages.map(\.topic)
        #expect(topics.contains("wiregate/test-gw/sim/before"))
        #expect(topics.contains("wiregate/test-gw/sim/a__"))
        #expect(topics.contains("wiregate/test-gw/sim/_SYS"))
        #expect(topics.allSatisfy { $0.hasPrefix("wiregate/test-gw/") })
        let counters = harness.board("sim")!.counters
        #expect(counters.rejected[.overlong] == 1)
        #expect(counters.rejected[.nul] == 1)
        #expect(counters.rejected[.control] == 1)
        #expect(counters.malformed == 1)
        await harness.stop()
    }

    @Test func brokerRestartLosesNothingQueued() async throws {
        let broker = try MosquittoBroker(persistent: true)
        let board = try SimulatedBoard()
        // A persistent session: the broker keeps the subscription and queues for it across its restart.
        let subscriber = try Subscriber(
            port: broker.port, filter: "wiregate/test-gw/sim/line",
            persistentID: "restart-\(UUID().uuidString.prefix(8))")
        let harness = try GatewayHarness(
            yaml: GatewayHarness.yaml(
                port: broker.port,
                boards: """
                      - { name: sim, match: { path: \(board.path) }, protocol: raw, settle: 0s }
                    """))
        #expect(await eventually { harness.gateway.directory.isOnline("sim") && harness.gateway.mqtt.isConnected })
        board.send("prime")  // a line before the ones that count
        board.send("before")
        #expect(await subscriber.waitAsync(timeout: .seconds(5)) { $0.contains { $0.payload == "before" } })
        broker.stop()
        #expect(await eventually { !harness.gateway.mqtt.isConnected })
        for n in 0..<300 { board.send("while-away-\(n)") }
        #expect(await eventually { harness.board("sim")!.counters.lines >= 301 })
        try broker.start()
        #expect(
            await subscriber.waitAsync(timeout: .seconds(15)) {
                $0.filter { $0.payload.hasPrefix("while-away-") }.count >= 300
            })
        let payloads = subscriber.messages.map(\.payload).filter { $0.hasPrefix("while-away-") }
        let expected = (0..<300).map { "while-away-\($0)" }
        // Nothing lost, and in order (QoS 1 may repeat one at the reconnect, never reorder first deliveries).
        var firstSeen: [String] = []
        for payload in payloads where !firstSeen.contains(payload) { firstSeen.append(payload) }
        #expect(firstSeen == expected)
        #expect(harness.gateway.mqtt.counters.connects >= 2)
        #expect(await harness.gateway.journal.pendingCount().values.reduce(0, +) == 0)
        await harness.stop()
    }
}

extension LivePathTests {
    @Test func brokerKilledLosesNothingJournaled() async throws {
        let broker = try MosquittoBroker(persistent: true)
        let board = try SimulatedBoard()
        let subscriber = try Subscriber(
            port: broker.port, filter: "wiregate/test-gw/sim/#", persistentID: "kill-\(UUID().uuidString.prefix(8))")
        let harness = try GatewayHarness(
            yaml: GatewayHarness.yaml(
                port: broker.port,
                boards: """
                      - { name: sim, match: { path: \(board.path) }, protocol: kv, settle: 0s, classes: { door: critical } }
                    """))
        #expect(await eventually { harness.gateway.directory.isOnline("sim") && harness.gateway.mqtt.isConnected })
        board.send("door=prime")
        for n in 0..<50 { board.send(n % 5 == 0 ? "door=before-\(n)" : "temperature=before-\(n)") }
        #expect(
            await subscriber.waitAsync(timeout: .seconds(10)) {
                Set($0.filter { $0.payload.hasPrefix("before-") }.map(\.payload)).count == 50
            })
        // The subscriber's session must be on disk before the kill: wait for an autosave after now.
        let database = broker.directory.appendingPathComponent("mosquitto.db").path
        let subscribed = Date()
        #expect(
            await eventually {
                ((try? FileManager.default.attributesOfItem(atPath: database)[.modificationDate]) as? Date).map {
                    $0 > subscribed
                } ?? false
            })
        broker.kill()  // SIGKILL: no clean shutdown, no save
        #expect(await eventually { !harness.gateway.mqtt.isConnected })
        for n in 0..<100 { board.send(n % 5 == 0 ? "door=during-\(n)" : "temperature=during-\(n)") }
        #expect(await eventually { await harness.gateway.journal.pendingCount().values.reduce(0, +) == 100 })
        try broker.start()
        #expect(
            await subscriber.waitAsync(timeout: .seconds(15)) {
                $0.filter { $0.payload.hasPrefix("during-") }.count >= 100
            })
        let during = subscriber.messages.filter { $0.payload.hasPrefix("during-") }
        #expect(Set(during.map(\.payload)) == Set((0..<100).map { "during-\($0)" }))
        // Per class, in sequence order (first deliveries: QoS 1 may repeat a message, never reorder it).
        for suffix in ["/door", "/temperature"] {
            var numbers: [Int] = []
            for message in during where message.topic.hasSuffix(suffix) {
                let number = Int(message.payload.dropFirst("during-".count))!
                if !numbers.contains(number) { numbers.append(number) }
            }
            #expect(numbers == numbers.sorted())
        }
        await harness.stop()
    }
}

/// Publishes one QoS 1 message with mosquitto_pub and waits (without holding a thread of the shared pool, which
/// the in-process gateways of other tests need) until it has exited, at most 5 s.
func publish(port: Int, topic: String, payload: String, retain: Bool = false) async throws {
    let process = try ChildProcess(
        "/usr/bin/mosquitto_pub",
        ["-h", "127.0.0.1", "-p", "\(port)", "-q", "1", "-t", topic, "-m", payload]
            + (retain ? ["-r"] : []))
    _ = await eventually(timeout: .seconds(5)) { !process.isRunning }
}
