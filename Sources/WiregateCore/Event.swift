import Foundation

/// How urgently an event must reach its destinations.
///
/// `critical` events (intrusion, tamper, smoke, panic) are sent before any telemetry
/// and are the last to be dropped when the journal must shed events.
public enum EventClass: String, Sendable, CaseIterable, Codable {
    case critical
    case telemetry
}

/// One message decoded from a board's line, ready for the sinks.
///
/// The topic is complete and already sanitised: nothing a board sends can turn it
/// into a wildcard, a `$` topic or a topic outside the board's own subtree.
public struct Event: Sendable, Hashable {
    /// The configured name of the board that sent the line.
    public var board: String
    /// The full MQTT topic, `<base>/<gateway>/<board>/<subtopic>`.
    public var topic: String
    /// The subtopic below the board, used to pick the class (`door`, `env/temperature`).
    public var subtopic: String
    /// The payload, valid UTF-8.
    public var payload: String
    /// Critical or telemetry, from the board's `classes` mapping of the subtopic.
    public var eventClass: EventClass
    /// Wall-clock time at which the gateway read the line.
    public var receivedAt: Date
    /// Telemetry for which a replay sends only the newest value per topic (the board's `latest`).
    public var latest: Bool
    /// Nanoseconds since boot (`CLOCK_BOOTTIME`) when the gateway read the line: with the boot,
    /// the true time of an event read while the wall clock was wrong (see `ClockRepair`). Nil
    /// until the journal takes it, which stamps an event without one (the alarm's own).
    public var receivedMonotonic: Int64?
    /// Whether the wall clock was synchronised when the line was read; nil until the journal
    /// takes it, as for `receivedMonotonic`.
    public var receivedSynchronised: Bool?

    /// An event as read; `latest` is kept only for telemetry (a critical event is never coalesced).
    /// - Parameters:
    ///   - board: the configured name of the board.
    ///   - topic: the full, sanitised MQTT topic.
    ///   - subtopic: the part of `topic` below the board.
    ///   - payload: the value, valid UTF-8.
    ///   - eventClass: critical or telemetry.
    ///   - receivedAt: when the gateway read the line (wall clock).
    ///   - latest: whether a replay may send only the newest value of this topic; `false` by default.
    ///   - receivedMonotonic: nanoseconds since boot when the line was read; nil to be stamped by the journal.
    public init(
        board: String, topic: String, subtopic: String, payload: String, eventClass: EventClass, receivedAt: Date,
        latest: Bool = false, receivedMonotonic: Int64? = nil
    ) {
        self.board = board
        self.topic = topic
        self.subtopic = subtopic
        self.payload = payload
        self.eventClass = eventClass
        self.receivedAt = receivedAt
        self.latest = latest && eventClass == .telemetry
        self.receivedMonotonic = receivedMonotonic
    }
}
