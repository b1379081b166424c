import CoreMetrics
import Foundation
import WiregateCore

/// The handles each part of a gateway counts and measures with, made once from one factory
/// (a `MetricsRegistry`'s, or `MetricsRegistry.none`). Every labelled series is made at the
/// start with its value 0, so that `rate()` and `increase()` see the first event, and an alert
/// on "any drop" has a series to watch before the first drop.
public struct GatewayMetrics: Sendable {
    /// The broker connection's.
    public let mqtt: MQTTMetrics
    /// The journal's.
    public let journal: JournalMetrics
    /// The backend's (sync and heartbeat).
    public let backend: BackendMetrics
    /// The clock's.
    public let clock: ClockMetrics
    private let boardHandles: [String: BoardMetrics]
    private let adopted: BoardMetrics
    /// The alarm's; its handles count nothing without `alarm:`.
    public let alarm: AlarmMetrics

    /// Handles that count nothing: for the parts made without a registry (tests, benchmarks).
    public static let none = GatewayMetrics(config: nil, sinks: [], factory: MetricsRegistry.none)

    /// Makes every handle.
    /// - Parameters:
    ///   - config: names the boards and the alarm's zones (the only label values from outside); nil: none.
    ///   - sinks: the journal's sinks, whose backlogs are reported.
    ///   - factory: the registry's factory.
    public init(config: GatewayConfig?, sinks: [String], factory: any MetricsFactory) {
        mqtt = MQTTMetrics(factory: factory)
        journal = JournalMetrics(factory: factory, sinks: sinks)
        // Series only for the parts there are: no backend or alarm series at 0 for a gateway without them.
        backend = BackendMetrics(factory: config?.backend == nil ? MetricsRegistry.none : factory)
        clock = ClockMetrics(factory: factory)
        boardHandles = Dictionary(
            uniqueKeysWithValues: (config?.boards ?? []).map {
                ($0.name, BoardMetrics(board: $0.name, factory: factory))
            }
        )
        adopted = BoardMetrics(board: MetricsCatalog.adoptedBoardLabel, factory: factory)
        alarm = AlarmMetrics(
            factory: config?.alarm == nil ? MetricsRegistry.none : factory,
            zones: config?.alarm?.settings.zones.map(\.name) ?? [])
    }

    /// A board's handles: its own for a configured board, the shared `adopted` ones for any other.
    public func board(_ name: String) -> BoardMetrics { boardHandles[name] ?? adopted }

    /// Every configured board's handles, by name.
    public var configuredBoards: [String: BoardMetrics] { boardHandles }

    /// The handles adopted boards share.
    public var adoptedBoards: BoardMetrics { adopted }
}

/// Counters made for each value of one bounded label (with fixed labels beside it).
public struct LabelledCounters<Key: Hashable & Sendable>: Sendable {
    private let counters: [Key: Counter]

    init(
        _ label: String, fixed: [(String, String)] = [], keys: [Key], name: String, value: (Key) -> String,
        factory: any MetricsFactory
    ) {
        counters = Dictionary(
            uniqueKeysWithValues: keys.map { key in
                (key, Counter(label: label, dimensions: fixed + [(name, value(key))], factory: factory))
            })
    }

    /// For each value of an `outer` label, a counter per `Key` (`outer` and `name` labels).
    static func per<Outer>(_ outer: String, _ label: String, name: String, factory: any MetricsFactory) -> [Outer: Self]
    where
        Outer: CaseIterable & RawRepresentable & Hashable, Outer.RawValue == String,
        Key: CaseIterable & RawRepresentable, Key.RawValue == String, Key.AllCases == [Key]
    {
        Dictionary(
            uniqueKeysWithValues: Outer.allCases.map { value in
                (
                    value,
                    Self(
                        label, fixed: [(outer, value.rawValue)], keys: Key.allCases, name: name, value: \.rawValue,
                        factory: factory)
                )
            })
    }

    /// Adds `amount` to `key`'s counter (a key not made at the start is a mistake, and counted nowhere).
    public func increment(_ key: Key, by amount: Int = 1) {
        guard amount > 0 else { return }
        counters[key]?.increment(by: Int64(amount))
    }
}

