import Foundation
import Glibc
import Testing
import Wiregate
import WiregateCore
import WiregateTestKit

/// Store and forward: what the broker did not acknowledge survives the gateway, and comes back critical first.
@Suite(.serialized) struct JournalTests {
    static let binary = CommandLineTests.binary

    @Test func gatewayKilledWhileTheBrokerIsDownLosesNoCriticalEvent() async throws {
        let broker = try MosquittoBroker(persistent: true)
        let subscriber = try Subscriber(
            port: broker.port, filter: "wiregate/crash-gw/#", persistentID: "crash-\(UUID().uuidString.prefix(8))")
        broker.stop()  // the subscriber's session and subscription are saved
        let state = try makeTemporaryDirectory("journal")
        let board = try SimulatedBoard()
        let configPath = state + "/wiregate.yaml"
        try GatewayHarness.yaml(
            port: broker.port, gatewayID: "crash-gw",
            boards: """
                  - { name: sim, match: { path: \(board.path) }, protocol: kv, settle: 0s, classes: { door: critical } }
                """, stateDirectory: state, journal: "sync: full"
        ).write(toFile: configPath, atomically: true, encoding: .utf8)

        var gateway = try ChildProcess(Self.binary, ["run", "--config", configPath])
        // The daemon's status.json says when the board is open.
        #expect(await eventually { (try? DaemonState.read(stateDirectory: state))?.boards["sim"] == true })
        for n in 0..<50 { board.send("door=\(n)") }
        // Critical events commit at once: `wiregate status` sees all of them pending.
        let pendingCritical = { @Sendable () -> Int? in
            guard let result = try? runWiregate(["status", "--json", "--config", configPath]), result.status == 0,
                let object = try? JSONSerialization.jsonObject(with: Data(result.output.utf8)) as? [String: Any],
                let journal = object["journal"] as? [String: Any], let sinks = journal["sinks"] as? [String: Any],
                let mqtt = sinks["mqtt"] as? [String: Any], let critical = mqtt["critical"] as? [String: Any]
            else { return nil }
            return critical["pending"] as? Int
        }
        #expect(await eventually { pendingCritical() == 50 })
        gateway.send(SIGKILL)
        _ = gateway.waitForExit()
        let afterKill = try runWiregate(["status", "--config", configPath])
        #expect(afterKill.output.contains("daemon: not running"))
        #expect(afterKill.output.contains("sink mqtt critical: 50 pending"))

        try broker.start()
        gateway = try ChildProcess(Self.binary, ["run", "--config", configPath])
        defer { gateway.terminate() }
        let doors = { @Sendable (messages: [Subscriber.Message]) in
            messages.filter { $0.topic == "wiregate/crash-gw/sim/door" }.map(\.payload)
        }
        #expect(
            await subscriber.waitAsync(timeout: .seconds(15)) {
                Set(doors($0)).isSuperset(of: (0..<50).map(String.init))
            })
        var firstSeen: [String] = []
        for payload in doors(subscriber.messages) where !firstSeen.contains(payload) { firstSeen.append(payload) }
        #expect(firstSeen.filter { $0 != "prime" } == (0..<50).map(String.init))
    }

    /// `sync: normal`, telemetry commit window 2 s: a process kill (not a power cut, which WAL with
    /// synchronous=NORMAL may also cost the last commits of) loses exactly the telemetry appended
    /// within the window before the kill, and nothing committed.
    @Test func gatewayKilledWithSyncNormalLosesOnlyTheUncommittedWindow() async throws {
        let broker = try MosquittoBroker(persistent: true)
        let subscriber = try Subscriber(
            port: broker.port, filter: "wiregate/crash-gw/#", persistentID: "normal-\(UUID().uuidString.prefix(8))")
        broker.stop()
        let state = try makeTemporaryDirectory("journal")
        let board = try SimulatedBoard()
        let configPath = state + "/wiregate.yaml"
        try GatewayHarness.yaml(
            port: broker.port, gatewayID: "crash-gw",
            boards: """
                  - { name: sim, match: { path: \(board.path) }, protocol: kv, settle: 0s }
                """, stateDirectory: state, journal: "sync: normal, commit_window_ms: 2000"
        ).write(toFile: configPath, atomically: true, encoding: .utf8)
        var gateway = try ChildProcess(Self.binary, ["run", "--config", configPath])
        #expect(await eventually { (try? DaemonState.read(stateDirectory: state))?.boards["sim"] == true })
        for n in 0..<20 { board.send("temperature=committed-\(n)") }
        // Past the commit window: on disk.
        #expect(
            await eventually {
                (try? JournalStatus.read(stateDirectory: state))?.sinks["mqtt"]?["telemetry"]?.pending == 20
            })
        try await Task.sleep(for: .milliseconds(300))
        for n in 0..<20 { board.send("temperature=window-\(n)") }
        try await Task.sleep(for: .milliseconds(300))  // read by the daemon, still inside its commit window
        gateway.send(SIGKILL)
        _ = gateway.waitForExit()
        try broker.start()
        gateway = try ChildProcess(Self.binary, ["run", "--config", configPath])
        defer { gateway.terminate() }
        #expect(
            await subscriber.waitAsync(timeout: .seconds(15)) {
                $0.filter { $0.payload.hasPrefix("committed-") }.count >= 20
            })
        try await Task.sleep(for: .milliseconds(500))
        let payloads = subscriber.messages.map(\.payload)
        #expect(Set(payloads.filter { $0.hasPrefix("committed-") }) == Set((0..<20).map { "committed-\($0)" }))
        #expect(payloads.filter { $0.hasPrefix("window-") }.isEmpty)  // exactly what may be lost: the last window
    }

    @Test func backlogIsReplayedCriticalFirst() async throws {
        let broker = try MosquittoBroker(persistent: true)
        let subscriber = try Subscriber(
            port: broker.port, filter: "wiregate/test-gw/#", persistentID: "replay-\(UUID().uuidString.prefix(8))")
        broker.stop()
        let board = try SimulatedBoard()
        let harness = try GatewayHarness(
            yaml: GatewayHarness.yaml(
                port: broker.port,
                boards: """
                      - { name: sim, match: { path: \(board.path) }, protocol: kv, settle: 0s, classes: { door: critical, motion: critical } }
                    """, journal: "commit_window_ms: 100"))
        #expect(await eventually { harness.gateway.directory.isOnline("sim") })
        for n in 0..<100 {
            board.send(n % 10 == 0 ? "door=\(n);temperature=\(n)" : "temperature=\(n);battery=\(n)")
        }
        #expect(await eventually { await harness.gateway.journal.pendingCount() == [.critical: 10, .telemetry: 190] })
        try broker.start()
        #expect(
            await subscriber.waitAsync(timeout: .seconds(15)) {
                $0.filter { $0.topic.hasSuffix("/temperature") }.count >= 100
            })
        let events = subscriber.messages.filter {
            ["door", "temperature", "battery"].contains($0.topic.split(separator: "/").last!)
        }
        let lastCritical = try #require(events.lastIndex { $0.topic.hasSuffix("/door") })
        let firstTelemetry = try #require(events.firstIndex { !$0.topic.hasSuffix("/door") })
        #expect(lastCritical < firstTelemetry, "critical events must all come before the telemetry backlog")
        #expect(
            events.filter { $0.topic.hasSuffix("/door") }.map(\.payload)
                == stride(from: 0, to: 100, by: 10).map(String.init))
        #expect(events.filter { $0.topic.hasSuffix("/temperature") }.map(\.payload) == (0..<100).map(String.init))
        // Replayed messages say so, with their seq and receive time (MQTT 5 user properties).
        #expect(events.allSatisfy { $0.properties.contains("replayed:true") && $0.properties.contains(" ts:2") })
        let doorSeqs = events.filter { $0.topic.hasSuffix("/door") }.compactMap {
            property("seq", in: $0.properties).flatMap(Int.init)
        }
        #expect(doorSeqs.count == 10 && doorSeqs == doorSeqs.sorted())
        #expect(await eventually { await harness.gateway.journal.pendingCount().values.reduce(0, +) == 0 })
        await harness.stop()
    }

    @Test func latestTelemetryIsCoalescedOnReplay() async throws {
        let broker = try MosquittoBroker(persistent: true)
        let subscriber = try Subscriber(
            port: broker.port, filter: "wiregate/test-gw/#", persistentID: "latest-\(UUID().uuidString.prefix(8))")
        broker.stop()
        let board = try SimulatedBoard()
        let harness = try GatewayHarness(
            yaml: GatewayHarness.yaml(
                port: broker.port,
                boards: """
                      - { name: sim, match: { path: \(board.path) }, protocol: kv, settle: 0s, latest: [ temperature, "env/*" ] }
                    """, journal: "commit_window_ms: 0"))
        #expect(await eventually { harness.gateway.directory.isOnline("sim") })
        for n in 0..<50 { board.send("temperature=\(n);battery=\(n)") }
        #expect(await eventually { await harness.gateway.journal.pendingCount()[.telemetry] == 100 })
        try broker.start()
        #expect(
            await subscriber.waitAsync(timeout: .seconds(15)) {
                $0.filter { $0.topic.hasSuffix("/battery") }.count >= 50
            })
        try await Task.sleep(for: .milliseconds(300))
        let temperatures = subscriber.messages.filter { $0.topic.hasSuffix("/temperature") }.map(\.payload)
        #expect(temperatures == ["49"])  // only the newest value of a `latest` topic
        #expect(
            subscriber.messages.filter { $0.topic.hasSuffix("/battery") }.map(\.payload) == (0..<50).map(String.init))
        // The skipped rows do not linger: the cursor moved past them.
        #expect(await eventually { await harness.gateway.journal.pendingCount().values.reduce(0, +) == 0 })
        // Live, every value is sent.
        board.send("temperature=live-1")
        board.send("temperature=live-2")
        #expect(
            await subscriber.waitAsync(timeout: .seconds(5)) { $0.filter { $0.payload.hasPrefix("live-") }.count == 2 })
        await harness.stop()
    }

    @Test func sequenceNumbersNeverRepeatAcrossRestarts() async throws {
        let state = try makeTemporaryDirectory("journal")
        let event = Event(
            board: "b", topic: "t/x", subtopic: "x", payload: "1", eventClass: .critical, receivedAt: Date())
        var journal: Journal? = try Journal(
            directory: state, settings: .init(commitWindow: .zero, sync: .full), logger: .init(label: "t"))
        await journal!.append([event, event, event])
        let first = await journal!.lastSeq
        // Everything acknowledged and deleted: the next start still goes on from there.
        let sent = await journal!.mqtt.next(max: 10)
        #expect(sent.map(\.seq) == [first - 2, first - 1, first])
        await journal!.mqtt.acknowledge(sent)
        // A clean stop records the exact last number (a crash costs a gap instead: see JournalSequenceTests).
        await journal!.close()
        journal = nil
        let reopened = try Journal(
            directory: state, settings: .init(commitWindow: .zero, sync: .full), logger: .init(label: "t"))
        await reopened.append([event])
        #expect(await reopened.lastSeq == first + 1)
        #expect(await reopened.pendingCount() == [.critical: 1, .telemetry: 0])
    }
}

/// The value of one user property in mosquitto_sub's `%P` output (`name:value name:value`).
func property(_ name: String, in properties: String) -> String? {
    properties.split(separator: " ").first { $0.hasPrefix(name + ":") }.map { String($0.dropFirst(name.count + 1)) }
}
