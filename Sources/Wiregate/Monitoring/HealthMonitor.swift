import Foundation
import Logging
import ServiceLifecycle
import Synchronization
import WiregateCore

/// Makes the gateway's `HealthReport` from the holders of its facts, and publishes it: retained
/// on `<base>/<gateway>/health` every `mqtt.health_interval` and at once when something an
/// operator is alerted about changes (the broker, a board, the alarm, drops, the clock), and to
/// `health.json` for `wiregate status`. The heartbeat to the backend posts the same report.
public final class HealthMonitor: Service, Sendable {
    private let config: GatewayConfig
    private let journal: Journal
    private let sinks: [String]
    private let directory: BoardDirectory
    private let mqtt: MQTTSink
    private let alarm: AlarmPanel?
    private let heartbeat: HeartbeatRecord?
    private let logger: Logger
    private let started = ContinuousClock.now
    /// When the broker connection last changed: followed from the sink's changes.
    private let brokerSince = Mutex(Date())
    private let wakeUps: AsyncStream<Void>
    private let wake: AsyncStream<Void>.Continuation
    /// Set by the periodic tick: the next report is published whatever changed.
    private let tickDue = Mutex(false)

    /// - Parameters:
    ///   - config: the gateway's id, topics and intervals.
    ///   - journal: backlogs (for `sinks`), size, drops, quarantine.
    ///   - directory: the boards and their readers' counters.
    ///   - mqtt: the broker's status and counters, and where the report is published.
    ///   - alarm: whose state is reported; nil without one.
    ///   - heartbeat: the heartbeat's last result, reported too; nil without a backend.
    public init(
        config: GatewayConfig, journal: Journal, sinks: [String], directory: BoardDirectory, mqtt: MQTTSink,
        alarm: AlarmPanel?, heartbeat: HeartbeatRecord?, logger: Logger
    ) {
        self.config = config
        self.journal = journal
        self.sinks = sinks
        self.directory = directory
        self.mqtt = mqtt
        self.alarm = alarm
        self.heartbeat = heartbeat
        self.logger = logger
        (wakeUps, wake) = AsyncStream.makeStream(of: Void.self, bufferingPolicy: .bufferingNewest(1))
    }

    /// The health topic: `<base>/<gateway>/health`.
    public var topic: String { config.healthTopic }

    /// The report now.
    public func report() async -> HealthReport {
        let broker = mqtt.currentBrokerStatus
        let counters = mqtt.counters
        var backlog: [String: [String: HealthReport.Backlog]] = [:]
        for sink in sinks {
            for (eventClass, waiting) in await journal.backlog(sink: sink) {
                backlog[sink, default: [:]][eventClass.rawValue] = HealthReport.Backlog(
                    pending: waiting.pending, oldest: waiting.oldest)
            }
        }
        let readers = Dictionary(directory.all.map { ($0.board.name, $0) }) { first, _ in first }
        var boards: [String: HealthReport.Board] = [:]
        let configured = Set(config.boards.map(\.name))
        for status in directory.snapshot() {
            let counters = readers[status.board]?.counters
            boards[status.board] = HealthReport.Board(
                online: status.online, lastLine: counters?.lastLineAt, lines: counters?.lines ?? 0,
                adopted: !configured.contains(status.board))
        }
        let dropped = await journal.droppedCounts()
        var quarantined: [String: Int] = [:]
        for sink in sinks { quarantined[sink] = await journal.quarantinedCount(sink: sink) }
        let memory = ProcessMetrics.machineMemory()
        let resident = ProcessMetrics.residentBytes() ?? 0
        var loads = [Double](repeating: 0, count: 3)
        if getloadavg(&loads, 3) != 3 { loads = [] }
        let uptime = ContinuousClock.now - started
        return HealthReport(
            gateway: config.gateway.id, version: WiregateVersion.current,
            responseTime: Int64(Date().timeIntervalSince1970 * 1000),
            process: .init(
                uptimeSec: Int(uptime.components.seconds), memoryUsedMb: Self.rounded(resident / 1_048_576),
                memoryPercent: Self.rounded(memory.map { resident / $0.total * 100 } ?? 0)),
            os: .init(
                loadAverage: loads.map(Self.rounded),
                memoryPercent: Self.rounded(memory.map { ($0.total - $0.available) / $0.total * 100 } ?? 0)),
            mqtt: .init(
                connected: broker.connected, since: brokerSince.withLock { $0 }, refusing: broker.refusing,
                queued: backlog[Journal.mqttSink]?.values.reduce(0) { $0 + $1.pending } ?? 0, inFlight: mqtt.inFlight,
                published: counters.published, acknowledged: counters.acknowledged),
            backlog: backlog, boards: boards,
            journal: .init(
                bytes: journal.sizeInBytes, maxBytes: config.journal.maxBytes, durable: journal.isDurable,
                dropped: Dictionary(uniqueKeysWithValues: dropped.byClass.map { ($0.key.rawValue, $0.value) }),
                quarantined: quarantined),
            clock: .init(synchronised: journal.clockSynchronised()),
            alarm: alarm?.status.state,
            heartbeat: heartbeat?.last)
    }

