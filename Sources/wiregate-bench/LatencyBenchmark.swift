import ArgumentParser
import Foundation
import Histogram
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
        let histograms = Mutex((critical: Histogram<UInt64>(highestTrackableValue: 60_000_000), telemetry: Histogram<UInt64>(highestTrackableValue: 60_000_000)))
        subscriber.start()
        let receiving = Task {
            for await event in subscriber.events {
                switch event {
                case .connected:
                    try? subscriber.subscribe("wiregate/bench/sim/+")
                case .message(let topic, let payload, _):
                    let arrived = monotonicNanoseconds()
                    guard let sent = UInt64(String(decoding: payload, as: UTF8.self)), arrived > sent else { continue }
                    let micros = (arrived - sent) / 1000
                    histograms.withLock { h in
                        if topic.hasSuffix("/door") { _ = h.critical.record(micros) } else { _ = h.telemetry.record(micros) }
                    }
                default: break
                }
            }
        }
        let daemon = try ChildProcess(wiregateBinary, ["run", "--config", configPath])
        while (try? DaemonState.read(stateDirectory: state))?.boards["sim"] != true || !subscriber.isConnected {
            try await Task.sleep(for: .milliseconds(20))
        }
        board.send("temperature=0")   // the partial first line
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
        let (critical, telemetry) = histograms.withLock { ($0.critical, $0.telemetry) }
        print("latency: pty line -> subscriber through the daemon, \(rate) lines/s for \(seconds) s, microseconds")
        for (name, histogram) in [("critical", critical), ("telemetry", telemetry)] {
            print("  \(name): n=\(histogram.totalCount) p50=\(histogram.valueAtPercentile(50)) p99=\(histogram.valueAtPercentile(99)) "
                  + "p99.9=\(histogram.valueAtPercentile(99.9)) max=\(histogram.max)")
        }
    }
}
