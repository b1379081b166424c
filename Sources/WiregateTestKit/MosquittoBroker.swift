import Foundation
import Glibc

/// A private mosquitto on a free loopback port, with a config file of its own in a
/// temporary directory. Stopped by PID, never by name.
public final class MosquittoBroker: @unchecked Sendable {
    /// The loopback port it listens on.
    public let port: Int
    /// Its private directory: config, persistence, log.
    public let directory: URL
    private var process: ChildProcess?

    /// Starts a broker and waits until it accepts connections.
    /// - Parameters:
    ///   - persistent: keep sessions and queued messages across a restart (saved on SIGTERM).
    ///   - extraConfig: lines appended to the generated `mosquitto.conf`.
    public convenience init(port: Int? = nil, persistent: Bool = false, extraConfig: String = "") throws {
        try self.init(port: port) { port, directory in
            """
            listener \(port) 127.0.0.1
            allow_anonymous true
            user root
            persistence \(persistent)
            persistence_location \(directory.path)/
            autosave_interval 1
            log_dest file \(directory.path)/mosquitto.log
            \(extraConfig)
            """
        }
    }

    /// Starts a broker with the config `makeConfig` writes for the port and the broker's own
    /// temporary directory (where it may also put certificates, a password file, an ACL).
    public init(port: Int? = nil, config makeConfig: (_ port: Int, _ directory: URL) throws -> String) throws {
        self.port = try port ?? freeLoopbackPort()
        directory = URL(fileURLWithPath: temporaryPath("broker"))
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        try makeConfig(self.port, directory).write(
            to: directory.appendingPathComponent("mosquitto.conf"), atomically: true, encoding: .utf8)
        try start()
    }

    /// What the broker logged so far (a config's `log_dest file <directory>/mosquitto.log`).
    public var log: String {
        (try? String(contentsOf: directory.appendingPathComponent("mosquitto.log"), encoding: .utf8)) ?? ""
    }

    deinit {
        stop()
        try? FileManager.default.removeItem(at: directory)
    }

    /// Starts (or restarts) the broker on the same port.
    public func start() throws {
        let process = try ChildProcess(
            "/usr/sbin/mosquitto", ["-c", directory.appendingPathComponent("mosquitto.conf").path])
        self.process = process
        // Generous: on two busy cores (a build beside the tests) a start has taken over 5 s.
        let deadline = Date().addingTimeInterval(15)
        while Date() < deadline {
            if canConnect(port: port) { return }
            if !process.isRunning { break }
            usleep(20_000)
        }
        throw TestKitError("mosquitto did not listen on port \(port) within 15 s")
    }

    /// SIGTERM and wait: the broker goes away cleanly.
    public func stop() {
        process?.terminate()
        process = nil
    }

    /// SIGKILL: the broker dies without saving; what arrived since its last autosave (1 s) is lost.
    public func kill() {
        process?.send(SIGKILL)
        _ = process?.waitForExit()
        process = nil
    }

    /// SIGHUP: the broker reloads its config files (the ACL, the password file) and keeps running.
    public func reload() { process?.send(SIGHUP) }

    /// SIGSTOP / SIGCONT: the silent outage, no RST.
    public func pause() { process?.send(SIGSTOP) }
    /// Lets a broker frozen with `pause()` (SIGSTOP) run again (SIGCONT).
    public func resume() { process?.send(SIGCONT) }
}

/// A test part that could not be set up, in words.
public struct TestKitError: Error, CustomStringConvertible {
    /// What went wrong.
    public var description: String
    /// An error saying `description`.
    public init(_ description: String) { self.description = description }
}

/// A port nobody listens on right now: bind port 0 on loopback, read it, close.
public func freeLoopbackPort() throws -> Int {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    guard fd >= 0 else { throw TestKitError("socket: errno \(errno)") }
    defer { close(fd) }
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_addr.s_addr = inet_addr("127.0.0.1")
    address.sin_port = 0
    let bound = withUnsafePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
    }
    guard bound == 0 else { throw TestKitError("bind: errno \(errno)") }
    var length = socklen_t(MemoryLayout<sockaddr_in>.size)
    _ = withUnsafeMutablePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
    }
    return Int(UInt16(bigEndian: address.sin_port))
}

func canConnect(port: Int) -> Bool {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    guard fd >= 0 else { return false }
    defer { close(fd) }
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_addr.s_addr = inet_addr("127.0.0.1")
    address.sin_port = UInt16(port).bigEndian
    return withUnsafePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
            connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
        }
    } == 0
}