/// Why a broker connection ended or could not be made: a bounded label, from the reason text
/// the connection reports.
public enum BrokerFailureReason: String, Sendable, CaseIterable {
    /// The broker answered the CONNECT with a refusal (credentials, client id, protocol).
    case refused
    /// The TLS handshake or the certificate check failed.
    case tls
    /// The broker could not be reached (no route, connection refused, name unknown).
    case unreachable
    /// No CONNACK in time, or the keepalive ran out.
    case timeout
    /// The connection went away otherwise (reset, closed by the broker).
    case lost

    /// Classifies a reason the connection reported (`MQTTConnectionStateMachine.Report`).
    public init(describing reason: String) {
        let text = reason.lowercased()
        // In this order: "cannot reach host:1883: Connection refused" is the TCP connect's
        // refusal (nobody listens), not the broker's.
        if text.hasPrefix("cannot reach") || text.contains("lookup") {
            self = .unreachable
        } else if text.hasPrefix("the broker refused") {
            self = .refused
        } else if text.contains("tls") || text.contains("certificate") || text.contains("handshake") {
            self = .tls
        } else if text.contains("no connack") || text.contains("keepalive") || text.contains("timed out") {
            self = .timeout
        } else {
            self = .lost
        }
    }
}

/// The broker connection's handles.
public struct MQTTMetrics: Sendable {
    /// What became of a published event.
    public enum PublishResult: String, Sendable, CaseIterable {
        /// The broker acknowledged it.
        case acknowledged
        /// The broker refused it for now: held back and sent again.
        case refused
        /// It can never be published as it is: quarantined.
        case quarantined
    }

    /// `wiregate_mqtt_connected`.
    public let connected: Gauge
    /// `wiregate_mqtt_connects_total`.
    public let connects: Counter
    /// `wiregate_mqtt_connect_failures_total`.
    public let connectFailures: LabelledCounters<BrokerFailureReason>
    /// `wiregate_mqtt_disconnects_total`.
    public let disconnects: LabelledCounters<BrokerFailureReason>
    private let publishes: [EventClass: LabelledCounters<PublishResult>]
    /// `wiregate_mqtt_inflight_messages`.
    public let inFlight: Gauge
    /// `wiregate_mqtt_last_ack_timestamp_seconds`.
    public let lastAcknowledgement: Gauge

    init(factory: any MetricsFactory) {
        connected = Gauge(label: "wiregate_mqtt_connected", factory: factory)
        connected.record(0)
        connects = Counter(label: "wiregate_mqtt_connects_total", factory: factory)
        connectFailures = LabelledCounters(
            "wiregate_mqtt_connect_failures_total", keys: BrokerFailureReason.allCases, name: "reason",
            value: \.rawValue, factory: factory)
        disconnects = LabelledCounters(
            "wiregate_mqtt_disconnects_total", keys: BrokerFailureReason.allCases, name: "reason", value: \.rawValue,
            factory: factory)
        publishes = LabelledCounters.per("class", "wiregate_mqtt_publishes_total", name: "result", factory: factory)
        inFlight = Gauge(label: "wiregate_mqtt_inflight_messages", factory: factory)
        inFlight.record(0)
        lastAcknowledgement = Gauge(label: "wiregate_mqtt_last_ack_timestamp_seconds", factory: factory)
        lastAcknowledgement.record(0)
    }

    /// Counts events with `result`, each under its class.
    public func published(_ classes: some Sequence<EventClass>, _ result: PublishResult) {
        for eventClass in classes { publishes[eventClass]?.increment(result) }
    }
}

/// The journal's handles.
public struct JournalMetrics: Sendable {
    /// Why the journal's bounds dropped events.
    public enum DropReason: String, Sendable, CaseIterable {
        /// `journal.max_bytes`.
        case maxBytes = "max_bytes"
        /// `journal.max_age`.
        case maxAge = "max_age"
        /// The card refused writes and the events held in memory reached their bound.
        case memory
    }

    /// `wiregate_journal_events_appended_total`.
    public let appended: LabelledCounters<EventClass>
    private let dropped: [EventClass: LabelledCounters<DropReason>]
    /// `wiregate_journal_quarantine_dropped_total`.
    public let quarantineDropped: Counter
    /// `wiregate_journal_commit_failures_total`.
    public let commitFailures: Counter
    /// `wiregate_journal_commit_duration_seconds`.
    public let commitDuration: CoreMetrics.Timer
    /// `wiregate_journal_size_bytes`.
    public let size: Gauge
    /// `wiregate_journal_max_bytes`.
    public let maxBytes: Gauge
    /// `wiregate_journal_used_bytes`: what `max_bytes` bounds, as of the last bounds check.
    public let used: Gauge
    /// `wiregate_journal_durable`.
    public let durable: Gauge
    /// `wiregate_clock_unsynchronised_events_total`: counted where events are numbered.
    public let unsynchronised: Counter
    private let backlog: [String: [EventClass: (count: Gauge, oldest: Gauge)]]
    private let quarantined: [String: Gauge]

