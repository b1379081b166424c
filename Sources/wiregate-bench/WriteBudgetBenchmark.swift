import ArgumentParser
import Foundation
import Wiregate
import WiregateCore
import WiregateTestKit

/// Bytes the release daemon makes the kernel write (`write_bytes` of /proc/PID/io) for
/// telemetry at a steady rate, with the broker up and with it down.
struct WriteBudgetBenchmark: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "writes")

    @Option(help: "Seconds per run.")
    var seconds = 60

    @Option(help: "Rates in events/s, one run each with the broker up and one with it down (comma-separated).")
    var rates = "10,1000"

    func run() async throws {
        print("disk writes of the daemon (write_bytes), telemetry only, default journal settings, \(seconds) s per run")
        for brokerUp in [true, false] {
            for rate in rates.split(separator: ",").compactMap({ Int($0) }) {
                try await measure(rate: rate, brokerUp: brokerUp)
            }
        }
    }

    func measure(rate: Int, brokerUp: Bool) async throws {
        // On the real disk, not a tmpfs: write_bytes counts what reaches the block layer.
        let state = "/var/tmp/wiregate-bench-writes-\(UUID())"
        try FileManager.default.createDirectory(atPath: state, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: state) }
        let broker = try MosquittoBroker()
        if !brokerUp { broker.stop() }
        let board = try SimulatedBoard()
        let configPath = state + "/wiregate.yaml"
        try gatewayConfig(port: broker.port, state: state, boardPath: board.path).write(
            toFile: configPath, atomically: true, encoding: .utf8)
        let daemon = try ChildProcess(wiregateBinary, ["run", "--config", configPath])
        while (try? DaemonState.read(stateDirectory: state))?.boards["sim"] != true {
            try await Task.sleep(for: .milliseconds(20))
        }
        board.send("temperature=0")
        try await Task.sleep(for: .seconds(2))  // start-up writes (schema, status.json) are not the steady state
        let before = writeBytes(daemon.pid) ?? 0
        let interval = Duration.seconds(1) / rate
        let start = ContinuousClock.now
        let count = rate * seconds
        for n in 0..<count {
            try await Task.sleep(until: start + interval * n, clock: .continuous)
            board.send("temperature=\(n % 300)")
        }
        try await Task.sleep(for: .seconds(1))
        let written = (writeBytes(daemon.pid) ?? 0) - before
        daemon.terminate()
        let perSecond = Double(written) / Double(seconds)
        print(
            "  broker \(brokerUp ? "up  " : "down"), \(rate) events/s: \(written) bytes in \(seconds) s = "
                + "\(format(perSecond / 1024)) KiB/s, \(format(Double(written) / Double(count))) bytes/event")
    }
}
