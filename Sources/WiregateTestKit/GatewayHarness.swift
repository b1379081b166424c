import Foundation
import Logging
import ServiceLifecycle
import Wiregate
import WiregateCore

/// A gateway running in-process against a private broker, with simulated boards,
/// for end-to-end tests. `stop()` shuts it down gracefully, as SIGTERM would.
public final class GatewayHarness: Sendable {
    /// The gateway under test, running in this process.
    public let gateway: Gateway
    private let group: ServiceGroup
    private let task: Task<Void, any Error>

    /// Starts the gateway from config text.
    public init(yaml: String, password: String? = nil, backendToken: String? = nil, time: TimeSource = .system) throws {
        let config = try GatewayConfig.parse(yaml: yaml, file: "harness.yaml")
        var logger = Logger(label: "wiregate-test")
        logger.logLevel =
            ProcessInfo.processInfo.environment["WIREGATE_TEST_LOG"].flatMap(Logger.Level.init(rawValue:)) ?? .critical
        gateway = try Gateway(
            config: config, password: password, backendToken: backendToken, time: time, logger: logger)
        let group = ServiceGroup(
            configuration: .init(services: gateway.services.map { .init(service: $0) }, logger: logger))
        self.group = group
        task = Task { try await group.run() }
    }

    /// Graceful shutdown, then waits for every service to end.
    public func stop() async {
        await group.triggerGracefulShutdown()
        _ = await task.result
        await gateway.journal.close()
    }

    /// The reader of a configured or adopted board, by name; nil when there is none.
    public func board(_ name: String) -> BoardReader? {
        gateway.boards.first { $0.board.name == name }
    }

    /// Config text for one gateway on `port` with the given board entries (YAML list items).
    /// - Parameter stateDirectory: the journal's directory; a new temporary one when nil.
    /// - Parameter backend: the `backend:` section's keys, when there is one.
    /// - Parameter sections: more top-level sections, as YAML lines (`metrics: { ... }`).
    public static func yaml(
        port: Int, gatewayID: String = "test-gw", boards: String, mqttExtra: String = "",
        stateDirectory: String? = nil, journal: String = "", backend: String = "", sections: String = ""
    ) -> String {
        let state = stateDirectory ?? temporaryPath("state")
        return """
            gateway: { id: \(gatewayID), state_dir: \(state) }
            \(journal.isEmpty ? "" : "journal: { \(journal) }")
            \(backend.isEmpty ? "" : "backend: { \(backend) }")
            \(sections)
            mqtt: { host: 127.0.0.1, port: \(port), base_topic: wiregate, keepalive: 5, reconnect_min: 50ms, reconnect_max: 500ms\(mqttExtra) }
            boards:
            \(boards)
            """
    }
}

/// Polls `condition` until it holds or `timeout` passes.
///
/// The default is generous: tests check what happens, not how fast (benchmarks measure that), and
/// the whole suite runs its gateways side by side on two cores, where a board's first open can
/// take over 10 s of wall time while other suites burst.
public func eventually(timeout: Duration = .seconds(30), _ condition: @Sendable () async -> Bool) async -> Bool {
    let deadline = ContinuousClock.now + timeout
    while ContinuousClock.now < deadline {
        if await condition() { return true }
        try? await Task.sleep(for: .milliseconds(20))
    }
    return await condition()
}
