import ArgumentParser
import Foundation
import Glibc
import Wiregate
import WiregateTestKit

/// A burst of lines from one pty, as fast as the kernel carries them, the broker up: the daemon's
/// private dirty memory (heap and stacks: what the memory bound is on) and peak RSS during the
/// burst, and what it keeps a few seconds after.
struct BurstBenchmark: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "burst")

    @Option(help: "Lines in the burst.")
    var lines = 100_000

    @Flag(help: "Also print where the private dirty memory is, per mapping, idle and after.")
    var breakdown = false

    func printBreakdown(_ label: String, _ pid: pid_t) {
        let mappings = ProcessMemory.privateDirtyByMapping(pid).prefix(8)
        print("\(label): " + mappings.map { "\($0.mapping) \($0.kib) KiB" }.joined(separator: ", "))
    }

    func run() async throws {
        let state = try makeTemporaryDirectory("bench-burst")
        defer { try? FileManager.default.removeItem(atPath: state) }
        let broker = try MosquittoBroker(extraConfig: "max_queued_messages 0")
        let board = try SimulatedBoard()
        let configPath = state + "/wiregate.yaml"
        try gatewayConfig(port: broker.port, state: state, boardPath: board.path).write(
            toFile: configPath, atomically: true, encoding: .utf8)
        let subscriber = try ChildProcess(
            "/usr/bin/mosquitto_sub",
            [
                "-p", "\(broker.port)", "-q", "1", "-C", "\(lines)", "-t", "wiregate/bench/sim/#"
            ], stdout: open("/dev/null", O_WRONLY))
        // Its log (warnings and up) beside the journal: a burst that does not arrive says why.
        let log = open(state + "/gateway.log", O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        defer { close(log) }
        // A binary just built sits in the page cache unwritten: its pages count as the daemon's
        // private dirty memory (10 MiB of the release build) until the kernel writes them back.
        sync()
        let daemon = try ChildProcess(wiregateBinary, ["run", "--config", configPath], stdout: log, stderr: log)
        defer { daemon.terminate() }
        while (try? DaemonState.read(stateDirectory: state))?.boards["sim"] != true {
            try await Task.sleep(for: .milliseconds(20))
        }
        try await Task.sleep(for: .milliseconds(500))
        let idle = ProcessMemory.privateDirty(daemon.pid) ?? 0
        if breakdown { printBreakdown("idle", daemon.pid) }
        var peakDirty = idle, peakRSS = 0
        let sampler = Task.detached {
            var dirty = 0, rss = 0
            while !Task.isCancelled {
                dirty = max(dirty, ProcessMemory.privateDirty(daemon.pid) ?? 0)
                rss = max(rss, ProcessMemory.status(daemon.pid, "VmHWM") ?? 0)
                try? await Task.sleep(for: .milliseconds(10))
            }
            return (dirty, rss)
        }
        let start = ContinuousClock.now
        // As fast as the pty takes them: a full buffer is waited out, never dropped.
        for n in 0..<lines {
            let line = n % 100 == 0 ? "door=open" : "temperature=21.\(n % 10)"
            while !board.send(line) { try await Task.sleep(for: .microseconds(200)) }
        }
        let written = ContinuousClock.now - start
        while subscriber.isRunning {
            guard ContinuousClock.now - start < .seconds(120) else {
                let status =
                    (try? JournalStatus.read(stateDirectory: state)).map { "last seq \($0.lastSeq)" }
                    ?? "no journal status"
                // Stopped first: its shutdown says what it still held in memory.
                daemon.terminate()
                let logged = (try? String(contentsOfFile: state + "/gateway.log", encoding: .utf8)) ?? ""
                throw TestKitError(
                    "burst: not all \(lines) lines at the subscriber after 120 s (\(status)); gateway log:\n\(logged.suffix(4000))"
                )
            }
            try await Task.sleep(for: .milliseconds(20))
        }
        let delivered = ContinuousClock.now - start
        sampler.cancel()
        (peakDirty, peakRSS) = await sampler.value
        try await Task.sleep(for: .seconds(5))
        let after = ProcessMemory.privateDirty(daemon.pid) ?? 0
        if breakdown { printBreakdown("5 s after", daemon.pid) }
        print(
            "burst: \(lines) lines written in \(String(format: "%.1f", seconds(written))) s, all at the subscriber after "
                + "\(String(format: "%.1f", seconds(delivered))) s; daemon private dirty memory idle \(idle) KiB, "
                + "peak \(peakDirty) KiB, 5 s after \(after) KiB; peak RSS \(peakRSS / 1024) MiB (\(peakRSS) KiB)")
    }
}