    init(factory: any MetricsFactory, sinks: [String]) {
        appended = LabelledCounters(
            "wiregate_journal_events_appended_total", keys: EventClass.allCases, name: "class", value: \.rawValue,
            factory: factory)
        dropped = LabelledCounters.per(
            "class", "wiregate_journal_dropped_events_total", name: "reason", factory: factory)
        quarantineDropped = Counter(label: "wiregate_journal_quarantine_dropped_total", factory: factory)
        commitFailures = Counter(label: "wiregate_journal_commit_failures_total", factory: factory)
        commitDuration = CoreMetrics.Timer(label: "wiregate_journal_commit_duration_seconds", factory: factory)
        size = Gauge(label: "wiregate_journal_size_bytes", factory: factory)
        maxBytes = Gauge(label: "wiregate_journal_max_bytes", factory: factory)
        used = Gauge(label: "wiregate_journal_used_bytes", factory: factory)
        used.record(0)
        durable = Gauge(label: "wiregate_journal_durable", factory: factory)
        unsynchronised = Counter(label: "wiregate_clock_unsynchronised_events_total", factory: factory)
        backlog = Dictionary(
            uniqueKeysWithValues: sinks.map { sink in
                (
                    sink,
                    Dictionary(
                        uniqueKeysWithValues: EventClass.allCases.map { eventClass in
                            let labels = [("sink", sink), ("class", eventClass.rawValue)]
                            return (
                                eventClass,
                                (
                                    Gauge(
                                        label: "wiregate_journal_backlog_events", dimensions: labels, factory: factory),
                                    Gauge(
                                        label: "wiregate_journal_oldest_unsent_timestamp_seconds", dimensions: labels,
                                        factory: factory)
                                )
                            )
                        })
                )
            })
        quarantined = Dictionary(
            uniqueKeysWithValues: sinks.map {
                ($0, Gauge(label: "wiregate_journal_quarantined_events", dimensions: [("sink", $0)], factory: factory))
            })
    }

    /// Counts events the bounds dropped.
    public func dropped(_ count: Int, _ eventClass: EventClass, _ reason: DropReason) {
        dropped[eventClass]?.increment(reason, by: count)
    }

    /// Sets a sink's backlog of a class: how many wait, and since when (nil: none waits).
    public func backlog(sink: String, _ eventClass: EventClass, pending: Int, oldest: Date?) {
        guard let gauges = backlog[sink]?[eventClass] else { return }
        gauges.count.record(pending)
        gauges.oldest.record(pending > 0 ? oldest?.timeIntervalSince1970 ?? 0 : 0)
    }

    /// Sets a sink's quarantine size.
    public func quarantined(sink: String, _ count: Int) { quarantined[sink]?.record(count) }
}

/// One board's handles (or the adopted boards', together).
public struct BoardMetrics: Sendable {
    /// What became of a line.
    public enum LineResult: String, Sendable, CaseIterable {
        /// Decoded into events.
        case published
        /// Did not decode.
        case malformed
        /// Longer than the board's `max_line_length`.
        case overlong
        /// NUL, a control character, invalid UTF-8, or the partial first line after opening.
        case noise
        /// A `#` line: the board talking about itself.
        case annotation
    }

    /// What became of a command.
    public enum CommandResult: String, Sendable, CaseIterable {
        /// Written to the board.
        case written
        /// Refused by the router: not in the allow-list, or a siren's board while the alarm is armed.
        case refused
        /// Allowed, but not written: the board offline, or the write failed.
        case failed
    }

    /// `wiregate_board_up`: set at each scrape from the board directory.
    public let up: Gauge
    /// `wiregate_board_last_line_timestamp_seconds`.
    public let lastLine: Gauge
    /// `wiregate_board_lines_total`.
    public let lines: LabelledCounters<LineResult>
    /// `wiregate_board_opens_total`.
    public let opens: Counter
    /// `wiregate_board_commands_total`.
    public let commands: LabelledCounters<CommandResult>

