import CMosquitto

/// Several handlers behind the MQTT sink's one: each message goes to the first handler one of
/// whose filters matches its topic (libmosquitto's own matching, wildcards included), so the
/// command router and the alarm's `alarm/set` share one subscription list.
public struct MessageHandlers: MQTTMessageHandler {
    private let handlers: [any MQTTMessageHandler]

    /// - Parameter handlers: in order of precedence; their filters must not overlap (a message
    ///   would reach only the first).
    public init(_ handlers: [any MQTTMessageHandler]) {
        self.handlers = handlers
    }

    /// Every handler's filters, in order, less any that another one covers: overlapping
    /// subscriptions may deliver a message twice (a wrong code counted twice), and the routing
    /// below goes by topic, not by subscription.
    public var filters: [String] {
        let all = handlers.flatMap(\.filters)
        let wildcards = all.filter { $0.contains("+") || $0.contains("#") }
        var kept: [String] = []
        for filter in all where !kept.contains(filter) {
            let exact = !filter.contains("+") && !filter.contains("#")
            if exact && wildcards.contains(where: { Self.matches(filter, filter: $0) }) { continue }
            kept.append(filter)
        }
        return kept
    }

    /// Hands the message to the first handler that subscribed to its topic; drops it when none did.
    public func handle(topic: String, payload: [UInt8], retained: Bool) async {
        for handler in handlers where handler.filters.contains(where: { Self.matches(topic, filter: $0) }) {
            return await handler.handle(topic: topic, payload: payload, retained: retained)
        }
    }

    /// Whether `topic` matches the subscription `filter`, as the broker judges it.
    static func matches(_ topic: String, filter: String) -> Bool {
        var result = false
        return mosquitto_topic_matches_sub(filter, topic, &result) == MOSQ_ERR_SUCCESS.rawValue && result
    }
}
