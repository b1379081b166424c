import Foundation
import GRDB
import Glibc
import Logging
import Testing
import WiregateCore
import WiregateTestKit

@testable import Wiregate

/// A journal that cannot be used, or a disk that cannot be written, never stops the gateway.
@Suite(.serialized) struct JournalDamageTests {
    /// A gateway with its journal in `stateDirectory`, a board whose `door` is critical, and a subscriber, all up.
    struct Running {
        let broker: MosquittoBroker
        let board: SimulatedBoard
        let subscriber: Subscriber
        let harness: GatewayHarness
    }

    func startGateway(stateDirectory: String) async throws -> Running {
        let broker = try MosquittoBroker()
        let board = try SimulatedBoard()
        let subscriber = try Subscriber(port: broker.port, filter: "wiregate/test-gw/sim/#")
        let harness = try GatewayHarness(
            yaml: GatewayHarness.yaml(
                port: broker.port,
                boards: """
                      - { name: sim, match: { path: \(board.path) }, protocol: kv, settle: 0s, classes: { door: critical } }
                    """, stateDirectory: stateDirectory, journal: "commit_window_ms: 50"))
        #expect(await eventually { harness.gateway.directory.isOnline("sim") && harness.gateway.mqtt.isConnected })
        return Running(broker: broker, board: board, subscriber: subscriber, harness: harness)
    }

    func damagedCopies(in directory: String) throws -> [String] {
        try FileManager.default.contentsOfDirectory(atPath: directory).filter {
            $0.hasPrefix("journal.sqlite.damaged-") && !$0.hasSuffix("-wal") && !$0.hasSuffix("-shm")
        }
    }

