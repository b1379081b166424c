import ArgumentParser
import Foundation
import Glibc
import Logging
import Wiregate
import WiregateCore
import WiregateTestKit

/// A backlog journaled while the broker was away, replayed by the release daemon:
/// events/s from its start to the last PUBACK, and its peak RSS.
struct ReplayBenchmark: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "replay")

    @Option(help: "Backlog sizes, one run each (comma-separated).")
    var events = "250000,1000000"

    func run() async throws {
        for size in events.split(separator: ",").compactMap({ Int($0) }) {
            try await replay(size)
        }
    }

    func replay(_ size: Int) async throws {
        let state = try makeTemporaryDirectory("bench-replay")
        defer { try? FileManager.default.removeItem(atPath: state) }
        let broker = try MosquittoBroker()
        let yaml = gatewayConfig(port: broker.port, state: state, boardPath: "/nonexistent")
        let config = try GatewayConfig.parse(yaml: yaml, file: "bench")
        do {
            let journal = try Journal(directory: state, settings: config.journal, logger: Logger(label: "bench"))
            let now = Date()
            for start in stride(from: 0, to: size, by: 1000) {
                let batch = (start..<min(size, start + 1000)).map { n in
                    n % 100 == 0
                        ? Event(board: "sim", topic: "wiregate/bench/sim/door", subtopic: "door", payload: "open", eventClass: .critical, receivedAt: now)
                        : Event(board: "sim", topic: "wiregate/bench/sim/temperature", subtopic: "temperature", payload: "21.\(n % 10)", eventClass: .telemetry, receivedAt: now)
                }
                await journal.append(batch)
                if start % 100_000 == 0 { await journal.flush() }
            }
            await journal.flush()
        }
        let configPath = state + "/wiregate.yaml"
        try yaml.write(toFile: configPath, atomically: true, encoding: .utf8)
        let journalBytes = try JournalStatus.read(stateDirectory: state).bytes
        let start = ContinuousClock.now
        let daemon = try ChildProcess(wiregateBinary, ["run", "--config", configPath])
        var peak = 0
        while true {
            peak = max(peak, procStatus(daemon.pid, "VmHWM") ?? 0)
            if let status = try? JournalStatus.read(stateDirectory: state),
               status.sinks[Journal.mqttSink]?.values.reduce(0, { $0 + $1.pending }) == 0 {
                break
            }
            try await Task.sleep(for: .milliseconds(100))
        }
        let elapsed = seconds(ContinuousClock.now - start)
        peak = max(peak, procStatus(daemon.pid, "VmHWM") ?? 0)
        daemon.terminate()
        print("replay: \(size) events (1% critical, journal \(journalBytes / 1_048_576) MiB) in \(String(format: "%.1f", elapsed)) s: "
              + "\(format(Double(size) / elapsed)) events/s, daemon peak RSS \(peak / 1024) MiB (\(peak) KiB)")
    }
}
