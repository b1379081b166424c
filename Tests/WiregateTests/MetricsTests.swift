import Foundation
import Glibc
import Testing
import Wiregate
import WiregateCore
import WiregateTestKit

/// `/metrics` scraped from a running gateway: the values say what the test did, the labels never
/// carry board data, and the endpoint answers only what and where it should.
@Suite(.serialized) struct MetricsTests {
    private func scrape(_ port: Int) async -> Exposition? {
        guard let answer = await httpRequest(port: port), answer.status == 200 else { return nil }
        return Exposition(answer.body)
    }

    @Test func countersAndGaugesSayWhatHappened() async throws {
        let broker = try MosquittoBroker()
        let board = try SimulatedBoard()
        let metricsPort = try freeLoopbackPort()
        let subscriber = try Subscriber(port: broker.port, filter: "wiregate/test-gw/sim/#")
        let harness = try GatewayHarness(
            yaml: GatewayHarness.yaml(
                port: broker.port,
                boards: """
                      - { name: sim, match: { path: \(board.path) }, protocol: kv, settle: 0s, max_line: 64, classes: { door: critical } }
                    """, sections: "metrics: { listen: 127.0.0.1:\(metricsPort) }"))
        #expect(await eventually { harness.gateway.directory.isOnline("sim") && harness.gateway.mqtt.isConnected })
        #expect(await eventually { await self.scrape(metricsPort) != nil })
        // The board's data: values and keys that must never become labels.
        _ = board.send("prime=1")
        for n in 0..<5 { _ = board.send("temp=2\(n)") }
        _ = board.send("door=open")
        _ = board.send("# a board talking about itself")
        _ = board.send("not a key value line")
        _ = board.writeBytes(Array("bad\u{01}byte\n".utf8))
        _ = board.send(String(repeating: "x", count: 100))
        #expect(await subscriber.waitAsync(timeout: .seconds(10)) { $0.contains { $0.payload == "open" } })
        #expect(
            await eventually {
                guard let scrape = await self.scrape(metricsPort) else { return false }
                return scrape.value("wiregate_mqtt_publishes_total", ["class": "telemetry", "result": "acknowledged"])
                    == 6
                    && scrape.value("wiregate_mqtt_publishes_total", ["class": "critical", "result": "acknowledged"])
                        == 1
            })
        let before = try #require(await scrape(metricsPort))
        let lines = { (result: String) in before.value("wiregate_board_lines_total", ["board": "sim", "result": result])
        }
        #expect(lines("published") == 7)
        #expect(lines("annotation") == 1)
        #expect(lines("malformed") == 1)
        #expect(lines("noise") == 1)
        #expect(lines("overlong") == 1)
        #expect(before.value("wiregate_journal_events_appended_total", ["class": "telemetry"]) == 6)
        #expect(before.value("wiregate_journal_events_appended_total", ["class": "critical"]) == 1)
        #expect(before.value("wiregate_board_up", ["board": "sim"]) == 1)
        #expect(before.value("wiregate_board_opens_total", ["board": "sim"]) == 1)
        #expect(before.value("wiregate_mqtt_connected") == 1)
        #expect(before.value("wiregate_mqtt_connects_total") == 1)
        #expect((before.value("wiregate_board_last_line_timestamp_seconds", ["board": "sim"]) ?? 0) > 1_700_000_000)
        #expect((before.value("wiregate_mqtt_last_ack_timestamp_seconds") ?? 0) > 1_700_000_000)
        #expect(before.value("wiregate_journal_durable") == 1)
        #expect((before.value("wiregate_journal_size_bytes") ?? 0) > 0)
        #expect((before.value("process_resident_memory_bytes") ?? 0) > 1_000_000)
        #expect((before.value("process_open_fds") ?? 0) > 3)
        #expect((before.value("process_start_time_seconds") ?? 0) > 1_700_000_000)
        #expect(before.value("wiregate_build_info", ["version": WiregateVersion.current]) == 1)

