import Foundation
import Glibc

/// A local SMTP server that keeps what it is sent (Debian's `python3-aiosmtpd`, its debugging
/// handler printing each message), on a free loopback port: the Django app's e-mails end here.
public final class SMTPSink: Sendable {
    /// The port it listens on.
    public let port: Int
    private let process: ChildProcess
    private let output: String

    /// Starts it and waits until it accepts connections.
    public init() throws {
        port = try freeLoopbackPort()
        output = temporaryPath("smtp", suffix: ".log")
        let log = open(output, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        defer { close(log) }
        // -u: unbuffered, so each message is in the file as soon as it is received.
        process = try ChildProcess(
            "/usr/bin/python3", ["-u", "-m", "aiosmtpd", "-n", "-l", "127.0.0.1:\(port)"], stdout: log, stderr: log)
        let deadline = Date().addingTimeInterval(15)
        while Date() < deadline {
            if canConnect(port: port) { return }
            usleep(50_000)
        }
        throw TestKitError("aiosmtpd did not listen on port \(port)")
    }

    deinit { process.terminate() }

    /// The subjects of the messages received so far, in order.
    public var subjects: [String] {
        let text = (try? String(contentsOfFile: output, encoding: .utf8)) ?? ""
        return text.split(separator: "\n").filter { $0.hasPrefix("Subject: ") }.map { String($0.dropFirst(9)) }
    }
}