    init(board: String, factory: any MetricsFactory) {
        let labels = [("board", board)]
        up = Gauge(label: "wiregate_board_up", dimensions: labels, factory: factory)
        up.record(0)
        lastLine = Gauge(label: "wiregate_board_last_line_timestamp_seconds", dimensions: labels, factory: factory)
        lastLine.record(0)
        lines = LabelledCounters(
            "wiregate_board_lines_total", fixed: labels, keys: LineResult.allCases, name: "result", value: \.rawValue,
            factory: factory)
        opens = Counter(label: "wiregate_board_opens_total", dimensions: labels, factory: factory)
        commands = LabelledCounters(
            "wiregate_board_commands_total", fixed: labels, keys: CommandResult.allCases, name: "result",
            value: \.rawValue, factory: factory)
    }

    /// The result a framer's rejection counts under.
    public static func result(of rejection: LineFramer.Rejection) -> LineResult {
        rejection == .overlong ? .overlong : .noise
    }
}

/// The backend's handles.
public struct BackendMetrics: Sendable {
    /// Which of the backend's endpoints a request went to.
    public enum Endpoint: String, Sendable, CaseIterable {
        /// `/api/gateway/events/`.
        case events
        /// `/api/gateway/health/`.
        case health
    }

    /// An answer's status class.
    public enum StatusClass: String, Sendable, CaseIterable {
        /// 200–299.
        case success = "2xx"
        /// 300–399.
        case redirect = "3xx"
        /// 400–499.
        case clientError = "4xx"
        /// 500–599.
        case serverError = "5xx"
        /// No answer: the connection, TLS or the timeout failed.
        case error

        /// The class of an HTTP status; nil: no answer.
        public init(status: Int?) {
            switch status {
            case .some(200..<300): self = .success
            case .some(300..<400): self = .redirect
            case .some(400..<500): self = .clientError
            case .some(500..<600): self = .serverError
            default: self = .error
            }
        }
    }

    private let requests: [Endpoint: LabelledCounters<StatusClass>]
    /// `wiregate_backend_last_success_timestamp_seconds`.
    public let lastSuccess: Gauge
    /// `wiregate_backend_heartbeat_up`.
    public let heartbeatUp: Gauge
    /// `wiregate_backend_last_heartbeat_timestamp_seconds`.
    public let lastHeartbeat: Gauge

    init(factory: any MetricsFactory) {
        requests = LabelledCounters.per("endpoint", "wiregate_backend_requests_total", name: "status", factory: factory)
        lastSuccess = Gauge(label: "wiregate_backend_last_success_timestamp_seconds", factory: factory)
        lastSuccess.record(0)
        heartbeatUp = Gauge(label: "wiregate_backend_heartbeat_up", factory: factory)
        heartbeatUp.record(0)
        lastHeartbeat = Gauge(label: "wiregate_backend_last_heartbeat_timestamp_seconds", factory: factory)
        lastHeartbeat.record(0)
    }

    /// Counts one request's answer (nil: none came).
    public func request(_ endpoint: Endpoint, status: Int?) {
        requests[endpoint]?.increment(StatusClass(status: status))
    }
}

/// The clock's handles.
public struct ClockMetrics: Sendable {
    /// `wiregate_clock_synchronised`: set at each scrape.
    public let synchronised: Gauge

    init(factory: any MetricsFactory) {
        synchronised = Gauge(label: "wiregate_clock_synchronised", factory: factory)
    }
}

/// The alarm panel's handles.
public struct AlarmMetrics: Sendable {
    private let states: [AlarmState: Gauge]
    /// `wiregate_alarm_triggers_total`, by zone.
    public let triggers: LabelledCounters<String>
    /// `wiregate_alarm_sirens_sounding`.
    public let sirensSounding: Gauge

    init(factory: any MetricsFactory, zones: [String]) {
        states = Dictionary(
            uniqueKeysWithValues: AlarmState.allCases.map {
                ($0, Gauge(label: "wiregate_alarm_state", dimensions: [("state", $0.rawValue)], factory: factory))
            })
        triggers = LabelledCounters(
            "wiregate_alarm_triggers_total", keys: zones, name: "zone", value: { $0 }, factory: factory)
        sirensSounding = Gauge(label: "wiregate_alarm_sirens_sounding", factory: factory)
    }

    /// Sets the state gauges: 1 for `state`, 0 for the others.
    public func state(_ state: AlarmState) {
        for (each, gauge) in states { gauge.record(each == state ? 1 : 0) }
    }
}