        // The broker killed: the gauge drops, one disconnect is counted, events wait in the backlog.
        broker.kill()
        #expect(
            await eventually(timeout: .seconds(20)) {
                await self.scrape(metricsPort)?.value("wiregate_mqtt_connected") == 0
            })
        for n in 0..<3 { _ = board.send("during=\(n)") }
        #expect(
            await eventually {
                await self.scrape(metricsPort)?.value(
                    "wiregate_journal_backlog_events", ["sink": "mqtt", "class": "telemetry"]) == 3
            })
        let down = try #require(await scrape(metricsPort))
        #expect(down.sum("wiregate_mqtt_disconnects_total") == 1)
        let oldest = down.value(
            "wiregate_journal_oldest_unsent_timestamp_seconds", ["sink": "mqtt", "class": "telemetry"])
        #expect(abs((oldest ?? 0) - Date().timeIntervalSince1970) < 60)
        #expect(down.value("wiregate_journal_backlog_events", ["sink": "mqtt", "class": "critical"]) == 0)
        #expect(
            down.value("wiregate_journal_oldest_unsent_timestamp_seconds", ["sink": "mqtt", "class": "critical"]) == 0)

        // Back: connected again, the backlog sent and acknowledged.
        try broker.start()
        #expect(
            await eventually(timeout: .seconds(30)) {
                guard let scrape = await self.scrape(metricsPort) else { return false }
                return scrape.value("wiregate_mqtt_connected") == 1
                    && scrape.value("wiregate_journal_backlog_events", ["sink": "mqtt", "class": "telemetry"]) == 0
                    && scrape.value("wiregate_mqtt_publishes_total", ["class": "telemetry", "result": "acknowledged"])
                        == 9
            })
        let after = try #require(await scrape(metricsPort))
        #expect(after.value("wiregate_mqtt_connects_total") == 2)
        #expect(after.sum("wiregate_mqtt_disconnects_total") == 1)
        #expect(after.value("wiregate_board_lines_total", ["board": "sim", "result": "published"]) == 10)
        #expect(after.sum("wiregate_journal_dropped_events_total") == 0)

        // Every label value is one the gateway chose: nothing the board sent.
        let allowed = Set<String>([
            "sim", MetricsCatalog.adoptedBoardLabel, "mqtt", "critical", "telemetry", WiregateVersion.current, "events",
            "health", "+Inf"
        ])
        .union(BrokerFailureReason.allCases.map(\.rawValue))
        .union(MQTTMetrics.PublishResult.allCases.map(\.rawValue))
        .union(BoardMetrics.LineResult.allCases.map(\.rawValue))
        .union(BoardMetrics.CommandResult.allCases.map(\.rawValue))
        .union(BackendMetrics.StatusClass.allCases.map(\.rawValue))
        .union(JournalMetrics.DropReason.allCases.map(\.rawValue))
        .union(AlarmState.allCases.map(\.rawValue))
        for sample in after.samples {
            for (key, value) in sample.labels where key != "le" {
                #expect(allowed.contains(value), "label \(key)=\(value) of \(sample.name)")
            }
        }
        // Every metric is in the catalog, with its type and help.
        let catalog = Dictionary(uniqueKeysWithValues: MetricsCatalog.entries.map { ($0.name, $0) })
        for (name, type) in after.types {
            #expect(catalog[name]?.kind.rawValue == type, "\(name): \(type)")
            #expect(after.help[name]?.isEmpty == false, "\(name) has no help")
        }
        for entry in MetricsCatalog.entries
        where !entry.name.hasPrefix("wiregate_alarm") && !entry.name.hasPrefix("wiregate_backend") {
            #expect(after.types[entry.name] != nil, "\(entry.name) is not exposed")
        }
        await harness.stop()
    }

    @Test func onlyGetAndHeadOfMetricsAndOnlyWhereConfigured() async throws {
        let broker = try MosquittoBroker()
        let board = try SimulatedBoard()
        let metricsPort = try freeLoopbackPort()
        let harness = try GatewayHarness(
            yaml: GatewayHarness.yaml(
                port: broker.port,
                boards: """
                      - { name: sim, match: { path: \(board.path) }, protocol: raw, settle: 0s }
                    """, sections: "metrics: { listen: 127.0.0.1:\(metricsPort) }"))
        #expect(await eventually { await httpRequest(port: metricsPort)?.status == 200 })
        for method in ["POST", "PUT", "DELETE", "PATCH", "OPTIONS"] {
            let answer = await httpRequest(port: metricsPort, method: method)
            #expect(answer?.status == 405, "\(method)")
            #expect(answer?.headers["allow"] == "GET, HEAD")
            #expect(answer?.body.contains("wiregate_") == false)
        }
        for path in ["/", "/metrics/../etc/passwd", "/debug", "/metricsx"] {
            #expect(await httpRequest(port: metricsPort, path: path)?.status == 404, "\(path)")
        }
        let head = await httpRequest(port: metricsPort, method: "HEAD")
        #expect(head?.status == 200)
        #expect(head?.body.isEmpty == true)
        let get = try #require(await httpRequest(port: metricsPort))
        #expect(get.headers["content-type"] == "text/plain; version=0.0.4; charset=utf-8")
        #expect(get.body.contains("wiregate_mqtt_connected"))
        // Bound to 127.0.0.1 only: another loopback address of the same host finds nobody.
        #expect(await httpRequest(host: "127.0.0.2", port: metricsPort) == nil)
        await harness.stop()
        // And gone with the gateway.
        #expect(await httpRequest(port: metricsPort) == nil)
    }

    /// A real Prometheus with the shipped rules scrapes the gateway: what it stores is what the
    /// test did, and the rules load and run against it.
    @Test func aRealPrometheusScrapesTheGatewayAndRunsTheRules() async throws {
        let broker = try MosquittoBroker()
        let board = try SimulatedBoard()
        let metricsPort = try freeLoopbackPort()
        let subscriber = try Subscriber(port: broker.port, filter: "wiregate/test-gw/hall/#")
        let harness = try GatewayHarness(
            yaml: GatewayHarness.yaml(
                port: broker.port,
                boards: """
                      - { name: hall, match: { path: \(board.path) }, protocol: kv, settle: 0s }
                    """, sections: "metrics: { listen: 127.0.0.1:\(metricsPort) }"))
        let prometheus = try PrometheusServer(scraping: "127.0.0.1:\(metricsPort)")
        #expect(await eventually { harness.gateway.directory.isOnline("hall") && harness.gateway.mqtt.isConnected })
        for n in 0..<12 { _ = board.send("temp=\(n)") }
        #expect(await subscriber.waitAsync(timeout: .seconds(10)) { $0.count >= 12 })
        #expect(
            await eventually(timeout: .seconds(60)) {
                await prometheus.query(#"wiregate_board_lines_total{job="wiregate",board="hall",result="published"}"#)?
                    .first?.value == 12
            })
        #expect(await prometheus.query(#"up{job="wiregate"}"#)?.first?.value == 1)
        // The Watchdog fires from the first evaluation: the rules file is loaded and evaluated.
        #expect(
            await eventually(timeout: .seconds(60)) {
                await prometheus.query(#"ALERTS{alertname="Watchdog",alertstate="firing"}"#)?.count == 1
            })
        #expect(await prometheus.query(#"ALERTS{alertname="WiregateBrokerDisconnected"}"#)?.isEmpty == true)

        broker.kill()
        #expect(
            await eventually(timeout: .seconds(60)) {
                await prometheus.query(#"wiregate_mqtt_connected{job="wiregate"}"#)?.first?.value == 0
            })
        // Its rule waits a minute before firing: pending now, with the gateway's labels.
        #expect(
            await eventually(timeout: .seconds(60)) {
                await prometheus.query(#"ALERTS{alertname="WiregateBrokerDisconnected",alertstate="pending"}"#)?
                    .first?.labels["severity"] == "critical"
            })
        #expect(await prometheus.query(#"sum(wiregate_mqtt_disconnects_total{job="wiregate"})"#)?.first?.value == 1)
        await harness.stop()
    }

    /// A port someone else holds: logged, and the gateway (its alarm, its data path) runs on.
    @Test func aPortInUseLeavesTheGatewayRunning() async throws {
        let broker = try MosquittoBroker()
        let board = try SimulatedBoard()
        let squatter = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(squatter) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                bind(squatter, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
        #expect(bound == 0 && listen(squatter, 1) == 0)
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(squatter, $0, &length) }
        }
        let port = Int(UInt16(bigEndian: address.sin_port))
        let subscriber = try Subscriber(port: broker.port, filter: "wiregate/test-gw/sim/line")
        let harness = try GatewayHarness(
            yaml: GatewayHarness.yaml(
                port: broker.port,
                boards: """
                      - { name: sim, match: { path: \(board.path) }, protocol: raw, settle: 0s }
                    """, sections: "metrics: { listen: 127.0.0.1:\(port) }"))
        #expect(await eventually { harness.gateway.directory.isOnline("sim") && harness.gateway.mqtt.isConnected })
        try await Task.sleep(for: .seconds(1))
        _ = board.send("prime")
        _ = board.send("still-running")
        #expect(await subscriber.waitAsync(timeout: .seconds(10)) { $0.contains { $0.payload == "still-running" } })
        #expect(harness.gateway.mqtt.isConnected)
        await harness.stop()
    }

    @Test func brokerFailureReasonsAreBoundedAndRight() {
        let cases: [(String, BrokerFailureReason)] = [
            ("cannot reach 127.0.0.1:1883: Connection refused", .unreachable),
            ("cannot reach tls.example:8883: Lookup error", .unreachable),
            ("the broker refused the connection: Not authorized (check mqtt.username, ...)", .refused),
            ("the broker's certificate (/CN=x) is not for 'y': hostname mismatch", .tls),
            ("the broker closed the connection during the TLS handshake (unexpected eof)", .tls),
            ("no CONNACK within 10 seconds (is the broker hung?)", .timeout),
            ("keepalive timeout", .timeout),
            ("The connection was lost.", .lost)
        ]
        for (text, reason) in cases { #expect(BrokerFailureReason(describing: text) == reason, "\(text)") }
    }

    @Test func offWithoutTheSection() async throws {
        let broker = try MosquittoBroker()
        let board = try SimulatedBoard()
        let harness = try GatewayHarness(
            yaml: GatewayHarness.yaml(
                port: broker.port,
                boards: """
                      - { name: sim, match: { path: \(board.path) }, protocol: raw, settle: 0s }
                    """))
        #expect(harness.gateway.metricsServer == nil)
        #expect(await eventually { harness.gateway.mqtt.isConnected })
        await harness.stop()
    }
}
