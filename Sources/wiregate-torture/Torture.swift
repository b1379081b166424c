import ArgumentParser
import Foundation
import Glibc
import Synchronization
import WiregateCore
import WiregateTestKit

@main
struct Torture: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "wiregate-torture",
        abstract: "A seeded fault campaign against the gateway as a process (see scripts/torture.sh).",
        discussion: """
            Needs the private PostgreSQL of scripts/postgres.sh (PGHOST, PGPORT) and the Django venv.
            The same seed gives the same fault schedule and the same lines: a failing run is replayed
            with its seed.
            """
    )

    @Argument(help: "The seed of the schedule and of the boards' lines.")
    var seed: UInt64

    @Argument(help: "How long the faults go on, in minutes (then the destinations get up to 2 minutes to catch up).")
    var minutes: Double = 1

    @Option(help: "The wiregate binary (default: the one built beside this one).")
    var binary: String?

    @Option(help: "Pty boards streaming lines.")
    var boards: Int = 3

    @Option(help: "The bound on the daemon's private dirty memory, in MiB.")
    var memoryBound: Int = 12

    func run() async throws {
        let binary =
            binary
            ?? URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath().deletingLastPathComponent()
            .appendingPathComponent("wiregate").path
        let campaign = try Campaign(
            seed: seed, duration: .milliseconds(Int(minutes * 60_000)), binary: binary, boards: boards,
            memoryBound: memoryBound * 1024)
        // Every process it started stopped, by PID, however this ends: the signal handlers below
        // hold the campaign, so its deinit would not run before the process exits.
        defer { campaign.tearDown() }
        say(
            "wiregate-torture seed \(seed), \(minutes) min, \(boards) boards\(campaign.canFillDisk ? "" : " (no tmpfs for the state directory: no disk-full faults)")"
        )
        say("schedule:\n\(campaign.schedule)")
        // Interrupted: stop what the campaign started, then go (130 for SIGINT, 143 for SIGTERM).
        let interrupts = [SIGINT, SIGTERM].map { (number: Int32) in
            signal(number, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: number, queue: .global())
            source.setEventHandler {
                say("interrupted: stopping the campaign's processes")
                campaign.tearDown()
                Glibc.exit(128 + number)
            }
            source.resume()
            return source
        }
        defer { interrupts.forEach { $0.cancel() } }
        let (verdict, summary) = try await campaign.run { say($0) }
        say(summary)
        let findings = verdict.findings()
        guard findings.isEmpty else {
            say("FAILED, seed \(seed): \(findings.count) guarantees broken")
            for finding in findings { say("  - \(finding)") }
            say("gateway log, last lines:\n\(campaign.logTail(40))")
            say("replay: scripts/torture.sh \(seed) \(minutes)")
            say(
                "kept for a post-mortem: \(campaign.directory) (report.txt, the gateway's log and config; its state directory, journal included, in state-kept)"
            )
            campaign.keep.withLock { $0 = true }
            keepTemporaryFiles()
            // The verdict beside the log, for whoever opens the directory without this output.
            let report =
                "seed \(seed), \(minutes) min\nschedule:\n\(campaign.schedule)\n\(summary)\n"
                + findings.map { "- \($0)" }.joined(separator: "\n") + "\n"
            try? report.write(toFile: campaign.directory + "/report.txt", atomically: true, encoding: .utf8)
            throw ExitCode(1)
        }
        say("passed, seed \(seed)")
    }
}

/// A line on standard output at once (the campaign's progress is read as it goes, through a pipe).
func say(_ text: String) {
    FileHandle.standardOutput.write(Data((text + "\n").utf8))
}
