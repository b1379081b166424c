import Foundation
import WiregateCore

/// What the gateway says about itself: the retained `<base>/<gateway>/health` message, the
/// heartbeat's body to the backend, and `wiregate status --json`'s `health`. Shaped like
/// Zigbee2MQTT's `bridge/health` where a field means the same (`response_time`, `process`,
/// `os`, `mqtt.connected`, `mqtt.queued`), with wiregate's own beside it. JSON keys are snake_case.
public struct HealthReport: Codable, Sendable, Equatable {
    /// The gateway's id.
    public var gateway: String
    /// wiregate's version.
    public var version: String
    /// When the report was made, in milliseconds since the epoch (Zigbee2MQTT's name).
    public var responseTime: Int64
    /// The daemon's process.
    public var process: Process
    /// The machine.
    public var os: OS
    /// The broker connection.
    public var mqtt: MQTT
    /// Per sink, per class: what waits.
    public var backlog: [String: [String: Backlog]]
    /// Every board, configured and adopted, by name.
    public var boards: [String: Board]
    /// The journal.
    public var journal: Journal
    /// The clock.
    public var clock: Clock
    /// The alarm panel's state; nil without one.
    public var alarm: AlarmState?
    /// The heartbeat to the backend, as of the last attempt; nil without a backend (and in the
    /// heartbeat's own body, which cannot know its answer).
    public var heartbeat: Heartbeat?

    /// The daemon's process.
    public struct Process: Codable, Sendable, Equatable {
        /// Seconds since the daemon started.
        public var uptimeSec: Int
        /// Resident memory, in MiB.
        public var memoryUsedMb: Double
        /// Resident memory, in percent of the machine's.
        public var memoryPercent: Double
    }

    /// The machine.
    public struct OS: Codable, Sendable, Equatable {
        /// 1, 5 and 15 minute load averages.
        public var loadAverage: [Double]
        /// Memory in use (not available), in percent.
        public var memoryPercent: Double
    }

    /// The broker connection.
    public struct MQTT: Codable, Sendable, Equatable {
        /// Up and taking messages.
        public var connected: Bool
        /// When `connected` last changed (the daemon's start before the first connection).
        public var since: Date
        /// Why the broker refuses messages, while it does.
        public var refusing: String?
        /// Events waiting for the broker (Zigbee2MQTT's `queued`): its backlog, every class.
        public var queued: Int
        /// Messages sent and not yet acknowledged.
        public var inFlight: Int
        /// Events published since the start (sent again after a loss counts again).
        public var published: Int
        /// Events the broker acknowledged since the start.
        public var acknowledged: Int
    }

    /// One sink's backlog of one class.
    public struct Backlog: Codable, Sendable, Equatable {
        /// Events not yet acknowledged.
        public var pending: Int
        /// When the oldest of them was read from its board; nil when none waits.
        public var oldest: Date?
    }

    /// One board.
    public struct Board: Codable, Sendable, Equatable {
        /// Its port is open and it talks.
        public var online: Bool
        /// When it last sent a clean line; nil: not since the start.
        public var lastLine: Date?
        /// Clean lines read since the start.
        public var lines: Int
        /// Adopted (not named in the config): unplugged, it stays known until the restart, and is
        /// no reason to call the gateway degraded.
        public var adopted: Bool
    }

    /// The journal.
    public struct Journal: Codable, Sendable, Equatable {
        /// `journal.sqlite` and its WAL, in bytes.
        public var bytes: Int64
        /// `journal.max_bytes`.
        public var maxBytes: Int64
        /// False when it fell back to memory (lost on power cut).
        public var durable: Bool
        /// Events the bounds dropped since the journal was created, per class.
        public var dropped: [String: Int]
        /// Events kept aside, refused for good, per sink.
        public var quarantined: [String: Int]
    }

    /// The clock.
    public struct Clock: Codable, Sendable, Equatable {
        /// The kernel (or timesyncd) says the clock is synchronised.
        public var synchronised: Bool
    }

    /// The heartbeat's last attempt.
    public struct Heartbeat: Codable, Sendable, Equatable {
        /// When the last attempt was made.
        public var attemptedAt: Date
        /// Whether the backend took it (a 2xx).
        public var ok: Bool
        /// The HTTP status, nil when none came.
        public var status: Int?
        /// What went wrong, when it did.
        public var problem: String?
        /// The state the backend derived (`operational`, `degraded`), from its answer.
        public var backendState: String?
        /// When the backend last took one; nil: not since the start.
        public var lastSuccess: Date?
    }

    /// The encoder of every copy: snake_case keys, ISO 8601 dates, sorted keys.
    public static func encoder() -> JSONEncoder {
        let encoder = JSONEncoder()
        encoder.keyEncodingStrategy = .convertToSnakeCase
        encoder.dateEncodingStrategy = .iso8601
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return encoder
    }

    /// The decoder for what `encoder()` wrote.
    public static func decoder() -> JSONDecoder {
        let decoder = JSONDecoder()
        decoder.keyDecodingStrategy = .convertFromSnakeCase
        decoder.dateDecodingStrategy = .iso8601
        return decoder
    }

    /// Where the daemon keeps its last report for `wiregate status`: the runtime directory
    /// (`/run/wiregate`, a tmpfs under the unit) when there is one, else the state directory.
    /// Written every report: not on the SD card when it can be helped.
    public static func path(for config: GatewayConfig) -> String {
        var isDirectory: ObjCBool = false
        if FileManager.default.fileExists(atPath: runtimeDirectory, isDirectory: &isDirectory), isDirectory.boolValue,
            access(runtimeDirectory, W_OK) == 0
        {
            return (runtimeDirectory as NSString).appendingPathComponent("health-\(config.gateway.id).json")
        }
        return (config.gateway.stateDirectory as NSString).appendingPathComponent("health.json")
    }

    /// The unit's `RuntimeDirectory=`.
    static let runtimeDirectory = "/run/wiregate"

    /// Reads the last report the daemon wrote: the newer of the runtime directory's and the
    /// state directory's (the reader may not be allowed to write where the daemon writes, so
    /// `path(for:)` may not name the daemon's file for it); nil when there is none.
    public static func read(for config: GatewayConfig) -> HealthReport? {
        let candidates = [
            (runtimeDirectory as NSString).appendingPathComponent("health-\(config.gateway.id).json"),
            (config.gateway.stateDirectory as NSString).appendingPathComponent("health.json")
        ]
        return candidates.compactMap { path in
            FileManager.default.contents(atPath: path).flatMap { try? decoder().decode(HealthReport.self, from: $0) }
        }.max { $0.responseTime < $1.responseTime }
    }

    /// Whether anything an operator is alerted about differs: the broker, a board's online,
    /// the drops, the clock, the alarm. Times, counts and memory change all the time and
    /// wait for the next periodic report.
    func differsInSubstance(from other: HealthReport) -> Bool {
        mqtt.connected != other.mqtt.connected || mqtt.refusing != other.mqtt.refusing
            || boards.mapValues(\.online) != other.boards.mapValues(\.online)
            || journal.dropped != other.journal.dropped || journal.durable != other.journal.durable
            || clock != other.clock || alarm != other.alarm
    }
}
