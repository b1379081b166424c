import Foundation
import GRDB
import Testing
import Wiregate
import WiregateTestKit

/// The clock-synchronised flag of every event is honest under the shipped unit's hardening.
///
/// The regression: `ProtectClock=yes` makes `adjtimex` fail with EPERM, and the -1 was read as
/// "synchronised", so on a Pi that booted offline with a wrong clock every event said
/// `clock_synced: true`. Here the daemon runs under a seccomp filter that denies `adjtimex` and
/// `clock_adjtime` as that option does.
@Suite(.serialized) struct ClockFlagTests {
    static let denyClock = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .appendingPathComponent("../seccomp/deny-clock.py").standardized.path

    @Test func aDeniedClockReadIsNeverTakenForSynchronised() async throws {
        // The filter does deny the read: adjtimex returns -1 with EPERM under it.
        let probe = try ChildProcess.run(
            "/usr/bin/python3",
            [
                Self.denyClock, "/usr/bin/python3", "-c",
                """
                import ctypes, ctypes.util
                libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
                print(libc.adjtimex(ctypes.create_string_buffer(512)), ctypes.get_errno())
                """
            ], mergingStandardError: true)
        #expect(probe.output.trimmingCharacters(in: .whitespacesAndNewlines) == "-1 \(EPERM)", "\(probe.output)")

        let state = try makeTemporaryDirectory("clock")
        let board = try SimulatedBoard()
        // No broker: the events stay in the journal, where their flag can be read.
        let configPath = state + "/wiregate.yaml"
        try GatewayHarness.yaml(
            port: try freeLoopbackPort(), gatewayID: "clock-gw",
            boards: """
                  - { name: sim, match: { path: \(board.path) }, protocol: kv, settle: 0s, classes: { door: critical } }
                """, stateDirectory: state
        ).write(toFile: configPath, atomically: true, encoding: .utf8)
        let daemon = try ChildProcess(
            "/usr/bin/python3", [Self.denyClock, CommandLineTests.binary, "run", "--config", configPath])
        #expect(await eventually { (try? DaemonState.read(stateDirectory: state))?.boards["sim"] == true })
        board.send("door=prime")
        let journal = try DatabaseQueue(
            path: state + "/journal.sqlite",
            configuration: {
                var c = Configuration(); c.readonly = true; return c
            }())
        for n in 0..<5 { board.send("door=\(n)") }
        @Sendable func journaled() -> Int {
            ((try? journal.read { try Int.fetchOne($0, sql: "SELECT count(*) FROM event") }) ?? nil) ?? 0
        }
        #expect(await eventually { journaled() >= 5 })
        daemon.terminate()
        let flags = try await journal.read { try Bool.fetchAll($0, sql: "SELECT clock_synced FROM event") }
        // Synchronised only when systemd-timesyncd says so; the kernel's answer could not be read.
        let expected = FileManager.default.fileExists(atPath: "/run/systemd/timesync/synchronized")
        #expect(flags.count >= 5 && flags.allSatisfy { $0 == expected }, "\(flags)")
    }
}
