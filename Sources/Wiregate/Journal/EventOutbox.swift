import WiregateCore

/// The seam between the boards and a sink: decoders append events, the sink takes
/// them out (critical first) and acknowledges what its destination confirmed.
///
/// `Journal` is the one implementation; the backend sink will be a second reader.
public protocol EventOutbox: Sendable {
    /// Adds the events of one line, in order.
    func append(_ events: [Event]) async

    /// The next events to send, at most `max`, critical before telemetry, in seq order within a class.
    /// Waits while there is none; batches keep the sink's hand-offs few at high rates.
    /// - Returns: an empty array once the calling task is cancelled.
    func next(max: Int) async -> [JournaledEvent]

    /// Gives back events taken by `next(max:)` that could not be sent, to be sent first next time.
    func putBack(_ events: [JournaledEvent]) async

    /// The destination confirmed these events (PUBACK): the sink's cursor may move past them.
    func acknowledge(_ events: [JournaledEvent]) async

    /// Called when the sink's destination (re)connects: what was appended before is a replay
    /// from now on (sent with `replayed`, and coalesced where `latest`).
    /// - Returns: the first sequence number that counts as live.
    func beginLive() async -> Int64

    /// Makes durable what is still in memory (called once the sink has stopped).
    func flush() async
}