    private static func rounded(_ value: Double) -> Double { (value * 100).rounded() / 100 }

    /// Reports every `mqtt.health_interval` and on each change until graceful shutdown.
    public func run() async {
        await withTaskGroup(of: Void.self) { group in
            group.addTask {
                var first = true
                for await _ in self.mqtt.brokerChanges() {
                    if !first { self.brokerSince.withLock { $0 = Date() } }
                    first = false
                    self.wake.yield()
                }
            }
            group.addTask {
                for await _ in self.directory.changes() { self.wake.yield() }
            }
            if let alarm = self.alarm {
                group.addTask {
                    for await _ in alarm.changes() { self.wake.yield() }
                }
            }
            group.addTask {
                // A periodic tick, which also catches the drops and the clock between changes.
                while !Task.isCancelled {
                    try? await Task.sleep(for: self.config.mqtt.healthInterval)
                    self.tickDue.withLock { $0 = true }
                    self.wake.yield()
                }
            }
            group.addTask { await self.publishOnWakeUps() }
            try? await gracefulShutdown()
            wake.finish()
            group.cancelAll()
        }
    }

    private func publishOnWakeUps() async {
        var last: HealthReport?
        var lastPublishedWhileConnected = false
        for await _ in wakeUps {
            let due = tickDue.withLock { due in
                defer { due = false }
                return due
            }
            let report = await report()
            write(report)
            let changed = last.map { report.differsInSubstance(from: $0) } ?? true
            // A new connection gets the report at once, retained, in place of what the broker kept.
            let reconnected = report.mqtt.connected && !lastPublishedWhileConnected
            guard due || changed || reconnected else { continue }
            last = report
            lastPublishedWhileConnected = publish(report)
            // The report is read before it is sent: what changed meanwhile (the connection that
            // let it through, above all) is sent at once, rather than left retained a second.
            let now = await self.report()
            if now.differsInSubstance(from: report) {
                write(now)
                last = now
                lastPublishedWhileConnected = publish(now)
            }
            // Then at most one report a second, whatever flaps.
            try? await Task.sleep(for: .seconds(1))
        }
    }

    /// Publishes `report`, retained; whether the broker took it for sending.
    private func publish(_ report: HealthReport) -> Bool {
        guard let payload = try? HealthReport.encoder().encode(report) else { return false }
        return mqtt.publishRetained(RetainedMessage(topic: topic, payload: String(decoding: payload, as: UTF8.self)))
    }

    /// Something the report carries changed outside the followed holders (the heartbeat's
    /// answer): a new report is written and, if it differs in substance, published.
    public func somethingChanged() { wake.yield() }

    /// `health.json`, for `wiregate status`; a failed write is logged (at debug: it is retried at each report).
    private func write(_ report: HealthReport) {
        let path = HealthReport.path(for: config)
        do {
            try HealthReport.encoder().encode(report).write(to: URL(fileURLWithPath: path), options: .atomic)
        } catch {
            logger.debug("cannot write the health report", metadata: ["file": "\(path)", "error": "\(error)"])
        }
    }
}

/// The heartbeat's last result: written by the sender, read into each health report.
public final class HeartbeatRecord: Sendable {
    private let state = Mutex<HealthReport.Heartbeat?>(nil)

    /// An empty record: no attempt yet.
    public init() {}

    /// The last attempt; nil before the first.
    public var last: HealthReport.Heartbeat? { state.withLock { $0 } }

    /// Records `result`; whether it says something else than the one before (taken or not, the
    /// backend's state).
    func record(_ result: HealthReport.Heartbeat) -> Bool {
        state.withLock { last in
            defer { last = result }
            return last?.ok != result.ok || last?.backendState != result.backendState
        }
    }
}
