import Foundation
import Glibc
import Synchronization

/// A `mosquitto_sub` process collecting every message on a filter, as `(topic, payload)`.
public final class Subscriber: Sendable {
    /// One message as the subscriber received it.
    public struct Message: Sendable, Equatable, CustomStringConvertible {
        /// The topic it came on.
        public var topic: String
        /// Its payload, as text.
        public var payload: String
        /// MQTT 5 user properties, as mosquitto_sub prints them (`name:value` pairs).
        public var properties: String = ""
        /// `<topic> <payload>`, for test failures.
        public var description: String { "\(topic) \(payload)" }
    }

    private let process: ChildProcess
    private final class Received: Sendable {
        let state = Mutex<(messages: [Message], partial: String)>(([], ""))
        func withLock<T>(_ body: (inout (messages: [Message], partial: String)) -> T) -> T {
            state.withLock { body(&$0) }
        }

        /// Adds output of mosquitto_sub: messages are `topic<TAB>payload` lines; `-d` adds its
        /// protocol trace, of which only the SUBACK matters (the subscription is in place).
        func append(_ text: String) {
            state.withLock { state in
                state.partial += text
                while let newline = state.partial.firstIndex(of: "\n") {
                    let line = state.partial[..<newline]
                    defer { state.partial = String(state.partial[state.partial.index(after: newline)...]) }
                    guard let tab = line.firstIndex(of: "\t") else {
                        if line.contains("SUBACK") { state.messages.append(Message(topic: "$SUBACK", payload: "")) }
                        continue
                    }
                    let rest = line[line.index(after: tab)...]
                    guard let second = rest.firstIndex(of: "\t") else { continue }
                    state.messages.append(
                        Message(
                            topic: String(line[..<tab]), payload: String(rest[rest.index(after: second)...]),
                            properties: String(rest[..<second])))
                }
            }
        }
    }
    private let received = Received()

    /// Subscribes at QoS 1 and waits until the subscription is in place.
    /// - Parameter persistentID: a client id for a persistent session, so that the broker keeps
    ///   queueing for this subscriber across its own restart (mosquitto_sub reconnects by itself).
    /// - Parameter connection: more mosquitto_sub options, such as TLS files and credentials.
    public init(port: Int, filter: String = "#", persistentID: String? = nil, connection: [String] = []) throws {
        var pipe: [CInt] = [0, 0]
        // A socket pair rather than pipe(): it can be made close-on-exec atomically, so no other child inherits it.
        guard socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0, &pipe) == 0 else {
            throw TestKitError("socketpair: errno \(errno)")
        }
        // Tabs between topic, user properties and payload: payloads may hold spaces. stdbuf: mosquitto_sub's
        // stdout is block-buffered on a pipe, and we need each line as it comes.
        let arguments =
            [
                "-oL", "/usr/bin/mosquitto_sub", "-h", "127.0.0.1", "-p", "\(port)", "-q", "1", "-t", filter,
                "-V", "5", "-F", "%t\t%P\t%p", "-d"
            ] + (persistentID.map { ["-c", "-i", $0] } ?? []) + connection
        do {
            process = try ChildProcess("/usr/bin/stdbuf", arguments, stdout: pipe[1])
        } catch {
            close(pipe[0]); close(pipe[1])
            throw error
        }
        close(pipe[1])
        let received = self.received
        let reader = pipe[0]
        // A plain thread doing blocking reads until the child's end closes.
        Thread.detachNewThread {
            var buffer = [UInt8](repeating: 0, count: 65536)
            while true {
                let count = buffer.withUnsafeMutableBytes { read(reader, $0.baseAddress, $0.count) }
                if count < 0 && errno == EINTR { continue }
                if count <= 0 { break }
                received.append(String(decoding: buffer[..<count], as: UTF8.self))
            }
            close(reader)
        }
        guard wait(timeout: 5, for: { $0.contains { $0.topic == "$SUBACK" } }) else {
            throw TestKitError("mosquitto_sub did not subscribe within 5 s")
        }
    }

    deinit { stop() }

    /// Stops the subscriber process (by its PID).
    public func stop() {
        process.terminate()
    }

    /// Everything received so far, in order.
    public var messages: [Message] {
        received.withLock { $0.messages.filter { $0.topic != "$SUBACK" } }
    }

    /// Waits until `condition` holds for the messages received so far.
    /// - Returns: whether it held before the timeout.
    @discardableResult
    public func wait(timeout: TimeInterval, for condition: ([Message]) -> Bool) -> Bool {
        let deadline = Date().addingTimeInterval(timeout)
        repeat {
            if condition(received.withLock { $0.messages }) { return true }
            usleep(20_000)
        } while Date() < deadline
        return condition(received.withLock { $0.messages })
    }

    /// Async form of `wait`, so tests do not block a cooperative thread.
    @discardableResult
    public func waitAsync(timeout: Duration, for condition: @Sendable ([Message]) -> Bool) async -> Bool {
        let deadline = ContinuousClock.now + timeout
        repeat {
            if condition(messages) { return true }
            try? await Task.sleep(for: .milliseconds(20))
        } while ContinuousClock.now < deadline
        return condition(messages)
    }
}
