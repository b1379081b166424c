import ArgumentParser
import Foundation
import Glibc
import WiregateCore
import WiregateTestKit

@main
struct Bench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "wiregate-bench",
        abstract: "Measures the gateway against a private mosquitto on loopback. Build with -c release.",
        subcommands: [
            IngestBenchmark.self, ReplayBenchmark.self, LatencyBenchmark.self, WriteBudgetBenchmark.self,
            UploadBenchmark.self, BurstBenchmark.self, AlarmBenchmark.self
        ]
    )
}

/// The release `wiregate` built beside this binary.
var wiregateBinary: String {
    URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath().deletingLastPathComponent()
        .appendingPathComponent("wiregate").path
}

/// `write_bytes` of `/proc/PID/io`: what the process caused to be written to storage.
func writeBytes(_ pid: pid_t) -> Int? {
    guard let text = try? String(contentsOfFile: "/proc/\(pid)/io", encoding: .utf8) else { return nil }
    return text.split(separator: "\n").first { $0.hasPrefix("write_bytes:") }
        .flatMap { Int($0.split(separator: " ").last ?? "") }
}

/// Monotonic nanoseconds, comparable across the processes of this machine.
func monotonicNanoseconds() -> UInt64 {
    var now = timespec()
    clock_gettime(CLOCK_MONOTONIC, &now)
    return UInt64(now.tv_sec) * 1_000_000_000 + UInt64(now.tv_nsec)
}

func gatewayConfig(
    port: Int, state: String, boardPath: String, journal: String = "", classes: String = "{ door: critical }",
    gatewayID: String = "bench", mqttExtra: String = ""
) -> String {
    """
    gateway: { id: \(gatewayID), state_dir: \(state) }
    mqtt: { host: 127.0.0.1, port: \(port), reconnect_min: 50ms, reconnect_max: 500ms, inflight: \(ProcessInfo.processInfo.environment["BENCH_INFLIGHT"] ?? "256")\(mqttExtra) }
    log: { level: info }
    \(journal.isEmpty ? "" : "journal: { \(journal) }")
    boards:
      - { name: sim, match: { path: \(boardPath) }, protocol: kv, settle: 0s, classes: \(classes) }
    """
}

func format(_ value: Double) -> String { String(format: "%.0f", value) }

/// The `n`th event of a journaled backlog: one in a hundred critical (a door), the rest telemetry.
func backlogEvent(_ n: Int, at now: Date) -> Event {
    n % 100 == 0
        ? Event(
            board: "sim", topic: "wiregate/bench/sim/door", subtopic: "door", payload: "open", eventClass: .critical,
            receivedAt: now)
        : Event(
            board: "sim", topic: "wiregate/bench/sim/temperature", subtopic: "temperature", payload: "21.\(n % 10)",
            eventClass: .telemetry, receivedAt: now)
}
