import WiregateCore

/// The seam between the boards and the sinks: decoders append events, the MQTT
/// sink takes them out, critical first.
///
/// Today `MemoryOutbox` stands here; the SQLite journal takes its place without
/// touching decoders or the MQTT client.
public protocol EventOutbox: Sendable {
    /// Adds the events of one line, in order.
    func append(_ events: [Event]) async

    /// The next event to send, critical before telemetry, oldest first within a class.
    /// Waits while there is none.
    /// - Returns: nil once the calling task is cancelled.
    func next() async -> Event?

    /// Gives back an event taken by `next()` that could not be sent, to be sent first next time.
    func putBack(_ event: Event) async
}
