import WiregateCore

/// The seam between the boards and a sink: decoders append events, the sink takes
/// them out (critical first) and acknowledges what its destination confirmed.
///
/// `Journal` is the one implementation; the MQTT and backend sinks each read it from their own cursor.
public protocol EventOutbox: Sendable {
    /// Adds the events of one line, in order; returns once critical ones are committed.
    func append(_ events: [Event]) async

    /// Adds the events of one line, in order, without waiting for the disk (the serial readers).
    func enqueue(_ events: [Event]) async

    /// Takes the acknowledgements the sink has gathered (as `acknowledge` does), then returns the
    /// next events to send, at most `max`, critical before telemetry, in seq order within a class:
    /// one hand-off per batch at high rates. Waits while there is none.
    /// - Returns: an empty array once the calling task is cancelled.
    /// - Parameter classes: the classes to take, in that order (one caller per class at a time).
    func next(max: Int, classes: [EventClass], acknowledging: [JournaledEvent]) async -> [JournaledEvent]

    /// Whether events of `eventClass` are waiting to be handed out to this sink, or were handed out
    /// by the last call of `next` and its caller has not come back for more (they may not be sent yet).
    func hasUnsent(_ eventClass: EventClass) async -> Bool

    /// Gives back events taken by `next(max:)` that could not be sent, to be sent first next time.
    func putBack(_ events: [JournaledEvent]) async

    /// The destination confirmed these events (PUBACK): the sink's cursor may move past them.
    func acknowledge(_ events: [JournaledEvent]) async

    /// The destination can never take these events as they are (a topic the broker refuses, a
    /// batch the backend answers 400): they go to the journal's quarantine with `response`, and the
    /// sink's cursor moves past them, so that one bad event never stalls the ones behind it.
    /// - Parameter status: the destination's code (an HTTP status, a PUBACK reason code, a libmosquitto error).
    func quarantine(_ events: [JournaledEvent], status: Int, response: String) async

    /// Called when the sink's destination (re)connects: what was appended before is a replay
    /// from now on (sent with `replayed`, and coalesced where `latest`).
    /// - Returns: the first sequence number that counts as live.
    func beginLive() async -> Int64

    /// Makes durable what is still in memory (called once the sink has stopped).
    func flush() async
}

extension EventOutbox {
    public func enqueue(_ events: [Event]) async { await append(events) }

    /// The next events to send, with no acknowledgement to hand over.
    public func next(max: Int) async -> [JournaledEvent] {
        await next(max: max, classes: [.critical, .telemetry], acknowledging: [])
    }

    /// Critical before telemetry.
    public func next(max: Int, acknowledging: [JournaledEvent]) async -> [JournaledEvent] {
        await next(max: max, classes: [.critical, .telemetry], acknowledging: acknowledging)
    }
}
