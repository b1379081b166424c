/// What the MQTT sink does with the messages on the topics it subscribes to (the command router).
///
/// The sink subscribes to `filters` at every connection and hands each message to `handle` in
/// the order received, from a task of its own: a board write that stalls holds up the next
/// command, never the connection's handling (its CONNACKs, its losses).
public protocol MQTTMessageHandler: Sendable {
    /// The topic filters to subscribe to.
    var filters: [String] { get }

    /// One message received on `filters`.
    /// - Parameter retained: whether the broker flagged it as a retained message.
    func handle(topic: String, payload: [UInt8], retained: Bool) async
}
