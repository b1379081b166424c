import DequeModule

/// One sink's place in one class of the journal: how far it has read, what it has handed out,
/// and how far everything is acknowledged. Pure bookkeeping, no I/O: the journal feeds it what
/// happened and asks it where the cursor is.
///
/// The guarantee it keeps: `acknowledged` (the cursor, which the journal writes to disk and
/// deletes up to) never passes an event that was handed out and not acknowledged, whatever
/// order acknowledgements, give-backs and re-sends come in. An event given back (the connection
/// went, the broker refused it for now) keeps its place: the cursor waits for it.
public struct SinkCursor: Sendable, Equatable {
    /// Every event of this class up to here is acknowledged, or was never meant to be sent
    /// (a `latest` row coalesced away by a replay, a row the bounds dropped).
    public private(set) var acknowledged: Int64
    /// The highest seq read into the sink's buffer, handed out, or known not to exist: the next
    /// read starts after it.
    public private(set) var position: Int64
    /// Handed out and not yet behind the cursor, in seq order.
    private var outstanding: Deque<Entry> = []

    private struct Entry: Sendable, Equatable {
        var seq: Int64
        var state: State
    }

    private enum State: Sendable, Equatable {
        /// With the destination, no answer yet.
        case sent
        /// The destination has it.
        case acknowledged
        /// Given back: waits in the sink's buffer to be handed out again.
        case returned
    }

    /// - Parameter acknowledged: the cursor as it was stored.
    public init(acknowledged: Int64 = 0) {
        self.acknowledged = acknowledged
        position = acknowledged
    }

    /// How many events are handed out or given back and not yet acknowledged.
    public var unacknowledgedCount: Int { outstanding.count { $0.state != .acknowledged } }

    /// The sink read events (or learnt there are none) up to `seq`; a read never goes backwards.
    public mutating func read(through seq: Int64) {
        position = max(position, seq)
    }

    /// An event goes to the destination: a new one (above every event handed out so far), or one
    /// given back before.
    public mutating func handOut(_ seq: Int64) {
        if let index = outstanding.firstIndex(where: { $0.seq == seq }) {
            precondition(outstanding[index].state == .returned, "seq \(seq) handed out twice")
            outstanding[index].state = .sent
            return
        }
        precondition(seq > acknowledged && seq > (outstanding.last?.seq ?? 0), "seq \(seq) handed out out of order")
        outstanding.append(Entry(seq: seq, state: .sent))
        position = max(position, seq)
    }

    /// The destination confirmed `seq`.
    /// - Returns: whether the cursor moved (it moves only over an unbroken run of acknowledged events).
    @discardableResult
    public mutating func acknowledge(_ seq: Int64) -> Bool {
        guard let index = outstanding.firstIndex(where: { $0.seq == seq }), outstanding[index].state == .sent else {
            return false
        }
        outstanding[index].state = .acknowledged
        var moved = false
        while let first = outstanding.first, first.state == .acknowledged {
            acknowledged = first.seq
            outstanding.removeFirst()
            moved = true
        }
        return moved
    }

    /// `seq` was handed out but did not reach the destination: it will be handed out again, and
    /// until it is acknowledged the cursor stops before it.
    public mutating func giveBack(_ seq: Int64) {
        guard let index = outstanding.firstIndex(where: { $0.seq == seq }), outstanding[index].state == .sent else {
            return
        }
        outstanding[index].state = .returned
    }

    /// Whether `seq` is handed out and awaiting its answer.
    public func isAwaiting(_ seq: Int64) -> Bool {
        outstanding.contains { $0.seq == seq && $0.state == .sent }
    }
}
