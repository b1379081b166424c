import ArgumentParser
import Foundation
import Histogram
import Logging
import Synchronization
import Wiregate
import WiregateCore
import WiregateTestKit

/// Line written on the pty to message at a subscriber, through the release daemon, at a steady rate.
struct LatencyBenchmark: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "latency")

    @Option(help: "Lines per second (one in ten critical).")
    var rate = 1000

    @Option(help: "Seconds to run.")
    var seconds = 20

    @Option(help: "Telemetry events journaled before the daemon starts: it drains them while the live lines come.")
    var backlog = 0

    func run() async throws {
        let state = try makeTemporaryDirectory("bench-latency")
        defer { try? FileManager.default.removeItem(atPath: state) }
        let broker = try MosquittoBroker()
        let board = try SimulatedBoard()
        let yaml = gatewayConfig(port: broker.port, state: state, boardPath: board.path)
        let configPath = state + "/wiregate.yaml"
        try yaml.write(toFile: configPath, atomically: true, encoding: .utf8)

        // The subscriber: a second libmosquitto client in this process, stamping arrival.
        let config = try GatewayConfig.parse(yaml: yaml, file: "bench")
        var options = MosquittoClient.Options(config: config, password: nil)
        options.will = nil
        options.clientID = "bench-subscriber"
        let subscriber = try MosquittoClient(options: options)
        let histograms = Mutex(
            (
                critical: Histogram<UInt64>(highestTrackableValue: 60_000_000),
                telemetry: Histogram<UInt64>(highestTrackableValue: 60_000_000),
                duringDrain: Histogram<UInt64>(highestTrackableValue: 60_000_000), drained: 0
            ))
        let backlog = self.backlog
        subscriber.start()
        let receiving = Task {
            for await event in subscriber.events {
                switch event {
                case .connected:
                    try? subscriber.subscribe("wiregate/bench/sim/+")
                case .message(let topic, let payload, _):
                    let arrived = monotonicNanoseconds()
                    if topic.hasSuffix("/backlog") {
                        histograms.withLock { $0.drained += 1 }
                        continue
                    }
                    guard let sent = UInt64(String(decoding: payload, as: UTF8.self)), arrived > sent else { continue }
                    let micros = (arrived - sent) / 1000
                    histograms.withLock { h in
                        if topic.hasSuffix("/door") {
                            _ = h.critical.record(micros)
                            if h.drained < backlog { _ = h.duringDrain.record(micros) }
                        } else {
                            _ = h.telemetry.record(micros)
                        }
                    }
                default: break
                }
            }
        }
        if backlog > 0 {
            // Journaled while the broker was away: telemetry the daemon replays as the live lines come.
            let journal = try Journal(directory: state, settings: config.journal, logger: Logger(label: "bench"))
            let now = Date()
            for start in stride(from: 0, to: backlog, by: 1000) {
                await journal.append(
                    (start..<min(backlog, start + 1000)).map { _ in
                        Event(
                            board: "sim", topic: "wiregate/bench/sim/backlog", subtopic: "backlog", payload: "x",
                            eventClass: .telemetry, receivedAt: now)
                    })
            }
            await journal.close()
        }
        let daemon = try ChildProcess(wiregateBinary, ["run", "--config", configPath])
        while (try? DaemonState.read(stateDirectory: state))?.boards["sim"] != true || !subscriber.isConnected {
            try await Task.sleep(for: .milliseconds(20))
        }
        board.send("temperature=0")  // the partial first line
        try await Task.sleep(for: .milliseconds(200))
        let interval = Duration.seconds(1) / rate
        let start = ContinuousClock.now
        for n in 0..<(rate * seconds) {
            try await Task.sleep(until: start + interval * n, clock: .continuous)
            board.send((n % 10 == 0 ? "door=" : "temperature=") + String(monotonicNanoseconds()))
        }
        try await Task.sleep(for: .seconds(1))
        daemon.terminate()
        receiving.cancel()
        await subscriber.shutdown()
        let (critical, telemetry, duringDrain, drained) = histograms.withLock {
            ($0.critical, $0.telemetry, $0.duringDrain, $0.drained)
        }
        print(
            "latency: pty line -> subscriber through the daemon, \(rate) lines/s for \(seconds) s, microseconds"
                + (backlog > 0 ? ", while draining a \(backlog)-event telemetry backlog (\(drained) arrived)" : ""))
        var rows = [("critical", critical), ("telemetry", telemetry)]
        if backlog > 0 { rows.insert(("critical during the drain", duringDrain), at: 1) }
        for (name, histogram) in rows {
            print(
                "  \(name): n=\(histogram.totalCount) p50=\(histogram.valueAtPercentile(50)) p99=\(histogram.valueAtPercentile(99)) "
                    + "p99.9=\(histogram.valueAtPercentile(99.9)) max=\(histogram.max)")
        }
    }
}
