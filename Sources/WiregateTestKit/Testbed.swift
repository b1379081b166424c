import Foundation
import Glibc

/// A fake udev world (umockdev) with USB boards whose ttys are ptys, driven through
/// `Tests/umockdev/testbed.py` under `umockdev-wrapper`, and a wiregate started inside it.
///
/// Each call sends one command line and waits for its one-line answer. umockdev cannot add
/// the same port or tty name twice in one testbed: give every plug a new one.
public final class Testbed: @unchecked Sendable {
    private let process: ChildProcess
    private let commands: FileHandle
    private let answers: FileHandle
    private var pending = Data()
    /// The started gateway's stdout and stderr.
    public let logPath: String

    /// Starts umockdev's testbed with no device in it.
    public init() throws {
        let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
            .appendingPathComponent("../../Tests/umockdev/testbed.py").standardized.path
        let directory = try makeTemporaryDirectory("testbed")
        logPath = directory + "/wiregate.log"
        // Socket pairs, close-on-exec from the start: no other test's child inherits them.
        var input: [Int32] = [0, 0], output: [Int32] = [0, 0]
        let type = Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue)
        guard socketpair(AF_UNIX, type, 0, &input) == 0, socketpair(AF_UNIX, type, 0, &output) == 0 else {
            throw TestKitError("socketpair: errno \(errno)")
        }
        // The testbed's files go to the test's own temp dir; the log is where the test can read it.
        process = try ChildProcess(
            "/usr/bin/umockdev-wrapper", ["/usr/bin/python3", script],
            stdin: input[0], stdout: output[1], stderr: 2,
            environment: ["TMPDIR": directory, "WIREGATE_TESTBED_LOG": logPath])
        close(input[0])
        close(output[1])
        commands = FileHandle(fileDescriptor: input[1], closeOnDealloc: true)
        answers = FileHandle(fileDescriptor: output[0], closeOnDealloc: true)
    }

    deinit {
        try? commands.write(contentsOf: Data("quit\n".utf8))
        _ = process.waitForExit()
    }

    /// Sends `command`; returns the value of an `ok` answer.
    /// - Throws: with the testbed's reason for an `error` answer.
    @discardableResult
    public func send(_ command: String) throws -> String {
        try commands.write(contentsOf: Data((command + "\n").utf8))
        while true {
            if let newline = pending.firstIndex(of: UInt8(ascii: "\n")) {
                let line = String(decoding: pending[..<newline], as: UTF8.self)
                pending.removeSubrange(...newline)
                if line == "ok" { return "" }
                if line.hasPrefix("ok ") { return String(line.dropFirst(3)) }
                throw TestKitError("testbed: \(command.prefix(60)): \(line)")
            }
            // One read(2), whatever has come: FileHandle.read(upToCount:) waits for the whole count.
            var chunk = [UInt8](repeating: 0, count: 4096)
            let count = chunk.withUnsafeMutableBytes { read(answers.fileDescriptor, $0.baseAddress, $0.count) }
            guard count > 0 else { throw TestKitError("testbed ended while answering \(command.prefix(60))") }
            pending.append(contentsOf: chunk[..<count])
        }
    }

    /// Plugs a board in at USB `port` (e.g. `1-1`) as `/dev/<tty>`.
    @discardableResult
    public func plug(port: String, tty: String, vid: String = "2341", pid: String = "0043", serial: String? = nil)
        throws -> String
    {
        try send("add \(port) \(tty) \(vid) \(pid) \(serial ?? "-")")
    }

    /// Sends udev's remove event for the board at `port` and takes its tty away.
    public func unplug(port: String, tty: String) throws { try send("remove \(port) \(tty)") }

    /// The board prints `line`.
    public func board(_ tty: String, says line: String) throws { try send("send \(tty) \(line)") }

    /// Starts `binary` with `arguments` in the fake world, as root or as `uid`. - Returns: its pid.
    @discardableResult
    public func start(_ binary: String, _ arguments: [String], uid: UInt32? = nil) throws -> Int32 {
        let argv = String(decoding: try JSONEncoder().encode([binary] + arguments), as: UTF8.self)
        return Int32(try send(uid.map { "startas \($0) \(argv)" } ?? "start \(argv)")) ?? -1
    }

    /// Sets the permissions of `/dev/<tty>` (octal, e.g. "0660"), as udev rules would after `add`.
    public func chmod(_ tty: String, _ mode: String) throws { try send("chmod \(tty) \(mode)") }

    /// The started gateway's open file descriptors.
    public func gatewayDescriptors() throws -> Int { Int(try send("fds")) ?? -1 }

    /// Process `pid`'s open descriptors, from one listing, and how many of them are umockdev's:
    /// its preload connects a socket to the testbed's ioctl service for every open of a `/dev`
    /// node, and for an open that *failed* too (umockdev 0.17.16: `ioctl_emulate_open` runs on
    /// the -1 result, files the socket under fd -1, and nothing closes it). A gateway retrying a
    /// node that is already gone thus gains sockets that are the harness's, not its own. They are
    /// the unix stream sockets whose peer (`ss -x` gives peers; /proc/net/unix does not) is this
    /// testbed's `…/ioctl/…` service, or not listed yet (a connection it has not accepted yet).
    public func descriptors(of pid: Int32) throws -> (all: Int, umockdev: Int) {
        let fd = "/proc/\(pid)/fd/"
        let links = try FileManager.default.contentsOfDirectory(atPath: fd).map { name in
            (try? FileManager.default.destinationOfSymbolicLink(atPath: fd + name)) ?? ""
        }
        let own = Set(links.compactMap { $0.hasPrefix("socket:[") ? String($0.dropFirst(8).dropLast()) : nil })
        let ss = Process()
        ss.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        ss.arguments = ["ss", "-x", "-a", "-H"]
        let output = Pipe()
        ss.standardOutput = output
        try ss.run()
        let table = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        ss.waitUntilExit()
        guard ss.terminationStatus == 0 else { throw TestKitError("ss -x: exit \(ss.terminationStatus)") }
        // Netid State Recv-Q Send-Q Local-address Local-inode Peer-address Peer-inode
        let rows = table.split(separator: "\n").map {
            $0.split(separator: " ", omittingEmptySubsequences: true).map(String.init)
        }
        .filter { $0.count >= 8 }
        let pathOf = Dictionary(rows.map { ($0[5], $0[4]) }, uniquingKeysWith: { first, _ in first })
        let service = (logPath as NSString).deletingLastPathComponent + "/"
        let umockdev = rows.filter { row in
            guard row[0] == "u_str", row[4] == "*", own.contains(row[5]), row[7] != "0" else { return false }
            guard let peer = pathOf[row[7]] else { return true }  // not accepted yet
            return peer.hasPrefix(service) && peer.contains("/ioctl/")
        }.count
        return (links.count, umockdev)
    }

    /// Waits for the started command to exit by itself. - Returns: its exit status.
    @discardableResult
    public func waitForGateway() throws -> Int32 { Int32(try send("wait")) ?? -1 }

    /// SIGTERM to the gateway. - Returns: its exit status.
    @discardableResult
    public func stopGateway() throws -> Int32 { Int32(try send("stop")) ?? -1 }

    /// Everything the process started with `start` has written so far.
    public var log: String { (try? String(contentsOfFile: logPath, encoding: .utf8)) ?? "" }
}
