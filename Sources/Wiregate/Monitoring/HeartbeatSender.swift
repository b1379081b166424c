import AsyncHTTPClient
import Foundation
import Logging
import NIOCore
import ServiceLifecycle
import WiregateCore

/// Posts the health report to the backend (`/api/gateway/health/`) every
/// `backend.heartbeat_interval`, and at once when the broker connection is lost or comes back:
/// the news of a dead broker must not depend on the broker. Its own HTTP client (the event
/// upload's may be busy with a batch for as long as the backend's timeout), the same token and
/// TLS settings. The backend derives operational / degraded / disconnected from these.
public final class HeartbeatSender: Service, Sendable {
    private let settings: GatewayConfig.Backend
    private let token: String
    private let monitor: HealthMonitor
    private let mqtt: MQTTSink
    private let record: HeartbeatRecord
    private let directory: BoardDirectory
    private let configuredBoards: [String]
    private let metrics: BackendMetrics
    private let logger: Logger

    /// The longest a heartbeat waits for its answer: an interval's worth at most.
    static let maxWait = Duration.seconds(10)

    /// - Parameters:
    ///   - settings: `backend:` (URL, CA, interval).
    ///   - token: the backend's API token, never logged.
    ///   - monitor: makes the report.
    ///   - mqtt: whose connection changes send a heartbeat at once.
    ///   - record: where each attempt's result goes (the reports and `wiregate status` read it).
    ///   - directory: whose configured boards the first heartbeat waits for (a while).
    ///   - configuredBoards: the configured boards' names.
    ///   - metrics: the heartbeat's requests and state.
    public init(
        settings: GatewayConfig.Backend, token: String, monitor: HealthMonitor, mqtt: MQTTSink,
        record: HeartbeatRecord, directory: BoardDirectory, configuredBoards: [String], metrics: BackendMetrics,
        logger: Logger
    ) {
        self.directory = directory
        self.configuredBoards = configuredBoards
        self.settings = settings
        self.token = token
        self.monitor = monitor
        self.mqtt = mqtt
        self.record = record
        self.metrics = metrics
        var logger = logger
        logger[metadataKey: "sink"] = "heartbeat"
        self.logger = logger
    }

    /// Sends heartbeats until graceful shutdown.
    public func run() async throws {
        let client = BackendSink.makeClient(settings)
        let (due, dueNow) = AsyncStream.makeStream(of: Void.self, bufferingPolicy: .bufferingNewest(1))
        await withTaskGroup(of: Void.self) { group in
            group.addTask {
                var last: Bool?
                for await status in self.mqtt.brokerChanges() where status.connected != last {
                    // The first status is the start: the periodic loop sends the first heartbeat.
                    if last != nil { dueNow.yield() }
                    last = status.connected
                }
            }
            group.addTask {
                await self.firstConnection(within: Self.startGrace)
                while !Task.isCancelled {
                    dueNow.yield()
                    try? await Task.sleep(for: self.settings.heartbeatInterval)
                }
            }
            group.addTask {
                for await _ in due { await self.send(with: client) }
            }
            try? await gracefulShutdown()
            dueNow.finish()
            group.cancelAll()
        }
        try? await client.shutdown()
    }

    /// How long the first heartbeat waits for the first broker connection and the configured
    /// boards: a gateway that has just started (after a power cut, its USB boards still
    /// enumerating) has not had time to connect, and must not be reported degraded for it.
    static let startGrace = Duration.seconds(10)

    /// Returns once the broker is connected and every configured board online, or `grace` has passed.
    private func firstConnection(within grace: Duration) async {
        await withTaskGroup(of: Void.self) { group in
            group.addTask {
                for await status in self.mqtt.brokerChanges() where status.connected { break }
                while !Task.isCancelled, !self.configuredBoardsOnline() {
                    try? await Task.sleep(for: .milliseconds(200))
                }
            }
            group.addTask { try? await Task.sleep(for: grace) }
            await group.next()
            group.cancelAll()
        }
    }

    private func send(with client: HTTPClient) async {
        var report = await monitor.report()
        report.heartbeat = nil
        struct Body: Encodable {
            var intervalSec: Int
            var health: HealthReport
        }
        let body: Data
        do {
            body = try HealthReport.encoder().encode(
                Body(intervalSec: Int(settings.heartbeatInterval.components.seconds), health: report))
        } catch {
            return
        }
        var request = HTTPClientRequest(url: settings.url + "/api/gateway/health/")
        request.method = .POST
        request.headers.add(name: "Authorization", value: "Token \(token)")
        request.headers.add(name: "Content-Type", value: "application/json")
        request.body = .bytes(ByteBuffer(bytes: body))
        let wait = min(Self.maxWait, settings.timeout)
        let deadline = NIODeadline.now() + .nanoseconds(Int64(wait.components.seconds) * 1_000_000_000)
        let previous = record.last
        var result = HealthReport.Heartbeat(
            attemptedAt: Date(), ok: false, status: nil, problem: nil, backendState: nil,
            lastSuccess: previous?.lastSuccess)
        do {
            let response = try await client.execute(request, deadline: deadline)
            let status = Int(response.status.code)
            result.status = status
            metrics.request(.health, status: status)
            let answer = try? await response.body.collect(upTo: 16 * 1024)
            let state = answer.flatMap { Self.state(in: Data($0.readableBytesView)) }
            if (200..<300).contains(status), let state {
                result.ok = true
                result.backendState = state
                result.lastSuccess = result.attemptedAt
            } else if (200..<300).contains(status) {
                // A proxy's or a captive portal's page answered, not the backend.
                result.problem = "a \(status) that is not the backend's answer (no state in it)"
            } else {
                result.problem = "the backend answered \(status)"
            }
        } catch {
            metrics.request(.health, status: nil)
            result.problem = BackendSink.describe(error)
        }
        // `wiregate status` and the health topic say so at once, not at the next report.
        if record.record(result) { monitor.somethingChanged() }
        metrics.heartbeatUp.record(result.ok ? 1 : 0)
        if let success = result.lastSuccess { metrics.lastHeartbeat.record(success.timeIntervalSince1970) }
        if result.ok != (previous?.ok ?? true) || previous == nil {
            if result.ok {
                logger.info("heartbeat taken by the backend", metadata: ["state": "\(result.backendState ?? "-")"])
            } else {
                logger.warning("heartbeat not taken by the backend", metadata: ["problem": "\(result.problem ?? "-")"])
            }
        }
    }

    private func configuredBoardsOnline() -> Bool {
        configuredBoards.allSatisfy { directory.isOnline($0) }
    }

    /// The `state` of the backend's JSON answer; nil when it is not one.
    static func state(in body: Data) -> String? {
        guard let object = try? JSONSerialization.jsonObject(with: body) as? [String: Any] else { return nil }
        return object["state"] as? String
    }
}
