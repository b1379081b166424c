import ArgumentParser
import Foundation
import Glibc
import Logging
import Wiregate
import WiregateCore
import WiregateTestKit

/// A backlog journaled while the broker was away, replayed by the release daemon:
/// events/s from its start until a subscriber has the last event, and its peak RSS.
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
        // Unlimited queue: Mosquitto otherwise drops QoS 1 messages past 1,000 queued for a slow subscriber.
        let broker = try MosquittoBroker(
            extraConfig: "max_queued_messages 0\n" + (ProcessInfo.processInfo.environment["BENCH_BROKER_CONFIG"] ?? ""))
        let yaml = gatewayConfig(port: broker.port, state: state, boardPath: "/nonexistent")
        let config = try GatewayConfig.parse(yaml: yaml, file: "bench")
        do {
            let journal = try Journal(directory: state, settings: config.journal, logger: Logger(label: "bench"))
            let now = Date()
            for start in stride(from: 0, to: size, by: 1000) {
                let batch = (start..<min(size, start + 1000)).map { n in backlogEvent(n, at: now) }
                await journal.append(batch)
                if start % 100_000 == 0 { await journal.flush() }
            }
            await journal.flush()
        }
        let configPath = state + "/wiregate.yaml"
        try yaml.write(toFile: configPath, atomically: true, encoding: .utf8)
        let journalBytes = try JournalStatus.read(stateDirectory: state).bytes
        // The end is seen by a subscriber that exits after the last event (the cursor on disk
        // moves only every few seconds). It shares the two cores: the figure is conservative.
        let subscriber = try ChildProcess(
            "/usr/bin/mosquitto_sub",
            [
                "-p", "\(broker.port)", "-q", "0", "-C", "\(size)",
                "-t", "wiregate/bench/sim/door", "-t", "wiregate/bench/sim/temperature"
            ], stdout: open("/dev/null", O_WRONLY))
        try await Task.sleep(for: .milliseconds(300))
        let start = ContinuousClock.now
        let daemon = try ChildProcess(wiregateBinary, ["run", "--config", configPath])
        // RSS counts the mapped code of the binary and its libraries too (clean file pages the
        // kernel can drop and reread); RssAnon is the memory the daemon itself allocated.
        var peak = 0, peakAnon = 0
        while subscriber.isRunning {
            peak = max(peak, ProcessMemory.status(daemon.pid, "VmHWM") ?? 0)
            peakAnon = max(peakAnon, ProcessMemory.status(daemon.pid, "RssAnon") ?? 0)
            try await Task.sleep(for: .milliseconds(20))
        }
        let elapsed = seconds(ContinuousClock.now - start)
        peak = max(peak, ProcessMemory.status(daemon.pid, "VmHWM") ?? 0)
        let file = ProcessMemory.status(daemon.pid, "RssFile") ?? 0
        daemon.terminate()
        print(
            "replay: \(size) events (1% critical, journal \(journalBytes / 1_048_576) MiB) in \(String(format: "%.1f", elapsed)) s: "
                + "\(format(Double(size) / elapsed)) events/s, daemon peak RSS \(peak / 1024) MiB (\(peak) KiB), "
                + "of which anonymous (heap, stacks) at most \(peakAnon / 1024) MiB (\(peakAnon) KiB); mapped files at the end \(file / 1024) MiB"
        )
    }
}
