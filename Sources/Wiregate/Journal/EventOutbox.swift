import Foundation
import WiregateCore

/// An event as the journal holds it: with its sequence number and clock flag.
public struct JournaledEvent: Sendable, Hashable {
    /// Per gateway, increasing, never reused (also across restarts).
    public var seq: Int64
    /// The event as decoded from the board's line (its board, topic, payload, class).
    public var event: Event
    /// Whether the kernel said the clock was synchronised when the line was read.
    public var clockSynced: Bool
    /// The boot the event was read in (`/proc/sys/kernel/random/boot_id`); nil for one journaled
    /// before boots were recorded, or when the boot id could not be read.
    public var boot: String? = nil
    /// Its time quality and corrected time, as the journal knew them when it handed it out.
    public var time = EventTime(quality: .unsynced, corrected: nil)

    /// About what it costs in memory: its strings and the record around them.
    var memoryCost: Int {
        event.topic.utf8.count + event.subtopic.utf8.count + event.payload.utf8.count + event.board.utf8.count + 160
    }
}

extension JournaledEvent {
    /// Its true wall time, when it was recorded with a wrong clock that is now known.
    public var correctedAt: Date? { time.corrected.map { Date(timeIntervalSince1970: Double($0) / 1e9) } }

    /// What an MQTT 5 message of it carries beside its payload: `seq`, `ts` (what the clock said),
    /// `time_quality`, `boot` and `mono` (nanoseconds since that boot) and, once known,
    /// `ts_corrected`; `replayed` when it comes from the backlog.
    /// - Parameters:
    ///   - replayed: whether it is sent from the backlog rather than live.
    ///   - timestamps: the formatter, whose cache a run of events shares.
    public func userProperties(replayed: Bool, timestamps: inout TimestampFormatter) -> [(name: String, value: String)]
    {
        var properties = [
            (name: "seq", value: String(seq)), ("ts", timestamps.string(from: event.receivedAt)),
            ("time_quality", time.quality.rawValue)
        ]
        if let boot { properties.append(("boot", boot)) }
        if let monotonic = event.receivedMonotonic { properties.append(("mono", String(monotonic))) }
        if let correctedAt {
            // Its own formatter: three hours from `ts`, it would empty the shared one's cache each time.
            var formatter = TimestampFormatter()
            properties.append(("ts_corrected", formatter.string(from: correctedAt)))
        }
        if replayed { properties.append(("replayed", "true")) }
        return properties
    }
}

/// The producers' side of the store-and-forward seam: the boards' decoders append events here.
///
/// `Journal` is the one implementation; each sink reads what was appended through its own
/// `OutboxReader` (`Journal.reader(for:)`).
public protocol EventOutbox: Sendable {
    /// Adds the events of one line, in order; returns once critical ones are committed.
    /// - Parameter events: what one line decoded to, in order.
    func append(_ events: [Event]) async

    /// Adds the events of one line, in order, without waiting for the disk (the serial readers).
    /// - Parameter events: what one line decoded to, in order.
    func enqueue(_ events: [Event]) async
}

extension EventOutbox {
    /// For an outbox with no separate fast path: waits as `append` does.
    /// - Parameter events: what one line decoded to, in order.
    public func enqueue(_ events: [Event]) async { await append(events) }
}

/// One sink's side of the seam: what was appended, critical first, from the sink's own cursor,
/// which only the sink's acknowledgements (or quarantine) move. The MQTT and backend sinks each
/// hold one; neither sees the other's cursor nor the store behind it.
public protocol OutboxReader: Sendable {
    /// Takes the acknowledgements the sink has gathered (as `acknowledge` does), then returns the
    /// next events to send, critical before telemetry, in seq order within a class: one hand-off
    /// per batch at high rates. Waits while there is none.
    /// - Parameters:
    ///   - max: the most events to return (at least one).
    ///   - classes: the classes to take, in that order (one caller per class at a time).
    ///   - acknowledging: events the destination confirmed since the last call.
    /// - Returns: at least one event; an empty array once the calling task is cancelled or the store closed.
    func next(max: Int, classes: [EventClass], acknowledging: [JournaledEvent]) async -> [JournaledEvent]

    /// Whether events of `eventClass` are waiting to be handed out to this sink, or were handed out
    /// by the last call of `next` and its caller has not come back for more (they may not be sent yet).
    /// - Parameter eventClass: the class asked about.
    func hasUnsent(_ eventClass: EventClass) async -> Bool

    /// Gives back events taken by `next` that could not be sent, to be sent first next time.
    /// - Parameter events: events `next` returned to this reader, not acknowledged.
    func putBack(_ events: [JournaledEvent]) async

    /// The destination confirmed these events (a PUBACK, a 2xx): the sink's cursor may move past them.
    /// - Parameter events: events `next` returned to this reader.
    func acknowledge(_ events: [JournaledEvent]) async

    /// The destination can never take these events as they are (a topic the broker refuses, a
    /// batch the backend answers 400): they go to the journal's quarantine with `response`, and the
    /// sink's cursor moves past them, so that one bad event never stalls the ones behind it.
    /// - Parameters:
    ///   - events: events `next` returned to this reader.
    ///   - status: the destination's code (an HTTP status, a PUBACK reason code, a libmosquitto error).
    ///   - response: what the destination said, kept for the operator.
    func quarantine(_ events: [JournaledEvent], status: Int, response: String) async

    /// The sink's destination is (again) reachable: events appended from now on are live to it,
    /// older ones a replay (sent with `replayed`; a coalescing reader skips superseded `latest` rows).
    /// - Returns: the first sequence number that is live, for the sink to mark what it sends.
    func destinationConnected() async -> Int64

    /// Makes durable what is still in memory (called once the sink has stopped).
    func flush() async

    /// The events' time as known now (see `JournaledEvent.time`): for events a sink kept in hand
    /// across an anchor (held back by the broker, sent again later).
    /// - Parameter events: events `next` returned to this reader.
    func dated(_ events: [JournaledEvent]) async -> [JournaledEvent]
}

extension OutboxReader {
    /// For a reader whose store keeps no clock anchors: as they were.
    /// - Parameter events: events `next` returned to this reader.
    public func dated(_ events: [JournaledEvent]) async -> [JournaledEvent] { events }

    /// The next events to send, critical before telemetry, with no acknowledgement to hand over.
    /// - Parameter max: the most events to return.
    public func next(max: Int) async -> [JournaledEvent] {
        await next(max: max, classes: [.critical, .telemetry], acknowledging: [])
    }

    /// Critical before telemetry.
    /// - Parameters:
    ///   - max: the most events to return.
    ///   - acknowledging: events the destination confirmed since the last call.
    public func next(max: Int, acknowledging: [JournaledEvent]) async -> [JournaledEvent] {
        await next(max: max, classes: [.critical, .telemetry], acknowledging: acknowledging)
    }
}
