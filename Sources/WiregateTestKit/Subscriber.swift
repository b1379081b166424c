import Foundation
import Synchronization

/// A `mosquitto_sub` process collecting every message on a filter, as `(topic, payload)`.
public final class Subscriber: Sendable {
    public struct Message: Sendable, Equatable, CustomStringConvertible {
        public var topic: String
        public var payload: String
        public var description: String { "\(topic) \(payload)" }
    }

    private let process: Process
    private final class Received: Sendable {
        let state = Mutex<(messages: [Message], partial: String)>(([], ""))
        func withLock<T>(_ body: (inout (messages: [Message], partial: String)) -> T) -> T { state.withLock { body(&$0) } }
    }
    private let received = Received()

    /// Subscribes at QoS 1 and waits until the subscription is in place.
    /// - Parameter persistentID: a client id for a persistent session, so that the broker keeps
    ///   queueing for this subscriber across its own restart (mosquitto_sub reconnects by itself).
    public init(port: Int, filter: String = "#", persistentID: String? = nil) throws {
        let process = Process()
        // stdbuf: mosquitto_sub's stdout is block-buffered on a pipe; we need each line as it comes.
        process.executableURL = URL(fileURLWithPath: "/usr/bin/stdbuf")
        // Tab between topic and payload: payloads may hold spaces.
        process.arguments = ["-oL", "/usr/bin/mosquitto_sub", "-h", "127.0.0.1", "-p", "\(port)", "-q", "1", "-t", filter, "-F", "%t\t%p", "-d"]
            + (persistentID.map { ["-c", "-i", $0] } ?? [])
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = FileHandle.nullDevice
        self.process = process
        let received = self.received
        pipe.fileHandleForReading.readabilityHandler = { handle in
            let data = handle.availableData
            guard !data.isEmpty else { return }
            received.withLock { state in
                state.partial += String(decoding: data, as: UTF8.self)
                while let newline = state.partial.firstIndex(of: "\n") {
                    let line = state.partial[..<newline]
                    state.partial = String(state.partial[state.partial.index(after: newline)...])
                    // -d prints the client's own protocol trace; messages are the lines with a tab.
                    guard let tab = line.firstIndex(of: "\t") else {
                        if line.contains("SUBACK") { state.messages.append(Message(topic: "$SUBACK", payload: "")) }
                        continue
                    }
                    state.messages.append(Message(topic: String(line[..<tab]), payload: String(line[line.index(after: tab)...])))
                }
            }
        }
        try process.run()
        guard wait(timeout: 5, for: { $0.contains { $0.topic == "$SUBACK" } }) else {
            throw TestKitError("mosquitto_sub did not subscribe within 5 s")
        }
    }

    deinit { stop() }

    public func stop() {
        terminateAndWait(process)
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
