/// The MQTT sink's window of messages handed to the client library and awaiting PUBACK: which
/// message id stands for which event, and what each answer means. Pure bookkeeping, no I/O: the
/// sink's `PublishWindow` holds one under a lock and feeds it what libmosquitto reports.
///
/// The accounting is exact across reconnects: a message id is recorded the moment the library
/// assigns it (libmosquitto queues a message and resends it after the next CONNACK even when the
/// publish call itself said "no connection"), and an answer for an id the window does not hold
/// is counted and ignored, never kept: after the 16-bit id wraps, a kept stale answer would
/// acknowledge another event.
///
/// `Item` is the sink's event type; a status message has no item (`nil`).
public struct InFlightWindow<Item: Sendable>: Sendable {
    /// Most messages awaiting PUBACK at once.
    public let limit: Int
    /// Awaiting PUBACK: the item, or nil for a status message.
    private var awaiting: [Int32: Item?] = [:]
    /// Which items are ordinary (telemetry): they have a share of the window of their own.
    private let isOrdinary: @Sendable (Item) -> Bool
    /// Ordinary items awaiting PUBACK.
    public private(set) var ordinaryInFlight = 0
    /// Status messages (nil items) awaiting PUBACK: what paces a burst of them.
    public private(set) var statusInFlight = 0
    /// Answered and accepted, in the order of their PUBACKs, until the sink takes them.
    public private(set) var acknowledged: [Item] = []
    /// Answered and refused, until the sink takes them.
    public private(set) var refused: [(item: Item, verdict: PubackVerdict)] = []
    /// Accepted PUBACKs of items (events).
    public private(set) var acknowledgedCount = 0
    /// Accepted PUBACKs of status messages (nil items): counted apart, so that the events'
    /// count compares with the events sent.
    public private(set) var acknowledgedStatusCount = 0
    /// Refused PUBACKs, of events and status messages alike.
    public private(set) var refusedCount = 0
    /// Answers for message ids the window did not hold.
    public private(set) var unknownCount = 0
    /// Ids the library gave out again while an earlier message still held them: their next
    /// answers cannot be told apart (libmosquitto matches a PUBACK to the oldest message with the
    /// id), so they are ignored, and both messages' events are sent again under new ids.
    private var poisoned: [Int32: Int] = [:]

    /// - Parameter isOrdinary: which items count toward the ordinary (telemetry) share.
    public init(limit: Int, isOrdinary: @escaping @Sendable (Item) -> Bool = { _ in false }) {
        precondition(limit > 0)
        self.limit = limit
        self.isOrdinary = isOrdinary
    }

    /// Messages awaiting PUBACK.
    public var inFlight: Int { awaiting.count }

    /// Free places in the window.
    public var room: Int { max(0, limit - awaiting.count) }

    /// The library took a message and gave it `mid`.
    /// - Returns: the items to send again under new ids: when the library reused an id that an
    ///   unanswered message still held, neither answer can be told apart, so both events go back
    ///   (QoS 1 allows the duplicate; a wrong acknowledgement would lose one).
    public mutating func sent(mid: Int32, item: Item?) -> [Item] {
        guard let displaced = awaiting.removeValue(forKey: mid) else {
            awaiting[mid] = item
            if let item, isOrdinary(item) { ordinaryInFlight += 1 }
            if item == nil { statusInFlight += 1 }
            return []
        }
        if let displaced, isOrdinary(displaced) { ordinaryInFlight -= 1 }
        // The displaced status message is given up (nothing resends it); the new one is not kept either.
        if displaced == nil { statusInFlight -= 1 }
        poisoned[mid, default: 0] += 2
        return [displaced, item].compactMap { $0 }
    }

    /// What a PUBACK did to the window.
    public enum Answer: Sendable, Equatable {
        /// The broker has the message; its item (if any) waits in `acknowledged`.
        case accepted
        /// The broker refused it; its item (if any) waits in `refused`.
        case refused(PubackVerdict)
        /// No message awaits this id: counted, ignored.
        case unknown
    }

    /// A PUBACK for `mid` with the MQTT 5 `reasonCode` (0 on MQTT 3.1.1).
    public mutating func answered(mid: Int32, reasonCode: Int32) -> Answer {
        if let left = poisoned[mid] {
            poisoned[mid] = left > 1 ? left - 1 : nil
            unknownCount += 1
            return .unknown
        }
        guard let item = awaiting.removeValue(forKey: mid) else {
            unknownCount += 1
            return .unknown
        }
        if let item, isOrdinary(item) { ordinaryInFlight -= 1 }
        if item == nil { statusInFlight -= 1 }
        let verdict = PubackVerdict(reasonCode: reasonCode)
        if verdict == .accepted {
            if let item {
                acknowledgedCount += 1
                acknowledged.append(item)
            } else {
                acknowledgedStatusCount += 1
            }
            return .accepted
        }
        refusedCount += 1
        if let item { refused.append((item, verdict)) }
        return .refused(verdict)
    }

    /// Hands over the accepted items gathered since the last call.
    public mutating func takeAcknowledged() -> [Item] {
        defer { acknowledged.removeAll(keepingCapacity: true) }
        return acknowledged
    }

    /// Hands over the refused items gathered since the last call.
    public mutating func takeRefused() -> [(item: Item, verdict: PubackVerdict)] {
        defer { refused.removeAll(keepingCapacity: true) }
        return refused
    }
}
