import ArgumentParser
import Foundation
import Wiregate
import WiregateCore

struct StatusCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "status",
        abstract:
            "Show the journal's backlog per sink and class, the broker and the boards, from the files a running daemon keeps."
    )

    @OptionGroup var options: ConfigOption
    @OptionGroup var output: JSONOutputOption

    struct Report: Codable {
        var gateway: String
        var stateDirectory: String
        var daemon: DaemonState?
        var daemonRunning: Bool
        /// The daemon could not write `stateDirectory` and journals to `journalDirectory` in memory.
        var journalInMemory: Bool
        var journalDirectory: String
        var journal: JournalStatus
        /// The backend sink's last known reachability (nil without a backend, or before its first attempt).
        var backend: BackendSink.State?
        /// The running daemon's last health report (what `<base>/<gateway>/health` carries), with
        /// the heartbeat's last result; nil when the daemon is not running.
        var health: HealthReport?
    }

    static func describe(_ heartbeat: HealthReport.Heartbeat?, running: Bool) -> String {
        guard running else { return "none (the daemon is not running)" }
        guard let heartbeat else { return "not sent yet" }
        let at = heartbeat.attemptedAt.formatted(.iso8601)
        if heartbeat.ok { return "taken at \(at), the backend says \(heartbeat.backendState ?? "-")" }
        let last =
            heartbeat.lastSuccess.map { "last taken at \($0.formatted(.iso8601))" } ?? "never taken since the start"
        return "FAILING at \(at): \(heartbeat.problem ?? "-") (\(last))"
    }

    func run() throws {
        let config = try loadConfigOrExit(options.config)
        // A daemon that found state_dir unwritable journals in memory, and keeps its status there.
        let memory = Journal.memoryFallbackDirectory(gatewayID: config.gateway.id)
        let inMemory = (try? DaemonState.read(stateDirectory: memory))?.isRunning ?? false
        let directory = inMemory ? memory : config.gateway.stateDirectory
        let journal: JournalStatus
        do {
            journal = try JournalStatus.read(
                stateDirectory: directory, sinks: config.backend == nil ? [] : [BackendSink.sinkName])
        } catch {
            FileHandle.standardError.write(
                Data(
                    "error: no journal readable in \(directory) (has the daemon run yet?): \(error.localizedDescription)\n"
                        .utf8))
            throw ExitCode(1)
        }
        let daemon = try? DaemonState.read(stateDirectory: directory)
        let report = Report(
            gateway: config.gateway.id, stateDirectory: config.gateway.stateDirectory, daemon: daemon,
            daemonRunning: daemon?.isRunning ?? false, journalInMemory: inMemory, journalDirectory: directory,
            journal: journal,
            backend: config.backend == nil ? nil : try? BackendSink.State.read(directory: directory),
            health: daemon?.isRunning == true ? HealthReport.read(for: config) : nil)
        if output.json {
            try printJSON(report)
            return
        }
        print("gateway \(report.gateway), state in \(report.stateDirectory)")
        if inMemory {
            print("WARNING: state_dir is not writable: the journal is in memory (\(directory)), lost on power cut")
        }
        if let daemon, report.daemonRunning {
            print("daemon: running (pid \(daemon.pid)) since \(daemon.startedAt.formatted(.iso8601))")
            print(
                "broker: \(daemon.brokerConnected ? "connected" : "NOT connected") since \(daemon.brokerSince.formatted(.iso8601))"
            )
            if let refusing = daemon.brokerRefusing {
                print("broker: REFUSING messages: \(refusing); they stay in the journal and are retried")
            }
            for (board, online) in daemon.boards.sorted(by: { $0.key < $1.key }) {
                print("board \(board): \(online ? "online" : "offline")")
            }
            if let alarm = daemon.alarm {
                var line = "alarm: \(alarm.state.rawValue)"
                if let mode = alarm.mode, alarm.state != AlarmState(rawValue: "armed_\(mode.rawValue)") {
                    line += " (\(mode.rawValue))"
                }
                if let cause = alarm.cause { line += ", zone \(cause)" }
                if alarm.lockedOut { line += ", codes LOCKED OUT after wrong ones" }
                print(line)
                if let problem = alarm.notSaved {
                    print("alarm: WARNING its state cannot be saved (\(problem)): a restart now would not restore it")
                }
            }
        } else {
            print("daemon: not running")
        }
        print(
            "journal: \(ByteCountFormatter.string(fromByteCount: journal.bytes, countStyle: .file)), last seq \(journal.lastSeq)"
        )
        let now = Date()
        for (sink, classes) in journal.sinks.sorted(by: { $0.key < $1.key }) {
            for eventClass in EventClass.allCases {
                guard let backlog = classes[eventClass.rawValue] else { continue }
                let age = backlog.oldestReceivedAt.map { " (oldest \(Int(now.timeIntervalSince($0)))s old)" } ?? ""
                print("sink \(sink) \(eventClass.rawValue): \(backlog.pending) pending\(age)")
            }
        }
        if let quarantined = journal.quarantined[Journal.mqttSink], quarantined > 0 {
            print("quarantined for the broker: \(quarantined) (messages it can never take as they are)")
        }
        if journal.quarantineDropped > 0 {
            print("dropped from the quarantine by its bound: \(journal.quarantineDropped)")
        }
        print(
            "dropped by the bounds: critical \(journal.dropped["critical"] ?? 0), telemetry \(journal.dropped["telemetry"] ?? 0)"
        )
        if let url = config.backend?.url {
            let state =
                report.backend.map { state in
                    state.reachable
                        ? "reachable since \(state.since.formatted(.iso8601))"
                        : "NOT reachable since \(state.since.formatted(.iso8601))\(state.problem.map { " (\($0))" } ?? "")"
                } ?? "not tried yet"
            print("backend \(url): \(state); quarantined \(journal.quarantined[BackendSink.sinkName] ?? 0)")
            print("heartbeat: \(Self.describe(report.health?.heartbeat, running: report.daemonRunning))")
        }
    }
}
