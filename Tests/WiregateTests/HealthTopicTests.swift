import Foundation
import Testing
import Wiregate
import WiregateCore
import WiregateTestKit

/// `<base>/<gateway>/health`: what it says, that it is retained, and that a change is told at once.
@Suite(.serialized) struct HealthTopicTests {
    func decode(_ message: Subscriber.Message?) -> HealthReport? {
        message.flatMap { try? HealthReport.decoder().decode(HealthReport.self, from: Data($0.payload.utf8)) }
    }

    @Test func theReportIsRetainedSaysWhatIsAndFollowsAChangeAtOnce() async throws {
        let broker = try MosquittoBroker()
        let board = try SimulatedBoard()
        let harness = try GatewayHarness(
            yaml: GatewayHarness.yaml(
                port: broker.port,
                boards: """
                      - { name: hall, match: { path: \(board.path) }, protocol: kv, settle: 0s }
                    """, mqttExtra: ", health_interval: 60s"))
        #expect(await eventually { harness.gateway.directory.isOnline("hall") && harness.gateway.mqtt.isConnected })
        for n in 0..<4 { _ = board.send("temp=\(n)") }
        #expect(await eventually { harness.gateway.directory.all.first?.counters.lines == 4 })
        // A subscriber that comes later gets the last report, retained (the board's change was one).
        let late = try Subscriber(port: broker.port, filter: "wiregate/test-gw/health")
        // The retained report, then (within the one-a-second limit) the board's change if it was not in it yet.
        #expect(
            await late.waitAsync(timeout: .seconds(10)) { messages in
                messages.contains {
                    self.decode($0).map { $0.mqtt.connected && $0.boards["hall"]?.online == true } ?? false
                }
            })
        let report = try #require(late.messages.compactMap(decode).last)
        #expect(report.gateway == "test-gw")
        #expect(report.version == WiregateVersion.current)
        #expect(abs(Double(report.responseTime) / 1000 - Date().timeIntervalSince1970) < 120)
        #expect(report.mqtt.connected)
        #expect(report.boards["hall"]?.online == true)
        #expect(report.backlog["mqtt"]?["critical"] != nil)
        #expect(report.backlog["mqtt"]?["telemetry"] != nil)
        #expect(report.journal.bytes > 0)
        #expect(report.journal.durable)
        #expect(report.journal.dropped == ["critical": 0, "telemetry": 0])
        #expect(report.process.memoryUsedMb > 1)
        #expect(report.os.loadAverage.count == 3)
        // The raw JSON has Zigbee2MQTT's names where they mean the same.
        let raw = try #require(late.messages.first?.payload)
        for key in ["\"response_time\"", "\"uptime_sec\"", "\"memory_used_mb\"", "\"load_average\"", "\"queued\""] {
            #expect(raw.contains(key), "\(key) in \(raw)")
        }

        // A change is told at once, not at the next 60 s report.
        let watcher = try Subscriber(port: broker.port, filter: "wiregate/test-gw/health")
        #expect(await watcher.waitAsync(timeout: .seconds(10)) { !$0.isEmpty })
        board.hangUp()
        #expect(
            await watcher.waitAsync(timeout: .seconds(10)) { messages in
                messages.contains { self.decode($0)?.boards["hall"]?.online == false }
            })
        // health.json holds the same for `wiregate status`.
        #expect(await eventually { HealthReport.read(for: harness.gateway.config)?.boards["hall"]?.online == false })
        await harness.stop()
    }

    @Test func theReportComesEveryIntervalWithoutAChange() async throws {
        let broker = try MosquittoBroker()
        let board = try SimulatedBoard()
        let harness = try GatewayHarness(
            yaml: GatewayHarness.yaml(
                port: broker.port,
                boards: """
                      - { name: hall, match: { path: \(board.path) }, protocol: kv, settle: 0s }
                    """, mqttExtra: ", health_interval: 1s"))
        #expect(await eventually { harness.gateway.directory.isOnline("hall") && harness.gateway.mqtt.isConnected })
        try await Task.sleep(for: .seconds(1))
        let watcher = try Subscriber(port: broker.port, filter: "wiregate/test-gw/health")
        try await Task.sleep(for: .milliseconds(4500))
        // The retained one, then one a second at least (nothing changed meanwhile).
        let reports = watcher.messages.compactMap(decode)
        #expect(reports.count >= 4, "\(reports.count)")
        let times = reports.map(\.responseTime)
        #expect(times == times.sorted())
        #expect(reports.allSatisfy { $0.mqtt.connected && $0.boards["hall"]?.online == true })
        await harness.stop()
    }
}
