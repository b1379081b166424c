import Foundation
import Glibc
import Logging
import Testing
import Wiregate
import WiregateCore
import WiregateTestKit

/// An ordinary `systemctl stop` (SIGTERM) during a replay never costs the backlog.
///
/// The regression: at SIGTERM, GRDB's async read threw `CancellationError`, the journal took the
/// failed read for "nothing committed", handed out the in-memory events instead and moved the
/// read position past every committed row not yet sent; the acknowledgements of those in-memory
/// events then moved the cursor there, and the flush at shutdown deleted the rows (49,419 of
/// 400,000 gone in the review). Here a live board keeps the in-memory tail full while the daemon
/// replays a journaled backlog and is stopped at several points; every backlog event arrives.
@Suite(.serialized) struct ShutdownDuringReplayTests {
    @Test func sigtermAtSeveralPointsOfAReplayLosesNoEvent() async throws {
        let backlog = 40_000
        // Unlimited queue: Mosquitto otherwise drops QoS 1 messages past 1,000 queued for a slow subscriber.
        let broker = try MosquittoBroker(extraConfig: "max_queued_messages 0")
        let subscriber = try Subscriber(port: broker.port, filter: "wiregate/replay-gw/backlog/#")
        let state = try makeTemporaryDirectory("replay-stop")
        let board = try SimulatedBoard()
        let yaml = GatewayHarness.yaml(
            port: broker.port, gatewayID: "replay-gw",
            boards: """
                  - { name: live, match: { path: \(board.path) }, protocol: kv, settle: 0s }
                """, stateDirectory: state, journal: "commit_window_ms: 2000")
        let configPath = state + "/wiregate.yaml"
        try yaml.write(toFile: configPath, atomically: true, encoding: .utf8)
        // The backlog, journaled while the broker was away: 1 in 100 critical, payload = its number.
        do {
            let config = try GatewayConfig.parse(yaml: yaml, file: configPath)
            let journal = try Journal(directory: state, settings: config.journal, logger: Logger(label: "test"))
            let now = Date()
            for start in stride(from: 0, to: backlog, by: 1000) {
                await journal.append(
                    (start..<start + 1000).map { n in
                        Event(
                            board: "backlog",
                            topic: "wiregate/replay-gw/backlog/\(n % 100 == 0 ? "door" : "temperature")",
                            subtopic: n % 100 == 0 ? "door" : "temperature", payload: String(n),
                            eventClass: n % 100 == 0 ? .critical : .telemetry, receivedAt: now)
                    })
            }
            await journal.flush()
        }
        // A live board keeps telemetry in memory (2 s commit window) all the while.
        let feeding = Task.detached {
            var n = 0
            while !Task.isCancelled {
                board.send("temperature=\(n)")
                n += 1
                try? await Task.sleep(for: .milliseconds(2))
            }
        }
        defer { feeding.cancel() }
        let received = { @Sendable () -> Set<Int> in Set(subscriber.messages.compactMap { Int($0.payload) }) }
        // Stopped at several points of the replay, each time after a little more has arrived.
        for stopAfter in [2_000, 9_000, 17_000, 26_000] {
            let daemon = try ChildProcess(CommandLineTests.binary, ["run", "--config", configPath])
            // This daemon's own messages, not only the last one's: a stop that ran on past the next
            // point must not have this one signalled before it set up its signal handling.
            let before = received().count
            // A generous bound, not a speed: 9 s for the whole test alone, 33 s in the full suite.
            #expect(
                await eventually(timeout: .seconds(90)) {
                    received().count >= max(stopAfter, before + 200) || !daemon.isRunning
                })
            #expect(daemon.isRunning, "the daemon ended by itself during the replay")
            daemon.send(SIGTERM)
            // A clean stop: exit status 0 (not a crash, not the SIGKILL of a stop that hung).
            #expect(daemon.waitForExit() == 0)
        }
        let daemon = try ChildProcess(CommandLineTests.binary, ["run", "--config", configPath])
        defer { daemon.terminate() }
        #expect(await eventually(timeout: .seconds(120)) { received().count >= backlog })
        let missing = Set(0..<backlog).subtracting(received()).sorted()
        let missingCount = missing.count
        #expect(
            missingCount == 0, "\(missingCount) of \(backlog) backlog events never arrived, e.g. \(missing.prefix(10))")
    }
}