    @Test func corruptJournalIsMovedAsideAndTheGatewayRunsOn() async throws {
        let state = try makeTemporaryDirectory("damage")
        let garbage = Data((0..<64 * 1024).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ 7) })
        try garbage.write(to: URL(fileURLWithPath: state + "/journal.sqlite"))
        let broker = try MosquittoBroker()
        let board = try SimulatedBoard()
        let subscriber = try Subscriber(port: broker.port, filter: "wiregate/test-gw/sim/line")
        let harness = try GatewayHarness(
            yaml: GatewayHarness.yaml(
                port: broker.port,
                boards: """
                      - { name: sim, match: { path: \(board.path) }, protocol: raw, settle: 0s }
                    """, stateDirectory: state))
        #expect(await eventually { harness.gateway.directory.isOnline("sim") })
        board.send("prime")
        board.send("after-recovery")
        #expect(await subscriber.waitAsync(timeout: .seconds(5)) { $0.contains { $0.payload == "after-recovery" } })
        let aside = try damagedCopies(in: state)
        #expect(aside.count == 1)
        // Kept for forensics, untouched.
        #expect(try Data(contentsOf: URL(fileURLWithPath: state + "/" + aside[0])) == garbage)
        await harness.stop()
    }

    @Test func newerSchemaIsMovedAside() async throws {
        let state = try makeTemporaryDirectory("damage")
        let logger = Logger(label: "test")
        do {
            let journal = try Journal(
                directory: state, settings: .init(commitWindow: .zero, sync: .full), logger: logger)
            await journal.append([
                Event(
                    board: "b", topic: "t/x", subtopic: "x", payload: "old", eventClass: .critical, receivedAt: Date())
            ])
        }
        // A later wiregate added a migration this one does not know.
        let database = try DatabaseQueue(path: state + "/journal.sqlite")
        try await database.write {
            try $0.execute(sql: "INSERT INTO grdb_migrations (identifier) VALUES ('v99-from-the-future')")
        }
        try database.close()
        #expect(throws: Journal.JournalDamage.self) {
            try Journal(directory: state, settings: .init(commitWindow: .zero, sync: .full), logger: logger)
        }
        let journal = try Journal.open(
            directory: state, settings: .init(commitWindow: .zero, sync: .full), logger: logger)
        #expect(await journal.pendingCount() == [.critical: 0, .telemetry: 0])
        #expect(try damagedCopies(in: state).count == 1)
    }

    /// Needs root for mount(8) and a loop device: the tests run as root here and in CI.
    ///
    /// A plain `remount,ro` is refused by the kernel while the journal is open for writing, so this
    /// takes the path a failing SD card takes: ext4 mounted `errors=remount-ro`, then an error
    /// raised through `/sys/fs/ext4/<dev>/trigger_fs_error`, and the file system turns read-only
    /// under the open journal.
    @Test func readOnlyFileSystemMidRunKeepsTheLivePath() async throws {
        let work = try makeTemporaryDirectory("readonly")
        let image = work + "/state.ext4", mountPoint = work + "/state"
        try FileManager.default.createDirectory(atPath: mountPoint, withIntermediateDirectories: true)
        try runCommand("/usr/bin/truncate", ["-s", "16M", image])
        try runCommand("/usr/sbin/mkfs.ext4", ["-q", image])
        try runCommand("/bin/mount", ["-o", "loop,errors=remount-ro", image, mountPoint])
        defer { try? runCommand("/bin/umount", ["-l", mountPoint]) }
        let device = try String(contentsOfFile: "/proc/self/mountinfo", encoding: .utf8)
            .split(separator: "\n").first { $0.split(separator: " ")[4] == mountPoint }
            .flatMap { $0.split(separator: " ").last(where: { $0.hasPrefix("/dev/loop") }) }
            .map { String($0.dropFirst("/dev/".count)) }
        let loop = try #require(device)

        let running = try await startGateway(stateDirectory: mountPoint)
        running.board.send("door=prime")
        running.board.send("door=ready")
        #expect(await running.subscriber.waitAsync(timeout: .seconds(5)) { $0.contains { $0.payload == "ready" } })

        try "1".write(toFile: "/sys/fs/ext4/\(loop)/trigger_fs_error", atomically: false, encoding: .utf8)
        // Recent kernels mark it `emergency_ro` (writes fail with EROFS) rather than remounting.
        #expect(!FileManager.default.createFile(atPath: mountPoint + "/probe", contents: Data()))
        for n in 0..<20 { running.board.send("door=ro-\(n);temperature=\(n)") }
        #expect(
            await running.subscriber.waitAsync(timeout: .seconds(5)) {
                $0.filter { $0.payload.hasPrefix("ro-") }.count == 20
                    && $0.filter { $0.topic.hasSuffix("/temperature") }.count == 20
            })
        #expect(await eventually { await running.harness.gateway.journal.writeFailures > 0 })
        // Everything the broker acknowledged is dropped from memory: nothing waits for the disk.
        #expect(await eventually { await running.harness.gateway.journal.pendingCount().values.reduce(0, +) == 0 })
        #expect(await running.harness.gateway.journal.droppedInMemory.isEmpty)
        await running.harness.stop()
    }

    /// Needs root for mount(8). A state_dir that cannot be written at start-up (a read-only root,
    /// a failed card) does not stop the gateway: it journals in memory, its sequence going on
    /// after the disk journal's, and `status` says so.
    @Test func unwritableStateDirectoryAtStartJournalsInMemory() async throws {
        let state = try makeTemporaryDirectory("rostart")
        let gatewayID = "ro-start-\(getpid())"
        let memory = Journal.memoryFallbackDirectory(gatewayID: gatewayID)
        try runCommand("/bin/mount", ["-t", "tmpfs", "-o", "size=8m", "tmpfs", state])
        defer {
            try? runCommand("/bin/umount", ["-l", state])
            try? FileManager.default.removeItem(atPath: memory)
        }
        do {
            let journal = try Journal(
                directory: state, settings: .init(commitWindow: .zero, sync: .full), logger: Logger(label: "test"))
            await journal.append(
                (1...3).map {
                    Event(
                        board: "sim", topic: "t/x", subtopic: "x", payload: "\($0)", eventClass: .critical,
                        receivedAt: Date())
                })
        }
        try runCommand("/bin/mount", ["-o", "remount,ro", state])

        let broker = try MosquittoBroker()
        let board = try SimulatedBoard()
        let subscriber = try Subscriber(port: broker.port, filter: "wiregate/\(gatewayID)/sim/#")
        let config = GatewayHarness.yaml(
            port: broker.port, gatewayID: gatewayID,
            boards: """
                  - { name: sim, match: { path: \(board.path) }, protocol: kv, settle: 0s }
                """, stateDirectory: state)
        let harness = try GatewayHarness(yaml: config)
        #expect(!harness.gateway.journal.isDurable)
        #expect(harness.gateway.journal.directory == memory)
        #expect(await eventually { harness.gateway.directory.isOnline("sim") && harness.gateway.mqtt.isConnected })
        board.send("door=prime")
        board.send("door=ready")
        #expect(await subscriber.waitAsync(timeout: .seconds(5)) { $0.contains { $0.payload == "ready" } })
        // The disk journal ended at 3: the memory journal never hands out those numbers again.
        #expect(await harness.gateway.journal.lastSeq > 3)

        let file = state + "-config.yaml"
        try config.write(toFile: file, atomically: true, encoding: .utf8)
        let status = try runWiregate(["status", "--config", file])
        #expect(status.status == 0)
        #expect(status.output.contains("the journal is in memory (\(memory))"), "\(status.output)")
        // check-config names the directory and why, where the daemon could only fall back.
        let check = try runWiregate(["check-config", "--config", file])
        #expect(check.status == 66)
        #expect(check.output.contains("gateway.state_dir: '\(state)' is on a read-only file system"), "\(check.output)")
        await harness.stop()
    }

    /// Needs root for mount(8). A small tmpfs is filled up mid-run; journaling resumes once
    /// space returns.
    @Test func fullFileSystemMidRunKeepsTheLivePath() async throws {
        let mountPoint = try makeTemporaryDirectory("damage")
        try runCommand("/bin/mount", ["-t", "tmpfs", "-o", "size=8m", "tmpfs", mountPoint])
        defer { try? runCommand("/bin/umount", ["-l", mountPoint]) }
        let running = try await startGateway(stateDirectory: mountPoint)
        running.board.send("door=prime")
        // Fill the file system: every journal commit now fails with SQLITE_FULL.
        _ = try? runCommand("/bin/dd", ["if=/dev/zero", "of=\(mountPoint)/filler", "bs=64k"])
        for n in 0..<20 { running.board.send("door=ro-\(n);temperature=\(n)") }
        #expect(
            await running.subscriber.waitAsync(timeout: .seconds(5)) {
                $0.filter { $0.payload.hasPrefix("ro-") }.count == 20
            })
        #expect(await eventually { await running.harness.gateway.journal.writeFailures > 0 })
        try FileManager.default.removeItem(atPath: "\(mountPoint)/filler")
        for n in 0..<5 { running.board.send("door=rw-\(n)") }
        #expect(
            await running.subscriber.waitAsync(timeout: .seconds(5)) {
                $0.filter { $0.payload.hasPrefix("rw-") }.count == 5
            })
        // Writable again: the next commit goes through and nothing is left in memory.
        await running.harness.gateway.journal.flush()
        #expect(await eventually { await running.harness.gateway.journal.pendingCount().values.reduce(0, +) == 0 })
        await running.harness.stop()
    }
}

/// Runs a system command and throws unless it exits 0.
func runCommand(_ path: String, _ arguments: [String]) throws {
    let child = try ChildProcess(path, arguments)
    let status = child.waitForExit()
    guard status == 0 else { throw TestKitError("\(path) \(arguments.joined(separator: " ")) exited \(status)") }
}
