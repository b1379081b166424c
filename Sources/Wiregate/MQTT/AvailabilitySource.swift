/// A retained message the MQTT sink publishes on behalf of another concern.
public struct RetainedMessage: Sendable, Equatable {
    /// The full topic, such as `<base>/<gateway>/<board>/status`.
    public var topic: String
    /// The text published, such as `online` or `offline`.
    public var payload: String
    /// Retained, but for the rare message of another concern that must not be (an `event`
    /// entity's press: retained, it would fire again at every subscription).
    public var retain = true

    /// Makes a message to publish retained, QoS 1.
    /// - Parameters:
    ///   - topic: the full topic to publish on.
    ///   - payload: the text to publish.
    ///   - retain: false for a message that is an action, not a state.
    public init(topic: String, payload: String, retain: Bool = true) {
        self.topic = topic
        self.payload = payload
        self.retain = retain
    }
}

/// What the MQTT sink announces, retained, at every connection before any event, and at a clean
/// disconnect: the availability of the gateway and of its boards (the status publisher).
///
/// The sink asks at the moment it connects or leaves, so what it publishes is the state then;
/// the changes in between are the source's to publish (`MQTTSink.publishRetained(_:)`).
public protocol AvailabilitySource: Sendable {
    /// Published at every connection, in order, before the first event.
    func announcements() -> [RetainedMessage]
    /// Published before a clean disconnect (the broker's will says the same for an unclean one).
    func farewells() -> [RetainedMessage]
}

/// The broker connection as the MQTT sink sees it: one holder (the sink), followed by
/// `status.json` and, in later issues, the metrics and the health topic.
public struct BrokerStatus: Sendable, Equatable {
    /// Connected, and taking new messages (see `MosquittoClient`'s publish gate).
    public var connected = false
    /// Why the broker (or libmosquitto) refuses the gateway's messages, while it does.
    public var refusing: String?

    /// Makes a status; the default is the state before the first connection.
    /// - Parameters:
    ///   - connected: whether the connection is up and taking messages.
    ///   - refusing: why the broker refuses messages; nil when it does not.
    public init(connected: Bool = false, refusing: String? = nil) {
        self.connected = connected
        self.refusing = refusing
    }
}
