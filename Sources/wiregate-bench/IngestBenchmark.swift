import ArgumentParser
import Foundation
import Logging
import ServiceLifecycle
import Wiregate
import WiregateCore
import WiregateTestKit

/// Events appended to the journal until the broker acknowledged them all, against a bare
/// libmosquitto QoS 1 publish loop (window 100) measured in the same run.
struct IngestBenchmark: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "ingest")

    @Option(help: "Events per run.")
    var events = 200_000

    @Flag(help: "Against the house broker's deploy config: TLS with client certificates, password, ACL.")
    var tls = false

    /// The `mqtt:` keys beyond host and port, for the TLS broker.
    private var mqttExtra: String {
        guard tls, let certificates else { return "" }
        let file = { (name: String) in certificates.appendingPathComponent(name).path }
        return
            ", username: wiregate, tls: { ca_file: \(file("ca.crt")), cert_file: \(file("wiregate.crt")), key_file: \(file("wiregate.key")) }"
    }
    private var certificates: URL?
    private var password: String? { tls ? HouseBroker.passwords["wiregate"] : nil }

    mutating func run() async throws {
        let port: Int
        let keep: AnyObject
        if tls {
            let house = try HouseBroker()
            certificates = house.certificates
            (port, keep) = (house.port, house)
        } else {
            let broker = try MosquittoBroker(
                extraConfig: ProcessInfo.processInfo.environment["BENCH_BROKER_CONFIG"] ?? "")
            (port, keep) = (broker.port, broker)
        }
        let bare = try await bareLoop(port: port)
        let journaled = try await throughJournal(port: port)
        withExtendedLifetime(keep) {}
        print(
            "ingest: \(events) events, QoS 1 to PUBACK, mosquitto on loopback\(tls ? ", TLS 1.3 with client certificate (deploy/mosquitto)" : "")"
        )
        print("  bare libmosquitto loop (window 100): \(format(bare)) events/s")
        print("  through the journal and the MQTT sink: \(format(journaled)) events/s")
        print("  ratio: \(String(format: "%.2f", journaled / bare))")
    }

    func bareLoop(port: Int) async throws -> Double {
        let yaml = gatewayConfig(
            port: port, state: "/tmp", boardPath: "/nonexistent", gatewayID: tls ? "house-1" : "bench",
            mqttExtra: mqttExtra)
        let config = try GatewayConfig.parse(yaml: yaml, file: "bench")
        var options = MosquittoClient.Options(config: config, password: password)
        options.will = nil
        options.clientID = "bench-bare"
        let client = try MosquittoClient(options: options)
        client.start()
        var iterator = client.events.makeAsyncIterator()
        while let event = await iterator.next() { if case .connected = event { break } }
        let start = ContinuousClock.now
        var sent = 0, acknowledged = 0
        while acknowledged < events {
            while sent < events && sent - acknowledged < 100 {
                _ = try client.publish(topic: "wiregate/\(config.gateway.id)/bare/temperature", payload: "21.5").mid()
                sent += 1
            }
            guard let event = await iterator.next() else { break }
            if case .published = event { acknowledged += 1 }
        }
        let elapsed = ContinuousClock.now - start
        await client.shutdown()
        return Double(events) / seconds(elapsed)
    }

    func throughJournal(port: Int) async throws -> Double {
        let state = try makeTemporaryDirectory("bench-ingest")
        defer { try? FileManager.default.removeItem(atPath: state) }
        let config = try GatewayConfig.parse(
            yaml: gatewayConfig(
                port: port, state: state, boardPath: "/nonexistent",
                gatewayID: tls ? "house-1" : "bench", mqttExtra: mqttExtra), file: "bench")
        var logger = Logger(label: "bench")
        logger.logLevel = .warning
        let journal = try Journal(directory: state, settings: config.journal, logger: logger)
        let boards = BoardDirectory(boards: [])
        let sink = try MQTTSink(
            config: config, password: password, outbox: journal.reader(for: Journal.mqttSink, coalescingLatest: true),
            availability: Availability(config: config, directory: boards),
            handler: CommandRouter(config: config, boards: boards, logger: logger), logger: logger)
        let group = ServiceGroup(configuration: .init(services: [.init(service: sink)], logger: logger))
        let running = Task { try await group.run() }
        while !sink.isConnected { try await Task.sleep(for: .milliseconds(10)) }
        try await Task.sleep(for: .milliseconds(100))
        let before = sink.counters.acknowledged
        let now = Date()
        let batch = (0..<10).map { n in
            Event(
                board: "sim", topic: "wiregate/\(config.gateway.id)/sim/temperature", subtopic: "temperature",
                payload: "21.\(n)",
                eventClass: .telemetry, receivedAt: now)
        }
        let start = ContinuousClock.now
        for _ in 0..<(events / batch.count) { await journal.append(batch) }
        while sink.counters.acknowledged - before < events { try await Task.sleep(for: .milliseconds(1)) }
        let elapsed = ContinuousClock.now - start
        await group.triggerGracefulShutdown()
        _ = await running.result
        return Double(events) / seconds(elapsed)
    }
}

func seconds(_ duration: Duration) -> Double {
    Double(duration.components.seconds) + Double(duration.components.attoseconds) / 1e18
}
